"""Shared FFT primitives: windows, mask apodization, detrending, power spectra, radial profiles, spectral
peaks with sub-bin refinement, PSD→ACF (Wiener–Khinchin), the periodic-plus-smooth decomposition and the
dominant-period estimate used by the tiling, latent and dataset analyzers.

Every function is batched over a leading N dimension (``N×H×W``), runs on the input's device and keeps its
dtype (float32 by default); nothing here moves data to the host. Frequencies are measured on a square FFT
grid of side ``S = max(H, W)`` (non-square inputs are zero-padded), so a radius of ``r`` bins is a period of
``S / r`` pixels in every direction. The definitions are written out in ``docs/tiling.md``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

__all__ = [
    "PeriodEstimate", "Spectrum", "Peaks", "Periodicity",
    "hann2d", "apodized_weights", "default_taper_px", "detrend", "prepare", "fft_side", "spectrum",
    "power_spectrum", "radius_grid", "half_plane_weights", "radial_profile", "ring_energy", "axis_fraction",
    "find_peaks", "pick_fundamental", "acf_along", "first_acf_peak", "autocorrelation_map",
    "periodic_smooth_spectrum", "analyze_periodicity", "dominant_period",
]


class PeriodEstimate(NamedTuple):
    """Dominant period of each of N images; every field is an ``(N,)`` tensor (NaN where undefined)."""

    period_px: torch.Tensor
    radius_bin: torch.Tensor
    score: torch.Tensor


# ------------------------------------------------------------------------------------------------------
# Windows, masks and detrending
# ------------------------------------------------------------------------------------------------------
def hann2d(height: int, width: int, *, device: Optional[torch.device] = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Separable 2-D Hann window, ``H×W``, zero at the borders."""
    wy = torch.hann_window(height, periodic=False, device=device, dtype=dtype)
    wx = torch.hann_window(width, periodic=False, device=device, dtype=dtype)
    if height == 1:
        wy = torch.ones_like(wy)
    if width == 1:
        wx = torch.ones_like(wx)
    return wy[:, None] * wx[None, :]


def _box_mean(v: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k×k box (k odd) by cumulative sums, O(HW): ``N×H×W`` → ``N×H×W``.

    Outside the frame counts as 1 (valid): the frame border is handled by the Hann window, not here.
    """
    r = k // 2
    p = F.pad(v - 1.0, (r + 1, r, r + 1, r)) + 1.0
    p[..., :1, :] = 0.0
    p[..., :, :1] = 0.0
    c = p.cumsum(dim=-1).cumsum(dim=-2)
    h, w = v.shape[-2:]
    total = c[..., k:k + h, k:k + w] - c[..., :h, k:k + w] - c[..., k:k + h, :w] + c[..., :h, :w]
    return total / float(k * k)


def default_taper_px(height: int, width: int) -> int:
    """Width of the raised-cosine taper at mask edges: 3 % of the shorter side, at least 3 px."""
    return max(3, round(0.03 * min(height, width)))


def apodized_weights(valid: torch.Tensor, *, taper_px: Optional[int] = None) -> torch.Tensor:
    """Soft weights from a boolean validity mask: 1 inside, falling smoothly to 0 at every mask edge.

    ``valid`` is ``N×H×W`` bool; returns ``N×H×W`` float32. The local fraction of valid pixels in a
    ``(2·taper_px+1)²`` box goes through a raised cosine (0 at ≤ 50 % valid, 1 when the whole box is valid),
    times the mask itself, so the weight rises from 0 to 1 over about ``taper_px`` pixels inside any mask
    edge (masks need not be rectangles; holes left by NaN pixels are tapered the same way). The frame
    border is not an edge here (the Hann window takes care of it): an all-valid mask gives all ones.
    """
    t_px = taper_px if taper_px is not None else default_taper_px(valid.shape[-2], valid.shape[-1])
    t_px = max(1, int(t_px))
    v = valid.to(torch.float32)
    h, w = v.shape[-2:]
    # The taper is smooth, so its box mean can be taken on a coarser grid (cost / ds²) and interpolated back.
    ds = max(1, min(t_px // 3, h, w))
    if ds > 1:
        coarse = F.avg_pool2d(v[:, None], ds, ceil_mode=True)[:, 0]
        frac = _box_mean(coarse, 2 * max(1, round(t_px / ds)) + 1)
        frac = F.interpolate(frac[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    else:
        frac = _box_mean(v, 2 * t_px + 1)
    t = ((frac - 0.5) * 2.0).clamp(0.0, 1.0)
    return (0.5 - 0.5 * torch.cos(math.pi * t)) * v


def _powers(n: int, k: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``n×(k+1)``: the coordinate ``linspace(-1, 1, n)`` raised to the powers 0..k."""
    t = torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) if n > 1 else torch.zeros(1, device=device,
                                                                                            dtype=dtype)
    return torch.stack([t ** p for p in range(k + 1)], dim=1)


def _exponents(order: int) -> list[tuple[int, int]]:
    """(power of y, power of x) of every monomial of total degree ≤ ``order``."""
    return [(a, d - a) for d in range(order + 1) for a in range(d, -1, -1)]


def detrend(x: torch.Tensor, weights: torch.Tensor, *, order: int = 2) -> torch.Tensor:
    """Remove the weighted least-squares polynomial surface of degree ``order`` (0, 1 or 2) from ``x``.

    Removes the mean, illumination gradients (order 1) and vignetting (order 2) so that they cannot
    masquerade as the fundamental. ``x`` and ``weights`` are ``N×H×W``; returns ``N×H×W``. The monomials
    are separable, so the normal equations come from two small matrix products (moments up to degree
    ``2·order`` of the weights, up to ``order`` of ``weights·x``) and are solved in float64.
    """
    n, h, w = x.shape
    dev, dt = x.device, x.dtype
    py = _powers(h, 2 * order, device=dev, dtype=dt)  # H×(2o+1)
    px = _powers(w, 2 * order, device=dev, dtype=dt)  # W×(2o+1)
    mw = py.T @ (weights @ px)  # N×(2o+1)×(2o+1): Σ w y^a x^b
    mx = py[:, : order + 1].T @ ((weights * x) @ px[:, : order + 1])  # N×(o+1)×(o+1)
    ex = _exponents(order)
    ay = torch.tensor([e[0] for e in ex], device=dev)
    ax = torch.tensor([e[1] for e in ex], device=dev)
    a = mw[:, ay[:, None] + ay[None, :], ax[:, None] + ax[None, :]].double()  # N×K×K
    b = mx[:, ay, ax].double()[..., None]  # N×K×1
    eye = torch.eye(len(ex), device=dev, dtype=a.dtype)
    ridge = 1e-9 * a.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None].clamp_min(1e-30) + 1e-30
    coef = torch.linalg.solve(a + ridge * eye, b)[..., 0].to(dt)  # N×K
    # Σ_k c_k y^a_k x^b_k as (N×H×(o+1)) @ ((o+1)×W): gather coefficients into a (o+1)×(o+1) grid.
    grid = torch.zeros(n, order + 1, order + 1, device=dev, dtype=dt)
    grid[:, ay, ax] = coef
    surface = py[:, : order + 1] @ grid @ px[:, : order + 1].T
    return x - surface


def prepare(x: torch.Tensor, valid: Optional[torch.Tensor] = None, *, window: bool = True,
            taper_px: Optional[int] = None, order: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Detrended, windowed signal and its weights, ready for a spectrum.

    Non-finite pixels count as invalid. With ``window=True`` the weights are the apodized mask times a
    separable Hann window over the frame (exactly Hann when every pixel is valid); with ``window=False``
    they are the hard mask (the "no Hann" spectrum of the seed). The polynomial of degree ``order`` is fitted
    with the weights themselves, so the windowed residual has zero weighted mean (no DC) and no gradient.
    Returns ``(signal, weights)``, both ``N×H×W``.
    """
    finite = torch.isfinite(x)
    v = finite if valid is None else (valid.bool() & finite)
    x0 = torch.where(v, x, torch.zeros_like(x))
    if window:
        wts = apodized_weights(v, taper_px=taper_px).to(x.dtype)
        wts = wts * hann2d(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
    else:
        wts = v.to(x.dtype)
    resid = detrend(x0, wts, order=order)
    return resid * wts, wts


# ------------------------------------------------------------------------------------------------------
# Spectra on the square S×S grid
# ------------------------------------------------------------------------------------------------------
def fft_side(height: int, width: int) -> int:
    """Side of the square FFT grid: ``max(H, W)``."""
    return max(height, width)


class Spectrum(NamedTuple):
    """Half-plane power spectrum on the square grid.

    ``power`` ``N×S×(S//2+1)`` (rfft2 layout: ky in FFT order, kx ≥ 0); ``ky``, ``kx`` and ``radius`` are
    ``S×(S//2+1)`` frequencies in bins (``period = S / radius`` px); ``weight`` is 2 for the columns that
    stand for two Hermitian twins and 1 elsewhere, so that ``(power * weight).sum()`` is the full-plane energy.
    """

    power: torch.Tensor
    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    weight: torch.Tensor

    @property
    def side(self) -> int:
        return int(self.power.shape[-2])


def radius_grid(side: int, *, device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32
                ) -> torch.Tensor:
    """Radius in bins of every rfft2 coefficient of a ``side×side`` grid: ``side×(side//2+1)``."""
    ky = torch.fft.fftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    kx = torch.fft.rfftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    return torch.sqrt(ky[:, None].square() + kx[None, :].square())


def half_plane_weights(side: int, *, device: Optional[torch.device] = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """rfft2 stores columns 1..side/2-1 once for two Hermitian twins: weight 2 there, 1 elsewhere."""
    w = torch.full((side, side // 2 + 1), 2.0, device=device, dtype=dtype)
    w[:, 0] = 1.0
    if side % 2 == 0:
        w[:, -1] = 1.0
    return w


def power_spectrum(signal: torch.Tensor, *, side: Optional[int] = None) -> torch.Tensor:
    """``|rfft2|²`` of ``N×H×W`` on a square ``side×side`` grid (zero-padded). Returns ``N×side×(side//2+1)``."""
    s = side or fft_side(signal.shape[-2], signal.shape[-1])
    spec = torch.fft.rfft2(signal, s=(s, s))
    return spec.real.square() + spec.imag.square()


def spectrum(signal: torch.Tensor, *, side: Optional[int] = None) -> Spectrum:
    """:func:`power_spectrum` plus its frequency grids (see :class:`Spectrum`)."""
    s = side or fft_side(signal.shape[-2], signal.shape[-1])
    power = power_spectrum(signal, side=s)
    dev, dt = power.device, power.dtype
    ky = torch.fft.fftfreq(s, d=1.0 / s, device=dev, dtype=dt)[:, None].expand(s, s // 2 + 1)
    kx = torch.fft.rfftfreq(s, d=1.0 / s, device=dev, dtype=dt)[None, :].expand(s, s // 2 + 1)
    return Spectrum(power, ky, kx, torch.sqrt(ky.square() + kx.square()), half_plane_weights(s, device=dev,
                                                                                              dtype=dt))


def radial_profile(power: torch.Tensor, *, side: Optional[int] = None) -> torch.Tensor:
    """Mean power in rings one bin wide around each integer radius ``0..side//2``.

    ``power`` is ``N×side×(side//2+1)`` (from :func:`power_spectrum`); returns ``N×(side//2+1)``.
    """
    n = power.shape[0]
    s = side or power.shape[-2]
    r = radius_grid(s, device=power.device, dtype=power.dtype)
    idx = torch.round(r).long().clamp_max(s // 2 + 1)  # the corners beyond Nyquist share the last bin
    hw = half_plane_weights(s, device=power.device, dtype=power.dtype)
    nb = s // 2 + 2
    flat_idx = idx.flatten().expand(n, -1)
    sums = torch.zeros(n, nb, device=power.device, dtype=power.dtype).scatter_add_(
        1, flat_idx, (power * hw).flatten(1))
    counts = torch.zeros(nb, device=power.device, dtype=power.dtype).scatter_add_(0, idx.flatten(), hw.flatten())
    return (sums / counts.clamp_min(1.0))[:, : s // 2 + 1]


def ring_energy(spec: Spectrum, center: torch.Tensor, half_width: torch.Tensor) -> torch.Tensor:
    """Energy (summed power, both half-planes) in the ring ``|r − center| ≤ half_width``; all ``(N,)``.

    NaN where ``center`` is NaN.
    """
    ring = (spec.radius[None] - center[:, None, None]).abs() <= half_width[:, None, None]
    e = (spec.power * spec.weight * ring).sum(dim=(-2, -1))
    return torch.where(torch.isfinite(center), e, torch.full_like(e, float("nan")))


def axis_fraction(spec: Spectrum, center: torch.Tensor, half_width: torch.Tensor, *,
                  axis_half_width: float = 1.0) -> torch.Tensor:
    """Share of the energy of the ring ``|r − center| ≤ half_width`` that lies within ``axis_half_width``
    bins of the ky = 0 or kx = 0 axis (the "cross"). ``(N,)`` in [0, 1]; NaN for an empty ring."""
    ring = (spec.radius[None] - center[:, None, None]).abs() <= half_width[:, None, None]
    axis = (spec.ky.abs() <= axis_half_width) | (spec.kx.abs() <= axis_half_width)
    pw = spec.power * spec.weight * ring
    total = pw.sum(dim=(-2, -1))
    on_axis = (pw * axis).sum(dim=(-2, -1))
    out = on_axis / total.clamp_min(torch.finfo(total.dtype).tiny)
    return torch.where((total > 0) & torch.isfinite(center), out, torch.full_like(out, float("nan")))


# ------------------------------------------------------------------------------------------------------
# Spectral peaks
# ------------------------------------------------------------------------------------------------------
class Peaks(NamedTuple):
    """The ``K`` strongest local maxima of each spectrum, strongest first; every field ``N×K``.

    ``ky``, ``kx`` are sub-bin refined frequencies (bins), ``radius`` their length, ``power`` the peak's
    power; ``valid`` marks real peaks (False where fewer than K exist).
    """

    power: torch.Tensor
    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    valid: torch.Tensor


def _mirror_index(iy: torch.Tensor, ix: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Map (iy, ix) with ix possibly outside ``[0, side//2]`` to the stored Hermitian twin."""
    c = side // 2 + 1
    neg = ix < 0
    big = ix > c - 1
    iy2 = torch.where(neg | big, (-iy) % side, iy % side)
    ix2 = torch.where(neg, -ix, torch.where(big, side - ix, ix))
    return iy2, ix2.clamp(0, c - 1)


def _local_maxima(power: torch.Tensor, reach: int) -> torch.Tensor:
    """Boolean ``N×S×C``: the coefficient is the maximum of its ``(2·reach+1)²`` neighbourhood, with the ky
    axis wrapped and the kx < 0 / kx > S/2 neighbours taken from their Hermitian twins."""
    n, s, c = power.shape
    dev = power.device
    neg_rows = (-torch.arange(s, device=dev)) % s
    twin = power[:, neg_rows]  # twin[:, iy] = power[:, -iy]
    left_cols = torch.arange(reach, 0, -1, device=dev).clamp_max(c - 1)  # kx = -reach..-1 ↔ twin col reach..1
    right_cols = (s - (c - 1 + torch.arange(1, reach + 1, device=dev))).clamp(0, c - 1)
    ext = torch.cat([twin[..., left_cols], power, twin[..., right_cols]], dim=-1)
    ext = torch.cat([ext[:, s - reach:], ext, ext[:, :reach]], dim=1)
    k = 2 * reach + 1
    pooled = F.max_pool2d(F.max_pool2d(ext[:, None], kernel_size=(1, k), stride=1), kernel_size=(k, 1), stride=1)
    return power >= pooled[:, 0]


def find_peaks(spec: Spectrum, *, r_min: float, r_max: float, k: int = 16, reach: int = 2) -> Peaks:
    """Strongest ``k`` local maxima of the power spectrum with ``r_min ≤ radius ≤ r_max`` (bins).

    Each peak is refined below one bin by a 3-point parabola through the log power along ky and along kx
    (the Gaussian interpolator: for a Hann-windowed line its bias is below 0.02 bin).
    """
    power = spec.power
    n, s, c = power.shape
    is_max = _local_maxima(power, reach)
    band = (spec.radius >= r_min) & (spec.radius <= r_max)
    cand = torch.where(is_max & band[None] & (power > 0), power, torch.zeros_like(power)).flatten(1)
    k = min(k, cand.shape[1])
    top, idx = cand.topk(k, dim=1)
    iy, ix = idx // c, idx % c
    flat = power.flatten(1)

    def val(dy: int, dx: int) -> torch.Tensor:
        y2, x2 = _mirror_index(iy + dy, ix + dx, s)
        return flat.gather(1, y2 * c + x2)

    tiny = torch.finfo(power.dtype).tiny
    lc = torch.log(top.clamp_min(tiny))

    def offset(lm: torch.Tensor, lp: torch.Tensor) -> torch.Tensor:
        den = lm - 2 * lc + lp
        d = 0.5 * (lm - lp) / torch.where(den < 0, den, torch.full_like(den, -1.0))
        return torch.where(den < 0, d, torch.zeros_like(d)).clamp(-0.5, 0.5)

    dy = offset(torch.log(val(-1, 0).clamp_min(tiny)), torch.log(val(1, 0).clamp_min(tiny)))
    dx = offset(torch.log(val(0, -1).clamp_min(tiny)), torch.log(val(0, 1).clamp_min(tiny)))
    ky = spec.ky.flatten()[idx] + dy
    kx = spec.kx.flatten()[idx] + dx
    radius = torch.sqrt(ky.square() + kx.square())
    return Peaks(top, ky, kx, radius, top > 0)


def pick_fundamental(peaks: Peaks, *, rel_power: float = 0.25, harmonic_tol: float = 0.04,
                     max_harmonic: int = 8) -> torch.Tensor:
    """Index (``(N,)`` long) of the fundamental among the peaks.

    The strongest peak may be a harmonic (thin grout lines have slowly decaying harmonics; noise can make
    the 2nd or 3rd harmonic the strongest). The fundamental is the lowest-frequency peak that (a) has at
    least ``rel_power`` of the strongest peak's power and (b) divides the strongest frequency: its radius
    times an integer m ≤ ``max_harmonic`` is within ``harmonic_tol · m`` of the strongest radius. A peak at a
    non-integer ratio (a brick's head joints at ≈ 0.7× the bed joints) is not a fundamental.
    """
    r0 = peaks.radius[:, :1]
    m = r0 / peaks.radius.clamp_min(1e-6)
    mi = torch.round(m)
    harmonic = ((m - mi).abs() <= harmonic_tol * mi) & (mi >= 1) & (mi <= max_harmonic)
    strong = peaks.power >= rel_power * peaks.power[:, :1]
    ok = harmonic & strong & peaks.valid
    ok[:, 0] = True
    r = torch.where(ok, peaks.radius, torch.full_like(peaks.radius, float("inf")))
    return r.argmin(dim=1)


# ------------------------------------------------------------------------------------------------------
# Autocorrelation (Wiener–Khinchin)
# ------------------------------------------------------------------------------------------------------
def _project(spec: Spectrum, powers: list[torch.Tensor], direction: torch.Tensor,
             bins_per_bin: int) -> list[torch.Tensor]:
    """Project each ``N×S×(S//2+1)`` power spectrum onto ``|k·u|`` in bins of ``1/bins_per_bin`` frequency bin
    (linear splitting between neighbouring bins). Returns ``N×nb`` histograms, one per power."""
    n = powers[0].shape[0]
    s = spec.side
    proj = (spec.ky[None] * direction[:, 0, None, None] + spec.kx[None] * direction[:, 1, None, None]).abs()
    pos = (proj * bins_per_bin).flatten(1)  # N×M, in sub-bins, ≥ 0
    nb = int(math.ceil(s * 0.7072 * bins_per_bin)) + 2
    lo_f = pos.floor()
    frac = pos - lo_f
    lo = lo_f.long().clamp(0, nb - 2)
    hi = lo + 1
    out = []
    for p in powers:
        val = (p * spec.weight).flatten(1)
        hist = torch.zeros(n, nb, device=val.device, dtype=val.dtype)
        hist.scatter_add_(1, lo, val * (1 - frac))
        hist.scatter_add_(1, hi, val * frac)
        out.append(hist)
    return out


def _cosine_sum(hist: torch.Tensor, side: int, lags: torch.Tensor, bins_per_bin: int) -> torch.Tensor:
    """``Σ_b hist_b · cos(2π f_b t)`` with ``f_b = b / (bins_per_bin · side)`` cycles/px, for every lag ``t``
    (px): ``N×nb`` → ``N×T``. Uniform lags starting at 0 use one real inverse FFT; others a matrix product."""
    n, nb = hist.shape
    step = float(lags[1] - lags[0]) if lags.numel() > 1 else 1.0
    m = torch.round(lags / step)
    uniform = lags.numel() > 1 and float(lags[0]) == 0.0 and bool(((lags / step - m).abs() < 1e-4).all())
    length = int(round(bins_per_bin * side / step))
    length += length % 2
    if uniform and length // 2 + 1 >= nb and int(m[-1]) < length:
        spec1 = torch.zeros(n, length // 2 + 1, device=hist.device, dtype=hist.dtype)
        spec1[:, :nb] = hist
        spec1[:, 0] *= 2.0
        full = torch.fft.irfft(spec1, n=length) * (length / 2.0)
        return full[:, : lags.numel()]
    freq = torch.arange(nb, device=hist.device, dtype=hist.dtype) / (bins_per_bin * side)
    return hist @ torch.cos(2 * math.pi * freq[:, None] * lags[None, :].to(hist.dtype))


def acf_along(signal_power: torch.Tensor, weight_power: torch.Tensor, spec: Spectrum, direction: torch.Tensor,
              lags: torch.Tensor, *, bins_per_bin: int = 8) -> torch.Tensor:
    """Normalised autocorrelation of the (windowed) signal along ``direction`` at real ``lags`` (px).

    By the projection-slice and Wiener–Khinchin theorems, the autocorrelation along a unit direction ``u``
    (``N×2``, (uy, ux)) is the 1-D cosine transform of the power projected onto ``k·u``; projecting into
    ``1/bins_per_bin``-bin sub-bins gives it at any real lag (band-limited interpolation, no bilinear blur).
    ``ρ(t) = [R_s(t) / R_w(t)] / [R_s(0) / R_w(0)]``: the signal's autocorrelation divided by the window's,
    which undoes the taper of the Hann window and of the mask (the usual unbiased estimator for masked
    data). ``signal_power`` and ``weight_power`` are ``N×S×(S//2+1)`` power spectra of the windowed signal
    and of the weights. Returns ``N×T`` with ρ(0) = 1; lags where the window overlap falls below 5 % are 0.
    """
    hs, hw = _project(spec, [signal_power, weight_power], direction, bins_per_bin)
    z = torch.zeros(1, device=lags.device, dtype=lags.dtype)
    with_zero = lags.numel() == 0 or float(lags[0]) != 0.0
    all_lags = torch.cat([z, lags]) if with_zero else lags
    rs = _cosine_sum(hs, spec.side, all_lags, bins_per_bin)
    rw = _cosine_sum(hw, spec.side, all_lags, bins_per_bin)
    tiny = torch.finfo(rs.dtype).tiny
    rho = rs / rw.clamp_min(tiny)
    rho = rho / rho[:, :1].clamp_min(tiny)
    support = rw > 0.05 * rw[:, :1]
    rho = torch.where(support, rho, torch.zeros_like(rho))
    return rho[:, 1:] if with_zero else rho


def first_acf_peak(profile: torch.Tensor, lags: torch.Tensor, *, min_lag: float | torch.Tensor, rel_height: float = 0.5,
                   min_height: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """First significant local maximum of ``N×T`` ACF profiles sampled at uniformly spaced ``lags``.

    Searches lags ≥ ``min_lag`` (a float or an ``(N,)`` tensor) after the central lobe (the first lag where ρ ≤ 0.5, or its first local
    minimum). A maximum is significant when ρ ≥ ``min_height`` and ≥ ``rel_height`` × the highest maximum
    in the search range; the first one wins (a harmonic of the period is a shorter lag with a *lower* ρ; a
    doubled zone adds a longer lag, not a shorter one). Refined by a 3-point parabola.
    Returns ``(lag_px, rho)``, both ``(N,)``; NaN lag and ρ = 0 where there is none.
    """
    n, t = profile.shape
    step = float(lags[1] - lags[0]) if t > 1 else 1.0
    left = torch.cat([profile[:, :1], profile[:, :-1]], dim=1)
    right = torch.cat([profile[:, 1:], profile[:, -1:]], dim=1)
    is_max = (profile >= left) & (profile > right)
    is_max[:, 0] = False
    is_max[:, -1] = False
    # End of the central lobe: first lag with rho <= 0.5 or a local minimum.
    is_min = (profile <= left) & (profile < right)
    low = (profile <= 0.5) | is_min
    low[:, 0] = False
    ar = torch.arange(t, device=profile.device)
    first_low = torch.where(low, ar, torch.full_like(ar, t)).amin(dim=1)
    ml = min_lag if isinstance(min_lag, torch.Tensor) else torch.full((n,), float(min_lag), device=lags.device)
    in_range = (ar[None] >= first_low[:, None]) & (lags[None] >= ml[:, None].to(lags.dtype))
    cand = is_max & in_range
    vals = torch.where(cand, profile, torch.full_like(profile, -1.0))
    top = vals.amax(dim=1, keepdim=True)
    sig = cand & (profile >= rel_height * top) & (profile >= min_height)
    idx = torch.where(sig, ar, torch.full_like(ar, t)).amin(dim=1)
    found = idx < t
    i = idx.clamp(1, t - 2)
    a = profile.gather(1, (i - 1)[:, None])[:, 0]
    b = profile.gather(1, i[:, None])[:, 0]
    c = profile.gather(1, (i + 1)[:, None])[:, 0]
    den = a - 2 * b + c
    d = torch.where(den < 0, 0.5 * (a - c) / torch.where(den < 0, den, -torch.ones_like(den)),
                    torch.zeros_like(den)).clamp(-0.5, 0.5)
    lag = lags[i] + d * step
    rho = b - 0.25 * (a - c) * d
    nan = torch.full_like(lag, float("nan"))
    return torch.where(found, lag, nan), torch.where(found, rho, torch.zeros_like(rho))


def autocorrelation_map(signal: torch.Tensor, weights: torch.Tensor, *, max_lag: int) -> torch.Tensor:
    """Normalised 2-D autocorrelation for lags in ``[-max_lag, max_lag]²``, without circular wrap-around.

    Both inputs are ``N×H×W``; the FFT is zero-padded to ``(H+max_lag)×(W+max_lag)`` and the ACF of the signal
    is divided by the ACF of the weights. Returns ``N×(2·max_lag+1)×(2·max_lag+1)`` with lag (0, 0) at the
    centre and 1 there. Used for the figure (sample 0); the metrics use :func:`acf_along`.
    """
    h, w = signal.shape[-2:]
    m = int(max_lag)
    size = (h + m, w + m)
    fs = torch.fft.rfft2(signal, s=size)
    fw = torch.fft.rfft2(weights, s=size)
    acf = torch.fft.irfft2(fs.real.square() + fs.imag.square(), s=size)
    norm = torch.fft.irfft2(fw.real.square() + fw.imag.square(), s=size)
    support = norm > 0.05 * norm[..., :1, :1]
    acf = torch.where(support, acf / norm.clamp_min(1e-12), torch.zeros_like(acf))
    acf = acf / acf[..., :1, :1].clamp_min(1e-30)
    acf = torch.roll(acf, shifts=(m, m), dims=(-2, -1))
    return acf[..., : 2 * m + 1, : 2 * m + 1]


# ------------------------------------------------------------------------------------------------------
# Periodic-plus-smooth decomposition (Moisan 2011)
# ------------------------------------------------------------------------------------------------------
def periodic_smooth_spectrum(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rfft2 of ``u`` (``N×H×W``) and of its periodic component ``p = u − s`` (Moisan's decomposition).

    ``s`` is the smooth image whose Laplacian equals the boundary jumps of ``u`` seen as a torus; ``p`` has
    the content of ``u`` without the frame-border discontinuities that put a "cross" on the FFT axes.
    Returns ``(U, P)``, both complex ``N×H×(W//2+1)``.
    """
    h, w = u.shape[-2:]
    v = torch.zeros_like(u)
    dv = u[..., -1, :] - u[..., 0, :]
    v[..., 0, :] += dv
    v[..., -1, :] -= dv
    dh = u[..., :, -1] - u[..., :, 0]
    v[..., :, 0] += dh
    v[..., :, -1] -= dh
    big_u = torch.fft.rfft2(u)
    big_v = torch.fft.rfft2(v)
    qy = torch.arange(h, device=u.device, dtype=u.dtype)[:, None]
    qx = torch.arange(w // 2 + 1, device=u.device, dtype=u.dtype)[None, :]
    den = 2 * torch.cos(2 * math.pi * qy / h) + 2 * torch.cos(2 * math.pi * qx / w) - 4
    den[0, 0] = 1.0
    big_s = big_v / den
    big_s[..., 0, 0] = 0
    return big_u, big_u - big_s


# ------------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------------
class Periodicity(NamedTuple):
    """Everything :func:`analyze_periodicity` measured; per-image fields are ``(N,)``.

    * ``radius_bin`` / ``period_px``: spectral fundamental f* (bins of the ``S×S`` grid) and ``S / f*``;
    * ``direction``: ``N×2`` unit wave vector (uy, ux) of f*;
    * ``acf_period_px`` / ``acf_rho``: first significant ACF peak along ``direction`` and its height;
    * ``peak_ratio``: f*'s peak power over the geometric-mean power of its ring (how far it stands out);
    * ``score``: periodicity confidence in [0, 1];
    * ``signal``, ``weights``: the prepared ``N×H×W`` inputs; ``spec``: their :class:`Spectrum`;
      ``weight_power``: power spectrum of the weights (for ACF normalisation).
    """

    radius_bin: torch.Tensor
    period_px: torch.Tensor
    direction: torch.Tensor
    acf_period_px: torch.Tensor
    acf_rho: torch.Tensor
    peak_ratio: torch.Tensor
    score: torch.Tensor
    signal: torch.Tensor
    weights: torch.Tensor
    spec: Spectrum
    weight_power: torch.Tensor


def _ring_background(spec: Spectrum, center: torch.Tensor, half_width: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Geometric-mean power of the ring ``|r − center| ≤ half_width`` (``(N,)``): a robust local background.

    The mean of log power is hardly moved by the few coefficients of a peak, unlike the mean power. For
    pure noise (exponentially distributed power) it is ``e^−γ ≈ 0.56`` times the mean power.
    """
    hw = half_width if isinstance(half_width, torch.Tensor) else torch.full_like(center, float(half_width))
    ring = ((spec.radius[None] - center[:, None, None]).abs() <= hw[:, None, None]).to(spec.power.dtype)
    ring = ring * spec.weight
    logp = torch.log(spec.power.clamp_min(torch.finfo(spec.power.dtype).tiny))
    return torch.exp((logp * ring).sum(dim=(-2, -1)) / ring.sum(dim=(-2, -1)).clamp_min(1.0))


def noise_floor(spec: Spectrum) -> torch.Tensor:
    """Mean power of the white-noise floor, ``(N,)``: ``e^γ`` × the geometric-mean power of the outer band
    ``0.35·S ≤ r ≤ 0.5·S`` (sensor noise and JPEG grain are flat there; texture lines are sparse)."""
    s = spec.side
    c = torch.full((spec.power.shape[0],), 0.425 * s, device=spec.power.device, dtype=spec.power.dtype)
    return math.exp(0.5772156649) * _ring_background(spec, c, 0.075 * s)


def analyze_periodicity(x: torch.Tensor, *, valid: Optional[torch.Tensor] = None, min_period_px: float = 3.0,
                        max_period_frac: float = 0.5, rel_power: float = 0.25, harmonic_tol: float = 0.04,
                        taper_px: Optional[int] = None, detrend_order: int = 2) -> Periodicity:
    """The fundamental period of each image, from the spectrum and, independently, from the ACF.

    1. Pixels outside ``valid`` or non-finite are dropped; the rest is detrended (a weighted polynomial of
       degree ``detrend_order``: mean, illumination gradient, vignetting) and windowed (Hann × apodized mask).
    2. The strongest spectral local maxima with periods in ``[min_period_px, max_period_frac · min(H, W)]``
       are found and refined below one bin; :func:`pick_fundamental` picks the fundamental f*.
    3. The ACF along f*'s direction (Wiener–Khinchin on the projected power, normalised by the window's
       ACF) gives the first significant ACF peak, an independent period.
    4. ``score`` = ``sqrt(clamp(ρ_acf, 0, 1)) · clamp(log10(peak_ratio) − 1, 0, 1)``: the height of the ACF
       peak (how much of the texture repeats), gated by how far f* stands out of its ring's background
       (geometric-mean power; 10× → 0, 100× → 1): noise and plaster score ≈ 0, clean periodic walls ≈ 1.

    ``x``: ``N×H×W``; ``valid``: optional ``N×H×W`` bool. See :class:`Periodicity`.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be N×H×W; got {tuple(x.shape)}")
    x = x if x.is_floating_point() else x.float()
    h, w = x.shape[-2:]
    s = fft_side(h, w)
    sig, wts = prepare(x, valid, taper_px=taper_px, order=detrend_order)
    spec = spectrum(sig, side=s)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, w)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    peaks = find_peaks(spec, r_min=r_min, r_max=r_max)
    j = pick_fundamental(peaks, rel_power=rel_power, harmonic_tol=harmonic_tol)
    pick = lambda t: t.gather(1, j[:, None])[:, 0]  # noqa: E731
    r0, ky0, kx0, p0 = pick(peaks.radius), pick(peaks.ky), pick(peaks.kx), pick(peaks.power)
    # Average the symmetric/axis twins of the fundamental (same radius within 2 %, strong) for the radius.
    twin = (peaks.radius - r0[:, None]).abs() <= 0.02 * r0[:, None]
    twin &= peaks.valid & (peaks.power >= rel_power * peaks.power[:, :1])
    wsum = (peaks.power * twin).sum(dim=1)
    radius = (peaks.power * twin * peaks.radius).sum(dim=1) / wsum.clamp_min(torch.finfo(x.dtype).tiny)
    has = peaks.valid[:, 0] & (wsum > 0)
    nan = torch.full_like(radius, float("nan"))
    radius = torch.where(has, radius, nan)
    norm = torch.sqrt(ky0.square() + kx0.square()).clamp_min(1e-6)
    direction = torch.stack([ky0 / norm, kx0 / norm], dim=1)
    direction = torch.where(has[:, None], direction, torch.tensor([0.0, 1.0], device=x.device, dtype=x.dtype))

    weight_power = power_spectrum(wts, side=s)
    step = 0.25
    t_max = max(2.0, 0.45 * min(h, w))
    lags = torch.arange(0.0, t_max + step / 2, step, device=x.device, dtype=x.dtype)
    # The white-noise floor is a spike at lag 0 whose band-limited ringing would make false early peaks.
    clean = (spec.power - noise_floor(spec)[:, None, None]).clamp_min(0.0)
    prof = acf_along(clean, weight_power, spec, direction, lags)
    min_lag = torch.maximum(torch.full_like(radius, max(min_period_px, 2.0) * 0.75),
                            torch.nan_to_num(0.3 * s / radius, nan=0.0))
    acf_lag, rho = first_acf_peak(prof, lags, min_lag=min_lag)

    bg = _ring_background(spec, torch.where(has, r0, torch.full_like(r0, r_min)))
    peak_ratio = p0 / bg.clamp_min(torch.finfo(x.dtype).tiny)
    peak_ratio = torch.where(has, peak_ratio, torch.zeros_like(peak_ratio))
    gate = (torch.log10(peak_ratio.clamp_min(1e-30)) - 1.0).clamp(0.0, 1.0)
    score = rho.clamp(0.0, 1.0).sqrt() * gate
    score = torch.where(has & torch.isfinite(score), score, torch.zeros_like(score))
    return Periodicity(radius, s / radius, direction, acf_lag, rho, peak_ratio, score, sig, wts, spec,
                       weight_power)


def dominant_period(x: torch.Tensor, *, valid: Optional[torch.Tensor] = None, min_period_px: float = 3.0,
                    max_period_frac: float = 0.5) -> PeriodEstimate:
    """Dominant (fundamental) spatial period of each image.

    Args:
        x: ``N×H×W`` images (one channel each).
        valid: optional ``N×H×W`` bool; only these pixels count (the mask edge is apodized).
        min_period_px: shortest period considered.
        max_period_frac: longest period considered, as a fraction of the shorter side.

    Returns:
        :class:`PeriodEstimate` of ``(N,)`` tensors: ``period_px`` (S / radius), ``radius_bin`` (sub-bin, on
        the square ``S = max(H, W)`` grid) and ``score`` in [0, 1], the confidence that a dominant period
        exists at all (see :func:`analyze_periodicity`; ≥ 0.5 for a clearly periodic texture, ≈ 0 for
        plaster, gravel or noise).
    """
    est = analyze_periodicity(x, valid=valid, min_period_px=min_period_px, max_period_frac=max_period_frac)
    return PeriodEstimate(est.period_px, est.radius_bin, est.score)
