grow --spec bench/work/fashion-resnet-w24-ft8-continue.json --seed 3
spec c6b0e8aa93cc0093
