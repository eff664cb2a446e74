"""Shared FFT primitives: windows, mask apodization, detrending, power spectra, radial profiles, PSD→ACF and
the dominant-period estimate used by the tiling, latent and dataset analyzers.

Every function is batched over a leading N dimension (``N×H×W``), runs on the input's device and keeps its
dtype (float32 by default). Frequencies are measured on a square FFT grid of side ``S = max(H, W)``
(non-square inputs are zero-padded), so a radius of ``r`` bins is a period of ``S / r`` pixels in every
direction.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

__all__ = ["PeriodEstimate", "hann2d", "apodized_weights", "detrend", "prepare", "fft_side", "power_spectrum",
           "radius_grid", "radial_profile", "ring_centroid", "smooth_baseline", "autocorrelation",
           "dominant_period"]


class PeriodEstimate(NamedTuple):
    """Dominant period of each of N images; every field is an ``(N,)`` tensor (NaN where undefined)."""

    period_px: torch.Tensor
    radius_bin: torch.Tensor
    score: torch.Tensor


def hann2d(height: int, width: int, *, device: Optional[torch.device] = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Separable 2-D Hann window, ``H×W``, zero at the borders."""
    wy = torch.hann_window(height, periodic=False, device=device, dtype=dtype)
    wx = torch.hann_window(width, periodic=False, device=device, dtype=dtype)
    return wy[:, None] * wx[None, :]


def _box_mean(v: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k×k box (k odd) with zero padding, by cumulative sums: ``N×H×W`` → ``N×H×W``, O(HW)."""
    r = k // 2
    p = F.pad(v, (r + 1, r, r + 1, r))
    c = p.cumsum(dim=-1).cumsum(dim=-2)
    h, w = v.shape[-2:]
    total = c[..., k:k + h, k:k + w] - c[..., :h, k:k + w] - c[..., k:k + h, :w] + c[..., :h, :w]
    return total / float(k * k)


def apodized_weights(valid: torch.Tensor, *, taper_px: int = 8) -> torch.Tensor:
    """Soft weights from a boolean validity mask: 1 inside, falling smoothly to 0 at every mask edge.

    ``valid`` is ``N×H×W`` bool; returns ``N×H×W`` float. The local fraction of valid pixels in a
    ``(2·taper_px+1)²`` box goes through a raised cosine (0 at ≤ 50 % valid, 1 when the whole box is valid),
    times the mask itself. The image border counts as an edge too. Masks need not be rectangles.
    """
    v = valid.to(torch.float32)
    frac = _box_mean(v, 2 * max(1, int(taper_px)) + 1)
    t = ((frac - 0.5) * 2.0).clamp(0.0, 1.0)
    return (0.5 - 0.5 * torch.cos(math.pi * t)) * v


def detrend(x: torch.Tensor, weights: torch.Tensor, *, order: int = 2) -> torch.Tensor:
    """Remove the weighted least-squares polynomial surface of degree ``order`` (0, 1 or 2) from ``x``.

    Removes the mean, illumination gradients (order 1) and vignetting (order 2) so that they cannot
    masquerade as the fundamental. ``x`` and ``weights`` are ``N×H×W``; returns ``N×H×W``.
    """
    n, h, w = x.shape
    yy = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)[:, None].expand(h, w)
    xx = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)[None, :].expand(h, w)
    terms = [torch.ones_like(xx)]
    if order >= 1:
        terms += [xx, yy]
    if order >= 2:
        terms += [xx * xx, xx * yy, yy * yy]
    basis = torch.stack(terms, dim=0).reshape(-1, h * w).contiguous()  # K×HW
    wb = weights.reshape(n, 1, h * w) * basis[None]  # N×K×HW
    a = wb @ basis.T  # N×K×K
    b = wb @ x.reshape(n, h * w, 1)  # N×K×1
    eye = torch.eye(a.shape[-1], device=x.device, dtype=x.dtype)
    coef = torch.linalg.solve(a + 1e-6 * eye * a.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None].clamp_min(1e-12),
                              b)
    return x - (coef.transpose(1, 2) @ basis).reshape(n, h, w)


def prepare(x: torch.Tensor, valid: Optional[torch.Tensor] = None, *, window: bool = True, taper_px: int = 8,
            order: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Detrended, windowed signal and its weights, ready for a spectrum.

    Non-finite pixels count as invalid. With ``window=True`` the weights are the apodized mask times a
    Hann window; with ``window=False`` they are the hard mask (the "no Hann" spectrum of the seed).
    Returns ``(signal, weights)``, both ``N×H×W``.
    """
    finite = torch.isfinite(x)
    v = finite if valid is None else (valid.bool() & finite)
    x0 = torch.where(v, x, torch.zeros_like(x))
    if window:
        wts = apodized_weights(v, taper_px=taper_px) if valid is not None else v.to(x.dtype)
        wts = wts * hann2d(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
    else:
        wts = v.to(x.dtype)
    # Fitting with the window's own weights makes the windowed residual orthogonal to the polynomial basis:
    # its weighted mean (the DC of the spectrum) and gradients are exactly zero.
    resid = detrend(x0, wts, order=order)
    return resid * wts, wts


def fft_side(height: int, width: int) -> int:
    """Side of the square FFT grid: ``max(H, W)``."""
    return max(height, width)


def power_spectrum(signal: torch.Tensor, *, side: Optional[int] = None) -> torch.Tensor:
    """``|rfft2|²`` of ``N×H×W`` on a square ``side×side`` grid (zero-padded). Returns ``N×side×(side//2+1)``."""
    s = side or fft_side(signal.shape[-2], signal.shape[-1])
    spec = torch.fft.rfft2(signal, s=(s, s))
    return spec.real.square() + spec.imag.square()


def radius_grid(side: int, *, device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32
                ) -> torch.Tensor:
    """Radius in bins of every rfft2 coefficient of a ``side×side`` grid: ``side×(side//2+1)``."""
    ky = torch.fft.fftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    kx = torch.fft.rfftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    return torch.sqrt(ky[:, None].square() + kx[None, :].square())


def _half_plane_weights(side: int, *, device: Optional[torch.device], dtype: torch.dtype) -> torch.Tensor:
    """rfft2 stores columns 1..side/2-1 once for two Hermitian twins: weight 2 there, 1 elsewhere."""
    w = torch.full((side, side // 2 + 1), 2.0, device=device, dtype=dtype)
    w[:, 0] = 1.0
    if side % 2 == 0:
        w[:, -1] = 1.0
    return w


def radial_profile(power: torch.Tensor, *, side: Optional[int] = None) -> torch.Tensor:
    """Mean power in rings one bin wide around each integer radius ``0..side//2``.

    ``power`` is ``N×side×(side//2+1)`` (from :func:`power_spectrum`); returns ``N×(side//2+1)``.
    """
    n = power.shape[0]
    s = side or power.shape[-2]
    r = radius_grid(s, device=power.device, dtype=power.dtype)
    idx = torch.round(r).long().clamp_max(s // 2 + 1)  # the corners beyond Nyquist share the last bin
    hw = _half_plane_weights(s, device=power.device, dtype=power.dtype)
    nb = s // 2 + 2
    flat_idx = idx.flatten().expand(n, -1)
    sums = torch.zeros(n, nb, device=power.device, dtype=power.dtype).scatter_add_(
        1, flat_idx, (power * hw).flatten(1))
    counts = torch.zeros(nb, device=power.device, dtype=power.dtype).scatter_add_(0, idx.flatten(), hw.flatten())
    return (sums / counts.clamp_min(1.0))[:, : s // 2 + 1]


def smooth_baseline(profile: torch.Tensor, *, rel_width: float = 0.35, min_width: int = 3) -> torch.Tensor:
    """A smooth background under a radial profile: a running median over log power.

    The window grows with the radius (``±max(min_width, rel_width·r)`` bins), so that a sharp peak at any
    frequency stands out while the 1/f slope of natural images does not. ``N×R`` → ``N×R``.
    """
    n, nr = profile.shape
    logp = torch.log(profile.clamp_min(1e-30))
    r = torch.arange(nr, device=profile.device)
    half = torch.clamp((rel_width * r.to(profile.dtype)).long(), min=min_width)
    maxh = int(half.max().item()) if nr else 0
    offs = torch.arange(-maxh, maxh + 1, device=profile.device)
    pos = r[:, None] + offs[None, :]  # R×K
    ok = (offs[None, :].abs() <= half[:, None]) & (pos >= 1) & (pos < nr)
    vals = logp[:, pos.clamp(0, nr - 1)]  # N×R×K
    vals = torch.where(ok[None], vals, torch.full_like(vals, float("inf")))
    vals = vals.sort(dim=-1).values
    mid = ((ok.sum(dim=-1) - 1).clamp_min(0) // 2)[None, :, None].expand(n, nr, 1)
    return torch.exp(vals.gather(-1, mid)[..., 0])


def ring_centroid(power: torch.Tensor, baseline: torch.Tensor, center: torch.Tensor, *, half_width: float = 1.5,
                  reach: int = 2) -> torch.Tensor:
    """Sub-bin radius of a spectral peak near radius ``center``.

    The strongest coefficient of the ring ``|r − center| ≤ half_width`` is located, and the excess power
    (over ``baseline``) in its ``(2·reach+1)²`` neighbourhood gives a power-weighted centroid *vector*
    ``(k_y, k_x)``; its length is the radius. A vector centroid is unbiased where a centroid of radii is
    not (the window spreads a peak sideways, and sideways means outwards).
    ``power`` ``N×S×(S//2+1)``; ``baseline`` ``N×R``; ``center`` ``(N,)``. Returns ``(N,)``.
    """
    n, s, sw = power.shape
    r = radius_grid(s, device=power.device, dtype=power.dtype)
    ring = (r[None] - center[:, None, None]).abs() <= half_width
    peak = torch.where(ring, power, torch.full_like(power, -1.0)).flatten(1).argmax(dim=1)
    iy, ix = peak // sw, peak % sw
    offs = torch.arange(-reach, reach + 1, device=power.device)
    yy = (iy[:, None, None] + offs[None, :, None]) % s  # ky wraps around in FFT order
    xx = (ix[:, None, None] + offs[None, None, :])
    yy, xx = torch.broadcast_tensors(yy, xx)
    inside = (xx >= 0) & (xx < sw)
    xx = xx.clamp(0, sw - 1)
    flat = (yy * sw + xx).flatten(1)
    pw = power.flatten(1).gather(1, flat)
    ky = torch.fft.fftfreq(s, d=1.0 / s, device=power.device, dtype=power.dtype)[yy].flatten(1)
    kx = xx.to(power.dtype).flatten(1)
    rad = torch.sqrt(ky.square() + kx.square())
    bg = baseline.gather(1, torch.round(rad).long().clamp_max(baseline.shape[1] - 1))
    excess = (pw - bg).clamp_min(0.0) * inside.flatten(1).to(power.dtype)
    wsum = excess.sum(dim=1)
    cy = (excess * ky).sum(dim=1) / wsum.clamp_min(1e-30)
    cx = (excess * kx).sum(dim=1) / wsum.clamp_min(1e-30)
    return torch.where(wsum > 0, torch.sqrt(cy.square() + cx.square()), center)


def autocorrelation(signal: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Normalised autocorrelation by Wiener–Khinchin, without circular wrap-around.

    Both inputs are ``N×H×W``; the FFT is zero-padded to ``2H×2W`` and the ACF of the signal is divided by
    the ACF of the weights, which undoes the taper of the window and of the mask. Returns ``N×2H×2W``
    (lag (0, 0) at index [0, 0], negative lags wrapped), 1 at lag 0.
    """
    h, w = signal.shape[-2:]
    size = (2 * h, 2 * w)
    fs = torch.fft.rfft2(signal, s=size)
    fw = torch.fft.rfft2(weights, s=size)
    acf = torch.fft.irfft2(fs.real.square() + fs.imag.square(), s=size)
    norm = torch.fft.irfft2(fw.real.square() + fw.imag.square(), s=size)
    support = norm > 0.05 * norm[..., :1, :1]
    acf = torch.where(support, acf / norm.clamp_min(1e-12), torch.zeros_like(acf))
    return acf / acf[..., :1, :1].clamp_min(1e-30)


def _pick_fundamental(ratio: torch.Tensor, r_min: float, r_max: float, *, sub_frac: float,
                      min_sub_excess: float = 1.0) -> torch.Tensor:
    """Index of the fundamental in ``N×R`` peak ratios (profile / baseline).

    The strongest peak in ``[r_min, r_max]`` is taken first; then, if its half or its third is also a clear
    peak (excess at least ``sub_frac`` of the strongest excess), that lower frequency is the fundamental:
    the strongest line of a texture is often a harmonic.
    """
    n, nr = ratio.shape
    r = torch.arange(nr, device=ratio.device, dtype=ratio.dtype)
    band = (r >= r_min) & (r <= r_max)
    left = torch.cat([ratio[:, :1], ratio[:, :-1]], dim=1)
    right = torch.cat([ratio[:, 1:], ratio[:, -1:]], dim=1)
    local_max = (ratio >= left) & (ratio >= right)
    excess = torch.where(band[None] & local_max, ratio - 1.0, torch.full_like(ratio, -1.0))
    best = excess.argmax(dim=1)
    best_ex = excess.gather(1, best[:, None])[:, 0]
    chosen = best
    for d in (2, 3):
        target = torch.round(best.to(ratio.dtype) / d).long()
        # Look ±1 bin around best/d for a local maximum.
        cand = torch.stack([target - 1, target, target + 1], dim=1).clamp(0, nr - 1)
        ex = excess.gather(1, cand)
        j = ex.argmax(dim=1)
        sub = cand.gather(1, j[:, None])[:, 0]
        sub_ex = ex.gather(1, j[:, None])[:, 0]
        ok = ((sub_ex >= sub_frac * best_ex) & (sub_ex >= min_sub_excess) & (target.to(ratio.dtype) >= r_min)
              & (chosen == best))
        chosen = torch.where(ok, sub, chosen)
    return chosen


def dominant_period(x: torch.Tensor, *, valid: Optional[torch.Tensor] = None, min_period_px: float = 3.0,
                    max_period_frac: float = 0.5, sub_frac: float = 0.25,
                    min_sub_ratio: float = 3.0) -> PeriodEstimate:
    """Dominant (fundamental) spatial period of each image.

    Args:
        x: ``N×H×W`` images (one channel each).
        valid: optional ``N×H×W`` bool; only these pixels count (the mask edge is apodized).
        min_period_px: shortest period considered.
        max_period_frac: longest period considered, as a fraction of the shorter side.
        sub_frac: a peak at ½ or ⅓ of the strongest frequency is the fundamental when its excess over the
            background is at least this fraction of the strongest one's ...
        min_sub_ratio: ... and it stands at least this many times above its own background.

    Returns:
        :class:`PeriodEstimate` of ``(N,)`` tensors: ``period_px`` (S / radius), ``radius_bin`` (sub-bin, on
        the square ``S = max(H, W)`` grid) and ``score`` in [0, 1], the confidence that a dominant period
        exists at all: ``clamp(log10(peak / background) − 0.25, 0, 1)`` — about 0 for a peak less than 2× its
        background (plaster, gravel, noise), 1 above ~18×.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be N×H×W; got {tuple(x.shape)}")
    x = x if x.is_floating_point() else x.float()
    h, w = x.shape[-2:]
    s = fft_side(h, w)
    sig, _ = prepare(x, valid)
    power = power_spectrum(sig, side=s)
    profile = radial_profile(power, side=s)
    # A floor under the background keeps numerically empty bands (a noise-free synthetic image) from
    # producing huge ratios out of rounding noise.
    floor = 1e-7 * profile[:, 1:].amax(dim=1, keepdim=True).clamp_min(1e-30)
    base = torch.maximum(smooth_baseline(profile), floor)
    ratio = profile / base
    r_min = max(1.5, s / (max_period_frac * min(h, w)))
    r_max = min(s / 2.0, s / min_period_px)
    idx = _pick_fundamental(ratio, r_min, r_max, sub_frac=sub_frac, min_sub_excess=min_sub_ratio - 1.0)
    peak_ratio = ratio.gather(1, idx[:, None])[:, 0]
    radius = ring_centroid(power, base, idx.to(x.dtype))
    score = ((torch.log10(peak_ratio.clamp_min(1e-30)) - 0.25) / 1.0).clamp(0.0, 1.0)
    has_signal = profile[:, 1:].sum(dim=1) > 0
    nan = torch.full_like(radius, float("nan"))
    radius = torch.where(has_signal, radius, nan)
    score = torch.where(has_signal, score, torch.zeros_like(score))
    return PeriodEstimate(period_px=s / radius, radius_bin=radius, score=score)
