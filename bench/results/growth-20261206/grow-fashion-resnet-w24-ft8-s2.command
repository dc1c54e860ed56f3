grow --spec bench/work/fashion-resnet-w24-ft8.json --seed 2
spec e04d9159cacbca5d
