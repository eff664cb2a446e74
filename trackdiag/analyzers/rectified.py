"""The 2×-period region keys of a wall seen at an angle, read on the wall brought fronto-parallel.

On an angled wall the region maps (:func:`.bands.doubling_keys`, :func:`.bands.pair_doubling_keys`) compare
each window with the wall's lattice moved by one isotropic scale, while foreshortening is anisotropic (lines
across the tilt shrink twice as fast as lines along it) and changes across the frame: the windows barely
repeat the lattice they are given and zones and bands are missed. Here the wall's tilt
(:func:`~trackdiag.functional.rectify.tilt_from_axis_periods`) rectifies the wall once
(:func:`~trackdiag.functional.rectify.rectify`), both maps run there without a perspective trend, and
their window maps are read back at the image's window centres
(:func:`~trackdiag.functional.rectify.map_to_image_grid`) before the region's size and reach are read
(:func:`~trackdiag.functional.doubling.region_extent`): rows and columns of windows stay the image's.
Definitions and limits: ``docs/tiling.md`` §6.
"""

from __future__ import annotations

import torch

from ..functional.doubling import doubling_map, lattice_shift_vectors, pair_doubling_map, region_extent
from ..functional.rectify import map_to_image_grid, rectify
from .bands import _region_keys, edge_image, local_geometry

__all__ = ["rectified_region_keys"]


def rectified_region_keys(x: torch.Tensor, valid: torch.Tensor, g: torch.Tensor, *, t1: torch.Tensor,
                          t2: torch.Tensor, window_frac: float = 0.25, overlap: int = 3,
                          max_fft_px: int = 64, max_downsample: int = 2, doubling_excess: float = 0.08,
                          pair_excess: float = 1.5) -> dict[str, torch.Tensor]:
    """``doubling_*`` and ``pair_*`` keys (as :func:`.bands.doubling_keys` and
    :func:`.bands.pair_doubling_keys`) of ``x`` (``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1) measured on
    the wall rectified by the tilt ``g`` (``N×2`` (g_y, g_x), 1/px). ``t1``, ``t2``: ``N×2`` (dy, dx) px, the
    lattice vectors at the frame centre (where the rectified wall has the image's scale). Every value
    ``(N,)``."""
    h, w = x.shape[-2:]
    xr, vr = rectify(x, valid, g)
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    dm = doubling_map(xr, vr, window_px=win, stride_px=stride, ds=ds)

    def back(m: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
        return map_to_image_grid(m, cy, cx, g, height=h, width=w)

    out = _region_keys("doubling", region_extent(back(dm.margin, dm.center_y, dm.center_x),
                                                 excess=doubling_excess), dm.plain_corr)
    er = edge_image(xr, vr, t1, t2, length=max(3, win // 4))
    pm = pair_doubling_map(er, vr, lattice_shift_vectors(t1, t2), window_px=win // 2, stride_px=stride // 2,
                           ds=ds)
    out.update(_region_keys("pair", region_extent(back(pm.margin, pm.center_y, pm.center_x),
                                                  excess=pair_excess), pm.plain_corr))
    return out
