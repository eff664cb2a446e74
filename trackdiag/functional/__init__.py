"""Pure tensor math shared by the analyzers (no state, no I/O, no host synchronisation).

Tiling: the 2-D lattice estimator (:mod:`.lattice`), the local lattice map (:mod:`.localmap`), the stride-grid
and checkerboard demodulators (:mod:`.grid`) and the edge and mask-seam scores (:mod:`.seams`); exact, faster
order statistics (medians, sorts, running extremes) for all of them (:mod:`.order`); computing an
estimator on some images only, without a host synchronisation (:mod:`.rows`). Latents:
moments (:mod:`.latent_moments`), periodic peaks (:mod:`.latent_periodic`) and drift (:mod:`.latent_drift`).
Loss: the local level of a series (:mod:`.loss_level`) and the timestep buckets (:mod:`.loss_buckets`).
Pixels: leak (:mod:`.pixel_leak`), texture defects (:mod:`.pixel_texture`, :mod:`.pixel_judge`).
"""
