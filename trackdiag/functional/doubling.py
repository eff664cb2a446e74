"""Where the wall repeats at twice its period: windows matched against the wall's own spectrum, rescaled.

A region rendered at twice the period along x (y, or both) has, at spatial frequency ``κ``, what the rest of
the wall has at ``2κ`` along that axis. So every window's whitened log power spectrum is correlated with the
wall's *reference* spectrum (the median over the windows) sampled at ``s·κ`` (the window's expected scale
``s``: 1 on a fronto-parallel wall, the perspective trend elsewhere) and at ``(2s_x, s_y)``, ``(s_x, 2s_y)``,
``(2s_x, 2s_y)``; each scale is tried at ×0.9, ×1, ×1.1 (the trend's error). The window's *margin* is the
best doubled correlation minus the best plain one: low (negative) on a wall that repeats its reference,
higher inside a 2×-period region. Margins are read against the image's own median (a doubled region
covers a minority of the wall), so that textures whose spectrum matches its doubled self moderately well
(every lattice does at its harmonics) are not flagged.

Pure batched functions (no host synchronisation); the windows are those of the local-period map
(:func:`trackdiag.analyzers.bands.local_geometry`).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import order
from .order import masked_median
from .rows import on_rows
from .spectral import abs2, box_downsample, hann2d

__all__ = ["DoublingMap", "PairMap", "doubling_map", "lattice_shift_vectors", "pair_doubling_map",
           "region_extent"]


class DoublingMap(NamedTuple):
    """Result of :func:`doubling_map`: ``margin`` ``N×h×w`` (best doubled minus best plain correlation, NaN
    where a window is mostly outside the wall), ``plain_corr`` ``N×h×w`` (the plain correlation: how well a
    window repeats the wall's spectrum), ``center_y`` ``(h,)``, ``center_x`` ``(w,)`` (original px)."""

    margin: torch.Tensor
    plain_corr: torch.Tensor
    center_y: torch.Tensor
    center_x: torch.Tensor


_DOUBLED = ((2.0, 1.0), (1.0, 2.0), (2.0, 2.0))
_JITTER = (0.9, 1.0, 1.1)
#: a *long* map line (``region_extent``'s ``row_full`` / ``col_full``): its measured windows span at least
#: this share of the map's measured extent (tenth sitting, issue 11: zones read as bands fill only lines cut
#: short by a mask hole; see docs/tiling.md §6)
FULL_LINE_SPAN = 0.8


@functools.lru_cache(maxsize=16)
def _layout(k: int, device: torch.device, dtype: torch.dtype
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                       torch.Tensor, torch.Tensor]:
    """The constants of a ``k×k`` window's centred spectrum on its *half layout*, the centred rows
    ``0 … c`` (``c = k//2``: the frequencies ``κy ≤ 0``; the others mirror them, ``P(−κ) = P(κ)``), ``h₂ =
    c + 1`` rows of ``k`` (cached: read only): the Hann taper ``k×k``, :func:`_centred_index` of the rows
    ``0 … c + 1`` (what the 3×3 smoothing of the rows ``0 … c`` reads; ``≤ k`` rows), how often the full
    layout reads each half-spectrum bin (``(k·(k//2+1),)``, ``dtype``), each half-layout bin's rounded ring
    ``(h₂·k,)`` (long, clamped at ``k//2 + 1``), how many bins of the full layout each half-layout bin
    stands for ``h₂×k`` (``dtype``: 1 on the rows ``0`` of an even ``k`` (its Nyquist row) and ``c``, which
    are their own mirror images, 2 elsewhere), the rings' bin counts over the full layout ``(k//2 + 2,)``,
    each half-layout bin's radius ``h₂×k`` (``dtype``) and the ring means' weights ``(r·k)×(k//2 + 2)``
    (``r`` the rows the smoothing reads: each bin's full-layout count over its ring's, 0 on the row ``c + 1``;
    the ring means as one matrix product)."""
    idx = _centred_index(k, device)
    mult = torch.bincount(idx, minlength=k * (k // 2 + 1)).to(dtype)
    c = k // 2
    o = torch.arange(k, device=device, dtype=dtype) - c
    radius = torch.sqrt(o[:c + 1, None].square() + o[None, :].square())
    ring = radius.round().long().clamp(max=c + 1).flatten()
    rw = torch.full((c + 1, 1), 2.0, device=device, dtype=dtype)
    rw[c] = 1.0
    if k % 2 == 0:
        rw[0] = 1.0
    rw = rw.expand(c + 1, k).contiguous()
    nring = torch.zeros(c + 2, device=device, dtype=dtype).index_add_(0, ring, rw.flatten())
    rows = min(c + 2, k)
    avg = torch.zeros(rows * k, c + 2, device=device, dtype=dtype)
    avg[torch.arange((c + 1) * k, device=device), ring] = rw.flatten() / nring.clamp_min(1.0)[ring]
    return (hann2d(k, k, device=device, dtype=dtype), idx[:rows * k], mult, ring, rw, nring, radius, avg)


def _centred_index(k: int, device: torch.device) -> torch.Tensor:
    """``k·k`` indices into a flattened ``k×(k//2+1)`` ``rfft2`` power that give the full, fftshifted
    ``k×k`` power of a real window (the missing half by Hermitian symmetry, ``P(-κ) = P(κ)``)."""
    c, half = k // 2, k // 2 + 1
    i = torch.arange(k, device=device)
    ky = ((i - c) % k)[:, None].expand(k, k)
    kx = ((i - c) % k)[None, :].expand(k, k)
    mirror = kx > k // 2
    ry = torch.where(mirror, (-ky) % k, ky)
    rx = torch.where(mirror, k - kx, kx)
    return (ry * half + rx).reshape(-1)


def _box3(a: torch.Tensor) -> torch.Tensor:
    """3×3 moving mean over the last two axes of ``M×k×k``, shrinking at the borders (as ``avg_pool2d``
    with ``count_include_pad=False``), in two separable passes of shifted adds."""
    k1, k2 = a.shape[-2:]
    s = a.clone()
    s[..., 1:, :] += a[..., :-1, :]
    s[..., :-1, :] += a[..., 1:, :]
    t = s.clone()
    t[..., :, 1:] += s[..., :, :-1]
    t[..., :, :-1] += s[..., :, 1:]

    def count(n: int) -> torch.Tensor:
        cnt = torch.full((n,), 3.0, device=a.device, dtype=a.dtype)
        cnt[0] = cnt[-1] = 2.0 if n > 1 else 1.0
        return cnt

    return t / (count(k1)[:, None] * count(k2)[None, :])


def _whitened_log_spectra(windows: torch.Tensor, vpatch: torch.Tensor) -> torch.Tensor:
    """``M×k×k`` windows (any leading axes, ``M`` in all; ``vpatch`` 0/1 validity) → ``M×(c+1)×k`` centred
    (fftshifted) log power spectra on the half layout (:func:`_layout`: the rows ``0 … c``, ``c = k//2``; the
    rest mirrors them), 3×3 smoothed, minus each window's own ring mean (so that peaks, not the spectral
    slope, carry them; each bin weighted by the full-layout bins it stands for).
    One real FFT per window."""
    k = windows.shape[-1]
    m = windows[..., 0, 0].numel()
    dt, dev = windows.dtype, windows.device
    # (strided window views are read as they are: each product below writes its own contiguous copy)
    hann, idx, mult, ring, _, _, _, avg = _layout(k, dev, dt)
    # every pixel valid (read on the host only): the taper itself, one view (no weight pass)
    ones = order.host_ok(vpatch) and bool(vpatch.amin() == 1)
    wts = hann.expand(vpatch.shape) if ones else vpatch * hann
    # the windows less their weighted mean, tapered, as x·w − mean·w (one product for both)
    xw = (windows * wts).reshape(m, k, k)
    wsum = hann.sum() if ones else wts.sum((-2, -1)).reshape(m, 1, 1)
    mean = xw.sum((-2, -1), keepdim=True) / wsum.clamp_min(1e-9)
    xw = xw.addcmul_(mean, wts.reshape(m, k, k) if not ones else hann, value=-1.0)
    pr = abs2(torch.fft.rfft2(xw)).reshape(m, -1)  # M×(k·(k//2+1))
    # the log on the half spectrum, then its centred rows 0 … c (+ the row the smoothing of row c reads;
    # the mean power over the full layout: each half bin weighted by how often the full layout reads it)
    eps = 1e-6 * (pr @ mult)[:, None] / (k * k) + torch.finfo(dt).tiny
    h2 = k // 2 + 1
    lp = _box3(torch.log(pr + eps).index_select(1, idx).reshape(m, -1, k))  # M×r×k
    ring_mean = lp.reshape(m, -1) @ avg  # M×(c+2): each ring's mean over the full layout
    return lp[:, :h2] - ring_mean.index_select(1, ring).reshape(m, h2, k)


def _masked_downsample(x: torch.Tensor, valid: torch.Tensor, ds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (``N×H×W``) zeroed outside ``valid`` (0/1) and, for ``ds > 1``, box-downsampled by ``ds`` as a
    valid-weighted mean; returns ``(x0, vf)``: the image and its 0/1 validity (≥ half valid)."""
    h, w = x.shape[-2:]
    vf = valid.to(x.dtype)
    x0 = x * vf
    if ds > 1:
        hc, wc = ds * (h // ds), ds * (w // ds)
        vs = box_downsample(vf[..., :hc, :wc], ds)
        x0 = box_downsample(x0[..., :hc, :wc], ds) / vs.clamp_min(1e-6)
        vf = (vs >= 0.5).to(x.dtype)
        x0 = x0 * vf
    return x0, vf


def _masked_downsample_shared(x: torch.Tensor, valid: torch.Tensor, ds: int
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_masked_downsample` of ``V`` images sharing one validity: ``x`` ``N×V×H×W``, ``valid``
    ``N×H×W`` → ``(N×V×h×w, N×h×w)``, the validity downsampled once (the same values as downsampling it
    with each image: every step is element-wise or a block mean of the same pixels)."""
    n, nv, h, w = x.shape
    vf = valid.to(x.dtype)
    x0 = x * vf[:, None]
    if ds > 1:
        hc, wc = ds * (h // ds), ds * (w // ds)
        vs = box_downsample(vf[..., :hc, :wc], ds)
        x0 = box_downsample(x0[..., :hc, :wc].flatten(0, 1), ds).unflatten(0, (n, nv))
        x0 = x0 / vs.clamp_min(1e-6)[:, None]
        vf = (vs >= 0.5).to(x.dtype)
        x0 = x0 * vf[:, None]
    return x0, vf


def doubling_map(x: torch.Tensor, valid: torch.Tensor, *, window_px: int, stride_px: int, ds: int,
                 trend_x: torch.Tensor | None = None, trend_y: torch.Tensor | None = None,
                 min_valid_frac: float = 0.9) -> DoublingMap:
    """Doubling margins of the windows of ``x`` (``N×H×W`` finite luminance, ``valid`` ``N×H×W`` 0/1).

    ``window_px``, ``stride_px`` (original px) and ``ds`` (box downsampling) as the local-period map's
    :func:`~trackdiag.analyzers.bands.local_geometry`. ``trend_x`` / ``trend_y`` (``(N,)``, NaN read as 0):
    slopes of the log local period against ``x / W`` and ``y / H`` (perspective), which set each window's
    expected scale against the reference. Windows with less than ``min_valid_frac`` valid pixels are NaN.
    """
    n, h, w = x.shape
    if n > 1 and order.host_ok(x):
        # on the host one image at a time: its windows' spectra stay in the cache through the dozen passes
        # over them (every step is per image; the same values)
        parts = [doubling_map(x[i:i + 1], valid[i:i + 1], window_px=window_px, stride_px=stride_px, ds=ds,
                              trend_x=None if trend_x is None else trend_x[i:i + 1],
                              trend_y=None if trend_y is None else trend_y[i:i + 1],
                              min_valid_frac=min_valid_frac) for i in range(n)]
        return DoublingMap(torch.cat([p.margin for p in parts]), torch.cat([p.plain_corr for p in parts]),
                           parts[0].center_y, parts[0].center_x)
    dt, dev = x.dtype, x.device
    x0, vf = _masked_downsample(x, valid, ds)
    k, st = window_px // ds, max(1, stride_px // ds)
    hh, ww = x0.shape[-2:]
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // 3)
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    win = x0.unfold(1, k, st).unfold(2, k, st)  # N×gh×gw×k×k strided views (no copy)
    vpatch = vf.unfold(1, k, st).unfold(2, k, st)
    ok = (vpatch.mean((-2, -1)) >= min_valid_frac).reshape(n, gh * gw)
    c = k // 2
    h2 = c + 1
    z = _whitened_log_spectra(win, vpatch).reshape(n, gh * gw, h2, k)  # the half layout (rows 0 … c)
    nan = float("nan")
    cy = (torch.arange(gh, device=dev, dtype=dt) * st + k / 2.0) * ds
    cx = (torch.arange(gw, device=dev, dtype=dt) * st + k / 2.0) * ds
    zero = torch.zeros(n, device=dev, dtype=dt)
    tx = zero if trend_x is None else torch.nan_to_num(trend_x.to(dt), nan=0.0)
    ty = zero if trend_y is None else torch.nan_to_num(trend_y.to(dt), nan=0.0)
    # expected scale of each window against the reference (the frame centre's)
    log_s = (tx[:, None, None] * (cx / w - 0.5)[None, None, :]
             + ty[:, None, None] * (cy / h - 0.5)[None, :, None])
    s = torch.exp(log_s).reshape(n, gh * gw)
    o = torch.arange(k, device=dev, dtype=dt) - c
    # every window brought to the centre's scale (its spectrum read at κ/s), so that one set of templates
    # serves all windows; the reference is the median of those (an angled wall's spectrum is not smeared
    # by its range of local periods)
    # (the half layout's rows normalised over its c + 1 rows: they read the rows 0 … c only)
    pos = c + o[None, None, :] / s[..., None]  # N×P×k
    u = pos / max(k - 1, 1) * 2 - 1
    uy = pos[..., :h2] / max(c, 1) * 2 - 1
    zn = _rescaled(z, u, uy, flat=(tx == 0) & (ty == 0))
    ref = masked_median(zn, ok)
    ref = ref.nan_to_num(0.0)  # N×h2×k
    # where a window's rescaled spectrum is measured: inside the window (κ/s within it) and off its centre
    inside = (u.abs() <= 1.0)  # N×P×k
    radius = _layout(k, dev, dt)[6]
    vw = ((inside[..., :h2, None] & inside[..., None, :]) & (radius >= 2.0 * s[..., None, None]))
    vw = vw.to(dt).reshape(n, gh * gw, h2 * k)
    corr = _template_corr(zn.reshape(n, gh * gw, h2 * k) * vw, vw, ref, k)  # N×P×T
    nj = len(_JITTER)
    plain = corr[..., :nj].amax(-1)
    doubled = corr[..., nj:].amax(-1)
    full = torch.full_like(plain, nan)
    margin = torch.where(ok, doubled - plain, full).reshape(n, gh, gw)
    return DoublingMap(margin, torch.where(ok, plain, full).reshape(n, gh, gw), cy, cx)


def _grid2(u: torch.Tensor, uy: torch.Tensor) -> torch.Tensor:
    """``...×k`` normalised x coordinates and ``...×h₂`` y coordinates → the ``...×h₂×k×2`` (x, y) sampling
    grid."""
    k, h2 = u.shape[-1], uy.shape[-1]
    lead = tuple(u.shape[:-1])
    return torch.stack([u[..., None, :].expand(*lead, h2, k), uy[..., :, None].expand(*lead, h2, k)], -1)


def _rescaled(z: torch.Tensor, u: torch.Tensor, uy: torch.Tensor, *, flat: torch.Tensor) -> torch.Tensor:
    """The windows' half-layout spectra ``z`` (``N×P×h₂×k``) read at the normalised coordinates ``u``
    (``N×P×k``, along x) and ``uy`` (``N×P×h₂``, along y), bilinear (``grid_sample``, ``align_corners``):
    ``N×P×h₂×k``.

    ``flat`` (``(N,)`` bool): the images whose expected scale is exactly 1 everywhere (no trend), so that
    every window reads the same grid. On the host those images' windows are sampled as the channels of one
    image (one grid per image instead of one per window: the same interpolation weights and values, without
    the ``N×P×h₂×k×2`` grid); the others (and every image on a device) one grid per window."""
    n, p, h2, k = z.shape
    if not order.host_ok(z) or not bool(flat.any()):
        return F.grid_sample(z.reshape(n * p, 1, h2, k), _grid2(u, uy).reshape(n * p, h2, k, 2),
                             align_corners=True).reshape(n, p, h2, k)
    zn = torch.empty_like(z)
    fi = flat.nonzero()[:, 0]
    zn[fi] = F.grid_sample(z[fi], _grid2(u[fi, 0], uy[fi, 0]), align_corners=True)
    ri = (~flat).nonzero()[:, 0]
    if ri.numel():
        m = ri.numel()
        zn[ri] = F.grid_sample(z[ri].reshape(m * p, 1, h2, k), _grid2(u[ri], uy[ri]).reshape(m * p, h2, k, 2),
                               align_corners=True).reshape(m, p, h2, k)
    return zn


@functools.lru_cache(maxsize=8)
def _factors(dev: torch.device, dt: torch.dtype) -> torch.Tensor:
    """``T×2`` (x, y) scale factors of the templates: the plain jitters first, then every doubled direction
    at every jitter (cached: read only)."""
    rows = [(j, j) for j in _JITTER] + [(fx * j, fy * j) for fx, fy in _DOUBLED for j in _JITTER]
    return torch.tensor(rows, device=dev, dtype=dt)


@functools.lru_cache(maxsize=16)
def _template_geometry(k: int, dev: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the templates of :func:`_factors` (``T``) are inside a ``k×k`` frame on its half layout (the
    rows ``0 … c``, :func:`_layout`), each bin weighted by the full-layout bins it stands for (``T×(h₂·k)``,
    0 outside), and their sampling grid of the half-layout reference (``1×(T·h₂)×k×2``; cached: read only)."""
    factors = _factors(dev, dt)
    t = factors.shape[0]
    c = k // 2
    h2 = c + 1
    o = torch.arange(k, device=dev, dtype=dt) - c
    ux = c + factors[:, :1] * o  # T×k
    uy = c + factors[:, 1:] * o[:h2]  # T×h2 (≤ c: the half layout's rows)
    m_t = (((uy >= 0) & (uy <= k - 1))[:, :, None] & ((ux >= 0) & (ux <= k - 1))[:, None, :])
    grid = torch.stack([(ux / max(k - 1, 1) * 2 - 1)[:, None, :].expand(t, h2, k),
                        (uy / max(c, 1) * 2 - 1)[:, :, None].expand(t, h2, k)], dim=-1)
    rw = _layout(k, dev, dt)[4]
    return (m_t.to(dt) * rw).reshape(t, h2 * k), grid.reshape(1, t * h2, k, 2)


def _template_corr(zv: torch.Tensor, vw: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """Pearson correlation of every window with every template, over both masks, by matrix products.

    ``zv`` ``N×P×(h₂·k)``: the windows' spectra at the centre's scale on the half layout (:func:`_layout`),
    zero outside ``vw`` (``N×P×(h₂·k)`` 0/1, where each is measured); ``ref`` ``N×h₂×k``: the reference
    spectrum (centred, fftshifted, half layout); the template ``t`` is ``ref`` read at ``(f_x·κx, f_y·κy)``
    inside the frame (``f``: :func:`_factors`). Returns ``N×P×T``. Each half-layout bin counts for the
    full-layout bins it stands for (the template masks' weights: the sums over the full layout, whose
    other half mirrors this one up to the 3×3 smoothing and the rescaling at the Nyquist row and column).
    With ``M = vw·m_t`` the joint (weighted) mask, the correlation needs only the sums ``Σ M z r``,
    ``Σ M z``, ``Σ M z²`` (products with the templates) and ``Σ M r``, ``Σ M r²``, ``Σ M`` (products of
    ``vw`` with them): six matrix products instead of one resampling and reduction per window and template.
    """
    n, _, kk = zv.shape
    h2 = ref.shape[-2]
    m_t, grid = _template_geometry(k, ref.device, ref.dtype)
    t = m_t.shape[0]
    rs = F.grid_sample(ref[:, None], grid.expand(n, t * h2, k, 2), align_corners=True).reshape(n, t, kk)
    rm = rs * m_t  # N×T×kk
    s_zr, s_z = (zv @ torch.cat([rm, m_t[None].expand(n, t, kk)], 1).transpose(1, 2)).split(t, -1)
    s_zz = (zv * zv) @ m_t.T
    tmpl = torch.cat([rm, rm * rs, m_t[None].expand(n, t, kk)], 1)  # N×3T×kk
    s_r, s_rr, cnt = (vw @ tmpl.transpose(1, 2)).split(t, -1)
    cnt = cnt.clamp_min(1.0)
    cov = s_zr - s_z * s_r / cnt
    var_z = (s_zz - s_z.square() / cnt).clamp_min(0.0)
    var_r = (s_rr - s_r.square() / cnt).clamp_min(0.0)
    return cov / torch.sqrt(var_z * var_r).clamp_min(1e-9)


def _nan_box(v: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """NaN-aware ``kh×kw`` moving mean of ``N×h×w`` (NaN stays NaN)."""
    ok = torch.isfinite(v)
    val = torch.where(ok, v, torch.zeros_like(v))[:, None]
    cnt = ok.to(v.dtype)[:, None]
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    s = F.avg_pool2d(F.pad(val, pad), (kh, kw), 1)
    c = F.avg_pool2d(F.pad(cnt, pad), (kh, kw), 1)
    return torch.where(ok, s[:, 0] / c[:, 0].clamp_min(1e-9), v)


def region_extent(margin: torch.Tensor, *, excess: float, line_quantile: float = 0.0,
                  min_line: int = 3, min_span: float = 0.4, full_span: float = FULL_LINE_SPAN,
                  lower: bool = False) -> dict[str, torch.Tensor]:
    """The 2×-period region of a :class:`DoublingMap` margin map (``N×h×w``) and how far it reaches.

    The margin minus the image's median margin (with ``lower``, the wall's level read below the 40th
    percentile, :func:`_lower_location_scale`) is the *excess*. ``excess_max``: the largest excess after a
    3×3 mean (a region is larger than one window); ``area_frac``: the share of measured windows whose
    smoothed excess is above ``excess``. Full width / height: ``row_level`` is, over the map rows (with at
    least ``min_line`` measured windows, whose first and last measured windows span at least ``min_span`` of
    the map's measured width), the largest ``line_quantile`` quantile of the excess along the row
    (after a 3-tap mean across rows): high only where a whole row of windows is at twice the period, as in a
    full-width band, not where a zone covers part of it; ``col_level`` likewise for columns. ``row_even`` /
    ``col_even``: that line's level over its largest excess (near 1 when the region keeps its strength to
    the ends of the measured line, as a band does; a zone that only fills a short column of measured windows
    fades towards its ends). ``row_end`` / ``col_end``: 1 where that line is the first or last map line with
    enough windows, else 0 (on a wall seen at an angle the expected scale is a fitted trend, whose residue
    grows towards one end of the frame: a ramp peaks on an end line, a band is a bump inside).
    ``row_full`` / ``col_full``: the same level over the lines whose measured windows span at least
    ``full_span`` of the map's measured extent only (a band reaches from one side of the wall to the other
    in most of its lines; a zone fills a whole line only where a mask hole — a frame, the furniture, the
    ceiling — cuts that line short, and the lines of the zone that run on past it fall back to the wall's
    level; NaN where no line is that long); ``row_full_peak`` / ``col_full_peak``: the largest excess on
    those long lines (whether the region reaches a long line at all). Every value ``(N,)`` (NaN without
    measured windows).
    """
    n, gh, gw = margin.shape
    flat = margin.reshape(n, -1)
    # lower: the wall's level read below the 40th percentile (a band may cover nearly half the windows)
    med = _lower_location_scale(flat)[0] if lower else flat.nanmedian(dim=1).values
    e = margin - med[:, None, None]
    ok = torch.isfinite(e)
    es = _nan_box(e, 3, 3)
    nan = torch.full_like(med, float("nan"))
    has = ok.reshape(n, -1).any(dim=1)
    emax = torch.where(ok, es, torch.full_like(es, -math.inf)).reshape(n, -1).amax(dim=1)
    hit = (ok & (es > excess)).to(e.dtype)
    area = hit.sum((1, 2)) / ok.to(e.dtype).sum((1, 2)).clamp_min(1.0)

    def level(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Largest low quantile along the last axis over lines with enough windows, that line's quantile
        over its own largest value (its evenness), 1 where that line is the first or last line with
        enough windows (0 otherwise), the largest quantile over the lines spanning ``full_span`` of the
        measured extent and the largest value on those lines: ``N×L×M`` → five ``(N,)``."""
        fin = torch.isfinite(a)
        idx = torch.arange(a.shape[-1], device=a.device)
        first = torch.where(fin, idx, a.shape[-1]).amin(-1)  # N×L
        last = torch.where(fin, idx, -1).amax(-1)
        span = (last - first + 1).clamp_min(0)
        any_ = fin.any(1)  # N×M: measured somewhere along the other axis
        full = (torch.where(any_, idx, -1).amax(-1) - torch.where(any_, idx, a.shape[-1]).amin(-1) + 1)
        # a line must reach across most of the map's measured extent (a few windows between mask holes
        # that a zone fills are not a full-width line)
        enough = (fin.sum(-1) >= min_line) & (span >= min_span * full.clamp_min(1)[:, None])
        long_ = enough & (span >= full_span * full.clamp_min(1)[:, None])
        if line_quantile == 0.0:  # the lowest measured value (nanquantile's, without its sort)
            q0 = torch.where(fin, a, math.inf).amin(dim=-1)
        else:
            q0 = torch.nanquantile(a, line_quantile, dim=-1)
        q = torch.where(enough & torch.isfinite(q0), q0, torch.full_like(q0, -math.inf))
        qf = torch.where(long_ & torch.isfinite(q0), q0, torch.full_like(q0, -math.inf)).amax(dim=-1)
        top = torch.where(torch.isfinite(a), a, torch.full_like(a, -math.inf)).amax(dim=-1)  # N×L
        best, at = q.max(dim=-1)
        peak = top.gather(-1, at[:, None])[:, 0]
        lines = torch.arange(q.shape[-1], device=a.device)
        qual = torch.isfinite(q)
        lo = torch.where(qual, lines, q.shape[-1]).amin(-1)
        hi = torch.where(qual, lines, -1).amax(-1)
        end = ((at == lo) | (at == hi)).to(a.dtype)
        pf = torch.where(long_, top, torch.full_like(top, -math.inf)).amax(dim=-1)
        return best, best / peak.clamp_min(1e-6), end, qf, pf

    row, row_even, row_end, row_full, row_fpk = level(_nan_box(e, 3, 1))  # rows: N×gh×gw, quantile along x
    col, col_even, col_end, col_full, col_fpk = level(_nan_box(e, 1, 3).transpose(1, 2))
    def fix(t: torch.Tensor) -> torch.Tensor:
        return torch.where(has & torch.isfinite(t), t, nan)

    return {"excess_max": fix(emax), "area_frac": torch.where(has, area, nan), "row_level": fix(row),
            "col_level": fix(col), "row_even": fix(row_even), "col_even": fix(col_even),
            "row_end": fix(torch.where(torch.isfinite(row), row_end, nan)),
            "col_end": fix(torch.where(torch.isfinite(col), col_end, nan)),
            "row_full": fix(row_full), "col_full": fix(col_full), "row_full_peak": fix(row_fpk),
            "col_full_peak": fix(col_fpk)}


class PairMap(NamedTuple):
    """Result of :func:`pair_doubling_map`: ``margin`` ``N×h×w`` (per window, the largest over the
    hypotheses of the pair correlation at twice a lattice vector minus that at the vector itself, each
    hypothesis less its own image median; NaN where a window is mostly outside the wall), ``plain_corr``
    ``N×h×w`` (the correlation at the lattice vectors themselves, best vector: how well the window repeats
    the wall's lattice), ``center_y`` ``(h,)``, ``center_x`` ``(w,)`` (original px)."""

    margin: torch.Tensor
    plain_corr: torch.Tensor
    center_y: torch.Tensor
    center_x: torch.Tensor
    hypotheses: torch.Tensor | None = None


def lattice_shift_vectors(t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """``N×V×2`` (dy, dx) px: the lattice vectors a region at twice the period along one lattice direction
    stops repeating at — ``t₁``, ``t₂``, ``t₁ + t₂``, ``t₁ − t₂`` (a running bond's bed and head repeats
    are the sum and difference of its reduced basis) — from :func:`~.lattice.real_basis` (``N×2`` each;
    ``t₂`` NaN on a 1-D texture: its entries NaN, ignored downstream)."""
    return torch.stack([t1, t2, t1 + t2, t1 - t2], dim=1)


def pair_doubling_map(x: torch.Tensor, valid: torch.Tensor, vectors: torch.Tensor, *, window_px: int,
                      stride_px: int, ds: int, trend_x: torch.Tensor | None = None,
                      trend_y: torch.Tensor | None = None, min_valid_frac: float = 0.5,
                      floor: float = 0.08) -> PairMap:
    """Where the wall repeats at twice a lattice vector but not at the vector itself (real space).

    A region rendered at twice the period along a lattice direction ``v`` repeats at ``2v`` and not at
    ``v``, whatever the period: no spectral resolution is needed (the windows' spectra cannot resolve a
    doubled period of a third to half a window, nor planks' one-line comb under the grain). For each
    vector ``v`` of ``vectors`` (``N×V×2`` (dy, dx) px at the frame centre; NaN rows ignored) and each
    window of the local map, the Pearson correlation of the pixel pairs ``(p − d/2, p + d/2)`` at ``d = v``
    and ``d = 2v`` (``d`` scaled by the window's expected scale ``s`` from ``trend_x`` / ``trend_y``, as in
    :func:`doubling_map`); the hypothesis' margin is ``corr(2v) − corr(v)`` less its image median, and
    also ``corr(v) − corr(v/2)`` less its median (a lattice read at twice its vector, locked on a large
    doubled region: the rest of the wall then repeats at ``v/2``). ``margin`` is the largest over the
    hypotheses; ``hypotheses`` (``H×N×h×w``) keeps each hypothesis' map (a region's reach is read on each:
    near the frame's sides and mask holes a long vector's pairs leave the wall, and the best over the
    others there is not the same reading). On a wall without a region, every lattice vector and its
    double repeat alike: ≈ 0. The z
    denominators are ``1.4826·MAD + floor``: ``floor`` (0.08) is the correlation change that counts as
    noise on any wall (a very clean lattice, ``c(v)`` ≈ 0.97 with a MAD of 0.01, otherwise reads a picture
    frame's 0.07 dip as a region).

    ``x`` ``N×H×W`` finite luminance, ``valid`` ``N×H×W`` 0/1; ``window_px``, ``stride_px``, ``ds`` as
    the local-period map's (:func:`~trackdiag.analyzers.bands.local_geometry`). Windows whose valid pairs
    cover less than ``min_valid_frac`` are NaN.
    """
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    dt, dev = x.dtype, x.device
    # one image per vector (N×V×H×W: what each vector's pairs read) or one for all (N×H×W); one image
    # expanded over the vectors (a stride-0 view) is read as one for all: the same values, downsampled and
    # prepared once
    if x.dim() == 4 and x.stride(1) == 0:
        x = x[:, 0]
    per_vector = x.dim() == 4
    if per_vector:
        x0, vf = _masked_downsample_shared(x, valid, ds)
    else:
        x0, vf = _masked_downsample(x, valid, ds)
    k, st = max(2, window_px // ds), max(1, stride_px // ds)
    hh, ww = x0.shape[-2:]
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // 3)
    zero = torch.zeros(n, device=dev, dtype=dt)
    tx = zero if trend_x is None else torch.nan_to_num(trend_x.to(dt), nan=0.0)
    ty = zero if trend_y is None else torch.nan_to_num(trend_y.to(dt), nan=0.0)
    yc = (torch.arange(hh, device=dev, dtype=dt) + 0.5) * ds
    xc = (torch.arange(ww, device=dev, dtype=dt) + 0.5) * ds

    def scale_of(r: torch.Tensor | None) -> torch.Tensor:
        """The expected scale at each pixel of the images ``r`` (None: all): ``K×hh×ww`` (computed where a
        pair read needs it only)."""
        txr, tyr = (tx, ty) if r is None else (tx[r], ty[r])
        return torch.exp(txr[:, None, None] * (xc / w - 0.5)[None, None, :]
                         + tyr[:, None, None] * (yc / h - 0.5)[None, :, None])

    nan = float("nan")
    # the three displacements of each vector (v/2, v, 2v) read together; pairs (p − d/2, p + d/2)
    fac3 = torch.tensor([0.25, 0.5, 1.0], device=dev, dtype=dt)  # (d/2) / v
    # the basis vectors also at 4v: a lattice read at half its vector along one axis (a running bond's
    # estimate is often the rectangular (H, 0), (0, L/2), whose sum is the stagger vector; bricks twice as
    # long then repeat at 4·(0, L/2) and no longer at 2·(0, L/2), while at v and 2v they read as the wall)
    fac4 = torch.tensor([0.25, 0.5, 1.0, 2.0], device=dev, dtype=dt)

    def prepared(xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image less its valid mean, zero outside the wall (``N×hh×ww``: the pairs read it centred,
        as the correlation is shift-invariant and the window sums' cancellation in float32 is not), and
        the window variance below which a window counts as flat: 10⁻⁴ of the image's (valid) pixel
        variance, well above float32 rounding of the window moments and far below any texture's local
        variance."""
        vsum = vf.sum((-2, -1)).clamp_min(1.0)
        centre = xi.sum((-2, -1)) / vsum
        xc = (xi - centre[:, None, None]).mul_(vf)
        var0 = xc.square().sum((-2, -1)) / vsum
        return xc, (1e-4 * var0 + 1e-12)[:, None, None, None]

    img, flat_var = prepared(x0[:, 0] if per_vector else x0)

    def corr3(r: torch.Tensor | None, v: torch.Tensor, img: torch.Tensor, flat_var: torch.Tensor,
              fac: torch.Tensor, shifted: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows' pair correlation at ``2·fac·v`` (``v/2``, ``v``, ``2v`` and, with four factors, ``4v``)
        on the images ``r`` (None: all; ``v`` ``N×2`` px, ``img`` (centred), ``flat_var`` of all ``N``):
        ``K×F×gh×gw`` (NaN on flat windows) and the valid-pair shares. One bilinear read of the ``2F``
        shifted copies, the window sums by strided sums. ``shifted``: every image's scale is exactly 1
        (no perspective trend) and the host can read ``v``: the reads are whole-image shifts and their
        validity shifted 0/1 masks (:func:`_shift_pairs`)."""
        vr = vf
        if r is not None:
            v, img, flat_var, vr = v[r], img[r], flat_var[r], vf[r]
        n = v.shape[0]
        nf = fac.shape[0]
        if shifted:
            fin = torch.isfinite(v).all(1)
            v0 = torch.nan_to_num(v / ds)
            dy, dx = fac[None, :] * v0[:, :1], fac[None, :] * v0[:, 1:]

            def read(i: slice) -> tuple[torch.Tensor, torch.Tensor]:
                stack = _scratch(pool, "stack", (i.stop - i.start, nf, 6, hh, ww), img)
                g = _shift_pairs(img[i], vr[i], dy[i], dx[i], stack[:, :, 0], pool)
                if not bool(fin[i].all()):
                    stack[:, :, 0].mul_(fin[i, None, None, None])
                return g, stack
        else:
            scale = scale_of(r)
            by = v[:, 0, None, None] * scale / ds  # N×hh×ww: v's displacement at each pixel
            bx = v[:, 1, None, None] * scale / ds
            fin_px = (torch.isfinite(by) & torch.isfinite(bx))[:, None]  # (scaling by fac keeps finiteness)
            fy = fac[None, :, None, None] * torch.nan_to_num(by)[:, None]
            fx = fac[None, :, None, None] * torch.nan_to_num(bx)[:, None]
            both = torch.stack([img, vr], dim=1)

            def read(i: slice) -> tuple[torch.Tensor, torch.Tensor]:
                g = _grid_read(both[i], fy[i], fx[i], pool)  # n×2×2F×hh×ww
                stack = _scratch(pool, "stack", (g.shape[0], nf, 6, hh, ww), img)
                ok = g[:, 1] > 0.99  # n×2F×hh×ww: the validity read at both ends of each pair
                stack[:, :, 0].copy_(ok[:, :nf] & ok[:, nf:] & fin_px[i])
                return g[:, 0], stack
        # on the host one image at a time (its reads and the window sums' inputs stay in the cache: the
        # same values, several times less memory traffic); on a device all at once
        chunks = [slice(i, i + 1) for i in range(n)] if order.host_ok(img) and n > 1 else [slice(0, n)]
        moments = [_pair_moments(*read(i), k, st) for i in chunks]
        sw, sa, sb, saa, sbb, sab = (moments[0] if len(moments) == 1 else torch.cat(moments)).unbind(2)
        cnt = sw.clamp_min(1e-9)
        cov = sab - sa * sb / cnt
        va = (saa - sa.square() / cnt).clamp_min(0.0)
        vb = (sbb - sb.square() / cnt).clamp_min(0.0)
        # a flat window (one tile's face, a plain wall) has no correlation: its variances are rounding
        # residue of E[x²] − E[x]², and cov over them read ±10⁶ on clean 64-128 px tiles
        flat = (va <= flat_var) | (vb <= flat_var)
        c = (cov / torch.sqrt(va * vb).clamp_min(1e-30)).clamp(-1.0, 1.0)
        return torch.where(flat, torch.full_like(c, nan), c), sw

    vecs = vectors.to(dt)
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    # On the CPU (where it costs no device synchronisation) a vector is read only on the images where it
    # is finite: NaN vectors (a 1-D texture's t₂ and its sums, no lattice at all) give NaN windows anyway.
    fin_v = torch.isfinite(vecs).all(2)  # N×V
    # images without a perspective trend (scale exactly 1: most fronto-parallel walls) read their pairs
    # as whole-image shifts where the host can read the vectors (the CPU)
    host = order.host_ok(x0)
    # the pair reads' work buffers, reused by every vector and image on the host (_scratch)
    pool: dict[str, torch.Tensor] | None = {} if host else None
    flat_scale = (tx == 0) & (ty == 0)
    # the wall's level read below the 40th percentile where its margins are stationary: on a wall seen at
    # an angle the expected scale is a fitted trend whose residue ramps across the frame, and a level read
    # at the ramp's low end turns its high end into whole lines (the median there, as before)
    lower = flat_scale
    measures: list[torch.Tensor] = []
    plains = []
    for i in range(vecs.shape[1]):
        v = vecs[:, i]
        fac = fac4 if i < 2 else fac3
        nf = fac.shape[0]
        if per_vector and i > 0:
            img, flat_var = prepared(x0[:, i])

        def corr_on(r: torch.Tensor | None, v: torch.Tensor = v, img: torch.Tensor = img,
                    flat_var: torch.Tensor = flat_var, fac: torch.Tensor = fac
                    ) -> tuple[torch.Tensor, torch.Tensor]:
            if not host:
                return corr3(r, v, img, flat_var, fac)
            fs = flat_scale if r is None else flat_scale[r]
            n_flat = int(fs.sum())
            if n_flat == fs.numel() or (n_flat == 0 and fac.shape[0] == 3):
                return corr3(r, v, img, flat_var, fac, shifted=n_flat > 0)
            rr = torch.arange(n, device=dev) if r is None else r
            parts = [(rr[fs], True), (rr[~fs], False)]
            parts = [(j, sh) for j, sh in parts if j.numel()]
            cs = torch.full((rr.numel(), fac.shape[0], gh, gw), nan, device=dev, dtype=dt)
            covs = torch.zeros_like(cs)
            for j, sh in parts:
                at = (fs if sh else ~fs).nonzero()[:, 0]
                # (4v is used on walls without a trend only: the others read v/2, v, 2v)
                f = fac if sh else fac[:3]
                cs[at, :f.shape[0]], covs[at, :f.shape[0]] = corr3(j, v, img, flat_var, f, shifted=sh)
            return cs, covs

        cs, covs = on_rows(fin_v[:, i], corr_on, fills=(nan, 0.0), like=x0, shape=(nf, gh, gw))
        c_half, c1, c2 = cs[:, :3].unbind(1)
        cov1, cov2 = covs[:, 1], covs[:, 2]
        ok = (cov2 >= min_valid_frac) & (cov1 >= min_valid_frac) & torch.isfinite(v).all(1)[:, None, None]
        c_half, c1, c2 = (torch.where(ok, c, torch.full_like(c, nan)) for c in (c_half, c1, c2))
        # a window of the region repeats better at 2v than at v *and* has lost the repeat at v that the
        # rest of the wall has (each in robust z units of the image: noisy walls need more)
        measures += [c2 - c1, -c1]
        # the lattice read at twice its vector (locked on a large region): the rest repeats at v/2
        measures += [c1 - c_half, -c_half]
        if nf == 4:
            # the lattice read at half its vector along v: the region repeats at 4v and not at 2v (on walls
            # without a perspective trend only: see lower above)
            c4 = torch.where(ok & (covs[:, 3] >= min_valid_frac) & flat_scale[:, None, None], cs[:, 3],
                             torch.full_like(c1, nan))
            measures += [c4 - c2, -c2]
        plains.append(c1)
    # each hypothesis' margin: the lesser of its two measures in robust z units, all z scores in one batch
    # (2H·N maps; each map's own level and spread, as one by one)
    nm = len(measures)
    z = _robust_z(torch.stack(measures, 0).flatten(0, 1), floor, lower.repeat(nm)).unflatten(0, (nm, n))
    mar = torch.minimum(z[0::2], z[1::2])  # H×N×gh×gw
    best = torch.where(torch.isfinite(mar), mar, torch.full_like(mar, -math.inf)).amax(0)
    best = torch.where(torch.isfinite(best), best, torch.full_like(best, nan))
    pl = torch.stack(plains, 0)
    plain = torch.where(torch.isfinite(pl), pl, torch.full_like(pl, -math.inf)).amax(0)
    plain = torch.where(torch.isfinite(plain), plain, torch.full_like(plain, nan))
    cy = (torch.arange(gh, device=dev, dtype=dt) * st + k / 2.0) * ds
    cx = (torch.arange(gw, device=dev, dtype=dt) * st + k / 2.0) * ds
    return PairMap(best, plain, cy, cx, mar)


def _lower_location_scale(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The wall's own level and spread of a region measure, from the lower part of its distribution:
    ``N×M`` (NaN ignored) → ``(N,)`` location and scale. A 2×-period region only ever *raises* the pair
    margins, so the windows below the 40th percentile are the wall's even where a band covers nearly half
    of the measured windows (the median then falls between the two states and the MAD spans both, which
    squeezed a 1.0 correlation change in a band of bricks twice as long to a z of 0.9). For a Gaussian
    wall, ``σ = (q₄₀ − q₁₀) / 1.028`` and ``μ = q₄₀ + 0.253 σ``: the median and ``1.4826·MAD`` on
    average."""
    q = _nanquantile_rows(flat, (0.1, 0.4))
    sigma = (q[1] - q[0]) / 1.0283
    return q[1] + 0.2533 * sigma, sigma


def _nanquantile_rows(flat: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """``torch.nanquantile(flat, qs, dim=1)`` (linear interpolation) of ``N×M`` → ``Q×N``; on the host the
    rows sorted by numpy (NaN last, as torch sorts them: torch's sort of short rows is ~10× slower), then
    torch's own rank, gather and blend (the same values)."""
    qt = torch.tensor(qs, device=flat.device, dtype=flat.dtype)
    if not order.host_ok(flat):
        return torch.nanquantile(flat, qt, dim=1)
    srt = torch.from_numpy(np.sort(flat.numpy(), axis=1))  # N×M
    cnt = torch.isfinite(srt).logical_or_(torch.isinf(srt)).sum(1, keepdim=True)  # non-NaN per row
    ranks = qt[:, None] * (cnt.T - 1)  # Q×N (as torch: q·(n − 1) in the values' dtype)
    ranks = torch.where(cnt.T > 0, ranks, float(flat.shape[1] - 1))  # (an all-NaN row reads its NaN)
    below = ranks.long()
    above = ranks.ceil().long()
    lo = srt.gather(1, below.T).T
    hi = srt.gather(1, above.T).T
    return lo.lerp_(hi, ranks - below)


def _robust_z(m: torch.Tensor, floor: float, lower: torch.Tensor | None = None) -> torch.Tensor:
    """``N×h×w`` → ``(m − μ) / (σ + floor)`` per image, NaN-aware: the median and ``1.4826·MAD`` (a region
    covers a minority of the windows), or on the images where ``lower`` (``(N,)`` bool) holds the wall's
    level and spread read below the 40th percentile (:func:`_lower_location_scale`: a region raises the
    margins and a band may cover nearly half of the windows)."""
    n = m.shape[0]
    flat = m.reshape(n, -1)
    # on the host, a reading no image takes is not computed (torch.where with a constant condition returns
    # the other operand exactly)
    host = lower is not None and order.host_ok(m)
    every = host and lower is not None and bool(lower.all())
    if every:
        mu, sigma = _lower_location_scale(flat)
    else:
        mu = flat.nanmedian(dim=1).values
        sigma = 1.4826 * (flat - mu[:, None]).abs().nanmedian(dim=1).values
    if lower is not None and not every and not (host and not bool(lower.any())):
        lmu, lsig = _lower_location_scale(flat)
        mu, sigma = torch.where(lower, lmu, mu), torch.where(lower, lsig, sigma)
    return (m - mu[:, None, None]) / (sigma[:, None, None] + floor)


def _pair_moments(g: torch.Tensor, stack: torch.Tensor, k: int, st: int) -> torch.Tensor:
    """The pair test's window sums: ``g`` ``N×2F×h×w`` (the centred image read at ``p − d/2``, the first
    ``F`` reads, and at ``p + d/2``, the other ``F``), ``stack`` ``N×F×6×h×w`` (its first input, the pair
    weight ``w``: 1 where both reads are valid, 0 elsewhere, written; the others are written here) →
    ``N×F×6×gh×gw``: the ``k×k`` window means (stride ``st``) of ``w``, ``a``, ``b`` (the reads, 0 where
    ``w`` is) and ``a²``, ``b²``, ``ab``."""
    nf = g.shape[1] // 2
    wf = stack[:, :, 0]
    a, b = stack[:, :, 1], stack[:, :, 2]
    torch.mul(g[:, :nf], wf, out=a)
    torch.mul(g[:, nf:], wf, out=b)
    torch.mul(a, a, out=stack[:, :, 3])
    torch.mul(b, b, out=stack[:, :, 4])
    torch.mul(a, b, out=stack[:, :, 5])
    return _window_means(stack, k, st)


def _window_means(t: torch.Tensor, k: int, st: int) -> torch.Tensor:
    """``avg_pool2d(t, k, st)`` over the last two axes of ``...×h×w`` (``k×k`` windows at stride ``st``):
    ``...×gh×gw``, as two sums over strided views (each window's rows, then its columns: ``2k`` adds per
    window cell, several times faster than ``avg_pool2d`` on the CPU and than 0/1 band-matrix products)."""
    rows = t.unfold(-2, k, st).sum(-1)  # ...×gh×w: each window's rows (k terms each, no band products)
    return rows.unfold(-1, k, st).sum(-1) / float(k * k)


def _scratch(pool: dict[str, torch.Tensor] | None, name: str, shape: tuple[int, ...], like: torch.Tensor
             ) -> torch.Tensor:
    """An uninitialised ``shape`` tensor of ``like``'s dtype and device, from ``pool`` where given (one
    buffer per ``name``, its views by shape kept too, reused by the calls of one map on the host: a fresh
    large tensor costs a page fault per 4 KiB on its first touch, which cost more than the arithmetic
    written into it); new without one. The caller must not hold an earlier tensor of the same ``name``
    when it asks again."""
    if pool is None:
        return torch.empty(shape, device=like.device, dtype=like.dtype)
    key = f"{name}{shape}"
    view = pool.get(key)
    if view is None:
        size = math.prod(shape)
        base = pool.get(name)
        if base is None or base.numel() < size:
            base = pool[name] = torch.empty(size, device=like.device, dtype=like.dtype)
            for old in [k for k in pool if k.startswith(f"{name}(")]:
                del pool[old]  # (views of the smaller buffer)
        view = pool[key] = base[:size].view(shape)
    return view


def _shift_pairs(img: torch.Tensor, vf: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, wgt: torch.Tensor,
                 pool: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The pairs of whole-image shifts (``dy``, ``dx`` ``N×D`` px, finite, constant over each image, read on
    the host): ``img`` (``N×h×w``, zero outside the wall) read at ``(y ∓ dy, x ∓ dx)``, bilinear, zero
    outside: ``N×2D×h×w`` (the ``−`` reads first), each a shifted slice of the zero-padded image and two
    linear blends (rows, then columns); the pair weights written into ``wgt`` (``N×D×h×w``): 1 where
    both reads are valid, that is where every neighbour of each blend that weighs at least 1 % along its
    axis is inside ``vf`` (``N×h×w`` 0/1) — a shifted slice of ``vf``'s 1×1, 2×1, 1×2 or 2×2 erosion, no
    blend of the validity. ``pool``: the work buffers to reuse (:func:`_scratch`; the result is one)."""
    n, h, w = img.shape
    d = dy.shape[1]
    oy = torch.cat([-dy, dy], 1).numpy().astype(float)  # N×2D (the host copy of a CPU tensor)
    ox = torch.cat([-dx, dx], 1).numpy().astype(float)
    iy = np.clip(np.floor(oy), -(h + 1), h).astype(int)
    ix = np.clip(np.floor(ox), -(w + 1), w).astype(int)
    fy, fx = oy - np.floor(oy), ox - np.floor(ox)
    m = int(max(np.abs(iy).max(initial=0), np.abs(ix).max(initial=0))) + 2
    pad = F.pad(img, (m, m, m, m))
    vpad = F.pad(vf, (m, m, m, m))
    out = _scratch(pool, "read", (n, 2 * d, h, w), img)
    rows = _scratch(pool, "rows", (h, w + 1), img)
    for a in range(n):
        ero: dict[tuple[bool, bool], torch.Tensor] = {}

        def valid_at(j: int, a: int = a, ero: dict[tuple[bool, bool], torch.Tensor] = ero) -> torch.Tensor:
            """Read ``j``'s validity: its neighbours' rows (columns) ``y0`` and ``y0 + 1`` where each
            weighs at least 1 %."""
            ty, tx = float(fy[a, j]), float(fx[a, j])
            two = (0.01 <= ty <= 0.99, 0.01 <= tx <= 0.99)
            if two not in ero:
                e = vpad[a]
                if two[0]:
                    e = e[:-1] * e[1:]
                if two[1]:
                    e = e[:, :-1] * e[:, 1:]
                ero[two] = e
            y0 = m + int(iy[a, j]) + int(not two[0] and ty > 0.99)
            x0 = m + int(ix[a, j]) + int(not two[1] and tx > 0.99)
            return ero[two][y0:y0 + h, x0:x0 + w]

        for j in range(2 * d):
            y0, x0 = m + int(iy[a, j]), m + int(ix[a, j])
            # (the columns the second blend reads only)
            cols = slice(x0, x0 + w + 1)
            torch.lerp(pad[a, y0:y0 + h, cols], pad[a, y0 + 1:y0 + 1 + h, cols], float(fy[a, j]), out=rows)
            torch.lerp(rows[..., :w], rows[..., 1:], float(fx[a, j]), out=out[a, j])
        for j in range(d):
            torch.mul(valid_at(j), valid_at(d + j), out=wgt[a, j])
    return out


def _grid_read(img: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor,
               pool: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``img`` (``N×C×h×w``) read at ``(y − dy, x − dx)`` and at ``(y + dy, x + dx)`` (``dy``, ``dx``
    ``N×D×h×w`` px: ``D`` displacement fields), bilinear, zero outside: ``N×C×2D×h×w`` (the ``−`` reads
    first), in one ``grid_sample`` (the fields stacked along the rows; its sampling grid in ``pool``'s
    buffer where given, :func:`_scratch`)."""
    n, c, h, w = img.shape
    d = dy.shape[1]
    dev, dt = img.device, img.dtype
    xs = torch.arange(w, device=dev, dtype=dt)
    ys = torch.arange(h, device=dev, dtype=dt)[:, None]
    # each coordinate computed contiguous (element-wise ops on the interleaved grid's strided views are
    # not vectorised), then written into its place
    grid = _scratch(pool, "grid", (n, 2 * d, h, w, 2), img)
    grid[..., 0] = torch.cat([xs - dx, xs + dx], 1).div_(max(w - 1, 1)).mul_(2).sub_(1)
    grid[..., 1] = torch.cat([ys - dy, ys + dy], 1).div_(max(h - 1, 1)).mul_(2).sub_(1)
    out = F.grid_sample(img, grid.reshape(n, 2 * d * h, w, 2), align_corners=True, padding_mode="zeros")
    return out.reshape(n, c, 2 * d, h, w)
