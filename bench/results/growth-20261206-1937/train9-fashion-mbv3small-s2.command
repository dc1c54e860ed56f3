train --preset fashion-mbv3small --seed 2 --epochs 9
spec 62b8fd0991bc37f9
