train --preset fashion-mbv3small --seed 1 --epochs 9
spec 62b8fd0991bc37f9
