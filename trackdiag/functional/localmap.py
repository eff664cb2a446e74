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

import math

import torch

__all__ = ["axis_fundamentals", "axis_profiles", "half_frequency_ratio", "theil_sen"]


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
    best = j.clone()
    for m in range(max_div, 1, -1):
        c = torch.round(j.to(dt) / m).long()
        for off in (-1, 0, 1):
            cand = (c + off).clamp(0, length - 1)
            strong = prof.gather(1, cand[:, None])[:, 0] >= rel_power * top
            ok = is_max.gather(1, cand[:, None])[:, 0] & strong
            ok &= cand < best
            best = torch.where(ok, cand, best)
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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-axis fundamentals of ``M×k×(k//2+1)`` window power spectra (see the module docstring).

    Returns ``(fx, ratio_x, fy, ratio_y)``, each ``(M,)``: frequencies in bins of the k-point window FFT
    (period = k / f, NaN where none) and the peak's ratio to the geometric-mean power of its profile.
    """
    c = power.shape[-1]
    half = power.shape[-2] // 2 + 1
    px, py = axis_profiles(power, cone_deg=cone_deg)
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
    med = s.flatten(1).nanmedian(dim=1).values
    enough = (w > 0.5).sum(dim=1) >= min_points
    return torch.where(enough, med, torch.full_like(med, float("nan"))).to(dt)
