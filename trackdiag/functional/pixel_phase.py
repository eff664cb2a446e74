"""Offset and misplaced patches inside an intended edit: where the texture's lattice phase departs.

A re-textured wall is periodic: its fundamental lattice line (for a brick wall, the mortar lines across the
bricks) has one phase that drifts only slowly with perspective. A patch of the texture shifted inside a box
(an *offset*) or copied from elsewhere (a *misplaced* patch) carries a phase of its own, so the box stands
out in a local phase map while every clean part of the wall follows the smooth field. Steps (``signal``:
``B×H×W`` luminance of the output, ``region``: ``B×H×W`` bool, the wall):

1. :func:`fundamental_frequency`: the lattice's fundamental spectral peak ``f`` (the tiling diagnosis's
   :func:`~trackdiag.functional.lattice.prominent_peaks` / :func:`~trackdiag.functional.lattice.pick_lattice`
   on the region's spectrum), in cycles/px;
2. :func:`demodulate`: the region's signal minus its local mean (over ≈ half a period), multiplied by
   ``exp(-2πi f·x)`` and averaged by a normalised Gaussian window that is ``across`` periods wide across
   the lattice lines and ``along`` px along them (a cut across the lines is sharp in the map);
3. :func:`smooth_phase`: the wall's own phase field, a polynomial of degree ``degree`` in (y, x) fitted
   by least squares to the phase gradients (robust: residuals beyond 3 MADs are dropped, twice), which
   takes out perspective and the residual frequency error without unwrapping;
4. :func:`phase_departure`: the angle between the local phasor (field removed) and its robust local mean
   over ``reach`` periods (iteratively leaving out pixels that depart by more than ``inlier_deg``), in
   degrees; measured only where the local amplitude is at least ``min_amp`` of the region's median (a
   joint or a blank face has no phase);
5. :func:`departure_boxes`: the pixels above ``threshold`` degrees, closed over ``close_px``, kept as
   components of at least ``min_area`` px whose peak reaches ``peak`` degrees, each redrawn at its
   half-departure contour (where the window straddles the patch's border).

What it cannot see: a patch copied from elsewhere whose lattice phase happens to match its new place (the
lines continue across its border) departs by no more than the wall's own irregularity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .lattice import pick_lattice, prominent_peaks
from .pixel_change import close_binary
from .spectral import prepare, spectrum

__all__ = ["fundamental_frequency", "demodulate", "smooth_phase", "phase_departure", "departure_boxes"]


def fundamental_frequency(signal: torch.Tensor, region: torch.Tensor, *, min_period: float = 6.0,
                          max_period: float = 96.0, sub_share: float = 0.15) -> torch.Tensor:
    """``B×2``: the lattice's fundamental ``(ky, kx)`` in cycles/px (NaN where no prominent peak), from
    the region's windowed spectrum (``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool).

    Thin bright mortar lines put more power in the 2nd harmonic than in the fundamental, so the picked
    line can be the harmonic (a comb at k/2, k, 3k/2 …). When a prominent peak lies at half the picked
    frequency (within 0.5 bin + 5 %) with at least ``sub_share`` of its prominence, that peak is the
    fundamental: measured on the harmonic, a patch shifted by half a course departs by a whole turn."""
    sig, _ = prepare(signal.float(), region)
    spec = spectrum(sig)
    s = spec.side
    peaks = prominent_peaks(spec, r_min=s / max_period, r_max=s / min_period)
    lat = pick_lattice(peaks)
    f = lat.f.clone()
    if sub_share > 0:
        half = f / 2.0
        tol = 0.5 + 0.05 * torch.sqrt(half.square().sum(dim=1, keepdim=True))
        d = torch.minimum(torch.sqrt((peaks.ky - half[:, :1]).square() + (peaks.kx - half[:, 1:]).square()),
                          torch.sqrt((peaks.ky + half[:, :1]).square() + (peaks.kx + half[:, 1:]).square()))
        strong = peaks.prominence >= sub_share * lat.prominence[:, None]
        near = peaks.valid & (d <= tol) & strong & torch.isfinite(d)
        for i in range(f.shape[0]):
            if bool(near[i].any()):
                j = int(torch.where(near[i], peaks.prominence[i], torch.full_like(peaks.prominence[i], -1.0))
                        .argmax())
                f[i] = torch.stack([peaks.ky[i, j], peaks.kx[i, j]])
    f = f / float(s)
    return torch.where(lat.found[:, None], f, torch.full_like(f, math.nan))


def _gauss(sigma: float, device: torch.device) -> torch.Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / max(sigma, 1e-3)) ** 2)
    return g / g.sum()


def _blur(x: torch.Tensor, sy: float, sx: float) -> torch.Tensor:
    """``N×C×H×W`` separable Gaussian blur with zero padding (σ ``sy`` along y, ``sx`` along x)."""
    c = x.shape[1]
    gy, gx = _gauss(sy, x.device), _gauss(sx, x.device)
    x = F.conv2d(x, gy.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(gy.numel() // 2, 0), groups=c)
    return F.conv2d(x, gx.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, gx.numel() // 2), groups=c)


def _smooth_field(x: torch.Tensor, sigma: float, *, step: int = 4) -> torch.Tensor:
    """``N×C×H×W`` Gaussian blur of width ``sigma`` ≫ ``step`` px, computed on a grid ``step`` times
    coarser (box means) and interpolated back (bilinear): the field it gives is smooth on that scale."""
    h, w = x.shape[-2:]
    small = F.avg_pool2d(F.pad(x, (0, (-w) % step, 0, (-h) % step)), step)
    small = _blur(small, sigma / step, sigma / step)
    big = F.interpolate(small, scale_factor=step, mode="bilinear", align_corners=False)
    return big[..., :h, :w]


def demodulate(signal: torch.Tensor, region: torch.Tensor, k: torch.Tensor, *, across: float = 0.35,
               along: float = 3.0, min_cover: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """The local complex amplitude of the lattice line ``k`` (``(ky, kx)`` cycles/px) in one image.

    ``signal``, ``region``: ``H×W``. Returns ``(z, valid)``: complex ``H×W`` and bool ``H×W`` (inside the
    region, with at least ``min_cover`` of the window's weight in it)."""
    ky, kx = float(k[0]), float(k[1])
    period = 1.0 / math.hypot(ky, kx)
    m = region.float()[None, None]
    x = signal.float()[None, None]
    lo = _blur(torch.cat([x * m, m], dim=1), period / 2.5, period / 2.5)
    hp = (x - lo[:, :1] / lo[:, 1:].clamp_min(1e-6)) * m
    h, w = signal.shape
    yy = torch.arange(h, device=signal.device, dtype=torch.float32)[:, None]
    xx = torch.arange(w, device=signal.device, dtype=torch.float32)[None, :]
    ph = -2.0 * math.pi * (ky * yy + kx * xx)
    # lines run across the dominant axis of k: narrow along them, `across` periods wide across them
    sy, sx = (along, across * period) if abs(kx) >= abs(ky) else (across * period, along)
    acc = _blur(torch.cat([hp * torch.cos(ph), hp * torch.sin(ph), m], dim=1), sy, sx)[0]
    den = acc[2]
    z = torch.complex(acc[0], acc[1]) / den.clamp_min(1e-6)
    return z, region & (den > min_cover)


def smooth_phase(z: torch.Tensor, valid: torch.Tensor, *, degree: int = 3, rounds: int = 4) -> torch.Tensor:
    """``H×W``: the polynomial phase field (degree ``degree`` in normalised (y, x), no constant term) whose
    gradient best fits the phase gradient of ``z`` (complex ``H×W``) over ``valid`` pairs of neighbours,
    by least squares with residuals beyond 3 MADs dropped after each of ``rounds`` fits."""
    h, w = z.shape
    dev = z.device
    c = max(h, w) / 2.0
    yy = ((torch.arange(h, device=dev, dtype=torch.float64) - h / 2) / c)[:, None].expand(h, w)
    xx = ((torch.arange(w, device=dev, dtype=torch.float64) - w / 2) / c)[None, :].expand(h, w)
    exps = [(a, b) for a in range(degree + 1) for b in range(degree + 1 - a) if a + b > 0]  # X^a Y^b
    gx = torch.angle(z[:, 1:] * z[:, :-1].conj()).double()
    okx = valid[:, 1:] & valid[:, :-1]
    gy = torch.angle(z[1:, :] * z[:-1, :].conj()).double()
    oky = valid[1:, :] & valid[:-1, :]
    if int(okx.sum()) + int(oky.sum()) < 4 * len(exps):
        return torch.zeros(h, w, device=dev)
    xm, ym = (xx[:, 1:] + xx[:, :-1]) / 2, yy[:, 1:]
    xn, yn = xx[1:, :], (yy[1:, :] + yy[:-1, :]) / 2

    def d_dx(a: int, b: int) -> torch.Tensor:
        return (a * xm ** max(a - 1, 0) * ym ** b / c)[okx] if a else torch.zeros_like(xm[okx])

    def d_dy(a: int, b: int) -> torch.Tensor:
        return (b * xn ** a * yn ** max(b - 1, 0) / c)[oky] if b else torch.zeros_like(xn[oky])

    amat = torch.cat([torch.stack([d_dx(a, b) for a, b in exps], 1),
                      torch.stack([d_dy(a, b) for a, b in exps], 1)])
    rhs = torch.cat([gx[okx], gy[oky]])
    keep = torch.ones_like(rhs, dtype=torch.bool)
    coef = torch.zeros(len(exps), dtype=torch.float64, device=dev)
    for _ in range(rounds):
        a, y = amat[keep], rhs[keep]
        coef = torch.linalg.solve(a.T @ a + 1e-9 * torch.eye(len(exps), dtype=a.dtype, device=dev), a.T @ y)
        r = rhs - amat @ coef
        keep = r.abs() < 3.0 * 1.4826 * r[keep].abs().median() + 1e-9
    psi = sum(co * xx ** a * yy ** b for co, (a, b) in zip(coef, exps, strict=True))
    return torch.as_tensor(psi, device=dev).float()


def phase_departure(signal: torch.Tensor, region: torch.Tensor, *, k: torch.Tensor | None = None,
                    across: float = 0.35, along: float = 3.0, degree: int = 3, reach: float = 2.0,
                    min_amp: float = 0.35, inlier_deg: float = 45.0, rounds: int = 4,
                    coherent: float = 0.0) -> torch.Tensor:
    """``B×H×W``: degrees (0–180) by which the local phase of the lattice's fundamental departs from the
    wall's own smooth phase field (0 where not measured: outside the region, a weak local amplitude, or no
    lattice). ``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool; ``k``: ``B×2`` cycles/px (measured by
    :func:`fundamental_frequency` when None).

    With ``coherent`` > 0 (px), the departure is that of the **mean departure phasor** over a Gaussian
    window of that width (over the measured pixels, where they cover ≥ 0.3 of it): a patch carries one
    phase offset over its whole area, so its phasors add up, while the wall's irregular joints depart
    by scattered angles over a few px and average out (measured on seeds 201–204, 48 pairs per kind, the
    phase step alone: offset boxes 35 → 40, misplaced 23 → 24, clean walls with a box 0 → 1, box pairs
    with a box matching nothing 14 → 7, with ``coherent`` 6 and the boxes at 52°; 4–8 px and 45–52°
    read alike)."""
    b, h, w = signal.shape
    if k is None:
        k = fundamental_frequency(signal, region)
    out = torch.zeros(b, h, w, device=signal.device)
    for i in range(b):
        if not bool(torch.isfinite(k[i]).all()) or int(region[i].sum()) < 256:
            continue
        period = 1.0 / float(torch.hypot(k[i][0], k[i][1]))
        z, ok = demodulate(signal[i], region[i], k[i], across=across, along=along)
        amp = z.abs()
        if not bool(ok.any()):
            continue
        good = ok & (amp > min_amp * amp[ok].median())
        psi = smooth_phase(z, good, degree=degree)
        u = torch.where(good, z / amp.clamp_min(1e-12) * torch.polar(torch.ones_like(psi), -psi),
                        torch.zeros_like(z))
        inl = good
        dep = torch.zeros(h, w, device=signal.device)
        for _ in range(rounds):
            acc = _smooth_field(torch.stack([u.real * inl, u.imag * inl])[None], reach * period)[0]
            dep = torch.angle(u * torch.complex(acc[0], -acc[1])).abs()
            inl = good & (dep < math.radians(inlier_deg))
        if coherent > 0:  # the departure's mean phasor over a patch-sized window
            ref = torch.complex(acc[0], acc[1])
            d = torch.where(good, u * ref.conj() / ref.abs().clamp_min(1e-12), torch.zeros_like(u))
            sm = _blur(torch.stack([d.real, d.imag, good.float()])[None], coherent, coherent)[0]
            good = region[i] & (sm[2] > 0.3)
            dep = torch.angle(torch.complex(sm[0], sm[1])).abs()
        out[i] = torch.where(good, torch.rad2deg(dep), torch.zeros_like(dep))
    return out


def departure_boxes(departure: torch.Tensor, *, threshold: float = 60.0, peak: float = 60.0,
                    close_px: int = 5, min_area: int = 250, edge_frac: float = 0.5, edge_q: float = 0.9,
                    edge_floor: float = 45.0, edge_reach: int = 8) -> torch.Tensor:
    """``B×H×W`` bool: the components (8-connected) of ``departure > threshold`` (degrees, ``B×H×W``)
    closed over ``close_px``, with at least ``min_area`` px and a peak of at least ``peak`` degrees, each
    redrawn at its **half-departure contour** (``edge_frac`` > 0): the pieces of ``departure ≥
    max(edge_frac · d, edge_floor)`` (closed the same way, at least ``min_area`` px, within ``edge_reach``
    px of the component) that overlap it, ``d`` its ``edge_q`` quantile. The demodulation window averages
    the phasors on both sides of a patch's border, so the departure there is about half the patch's own: a
    fixed threshold draws a patch that departs by 150° ≈ half a window too wide, one that departs by 90°
    too narrow. The floor is :func:`phase_departure`'s inlier bound (45°: the wall's own irregular joints
    depart up to it) and the reach about the window's width across the lines (σ = 0.35 P ≈ 8–11 px), so
    a contour does not run on along a joint of the wall."""
    import numpy as np
    from scipy import ndimage

    eight = [[1, 1, 1]] * 3
    hot_np = close_binary(departure > threshold, close_px=close_px).cpu().numpy()
    dep_np = departure.cpu().numpy()
    keep = torch.zeros(departure.shape, dtype=torch.bool)
    for i in range(hot_np.shape[0]):
        labels, n = ndimage.label(hot_np[i], structure=eight)
        if n == 0:
            continue
        idx = range(1, n + 1)
        areas = ndimage.sum_labels(hot_np[i], labels, idx)
        peaks = ndimage.maximum(dep_np[i], labels, idx)
        ok = [j + 1 for j in range(n) if areas[j] >= min_area and peaks[j] >= peak]
        if not ok:
            continue
        if edge_frac <= 0:
            keep[i] = torch.from_numpy(np.isin(labels, ok))
            continue
        out = np.zeros(labels.shape, dtype=bool)
        for j in ok:
            comp = labels == j
            level = max(edge_frac * float(np.quantile(dep_np[i][comp], edge_q)), edge_floor)
            redrawn = close_binary(departure[i:i + 1] >= level, close_px=close_px)[0].cpu().numpy()
            if edge_reach > 0:
                redrawn &= ndimage.binary_dilation(comp, structure=np.ones((3, 3), bool),
                                                   iterations=edge_reach)
            lab2, _ = ndimage.label(redrawn, structure=eight)
            pieces = [int(t) for t in np.unique(lab2[comp & redrawn])
                      if t > 0 and (lab2 == t).sum() >= min_area]
            out |= np.isin(lab2, pieces) if pieces else comp
        keep[i] = torch.from_numpy(out)
    return keep.to(departure.device)
