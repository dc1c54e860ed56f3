grow --spec bench/work/quick-continue.json --seed 1
spec de23aa77a27e7ba2
