train --preset fashion-resnet18 --seed 1 --epochs 2
spec f6065547d97ae26f
