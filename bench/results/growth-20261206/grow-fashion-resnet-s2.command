grow --preset fashion-resnet --seed 2
spec 7203666e3d6ed5f5
