"""Shared FFT primitives: windows, mask apodization, detrending, power spectra, radial profiles, spectral
peaks with sub-bin refinement, PSD→ACF (Wiener–Khinchin), the periodic-plus-smooth decomposition and the
dominant-period estimate used by the tiling, latent and dataset analyzers.

Every function is batched over a leading N dimension (``N×H×W``), runs on the input's device and keeps its
dtype (float32 by default); nothing here moves data to the host. Frequencies are measured on a square FFT
grid of side ``S = max(H, W)`` (non-square inputs are zero-padded), so a radius of ``r`` bins is a period of
``S / r`` pixels in every direction. The definitions are written out in ``docs/tiling.md``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .rows import on_rows

__all__ = [
    "BINS_PER_BIN",
    "Peaks",
    "PeriodEstimate",
    "Periodicity",
    "Spectrum",
    "acf_along",
    "analyze_periodicity",
    "apodized_weights",
    "autocorrelation_map",
    "axis_lines",
    "box_downsample",
    "default_taper_px",
    "detrend",
    "dominant_period",
    "fast_fft_size",
    "fft_side",
    "fine_peak_frac",
    "fine_peak_fracs",
    "LatticeInput",
    "lattice_acf",
    "lattice_input",
    "lattice_periodicity",
    "window_fold_fracs",
    "find_peaks",
    "first_acf_peak",
    "fundamental_of",
    "gather_power",
    "half_plane_weights",
    "hann2d",
    "abs2",
    "log_power",
    "noise_floor",
    "peak_ring_ratios",
    "periodic_smooth_spectrum",
    "pick_fundamental",
    "power_spectrum",
    "prepare",
    "radial_counts",
    "radial_hist",
    "radial_index",
    "radial_profile",
    "radius_grid",
    "refine_peak",
    "ring_background",
    "ring_sum",
    "spectrum",
]


class PeriodEstimate(NamedTuple):
    """Dominant period of each of N images; every field is an ``(N,)`` tensor (NaN where undefined)."""

    period_px: torch.Tensor
    radius_bin: torch.Tensor
    score: torch.Tensor


# ------------------------------------------------------------------------------------------------------
# Windows, masks and detrending
# ------------------------------------------------------------------------------------------------------
def hann2d(height: int, width: int, *, device: torch.device | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Separable 2-D Hann window, ``H×W``, zero at the borders."""
    wy = torch.hann_window(height, periodic=False, device=device, dtype=dtype)
    wx = torch.hann_window(width, periodic=False, device=device, dtype=dtype)
    if height == 1:
        wy = torch.ones_like(wy)
    if width == 1:
        wx = torch.ones_like(wx)
    return wy[:, None] * wx[None, :]


def box_downsample(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over non-overlapping ``k×k`` blocks: ``N×H×W`` → ``N×⌈H/k⌉×⌈W/k⌉`` (blocks cut by the far edges
    average the pixels they hold, as ``avg_pool2d(ceil_mode=True)``).

    When ``k`` divides both sides this sums strided views, several times faster than ``avg_pool2d`` on CPU
    (which is not vectorised for one channel): the ``k²`` phases for ``k = 2``; for larger ``k`` the ``k``
    rows of each block first (whole rows, read in order), then ``k`` columns of that.
    """
    if k <= 1:
        return x
    n, h, w = x.shape
    if h % k or w % k:
        return F.avg_pool2d(x[:, None], k, ceil_mode=True)[:, 0]
    if k == 2:
        out = x[..., 0::2, 0::2] + x[..., 1::2, 0::2]
        out += x[..., 0::2, 1::2]
        out += x[..., 1::2, 1::2]
        return out.mul_(0.25)
    blocks = x.reshape(n, h // k, k, w)
    rows = blocks[:, :, 0].clone()
    for i in range(1, k):
        rows += blocks[:, :, i]
    out = rows[..., 0::k].clone()
    for j in range(1, k):
        out += rows[..., j::k]
    return out.mul_(1.0 / (k * k))


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


def apodized_weights(valid: torch.Tensor, *, taper_px: int | None = None) -> torch.Tensor:
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
        coarse = box_downsample(v, ds)
        frac = _box_mean(coarse, 2 * max(1, round(t_px / ds)) + 1)
        frac = F.interpolate(frac[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    else:
        frac = _box_mean(v, 2 * t_px + 1)
    t = ((frac - 0.5) * 2.0).clamp(0.0, 1.0)
    return (0.5 - 0.5 * torch.cos(math.pi * t)) * v


@functools.lru_cache(maxsize=64)
def _powers(n: int, k: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``n×(k+1)``: the coordinate ``linspace(-1, 1, n)`` raised to the powers 0..k (cached: read only)."""
    t = torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) if n > 1 else torch.zeros(1, device=device,
                                                                                            dtype=dtype)
    return torch.stack([t ** p for p in range(k + 1)], dim=1)


def _exponents(order: int) -> list[tuple[int, int]]:
    """(power of y, power of x) of every monomial of total degree ≤ ``order``."""
    return [(a, d - a) for d in range(order + 1) for a in range(d, -1, -1)]


@functools.lru_cache(maxsize=16)
def _detrend_index(order: int, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`detrend`'s constant index tensors (cached: read only): the monomials' powers of y and x
    (``(K,)`` long each), the normal matrix's moment indices (``K×K`` each) and the float64 ``K×K``
    identity."""
    ex = _exponents(order)
    ay = torch.tensor([e[0] for e in ex], device=device)
    ax = torch.tensor([e[1] for e in ex], device=device)
    return (ay, ax, ay[:, None] + ay[None, :], ax[:, None] + ax[None, :],
            torch.eye(len(ex), device=device, dtype=torch.float64))


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
    # (N·H)×W @ W×K as one large matrix product (a batched product of small matrices is much slower).
    # Weights shared by every image (an expanded view, as without a mask) give one set of moments.
    shared = n > 1 and weights.stride(0) == 0
    w0 = weights[:1] if shared else weights
    mw = py.T @ (w0.reshape(-1, w) @ px).reshape(w0.shape[0], h, -1)  # N×(2o+1)×(2o+1): Σ w y^a x^b
    if shared:
        mw = mw.expand(n, -1, -1)
    wx = (weights * x).reshape(n * h, w) @ px[:, : order + 1]
    mx = py[:, : order + 1].T @ wx.reshape(n, h, -1)  # N×(o+1)×(o+1)
    ay, ax, iy, ix, eye = _detrend_index(order, torch.device(dev))
    a = mw[:, iy, ix].double()  # N×K×K
    b = mx[:, ay, ax].double()[..., None]  # N×K×1
    ridge = 1e-9 * a.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None].clamp_min(1e-30) + 1e-30
    coef = torch.linalg.solve(a + ridge * eye, b)[..., 0].to(dt)  # N×K
    # Σ_k c_k y^a_k x^b_k as (N×H×(o+1)) @ ((o+1)×W): gather coefficients into a (o+1)×(o+1) grid.
    grid = torch.zeros(n, order + 1, order + 1, device=dev, dtype=dt)
    grid[:, ay, ax] = coef
    # x − (N×H×(o+1)) @ ((o+1)×W) as one fused product (no surface tensor written and read back)
    return torch.baddbmm(x, py[:, : order + 1] @ grid, px[:, : order + 1].T.expand(n, -1, -1), alpha=-1.0)


def prepare(x: torch.Tensor, valid: torch.Tensor | None = None, *, window: bool = True,
            taper_px: int | None = None, order: int = 2, clean: bool = False,
            taper: bool | None = None, apodized: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Detrended, windowed signal and its weights, ready for a spectrum.

    Non-finite pixels count as invalid. With ``window=True`` the weights are the (apodized) mask times a
    separable Hann window over the frame (exactly Hann when every pixel is valid); with ``window=False``
    they are the hard mask (the "no Hann" spectrum of the seed). The mask edge is tapered (see
    :func:`apodized_weights`) when ``taper`` is True, by default when ``valid`` is given; without ``valid``
    non-finite pixels get weight 0 without a taper (stray NaN pixels are rare, and tapering costs passes over
    the image). ``clean=True`` promises that ``x`` is finite everywhere and that ``valid`` (if given)
    already excludes what was not: the checks are skipped. The polynomial of degree ``order`` is fitted with
    the weights themselves, so the windowed residual has zero weighted mean (no DC) and no gradient.
    ``valid`` may be bool or 0/1 float (the float form saves a conversion pass). Returns ``(signal,
    weights)``, both ``N×H×W``. ``apodized``: :func:`apodized_weights` of ``valid`` with ``taper_px``
    when the caller has it already (the same values; not computed twice).
    """
    if clean:
        v, x0 = valid, x
    else:
        finite = torch.isfinite(x)
        v = finite if valid is None else (valid.bool() & finite)
        x0 = torch.where(v, x, 0.0)
    use_taper = (valid is not None) if taper is None else taper
    if window:
        hann = hann2d(x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
        if v is None:
            wts = hann.expand_as(x0)
        elif use_taper:
            apod = apodized_weights(v, taper_px=taper_px) if apodized is None else apodized
            wts = hann * apod.to(x.dtype)
        else:
            wts = hann * v
    else:
        wts = torch.ones_like(x0) if v is None else v.to(x.dtype)
    resid = detrend(x0, wts, order=order)
    return resid.mul_(wts), wts  # (resid is detrend's own tensor)


# ------------------------------------------------------------------------------------------------------
# Spectra on the square S×S grid
# ------------------------------------------------------------------------------------------------------
def fft_side(height: int, width: int) -> int:
    """Side of the square FFT grid: ``max(H, W)``."""
    return max(height, width)


@functools.lru_cache(maxsize=256)
def fast_fft_size(n: int) -> int:
    """The largest size ``≤ n`` (at least 1) whose prime factors are all 2, 3, 5 or 7: a transform of that
    length runs 3–4× faster on the CPU than one with a larger prime factor (85 = 5·17 → 84 = 2²·3·7;
    170 → 168). For windows whose size is a choice, not the image's."""
    for m in range(max(1, n), 0, -1):
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
    return 1


class Spectrum(NamedTuple):
    """Half-plane power spectrum on the square grid.

    ``power`` ``N×S×(S//2+1)`` (rfft2 layout: ky in FFT order, kx ≥ 0); ``ky``, ``kx`` and ``radius`` are
    ``S×(S//2+1)`` frequencies in bins (``period = S / radius`` px); ``weight`` is 2 for the columns that
    stand for two Hermitian twins and 1 elsewhere, so that ``(power * weight).sum()`` is the full-plane
    energy.
    """

    power: torch.Tensor
    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    weight: torch.Tensor

    @property
    def side(self) -> int:
        return int(self.power.shape[-2])


def radius_grid(side: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
                ) -> torch.Tensor:
    """Radius in bins of every rfft2 coefficient of a ``side×side`` grid: ``side×(side//2+1)``."""
    ky = torch.fft.fftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    kx = torch.fft.rfftfreq(side, d=1.0 / side, device=device, dtype=dtype)
    return torch.sqrt(ky[:, None].square() + kx[None, :].square())


def half_plane_weights(side: int, *, device: torch.device | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """rfft2 stores columns 1..side/2-1 once for two Hermitian twins: weight 2 there, 1 elsewhere."""
    w = torch.full((side, side // 2 + 1), 2.0, device=device, dtype=dtype)
    w[:, 0] = 1.0
    if side % 2 == 0:
        w[:, -1] = 1.0
    return w


def power_spectrum(signal: torch.Tensor, *, side: int | None = None) -> torch.Tensor:
    """``|rfft2|²`` of ``N×H×W`` on a square ``side×side`` grid (zero-padded). Returns
    ``N×side×(side//2+1)``."""
    s = side or fft_side(signal.shape[-2], signal.shape[-1])
    spec = torch.fft.rfft2(signal, s=(s, s))
    return spec.real.square().add_(spec.imag.square())


@functools.lru_cache(maxsize=32)
def _spectrum_grids(s: int, device: torch.device, dt: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:class:`Spectrum`'s ``ky``, ``kx``, ``radius`` and ``weight`` of a ``s×s`` grid (cached: read only)."""
    ky = torch.fft.fftfreq(s, d=1.0 / s, device=device, dtype=dt)[:, None].expand(s, s // 2 + 1)
    kx = torch.fft.rfftfreq(s, d=1.0 / s, device=device, dtype=dt)[None, :].expand(s, s // 2 + 1)
    return ky, kx, torch.sqrt(ky.square() + kx.square()), half_plane_weights(s, device=device, dtype=dt)


def spectrum(signal: torch.Tensor, *, side: int | None = None) -> Spectrum:
    """:func:`power_spectrum` plus its frequency grids (see :class:`Spectrum`; the grids are shared, read
    only)."""
    s = side or fft_side(signal.shape[-2], signal.shape[-1])
    power = power_spectrum(signal, side=s)
    return Spectrum(power, *_spectrum_grids(s, torch.device(power.device), power.dtype))


def radial_profile(power: torch.Tensor, *, side: int | None = None) -> torch.Tensor:
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
    counts = torch.zeros(nb, device=power.device, dtype=power.dtype).scatter_add_(0, idx.flatten(),
                                                                                  hw.flatten())
    return (sums / counts.clamp_min(1.0))[:, : s // 2 + 1]


#: Sub-bins per frequency bin of the radial histograms (rings are resolved to 1/4 bin).
BINS_PER_BIN = 4


def radial_index(side: int, *, bins_per_bin: int = BINS_PER_BIN, device: torch.device | None = None
                 ) -> tuple[torch.Tensor, int]:
    """Sub-bin index ``floor(radius · bins_per_bin)`` of every rfft2 coefficient (flattened ``S·(S//2+1)``)
    and the number of sub-bins (cached per side: read only)."""
    return _radial_index(side, bins_per_bin, None if device is None else torch.device(device))


@functools.lru_cache(maxsize=32)
def _radial_index(side: int, bins_per_bin: int, device: torch.device | None) -> tuple[torch.Tensor, int]:
    r = radius_grid(side, device=device)
    nb = math.ceil(side * 0.7072 * bins_per_bin) + 1
    return (r * bins_per_bin).floor().long().clamp_max(nb - 1).flatten(), nb


def radial_hist(values: torch.Tensor, spec: Spectrum, *, bins_per_bin: int = BINS_PER_BIN) -> torch.Tensor:
    """Sum of ``values · weight`` (``N×S×(S//2+1)``, e.g. power or log power) per radial sub-bin: ``N×nb``.

    One scatter-add serves every ring query afterwards (:func:`ring_sum`), however many rings are asked.
    """
    n = values.shape[0]
    idx, nb = radial_index(spec.side, bins_per_bin=bins_per_bin, device=values.device)
    out = torch.zeros(n, nb, device=values.device, dtype=values.dtype)
    return out.scatter_add_(1, idx.expand(n, -1), (values * spec.weight).flatten(1))


def radial_counts(spec: Spectrum, *, bins_per_bin: int = BINS_PER_BIN) -> torch.Tensor:
    """Sum of the half-plane weights per radial sub-bin (the number of full-plane bins): ``(nb,)``."""
    idx, nb = radial_index(spec.side, bins_per_bin=bins_per_bin, device=spec.power.device)
    out = torch.zeros(nb, device=spec.power.device, dtype=spec.power.dtype)
    return out.scatter_add_(0, idx, spec.weight.flatten())


def ring_sum(hist: torch.Tensor, center: torch.Tensor, half_width: torch.Tensor | float, *,
             bins_per_bin: int = BINS_PER_BIN, min_radius: float = 0.0) -> torch.Tensor:
    """Sum of a radial histogram (``N×nb`` or ``(nb,)``) over the ring ``|ρ − center| ≤ half_width`` and
    ``ρ ≥ min_radius``, where ρ is each sub-bin's centre. ``center`` ``(N,)``; returns ``(N,)``.

    NaN centres give 0.
    """
    nb = hist.shape[-1]
    rho = (torch.arange(nb, device=hist.device, dtype=hist.dtype) + 0.5) / bins_per_bin
    hw = half_width if isinstance(half_width, torch.Tensor) else torch.full_like(center, float(half_width))
    sel = ((rho[None] - center[:, None]).abs() <= hw[:, None]) & (rho[None] >= min_radius)
    return (hist * sel).sum(dim=-1)


def ring_background(log_hist: torch.Tensor, counts: torch.Tensor, center: torch.Tensor,
                    half_width: torch.Tensor | float = 1.0, *,
                    bins_per_bin: int = BINS_PER_BIN) -> torch.Tensor:
    """Geometric-mean power of the ring ``|ρ − center| ≤ half_width`` (``(N,)``): a robust local background.

    ``log_hist`` is :func:`radial_hist` of the log power, ``counts`` :func:`radial_counts`. The mean of log
    power is hardly moved by the few coefficients of a peak, unlike the mean power. For pure noise
    (exponentially distributed power) it is ``e^−γ ≈ 0.56`` times the mean power.
    """
    num = ring_sum(log_hist, center, half_width, bins_per_bin=bins_per_bin)
    den = ring_sum(counts.expand_as(log_hist), center, half_width, bins_per_bin=bins_per_bin)
    return torch.exp(num / den.clamp_min(1.0))


def noise_floor(log_hist: torch.Tensor, counts: torch.Tensor, side: int, *,
                bins_per_bin: int = BINS_PER_BIN) -> torch.Tensor:
    """Mean power of the white-noise floor, ``(N,)``: ``e^γ`` × the geometric-mean power of the outer band
    ``0.35·S ≤ ρ ≤ 0.5·S`` (sensor noise and JPEG grain are flat there; texture lines are sparse)."""
    c = torch.full((log_hist.shape[0],), 0.425 * side, device=log_hist.device, dtype=log_hist.dtype)
    return math.exp(0.5772156649) * ring_background(log_hist, counts, c, 0.075 * side,
                                                    bins_per_bin=bins_per_bin)


def abs2(z: torch.Tensor) -> torch.Tensor:
    """``|z|²`` of a complex tensor (any shape) as ``re² + im²``: one pass (``abs().square()`` takes a hypot,
    then a square, several times slower on the CPU; the same up to rounding)."""
    ri = torch.view_as_real(z)
    return torch.addcmul(ri[..., 0].square(), ri[..., 1], ri[..., 1])


def log_power(power: torch.Tensor) -> torch.Tensor:
    """``log(power)`` with zeros clamped to the smallest normal float."""
    return torch.log(power.clamp_min(torch.finfo(power.dtype).tiny))


# ------------------------------------------------------------------------------------------------------
# Spectral peaks
# ------------------------------------------------------------------------------------------------------
class Peaks(NamedTuple):
    """The ``K`` strongest local maxima of each spectrum, strongest first; every field ``N×K``.

    ``ky``, ``kx`` are sub-bin refined frequencies (bins), ``radius`` their length, ``power`` the peak's
    power; ``valid`` marks real peaks (False where fewer than K exist); ``iy``, ``ix`` are the storage
    indices (rfft2 layout) of the peak coefficients.
    """

    power: torch.Tensor
    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    valid: torch.Tensor
    iy: torch.Tensor
    ix: torch.Tensor


def _mirror_index(iy: torch.Tensor, ix: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Storage indices (rfft2 layout) of the frequencies ``(iy, ix)``, both taken modulo ``side``: a column
    beyond ``side // 2`` is read from its Hermitian twin ``(−iy, side − ix)``."""
    ixm = ix % side
    twin = ixm > side // 2
    return torch.where(twin, (-iy) % side, iy % side), torch.where(twin, side - ixm, ixm)


def gather_power(power: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
    """``power`` (``N×S×C``, rfft2 layout) at integer frequencies ``iy``, ``ix`` (``N×…`` long): ``iy`` in FFT
    order or signed (taken modulo S), ``ix`` anywhere (outside ``[0, S/2]`` the Hermitian twin is read)."""
    _n, s, c = power.shape
    y2, x2 = _mirror_index(iy, ix, s)
    return power.flatten(1).gather(1, (y2 * c + x2).flatten(1)).reshape(iy.shape)


@functools.lru_cache(maxsize=32)
def _framed_crop(side: int, rr: int, reach: int, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index grid of the crop ``|ky| ≤ rr``, ``0 ≤ kx ≤ rr`` of an rfft2 spectrum, rows in signed order
    (each row once), with a frame of ``reach`` bins on every side mapped to their stored coefficients.

    Returns ``(flat, cy, cx, radius)``: ``flat`` the flat storage index of every framed bin, ``cy``/``cx``
    the crop's signed ky / kx (long), ``radius`` the crop's radii (float32, ``len(cy)×len(cx)``).
    """
    c = side // 2 + 1
    y0, y1 = -min(rr, (side - 1) // 2), min(rr, side // 2)
    ky = torch.arange(y0 - reach, y1 + reach + 1, device=device)
    kx = torch.arange(-reach, min(rr, c - 1) + reach + 1, device=device)
    gy, gx = _mirror_index(ky[:, None].expand(-1, kx.numel()), kx[None, :].expand(ky.numel(), -1), side)
    cy, cx = ky[reach: ky.numel() - reach], kx[reach: kx.numel() - reach]
    radius = torch.sqrt((cy[:, None].square() + cx[None, :].square()).float())
    return (gy * c + gx).flatten(), cy, cx, radius


def find_peaks(spec: Spectrum, *, r_min: float | torch.Tensor, r_max: float | torch.Tensor, k: int = 16,
               reach: int = 2) -> Peaks:
    """Strongest ``k`` local maxima of the power spectrum with ``r_min ≤ radius ≤ r_max`` (bins; floats, or
    ``(N,)`` tensors for a band per image).

    Candidates are the maxima of non-overlapping ``(reach+1)×(reach+1)`` blocks (one cheap pooling pass);
    the ``4k`` strongest are kept if they are the maximum of their own ``(2·reach+1)²`` neighbourhood (ky
    wraps around; kx < 0 and kx > S/2 neighbours are Hermitian twins). Each peak is refined below one bin
    by :func:`refine_peak`.
    """
    power = spec.power
    n, s, _c = power.shape
    dev = power.device
    lo = r_min[:, None, None] if isinstance(r_min, torch.Tensor) else r_min
    hi = r_max[:, None, None] if isinstance(r_max, torch.Tensor) else r_max
    # Only the rows |ky| <= R and the columns kx <= R can hold candidates (R = r_max, or S/2 for a band per
    # image): search that crop, rows in signed order. It is read once with a frame of ``reach`` more bins
    # on every side (ky wraps around, kx < 0 and kx > S/2 are Hermitian twins), so that a candidate's
    # neighbours are at fixed offsets of its flat index: one gather, no index arithmetic per neighbour.
    rr = s // 2 if isinstance(r_max, torch.Tensor) else min(s // 2, math.ceil(float(r_max)))
    flat, cy, cx, crop_r = _framed_crop(s, rr, reach, dev)
    fh, fw = cy.numel() + 2 * reach, cx.numel() + 2 * reach
    framed = power.flatten(1).index_select(1, flat).reshape(n, fh, fw)
    crop = framed[:, reach: fh - reach, reach: fw - reach]
    band = (crop_r[None].to(power.dtype) >= lo) & (crop_r[None].to(power.dtype) <= hi)
    inband = torch.where(band, crop, 0.0)
    b = reach + 1
    pooled, where = F.max_pool2d(inband[:, None], kernel_size=b, stride=b, ceil_mode=True,
                                 return_indices=True)
    pooled, where = pooled.flatten(1), where.flatten(1)
    kk = min(4 * k, pooled.shape[1])
    cval, cpos = pooled.topk(kk, dim=1)
    idx = where.gather(1, cpos)  # flat index in the crop
    row, col = idx // cx.numel(), idx % cx.numel()
    offs = torch.arange(-reach, reach + 1, device=dev)
    offs = (offs[:, None] * fw + offs[None, :]).flatten()  # neighbour offsets in the framed array
    centre = (row + reach) * fw + col + reach  # N×kk
    neigh = framed.flatten(1).gather(1, (centre[..., None] + offs).flatten(1)).reshape(n, kk, -1).amax(dim=-1)
    is_peak = (cval >= neigh) & (cval > 0)
    iy, ix = cy[row] % s, cx[col]  # storage indices (rfft2 layout)
    score = torch.where(is_peak, cval, torch.zeros_like(cval))
    k = min(k, kk)
    top, j = score.topk(k, dim=1)
    iy, ix = iy.gather(1, j), ix.gather(1, j)
    ky, kx = refine_peak(spec, iy, ix)
    radius = torch.sqrt(ky.square() + kx.square())
    return Peaks(top, ky, kx, radius, top > 0, iy, ix)


def refine_peak(spec: Spectrum, iy: torch.Tensor, ix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-bin ``(ky, kx)`` (bins) of spectral peaks at integer storage indices ``iy``, ``ix`` (``N×K``).

    A 3-point parabola through the log power along ky and along kx (the Gaussian interpolator: for a
    Hann-windowed line its bias is below 0.02 bin); neighbours beyond kx = 0 / S/2 are Hermitian twins.
    """
    power = spec.power
    _n, s, c = power.shape
    flat = power.flatten(1)
    tiny = torch.finfo(power.dtype).tiny

    def val(dy: int, dx: int) -> torch.Tensor:
        y2, x2 = _mirror_index(iy + dy, ix + dx, s)
        return torch.log(flat.gather(1, y2 * c + x2).clamp_min(tiny))

    lc = val(0, 0)

    def offset(lm: torch.Tensor, lp: torch.Tensor) -> torch.Tensor:
        den = lm - 2 * lc + lp
        d = 0.5 * (lm - lp) / torch.where(den < 0, den, torch.full_like(den, -1.0))
        return torch.where(den < 0, d, torch.zeros_like(d)).clamp(-0.5, 0.5)

    dy = offset(val(-1, 0), val(1, 0))
    dx = offset(val(0, -1), val(0, 1))
    return spec.ky.flatten()[iy * c + ix] + dy, spec.kx.flatten()[iy * c + ix] + dx


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


def fundamental_of(peaks: Peaks, index: torch.Tensor, *, rel_power: float = 0.25
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Radius of the fundamental ``peaks[index]``, averaged (power-weighted) with its twins: the strong peaks
    at the same radius within 2 % (the ±ky twins on the kx = 0 axis, the x and y lines of a square grid).

    Returns ``(radius, ky, kx, power, found)``, all ``(N,)``: ``radius`` is NaN where no peak was found;
    ``ky``, ``kx`` and ``power`` are the chosen peak's own.
    """
    pick = lambda t: t.gather(1, index[:, None])[:, 0]
    r0, ky0, kx0, p0 = pick(peaks.radius), pick(peaks.ky), pick(peaks.kx), pick(peaks.power)
    twin = (peaks.radius - r0[:, None]).abs() <= 0.02 * r0[:, None]
    twin &= peaks.valid & (peaks.power >= rel_power * peaks.power[:, :1])
    wsum = (peaks.power * twin).sum(dim=1)
    radius = (peaks.power * twin * peaks.radius).sum(dim=1) / wsum.clamp_min(torch.finfo(wsum.dtype).tiny)
    found = peaks.valid[:, 0] & (wsum > 0)
    radius = torch.where(found, radius, torch.full_like(radius, float("nan")))
    return radius, ky0, kx0, p0, found


# ------------------------------------------------------------------------------------------------------
# Autocorrelation (Wiener–Khinchin)
# ------------------------------------------------------------------------------------------------------
def _project(spec: Spectrum, power: torch.Tensor, direction: torch.Tensor, bins_per_bin: int, nb: int
             ) -> torch.Tensor:
    """Project an ``N×s×(s//2+1)`` power spectrum onto ``|k·u|`` (``u``: ``N×2`` unit vectors (uy, ux)) in
    sub-bins of ``1/bins_per_bin`` frequency bin (nearest sub-bin). Frequencies are ``spec``'s ``ky``,
    ``kx`` (bins of the full ``S``-point grid). Returns ``N×nb``."""
    n = power.shape[0]
    proj = (spec.ky[None] * (direction[:, 0, None, None] * bins_per_bin)
            + spec.kx[None] * (direction[:, 1, None, None] * bins_per_bin)).abs()
    idx = proj.round_().long().clamp_(max=nb - 1).flatten(1)
    hist = torch.zeros(n, nb, device=power.device, dtype=power.dtype)
    return hist.scatter_add_(1, idx, (power * spec.weight).flatten(1))


def _cosine_sum(hist: torch.Tensor, side: int, step: float, count: int, bins_per_bin: int) -> torch.Tensor:
    """``Σ_b hist_b · cos(2π f_b t)`` with ``f_b = b / (bins_per_bin · side)`` cycles/px, at the lags
    ``t = 0, step, …, (count−1)·step`` px: ``N×nb`` → ``N×count``, by one real inverse FFT of length
    ``L = bins_per_bin · side / step`` (must be an even integer ≥ 2·count)."""
    n, nb = hist.shape
    exact = bins_per_bin * side / step
    if abs(exact - round(exact)) > 1e-6:
        raise ValueError(f"step ({step}) must divide bins_per_bin · side ({bins_per_bin * side}).")
    length = round(exact)
    length = max(length + length % 2, 2 * count)
    if length != round(exact):
        raise ValueError(f"step ({step}) and count ({count}): bins_per_bin · side / step must be even and ≥ "
                         "2·count.")
    # cos(2π b m / L) is L-periodic and even in b: fold sub-bins beyond L/2 (lags coarser than the
    # projection's resolution) onto their alias instead of truncating them.
    b = torch.arange(nb, device=hist.device) % length
    b = torch.minimum(b, length - b)
    spec1 = torch.zeros(n, length // 2 + 1, device=hist.device, dtype=hist.dtype).index_add_(1, b, hist)
    spec1[:, 0] *= 2.0
    spec1[:, -1] *= 2.0  # the Nyquist term appears once in irfft's sum; the cosine sum wants it whole
    full = torch.fft.irfft(spec1, n=length) * (length / 2.0)
    return full[:, :count]


def acf_along(signal_power: torch.Tensor, weight_power: torch.Tensor, spec: Spectrum, direction: torch.Tensor,
              *, step: float, count: int, weight_spec: Spectrum | None = None,
              bins_per_bin: int = 16, max_bin: float | None = None, floor: torch.Tensor | None = None
              ) -> torch.Tensor:
    """Normalised autocorrelation of the (windowed) signal along ``direction`` at the lags ``k · step`` px,
    ``k = 0 … count−1``.

    By the projection-slice and Wiener–Khinchin theorems, the autocorrelation along a unit direction ``u``
    (``N×2``, (uy, ux)) is the 1-D cosine transform of the power projected onto ``k·u``; projecting into
    ``1/bins_per_bin``-bin sub-bins gives it at any real lag (band-limited interpolation, no bilinear blur).
    ``ρ(t) = [R_s(t) / R_w(t)] / [R_s(0) / R_w(0)]``: the signal's autocorrelation divided by the window's,
    which undoes the taper of the Hann window and of the mask (the usual unbiased estimator for masked
    data). ``signal_power`` is the ``N×S×(S//2+1)`` power spectrum of the windowed signal on ``spec``'s
    grid; ``weight_power`` that of the weights, on ``weight_spec``'s grid when given (a coarser grid is
    enough: a window's spectrum lives at low frequencies). ``max_bin``: only frequencies with
    ``|ky|, |kx| ≤ max_bin`` enter the signal's projection (cheaper; finer detail than the shortest period
    searched does not move the ACF's peaks). ``floor`` (``(N,)``): a noise floor subtracted from
    ``signal_power`` (clamped at 0) on the bins read only. Returns ``N×count`` with ρ(0) = 1; lags where the
    window overlap falls below 5 % are 0.
    """
    s = spec.side

    def above(p: torch.Tensor) -> torch.Tensor:
        return p if floor is None else (p - floor[:, None, None]).clamp_min_(0.0)

    nb = math.ceil(s * 0.7072 * bins_per_bin) + 2
    if max_bin is not None and 2 * math.ceil(max_bin) + 1 < s:
        rr = math.ceil(max_bin)
        rows = torch.cat([torch.arange(0, rr + 1, device=signal_power.device),
                          torch.arange(s - rr, s, device=signal_power.device)])
        sub = Spectrum(above(signal_power[:, rows, : rr + 1]), spec.ky[rows, : rr + 1],
                       spec.kx[rows, : rr + 1], spec.radius[rows, : rr + 1], spec.weight[rows, : rr + 1])
        hs = _project(sub, sub.power, direction, bins_per_bin, nb)
    else:
        hs = _project(spec, above(signal_power), direction, bins_per_bin, nb)
    hw = _project(weight_spec if weight_spec is not None else spec, weight_power, direction, bins_per_bin, nb)
    rs = _cosine_sum(hs, s, step, count, bins_per_bin)
    rw = _cosine_sum(hw, s, step, count, bins_per_bin)
    tiny = torch.finfo(rs.dtype).tiny
    rho = rs / rw.clamp_min(tiny)
    rho = rho / rho[:, :1].clamp_min(tiny)
    support = rw > 0.05 * rw[:, :1]
    return torch.where(support, rho, torch.zeros_like(rho))


def _local_maxima(profile: torch.Tensor) -> torch.Tensor:
    """``N×T`` bool: interior strict-right local maxima of each row of ``profile``."""
    left = torch.cat([profile[:, :1], profile[:, :-1]], dim=1)
    right = torch.cat([profile[:, 1:], profile[:, -1:]], dim=1)
    is_max = (profile >= left) & (profile > right)
    is_max[:, 0] = False
    is_max[:, -1] = False
    return is_max


def _parabolic_peak(profile: torch.Tensor, i: torch.Tensor, lags: torch.Tensor, step: torch.Tensor | float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Parabola through ``profile`` at ``i - 1, i, i + 1`` (``i`` ``(N,)``, interior): ``(lag, rho)`` of its
    vertex, the offset clamped to ±½ bin (no refinement where the three points are not concave)."""
    a = profile.gather(1, (i - 1)[:, None])[:, 0]
    b = profile.gather(1, i[:, None])[:, 0]
    c = profile.gather(1, (i + 1)[:, None])[:, 0]
    den = a - 2 * b + c
    d = torch.where(den < 0, 0.5 * (a - c) / torch.where(den < 0, den, -torch.ones_like(den)),
                    torch.zeros_like(den)).clamp(-0.5, 0.5)
    return lags[i] + d * step, b - 0.25 * (a - c) * d


def first_acf_peak(profile: torch.Tensor, *, step: float, min_lag: float | torch.Tensor,
                   rel_height: float = 0.5,
                   min_height: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """First significant local maximum of ``N×T`` ACF profiles sampled at the lags ``k · step`` px.

    Searches lags ≥ ``min_lag`` (a float or an ``(N,)`` tensor) after the central lobe (the first lag where
    ρ ≤ 0.5; the first local minimum when ρ never gets that low). A maximum is significant when ρ ≥
    ``min_height`` and
    ≥ ``rel_height`` × the highest maximum in the search range; the first one wins (a harmonic of the period
    is a shorter lag with a *lower* ρ; a
    doubled zone adds a longer lag, not a shorter one). Refined by a 3-point parabola.
    Returns ``(lag_px, rho)``, both ``(N,)``; NaN lag and ρ = 0 where there is none.
    """
    n, t = profile.shape
    lags = torch.arange(t, device=profile.device, dtype=profile.dtype) * step
    left = torch.cat([profile[:, :1], profile[:, :-1]], dim=1)
    right = torch.cat([profile[:, 1:], profile[:, -1:]], dim=1)
    is_max = _local_maxima(profile)
    # End of the central lobe: the first lag with rho <= 0.5 (ripples of residual noise on the lobe make
    # local minima, so a minimum only counts when rho never falls that low).
    is_min = (profile <= left) & (profile < right)
    is_min[:, 0] = False
    low = profile <= 0.5
    low[:, 0] = False
    ar = torch.arange(t, device=profile.device)
    full = torch.full_like(ar, t)
    first_low = torch.where(low, ar, full).amin(dim=1)
    first_min = torch.where(is_min, ar, full).amin(dim=1)
    first_low = torch.where(first_low < t, first_low, first_min)
    ml = min_lag if isinstance(min_lag, torch.Tensor) else torch.full((n,), float(min_lag),
                                                                      device=profile.device)
    in_range = (ar[None] >= first_low[:, None]) & (lags[None] >= ml[:, None].to(lags.dtype))
    cand = is_max & in_range
    vals = torch.where(cand, profile, torch.full_like(profile, -1.0))
    top = vals.amax(dim=1, keepdim=True)
    sig = cand & (profile >= rel_height * top) & (profile >= min_height)
    idx = torch.where(sig, ar, torch.full_like(ar, t)).amin(dim=1)
    found = idx < t
    lag, rho = _parabolic_peak(profile, idx.clamp(1, t - 2), lags, step)
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


def axis_lines(img: torch.Tensor, half_width: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The DFT of ``N×H×W`` real images on the lines near the axes only, without a full 2-D FFT.

    Returns ``(rows, cols)``: ``rows`` ``N×(2a+1)×(W//2+1)`` complex, the rows ky = −a … a (in that order) for
    kx = 0 … W/2; ``cols`` ``N×H×(a+1)`` complex, the columns kx = 0 … a for every ky (FFT order); with
    ``a = half_width``. Each is a projection onto a few complex exponentials (a small matrix product)
    followed by 1-D FFTs: O(a·H·W) instead of O(H·W·log(H·W)).
    """
    _n, h, w = img.shape
    a = int(half_width)
    dt = img.dtype
    y = torch.arange(h, device=img.device, dtype=dt)
    x = torch.arange(w, device=img.device, dtype=dt)
    ky = torch.arange(-a, a + 1, device=img.device, dtype=dt)
    kx = torch.arange(0, a + 1, device=img.device, dtype=dt)
    ph_y = -2 * math.pi * ky[:, None] * y[None, :] / h  # (2a+1)×H
    ph_x = -2 * math.pi * x[:, None] * kx[None, :] / w  # W×(a+1)
    ny, nx = ph_y.shape[0], ph_x.shape[1]
    # One matrix product per direction reads the image once (cos and sin stacked).
    r = torch.cat([torch.cos(ph_y), torch.sin(ph_y)], dim=0) @ img  # N×2(2a+1)×W
    c = img @ torch.cat([torch.cos(ph_x), torch.sin(ph_x)], dim=1)  # N×H×2(a+1)
    m_rows = torch.complex(r[:, :ny], r[:, ny:])
    m_cols = torch.complex(c[..., :nx], c[..., nx:])
    rows = torch.fft.fft(m_rows, dim=-1)[..., : w // 2 + 1]
    cols = torch.fft.fft(m_cols, dim=-2)
    return rows, cols


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
    * ``acf_lags`` ``(T,)`` px and ``acf_profile`` ``N×T``: the normalised ACF along ``direction``;
    * ``peak_index``: ``N×2`` long storage indices (iy, ix) of f*'s coefficient in ``spec.power``.
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
    acf_lags: torch.Tensor
    acf_profile: torch.Tensor
    peak_index: torch.Tensor
    lattice: Any = None  # trackdiag.functional.lattice.Lattice when analyze_periodicity(lattice=True)


def _acf_near(profile: torch.Tensor, lags: torch.Tensor, period: torch.Tensor, *, rel: float = 0.2
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Highest ACF local maximum within ``period·(1 ± rel)`` (``N×T`` profile at ``lags``), parabola-refined:
    ``(lag, rho)``, both ``(N,)``; NaN lag and ρ = 0 where there is none."""
    t = profile.shape[1]
    p = period[:, None]
    win = _local_maxima(profile) & (lags[None] >= (1 - rel) * p) & (lags[None] <= (1 + rel) * p)
    i = torch.where(win, profile, torch.full_like(profile, -2.0)).argmax(dim=1).clamp(1, t - 2)
    found = win.any(dim=1)
    lag, rho = _parabolic_peak(profile, i, lags, lags[1] - lags[0])
    return (torch.where(found, lag, torch.full_like(lag, float("nan"))),
            torch.where(found, rho, torch.zeros_like(rho)))


def analyze_periodicity(x: torch.Tensor, *, valid: torch.Tensor | None = None, min_period_px: float = 3.0,
                        max_period_frac: float = 0.5, rel_power: float = 0.25, harmonic_tol: float = 0.04,
                        taper_px: int | None = None, detrend_order: int = 2, clean: bool = False,
                        taper: bool | None = None, lattice: bool = False,
                        lattice_params: dict[str, float] | None = None,
                        apodized: torch.Tensor | None = None) -> Periodicity:
    """The fundamental period of each image, from the spectrum and, independently, from the ACF.

    1. Pixels outside ``valid`` or non-finite are dropped; the rest is detrended (a weighted polynomial of
       degree ``detrend_order``: mean, illumination gradient, vignetting) and windowed (Hann × apodized mask).
    2. The strongest spectral local maxima with periods in ``[min_period_px, max_period_frac · min(H, W)]``
       are found and refined below one bin; :func:`pick_fundamental` picks the fundamental f*.
    3. The ACF along f*'s direction (Wiener–Khinchin on the projected power, normalised by the window's
       ACF) gives the first significant ACF peak, an independent period. When it points at another member
       of f*'s harmonic family (a peak that divides the strongest one, with ≥ 10 % of its power), that
       member becomes f* (octave check).
    4. ``score`` = ``sqrt(clamp(ρ_acf, 0, 1)) · clamp(log10(peak_ratio) − 1, 0, 1)``: the height of the ACF
       peak (how much of the texture repeats), gated by how far f* stands out of its ring's background
       (geometric-mean power; 10× → 0, 100× → 1): noise and plaster score ≈ 0, clean periodic walls ≈ 1.

    With ``lattice=True`` (the tiling analyzer), steps 2–4 use the 2-D lattice estimator of
    :mod:`trackdiag.functional.lattice` instead: f* is the lattice's fundamental (prominent peaks against
    the whitened spectrum), the ACF period is the ACF maximum within ±20 % of f*'s period (the lattice
    confirmed in the autocorrelation; the first significant peak where there is none), ``peak_ratio`` is
    f*'s prominence and ``score = sqrt(clamp(ρ, 0, 1)) · clamp(log10(prominence) − 1.5, 0, 1)``.

    ``x``: ``N×H×W``; ``valid``: optional ``N×H×W`` bool (or 0/1 float); ``clean``, ``taper``,
    ``apodized``: see :func:`prepare`.
    See :class:`Periodicity`.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be N×H×W; got {tuple(x.shape)}")
    if lattice:
        from .lattice import pick_lattice

        inp = lattice_input(x, valid=valid, min_period_px=min_period_px, max_period_frac=max_period_frac,
                            taper_px=taper_px, detrend_order=detrend_order, clean=clean, taper=taper,
                            apodized=apodized)
        lat = pick_lattice(inp.peaks, **{"min_radius": inp.r_min, **(lattice_params or {})})  # type: ignore[arg-type]
        return lattice_periodicity(inp, lat, min_period_px=min_period_px)
    x = x if x.is_floating_point() else x.float()
    h, w = x.shape[-2:]
    s = fft_side(h, w)
    sig, wts = prepare(x, valid, taper_px=taper_px, order=detrend_order, clean=clean, taper=taper,
                       apodized=apodized)
    spec = spectrum(sig, side=s)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, w)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    peaks = find_peaks(spec, r_min=r_min, r_max=r_max)
    j = pick_fundamental(peaks, rel_power=rel_power, harmonic_tol=harmonic_tol)
    # Among peaks at f*'s radius (within 2 %), the strongest gives the direction: on a brick wall whose brick
    # length is twice the course height, the head joints' 2nd harmonic has the bed joints' radius.
    twins = ((peaks.radius - peaks.radius.gather(1, j[:, None])).abs()
             <= 0.02 * peaks.radius.gather(1, j[:, None])) & peaks.valid
    j = torch.where(twins, peaks.power, torch.full_like(peaks.power, -1.0)).argmax(dim=1)
    radius, ky0, kx0, p0, has = fundamental_of(peaks, j, rel_power=rel_power)
    r0 = torch.where(has, radius, torch.full_like(radius, r_min))
    norm = torch.sqrt(ky0.square() + kx0.square()).clamp_min(1e-6)
    direction = torch.stack([ky0 / norm, kx0 / norm], dim=1)
    direction = torch.where(has[:, None], direction, torch.tensor([0.0, 1.0], device=x.device, dtype=x.dtype))

    step, lags, lh, counts, prof = _acf_profile(x, wts, spec, direction, r_max=r_max)
    min_lag = torch.maximum(torch.full_like(radius, max(min_period_px, 2.0) * 0.75),
                            torch.nan_to_num(0.3 * s / radius, nan=0.0))
    acf_lag, rho = first_acf_peak(prof, step=step, min_lag=min_lag)

    # Octave check with the ACF: when the ACF's period is another member of f*'s harmonic family (a doubled
    # zone can give f*/2 enough power to pass rel_power; the ACF's first peak is not fooled by a longer
    # period in part of the image), the family member at the ACF's frequency becomes f*.
    r_acf = s / acf_lag
    r_top = peaks.radius[:, :1]
    m = r_top / peaks.radius.clamp_min(1e-6)
    family = ((m - m.round()).abs() <= harmonic_tol * m.round()) & (m.round() >= 1) & peaks.valid
    near = family & ((peaks.radius - r_acf[:, None]).abs() <= 2 * harmonic_tol * r_acf[:, None])
    near &= peaks.power >= 0.1 * peaks.power[:, :1]
    alt = torch.where(near, peaks.power, torch.full_like(peaks.power, -1.0)).argmax(dim=1)
    use_alt = near.any(dim=1) & torch.isfinite(r_acf) & (alt != j)
    j = torch.where(use_alt, alt, j)
    radius2, _, _, p0b, _has2 = fundamental_of(peaks, j, rel_power=0.1)
    radius = torch.where(use_alt, radius2, radius)
    p0 = torch.where(use_alt, p0b, p0)
    r0 = torch.where(has, radius, torch.full_like(radius, r_min))

    bg = ring_background(lh, counts, r0)
    peak_ratio = p0 / bg.clamp_min(torch.finfo(x.dtype).tiny)
    peak_ratio = torch.where(has, peak_ratio, torch.zeros_like(peak_ratio))
    gate = (torch.log10(peak_ratio.clamp_min(1e-30)) - 1.0).clamp(0.0, 1.0)
    score = rho.clamp(0.0, 1.0).sqrt() * gate
    score = torch.where(has & torch.isfinite(score), score, torch.zeros_like(score))
    peak_index = torch.stack([peaks.iy.gather(1, j[:, None])[:, 0], peaks.ix.gather(1, j[:, None])[:, 0]],
                             dim=1)
    return Periodicity(radius, s / radius, direction, acf_lag, rho, peak_ratio, score, sig, wts, spec,
                       lags, prof, peak_index)


class LatticeInput(NamedTuple):
    """What the lattice pick reads, and what :func:`lattice_periodicity` reads after it: the images ``x``
    (``N×H×W``), the prepared signal and weights, the spectrum, its log power (``None`` where not kept),
    the prominent peaks (:func:`~trackdiag.functional.lattice.prominent_peaks`) and the searched band
    ``r_min``, ``r_max`` (bins)."""

    x: torch.Tensor
    sig: torch.Tensor
    wts: torch.Tensor
    spec: Spectrum
    lpow: torch.Tensor | None
    peaks: Any
    r_min: float
    r_max: float


def lattice_input(x: torch.Tensor, *, valid: torch.Tensor | None = None, min_period_px: float = 3.0,
                  max_period_frac: float = 0.5, taper_px: int | None = None, detrend_order: int = 2,
                  clean: bool = False, taper: bool | None = None, apodized: torch.Tensor | None = None,
                  keep_log_power: bool = True) -> LatticeInput:
    """The steps of ``analyze_periodicity(..., lattice=True)`` before its lattice pick (preparation,
    spectrum, prominent peaks), so that callers can pick several inputs' lattices in one call
    (:func:`~trackdiag.functional.lattice.pick_lattices`) and finish with :func:`lattice_periodicity`.
    ``keep_log_power=False``: the peaks read the spectrum's power directly (the same values) and no log
    power is kept (callers that read the lattice only)."""
    from .lattice import prominent_peaks

    if x.ndim != 3:
        raise ValueError(f"x must be N×H×W; got {tuple(x.shape)}")
    x = x if x.is_floating_point() else x.float()
    h, w = x.shape[-2:]
    s = fft_side(h, w)
    sig, wts = prepare(x, valid, taper_px=taper_px, order=detrend_order, clean=clean, taper=taper,
                       apodized=apodized)
    spec = spectrum(sig, side=s)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, w)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    # (the prominence map's crop and the ACF's background both read the log power)
    lpow = log_power(spec.power) if keep_log_power else None
    peaks = prominent_peaks(spec, r_min=r_min, r_max=r_max, log_power=lpow)
    return LatticeInput(x, sig, wts, spec, lpow, peaks, r_min, r_max)


def lattice_period(x: torch.Tensor, *, valid: torch.Tensor | None = None, min_period_px: float = 3.0,
                   max_period_frac: float = 0.5, taper_px: int | None = None, detrend_order: int = 2,
                   clean: bool = False, taper: bool | None = None,
                   lattice_params: dict[str, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The lattice period of each image and whether a lattice was found: ``(period_px, found)``, ``(N,)``
    each; the same values as ``analyze_periodicity(..., lattice=True)``'s ``period_px`` and
    ``lattice.found`` (the same preparation, spectrum and lattice pick), without its ACF, score and ratios
    (for callers that read the lattice only: the window vote's many windows)."""
    from .lattice import pick_lattice

    inp = lattice_input(x, valid=valid, min_period_px=min_period_px, max_period_frac=max_period_frac,
                        taper_px=taper_px, detrend_order=detrend_order, clean=clean, taper=taper,
                        keep_log_power=False)
    lat = pick_lattice(inp.peaks, **{"min_radius": inp.r_min, **(lattice_params or {})})  # type: ignore[arg-type]
    return inp.spec.side / lat.radius, lat.found


def _window_spectrum(wts: torch.Tensor, s: int) -> Spectrum:
    """The window's spectrum on a 4× coarser grid (same frequencies in bins; a window's spectrum lives at
    low frequencies); one spectrum for all when every image has the same window (an expanded view)."""
    q = 4 if s >= 128 else 1
    sq = -(-s // q)
    same = wts.shape[0] > 1 and wts.stride(0) == 0
    wspec = spectrum(box_downsample(wts[:1] if same else wts, q), side=sq)
    if same:
        wspec = wspec._replace(power=wspec.power.expand(wts.shape[0], -1, -1))
    scale = s / (q * sq)
    return wspec._replace(ky=wspec.ky * scale, kx=wspec.kx * scale)


def _acf_profile(x: torch.Tensor, wts: torch.Tensor, spec: Spectrum, direction: torch.Tensor, *,
                 r_max: float, lpow: torch.Tensor | None = None
                 ) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The window-corrected autocorrelation along ``direction`` (N×2 unit vectors in (ky, kx)), at lags in
    quarter pixels up to 0.45 of the shorter side. Returns ``(step, lags (L,), log-power radial histogram,
    radial counts, profile N×L)``; the histogram and counts serve the callers' background estimates.
    ``lpow``: :func:`log_power` of ``spec.power`` when the caller has it."""
    h, w = x.shape[-2:]
    wspec = _window_spectrum(wts, spec.side)
    step = 0.25
    count = int(max(2.0, 0.45 * min(h, w)) / step) + 1
    lags = torch.arange(count, device=x.device, dtype=x.dtype) * step
    lh = radial_hist(log_power(spec.power) if lpow is None else lpow, spec)
    counts = radial_counts(spec)
    # The white-noise floor is a spike at lag 0 whose band-limited ringing would make false early peaks.
    # (subtracted on the bins the projection reads only)
    prof = acf_along(spec.power, wspec.power, spec, direction, step=step, count=count, weight_spec=wspec,
                     max_bin=r_max, floor=noise_floor(lh, counts, spec.side))
    return step, lags, lh, counts, prof


def lattice_periodicity(inp: LatticeInput, lat: Any, *, min_period_px: float = 3.0) -> Periodicity:
    """:func:`analyze_periodicity` (``lattice=True``) after its lattice pick: ``inp`` from
    :func:`lattice_input`, ``lat`` its :class:`~trackdiag.functional.lattice.Lattice`."""
    x, wts, spec, peaks = inp.x, inp.wts, inp.spec, inp.peaks
    sig, r_max = inp.sig, inp.r_max
    s = spec.side
    lpow = log_power(spec.power) if inp.lpow is None else inp.lpow
    has = lat.found
    radius = lat.radius
    fy = torch.nan_to_num(lat.f[:, 0], nan=0.0)
    fx = torch.nan_to_num(lat.f[:, 1], nan=1.0)
    norm = torch.sqrt(fy.square() + fx.square()).clamp_min(1e-6)
    direction = torch.stack([fy / norm, fx / norm], dim=1)
    step, lags, lh, counts, prof = _acf_profile(x, wts, spec, direction, r_max=r_max, lpow=lpow)
    period = s / radius
    lag, rho = _acf_near(prof, lags, torch.nan_to_num(period, nan=-1.0))
    # Staggered lattices (running bond, hex, penny) repeat along f only every second row.
    _lag2, rho2 = _acf_near(prof, lags, torch.nan_to_num(2 * period, nan=-1.0))
    min_lag = torch.full_like(radius, max(min_period_px, 2.0) * 0.75)
    lag0, rho0 = first_acf_peak(prof, step=step, min_lag=min_lag)
    miss = ~torch.isfinite(lag)
    lag = torch.where(miss, lag0, lag)
    rho_p = torch.maximum(rho, rho2)  # ρ at the lattice period or twice it (0 where the ACF has no maximum)
    rho = torch.where(miss, rho0, rho)
    prom = lat.prominence
    gate = (torch.log10(prom.clamp_min(1e-30)) - 1.5).clamp(0.0, 1.0)
    score = rho_p.clamp(0.0, 1.0).sqrt() * gate
    score = torch.where(has & torch.isfinite(score), score, torch.zeros_like(score))
    ar = torch.arange(x.shape[0], device=x.device)
    peak_index = torch.stack([peaks.iy[ar, lat.best], peaks.ix[ar, lat.best]], dim=1)
    return Periodicity(radius, period, direction, lag, rho, prom, score, sig, wts, spec, lags, prof,
                       peak_index,
                       lat)


def dominant_period(x: torch.Tensor, *, valid: torch.Tensor | None = None, min_period_px: float = 3.0,
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


def _lattice_frame(f: torch.Tensor, g: torch.Tensor, ok: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample's lattice basis for :func:`_lattice_distance` (``f``, ``g``, ``ok`` as there): ``(basis,
    inverse, ok, one_d)``, ``N×2×2``, ``N×2×2``, ``(N,)``, ``(N,)`` (the identity where not ``ok``)."""
    dev, dt = f.device, f.dtype
    one_d = ~torch.isfinite(g[:, 0])
    perp = torch.stack([-f[:, 1], f[:, 0]], dim=-1)
    g1 = torch.where(one_d[:, None], perp, g)
    basis = torch.stack([f, g1], dim=-1)  # N×2×2, columns f and g
    det = basis[:, 0, 0] * basis[:, 1, 1] - basis[:, 0, 1] * basis[:, 1, 0]
    ok = ok & torch.isfinite(det) & (det.abs() > 1e-9)
    basis = torch.where(ok[:, None, None], basis, torch.eye(2, device=dev, dtype=dt))
    return basis, torch.linalg.inv(basis), ok, one_d


def _frame_distance(basis: torch.Tensor, inv: torch.Tensor, ok: torch.Tensor, one_d: torch.Tensor,
                    ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """The distance of :func:`_lattice_distance` from a :func:`_lattice_frame` (``N×...``) and the points'
    ``ky``, ``kx`` (``N×M`` or ``1×M``): ``N×M``."""
    # the 2×2 products written out (element-wise over N×M; einsum's batched products cost 2–3× more)
    def at(m: torch.Tensor, i: int, j: int) -> torch.Tensor:
        return m[:, i, j, None]

    a = (at(inv, 0, 0) * ky + at(inv, 0, 1) * kx).round()
    b = torch.where(one_d[:, None], 0.0, (at(inv, 1, 0) * ky + at(inv, 1, 1) * kx).round())
    dy = at(basis, 0, 0) * a + at(basis, 0, 1) * b - ky
    dx = at(basis, 1, 0) * a + at(basis, 1, 1) * b - kx
    d = torch.sqrt(dy * dy + dx * dx)
    return torch.where(ok[:, None], d, torch.full_like(d, float("inf")))


def _lattice_distance(kk: torch.Tensor, f: torch.Tensor, g: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Distance (bins) of the points ``kk`` (``N×M×2`` or ``M×2``, (ky, kx)) to the nearest point
    ``m·f + n·g`` of each sample's lattice (``f``, ``g``: ``N×2`` in bins; ``g`` NaN: the points ``m·f`` of a
    1-D lattice): ``N×M``; +inf where not ``ok`` or the basis is degenerate."""
    basis, inv, ok, one_d = _lattice_frame(f, g, ok)
    ky, kx = (kk[None, :, 0], kk[None, :, 1]) if kk.dim() == 2 else (kk[..., 0], kk[..., 1])
    return _frame_distance(basis, inv, ok, one_d, ky, kx)


def _on_lattice(spec: Spectrum, f: torch.Tensor, g: torch.Tensor, ok: torch.Tensor, *, reach: float,
                rel_tol: float, where: torch.Tensor | None = None) -> torch.Tensor:
    """``N×S×C`` bool: the bins within ``reach + rel_tol·r`` bins of a point ``m·f + n·g`` of each sample's
    lattice (:func:`_lattice_distance`); all False where not ``ok``. With ``where`` (``N×S×C`` bool) the
    answer is only needed there: on the CPU only those bins are measured (False elsewhere)."""
    s, c = spec.ky.shape
    kk = torch.stack([spec.ky, spec.kx], dim=-1).reshape(s * c, 2).to(f.dtype)
    tol = reach + rel_tol * spec.radius
    return _lattice_hits(kk, f, g, ok, tol.reshape(-1), None if where is None else where.reshape(-1, s * c)
                         ).reshape(-1, s, c)


def _lattice_hits(kk: torch.Tensor, f: torch.Tensor, g: torch.Tensor, ok: torch.Tensor, tol: torch.Tensor,
                  where: torch.Tensor | None) -> torch.Tensor:
    """``N×M`` bool: the points ``kk`` (``M×2``) within ``tol`` (``(M,)``) of each sample's lattice
    (:func:`_lattice_distance`). With ``where`` (``N×M`` bool), on the CPU, only those entries are
    measured (each point with its own sample's basis: the same values) and the others are False;
    elsewhere every entry is (no host synchronisation)."""
    if where is None or where.device.type != "cpu":
        return _lattice_distance(kk, f, g, ok) <= tol
    ni, mi = where.nonzero(as_tuple=True)
    out = torch.zeros(where.shape, dtype=torch.bool, device=where.device)
    if ni.numel():
        # each sample's basis and its inverse once (not once per entry), read per entry: the same values
        basis, inv, okf, one_d = _lattice_frame(f, g, ok)
        km = kk[mi]
        d = _frame_distance(basis[ni], inv[ni], okf[ni], one_d[ni], km[:, :1], km[:, 1:])[:, 0]
        out[ni, mi] = d <= tol[mi]
    return out


def fine_peak_frac(spec: Spectrum, *, f: torch.Tensor | None = None, g: torch.Tensor | None = None,
                   lattice_ok: torch.Tensor | None = None, min_cycles_px: float = 0.2, gain: float = 8.0,
                   reach: int = 4, stride: int = 8, stride_reach: float = 1.5, rel_tol: float = 0.06,
                   self_lattice: bool = False) -> torch.Tensor:
    """One of :func:`fine_peak_fracs` (the second with ``self_lattice``)."""
    both = fine_peak_fracs(spec, f=f, g=g, lattice_ok=lattice_ok, min_cycles_px=min_cycles_px, gain=gain,
                           reach=reach, stride=stride, stride_reach=stride_reach, rel_tol=rel_tol)
    return both[1] if self_lattice else both[0]


def _box_mean_wrapped(lp: torch.Tensor, reach: int) -> torch.Tensor:
    """``N×S×C`` → its ``(2·reach+1)²`` moving mean: along ky wrapped around (the FFT order), along kx over
    the bins inside (shrinking at the ends). Shifted adds in the order of ``avg_pool2d``'s window loop, so
    the values are exactly those of ``avg_pool2d((k, 1))`` then ``avg_pool2d((1, k), padding=reach,
    count_include_pad=False)``, several times faster on the CPU (one channel)."""
    s, c = lp.shape[-2:]
    k = 2 * reach + 1
    wrapped = torch.cat([lp[:, -reach:], lp, lp[:, :reach]], dim=1)  # ky wraps around
    acc = wrapped[:, 0:s].clone()
    for i in range(1, k):
        acc += wrapped[:, i:i + s]
    acc /= k
    pad = F.pad(acc, (reach, reach))
    out = pad[..., 0:c].clone()
    for i in range(1, k):
        out += pad[..., i:i + c]
    j = torch.arange(c, device=lp.device)
    cnt = (j.clamp(max=reach) + (c - 1 - j).clamp(max=reach) + 1).to(lp.dtype)
    return out / cnt


def fine_peak_fracs(spec: Spectrum, *, f: torch.Tensor | None = None, g: torch.Tensor | None = None,
                    lattice_ok: torch.Tensor | None = None, min_cycles_px: float = 0.2, gain: float = 8.0,
                    reach: int = 4, stride: int = 8, stride_reach: float = 1.5, rel_tol: float = 0.06,
                    top_bins: int = 2048, own_line: bool = False, own_lattice: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of the AC power in *prominent* peaks at fine scale that the wall's own lattice does not explain:
    the signature of a non-antialiased subsampling (strided slicing, nearest resize), which folds a texture
    finer than the new Nyquist frequency into sharp spurious peaks (moiré), while an antialiased resize leaves
    a soft image.

    A bin counts when it is at ≥ ``min_cycles_px`` cycles/px (periods ≤ 5 px), stands ``gain``× above the
    geometric mean of its ``(2·reach+1)²`` neighbourhood, is not within ``stride_reach`` bins of a multiple
    of ``1/stride`` cycles/px (VAE/JPEG grids and the checkerboard live there and have their own verdicts),
    and is not within ``stride_reach + rel_tol·r`` bins of a point ``m·f + n·g`` of the lattice (``f``,
    ``g``: ``N×2`` reciprocal basis in bins, ``g`` NaN on 1-D textures; only where ``lattice_ok``): a
    texture's own harmonics are fine but expected.

    Returns ``(all, folded)``, each ``(N,)`` in [0, 1]: ``folded`` does not count the fine peaks on the
    lattice of the two strongest fine peaks either (the strongest, and the strongest off the first one's
    line): a real texture finer than the wall lattice the estimator searches (2–3 px, below
    ``min_period_px``) keeps its own first shell after an antialiased resize, while a subsampling folds its
    harmonics off that lattice (``m·a + n·b`` modulo the sampling lattice, not ``m·a + n·b``).

    With ``own_line`` (small tiles, :func:`window_fold_fracs`), the own lattice comes from the two
    strongest prominent peaks at *any* scale (radius >= 3 bins; a tile's coarse fundamental usually), the
    second one the strongest off the first one's *line* (not off its multiples: a 1-D texture's harmonics
    ``3f`` and ``2f`` are collinear, a degenerate basis that explained nothing), and every fine peak on
    that line counts as the texture's own too (the 1-D harmonics of planks or of a herringbone's boards,
    whatever their order); all bins are tested and searched (``top_bins`` is not used).

    With ``own_lattice`` (the frame, eleventh sitting), the own lattice is found as with ``own_line`` (the
    two strongest prominent peaks at any scale, the second off the first one's line) but the first one's
    line is not counted as own: ``folded`` is then the share of the fine peaks off both the given lattice
    and the lattice of the frame's two strongest peaks. Where the given lattice was misread (a square tile
    wall read with a skew second vector), the wall's own fine harmonics are off it but on the latter.
    """
    p = spec.power
    n, s, _c = p.shape
    dev, dt = p.device, p.dtype
    lp = log_power(p)
    peak = (lp - _box_mean_wrapped(lp, reach)) > math.log(gain)
    cyc = spec.radius / s
    fy, fx = spec.ky * (stride / s), spec.kx * (stride / s)
    near = (((fy - fy.round()).abs() * s / stride) <= stride_reach) & (
        ((fx - fx.round()).abs() * s / stride) <= stride_reach)
    keep = ((cyc >= min_cycles_px) & ~near)[None].expand(n, -1, -1)
    if f is not None and g is not None:
        ok = torch.ones(n, dtype=torch.bool, device=dev) if lattice_ok is None else lattice_ok
        # (measured where it matters: the prominent peaks that the other tests keep)
        keep = keep & ~_on_lattice(spec, f, g, ok, reach=stride_reach, rel_tol=rel_tol, where=peak & keep)
    wt = spec.weight
    ac = (spec.radius >= 2).to(dt) * wt
    tot = (p * ac).sum(dim=(1, 2)).clamp_min(torch.finfo(dt).tiny)
    pwt = p * wt
    w = pwt * (peak & keep).to(dt)
    total = w.sum(dim=(1, 2))
    # The lattice of the two strongest fine peaks (its first shell is a real fine texture's own), tested on
    # the ``top_bins`` strongest peak bins only (a fixed size: no host synchronisation); weaker peak bins
    # count as folded.
    kk_all = torch.stack([spec.ky, spec.kx], dim=-1).reshape(-1, 2).to(dt)
    if own_line or own_lattice:
        return total / tot, _off_own_line(spec, pwt * (peak & _cand_keep(spec, stride, stride_reach))
                                          .to(dt), w, kk_all, stride_reach=stride_reach,
                                          rel_tol=rel_tol, line=own_line) / tot
    pw, idx = torch.topk(w.reshape(n, -1), k=min(top_bins, w[0].numel()), dim=1)  # N×K, strongest first
    kk = kk_all[idx]  # N×K×2
    tol = stride_reach + rel_tol * spec.radius.reshape(-1)[idx]
    ar = torch.arange(n, device=dev)
    ok_a = pw[:, 0] > 0
    a = kk[:, 0]
    nan2 = torch.full_like(a, float("nan"))
    line = _lattice_distance(kk, a, nan2, ok_a) <= tol
    off = pw * (~line).to(dt)
    jb = off.argmax(dim=1)
    ok_b = off[ar, jb] > 0
    b = torch.where(ok_b[:, None], kk[ar, jb], nan2)
    own = _lattice_distance(kk, a, b, ok_a) <= tol
    return total / tot, (total - (pw * own.to(dt)).sum(dim=1)) / tot


def _cand_keep(spec: Spectrum, stride: int, stride_reach: float, min_radius: float = 3.0) -> torch.Tensor:
    """``S×C`` bool: bins at radius >= ``min_radius`` not within ``stride_reach`` bins of a multiple of
    ``1/stride`` cycles/px (the candidates for a tile's own lattice in :func:`fine_peak_fracs`)."""
    s = spec.side
    fy, fx = spec.ky * (stride / s), spec.kx * (stride / s)
    near = (((fy - fy.round()).abs() * s / stride) <= stride_reach) & (
        ((fx - fx.round()).abs() * s / stride) <= stride_reach)
    return (spec.radius >= min_radius) & ~near


def _off_own_line(spec: Spectrum, wc: torch.Tensor, w: torch.Tensor, kk_all: torch.Tensor, *,
                  stride_reach: float, rel_tol: float, line: bool = True) -> torch.Tensor:
    """``(N,)`` power of the fine peaks ``w`` (``N×S×C``) off the lattice of the two strongest candidate
    peaks of ``wc`` and off the first one's line (the ``own_line`` mode of :func:`fine_peak_fracs`). The
    second is the strongest candidate off the first one's line, found by one masked maximum over all bins
    (the line distances serve the own-line test as well). ``line`` False: the first one's line is not
    counted as own (only the lattice of the two)."""
    n = w.shape[0]
    dt = w.dtype
    wcf = wc.reshape(n, -1)
    top, ia = wcf.max(dim=1)
    ok_a = top > 0
    a = kk_all[ia]  # N×2, the strongest candidate
    ua = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    tb = (stride_reach + rel_tol * spec.radius).reshape(1, -1)
    # every bin's distance to the line through 0 and a
    on_line = (kk_all[None, :, 0] * ua[:, None, 1] - kk_all[None, :, 1] * ua[:, None, 0]).abs() <= tb
    off, jb = (wcf * (~on_line).to(dt)).max(dim=1)
    b = torch.where((off > 0)[:, None], kk_all[jb], torch.full_like(a, float("nan")))
    wf = w.reshape(n, -1)
    # (the lattice test only where a fine peak has power: the sum below reads nothing else)
    own = _lattice_hits(kk_all, a, b, ok_a, tb.reshape(-1), wf != 0)
    if line:
        own = own | (on_line & ok_a[:, None])
    return (wf * (~own).to(dt)).sum(dim=1)


def window_fold_fracs(x: torch.Tensor, weights: torch.Tensor, *, f: torch.Tensor | None = None,
                      g: torch.Tensor | None = None, lattice_ok: torch.Tensor | None = None,
                      side: int | None = None, window: int = 64, min_valid: float = 0.95, top_bins: int = 512,
                      min_cycles_px: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`fine_peak_fracs` (with ``own_line``) on the ``window×window`` tiles of a non-overlapping grid,
    medians over the tiles that are at least ``min_valid`` valid, counting peaks at ≥ ``min_cycles_px``
    cycles/px (periods ≤ 10 px by default, where the frame's key starts at 5 px: a subsampling followed by a
    ×2 upsampling leaves its folds at 0.1–0.25 cycles/px, and on a tile the texture's own lattice is found
    whatever its scale).

    A wall seen at an angle changes its fine period across the frame, so a subsampling's folded peaks
    drift and smear into a broad hump in the whole frame's spectrum (aliased angled walls read
    ``alias_fine_peak_frac`` 0.02–0.07, under the limit); over a 64-px tile the scale is nearly constant and
    the folded peaks are sharp again. On a tile the texture's own lattice is the lattice of its two
    strongest peaks and the line of the first (``own_line``); with the frame's lattice (``f``, ``g``:
    ``N×2`` reciprocal basis in bins of a ``side``-px grid, ``g`` NaN on 1-D textures; only where
    ``lattice_ok``) its points, rescaled to the tile, are left out too (as in the frame's key: a fine hex
    wall's higher shells are not all on the lattice of a tile's two strongest peaks).

    ``x`` ``N×H×W`` finite, ``weights`` ``N×H×W`` 0..1. Returns ``(fine, folded)``, each ``(N,)``: the
    median share of a tile's AC power in prominent fine peaks, and in those off the tile's own lattice; NaN
    without a valid tile. ``top_bins`` is kept for callers; the tiles' basis search covers every bin.
    """
    n, h, w = x.shape
    dev, dt = x.device, x.dtype
    if h < window or w < window:
        nan = torch.full((n,), float("nan"), device=dev, dtype=dt)
        return nan, nan.clone()
    xw = x.unfold(1, window, window).unfold(2, window, window)  # N×gy×gx×window×window
    vw = weights.to(dt).unfold(1, window, window).unfold(2, window, window)
    nt = xw.shape[1] * xw.shape[2]
    ok = vw.reshape(n, nt, -1).mean(-1) >= min_valid  # N×T
    tiles = xw.reshape(n * nt, window, window)
    ft = gt = ok_t = None
    if f is not None and g is not None and side:
        ft = (f * (window / side)).repeat_interleave(nt, dim=0)
        gt = (g * (window / side)).repeat_interleave(nt, dim=0)
        lok = torch.ones(n, dtype=torch.bool, device=dev) if lattice_ok is None else lattice_ok
        ok_t = lok.repeat_interleave(nt, dim=0)

    def fracs(i: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The valid tiles ``i`` (None: all) only (on the CPU: a masked wall's other tiles are NaN anyway)."""
        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return t if i is None or t is None else t[i]

        sig, _ = prepare(tiles if i is None else tiles[i], clean=True)
        return fine_peak_fracs(spectrum(sig), f=pick(ft), g=pick(gt), lattice_ok=pick(ok_t),
                               top_bins=top_bins, own_line=True, min_cycles_px=min_cycles_px)

    fine, fold = on_rows(ok.reshape(-1), fracs, fills=(float("nan"), float("nan")), like=tiles)
    nan = torch.full_like(fine, float("nan"))
    fine = torch.where(ok.reshape(-1), fine, nan).reshape(n, nt)
    fold = torch.where(ok.reshape(-1), fold, nan).reshape(n, nt)
    return fine.nanmedian(dim=1).values, fold.nanmedian(dim=1).values


def peak_ring_ratios(spec: Spectrum, fstar: torch.Tensor, *, gain: float = 8.0, reach: int = 4,
                     min_bins: float = 2.0, rel_width: float = 0.05, floor: float = 1e-3
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E(2f)/E(f), E(f/2)/E(f))`` counting only the *prominent* bins of each ring: the lattice's peaks.

    ``spec``: ``N`` spectra; ``fstar``: ``(N,)`` radius in bins. A bin counts when its power stands ``gain``×
    above the geometric mean of its ``(2·reach+1)²`` neighbourhood (the peak test of :func:`fine_peak_fracs`);
    the rings are those of the raw ratios (``|ρ − r| ≤ max(min_bins, rel_width·r)``, ρ ≥ 1). The raw ring
    energy also holds the broad energy of per-tile colour, grout tone and lighting, which on a mosaic of
    random tile colours outweighs the lattice's peaks at the rings below its fundamental (a halved hex wall
    reads a raw E(2f)/E(f) of 0.37); the peaks alone move with the lattice. ``floor`` × the spectrum's
    total AC peak power is added to both energies (a ring without any peak reads a finite ratio).
    Returns ``(N,)`` each; NaN where ``fstar`` is NaN.
    """
    p = spec.power
    dt = p.dtype
    lp = log_power(p)
    peak = ((lp - _box_mean_wrapped(lp, reach)) > math.log(gain)) & (spec.radius >= 1.0)[None]
    pp = p * peak.to(dt)
    hist = radial_hist(pp, spec)
    eps = floor * hist.sum(dim=1) + torch.finfo(dt).tiny
    f = torch.nan_to_num(fstar, nan=0.0)

    def energy(r: torch.Tensor) -> torch.Tensor:
        return ring_sum(hist, r, torch.clamp(rel_width * r, min=min_bins), min_radius=1.0) + eps

    ef = energy(f)
    nan = torch.full_like(ef, float("nan"))
    ok = torch.isfinite(fstar) & (f > 0)
    return torch.where(ok, energy(2 * f) / ef, nan), torch.where(ok, energy(0.5 * f) / ef, nan)


def lattice_acf(signal: torch.Tensor, weights: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, *,
                scales: tuple[float, ...] = (0.5, 1.0, 2.0), rel: float = 0.08, min_reach: float = 1.5
                ) -> torch.Tensor:
    """How well one image repeats at another image's lattice, scaled: the normalised 2-D autocorrelation
    of ``signal`` (``1×H×W`` prepared image and its ``weights``: :func:`autocorrelation_map`) at the
    displacements ``c·t₁`` and ``c·t₂`` for each ``c`` of ``scales``, the highest value within
    ``max(min_reach, rel·|c·t|)`` px of each (a small roll, scale error or perspective residue), the lower of
    the two vectors (``t₂`` NaN, a 1-D lattice: ``t₁`` alone). ``t₁``, ``t₂``: ``B×2`` (ty, tx) px, e.g.
    the output's :func:`~trackdiag.functional.lattice.real_basis` read against a reference. NaN where a
    displacement lies beyond 0.45 of the shorter side. Returns ``B×len(scales)``.

    A lattice repeats at its own vectors (the 2-D ACF there is high, a running bond's or a hex mosaic's
    stagger included) and at their multiples, not at their halves: an image at the other's scale reads high
    at ``c = 1``, at twice its period (the other halved) low at 1 and high at 2, at half its period (the other
    doubled) high at ½.
    """
    h, w = signal.shape[-2:]
    m = max(2, int(0.45 * min(h, w)))
    acf = autocorrelation_map(signal[:1], weights[:1], max_lag=m)[0]  # (2m+1)²
    dev, dt = acf.device, acf.dtype
    cols = []
    for c in scales:
        per_vec = []
        for t in (t1, t2):
            d = c * t.to(dt)
            length = d.norm(dim=1)
            reach = torch.clamp(rel * length, min=min_reach)
            big = max(int(math.ceil(min_reach)), int(math.ceil(rel * m)))  # fixed: no host synchronisation
            off = torch.arange(-big, big + 1, device=dev, dtype=dt)
            oy, ox = torch.meshgrid(off, off, indexing="ij")
            oy, ox = oy.reshape(-1), ox.reshape(-1)
            cy = torch.round(torch.nan_to_num(d[:, 0], nan=0.0))[:, None] + oy[None] + m
            cx = torch.round(torch.nan_to_num(d[:, 1], nan=0.0))[:, None] + ox[None] + m
            inside = (cy >= 0) & (cy <= 2 * m) & (cx >= 0) & (cx <= 2 * m)
            disk = (oy.square() + ox.square())[None] <= reach[:, None].square()
            v = acf[cy.clamp(0, 2 * m).long(), cx.clamp(0, 2 * m).long()]
            v = torch.where(inside & disk, v, torch.full_like(v, -2.0)).amax(dim=1)
            ok = torch.isfinite(length) & (length + reach <= m)
            per_vec.append((torch.where(ok, v, torch.full_like(v, float("nan"))), torch.isfinite(length)))
        (v1, f1), (v2, f2) = per_vec
        both = torch.minimum(v1, v2)
        cols.append(torch.where(f2, both, v1))  # NaN propagates where a present vector is out of reach
    return torch.stack(cols, dim=1)
