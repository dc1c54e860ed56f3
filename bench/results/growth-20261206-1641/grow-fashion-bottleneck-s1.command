grow --preset fashion-bottleneck --seed 1
spec 65dad1d134c9b5d9
