train --preset fashion-vgg11 --seed 1 --epochs 5
spec 9a7ef431063f9174
