grow --preset fashion-vgg --seed 1
spec 0346c8839958dea8
