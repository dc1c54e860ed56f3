grow --preset quick --seed 2
spec 8476ae6621fde5e5
