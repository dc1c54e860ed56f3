grow --spec bench/work/fashion-resnet-half.json --seed 2
spec e7402555806d344a
