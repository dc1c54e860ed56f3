grow --spec bench/work/fashion-resnet-half.json --seed 3
spec e7402555806d344a
