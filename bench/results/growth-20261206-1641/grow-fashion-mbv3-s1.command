grow --preset fashion-mbv3 --seed 1
spec abc9c920400176e1
