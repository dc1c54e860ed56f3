train --spec bench/work/oracle-fashion-resnet-s1.json --seed 3
spec 95d67bd69aca3b21
