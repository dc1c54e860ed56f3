grow --preset quick --seed 1
spec 8476ae6621fde5e5
