grow --preset fashion-vgg --seed 2
spec 0346c8839958dea8
