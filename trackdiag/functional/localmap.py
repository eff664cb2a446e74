"""Per-axis local periods of windowed spectra and robust (Theil–Sen) trends.

Pure batched functions:

* :func:`axis_fundamentals`: from the power spectra of M windows (``M×k×(k//2+1)``, rfft2 layout), the
  period along x and along y of each window. Along x: the power in the cone ``|ky| ≤ tan(30°)·kx`` is
  max-projected onto kx (a 1-D profile), its strongest local maximum is reduced to its lowest divisor
  present (a local maximum within ±1 bin of ``f/m`` with ≥ ``rel_power`` of its power, ``m ≤ 4``), and
  refined by a log-parabola; along y the same with the roles swapped. A band or zone where the period
  doubles along one axis only changes that axis's period.
* :func:`theil_sen`: the median of pairwise slopes, batched, with weights 0/1.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F

from . import order
from .order import nanmedian, range_max
from .spectral import abs2

__all__ = ["axis_fundamentals", "axis_profiles", "centroid_scale_trend", "half_frequency_ratio",
           "log_radial_profile", "log_radial_profiles", "scale_shift", "strip_novelty", "theil_sen",
           "window_scale_trend"]


def _profile_fundamental(prof: torch.Tensor, lo: int, hi: int, rel_power: float, max_div: int = 4
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fundamental frequency (sub-bin, bins) and its peak-to-background ratio of ``M×L`` profiles searched in
    bins ``[lo, hi]``; NaN where none."""
    m_, length = prof.shape
    dev, dt = prof.device, prof.dtype
    idx = torch.arange(length, device=dev)
    left = torch.cat([prof[:, :1], prof[:, :-1]], dim=1)
    right = torch.cat([prof[:, 1:], prof[:, -1:]], dim=1)
    band = (idx >= lo) & (idx <= hi)
    is_max = (prof >= left) & (prof > right) & band[None]
    val = torch.where(is_max, prof, torch.full_like(prof, -1.0))
    top, j = val.max(dim=1)
    # the lowest divisor present: the smallest of j and every local maximum within ±1 bin of j/m (m ≤ max_div)
    # with rel_power of the top's power, all candidates at once (M×3·(max_div − 1))
    divs = torch.arange(max_div, 1, -1, device=dev, dtype=dt)
    c = torch.round(j.to(dt)[:, None] / divs[None]).long()  # M×D
    cand = (c[:, :, None] + torch.arange(-1, 2, device=dev)).flatten(1).clamp(0, length - 1)
    ok = is_max.gather(1, cand) & (prof.gather(1, cand) >= rel_power * top[:, None])
    best = torch.minimum(j, torch.where(ok, cand, j[:, None]).amin(dim=1))
    found = top > 0
    i = best.clamp(1, length - 2)
    lp = torch.log(prof.clamp_min(torch.finfo(dt).tiny))
    a, b, c2 = (lp.gather(1, (i + d)[:, None])[:, 0] for d in (-1, 0, 1))
    den = a - 2 * b + c2
    d = torch.where(den < 0, 0.5 * (a - c2) / torch.where(den < 0, den, -torch.ones_like(den)),
                    torch.zeros_like(den)).clamp(-0.5, 0.5)
    f = i.to(dt) + d
    inband = band.to(dt)
    bg = torch.exp((lp * inband).sum(dim=1) / inband.sum().clamp_min(1.0))
    ratio = prof.gather(1, best[:, None])[:, 0] / bg.clamp_min(torch.finfo(dt).tiny)
    nan = torch.full_like(f, float("nan"))
    return torch.where(found, f, nan), torch.where(found, ratio, torch.zeros_like(ratio))


def axis_profiles(power: torch.Tensor, *, cone_deg: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-projected axis profiles of ``M×k×(k//2+1)`` window power spectra: ``(px, py)``, ``M×(k//2+1)``;
    ``px[:, j]`` is the largest power at ``kx = j`` in the cone ``|ky| ≤ tan(cone)·kx``, ``py`` likewise
    along ``|ky|`` (both signs of ky folded)."""
    _m, k, c = power.shape
    dev, dt = power.device, power.dtype
    ky = torch.fft.fftfreq(k, d=1.0 / k, device=dev, dtype=dt)[:, None].expand(k, c)
    kx = torch.arange(c, device=dev, dtype=dt)[None, :].expand(k, c)
    t = math.tan(math.radians(cone_deg))
    cone_x = (ky.abs() <= t * kx).to(dt)
    px = (power * cone_x).amax(dim=1)  # M×c, over kx
    cone_y = (kx <= t * ky.abs()).to(dt)
    py_all = (power * cone_y).amax(dim=2)  # M×k, ky in FFT order
    half = k // 2 + 1
    pos = py_all[:, :half]
    neg = torch.cat([py_all[:, :1], py_all.flip(1)[:, : half - 1]], dim=1)  # |ky| = 0..k/2 from −ky
    return px, torch.maximum(pos, neg)


def half_frequency_ratio(prof: torch.Tensor, f0: torch.Tensor, *, reach: float = 1.0) -> torch.Tensor:
    """``log`` of the power at ``f0 / 2`` over the power at ``f0`` of ``M×L`` axis profiles, each the largest
    value within ``±reach`` bins of the point (``f0``: ``(M,)`` or scalar, bins; NaN where ``f0`` is NaN or
    ``f0 / 2 < 1``). A region rendered at twice the period along the axis has its own fundamental at
    ``f0 / 2`` (and its second harmonic at ``f0``): the ratio rises there from the background level."""
    m_, length = prof.shape
    dev, dt = prof.device, prof.dtype
    f0 = torch.as_tensor(f0, device=dev, dtype=dt).expand(m_)
    idx = torch.arange(length, device=dev, dtype=dt)[None, :]
    tiny = torch.finfo(dt).tiny

    def at(f: torch.Tensor) -> torch.Tensor:
        near = (idx - f[:, None]).abs() <= reach
        return torch.where(near, prof, torch.zeros_like(prof)).amax(dim=1).clamp_min(tiny)

    ok = torch.isfinite(f0) & (f0 / 2 >= 1.0) & (f0 + reach < length)
    f = torch.where(ok, f0, torch.full_like(f0, 4.0))
    r = torch.log(at(f / 2)) - torch.log(at(f))
    return torch.where(ok, r, torch.full_like(r, float("nan")))


def axis_fundamentals(
    power: torch.Tensor, *, r_min: float, r_max: float, rel_power: float = 0.25, cone_deg: float = 30.0,
    profiles: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-axis fundamentals of ``M×k×(k//2+1)`` window power spectra (see the module docstring).

    Returns ``(fx, ratio_x, fy, ratio_y)``, each ``(M,)``: frequencies in bins of the k-point window FFT
    (period = k / f, NaN where none) and the peak's ratio to the geometric-mean power of its profile.
    ``profiles``: :func:`axis_profiles` of ``power`` at ``cone_deg`` when the caller has them already.
    """
    c = power.shape[-1]
    half = power.shape[-2] // 2 + 1
    px, py = axis_profiles(power, cone_deg=cone_deg) if profiles is None else profiles
    lo, hi = max(1, math.ceil(r_min)), min(c - 2, math.floor(r_max))
    fx, rx = _profile_fundamental(px, lo, hi, rel_power)
    fy, ry = _profile_fundamental(py, lo, min(half - 2, hi), rel_power)
    return fx, rx, fy, ry


def theil_sen(t: torch.Tensor, v: torch.Tensor, w: torch.Tensor, *, group: torch.Tensor | None = None,
              min_points: int = 4) -> torch.Tensor:
    """Median of the pairwise slopes ``(v_j − v_i) / (t_j − t_i)`` over pairs with ``t_j > t_i``, both
    weights 1 and (with ``group``, ``(P,)``) the same group: ``N×P`` (``t``, ``v``, ``w``; ``t`` may be
    ``(P,)``) → ``(N,)``; NaN with fewer than ``min_points`` points."""
    dt = v.dtype
    t = t.expand_as(v)
    dtt = t[:, None, :] - t[:, :, None]
    dv = v[:, None, :] - v[:, :, None]
    ok = (dtt > 1e-9) & (w[:, None, :] > 0.5) & (w[:, :, None] > 0.5)
    if group is not None:
        ok &= (group[None, :] == group[:, None])[None]
    s = torch.where(ok, dv / torch.where(ok, dtt, torch.ones_like(dtt)), torch.full_like(dv, float("nan")))
    med = nanmedian(s.flatten(1), dim=1)
    enough = (w > 0.5).sum(dim=1) >= min_points
    return torch.where(enough, med, torch.full_like(med, float("nan"))).to(dt)


def _dilate_rel(p: torch.Tensor, rel: float, extra: int = 1) -> torch.Tensor:
    """Max of ``M×L`` profiles over ``±(extra + rel·f)`` bins around every bin ``f`` (a relative tolerance
    on the frequency: the same peak drifts by a few % across an angled wall)."""
    m_, length = p.shape
    reach = extra + int(math.ceil(rel * (length - 1)))
    pad = torch.nn.functional.pad(p, (reach, reach), value=0.0)
    f = torch.arange(length, device=p.device, dtype=p.dtype)
    off = torch.arange(-reach, reach + 1, device=p.device, dtype=p.dtype)
    keep = off.abs()[None, :] <= (extra + rel * f)[:, None]  # L×(2r+1)
    half = (keep.sum(dim=1) - 1) // 2  # the kept offsets: |off| <= half (f's window in pad: f..f + 2r)
    fi = torch.arange(length, device=p.device)
    best = range_max(pad, fi + reach - half, fi + reach + half)
    # the offsets not kept counted as 0 (as a masked window's max did)
    return torch.where(half < reach, best.clamp_min(0.0), best)


def strip_novelty(x: torch.Tensor, valid: torch.Tensor, *, strips: int = 12, min_valid: float = 0.5,
                  gain: float = 4.0, rel_tol: float = 0.2, min_period_px: float = 6.0,
                  max_period_frac: float = 0.25, smooth_frac: float = 1.0 / 16.0,
                  ref_gap: float = 0.18, ref_reach: float = 0.2, strip_px: int | None = None,
                  below_period_px: torch.Tensor | None = None, below_frac: float = 0.75
                  ) -> dict[str, torch.Tensor]:
    """Spectral novelty of horizontal strips along x (``N×H×W`` luminance ``x``, ``valid`` 0/1 weights).

    Every row's 1-D power spectrum along x (Hann window over the width, weighted mean removed) is averaged
    over strips of ``strip_px`` rows (default ``H // strips``; stride half a strip) and normalised to unit
    power in the band of periods ``[min_period_px, max_period_frac·W]``. The reference of a strip is the
    larger of the median spectra of the strips ``ref_gap..ref_gap + ref_reach`` (fractions of the strip
    count) away on either side (a band up to twice the gap wide is not its own reference; the period drifts
    across an angled wall, so far strips are not used), among strips with at least ``min_valid`` valid
    weight, dilated by ``±(1 + rel_tol·f)`` bins. A strip's *novelty* is the share of
    its power above ``gain`` × that reference: 0 where the strip repeats what the whole wall repeats, up to
    about 0.5 where a band at twice the period along x adds its own fundamental. The strip of largest
    novelty is band-passed to its novel frequencies (unwindowed rows, ``irfft``) and the energy along x,
    smoothed over ``smooth_frac·W``, gives its *extent*: the share of the valid width where that energy
    is at least a quarter of its 90th percentile (near 1: a full-width band; a zone covers part).

    With ``below_period_px`` (``(N,)``, px; NaN: no limit) only novel bins below ``below_frac`` × the
    frequency of that period count (a band at twice the wall's period adds content *below* its frequency;
    an angled wall's fine texture drifting from strip to strip adds it above); ``novelty_all_max`` is the
    largest novelty over every frequency.

    Returns ``{"novelty": N×S (NaN where a strip is mostly invalid), "novelty_max": (N,), "extent": (N,),
    "argmax": (N,) strip index, "strip_px": (N,) strip height, "strip_stride_px": (N,)}``.
    """
    n, h, w = x.shape
    dt, dev = x.dtype, x.device
    vf = valid.to(dt)
    cnt = vf.sum(-1, keepdim=True).clamp_min(1.0)
    z = (x - (x * vf).sum(-1, keepdim=True) / cnt).mul_(vf)  # N×H×W, zero outside the valid pixels
    hw = torch.hann_window(w, periodic=False, device=dev, dtype=dt)
    pw = abs2(torch.fft.rfft(z * hw, dim=-1))  # N×H×C
    c = pw.shape[-1]
    s = max(8, min(h // 2, strip_px if strip_px else h // max(1, strips)))
    st = max(1, s // 2)
    # strip means from sums of blocks of st rows: strip i (rows i·st .. i·st + s − 1, s = 2·st or 2·st + 1)
    # is blocks i and i + 1, plus row (i + 2)·st when s is odd (3 ops instead of s shifted adds)
    ns = (h - s) // st + 1
    blk = pw[:, : (ns + 1) * st].reshape(n, ns + 1, st, c).sum(2)  # N×(S+1)×C
    ps = blk[:, :-1] + blk[:, 1:]
    if s > 2 * st:
        ps += pw[:, 2 * st: (ns + 2) * st: st]
    ps /= s
    # laid out N×C×S as avg_pool1d's output was (the normalising sums below reduce in that memory order)
    ps = ps.transpose(1, 2).contiguous().transpose(1, 2)  # N×S×C
    vs = F.avg_pool1d(vf.mean(-1)[:, None], s, st)[:, 0]  # N×S
    f = torch.arange(c, device=dev, dtype=dt)
    band = ((f >= 1.0 / max_period_frac) & (f <= w / min_period_px)).to(dt)
    ps = ps * band
    ps = ps / ps.sum(-1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
    ok = vs >= min_valid
    nan = torch.full_like(ps, float("nan"))
    # Reference of strip i: the larger of the medians of the strips at distances gap..gap+reach on either
    # side (a band up to 2·gap strides wide is not its own reference; near neighbours follow the period's
    # drift across an angled wall).
    gap = max(1, int(round(ref_gap * ns)))
    reach = max(2, int(round(ref_reach * ns)))
    pad = gap + reach
    pv = F.pad(torch.where(ok[..., None], ps, nan).permute(0, 2, 1), (pad, pad), value=float("nan"))
    win = pv.unfold(2, 2 * pad + 1, 1)  # N×C×S×(2·pad+1)
    left = nanmedian(win[..., :reach], dim=-1)
    right = nanmedian(win[..., -reach:], dim=-1)
    ref = torch.fmax(left, right)  # N×C×S
    ok = ok & torch.isfinite(ref[:, 0])  # a strip with no reference on either side is not judged
    ref = ref.nan_to_num(0.0)
    refd = _dilate_rel(ref.permute(0, 2, 1).reshape(n * ns, c), rel_tol).reshape(n, ns, c)
    excess = ps > gain * refd  # N×S×C
    def smoothed_max(ex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.where(ex, ps, torch.zeros_like(ps)).sum(-1)
        v = F.avg_pool1d(v[:, None], 3, 1, 1, count_include_pad=False)[:, 0]
        return torch.where(ok, v, torch.zeros_like(v)).max(dim=1)

    nov_all, _ = smoothed_max(excess)  # every frequency (a moiré is novel anywhere)
    if below_period_px is not None:  # only novel content below below_frac × the wall's own frequency counts
        fmax = below_frac * w / below_period_px.to(dt)  # (N,) bins; NaN: no limit
        low = torch.where(torch.isfinite(fmax)[:, None], f[None] <= fmax.nan_to_num(0.0)[:, None],
                          torch.ones(n, c, dtype=torch.bool, device=dev))
        excess = excess & low[:, None, :]
    nov = torch.where(excess, ps, torch.zeros_like(ps)).sum(-1)
    nov = torch.where(ok, nov, torch.full_like(nov, float("nan")))
    # the largest novelty, smoothed over two neighbouring strips (a band is wider than one strip)
    nov_s = F.avg_pool1d(nov.nan_to_num(0.0)[:, None], 3, 1, 1, count_include_pad=False)[:, 0]
    nov_s = torch.where(ok, nov_s, torch.zeros_like(nov_s))
    best, j = nov_s.max(dim=1)
    # extent of the best strip's novel content along x
    rows = (j[:, None] * st + torch.arange(s, device=dev)[None]).clamp(max=h - 1)  # N×s
    zr = z.gather(1, rows[..., None].expand(n, s, w))  # N×s×W
    vr = vf.gather(1, rows[..., None].expand(n, s, w))
    sel = excess.gather(1, j[:, None, None].expand(n, 1, c))[:, 0].to(dt)  # N×C
    bp = torch.fft.irfft(torch.fft.rfft(zr, dim=-1) * sel[:, None], n=w, dim=-1)
    e = (bp.square() * vr).sum(1) / vr.sum(1).clamp_min(1.0)  # N×W
    vcol = vr.mean(1) >= 0.5
    k = max(3, int(round(smooth_frac * w)) | 1)
    e = F.avg_pool1d(e[:, None], k, 1, k // 2, count_include_pad=False)[:, 0]
    ev = torch.where(vcol, e, torch.full_like(e, float("nan")))
    p90 = ev.nanquantile(0.9, dim=1)
    hit = vcol & (e >= 0.25 * p90[:, None])
    extent = hit.sum(1).to(dt) / vcol.sum(1).clamp_min(1).to(dt)
    full = lambda v: torch.full((n,), float(v), device=dev, dtype=dt)
    return {"novelty": nov, "novelty_max": best, "novelty_all_max": nov_all, "extent": extent,
            "argmax": j.to(dt),
            "strip_px": full(s), "strip_stride_px": full(st)}


@functools.lru_cache(maxsize=32)
def _log_radial_geometry(h0: int, w0: int, h: int, w: int, bins_per_octave: int, r_lo_bins: float,
                         hi_cycles: float, device: torch.device, dt: torch.dtype
                         ) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                    torch.Tensor, torch.Tensor]:
    """:func:`log_radial_profile`'s constants for ``h0×w0`` windows transformed at ``h×w`` (zero-padded when
    larger; cached: read only): the windows' 2-D Hann window, the columns ``cx`` and rows (``(R,)`` long) of
    the spectrum the log grid reads, each kept bin's ring (``R×cx`` long, flat) and the rings' counts, and the
    log grid's ring indices ``i0`` and fractions."""
    hann = torch.outer(torch.hann_window(h0, periodic=False, device=device, dtype=dt),
                       torch.hann_window(w0, periodic=False, device=device, dtype=dt))
    s = max(h, w)
    nr = s // 2 + 2
    nb = max(2, int(math.ceil(math.log2(hi_cycles * s / r_lo_bins) * bins_per_octave)))
    rr = r_lo_bins * 2.0 ** (torch.arange(nb, device=device, dtype=dt) / bins_per_octave)
    # only the rings the log grid reads (up to floor(rr) + 1) are needed: the spectrum is computed for the
    # columns and kept for the rows whose frequency can reach them (|k|·s < top + 0.5); the same ring sums
    top = min(nr - 1, int(math.floor(r_lo_bins * 2.0 ** ((nb - 1) / bins_per_octave))) + 1)
    cx = min(w // 2 + 1, int(math.ceil((top + 0.5) * w / s)) + 1)
    cy = min(h // 2 + 1, int(math.ceil((top + 0.5) * h / s)) + 1)
    rows = torch.cat([torch.arange(cy, device=device), torch.arange(max(cy, h - cy + 1), h, device=device)])
    ky = torch.fft.fftfreq(h, device=device, dtype=dt)[rows][:, None]
    kx = torch.fft.rfftfreq(w, device=device, dtype=dt)[None, :cx]
    ri = (torch.sqrt(ky.square() + kx.square()) * s).round().long().clamp(max=s // 2 + 1).flatten()
    cnt = torch.zeros(nr, device=device, dtype=dt).scatter_add_(0, ri, torch.ones_like(ri, dtype=dt))
    i0 = rr.floor().long().clamp(max=nr - 2)
    return hann, cx, rows, ri, cnt.clamp_min(1.0), i0, rr - i0.to(dt), i0 + 1


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> torch.Size:
    """The broadcast of two shapes (``torch.broadcast_shapes`` imports sympy on its first call: ~1 s on the
    training thread at the first due ``log()``)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        raise ValueError(f"shapes {a} and {b} do not broadcast")
    return torch.Size(max(x, y) if 1 in (x, y) else x for x, y in zip(a, b, strict=True))


def log_radial_profile(z: torch.Tensor, weights: torch.Tensor, *, bins_per_octave: int = 32,
                       r_lo_bins: float = 6.0, hi_cycles: float = 0.45, square: bool = False) -> torch.Tensor:
    """Whitened log power of ``N×h×w`` ``z`` (``weights`` 0..1; weighted mean removed, Hann-windowed) on a
    log-frequency grid: ``N×B``, ``B = bins_per_octave · log2(hi / lo)`` from ``r_lo_bins / max(h, w)`` to
    ``hi_cycles`` cycles/px. The 1-bin ring means are interpolated onto the log grid and a moving average
    over one octave is subtracted, so that peaks (not the spectral slope) carry the profile; a change of
    scale is then a shift along the grid. ``z`` and ``weights`` may have several leading dimensions
    (``...×h×w``, e.g. strided views of windows, read in place): ``N`` is their product.

    ``square``: the transform zero-padded to ``max(h, w)`` on both axes. On a non-square window the shorter
    axis's frequency step is coarser than a ring (1.5 rings for 2:3): the rings alternately hold an axis bin
    or none, and a spectrum concentrated on the axes (bricks, planks: their joints' harmonics) gets a comb
    that is the same in every window and locks the windows' match at shift 0."""
    return log_radial_profiles(z, weights, squares=(square,), bins_per_octave=bins_per_octave,
                               r_lo_bins=r_lo_bins, hi_cycles=hi_cycles)[0]


def log_radial_profiles(z: torch.Tensor, weights: torch.Tensor, *, squares: tuple[bool, ...],
                        bins_per_octave: int = 32, r_lo_bins: float = 6.0, hi_cycles: float = 0.45
                        ) -> list[torch.Tensor]:
    """:func:`log_radial_profile` of the same ``...×h×w`` windows for each ``square`` of ``squares`` (one
    ``N×B`` profile each, the same values as one call each): the windowed, mean-removed windows are made
    once; the transform along x too where both transforms have the same width (``w >= h``: padding square
    pads the rows only), and a square window's two transforms are one."""
    h0, w0 = z.shape[-2:]
    n = math.prod(z.shape[:-2])
    dev, dt = z.device, z.dtype
    # Strided views of windows are read in place; every product is written to a contiguous tensor (out=: an
    # element-wise op on overlapping views would lay its output out in the views' stride order, and the sums
    # and transforms below would then run in another order)
    shape = _broadcast(tuple(z.shape), tuple(weights.shape))
    zw: torch.Tensor | None = None
    rows_fft: dict[tuple[int, int], torch.Tensor] = {}  # the transform along x by its length and columns kept
    done: dict[tuple[int, int], torch.Tensor] = {}  # the profile by its transform's size
    outs = []
    for square in squares:
        h, w = (max(h0, w0),) * 2 if square else (h0, w0)
        if (h, w) in done:
            outs.append(done[(h, w)])
            continue
        hann, cx, rows, ri, cnt, i0, fr, i1 = _log_radial_geometry(h0, w0, h, w, bins_per_octave,
                                                                  float(r_lo_bins), float(hi_cycles),
                                                                  torch.device(dev), dt)
        if zw is None:
            # weights all 1 (read on the CPU only, where order.host_ok): the window is the plain Hann (same
            # values)
            ones = order.host_ok(weights) and bool(weights.amin() == 1)
            ww = hann if ones else torch.mul(weights, hann, out=torch.empty(shape, device=dev, dtype=dt))
            zw = torch.mul(z, ww, out=torch.empty(shape, device=dev, dtype=dt))
            mean = zw.sum((-2, -1), keepdim=True) / ww.sum((-2, -1), keepdim=True).clamp_min(1e-9)
            # (z − mean)·ww as z·ww − mean·ww: one pass over the windows instead of two
            zw.addcmul_(ww, mean, value=-1.0)
        if (w, cx) not in rows_fft:  # (the same for both transforms where w >= h)
            rows_fft[(w, cx)] = torch.fft.rfft(zw, n=w, dim=-1)[..., :cx]
        spec = torch.fft.fft(rows_fft[(w, cx)], n=h, dim=-2)
        p = abs2(spec.index_select(-2, rows))  # N×rows×cx
        nr = cnt.shape[0]
        tot = torch.zeros(n, nr, device=dev, dtype=dt).scatter_add_(1, ri[None].expand(n, -1),
                                                                     p.reshape(n, -1))
        lin = torch.log((tot / cnt).clamp_min(torch.finfo(dt).tiny))
        prof = lin[:, i0] * (1 - fr) + lin[:, i1] * fr
        k = bins_per_octave | 1
        done[(h, w)] = prof - F.avg_pool1d(prof[:, None], k, 1, k // 2, count_include_pad=False)[:, 0]
        outs.append(done[(h, w)])
    return outs


def scale_shift(a: torch.Tensor, b: torch.Tensor, *, max_shift: int, step_reach: int = 0,
                step_margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift (in grid steps) of ``N×B`` profile ``b`` against ``a`` that maximises their correlation over
    ``±max_shift`` (positive: ``b`` lies at higher frequencies), and that correlation; both ``(N,)``.

    ``step_reach`` > ``max_shift``: the correlation is also read out to ``±step_reach`` steps (at most half
    the profile), and where its best beyond ``±max_shift`` comes within ``step_margin`` of the best in range
    the shift is NaN (the correlation stays the in-range best): the two profiles are a step of scale apart
    that no trend in range explains (a zone or band at 2× the period against the wall around it matches an
    octave away, and in range only where a harmonic lines up: a square lattice's rings at 2P and at P/√2
    coincide, half an octave off)."""
    n, length = a.shape
    k = min(max_shift, length // 3)
    kk = max(k, min(step_reach, length // 2))
    pad_b = F.pad(b, (kk, kk), value=float("nan"))
    win = pad_b.unfold(1, length, 1)  # N×(2kk+1)×B: win[:, j] = b shifted by (j - kk)
    shifts = torch.arange(-kk, kk + 1, device=a.device)
    aa = a[:, None, :].expand_as(win)
    ok = torch.isfinite(win)
    cnt = ok.sum(-1).clamp_min(1)

    def centred(v: torch.Tensor) -> torch.Tensor:
        v = torch.where(ok, v, torch.zeros_like(v))
        return torch.where(ok, v - v.sum(-1, keepdim=True) / cnt[..., None], torch.zeros_like(v))

    x, y = centred(aa), centred(win)
    c = (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1)).clamp_min(1e-12)
    c = torch.where(cnt >= length // 2, c, torch.full_like(c, -1.0))
    best, j = c[:, kk - k:kk + k + 1].max(dim=1)
    shift = shifts[j + (kk - k)].to(a.dtype)
    if kk > k:
        beyond = torch.cat([c[:, :kk - k], c[:, kk + k + 1:]], dim=1).max(dim=1).values
        step = beyond > best - step_margin
        shift = torch.where(step, torch.full_like(shift, float("nan")), shift)
    return shift, best


def _window_grid(x: torch.Tensor, weights: torch.Tensor, *, window_frac: float, grid: int
                 ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """A ``grid × grid`` grid of windows ``window_frac`` of the frame (at least 16 px), evenly spread from
    edge to edge, of ``x`` and ``weights`` (``N×H×W``): strided views ``N×gy×gx×wh×ww`` (gy, gx ≤ grid)
    and the windows' strides (y, x) in px."""
    h, w = x.shape[-2:]
    wh, ww = max(16, int(round(window_frac * h))), max(16, int(round(window_frac * w)))
    sty = max(1, (h - wh) // max(1, grid - 1))
    stx = max(1, (w - ww) // max(1, grid - 1))
    return (x.unfold(1, wh, sty).unfold(2, ww, stx)[:, :grid, :grid],
            weights.unfold(1, wh, sty).unfold(2, ww, stx)[:, :grid, :grid], sty, stx)


def window_scale_trend(x: torch.Tensor, weights: torch.Tensor, *, grid: int = 3, window_frac: float = 0.5,
                       bins_per_octave: int = 32, max_octaves: float = 0.8, min_valid: float = 0.6,
                       min_corr: float = 0.5, hi_cycles: float = 0.2, square: bool = False,
                       step_octaves: float = 0.0, step_margin: float = 0.0, prefix: str = "persp",
                       also_square: str | None = None) -> dict[str, torch.Tensor]:
    """Perspective as a robust trend of the local scale over a ``grid × grid`` set of windows.

    ``x`` ``N×H×W`` finite, ``weights`` ``N×H×W`` 0..1 (an apodized mask). Windows of ``window_frac`` of the
    frame's height and width, their centres evenly spread from ``window_frac / 2`` to ``1 − window_frac / 2``
    of each side, get whitened log-radial power profiles (:func:`log_radial_profile`; ``square``: the
    transforms padded square, where a non-square window's rings lock bricks and planks at shift 0). Every
    pair of windows
    in the same row (column) is matched along log frequency (:func:`scale_shift`): every peak of a wall
    seen at an angle moves by the same factor, so the shift is the change of scale between the two windows
    (profiles up to ``hi_cycles`` = 0.2 cycles/px: a ×2 upsampler's cut-off at 0.25, its checkerboard at 0.5
    and JPEG's 0.25 and 0.375 stay put under perspective and would lock the match at shift 0),
    whatever the period (and on aperiodic surfaces too), without picking a fundamental. Each pair whose
    windows are at least ``min_valid`` valid and whose profiles correlate at least ``min_corr`` gives a
    slope ``ln(period_b / period_a) / (x_b − x_a)`` (frame units); the trend is the median of those slopes
    (Theil–Sen on pairs), and ``*_agree`` the share of pair slopes with the median's sign and at least half
    its size (near 1 on an angled wall; scattered slopes on a fronto-parallel wall come from texture
    variation, not from a trend).

    ``step_octaves`` > ``max_octaves``: a pair whose profiles match beyond ``±max_octaves`` (read out to
    ``±step_octaves``, :func:`scale_shift`'s ``step_reach``) as well as in range, or within ``step_margin``
    of it, is a step of scale, not a sample of a trend, and is left out: a zone or band at 2× the period on
    a fronto-parallel wall matches the wall around it an octave away, and in range only where a harmonic
    lines up (half an octave on a square lattice, which read as a trend of ln 2 per frame).

    Returns ``{"persp_trend_x", "persp_trend_y", "persp_agree_x", "persp_agree_y", "persp_pairs_x",
    "persp_pairs_y"}`` (``prefix`` for ``persp``), each ``(N,)`` (NaN trend and agreement without a usable
    pair). ``also_square``: the same keys on square transforms too, under that prefix (the windows prepared
    once, :func:`log_radial_profiles`; on square windows the two transforms are one); the step guard
    (``step_octaves``) then applies to those keys only, otherwise to the keys under ``prefix``.
    """
    n, h, w = x.shape
    dev, dt = x.device, x.dtype
    # all windows of all images as one batch: (N·G²)×wh×ww (a strided view, then one copy)
    xw, vw, sty, stx = _window_grid(x, weights.to(dt), window_frac=window_frac, grid=grid)
    wh, ww = xw.shape[-2:]
    gy, gx = xw.shape[1], xw.shape[2]
    g2 = gy * gx
    # (square, key prefix, step reach in bins): the step guard on the also_square keys when they are asked for
    reach = int(round(step_octaves * bins_per_octave))
    variants = ([(square, prefix, reach)] if also_square is None
                else [(square, prefix, 0), (True, also_square, reach)])
    profs = log_radial_profiles(xw, vw, squares=tuple(q for q, _, _ in variants),
                                bins_per_octave=bins_per_octave, hi_cycles=hi_cycles)  # (N·G²)×B each
    vfrac = vw.reshape(n, g2, wh * ww).mean(-1)
    cy = (torch.arange(gy, device=dev, dtype=dt) * sty + wh / 2) / h
    cx = (torch.arange(gx, device=dev, dtype=dt) * stx + ww / 2) / w
    idx = torch.arange(g2, device=dev).reshape(gy, gx)
    out: dict[str, torch.Tensor] = {}
    k = int(round(max_octaves * bins_per_octave))
    axes = (("x", [(idx[r, a], idx[r, b]) for r in range(gy) for a in range(gx) for b in range(a + 1, gx)],
             cx),
            ("y", [(idx[a, c], idx[b, c]) for c in range(gx) for a in range(gy) for b in range(a + 1, gy)],
             cy))
    for (prof, (_, prefix, step_reach)), (name, pairs, pos) in itertools.product(
            zip(profs, variants, strict=True), axes):
        if prof is profs[0] and prefix != variants[0][1] and step_reach == variants[0][2]:
            # square windows, the same guard: the same profiles, the same keys
            out.update({f"{prefix}_{key}_{name}": out[f"{variants[0][1]}_{key}_{name}"]
                        for key in ("trend", "agree", "pairs")})
            continue
        if not pairs:
            nan = torch.full((n,), float("nan"), device=dev, dtype=dt)
            out.update({f"{prefix}_trend_{name}": nan, f"{prefix}_agree_{name}": nan,
                        f"{prefix}_pairs_{name}": torch.zeros_like(nan)})
            continue
        ia = torch.stack([p[0] for p in pairs])
        ib = torch.stack([p[1] for p in pairs])
        pr = prof.reshape(n, g2, -1)
        shift, corr = scale_shift(pr[:, ia].reshape(-1, pr.shape[-1]), pr[:, ib].reshape(-1, pr.shape[-1]),
                                  max_shift=k, step_reach=step_reach, step_margin=step_margin)
        shift, corr = shift.reshape(n, -1), corr.reshape(n, -1)
        ta = pos[(ia // gx) if name == "y" else (ia % gx)]
        tb = pos[(ib // gx) if name == "y" else (ib % gx)]
        # b at higher frequency (shift > 0): shorter period at b
        slope = -shift / bins_per_octave * math.log(2.0) / (tb - ta)[None]
        use = ((corr >= min_corr) & (vfrac[:, ia] >= min_valid) & (vfrac[:, ib] >= min_valid)
               & torch.isfinite(shift))
        s = torch.where(use, slope, torch.full_like(slope, float("nan")))
        med = s.nanmedian(dim=1).values
        cnt = use.sum(dim=1).to(dt)
        agree = (use & (torch.sign(slope) == torch.sign(med)[:, None])
                 & (slope.abs() >= 0.5 * med.abs()[:, None])).sum(dim=1).to(dt) / cnt.clamp_min(1.0)
        ok = cnt > 0
        out[f"{prefix}_trend_{name}"] = torch.where(ok, med, torch.full_like(med, float("nan")))
        out[f"{prefix}_agree_{name}"] = torch.where(ok, agree, torch.full_like(agree, float("nan")))
        out[f"{prefix}_pairs_{name}"] = cnt
    return out


def _cone_anisotropy(p: torch.Tensor, r: torch.Tensor, c2: torch.Tensor, *, lo_cycles: float,
                     hi_cycles: float, bins_per_octave: int = 6, cone_deg: float = 30.0) -> torch.Tensor:
    """``ln(scale_x / scale_y)`` of ``...×h×(w//2+1)`` power spectra ``p`` (``r``: the bins' radius in
    cycles/px, ``c2``: cos 2θ of their direction, both ``h×(w//2+1)``) → ``(...)``.

    The log power of the cone within ``cone_deg`` of the x axis and of the y axis, on rings of
    ``1 / bins_per_octave`` octave from ``lo_cycles`` to ``hi_cycles``: a texture stretched along x by
    ``s_x`` and along y by ``s_y`` has its x-cone profile shifted by ``−ln s_x`` along ``ln r`` against an
    isotropic one, whatever its spectrum's shape (a power law too, whose radial profile shows no change of
    scale). The shift between the cones is ``Σ (L_x − L_y) D / Σ D²`` (``D`` the slope of their mean
    against ``ln r``: a linearised match, weighted where the profile has a slope); a gain (lighting,
    contrast) moves both cones alike and cancels."""
    nb = max(3, int(math.floor(math.log2(hi_cycles / lo_cycles) * bins_per_octave)))
    edges = lo_cycles * 2.0 ** (torch.arange(nb + 1, device=p.device, dtype=p.dtype) / bins_per_octave)
    b = torch.bucketize(r, edges) - 1
    cos_lim = math.cos(math.radians(2.0 * cone_deg))
    profs = []
    for cone in (c2 >= cos_lim, c2 <= -cos_lim):  # |θ| <= cone_deg from x, from y
        idx = torch.where((b >= 0) & (b < nb) & cone, b, torch.full_like(b, nb)).flatten()
        tot = torch.zeros(*p.shape[:-2], nb + 1, device=p.device, dtype=p.dtype).index_add_(
            -1, idx, p.flatten(-2))
        cnt = torch.zeros(nb + 1, device=p.device, dtype=p.dtype).index_add_(0, idx, torch.ones_like(
            idx, dtype=p.dtype))
        mean = tot[..., :nb] / cnt[:nb].clamp_min(1.0)
        profs.append(torch.log(mean.clamp_min(torch.finfo(p.dtype).tiny)))
    lx, ly = profs
    m = (lx + ly) / 2
    d = (m[..., 2:] - m[..., :-2]) / (2.0 * math.log(2.0) / bins_per_octave)  # d ln P / d ln r
    diff = (lx - ly)[..., 1:-1]
    return (diff * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-9)


def centroid_scale_trend(x: torch.Tensor, weights: torch.Tensor, *, grid: int = 3, window_frac: float = 0.5,
                         lo_cycles: float = 0.02, hi_cycles: float = 0.2, min_valid: float = 0.6
                         ) -> dict[str, torch.Tensor]:
    """Perspective on aperiodic surfaces: the trend of the windows' spectral centroid.

    The whitened profiles of :func:`window_scale_trend` need peaks that move; a photographed grass or
    gravel wall has none (its profiles match best at shift 0 whatever the angle), but its power still
    moves to higher frequencies where the wall recedes. For each window of the same ``grid × grid`` set
    (``window_frac`` of each side), the centroid ``c = Σ ln(r)·P / Σ P`` of its power spectrum (Hann ×
    ``weights``, weighted mean removed) over ``lo_cycles ≤ r ≤ hi_cycles`` cycles/px (below a ×2 upsampler's
    cut-off and JPEG's harmonics, which do not move); the trend along x is the median over the window rows
    of ``−(c_last − c_first) / (x_last − x_first)`` (frame units: log period per frame, the sign of
    ``persp_trend_*``), only where both end windows are at least ``min_valid`` valid; along y the same over
    the columns. A power law alone does not move its centroid, so the trend reads less than the true one
    (about 0.5–0.7× of it on generated photo walls).

    The same windows' anisotropy (:func:`_cone_anisotropy`, ``ln(scale_x / scale_y)``) changes too: a
    homography's Jacobian stretches the wall along the direction of the tilt more than across it (the
    local period across lines normal to the tilt grows as ``w²``, along them as ``w``, with ``w`` the
    projective denominator), so ``ln(scale_x / scale_y)`` follows ``ln w`` across the frame, even on a
    power-law texture. ``aniso_trend_x`` is the Theil–Sen slope of the windows' anisotropy against their
    x centre (pairs in the same row, both windows at least ``min_valid`` valid; frame units), about
    ``1/1.5`` of the log period's trend on an isotropic texture; ``aniso_trend_y`` the same along the
    columns.

    ``x`` ``N×H×W`` finite, ``weights`` ``N×H×W`` 0..1. Returns ``{"centroid_trend_x",
    "centroid_trend_y", "aniso_trend_x", "aniso_trend_y"}``, each ``(N,)`` (NaN without a valid pair of
    windows).
    """
    n, h, w = x.shape
    dev, dt = x.device, x.dtype
    xw, vw, sty, stx = _window_grid(x, weights.to(dt), window_frac=window_frac, grid=grid)  # N×gy×gx×wh×ww
    wh, ww = xw.shape[-2:]
    gy, gx = xw.shape[1], xw.shape[2]
    hann = torch.outer(torch.hann_window(wh, periodic=False, device=dev, dtype=dt),
                       torch.hann_window(ww, periodic=False, device=dev, dtype=dt))
    wt = vw * hann
    mean = (xw * wt).sum((-2, -1), keepdim=True) / wt.sum((-2, -1), keepdim=True).clamp_min(1e-9)
    p = abs2(torch.fft.rfft2((xw - mean) * wt))  # N×gy×gx×wh×(ww//2+1)
    r = torch.sqrt(torch.fft.fftfreq(wh, device=dev, dtype=dt)[:, None].square()
                   + torch.fft.rfftfreq(ww, device=dev, dtype=dt)[None, :].square())
    band = ((r >= lo_cycles) & (r <= hi_cycles)).to(dt)
    pb = p * band
    c = (pb * torch.log(r.clamp_min(1e-6))).sum((-2, -1)) / pb.sum((-2, -1)).clamp_min(torch.finfo(dt).tiny)
    ok = vw.mean((-2, -1)) >= min_valid  # N×gy×gx
    nan = torch.full((n,), float("nan"), device=dev, dtype=dt)
    out = {"centroid_trend_x": nan, "centroid_trend_y": nan.clone()}
    ky2 = torch.fft.fftfreq(wh, device=dev, dtype=dt)[:, None].square()
    c2 = (r.square() - 2.0 * ky2) / r.square().clamp_min(1e-12)  # cos 2θ = (kx² − ky²) / r²
    an = _cone_anisotropy(p, r, c2, lo_cycles=lo_cycles, hi_cycles=hi_cycles).reshape(n, gy * gx)
    okf = ok.reshape(n, gy * gx).to(dt)
    cyw = (torch.arange(gy, device=dev, dtype=dt) * sty + wh / 2) / h
    cxw = (torch.arange(gx, device=dev, dtype=dt) * stx + ww / 2) / w
    iy = torch.arange(gy, device=dev)[:, None].expand(gy, gx).flatten()
    ix = torch.arange(gx, device=dev)[None, :].expand(gy, gx).flatten()
    out["aniso_trend_x"] = theil_sen(cxw[ix], an, okf, group=iy, min_points=2)
    out["aniso_trend_y"] = theil_sen(cyw[iy], an, okf, group=ix, min_points=2)
    if gx > 1:
        span = (gx - 1) * stx / w
        sl = -(c[:, :, -1] - c[:, :, 0]) / span  # N×gy
        use = ok[:, :, -1] & ok[:, :, 0]
        out["centroid_trend_x"] = torch.where(use, sl, torch.full_like(sl, float("nan"))).nanmedian(1).values
    if gy > 1:
        span = (gy - 1) * sty / h
        sl = -(c[:, -1, :] - c[:, 0, :]) / span  # N×gx
        use = ok[:, -1, :] & ok[:, 0, :]
        out["centroid_trend_y"] = torch.where(use, sl, torch.full_like(sl, float("nan"))).nanmedian(1).values
    return out
