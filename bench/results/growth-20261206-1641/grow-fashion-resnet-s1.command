grow --preset fashion-resnet --seed 1
spec dd828057274cee1e
