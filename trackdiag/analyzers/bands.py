"""Local-period map and "band" metrics (seed sections 4.1 and 5: ``local_period_px``, ``band_*``).

The local period is the fundamental of overlapping windows, all measured at once: the image is cut into
windows with ``Tensor.unfold`` (a strided view), every window is Hann-windowed (its weighted mean removed when
there is a mask), and one batched FFT plus the same peak picking as the global estimate
(:mod:`trackdiag.functional.spectral`) gives each window's fundamental. No Python loop runs over windows or
pixels.

Bands: where the local period is about twice the base period (the median of the map), a window is "doubled".
The share of doubled windows per map row and per map column, smoothed over three rows/columns, gives
``band_row_frac_max`` / ``band_col_frac_max``; the longest run of rows/columns at or above
``frac_threshold`` gives ``band_row_max_run`` / ``band_col_max_run`` (in pixels). The axis with the larger
share is ``band_axis_hint``. A linear fit of the map against y and x gives the perspective trend.
Definitions and defaults: ``docs/tiling.md``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..functional import order
from ..functional.doubling import (
    doubling_map,
    lattice_shift_vectors,
    pair_doubling_map,
    region_extent,
)
from ..functional.localmap import (
    axis_fundamentals,
    axis_profiles,
    half_frequency_ratio,
    log_radial_profile,
    scale_shift,
    strip_novelty,
    theil_sen,
)
from ..functional.rows import on_rows
from ..functional.spectral import (
    box_downsample,
    find_peaks,
    fundamental_of,
    hann2d,
    log_power,
    pick_fundamental,
    spectrum,
)
from ..plots.figuredata import BAND_FRAC_THRESHOLD

__all__ = [
    "LocalPeriodMap",
    "band_metrics",
    "centre_period",
    "doubling_keys",
    "local_geometry",
    "local_period_map",
    "longest_run",
    "directional_edges",
    "edge_image",
    "pair_doubling_keys",
    "period_trend",
    "region_key_names",
    "region_keys",
    "scale_trend",
    "strip_band_keys",
]


class LocalPeriodMap(NamedTuple):
    """Result of :func:`local_period_map`.

    ``period_px`` ``N×h×w`` (original pixels; NaN where a window is mostly outside the mask or has no clear
    peak); ``peak_ratio`` ``N×h×w`` (the window's peak over its ring background); ``center_y`` ``(h,)`` and
    ``center_x`` ``(w,)`` window centres in original pixels; ``window_px`` and ``stride_px`` in original
    pixels.
    """

    period_px: torch.Tensor
    peak_ratio: torch.Tensor
    center_y: torch.Tensor
    center_x: torch.Tensor
    window_px: int
    stride_px: int
    period_x_px: torch.Tensor | None = None
    period_y_px: torch.Tensor | None = None
    #: ``N×h×w`` log power ratio at half the map's base frequency over the base, along x and along y
    #: (:func:`~trackdiag.functional.localmap.half_frequency_ratio`); NaN where unmeasured.
    half_x: torch.Tensor | None = None
    half_y: torch.Tensor | None = None


def local_geometry(height: int, width: int, *, window_frac: float = 0.25, overlap: int = 3,
                   max_fft_px: int = 64, max_downsample: int = 2) -> tuple[int, int, int]:
    """Window side, stride (both in original px) and downsampling factor of the local-period map.

    The window is ``window_frac`` of the shorter side (≥ 16 px); the image is box-downsampled by
    ``ds = clamp(window // max_fft_px, 1, max_downsample)`` so that each FFT has about ``max_fft_px`` points
    per side (periods of 8 px stay 4 px, above Nyquist); the stride is ``window / overlap``.
    """
    win = max(16, round(window_frac * min(height, width)))
    ds = max(1, min(max_downsample, win // max_fft_px))
    win_ds = max(8, win // ds)
    stride_ds = max(1, win_ds // max(1, overlap))
    return win_ds * ds, stride_ds * ds, ds


def local_period_map(x: torch.Tensor, valid: torch.Tensor | None = None, *, window_frac: float = 0.25,
                     overlap: int = 3, max_fft_px: int = 64, max_downsample: int = 2,
                     min_period_px: float = 3.0, min_valid_frac: float = 0.6, min_peak_ratio: float = 10.0,
                     rel_power: float = 0.25, clean: bool = False) -> LocalPeriodMap:
    """Fundamental period of every window of ``x`` (``N×H×W``; ``valid`` optional ``N×H×W`` bool; without it
    every window counts and non-finite pixels are read as 0).

    Windows with less than ``min_valid_frac`` valid pixels, or whose fundamental stands less than
    ``min_peak_ratio`` above the geometric-mean power of the searched band, are NaN. Periods longer than half
    the window are not searched (two periods at least must fit).
    """
    n, h, w = x.shape
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    if clean:  # x is finite and valid (if given) already excludes what was not
        x0 = x
        vf = None if valid is None else valid.to(x.dtype)
    else:
        finite = torch.isfinite(x)
        x0 = torch.where(finite, x, 0.0)
        vf = None if valid is None else (valid.bool() & finite).to(x.dtype)
    if ds > 1:
        hc, wc = ds * (h // ds), ds * (w // ds)  # whole blocks only: a partial last block is dropped
        x0 = x0[..., :hc, :wc]
        vf = None if vf is None else vf[..., :hc, :wc]
        if vf is None:
            x0 = box_downsample(x0, ds)
        else:
            vs = box_downsample(vf, ds)
            x0 = box_downsample(x0 * vf, ds) / vs.clamp_min(1e-6)
            vf = (vs >= 0.5).to(x.dtype)
            x0 = x0 * vf
    k, st = win // ds, stride // ds
    hh, ww = x0.shape[-2:]
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // max(1, overlap))
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    # Overlapping windows as a strided view (no copy until the window is applied).
    windows = x0.unfold(1, k, st).unfold(2, k, st)  # N×gh×gw×k×k
    if vf is None:
        # No mask: a periodic Hann window, whose spectrum is zero beyond ±1 bin, so the window's mean leaks
        # only into radii < 2 (never searched) and needs no removal: one multiplication per window.
        frac = torch.ones(n * gh * gw, device=x.device, dtype=x.dtype)
        hp = torch.hann_window(k, periodic=True, device=x.device, dtype=x.dtype)
        spec = spectrum((windows * (hp[:, None] * hp[None, :])).reshape(n * gh * gw, k, k))
    else:
        patches = windows.reshape(n * gh * gw, k, k)
        vpatch = vf.unfold(1, k, st).unfold(2, k, st).reshape(n * gh * gw, k, k)
        frac = vpatch.mean(dim=(-2, -1))
        wts = vpatch * hann2d(k, k, device=x.device, dtype=x.dtype)
        wsum = wts.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
        mean = (patches * wts).sum(dim=(-2, -1), keepdim=True) / wsum
        spec = spectrum((patches - mean) * wts)
    r_min = 2.0
    # Local periods shorter than 4 (downsampled) px are not searched: the map is for periods of 8 px and up.
    r_max = min(k / 2.0, k * ds / max(min_period_px, 4.0 * ds))
    peaks = find_peaks(spec, r_min=r_min, r_max=r_max, k=8, reach=1)
    j = pick_fundamental(peaks, rel_power=rel_power)
    radius, _, _, p0, found = fundamental_of(peaks, j, rel_power=rel_power)
    # Background: geometric-mean power over the searched band (one log pass, no per-window rings).
    band = ((spec.radius >= r_min) & (spec.radius <= r_max)).to(x.dtype) * spec.weight
    bg = torch.exp((log_power(spec.power) * band).sum(dim=(-2, -1)) / band.sum().clamp_min(1.0))
    ratio = torch.where(found, p0 / bg.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(p0))
    ok = found & (frac >= min_valid_frac) & (ratio >= min_peak_ratio)
    period = torch.where(ok, (k * ds) / radius, torch.full_like(radius, float("nan")))
    # Per axis (a band at twice the period along one axis changes that axis only).
    px_prof, py_prof = axis_profiles(spec.power)  # computed once: the fundamentals and the half ratios
    fx, rx, fy, ry = axis_fundamentals(spec.power, r_min=r_min, r_max=r_max, rel_power=rel_power,
                                       profiles=(px_prof, py_prof))
    nan = torch.full_like(fx, float("nan"))
    okv = frac >= min_valid_frac
    perx = torch.where(okv & (rx >= min_peak_ratio), (k * ds) / fx, nan)
    pery = torch.where(okv & (ry >= min_peak_ratio), (k * ds) / fy, nan)
    # Energy at half the base frequency along each axis (the base: the median of the windows' axis periods).
    halves: list[torch.Tensor] = []
    for f_, ok_ in ((fx, okv & (rx >= min_peak_ratio)), (fy, okv & (ry >= min_peak_ratio))):
        fb = _local_median(torch.where(ok_, f_, nan).reshape(n, gh, gw), reach=3).reshape(-1)  # bins
        prof = px_prof if len(halves) == 0 else py_prof
        halves.append(torch.where(okv, half_frequency_ratio(prof, fb), nan))
    cy = (torch.arange(gh, device=x.device, dtype=x.dtype) * st + k / 2.0) * ds
    cx = (torch.arange(gw, device=x.device, dtype=x.dtype) * st + k / 2.0) * ds
    return LocalPeriodMap(period.reshape(n, gh, gw), ratio.reshape(n, gh, gw), cy, cx, k * ds, st * ds,
                          perx.reshape(n, gh, gw), pery.reshape(n, gh, gw),
                          halves[0].reshape(n, gh, gw), halves[1].reshape(n, gh, gw))


def _local_median(v: torch.Tensor, *, reach: int) -> torch.Tensor:
    """NaN-aware median over the ``(2·reach+1)²`` neighbourhood of every cell of ``N×h×w`` (edges shrink)."""
    n, h, w = v.shape
    side = 2 * reach + 1
    pad = F.pad(v[:, None], (reach, reach, reach, reach), value=float("nan"))[:, 0]
    nb = pad.unfold(1, side, 1).unfold(2, side, 1).reshape(n, h, w, side * side)
    return nb.nanmedian(dim=-1).values


def longest_run(flags: torch.Tensor) -> torch.Tensor:
    """Length of the longest run of True along the last axis: ``N×L`` bool → ``(N,)`` long."""
    f = flags.long()
    c = f.cumsum(dim=-1)
    # At each False, remember the count so far; the run length is the count minus the last such value.
    reset = torch.where(flags, torch.zeros_like(c), c)
    base = reset.cummax(dim=-1).values
    return (c - base).amax(dim=-1) if flags.shape[-1] else torch.zeros(flags.shape[:-1], dtype=torch.long)


def _smooth3(v: torch.Tensor) -> torch.Tensor:
    """3-tap moving average along the last axis, shrinking at the ends: ``N×L`` → ``N×L``."""
    return F.avg_pool1d(v[:, None], kernel_size=3, stride=1, padding=1, count_include_pad=False)[:, 0]


def band_metrics(lp: LocalPeriodMap, *, doubled_range: tuple[float, float] = (1.7, 2.35),
                 frac_threshold: float = BAND_FRAC_THRESHOLD, half_excess: float = 3.0
                 ) -> dict[str, torch.Tensor]:
    """Seed ``band_*`` metrics from a local-period map; every value ``(N,)`` float.

    Keys: ``band_base_period_px`` (median of the map), ``band_row_frac_max``, ``band_col_frac_max`` (largest
    smoothed share of doubled windows in a map row / column, 0..1), ``band_row_max_run``,
    ``band_col_max_run`` (longest run of rows / columns with a share ≥ ``frac_threshold``, in pixels = map
    rows × stride), ``band_axis_is_cols`` (1 when the column share is larger: ``band_axis_hint = "cols"``),
    ``band_score`` and ``band_max_run`` (those of the hinted axis), ``band_doubled_frac`` (share of doubled
    windows overall). Also returns ``"_doubled"`` ``N×h×w`` (float 0/1, NaN where unmeasured),
    ``"_row_frac"`` ``N×h`` and ``"_col_frac"`` ``N×w`` for the figure.
    """
    p = lp.period_px
    n, _gh, _gw = p.shape
    flat = p.reshape(n, -1)
    base = flat.nanmedian(dim=1).values
    measured = torch.isfinite(p)
    ratio = p / base[:, None, None]
    doubled = measured & (ratio >= doubled_range[0]) & (ratio <= doubled_range[1])
    extra: dict[str, torch.Tensor] = {}
    if lp.period_x_px is not None and lp.period_y_px is not None:
        # Per axis: a window is doubled when its x or its y period is about twice that axis's base.
        dx_, mx_ = _axis_doubled(lp.period_x_px, doubled_range)
        dy_, my_ = _axis_doubled(lp.period_y_px, doubled_range)
        measured = mx_ | my_
        doubled = dx_ | dy_
        extra["band_base_period_x_px"] = lp.period_x_px.reshape(n, -1).nanmedian(dim=1).values
        extra["band_base_period_y_px"] = lp.period_y_px.reshape(n, -1).nanmedian(dim=1).values
        extra["doubled_x_frac"] = dx_.reshape(n, -1).sum(1) / mx_.reshape(n, -1).sum(1).clamp_min(1)
        extra["doubled_y_frac"] = dy_.reshape(n, -1).sum(1) / my_.reshape(n, -1).sum(1).clamp_min(1)
    if lp.half_x is not None and lp.half_y is not None:
        # Half-frequency map: a window whose power at half its neighbourhood's base frequency (x or y) rises
        # more than e^half_excess above the map's median level is inside a region at twice the period.
        hd, hm = [], []
        for r in (lp.half_x, lp.half_y):
            ex = r - r.reshape(n, -1).nanmedian(dim=1).values[:, None, None]
            hm.append(torch.isfinite(ex))
            hd.append(hm[-1] & (ex > half_excess))
        hmeas, hdbl = hm[0] | hm[1], hd[0] | hd[1]
        hdf, hmf = hdbl.to(p.dtype), hmeas.to(p.dtype)
        extra["zone_frac"] = hdf.sum(dim=(1, 2)) / hmf.sum(dim=(1, 2)).clamp_min(1.0)
        extra["zone_row_frac_max"] = _smooth3(hdf.sum(dim=2) / hmf.sum(dim=2).clamp_min(1.0)).amax(dim=1)
        extra["zone_col_frac_max"] = _smooth3(hdf.sum(dim=1) / hmf.sum(dim=1).clamp_min(1.0)).amax(dim=1)
        # Extent: share of the measured map columns (rows) holding a doubled window (1 = full width / height).
        for key, dim in (("zone_x_extent", 1), ("zone_y_extent", 2)):
            has_m = hmeas.any(dim=dim).to(p.dtype)
            has_d = hdbl.any(dim=dim).to(p.dtype)
            extra[key] = has_d.sum(dim=1) / has_m.sum(dim=1).clamp_min(1.0)
    d = doubled.to(p.dtype)
    m = measured.to(p.dtype)
    row_frac = _smooth3(d.sum(dim=2) / m.sum(dim=2).clamp_min(1.0))
    col_frac = _smooth3(d.sum(dim=1) / m.sum(dim=1).clamp_min(1.0))
    row_max = row_frac.amax(dim=1)
    col_max = col_frac.amax(dim=1)
    row_run = longest_run(row_frac >= frac_threshold).to(p.dtype) * lp.stride_px
    col_run = longest_run(col_frac >= frac_threshold).to(p.dtype) * lp.stride_px
    is_cols = col_max > row_max
    has = torch.isfinite(base)
    nan = torch.full_like(base, float("nan"))

    def gate(t: torch.Tensor) -> torch.Tensor:
        return torch.where(has, t, nan)

    dwt = doubled.to(p.dtype)
    cnt = dwt.sum(dim=(1, 2)).clamp_min(1.0)
    gy = torch.linspace(0.0, 1.0, p.shape[1], device=p.device, dtype=p.dtype)[None, :, None]
    gx = torch.linspace(0.0, 1.0, p.shape[2], device=p.device, dtype=p.dtype)[None, None, :]
    any_d = dwt.sum(dim=(1, 2)) > 0
    nanv = torch.full_like(base, float("nan"))
    return {
        **{k: gate(v) for k, v in extra.items()},
        "doubled_area_frac": gate(d.sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp_min(1.0)),
        "doubled_center_y": torch.where(any_d, (dwt * gy).sum(dim=(1, 2)) / cnt, nanv),
        "doubled_center_x": torch.where(any_d, (dwt * gx).sum(dim=(1, 2)) / cnt, nanv),
        "band_base_period_px": base,
        "band_row_frac_max": gate(row_max),
        "band_col_frac_max": gate(col_max),
        "band_row_max_run": gate(row_run),
        "band_col_max_run": gate(col_run),
        "band_axis_is_cols": gate(is_cols.to(p.dtype)),
        "band_score": gate(torch.where(is_cols, col_max, row_max)),
        "band_max_run": gate(torch.where(is_cols, col_run, row_run)),
        "band_doubled_frac": gate(d.sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp_min(1.0)),
        "_doubled": torch.where(measured, d, torch.full_like(d, float("nan"))),
        "_row_frac": row_frac,
        "_col_frac": col_frac,
    }


def _axis_doubled(per: torch.Tensor, doubled_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(doubled, measured)`` ``N×h×w`` bool of a per-axis period map against its own median."""
    n = per.shape[0]
    base = per.reshape(n, -1).nanmedian(dim=1).values
    measured = torch.isfinite(per)
    r = per / base[:, None, None]
    return measured & (r >= doubled_range[0]) & (r <= doubled_range[1]), measured


def period_trend(lp: LocalPeriodMap, *, height: int, width: int, keep: tuple[float, float] = (0.6, 1.6)
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective trend: robust (Theil–Sen) slopes of the log local period against ``y / H`` (pairs of
    windows in the same map column) and against ``x / W`` (pairs in the same map row).

    The local scale of a window is the mean of ``log(period / median)`` over its scalar period and its
    per-axis periods (when the map has them); only confident windows count (a measured
    period) whose ratio to the median is inside ``keep`` (windows at 2–4× the period are harmonics or
    doubled zones, not perspective). Returns ``(slope_y, slope_x)``, both ``(N,)``: 0.3 ≈ 30 % longer
    period at the bottom (right); NaN with fewer than 4 usable windows.
    """
    p = lp.period_px
    n, gh, gw = p.shape
    maps = [p] + [m for m in (lp.period_x_px, lp.period_y_px) if m is not None]
    logs, oks = [], []
    for m in maps:
        base = m.reshape(n, -1).nanmedian(dim=1).values[:, None, None]
        r = m / base
        ok = torch.isfinite(r) & (r >= keep[0]) & (r <= keep[1])
        logs.append(torch.where(ok, torch.log(r.clamp_min(1e-6)), torch.zeros_like(r)))
        oks.append(ok.to(p.dtype))
    cnt = torch.stack(oks).sum(0)
    scale = torch.stack(logs).sum(0) / cnt.clamp_min(1.0)
    w = (cnt > 0).to(p.dtype).reshape(n, -1)
    v = scale.reshape(n, -1)
    ty = (lp.center_y / height)[:, None].expand(gh, gw).reshape(-1)
    tx = (lp.center_x / width)[None, :].expand(gh, gw).reshape(-1)
    col = torch.arange(gw, device=p.device)[None, :].expand(gh, gw).reshape(-1)
    row = torch.arange(gh, device=p.device)[:, None].expand(gh, gw).reshape(-1)
    return theil_sen(ty[None], v, w, group=col), theil_sen(tx[None], v, w, group=row)


def strip_band_keys(x: torch.Tensor, valid: torch.Tensor, *, period_x_px: torch.Tensor | None = None,
                    period_y_px: torch.Tensor | None = None, strip_frac: float = 0.1
                    ) -> dict[str, torch.Tensor]:
    """Band keys from the spectral novelty of full-width and full-height strips
    (:func:`~trackdiag.functional.localmap.strip_novelty`); ``x`` ``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1.

    ``strip_novelty_x`` / ``strip_extent_x``: horizontal strips along x (a full-width band at twice the
    period along x adds novel frequencies to the strips it covers, over their whole width: extent near 1;
    a zone covers part of the width); ``strip_novelty_y`` / ``strip_extent_y``: vertical strips along y.
    ``strip_novelty_at_y`` / ``strip_novelty_at_x``: where the most novel strip lies (0..1 of the frame).
    With ``period_x_px`` / ``period_y_px`` (``(N,)``; ``tiling_metrics`` passes the wall's fundamental
    period, its densest rows, for both) only novel content below 0.75 × that frequency counts;
    ``strip_novelty_all_x`` / ``_y`` count every frequency.
    Strips are ``strip_frac`` of the side wide (a tenth: narrower than the narrowest generated band, wide
    enough to sample every row of a motif of up to about 5 % of the side; a size read from the lattice would
    need a host read inside ``tiling_metrics``). Every value ``(N,)``.
    """
    h, w = x.shape[-2:]
    sx = strip_novelty(x, valid, strip_px=max(8, round(strip_frac * h)), below_period_px=period_x_px)
    sy = strip_novelty(x.transpose(1, 2), valid.transpose(1, 2), strip_px=max(8, round(strip_frac * w)),
                       below_period_px=period_y_px)
    at_y = (sx["argmax"] * sx["strip_stride_px"] + sx["strip_px"] / 2) / h
    at_x = (sy["argmax"] * sy["strip_stride_px"] + sy["strip_px"] / 2) / w
    return {"strip_novelty_x": sx["novelty_max"], "strip_extent_x": sx["extent"], "strip_novelty_at_y": at_y,
            "strip_novelty_y": sy["novelty_max"], "strip_extent_y": sy["extent"], "strip_novelty_at_x": at_x,
            "strip_novelty_all_x": sx["novelty_all_max"], "strip_novelty_all_y": sy["novelty_all_max"]}


def scale_trend(x: torch.Tensor, weights: torch.Tensor, *, bins_per_octave: int = 32,
                max_octaves: float = 0.8,
                ds: int = 1) -> dict[str, torch.Tensor]:
    """Perspective from the change of scale between opposite thirds of the frame (``x`` ``N×H×W``,
    ``weights`` 0..1 ``N×H×W``).

    The left and right thirds (top and bottom thirds) are box-downsampled by ``ds`` (periods of 8 px stay 4
    px), and their whitened log-radial power profiles
    (:func:`~trackdiag.functional.localmap.log_radial_profile`) are cross-correlated along log frequency:
    every peak of a wall seen at an angle moves by the same factor, whichever of them is the fundamental, so
    the shift measures the scale change without picking a period (the local-period map's windows at 2–4×
    the period do not enter). ``scale_trend_x`` = ``ln(period right / period left) / (2/3)`` (the thirds'
    centres are 2/3 of the width apart), the slope of the log period against ``x / W`` like
    ``local_period_trend_x``; ``scale_trend_y`` likewise top → bottom; ``scale_corr_x`` / ``_y`` the
    correlation at the best shift (−1..1). Every value ``(N,)``.
    """
    h, w = x.shape[-2:]
    if ds > 1 and min(h, w) >= 64 * ds:
        hc, wc = ds * (h // ds), ds * (w // ds)
        x, weights = box_downsample(x[..., :hc, :wc], ds), box_downsample(weights[..., :hc, :wc], ds)
        h, w = x.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    k = int(round(max_octaves * bins_per_octave))
    n = x.shape[0]
    for name, a, b in (("x", (slice(None), slice(0, w // 3)), (slice(None), slice(w - w // 3, w))),
                       ("y", (slice(0, h // 3), slice(None)), (slice(h - h // 3, h), slice(None)))):
        # both thirds' profiles in one call (the same shape; each image's profile its own)
        pab = log_radial_profile(torch.cat([x[(Ellipsis, *a)], x[(Ellipsis, *b)]]),
                                 torch.cat([weights[(Ellipsis, *a)], weights[(Ellipsis, *b)]]),
                                 bins_per_octave=bins_per_octave)
        shift, corr = scale_shift(pab[:n], pab[n:], max_shift=k)
        # b at higher frequency (shift > 0) = shorter period on the right / bottom
        out[f"scale_trend_{name}"] = -shift / bins_per_octave * math.log(2.0) / (2.0 / 3.0)
        out[f"scale_corr_{name}"] = corr
    return out


def centre_period(lp: LocalPeriodMap, trend_y: torch.Tensor, trend_x: torch.Tensor, *, height: int,
                  width: int, keep: tuple[float, float] = (0.6, 1.6)) -> torch.Tensor:
    """The wall's period at the frame centre from the local-period map: every window's log period, moved to
    the centre along the trend (``trend_y``, ``trend_x``: ``(N,)`` slopes of :func:`period_trend`, NaN read
    as 0), and the median over the windows within ``keep`` × the map's median. ``(N,)``; NaN without
    windows."""
    p = lp.period_px
    n = p.shape[0]
    base = p.reshape(n, -1).nanmedian(dim=1).values[:, None, None]
    r = p / base
    ok = torch.isfinite(r) & (r >= keep[0]) & (r <= keep[1])
    cy = (lp.center_y / height - 0.5)[None, :, None]
    cx = (lp.center_x / width - 0.5)[None, None, :]
    sy = torch.nan_to_num(trend_y)[:, None, None]
    sx = torch.nan_to_num(trend_x)[:, None, None]
    lc = torch.log(p.clamp_min(1e-6)) - sy * cy - sx * cx
    lc = torch.where(ok, lc, torch.full_like(lc, float("nan")))
    return torch.exp(lc.reshape(n, -1).nanmedian(dim=1).values)


#: what a 2×-period region map reports (:func:`~trackdiag.functional.doubling.region_extent`'s reading)
_EXTENT_KEYS = ("excess_max", "area_frac", "row_level", "col_level", "row_even", "col_even", "row_end",
                "col_end", "row_full", "col_full", "row_full_peak", "col_full_peak")


def region_key_names(prefix: str) -> tuple[str, ...]:
    """The summary keys of a 2×-period region map (``prefix`` ``doubling`` or ``pair``): those that
    :func:`doubling_keys` / :func:`pair_doubling_keys` return."""
    return (*(f"{prefix}_{k}" for k in _EXTENT_KEYS), f"{prefix}_plain_corr")


def region_keys(prefix: str, ext: dict[str, torch.Tensor], plain_corr: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
    """``<prefix>_excess_max``, ``_area_frac``, ``_row_level``, ``_col_level``, ``_row_even``,
    ``_col_even``, ``_row_end``, ``_col_end`` from a :func:`~trackdiag.functional.doubling.region_extent`
    reading, and
    ``<prefix>_plain_corr``: the median over the windows of ``plain_corr`` (``N×gh×gw``). Each ``(N,)``."""
    out = {f"{prefix}_{k}": ext[k] for k in _EXTENT_KEYS}
    out[f"{prefix}_plain_corr"] = plain_corr.reshape(plain_corr.shape[0], -1).nanmedian(dim=1).values
    return out


def doubling_keys(x: torch.Tensor, valid: torch.Tensor, *, trend_x: torch.Tensor, trend_y: torch.Tensor,
                  window_frac: float = 0.25, overlap: int = 3, max_fft_px: int = 64, max_downsample: int = 2,
                  excess: float = 0.08) -> dict[str, torch.Tensor]:
    """The 2×-period region keys (``doubling_*``) of ``x`` (``N×H×W`` finite, ``valid`` ``N×H×W`` 0/1): the
    local-period map's windows matched against the wall's own spectrum and its rescaled copies
    (:func:`~trackdiag.functional.doubling.doubling_map`, the perspective ``trend_x`` / ``trend_y`` of
    :func:`period_trend` setting each window's expected scale), then the region's size and reach
    (:func:`~trackdiag.functional.doubling.region_extent`).

    Keys: ``doubling_excess_max``, ``doubling_area_frac``, ``doubling_row_level`` (a whole map row at twice
    the period: a full-width band), ``doubling_col_level`` (a whole column: a full-height band),
    ``doubling_row_even`` / ``doubling_col_even`` (that row's / column's level over its own peak: a band
    keeps its strength to the ends, a tall zone fades),
    ``doubling_plain_corr`` (median correlation of the windows with the wall's spectrum: how confident the
    wall's lattice is). Every value ``(N,)``.
    """
    h, w = x.shape[-2:]
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    dm = doubling_map(x, valid, window_px=win, stride_px=stride, ds=ds, trend_x=trend_x, trend_y=trend_y)
    return region_keys("doubling", region_extent(dm.margin, excess=excess), dm.plain_corr)


def _central_grads(x: torch.Tensor, vf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences ``(∂y, ∂x)`` of ``x`` (``N×H×W``), 0 where a neighbour is outside ``vf`` (0/1)."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[:, 1:-1] = (x[:, 2:] - x[:, :-2]) * 0.5 * (vf[:, 2:] * vf[:, :-2])
    gx[:, :, 1:-1] = (x[:, :, 2:] - x[:, :, :-2]) * 0.5 * (vf[:, :, 2:] * vf[:, :, :-2])
    return gy, gx


def edge_image(x: torch.Tensor, valid: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, *,
               length: int) -> torch.Tensor:
    """What the pair test reads: the wall's edges, which repeat where its cells' colours do not.

    Tiles, bricks and planks each have their own colour (and planks their own grain), so the raw wall
    repeats at one cell only as far as the grout, mortar and seams do (pair correlation 0.1-0.3 on planks):
    the edges repeat whatever the colours. A 2-D lattice: the gradient magnitude. A 1-D texture (``t2``
    NaN: planks) is its *edge comb*: the gradient's size along ``t1`` averaged over ``length`` px along the
    lines (y when ``t1`` is nearer x, else x), valid-weighted, where the grain between the seams averages
    out. ``x`` ``N×H×W``, ``valid`` ``N×H×W`` 0/1, ``t1`` / ``t2`` ``N×2`` (dy, dx) → ``N×H×W`` (0 outside
    ``valid``)."""
    return _edges(x, valid, t1, t2, length=length)[0]


def _edges(x: torch.Tensor, valid: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, *,
           length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`edge_image` (``N×H×W``) with the intermediates :func:`directional_edges` reads as well: the
    central differences ``(∂y, ∂x)`` and ``valid`` as 0/1 in ``x``'s dtype (computed once for both)."""
    vf = valid.to(x.dtype)
    gy, gx = _central_grads(x, vf)
    nrm = torch.sqrt(t1.square().sum(1)).clamp_min(1e-6)
    uy = torch.nan_to_num(t1[:, 0] / nrm, nan=0.0)[:, None, None]
    ux = torch.nan_to_num(t1[:, 1] / nrm, nan=1.0)[:, None, None]
    r = max(1, int(length)) // 2

    def along(a: torch.Tensor, dim: int) -> torch.Tensor:
        """Sums over ``2r + 1`` px along ``dim`` (zero outside), from one cumulative sum."""
        c = F.pad(a, (0, 0, r + 1, r) if dim == 1 else (r + 1, r)).cumsum(dim)
        hi = c.narrow(dim, 2 * r + 1, a.shape[dim])
        return hi - c.narrow(dim, 0, a.shape[dim])

    vert = ux.abs() >= uy.abs()  # lines run along y: average along y

    def comb(i: torch.Tensor | None) -> tuple[torch.Tensor]:
        """The edge comb of the images ``i`` (None: all)."""
        gi = ((uy * gy + ux * gx).abs() * vf) if i is None else (uy[i] * gy[i] + ux[i] * gx[i]).abs() * vf[i]
        vi, ve = (vf, vert) if i is None else (vf[i], vert[i])
        both = torch.stack([gi, vi], dim=1).flatten(0, 1)  # (2K)×H×W
        sy, sx = along(both, 1).unflatten(0, (-1, 2)), along(both, 2).unflatten(0, (-1, 2))
        sums = torch.where(ve[:, None], sy, sx)
        return (sums[:, 0] / sums[:, 1].clamp_min(1e-6) * vi,)

    one_d = ~torch.isfinite(t2).all(dim=1) & torch.isfinite(t1).all(dim=1)
    # the comb on the 1-D textures only (on the CPU; on a device on all, then masked)
    (cb,) = on_rows(one_d, comb, fills=(0.0,), like=x, shape=tuple(x.shape[1:]))
    return torch.where(one_d[:, None, None], cb, torch.sqrt(gy.square() + gx.square()) * vf), gy, gx, vf


def directional_edges(x: torch.Tensor, valid: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor,
                      vectors: torch.Tensor, *, length: int) -> torch.Tensor:
    """What each pair vector reads: the wall's edges *across* that vector, ``N×V×H×W``.

    A shift along ``v`` maps an edge that runs along ``v`` onto itself whatever the shift (a brick wall's
    bed joints under a horizontal shift, a tile wall's horizontal grout): with the gradient magnitude
    (:func:`edge_image`) those edges dominate the correlation at ``v`` and at ``2v`` alike, and a band where
    the period doubles along ``v`` — bricks twice as long, tiles twice as wide, which change only the
    joints across ``v`` — barely moves it. So a 2-D lattice's vector ``v`` (``vectors`` ``N×V×2`` (dy, dx)
    px) reads ``|v̂·∇x|``, the gradient along ``v``; a 1-D texture (``t2`` NaN) reads its edge comb
    (:func:`edge_image`, already the gradient along ``t₁``) for every vector. 0 outside ``valid``."""
    return _directional(_edges(x, valid, t1, t2, length=length), t1, t2, vectors)


def _directional(edges: tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor],
                 t1: torch.Tensor, t2: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """:func:`directional_edges` from :func:`_edges`' output (the edge image, ``∂y``, ``∂x``, ``valid``);
    the edge image may be None where the host has checked that no image is a 1-D texture (it is not read
    then)."""
    comb, gy, gx, vf = edges
    nrm = torch.sqrt(vectors.square().sum(-1)).clamp_min(1e-6)  # N×V
    uy = torch.nan_to_num(vectors[..., 0] / nrm, nan=0.0)[..., None, None]
    ux = torch.nan_to_num(vectors[..., 1] / nrm, nan=0.0)[..., None, None]
    # N×V×H×W, the same operations in place (one temporary instead of four)
    along = (uy * gy[:, None]).add_(ux * gx[:, None]).abs_().mul_(vf[:, None])
    one_d = ~torch.isfinite(t2).all(dim=1) & torch.isfinite(t1).all(dim=1)
    if order.host_ok(along) and not bool(one_d.any()):
        return along
    assert comb is not None, "the edge image is read on 1-D textures and off the host"
    return torch.where(one_d[:, None, None, None], comb[:, None], along)


def pair_doubling_keys(x: torch.Tensor, valid: torch.Tensor, *, t1: torch.Tensor, t2: torch.Tensor,
                       trend_x: torch.Tensor, trend_y: torch.Tensor, window_frac: float = 0.25,
                       overlap: int = 3, max_fft_px: int = 64, max_downsample: int = 2,
                       excess: float = 1.5) -> dict[str, torch.Tensor]:
    """The 2×-period region keys of the real-space pair test (``pair_*``): windows of half the local map's,
    each asked whether it repeats at twice a lattice vector of the wall (``t1``, ``t2``: ``N×2`` (dy, dx)
    px at the frame centre, :func:`~trackdiag.functional.lattice.real_basis`) but not at the vector itself
    (:func:`~trackdiag.functional.doubling.pair_doubling_map`), then the region's size and reach
    (:func:`~trackdiag.functional.doubling.region_extent`, the same reading as :func:`doubling_keys`).

    Keys: ``pair_excess_max``, ``pair_area_frac``, ``pair_row_level``, ``pair_col_level``,
    ``pair_row_even``, ``pair_col_even``, ``pair_plain_corr`` (median over the windows of the best
    correlation at a lattice vector: how well the wall repeats its lattice). Every value ``(N,)``.
    """
    h, w = x.shape[-2:]
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    vectors = lattice_shift_vectors(t1, t2)
    # Eighth sitting: on a wall without a perspective trend (the expected scale exactly 1 everywhere: most
    # fronto-parallel walls) each vector reads the edges across it (directional_edges), the basis vectors
    # are also read at 4v, the wall's level is read below the 40th percentile and a region's reach on each
    # hypothesis' own map (hypotheses_extent). A wall with a trend reads the pair test as before (its
    # expected scale is a fitted trend whose residue ramps across the frame: levels read at the ramp's low
    # end, and more hypotheses, turned that ramp into whole lines on clean angled walls).
    flat = (torch.nan_to_num(trend_x, nan=0.0) == 0) & (torch.nan_to_num(trend_y, nan=0.0) == 0)
    length = max(3, win // 4)
    # the wall's edges (edge_image): its cells' colours differ, its grout, mortar and seams repeat
    # (the edge image and the gradients computed once for both readings; on the host, a reading no image
    # takes is not computed: torch.where with a constant condition returns the other operand exactly)
    nv = vectors.shape[1]
    host = order.host_ok(x)
    one_d = ~torch.isfinite(t2).all(dim=1) & torch.isfinite(t1).all(dim=1)
    if host and bool(flat.all()) and not bool(one_d.any()):
        # every image reads the edges across each vector and none is a 1-D texture: the edge image (the
        # gradient magnitude, the edge comb) is not read, only the gradients (computed as _edges does)
        vf = valid.to(x.dtype)
        e = _directional((None, *_central_grads(x, vf), vf), t1, t2, vectors)
    else:
        edges = _edges(x, valid, t1, t2, length=length)
        if host and not bool(flat.any()):
            e = edges[0][:, None].expand(-1, nv, -1, -1)
        elif host and bool(flat.all()):
            e = _directional(edges, t1, t2, vectors)
        else:
            e = torch.where(flat[:, None, None, None], _directional(edges, t1, t2, vectors),
                            edges[0][:, None].expand(-1, nv, -1, -1))
    # half the local map's windows (same downsampling): the pair test needs no spectral resolution, and a
    # full-width band is often a third of a window tall
    pm = pair_doubling_map(e, valid, vectors, window_px=win // 2, stride_px=stride // 2,
                           ds=ds, trend_x=trend_x, trend_y=trend_y)
    ext = region_extent(pm.margin, excess=excess)
    if pm.hypotheses is not None:
        new = hypotheses_extent(pm.hypotheses, excess=excess)
        ext = {k: torch.where(flat, new[k], ext[k]) for k in ext}
    return region_keys("pair", ext, pm.plain_corr)


def hypotheses_extent(hyp: torch.Tensor, *, excess: float) -> dict[str, torch.Tensor]:
    """:func:`~trackdiag.functional.doubling.region_extent` of each hypothesis' map of the pair test
    (``hyp`` ``H×N×h×w``, the wall's level read below the 40th percentile), then per image the largest over
    the hypotheses: ``excess_max``, ``area_frac``; ``row_level`` / ``col_level`` with the evenness, end
    flag and long-line reading (``*_full``, ``*_full_peak``) of the hypothesis that gives it. Eighth
    sitting: read on the per-window best over the
    hypotheses, a full-width band lost its line at the frame's sides, where the decisive (long) vector's
    pairs leave the frame and only weaker hypotheses are measured."""
    h_, n = hyp.shape[:2]
    ext = region_extent(hyp.flatten(0, 1), excess=excess, lower=True)
    ninf = float("-inf")

    def top(key: str) -> tuple[torch.Tensor, torch.Tensor]:
        v = ext[key].reshape(h_, n)
        best, at = torch.where(torch.isfinite(v), v, torch.full_like(v, ninf)).max(dim=0)
        return torch.where(torch.isfinite(best), best, torch.full_like(best, float("nan"))), at

    out = {"excess_max": top("excess_max")[0], "area_frac": top("area_frac")[0]}
    for line in ("row", "col"):
        lvl, at = top(f"{line}_level")
        out[f"{line}_level"] = lvl
        for k in (f"{line}_even", f"{line}_end", f"{line}_full", f"{line}_full_peak"):
            g = ext[k].reshape(h_, n).gather(0, at[None])[0]
            out[k] = torch.where(torch.isfinite(lvl), g, torch.full_like(g, float("nan")))
    return out
