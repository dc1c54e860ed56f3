grow --preset fashion-bottleneck --seed 2
spec d1fe10af68f2e364
