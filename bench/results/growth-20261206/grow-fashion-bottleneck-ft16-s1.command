grow --spec bench/work/fashion-bottleneck-ft16.json --seed 1
spec 7f823299a8d892fd
