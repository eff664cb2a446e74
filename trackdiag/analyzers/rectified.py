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

from typing import Any

import torch

from ..functional.doubling import doubling_map, lattice_shift_vectors, pair_doubling_map, region_extent
from ..functional.rectify import (
    map_to_image_grid,
    period_coherence,
    rectify,
    refined_tilt,
    tilt_from_axis_periods,
)
from ..functional.rows import on_rows
from .bands import (
    directional_edges,
    edge_image,
    hypotheses_extent,
    local_geometry,
    local_period_map,
    region_key_names,
    region_keys,
)

__all__ = ["best_rectified_region_keys", "fronto_pair_keys", "rectified_region_keys", "refine_tilts"]


def refine_tilts(x: torch.Tensor, valid: torch.Tensor, tilts: torch.Tensor, trend: torch.Tensor,
                 one_d: torch.Tensor, *, max_step: float = 0.2, max_spread: float = 0.1,
                 min_coherence: float = 0.6, min_diff: float = 0.1, window_frac: float = 0.25,
                 overlap: int = 3, max_fft_px: int = 64, max_downsample: int = 2, min_period_px: float = 3.0,
                 min_peak_ratio: float = 10.0, rel_power: float = 0.25
                 ) -> torch.Tensor:
    """The tilt candidates (``tilts`` ``N×C×2`` (G_y, G_x) frame units, the first the checked tilt, NaN where
    an image has no such candidate) each corrected once on the wall it rectifies
    (:func:`~trackdiag.functional.rectify.refined_tilt`): one rectification and one local lattice map
    (:func:`.bands.local_period_map`, the image's geometry and peak rules) per candidate, whose per-axis
    periods give the residual tilt and their coherence. ``trend`` ``N×2`` (the window grid's
    ``persp_trend_y``, ``_x``) and
    ``one_d`` ``(N,)`` as :func:`~trackdiag.functional.rectify.checked_tilt`'s. A later candidate that the
    correction brought within ``min_diff`` of the first in both components is dropped (NaN: the same wall
    would be rectified twice). ``x``: ``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1. Returns ``N×C×2``."""
    h, w = x.shape[-2:]
    side = torch.tensor([float(h), float(w)], device=x.device, dtype=x.dtype)
    out = []
    for c in range(tilts.shape[1]):
        gc = tilts[:, c]
        has = torch.isfinite(gc).all(dim=1)

        def residual(i: torch.Tensor | None, gc: torch.Tensor = gc
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            r = slice(None) if i is None else i
            xr, vr = rectify(x[r], valid[r], gc[r] / side)
            lr = local_period_map(xr, vr > 0.5, clean=True, window_frac=window_frac, overlap=overlap,
                                  max_fft_px=max_fft_px, max_downsample=max_downsample,
                                  min_period_px=min_period_px, min_peak_ratio=min_peak_ratio,
                                  rel_power=rel_power)
            px, py = lr.period_x_px, lr.period_y_px
            assert px is not None  # (the map always reads the periods along x)
            g, spread = tilt_from_axis_periods(px, py, lr.center_y, lr.center_x, height=h, width=w)
            coh = torch.stack([period_coherence(m) for m in (px, py) if m is not None], dim=1)
            fin = torch.isfinite(coh)
            mean = torch.where(fin, coh, torch.zeros_like(coh)).sum(1) / fin.sum(1).clamp_min(1)
            mean = torch.where(fin.any(1), mean, torch.full_like(mean, float("nan")))
            return g * side, spread, mean[:, None].expand(-1, 2)  # (one value, as N×2 for on_rows)

        res, spread, coh = on_rows(has, residual, fills=(float("nan"),) * 3, like=x, shape=(2,))
        out.append(refined_tilt(gc, res, spread, trend, one_d, coherence=coh[:, 0], max_step=max_step,
                                max_spread=max_spread, min_coherence=min_coherence))
    ref = torch.stack(out, dim=1)
    if ref.shape[1] > 1:
        same = ((ref[:, 1:] - ref[:, :1]).abs() <= min_diff).all(dim=2, keepdim=True)
        rest = torch.where(same, torch.full_like(ref[:, 1:], float("nan")), ref[:, 1:])
        ref = torch.cat([ref[:, :1], rest], dim=1)
    return ref


def rectified_region_keys(x: torch.Tensor, valid: torch.Tensor, g: torch.Tensor, *, t1: torch.Tensor,
                          t2: torch.Tensor, window_frac: float = 0.25, overlap: int = 3,
                          max_fft_px: int = 64, max_downsample: int = 2, doubling_excess: float = 0.08,
                          pair_excess: float = 1.5, fronto_pair: bool = False) -> dict[str, torch.Tensor]:
    """``doubling_*`` and ``pair_*`` keys (as :func:`.bands.doubling_keys` and
    :func:`.bands.pair_doubling_keys`) of ``x`` (``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1) measured on
    the wall rectified by the tilt ``g`` (``N×2`` (g_y, g_x), 1/px). ``t1``, ``t2``: ``N×2`` (dy, dx) px, the
    lattice vectors at the frame centre (where the rectified wall has the image's scale). ``fronto_pair``
    (tenth sitting, ``RECT_PAIR_FRONTO``): the ``pair_*`` region's size and reach are the pair test's
    fronto-parallel reading's (:func:`fronto_pair_keys`), ``pair_plain_corr`` stays the gradient
    reading's (the self-check compares it with the image's, a like reading). Every value ``(N,)``."""
    h, w = x.shape[-2:]
    xr, vr = rectify(x, valid, g)
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    dm = doubling_map(xr, vr, window_px=win, stride_px=stride, ds=ds)

    def back(m: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
        return map_to_image_grid(m, cy, cx, g, height=h, width=w)

    out = region_keys("doubling", region_extent(back(dm.margin, dm.center_y, dm.center_x),
                                                 excess=doubling_excess), dm.plain_corr)
    er = edge_image(xr, vr, t1, t2, length=max(3, win // 4))
    pm = pair_doubling_map(er, vr, lattice_shift_vectors(t1, t2), window_px=win // 2, stride_px=stride // 2,
                           ds=ds)
    if fronto_pair:
        ext, _ = _fronto_pair_extent(xr, vr, g, t1, t2, win=win, stride=stride, ds=ds, height=h, width=w,
                                     excess=pair_excess)
    else:
        ext = region_extent(back(pm.margin, pm.center_y, pm.center_x), excess=pair_excess)
    out.update(region_keys("pair", ext, pm.plain_corr))
    return out


def fronto_pair_keys(x: torch.Tensor, valid: torch.Tensor, g: torch.Tensor, *, t1: torch.Tensor,
                     t2: torch.Tensor, window_frac: float = 0.25, overlap: int = 3, max_fft_px: int = 64,
                     max_downsample: int = 2, pair_excess: float = 1.5) -> dict[str, torch.Tensor]:
    """The pair test's ``pair_*`` keys in its fronto-parallel reading (:func:`.bands.pair_doubling_keys` on
    a wall without a perspective trend: each vector reads the edges across it,
    :func:`.bands.directional_edges`; the basis vectors also at ``4v``; the wall's level read below the 40th
    percentile; each hypothesis' reach on its own map, :func:`.bands.hypotheses_extent`) on the wall
    rectified by the tilt ``g`` (``N×2`` (g_y, g_x), 1/px), each hypothesis' map read back at the image's
    window centres (:func:`~trackdiag.functional.rectify.map_to_image_grid`) before its reach is read.
    ``x`` ``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1; ``t1``, ``t2`` ``N×2`` (dy, dx) px at the frame centre.
    Every value ``(N,)`` (``pair_plain_corr``: this reading's, on the directional edges)."""
    h, w = x.shape[-2:]
    xr, vr = rectify(x, valid, g)
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    ext, corr = _fronto_pair_extent(xr, vr, g, t1, t2, win=win, stride=stride, ds=ds, height=h, width=w,
                                    excess=pair_excess)
    return region_keys("pair", ext, corr)


def _fronto_pair_extent(xr: torch.Tensor, vr: torch.Tensor, g: torch.Tensor, t1: torch.Tensor,
                        t2: torch.Tensor, *, win: int, stride: int, ds: int, height: int, width: int,
                        excess: float) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`fronto_pair_keys` on the rectified wall (``xr``, ``vr`` ``N×H×W``; ``win``, ``stride``,
    ``ds``: :func:`.bands.local_geometry`'s): the region's reach (:func:`.bands.hypotheses_extent`'s keys,
    each ``(N,)``) and the reading's plain correlation ``(N,)``."""
    vectors = lattice_shift_vectors(t1, t2)
    e = directional_edges(xr, vr, t1, t2, vectors, length=max(3, win // 4))
    pm = pair_doubling_map(e, vr, vectors, window_px=win // 2, stride_px=stride // 2, ds=ds)
    hyp = pm.hypotheses
    if hyp is None:  # (not expected: a map without a trend keeps its hypotheses)
        back = map_to_image_grid(pm.margin, pm.center_y, pm.center_x, g, height=height, width=width)
        return region_extent(back, excess=excess), pm.plain_corr
    nh = hyp.shape[0]  # H×N×h×w, hypothesis-major: image n of hypothesis k at k·N + n
    back = map_to_image_grid(hyp.flatten(0, 1), pm.center_y, pm.center_x, g.repeat(nh, 1), height=height,
                             width=width).reshape(hyp.shape)
    return hypotheses_extent(back, excess=excess), pm.plain_corr


def best_rectified_region_keys(x: torch.Tensor, valid: torch.Tensor, tilts: torch.Tensor, *, t1: torch.Tensor,
                               t2: torch.Tensor, **kw: Any) -> dict[str, torch.Tensor]:
    """:func:`rectified_region_keys` under each candidate tilt (``tilts`` ``N×C×2`` (G_y, G_x) frame units,
    the first the checked tilt, the others alternatives — NaN where an image has none), keeping per image
    the candidate under which the rectified windows repeat the wall's lattice best (the larger
    ``pair_plain_corr``, else ``doubling_plain_corr``; ties keep the earlier candidate). Returns its keys,
    plus ``rect_tilt_y`` / ``rect_tilt_x`` (the tilt used, frame units), every value ``(N,)``."""
    h, w = x.shape[-2:]
    side = torch.tensor([float(h), float(w)], device=x.device, dtype=x.dtype)
    best: dict[str, torch.Tensor] | None = None
    best_corr = torch.full(x.shape[:1], float("-inf"), device=x.device, dtype=x.dtype)
    for c in range(tilts.shape[1]):
        gc = tilts[:, c]
        has = torch.isfinite(gc).all(dim=1)

        def keys(i: torch.Tensor | None, gc: torch.Tensor = gc) -> dict[str, torch.Tensor]:
            r = slice(None) if i is None else i
            return rectified_region_keys(x[r], valid[r], gc[r] / side, t1=t1[r], t2=t2[r], **kw)

        if c == 0:
            got = keys(None)
        else:  # (an alternative: only the images that have one)
            names = (*region_key_names("doubling"), *region_key_names("pair"))
            got = on_rows(has, keys, fills=dict.fromkeys(names, float("nan")), like=x)
        got["rect_tilt_y"], got["rect_tilt_x"] = gc[:, 0], gc[:, 1]
        corr = torch.where(torch.isfinite(got["pair_plain_corr"]), got["pair_plain_corr"],
                           got["doubling_plain_corr"])
        corr = torch.where(torch.isfinite(corr), corr, torch.full_like(corr, float("-inf")))
        take = has & (corr > best_corr) if best is not None else has
        best = got if best is None else {k: torch.where(take, got[k], best[k]) for k in best}
        best_corr = torch.where(take, corr, best_corr)
    assert best is not None
    return best
