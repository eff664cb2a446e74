"""Pure tensor math of the tiling diagnosis (no state, no host synchronisation): the 2-D lattice
estimator (:mod:`.lattice`), the stride-grid and checkerboard demodulators (:mod:`.grid`) and the edge and
mask-seam scores (:mod:`.seams`)."""
