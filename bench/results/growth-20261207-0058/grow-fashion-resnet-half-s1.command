grow --spec bench/work/fashion-resnet-half.json --seed 1
spec e7402555806d344a
