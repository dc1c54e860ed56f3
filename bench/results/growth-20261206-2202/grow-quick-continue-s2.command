grow --spec bench/work/quick-continue.json --seed 2
spec de23aa77a27e7ba2
