grow --preset fashion-mbv3 --seed 2
spec abc9c920400176e1
