"""The tiling summary: pure batched math on ``B×C×H×W`` (any device, float32).

* :func:`luminance`: ``B×C×H×W`` → ``B×H×W``.
* :func:`energy_ratios`: ``E2f_over_Ef``, ``Ehalf_over_Ef`` (ring energies, i.e. power) and
  ``axis_ratio_at_f``.
* :func:`checkerboard_scores`: energy at the stride grid (Nyquist for ×2, multiples of N/8 for VAE grids).
* :func:`border_cross`: the border-cross index from the periodic-plus-smooth decomposition.
* :func:`shift_mse` and :func:`resize_metrics`: 1-px shift sensitivity and the down→up resize check.
* :func:`tiling_metrics`: all of the above plus :mod:`trackdiag.functional.spectral`'s fundamental and ACF and
  :mod:`trackdiag.analyzers.bands`' local-period map and band metrics; per-sample ``(B,)`` values and small
  maps of sample 0.

Every definition and window is written out in ``docs/tiling.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..core.checks import check_image_batch, normalize_mask, normalize_ref
from ..core.schedule import Schedule
from ..functional import order
from ..functional.detail import detail_deficit_db
from ..functional.grid import grid_excess, parity_gain
from ..functional.lattice import axis_periods, pick_lattice, pick_lattices, real_basis
from ..functional.localmap import centroid_scale_trend, window_scale_trend
from ..functional.rectify import alternative_tilt, checked_tilt, rectify, tilt_from_axis_periods
from ..functional.ref_fold import ref_fold_gain
from ..functional.rows import on_rows
from ..functional.seams import edge_scores, mask_seam_parts
from ..functional.spectral import (
    LatticeInput,
    Spectrum,
    apodized_weights,
    autocorrelation_map,
    axis_lines,
    fast_fft_size,
    fine_peak_fracs,
    gather_power,
    lattice_acf,
    lattice_input,
    lattice_periodicity,
    peak_ring_ratios,
    radial_hist,
    radial_profile,
    ring_sum,
    window_fold_fracs,
)
from ..plots.figuredata import BAND_FRAC_THRESHOLD, AcfMarks, LocalGeometry, RadialMarks
from .bands import (
    band_metrics,
    centre_period,
    doubling_keys,
    local_geometry,
    local_period_map,
    pair_doubling_keys,
    period_trend,
    region_key_names,
    scale_trend,
    strip_band_keys,
)
from .base import MAP_PREFIX, AnalyzerParams
from .rectified import best_rectified_region_keys, refine_tilts
from .tiling_limits import (
    APERIODIC_SCORE,
    CENTRE_AGREE,
    CENTRE_CROP_FRAC,
    CENTRE_CROP_SCORE,
    CENTRE_HALF,
    CENTRE_MULTIPLE,
    CENTRE_ZONE,
    FRAME_DOUBLE,
    MIN_REGION_PERIODS,
    PERSP_STEP_MARGIN,
    PERSP_STEP_OCTAVES,
    PERSPECTIVE_TREND,
    RECT_ALT_DIFF,
    RECT_ALT_MAX,
    RECT_CORR_TOL,
    RECT_PAIR_FRONTO,
    RECT_REFINE_COHERENT,
    RECT_REFINE_SPREAD,
    RECT_REFINE_STEP,
    REF_MAP_CYCLES,
    STRIP_MIN_LATTICE_PX,
    WEAK_SCORE,
    WINDOW_COARSE_MAX,
    WINDOW_CONFIRM_RANGE,
    WINDOW_CONFIRM_TOL,
    WINDOW_FINE_MIN,
    WINDOW_FINE_SHARE,
    WINDOW_PAIR_SHARE,
    WINDOW_VOTE_CYCLES,
    WINDOW_VOTE_FRAC,
    WINDOW_VOTE_SHARE,
    WINDOW_VOTE_TOL,
)

#: The seed's flat summary keys (section 4 and 5), in the seed's order.
SEED_KEYS: tuple[str, ...] = (
    "fundamental_radius_bin", "acf_first_peak_radius_bin", "E2f_over_Ef", "Ehalf_over_Ef", "axis_ratio_at_f",
    "shift_mse_dx1", "shift_mse_dy1", "resize_mse_downUp", "resize_delta_r", "ref_radius_bin",
    "band_axis_hint", "band_base_period_px", "band_row_frac_max", "band_col_frac_max", "band_row_max_run",
    "band_col_max_run", "band_score", "band_max_run",
)

_LUMA = (0.299, 0.587, 0.114)


@dataclass
class TilingParams(AnalyzerParams):
    """Parameters of :class:`TilingAnalyzer` (every one is explained in ``docs/tiling.md``)."""

    schedule: Schedule = field(default_factory=lambda: Schedule(kind="every", every=100))
    figures_every: int = 1
    #: Periods searched: from ``min_period_px`` to ``max_period_frac`` of the shorter side.
    min_period_px: float = 3.0
    max_period_frac: float = 0.25
    #: Fundamental choice: a lower peak that divides the strongest needs this share of its power ...
    rel_power: float = 0.25
    #: ... and an integer ratio within this relative tolerance.
    harmonic_tol: float = 0.04
    #: Raised-cosine taper at mask edges in px (None: 3 % of the shorter side).
    taper_px: int | None = None
    #: Degree of the illumination polynomial removed before the spectrum (0 mean, 1 gradient, 2 vignetting).
    detrend_order: int = 2
    #: Ring half-width around f*, 2f*, f*/2: max(ring_min_bins, ring_rel_width · radius) bins.
    ring_min_bins: float = 2.0
    ring_rel_width: float = 0.05
    #: Half-width (bins) of the ky = 0 / kx = 0 axes for axis_ratio_at_f and the border cross.
    axis_half_width_bins: float = 1.0
    #: Strides whose grids checkerboard_score looks at (2: ×2 deconv, 8: latent-VAE grid).
    checkerboard_strides: list[int] = field(default_factory=lambda: [2, 8, 16])
    #: Down→up resize factor of resize_mse_downUp / resize_delta_r.
    resize_factor: float = 0.5
    #: Local-period map: window (share of the shorter side), windows per window side, FFT size cap,
    #: downsampling cap, peak/background needed.
    local_window_frac: float = 0.25
    local_overlap: int = 3
    local_max_fft_px: int = 64
    local_max_downsample: int = 2
    local_min_peak_ratio: float = 10.0
    #: Bands: a window is "doubled" when local/base period is in [band_doubled_low, band_doubled_high];
    #: a row/column counts for a run when its smoothed doubled share is ≥ band_frac_threshold.
    band_doubled_low: float = 1.7
    band_doubled_high: float = 2.35
    band_frac_threshold: float = BAND_FRAC_THRESHOLD
    #: Longest side of the spectrum / ACF maps kept for the figures.
    map_max_side: int = 128


# ------------------------------------------------------------------------------------------------------
# Pure tensor math
# ------------------------------------------------------------------------------------------------------
def luminance(pred: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of ``B×3×H×W`` (or the channel of ``B×1×H×W``, the mean of other channel counts).

    ``B×C×H×W`` → ``B×H×W``. A non-finite value in any channel makes the pixel non-finite.
    """
    c = pred.shape[1]
    if c == 1:
        return pred[:, 0]
    if c in (3, 4):
        b, _, h, w = pred.shape
        luma = torch.tensor(_LUMA, device=pred.device, dtype=pred.dtype)
        # (3,) @ B×3×(H·W): one pass over the channels (a matrix product; tensordot/einsum copy first)
        return (luma @ pred[:, :3].reshape(b, 3, h * w)).reshape(b, h, w)
    return pred.mean(dim=1)


def ring_half_width(radius: torch.Tensor, *, min_bins: float = 2.0, rel_width: float = 0.05) -> torch.Tensor:
    """Half-width of the ring around ``radius`` (bins): ``max(min_bins, rel_width · radius)``.

    ``min_bins = 2`` is the half-width of the Hann window's main lobe; the relative part keeps a slowly
    drifting period (perspective) inside its ring.
    """
    return torch.clamp(rel_width * radius, min=min_bins)


def energy_ratios(spec: Spectrum, fstar: torch.Tensor, *, min_bins: float = 2.0, rel_width: float = 0.05,
                  axis_half_width: float = 1.0) -> dict[str, torch.Tensor]:
    """``E2f_over_Ef``, ``Ehalf_over_Ef`` and ``axis_ratio_at_f``, each ``(N,)``.

    ``E(r)`` is the energy (summed power |F|², both half-planes) of the Hann-windowed, detrended image in the
    ring ``|ρ − r| ≤ ring_half_width(r)`` (resolved to 1/4 bin), never including ρ < 1 (the DC).
    ``axis_ratio_at_f`` is the share of ``E(f*)`` within ``axis_half_width`` bins of the kx = 0 or ky = 0
    axis. NaN where f* is NaN.
    """
    hist = radial_hist(spec.power, spec)
    f = torch.nan_to_num(fstar, nan=0.0)

    def energy(h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return ring_sum(h, r, ring_half_width(r, min_bins=min_bins, rel_width=rel_width), min_radius=1.0)

    # The axis bins are a few rows (|ky| <= a) and columns (kx <= a): sum the ring over those lines only.
    s, _c = spec.power.shape[-2:]
    a = math.floor(axis_half_width)
    rows = torch.cat([torch.arange(0, a + 1), torch.arange(s - a, s)]).to(spec.power.device)
    cols = torch.arange(0, a + 1, device=spec.power.device)
    half = ring_half_width(f, min_bins=min_bins, rel_width=rel_width)[:, None, None]

    def axis_energy(p: torch.Tensor, rad: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        ring = ((rad[None] - f[:, None, None]).abs() <= half) & (rad[None] >= 1.0)
        return (p * wt * ring).sum(dim=(-2, -1))

    row_part = axis_energy(spec.power[:, rows], spec.radius[rows], spec.weight[rows])
    col_keep = (spec.ky[:, cols].abs() > a).to(spec.power.dtype)  # rows |ky| <= a are already counted
    col_part = axis_energy(spec.power[:, :, cols], spec.radius[:, cols], spec.weight[:, cols] * col_keep)
    e_axis = row_part + col_part
    ef, e2, eh = energy(hist, f), energy(hist, 2 * f), energy(hist, 0.5 * f)
    tiny = torch.finfo(hist.dtype).tiny
    ok = torch.isfinite(fstar) & (ef > 0)
    nan = torch.full_like(ef, float("nan"))
    return {"E2f_over_Ef": torch.where(ok, e2 / ef.clamp_min(tiny), nan),
            "Ehalf_over_Ef": torch.where(ok, eh / ef.clamp_min(tiny), nan),
            "axis_ratio_at_f": torch.where(ok, e_axis / ef.clamp_min(tiny), nan)}


def checkerboard_scores(spec: Spectrum, total_energy: torch.Tensor, *, strides: Sequence[int] = (2, 8),
                        kstar: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Relative amplitude of the stride grids: ``sqrt(E_grid / E_total)`` per stride, each ``(N,)``.

    For a stride ``s`` the grid is every frequency ``(i/s, j/s)`` cycles/px of the full plane except (0, 0);
    ``E_grid`` sums the 3×3 full-plane bins around each grid point of ``spec`` (the Hann-windowed, detrended
    image; each full-plane bin once per point, Hermitian twins read from the stored half); ``total_energy`` is
    the full-plane energy of the windowed image *including* its mean (``S² Σ (w·x)²``), so a ×2 upsampler
    whose even and odd outputs have gains ``g ± δ`` scores about ``δ/g``. A bilinear ×2 upsampler leaves
    almost nothing there (≈ 0). Grid points within 2 bins + 3 % of a point ``a·k* + b·k*⊥`` (|a|, |b| ≤ 8)
    of the lattice of the texture's own fundamental ``kstar`` (``N×2`` bins) are skipped: a tile period of
    8 px is not a VAE grid (consequence: a checkerboard is invisible on textures of period ≤ 16 px, whose
    8th harmonic reaches Nyquist). A zero ``kstar`` (no texture) skips nothing. Pass the reference's
    fundamental when there is one: a grid strong enough to become the output's own fundamental would
    otherwise hide itself (without a reference an 8-px grid and an 8-px tile cannot be told apart).
    Keys: ``checkerboard_s{stride}``.
    """
    power = spec.power
    n, s, _c = power.shape
    dev = power.device
    out: dict[str, torch.Tensor] = {}
    tiny = torch.finfo(power.dtype).tiny
    offs = torch.arange(-1, 2, device=dev)
    for stride in strides:
        # Every grid frequency of the full plane but (0, 0), signed cycles/px in (−½, ½]: the two points of a
        # Hermitian pair both count, as both twins count in the total energy.
        f = [(i if 2 * i <= stride else i - stride) / stride for i in range(stride)]
        pts = [(a, b) for a in f for b in f if (a, b) != (0.0, 0.0)]
        if not pts:
            continue
        fy = torch.tensor([a for a, _ in pts], device=dev, dtype=power.dtype)
        fx = torch.tensor([b for _, b in pts], device=dev, dtype=power.dtype)
        yy = (torch.round(fy * s).long()[:, None, None] + offs[None, :, None]).expand(-1, 3, 3).reshape(1, -1)
        xx = (torch.round(fx * s).long()[:, None, None] + offs[None, None, :]).expand(-1, 3, 3).reshape(1, -1)
        # The 3×3 full-plane bins around each point (read from the stored half plane).
        e_pts = gather_power(power, yy.expand(n, -1), xx.expand(n, -1)).reshape(n, len(pts), 9).sum(dim=-1)
        keep = torch.ones(n, len(pts), dtype=torch.bool, device=dev)
        if kstar is not None:
            ks = torch.nan_to_num(kstar, nan=0.0).to(power.dtype)  # N×2 (ky, kx) bins
            kp = torch.stack([-ks[:, 1], ks[:, 0]], dim=1)
            k2 = (ks ** 2).sum(dim=1).clamp_min(1e-12)
            alias = lambda t: torch.where(t == 0.5, -t, t)  # ±S/2 is one frequency: test both
            for gy, gx in ((fy, fx), (alias(fy), fx), (fy, alias(fx)), (alias(fy), alias(fx))):
                g = torch.stack([gy, gx], dim=1) * s  # P×2 bins
                a_ = (g @ ks.T).T / k2[:, None]  # N×P lattice coordinates along k*
                b_ = (g @ kp.T).T / k2[:, None]  # ... and along k*⊥
                ra, rb = a_.round(), b_.round()
                ly = ra * ks[:, :1] + rb * kp[:, :1]
                lx = ra * ks[:, 1:] + rb * kp[:, 1:]
                dist = torch.sqrt((g[None, :, 0] - ly) ** 2 + (g[None, :, 1] - lx) ** 2)
                tol = 2.0 + 0.03 * torch.sqrt((g ** 2).sum(dim=1))[None]
                near = (dist <= tol) & (ra.abs() <= 8) & (rb.abs() <= 8) & (k2[:, None] > 1e-6)
                keep &= ~near
        e = (e_pts * keep).sum(dim=1)
        out[f"checkerboard_s{stride}"] = torch.sqrt(e / total_energy.clamp_min(tiny)).clamp(0.0, 1.0)
    return out


def _border_axis_lines(u: torch.Tensor, a: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~trackdiag.functional.spectral.axis_lines` of Moisan's border-jump image ``v`` of ``u``
    (``N×H×W``),
    computed from the four border lines only (``v`` is zero inside): O((H + W)·a) instead of O(H·W·a).

    ``v = r + c``: ``r`` holds the top/bottom jump ``dv = u[H−1] − u[0]`` on row 0 (+) and row H−1 (−),
    ``c`` the left/right jump ``dh = u[:, W−1] − u[:, 0]`` on column 0 (+) and column W−1 (−).
    """
    _n, h, w = u.shape
    dt = u.dtype
    dv = u[:, -1, :] - u[:, 0, :]  # N×W
    dh = u[:, :, -1] - u[:, :, 0]  # N×H
    ky = torch.arange(-a, a + 1, device=u.device, dtype=dt)
    kx = torch.arange(0, a + 1, device=u.device, dtype=dt)
    y = torch.arange(h, device=u.device, dtype=dt)
    x = torch.arange(w, device=u.device, dtype=dt)
    ey = torch.polar(torch.ones(len(ky), h, device=u.device, dtype=dt), -2 * math.pi * ky[:, None] * y / h)
    ex = torch.polar(torch.ones(w, len(kx), device=u.device, dtype=dt), -2 * math.pi * x[:, None] * kx / w)
    cdv, cdh = dv.to(ey.dtype), dh.to(ey.dtype)
    # Rows (projection over y): r contributes (1 − e^{−2πik(H−1)/H})·dv(x); c only at x = 0 and x = W−1.
    m = (1 - ey[:, -1])[None, :, None] * cdv[:, None, :]  # N×(2a+1)×W
    proj_dh = cdh @ ey.T  # N×(2a+1): Σ_y dh(y) e^{−2πiky/H}
    m[:, :, 0] += proj_dh
    m[:, :, -1] -= proj_dh
    rows = torch.fft.fft(m, dim=-1)[..., : w // 2 + 1]
    # Columns (projection over x): c contributes dh(y)·(1 − e^{−2πik(W−1)/W}); r only at y = 0 and y = H−1.
    q = cdh[:, :, None] * (1 - ex[-1])[None, None, :]  # N×H×(a+1)
    proj_dv = cdv @ ex  # N×(a+1)
    q[:, 0, :] += proj_dv
    q[:, -1, :] -= proj_dv
    cols = torch.fft.fft(q, dim=-2)
    return rows, cols


@functools.lru_cache(maxsize=16)
def _border_geometry(h: int, w: int, a: int, min_radius: float, ru_shape: tuple[int, ...],
                     cu_shape: tuple[int, ...], device: torch.device, dt: torch.dtype
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`border_cross`'s constants for an ``H×W`` frame (cached: read only): ``D`` on the row lines
    and on the column lines, and the flat bins' ``keep`` mask and energy weights."""
    side = max(h, w)
    ky_r = torch.arange(-a, a + 1, device=device, dtype=dt)[:, None]  # rows' ky
    kx_r = torch.arange(0, w // 2 + 1, device=device, dtype=dt)[None, :]
    ky_c = torch.fft.fftfreq(h, d=1.0 / h, device=device, dtype=dt)[:, None]  # cols' ky
    kx_c = torch.arange(0, a + 1, device=device, dtype=dt)[None, :]

    def den(ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
        d = 2 * torch.cos(2 * math.pi * ky / h) + 2 * torch.cos(2 * math.pi * kx / w) - 4
        return torch.where((ky == 0) & (kx == 0), torch.ones_like(d), d)

    def weight(kx: torch.Tensor) -> torch.Tensor:
        wt = torch.where(kx == 0, torch.ones_like(kx), torch.full_like(kx, 2.0))
        return torch.where((kx == w / 2) & (w % 2 == 0), torch.ones_like(wt), wt)

    def radius(ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((ky * side / h) ** 2 + (kx * side / w) ** 2)

    keep_r = (radius(ky_r, kx_r) >= min_radius) & ~((ky_r == 0) & (kx_r == 0))
    # Columns: skip the rows |ky| <= a, already among the row lines.
    keep_c = (radius(ky_c, kx_c) >= min_radius) & (ky_c.abs() > a)
    keep = torch.cat([keep_r.expand(ru_shape).flatten(), keep_c.expand(cu_shape).flatten()])
    keep_c_off = (ky_c.abs() > a) * ~((ky_c == 0) & (kx_c == 0))
    wts = torch.cat([(weight(kx_r) * keep_r).expand(ru_shape).flatten(),
                     (weight(kx_c) * keep_c_off).expand(cu_shape).flatten()])
    return den(ky_r, kx_r), den(ky_c, kx_c), keep, wts


def border_cross(u: torch.Tensor, *, axis_half_width: int = 1,
                 min_radius: float = 2.0) -> dict[str, torch.Tensor]:
    """Border-cross index of ``N×H×W`` mean-removed images (no window), each value ``(N,)``.

    The periodic-plus-smooth decomposition (Moisan 2011) splits the raw DFT ``U = P + S``: ``P`` is the
    periodic component, ``S = V / D`` the smooth component forced by the jumps between opposite frame
    borders (``V``: DFT of the border-jump image, ``D = 2cos(2πky/H) + 2cos(2πkx/W) − 4``). On the axis
    lines (bins within ``axis_half_width`` of kx = 0 or ky = 0, radius ≥ ``min_radius`` bins) the index is the
    **median** over bins of ``|S|² / (|S|² + |P|²)``: the typical share of an axis bin's energy that the
    frame borders put there. ≈ 0 when the frame is periodic, even for a texture whose lines are exactly on
    the axes (its harmonics are a few strong bins; the median ignores them); → 1 when the cross comes from
    the borders. ``axis_energy_frac_nohann`` = ``E_axis(U) / E(U)`` (DC excluded). Only the axis lines of
    the spectra are computed (:func:`~trackdiag.functional.spectral.axis_lines`).
    """
    _n, h, w = u.shape
    a = int(axis_half_width)
    dt = u.dtype
    ru, cu = axis_lines(u, a)
    rv, cv = _border_axis_lines(u, a)
    den_r, den_c, keep, wts = _border_geometry(h, w, a, float(min_radius), tuple(ru.shape[1:]),
                                               tuple(cu.shape[1:]), u.device, dt)
    s_r, s_c = rv / den_r, cv / den_c
    p_r, p_c = ru - s_r, cu - s_c

    def pw(z: torch.Tensor) -> torch.Tensor:
        return (z.real.square() + z.imag.square()).flatten(1)

    s2 = torch.cat([pw(s_r), pw(s_c)], dim=1)
    p2 = torch.cat([pw(p_r), pw(p_c)], dim=1)
    u2 = torch.cat([pw(ru), pw(cu)], dim=1)
    tot = s2 + p2
    ok = keep[None] & (tot > 1e-12 * tot.amax(dim=1, keepdim=True))
    share = torch.where(ok, s2 / tot.clamp_min(torch.finfo(dt).tiny), torch.full_like(tot, float("nan")))
    index = torch.nan_to_num(share.nanmedian(dim=1).values, nan=0.0)
    eu_axis = (u2 * wts).sum(dim=1)
    eu = float(h * w) * u.square().sum(dim=(-2, -1)) - u.sum(dim=(-2, -1)).square()
    tiny = torch.finfo(dt).tiny
    return {
        "border_cross_index": index,
        "axis_energy_frac_nohann": torch.where(eu > 0, (eu_axis / eu.clamp_min(tiny)).clamp(0.0, 1.0),
                                               torch.zeros_like(eu)),
    }


def shift_mse(x: torch.Tensor, valid: torch.Tensor, *, weights: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared change under a 1-px shift along x and along y, over pairs of valid pixels.

    ``x`` ``N×H×W`` (invalid pixels may hold anything finite), ``valid`` ``N×H×W`` bool → ``(dx1, dy1)``,
    ``(N,)``; NaN when no pair is valid. ``weights`` = ``valid`` as float, when the caller has it.
    """
    vf = valid.to(x.dtype) if weights is None else weights
    xv = x * vf
    out = []
    for d in (-1, -2):
        n = x.shape[d]
        pair = vf.narrow(d, 1, n - 1) * vf.narrow(d, 0, n - 1)
        diff = (xv.narrow(d, 1, n - 1) - xv.narrow(d, 0, n - 1)).mul_(pair)  # pair ∈ {0, 1}
        out.append(torch.linalg.vector_norm(diff, dim=(-2, -1)).square() / pair.sum(dim=(-2, -1)))
    return out[0], out[1]


def _box_frequencies(center: torch.Tensor, reach: int,
                     dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer frequencies ``center ± (reach + 1)`` (``center`` ``N×2``: ky, kx): ``(ky, kx)``, each
    ``N×b`` with ``b = 2·reach + 3`` (one extra bin on each side for the parabola)."""
    offs = torch.arange(-reach - 1, reach + 2, device=center.device, dtype=dtype)
    return center[:, :1].to(dtype) + offs[None], center[:, 1:].to(dtype) + offs[None]


def _dft_box_power(z: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, side: int) -> torch.Tensor:
    """``|DFT|²`` of ``z`` (``N×H×W``, on the ``side×side`` grid) at the frequencies ``ky × kx`` (``N×b``
    each) only, by two matrix products (no full FFT): ``N×b×b``."""
    _n, h, w = z.shape
    b = ky.shape[1]
    y = torch.arange(h, device=z.device, dtype=z.dtype)
    x = torch.arange(w, device=z.device, dtype=z.dtype)
    py = -2 * math.pi * ky[:, :, None] * y[None, None, :] / side  # N×b×H
    px = -2 * math.pi * x[None, :, None] * kx[:, None, :] / side  # N×W×b
    m = torch.cat([torch.cos(py), torch.sin(py)], dim=1) @ z  # N×2b×W, real
    box = torch.complex(m[:, :b], m[:, b:]) @ torch.polar(torch.ones_like(px), px)  # N×b×b
    return box.real.square() + box.imag.square()


def _box_peak_radius(pw: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """Sub-bin radius of the strongest inner coefficient of a power box (``N×b×b`` at frequencies
    ``ky × kx``, ``N×b`` each), refined by a 3-point log-parabola along each axis: ``(N,)``."""
    n, b, _ = pw.shape
    inner = pw[:, 1:-1, 1:-1].reshape(n, -1)
    j = inner.argmax(dim=1)
    iy, ix = j // (b - 2) + 1, j % (b - 2) + 1
    lp = torch.log(pw.clamp_min(torch.finfo(pw.dtype).tiny))
    ar = torch.arange(n, device=pw.device)

    def off(lm: torch.Tensor, lc: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        den = lm - 2 * lc + lq
        d = 0.5 * (lm - lq) / torch.where(den < 0, den, torch.full_like(den, -1.0))
        return torch.where(den < 0, d, torch.zeros_like(d)).clamp(-0.5, 0.5)

    lc = lp[ar, iy, ix]
    fy = ky[ar, iy] + off(lp[ar, iy - 1, ix], lc, lp[ar, iy + 1, ix])
    fx = kx[ar, ix] + off(lp[ar, iy, ix - 1], lc, lp[ar, iy, ix + 1])
    return torch.sqrt(fy.square() + fx.square())


def resize_metrics(x: torch.Tensor, valid: torch.Tensor | None, signal: torch.Tensor, weights: torch.Tensor,
                   spec: Spectrum, fstar: torch.Tensor, peak_index: torch.Tensor, *, factor: float = 0.5,
                   reach: int = 3) -> dict[str, torch.Tensor]:
    """``resize_mse_downUp`` and ``resize_delta_r``, each ``(N,)``.

    The image is resized by ``factor`` (bilinear with antialiasing) and back to its size (bilinear). The MSE
    between the two is taken over valid pixels (``valid`` None: all; invalid ones are filled with the valid
    mean first). The shift of f* is the sub-bin radius of the strongest coefficient within ±``reach`` bins
    of f*'s coefficient (``peak_index``, ``N×2``) after the round trip minus the same before it (bins of the
    original grid; only that small box of the DFT is computed): negative when the round trip moved the
    pattern to lower frequencies. ``signal``, ``weights`` and ``spec`` are the prepared original (from
    :func:`~trackdiag.functional.spectral.analyze_periodicity`); the round-tripped image gets the same
    detrending
    polynomial and window (``signal + (up − x) · weights``), so only the resize differs.
    """
    _n, h, w = x.shape
    if valid is None:
        filled = x[:, None]
    else:
        vf = valid.to(x.dtype)
        mean = (x * vf).sum(dim=(-2, -1)) / vf.sum(dim=(-2, -1)).clamp_min(1.0)
        filled = torch.where(valid, x, mean[:, None, None])[:, None]
    dh, dw = max(1, round(h * factor)), max(1, round(w * factor))
    down = F.interpolate(filled, size=(dh, dw), mode="bilinear", antialias=True, align_corners=False)
    diff = F.interpolate(down, size=(h, w), mode="bilinear", align_corners=False)[:, 0] - filled[:, 0]
    if valid is None:
        mse = torch.linalg.vector_norm(diff, dim=(-2, -1)).square() / float(h * w)
    else:
        mse = torch.linalg.vector_norm(diff * vf, dim=(-2, -1)).square() / vf.sum(dim=(-2, -1)).clamp_min(1.0)
    # f*'s coefficient as signed integer frequencies (ky in FFT order → signed).
    s = spec.side
    center = torch.stack([torch.where(peak_index[:, 0] > s // 2, peak_index[:, 0] - s, peak_index[:, 0]),
                          peak_index[:, 1]], dim=1)
    ky, kx = _box_frequencies(center, reach, x.dtype)
    # Before the round trip the box is a piece of the spectrum already taken; after it, a small direct DFT.
    before = gather_power(spec.power, ky.long()[:, :, None].expand(-1, -1, ky.shape[1]),
                          kx.long()[:, None, :].expand(-1, ky.shape[1], -1))
    after = _dft_box_power(torch.addcmul(signal, diff, weights), ky, kx, s)
    delta = _box_peak_radius(after, ky, kx) - _box_peak_radius(before, ky, kx)
    ok = torch.isfinite(fstar) & (fstar > 0)
    return {"resize_mse_downUp": mse,
            "resize_delta_r": torch.where(ok, delta, torch.full_like(delta, float("nan")))}


def _fft_log_map(signal: torch.Tensor, side: int, max_side: int) -> torch.Tensor:
    """``log10`` power spectrum of one ``H×W`` image on the ``side×side`` grid, centred (DC in the middle) and
    max-pooled to at most ``max_side`` px: ``h×w``."""
    pw = torch.fft.fft2(signal, s=(side, side))
    p = torch.fft.fftshift(pw.real.square() + pw.imag.square())
    k = max(1, math.ceil(side / max_side))
    if k > 1:
        p = F.max_pool2d(p[None, None], kernel_size=k, stride=k, ceil_mode=True)[0, 0]
    return torch.log10(p + p.amax() * 1e-12 + torch.finfo(p.dtype).tiny)


def _shrink(m: torch.Tensor, max_side: int) -> torch.Tensor:
    h, w = m.shape[-2:]
    if max(h, w) <= max_side:
        return m
    sc = max_side / max(h, w)
    size = (max(1, round(h * sc)), max(1, round(w * sc)))
    return F.interpolate(m[None, None], size=size, mode="area")[0, 0]


def spectrum_distance(a: Spectrum, b: Spectrum, *, height: int, width: int, min_period_px: float = 3.0,
                      points: int = 128) -> torch.Tensor:
    """Distance between two radially averaged windowed power spectra, in **octaves of period**: the
    earth mover's (Wasserstein-1) distance between their energy distributions over ``log2(period)``.

    ``a``: the output's :class:`Spectrum` (``N`` images, side ``S``); ``b``: the reference's (1 image, side
    ``s``). Each ring's energy (mean power × circumference) is read at periods from ``min_period_px`` to
    a quarter of the output's shorter side, on a common log grid of ``points`` periods, normalised to a
    distribution; the distance is ``∫ |CDF_a − CDF_b| d log2(period)``. 0 for the same spectrum shape
    whatever the contrast; 1 when all the energy moved by one octave (a doubled or halved period).
    Returns ``(N,)``.
    """
    lo, hi = math.log2(max(2.0, min_period_px)), math.log2(max(4.0, 0.25 * min(height, width)))
    grid = torch.linspace(lo, hi, points, device=a.power.device, dtype=a.power.dtype)

    def dist(spec: Spectrum) -> torch.Tensor:
        prof = radial_profile(spec.power)  # N×(S/2+1)
        side = spec.side
        r = side / torch.exp2(grid)  # the radius (bins) of each period
        e = prof * torch.arange(prof.shape[1], device=prof.device, dtype=prof.dtype)
        i0 = r.floor().long().clamp(0, prof.shape[1] - 2)
        f = (r - i0.to(r.dtype)).clamp(0, 1)
        val = e[:, i0] * (1 - f) + e[:, i0 + 1] * f
        return val / val.sum(dim=1, keepdim=True).clamp_min(torch.finfo(val.dtype).tiny)

    da, db = dist(a), dist(b)
    step = (hi - lo) / (points - 1) if points > 1 else 0.0
    return (da.cumsum(dim=1) - db.cumsum(dim=1)).abs().sum(dim=1) * step


REF_AREA_KEYS = ("ref_doubled_frac", "ref_halved_frac", "ref_same_frac", "ref_measured_frac")


REF_LATTICE_ACF_KEYS = ("ref_lattice_acf_half", "ref_lattice_acf_same", "ref_lattice_acf_double")


REF_OWN_KEYS = ("ref_E2f_over_Ef", "ref_Ehalf_over_Ef", "ref_acf_period_px", "ref_peak_E2f_over_Ef",
                "ref_peak_Ehalf_over_Ef", "peak_E2f_over_Ef", "peak_Ehalf_over_Ef", *REF_LATTICE_ACF_KEYS)


def ref_lattice_acf_keys(per: Any, rper: Any, *, basis: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> dict[str, torch.Tensor]:
    """The reference's 2-D autocorrelation at ½, 1 and 2 × the output's lattice vectors
    (``ref_lattice_acf_half`` / ``_same`` / ``_double``, ``(B,)``; :func:`~trackdiag.functional.spectral.
    lattice_acf`): a check of the reference's scale that does not depend on the period its own spectrum was
    read at. A reference read at a finer shell of its lattice (a hex mosaic of 79 px read at 22.7 px, its
    √12 shell, where its first shells sit on the tile-colour hump) reads 0.94 at twice a halved output's
    vectors and ≈ 0 at them; at the output's scale it reads high at 1 and low at ½. ``basis``: the output's
    ``real_basis`` when the caller has it."""
    t1, t2 = real_basis(per.lattice.f, per.lattice.g, per.spec.side) if basis is None else basis
    a = lattice_acf(rper.signal, rper.weights, t1, t2)
    return {k: a[:, i] for i, k in enumerate(REF_LATTICE_ACF_KEYS)}


def ref_own_ratios(rper: Any, p: TilingParams) -> dict[str, torch.Tensor]:
    """The reference's own ``E(2f)/E(f)`` and ``E(f/2)/E(f)`` at its own f* (``ref_E2f_over_Ef``,
    ``ref_Ehalf_over_Ef``, ``(1,)`` each), with the rings of :func:`energy_ratios`.

    They are what the output's ratios at the reference's f* (``E2f_over_Ef``, ``Ehalf_over_Ef``) read when
    the output keeps the reference's scale, whatever period the reference was read at: a reference read at
    half its period (its fundamental taken for a harmonic) has its fundamental at f/2, and so has a clean
    output. A doubled output instead reads ``1 / ref_E2f_over_Ef`` there (its f/2 is the reference's f),
    a halved one ``1 / ref_Ehalf_over_Ef`` at 2f.
    """
    r = energy_ratios(rper.spec, rper.radius_bin, min_bins=p.ring_min_bins, rel_width=p.ring_rel_width,
                      axis_half_width=p.axis_half_width_bins)
    # the same ratios on the prominent bins only (peak_ring_ratios: the lattice's peaks, without the broad
    # energy of tile colours and shading), for the peak scale test (tiling_rules.ref_peak_scale_test)
    pe2, peh = peak_ring_ratios(rper.spec, rper.radius_bin, min_bins=p.ring_min_bins,
                                rel_width=p.ring_rel_width)
    return {"ref_E2f_over_Ef": r["E2f_over_Ef"], "ref_Ehalf_over_Ef": r["Ehalf_over_Ef"],
            "ref_peak_E2f_over_Ef": pe2, "ref_peak_Ehalf_over_Ef": peh}


def peak_ratios_at_ref(spec: Spectrum, ref_radius_bin: torch.Tensor, p: TilingParams
                       ) -> dict[str, torch.Tensor]:
    """The output's ``E(2f)/E(f)`` and ``E(f/2)/E(f)`` at the reference's f* on its prominent bins only
    (``peak_E2f_over_Ef``, ``peak_Ehalf_over_Ef``, ``(B,)``; :func:`~trackdiag.functional.spectral.
    peak_ring_ratios`): on a halved mosaic of random tile colours the raw ring at the reference's f* holds
    the colours' broad energy, more than the lattice peaks at 2f (a halved hex wall: raw E(2f)/E(f) 0.37)."""
    e2, eh = peak_ring_ratios(spec, ref_radius_bin, min_bins=p.ring_min_bins, rel_width=p.ring_rel_width)
    return {"peak_E2f_over_Ef": e2, "peak_Ehalf_over_Ef": eh}


def local_min_period(ds: int, *, min_period_px: float) -> float:
    """Shortest period (original px) the local-period map searches at downsampling ``ds``
    (:func:`~trackdiag.analyzers.bands.local_period_map`: 4 downsampled px, and ``min_period_px``)."""
    return max(float(min_period_px), 4.0 * ds)


def ref_departure(lp: Any, ref_period: torch.Tensor) -> dict[str, torch.Tensor]:
    """Where the output's local period departs from the reference's (``(B,)`` each).

    Every window of the local-period map (``lp``, :func:`~trackdiag.analyzers.bands.local_period_map`) with a
    period is classed by its ratio ``q`` to ``ref_period`` (``(B,)``) on a log scale: *doubled* when ``q`` is
    nearer 2 than 1 (``√2 ≤ q ≤ 2√2``), *halved* when nearer ½ (``1/(2√2) ≤ q ≤ 1/√2``), *same* when
    nearer 1 (``1/√2 < q < √2``); the rest (harmonics at 3× and more) departs too. The window's scalar
    period only: its per-axis periods added nothing but noise on clean walls. Returns the shares of the
    measured windows (``ref_doubled_frac``, ``ref_halved_frac``, ``ref_same_frac``) and the share of windows
    measured (``ref_measured_frac``; windows outside the mask or without a clear peak are not).
    """
    per = lp.period_px
    b = per.shape[0]
    rp = ref_period.reshape(b, 1, 1)
    r2 = math.sqrt(2.0)
    q = per / rp
    meas = torch.isfinite(q)
    dbl = meas & (q >= r2) & (q <= 2 * r2)
    hlf = meas & (q <= 1 / r2) & (q >= 1 / (2 * r2))
    n = meas.flatten(1).sum(dim=1).to(per.dtype)
    den = n.clamp_min(1.0)
    nan = torch.full_like(n, float("nan"))
    frac = lambda m: torch.where(n > 0, m.flatten(1).sum(dim=1).to(per.dtype) / den, nan)
    return {"ref_doubled_frac": frac(dbl), "ref_halved_frac": frac(hlf),
            "ref_same_frac": frac(meas & (q > 1 / r2) & (q < r2)),
            "ref_measured_frac": n / float(max(1, per[0].numel()))}


def _lattice_keys(per: Any, side: int, *, prefix: str, basis: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> dict[str, torch.Tensor]:
    """``lattice_t1_px``, ``lattice_t2_px``, their angles (degrees in [0, 180), from the +x axis, y down),
    ``period_x_px``, ``period_y_px`` and ``lattice_prominence`` of an :func:`analyze_periodicity` result made
    with ``lattice=True`` (keys prefixed with ``prefix``; ``basis``: its ``real_basis`` when known)."""
    lat = per.lattice
    t1, t2 = real_basis(lat.f, lat.g, side) if basis is None else basis
    px, py = axis_periods(t1, t2)

    def angle(t: torch.Tensor) -> torch.Tensor:
        return torch.remainder(torch.rad2deg(torch.atan2(t[:, 0], t[:, 1])), 180.0)

    return {f"{prefix}lattice_t1_px": t1.norm(dim=1), f"{prefix}lattice_t2_px": t2.norm(dim=1),
            f"{prefix}lattice_t1_angle_deg": angle(t1), f"{prefix}lattice_t2_angle_deg": angle(t2),
            f"{prefix}period_x_px": px, f"{prefix}period_y_px": py,
            f"{prefix}lattice_prominence": lat.prominence}


def _centre_crop_period(x: torch.Tensor, valid: torch.Tensor | None, p: TilingParams
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The lattice period of the frame's central half (``x`` ``N×H×W`` finite, ``valid`` optional 0/1):
    ``(N,)`` px, NaN where the crop has no lattice, and the crop's periodicity score ``(N,)``. On a wall seen
    at an angle the period varies half as much there as over the frame, and the truth's period is the
    centre's."""
    inp = _centre_crop_input(x, valid, p)
    return _centre_crop_finish(inp, pick_lattice(inp.peaks, min_radius=inp.r_min), p)


def _centre_crop_input(x: torch.Tensor, valid: torch.Tensor | None, p: TilingParams) -> LatticeInput:
    """:func:`_centre_crop_period` before its lattice pick
    (:func:`~trackdiag.functional.spectral.lattice_input` of the central half)."""
    h, w = x.shape[-2:]
    ys, xs = slice(h // 4, h - h // 4), slice(w // 4, w - w // 4)
    xc = x[:, ys, xs]
    vc = None if valid is None else valid[:, ys, xs]
    return lattice_input(xc, valid=vc, min_period_px=p.min_period_px, max_period_frac=CENTRE_CROP_FRAC,
                         detrend_order=p.detrend_order, clean=True, taper=valid is not None)


def _centre_crop_finish(inp: LatticeInput, lat: Any, p: TilingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_centre_crop_period` after its lattice pick ``lat``."""
    per = lattice_periodicity(inp, lat, min_period_px=p.min_period_px)
    nan = torch.full_like(per.period_px, float("nan"))
    return torch.where(per.lattice.found, per.period_px, nan), per.score


def _refined_tilts(x: torch.Tensor, vf: torch.Tensor, tilts: torch.Tensor, trend: torch.Tensor,
                   one_d: torch.Tensor, p: TilingParams) -> torch.Tensor:
    """:func:`.rectified.refine_tilts` with the summary's limits and local-map geometry: the tilt candidates
    (``tilts`` ``N×C×2``, frame units) each corrected once on the wall it rectifies; ``N×C×2``."""
    return refine_tilts(x, vf, tilts, trend, one_d, max_step=RECT_REFINE_STEP, max_spread=RECT_REFINE_SPREAD,
                        min_coherence=RECT_REFINE_COHERENT, min_diff=RECT_ALT_DIFF,
                        window_frac=p.local_window_frac, overlap=p.local_overlap,
                        max_fft_px=p.local_max_fft_px, max_downsample=p.local_max_downsample,
                        min_period_px=p.min_period_px, min_peak_ratio=p.local_min_peak_ratio,
                        rel_power=p.rel_power)


def _rectified_wall(x: torch.Tensor, vf: torch.Tensor, lp: Any, wst: Mapping[str, torch.Tensor], per: Any,
                    side: int, angled: torch.Tensor, p: TilingParams, *,
                    basis: tuple[torch.Tensor, torch.Tensor] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The wall rectified by its tilt, for the centre's period: ``(xr, vr, sel, tilts)``, ``N×H×W`` luma and
    0/1 weights (:func:`~trackdiag.functional.rectify.rectify`; 0 outside ``sel``), ``sel`` ``(N,)`` bool:
    the images ``angled`` (``(N,)`` bool) whose tilt is measured and not 0, and ``tilts`` ``N×2×2`` the tilt
    candidates corrected once on the walls they rectify (:func:`_refined_tilts`; NaN outside ``sel``), which
    the rectified region maps take as they are (:func:`_rectified_keys`).

    ``x``, ``vf``: ``N×H×W`` luma and 0/1 weights; ``lp`` the local lattice map, ``wst`` the window grid's
    trend keys, ``per`` the frame's periodicity (its lattice: 1-D or 2-D), ``side`` its FFT side, ``p`` the
    summary's parameters (``basis``: the frame's ``real_basis`` when known). The tilt is :func:`_wall_tilt`'s
    checked candidate (the one the rectified region maps try first) after its correction (eleventh sitting;
    before, the uncorrected one). On a wall seen
    at an angle the central half still spans a range of local periods (the lines across the tilt change
    twice as fast as those along it: a hex or penny lattice's three row families shear apart), so its
    spectral peaks smear and the strongest bump of the smear is read, a few % off the centre's period; the
    rectified wall has the centre's scale everywhere (its Jacobian is the identity at the frame centre)."""
    h, w = x.shape[-2:]
    t2 = (real_basis(per.lattice.f, per.lattice.g, side) if basis is None else basis)[1]
    one_d = ~torch.isfinite(t2).all(1)
    gs = _wall_tilt(lp, wst, one_d, angled, h, w)  # N×2×2 (candidate, (G_y, G_x)), frame units
    sel = angled & torch.isfinite(gs[:, 0]).all(1) & (gs[:, 0].abs() > 0).any(1)
    trend = torch.stack([wst["persp_trend_y"], wst["persp_trend_x"]], dim=1)

    def refine(i: torch.Tensor | None) -> tuple[torch.Tensor]:
        r = slice(None) if i is None else i
        return (_refined_tilts(x[r], vf[r], gs[r], trend[r], one_d[r], p),)

    # (each candidate corrected once on the wall it rectifies: the rectified region maps use the same)
    gr = on_rows(sel, refine, fills=(float("nan"),), like=x, shape=(2, 2))[0]
    side_hw = torch.tensor([float(h), float(w)], device=x.device, dtype=x.dtype)
    g = torch.nan_to_num(gr[:, 0] / side_hw, nan=0.0)

    def fn(i: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        r = slice(None) if i is None else i
        return rectify(x[r], vf[r], g[r])

    xr, vr = on_rows(sel, fn, fills=(0.0, 0.0), like=x, shape=(h, w))
    return xr, vr, sel, gr


def _rectified_windows(xr: torch.Tensor, vr: torch.Tensor, p: TilingParams
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_window_readings` of a rectified wall (``xr``, ``vr``: ``N×H×W``, :func:`_rectified_wall`; no
    trend to undo, its rectified margins tapered as a mask's): ``(lw, ok)``, ``N×G`` each, ``ok`` as 0/1 of
    ``xr``'s dtype."""
    zero = torch.zeros(xr.shape[0], device=xr.device, dtype=xr.dtype)
    lw, ok, _side = _window_readings(xr, vr, zero, zero, p, masked=True)
    return lw, ok.to(xr.dtype)


def _frame_doubled_period(gl: torch.Tensor, cen: torch.Tensor, cc: torch.Tensor, *, window_px: int,
                          crop_score: torch.Tensor | None = None) -> torch.Tensor:
    """The period to report on a fronto-parallel wall whose frame lattice was pulled to twice the period by a
    zone or band at 2× (or by a 1-D texture's second harmonic): ``(N,)`` px, NaN where the frame's lattice
    stands.

    ``gl`` the frame's lattice period, ``cen`` the local map's (:func:`~.bands.centre_period`), ``cc`` the
    central half's lattice period (``(N,)`` each; ``crop_score`` its score, ``(N,)``, optional). The map
    reads each window's own period, so where the frame reads ``FRAME_DOUBLE`` × the map (about 2×), the crop
    does not contradict it (it agrees within ``CENTRE_AGREE`` with the frame or the map, or reads
    ``FRAME_DOUBLE`` × the map itself, or has no lattice: NaN or scoring below ``CENTRE_CROP_SCORE``), and
    the map's period fits ``REF_MAP_CYCLES`` times in a window (``window_px``: a period the windows cannot
    hold is read at a harmonic), the map's period is reported, or the crop's where it agrees with the map.
    """
    q, qc = gl / cen, cc / cen
    near = lambda a, b: (a / b - 1.0).abs() <= CENTRE_AGREE  # NaN: False
    two = lambda r: torch.isfinite(r) & (r >= FRAME_DOUBLE[0]) & (r <= FRAME_DOUBLE[1])
    no_crop = ~torch.isfinite(cc)
    if crop_score is not None:
        no_crop = no_crop | (crop_score < CENTRE_CROP_SCORE)
    doubled = (two(q) & (cen <= window_px / REF_MAP_CYCLES)
               & (near(cc, gl) | near(cc, cen) | two(qc) | no_crop))
    nan = torch.full_like(gl, float("nan"))
    return torch.where(doubled, torch.where(near(cc, cen) & ~no_crop, cc, cen), nan)


def _vote_windows(x: torch.Tensor, vf: torch.Tensor, side: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grid of non-overlapping ``side×side`` windows, centred in the frame: ``x`` and ``vf``
    (``N×H×W``) cut into ``(N·G)×side×side`` each, and the windows' centres ``(G,)`` as ``y / H − ½`` and
    ``x / W − ½``."""
    n, h, w = x.shape
    gy, gx = max(1, h // side), max(1, w // side)
    oy, ox = (h - gy * side) // 2, (w - gx * side) // 2

    def cut(a: torch.Tensor) -> torch.Tensor:
        a = a[:, oy: oy + gy * side, ox: ox + gx * side].reshape(n, gy, side, gx, side)
        return a.permute(0, 1, 3, 2, 4).reshape(n * gy * gx, side, side)

    dt = x.dtype
    cy = (oy + side * (torch.arange(gy, device=x.device, dtype=dt) + 0.5)) / h - 0.5
    cx = (ox + side * (torch.arange(gx, device=x.device, dtype=dt) + 0.5)) / w - 0.5
    return cut(x), cut(vf), cy[:, None].expand(gy, gx).flatten(), cx[None, :].expand(gy, gx).flatten()


def _window_readings(x: torch.Tensor, vf: torch.Tensor, trend_x: torch.Tensor, trend_y: torch.Tensor,
                     p: TilingParams, *, masked: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The wall's local windows' lattice periods, moved to the frame centre: ``(lw, ok, side)``.

    ``x`` ``N×H×W`` finite, ``vf`` its 0/1 weights (``masked``: a mask was given). The frame is cut into a
    grid of ``G`` non-overlapping ``side×side`` windows (``WINDOW_VOTE_FRAC`` of the shorter side, rounded
    down to a fast FFT size: :func:`~trackdiag.functional.spectral.fast_fft_size`), each read
    by the lattice estimator (:func:`analyze_periodicity`, periods up to 0.34 of the window). ``lw``
    ``N×G``: each window's log period moved to the frame centre along the perspective trend (``trend_x``,
    ``trend_y``: ``(N,)`` slopes of the log period per frame width / height, NaN read as 0); ``ok`` ``N×G``:
    the window has ≥ 60 % valid pixels and a lattice (the others do not vote)."""
    w_in = _window_input(x, vf, p, masked=masked)
    lat = None if w_in[0] is None else pick_lattice(w_in[0].peaks, min_radius=w_in[0].r_min)
    return _window_finish(w_in, lat, trend_x, trend_y)


_WindowInput = tuple[LatticeInput | None, torch.Tensor, torch.Tensor, torch.Tensor, int, int]


def _window_input(x: torch.Tensor, vf: torch.Tensor, p: TilingParams, *, masked: bool,
                  all_valid: bool = False) -> _WindowInput:
    """:func:`_window_readings` before its lattice pick: ``(the windows' lattice input or None where the
    windows are too small, their weights, centres y and x, side, N)``. ``all_valid``: every weight is 1
    (the windows' spectra then take the plain Hann window, one view for all: the same values)."""
    n, h, w = x.shape
    # (a third of the shorter side, rounded down to a size the FFT takes fast: 170 -> 168, 85 -> 84)
    side = fast_fft_size(int(min(h, w) * WINDOW_VOTE_FRAC))
    if side < 32:
        return None, vf, x.new_zeros(0), x.new_zeros(0), side, n
    xw, vw, cy, cx = _vote_windows(x, vf, side)
    # (the lattice pick of analyze_periodicity(lattice=True) without its ACF: only the lattice is read,
    # as spectral.lattice_period)
    inp = lattice_input(xw, valid=None if all_valid else vw, min_period_px=p.min_period_px,
                        max_period_frac=0.34, detrend_order=p.detrend_order, clean=True, taper=masked,
                        keep_log_power=False)
    return inp, vw, cy, cx, side, n


def _window_finish(w_in: _WindowInput, lat: Any, trend_x: torch.Tensor, trend_y: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """:func:`_window_readings` after its lattice pick ``lat`` (``None`` where there was no input)."""
    inp, vw, cy, cx, side, n = w_in
    if inp is None or lat is None:
        return (torch.full((n, 1), float("nan"), device=vw.device, dtype=vw.dtype),
                torch.zeros((n, 1), device=vw.device, dtype=torch.bool), side)
    g = cy.numel()
    period, found = inp.spec.side / lat.radius, lat.found
    ok = (found & (vw.mean(dim=(-2, -1)) >= 0.6)).reshape(n, g)
    lw = torch.log(period.reshape(n, g).clamp_min(1e-6))
    lw = lw - torch.nan_to_num(trend_x)[:, None] * cx[None] - torch.nan_to_num(trend_y)[:, None] * cy[None]
    return lw, ok, side


def _largest_group(lw: torch.Tensor, among: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest group of windows (``among``, ``N×G`` bool) whose log periods (``lw``, ``N×G``) lie within
    ``WINDOW_VOTE_TOL`` of one member's: ``(group N×G bool, median log period (N,), NaN without one)``."""
    near = (lw[:, :, None] - lw[:, None, :]).abs() <= WINDOW_VOTE_TOL  # N×G×G
    cnt = (near & among[:, None, :]).sum(dim=2)
    best = torch.where(among, cnt, torch.full_like(cnt, -1)).argmax(dim=1)
    ar = torch.arange(lw.shape[0], device=lw.device)
    group = near[ar, best] & among
    return group, torch.where(group, lw, torch.full_like(lw, float("nan"))).nanmedian(dim=1).values


def _window_vote_period(lw: torch.Tensor, ok: torch.Tensor, side: int, period: torch.Tensor, *,
                        crop: torch.Tensor | None = None, crop_score: torch.Tensor | None = None,
                        lattice_t1: torch.Tensor | None = None, min_period_px: float = 3.0) -> torch.Tensor:
    """The finer period that most of the wall's local windows read, where the reported one is a multiple of
    it (a zone or band at 2× pulled the frame's lattice, and the crop and the map with it): ``(N,)`` px, NaN
    where the reported ``period`` (``(N,)``) stands. ``lw``, ``ok``, ``side``: :func:`_window_readings`.

    The largest group of windows within ``WINDOW_VOTE_TOL`` of each other among those reading a divisor of
    ``period`` (2, 3, 4 … within the same tolerance) is the finer lattice; it is reported (the group's median)
    where it holds at least ``WINDOW_VOTE_SHARE`` of the voting windows (≥ 4) and more of them than agree
    with ``period``, and only where a window holds ``period`` at least ``WINDOW_VOTE_CYCLES`` times (a window
    holding fewer periods reads its harmonic) or the frame's central half, a larger window, reads the
    windows' lattice too (``crop``: its lattice period, ``crop_score`` its score, ``(N,)`` each; within
    ``WINDOW_VOTE_TOL`` and scoring at least ``CENTRE_CROP_SCORE``), or the frame's own lattice has a
    translation of the windows' period (``lattice_t1``: its shortest real-space vector, ``(N,)`` px, within
    ``WINDOW_VOTE_TOL``: the finer period is then a repeat of the frame, not a window's harmonic reading;
    a band of rows at 2× made a wallpaper frame's lattice 22 × 44 px and the reported period 44 px, every
    window reading 22 px). Not towards a period under
    ``2 × min_period_px`` (near the search floor a window reads the harmonic of thin lines: 8-px seams read
    4 px in 85-px windows), as the central half's reading is not used there either."""
    l0 = torch.log(period.clamp_min(1e-6))[:, None]
    nvote = ok.sum(dim=1)
    agree0 = (ok & ((lw - l0).abs() <= WINDOW_VOTE_TOL)).sum(dim=1)
    m = torch.exp(l0 - lw)  # reported / window period
    finer = ok & (m >= 2.0 - 2.0 * WINDOW_VOTE_TOL) & (lw >= math.log(2.0 * min_period_px))
    finer &= (m / m.round().clamp_min(1.0)).log().abs() <= WINDOW_VOTE_TOL
    group, lm = _largest_group(lw, finer)
    share = group.sum(dim=1)
    room = side >= WINDOW_VOTE_CYCLES * period
    if crop is not None and crop_score is not None:
        room = room | (((torch.log(crop.clamp_min(1e-6)) - lm).abs() <= WINDOW_VOTE_TOL)
                       & (crop_score >= CENTRE_CROP_SCORE))  # NaN crop: False
    if lattice_t1 is not None:
        room = room | ((torch.log(lattice_t1.clamp_min(1e-6)) - lm).abs() <= WINDOW_VOTE_TOL)  # NaN: False
    use = ((share.to(lw.dtype) >= WINDOW_VOTE_SHARE * nvote.to(lw.dtype)) & (share > agree0) & (nvote >= 4)
           & room & finer.any(dim=1))
    return torch.where(use, torch.exp(lm), torch.full_like(period, float("nan")))


def _window_confirmed(lw: torch.Tensor, ok: torch.Tensor, period: torch.Tensor, readings: torch.Tensor
                      ) -> torch.Tensor:
    """Of the wall's readings of its centre's period (``readings`` ``N×R`` px: the reported ``period``, the
    central half's, the local map's, the frame's; NaN where absent), the one that the majority of the local
    windows confirms: ``(N,)`` px, NaN where none is confirmed. ``lw``, ``ok``: :func:`_window_readings`.

    The largest group of windows within ``WINDOW_VOTE_TOL`` of each other among those within
    ``WINDOW_CONFIRM_RANGE`` of ``period`` must hold ``WINDOW_VOTE_SHARE`` of the voting windows (≥ 4) and
    its median must contradict ``period`` (differ by more than ``WINDOW_CONFIRM_TOL``, the 5 % accuracy
    target); the reading nearest to that median, if within ``WINDOW_VOTE_TOL``, is returned. On a wall seen
    at an angle the crop and the map read the centre's period differently (a zone or band at 2× over the
    centre moves the crop, windows at 2× the map), and a band at 2× pulls a fronto-parallel hex wall's
    frame lattice or central half 10 % off: the windows arbitrate, but do not measure (their few periods
    each bias their reading by a few %)."""
    l0 = torch.log(period.clamp_min(1e-6))[:, None]
    nvote = ok.sum(dim=1)
    cand = ok & ((lw - l0).abs() <= math.log(WINDOW_CONFIRM_RANGE))
    group, lm = _largest_group(lw, cand)
    share = group.sum(dim=1)
    d = (torch.log(readings.clamp_min(1e-6)) - lm[:, None]).abs()
    d = torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf")))
    j = d.argmin(dim=1)
    ar = torch.arange(lw.shape[0], device=lw.device)
    use = ((share.to(lw.dtype) >= WINDOW_VOTE_SHARE * nvote.to(lw.dtype)) & (nvote >= 4) & cand.any(dim=1)
           & (d[ar, j] <= WINDOW_VOTE_TOL) & ((l0[:, 0] - lm).abs() > WINDOW_CONFIRM_TOL))
    return torch.where(use, readings[ar, j], torch.full_like(period, float("nan")))


def _rectified_base(lw: torch.Tensor, ok: torch.Tensor, side: int, period: torch.Tensor,
                    readings: torch.Tensor, *, lattice_t1: torch.Tensor, min_period_px: float = 3.0,
                    exact: torch.Tensor | None = None, fine_rows: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """The wall's base period as the windows of the **rectified** wall read it, where it departs from the
    reported one: ``(N,)`` px, NaN where ``period`` (``(N,)``) stands. ``lw``, ``ok``: ``N×G``, the rectified
    wall's :func:`_window_readings` (no trend to undo: each window reads the centre's scale, within about
    1 %); ``readings`` ``N×R`` px, the centre's readings (reported, central half, map, frame; NaN absent).

    Two cases, both where at least 4 windows vote. (1) *A finer lattice beside its double*: the largest
    group of windows (within ``WINDOW_VOTE_TOL``) among those whose period some other window reads at twice
    (a band or zone at 2×, over the centre or most windows: the crop, the map and the plain majority read
    it), where that group holds at least ``WINDOW_FINE_MIN`` windows and ``WINDOW_FINE_SHARE`` of the
    voters and the two lattices together at least ``WINDOW_PAIR_SHARE``: the finer is the wall's base
    (a 2× region covers under half of a generated wall, but windows that straddle its edge read the
    coarser lattice). (2) *A majority far off*: the largest group holds ``WINDOW_VOTE_SHARE`` of the voters
    and lies beyond ×/÷ ``WINDOW_CONFIRM_RANGE`` of ``period`` (a crop or map that read the √3 shell of a
    penny wall, a hex lattice stretched by a band, :func:`_window_confirmed` does not look that far). The
    group's median is reported, or the reading nearest to it where within ``WINDOW_CONFIRM_TOL``. Not
    towards a period under ``2 × min_period_px``, and towards one at most ½ of ``period`` (by
    ``2 − 2·WINDOW_VOTE_TOL``: a harmonic) only where the frame's shortest lattice vector (``lattice_t1``,
    ``(N,)`` px) lies nearer the new period than the reported one or, in case (2), a window (``side`` px)
    holds ``period`` ``WINDOW_VOTE_CYCLES`` times (as :func:`_window_vote_period`: windows holding few
    periods read harmonics — v8 seed 31, angled hex and plank walls of 48–53 px in 170-px windows read
    ⅓–⅕, an angled checkerboard over planks ½; v8 seed 26, an angled photographed brick wall's windows
    read its half course in 3 of 6, with room for the course, its frame lattice at 1.3 × the course).

    "Its double" is a window reading ``2^(1 − WINDOW_VOTE_TOL)`` to ``WINDOW_COARSE_MAX`` × the finer period
    (a band doubled along one axis stretches a hex or penny lattice to 2.3 × its row spacing), and the finer
    group is the finest: windows that some voting window reads at ½ (a chain P, 2P, 4P) are not in it.
    ``exact`` (``(N,)`` bool, all True when None): the windows read the centre's scale (the rectified wall's,
    or a fronto-parallel wall's, with no trend to undo); elsewhere (an angled wall's windows moved along its
    trend, a few % apart, some at a harmonic) only case (2), and only towards a coarser period (the crop or
    the frame on a hex wall's √3 shell, the windows and the map on its rows). ``fine_rows`` (``(N,)`` bool,
    all True when None): where case (1) holds with a finer group smaller than its coarser partner (the
    rectified walls; elsewhere the finer group must be at least as large: a fronto-parallel running-bond
    brick wall of 32 px in 128-px windows reads its half course in 3 of 9, the frame's diagonal nearer it)."""
    l0 = torch.log(period.clamp_min(1e-6))
    nvote = ok.sum(dim=1).to(lw.dtype)
    ln2 = math.log(2.0)
    lo, hi = ln2 - WINDOW_VOTE_TOL, math.log(WINDOW_COARSE_MAX)
    floor = lw >= math.log(2.0 * min_period_px)
    # (1) windows whose double (2^(1-tol) to WINDOW_COARSE_MAX ×) some window reads, and whose half none does
    up = lw[:, None, :] - lw[:, :, None]  # N×G×G: window j's log period over window i's
    dbl = (up >= lo) & (up <= hi) & ok[:, None, :] & ok[:, :, None]
    has_dbl = ok & floor & dbl.any(dim=2) & ~dbl.any(dim=1)
    gf, mf = _largest_group(lw, has_dbl)
    nf = gf.sum(dim=1).to(lw.dtype)
    upf = lw - mf[:, None]
    nc = (ok & (upf >= lo) & (upf <= hi)).sum(dim=1).to(lw.dtype)
    fine = ((nf >= WINDOW_FINE_MIN) & (nf >= WINDOW_FINE_SHARE * nvote)
            & (nf + nc >= WINDOW_PAIR_SHARE * nvote))
    if exact is not None:
        fine = fine & exact
    if fine_rows is not None:
        fine = fine & (fine_rows | (nf >= nc))
    # (2) the plain majority, far from the reported period
    g, m = _largest_group(lw, ok & floor)
    far = ((g.sum(dim=1).to(lw.dtype) >= WINDOW_VOTE_SHARE * nvote)
           & ((m - l0).abs() > math.log(WINDOW_CONFIRM_RANGE)))
    target = torch.where(fine, mf, m)
    lt = torch.log(lattice_t1.clamp_min(1e-6))
    near_t1 = (lt - target).abs() < (lt - l0).abs()  # NaN t1: False
    # (the finer lattice beside its double: the frame's lattice must hold it — a photographed brick wall's
    # windows read its half course in half of them, with room for the course)
    room = torch.where(fine, near_t1, (side >= WINDOW_VOTE_CYCLES * period) | near_t1)
    harmonic = l0 - target >= math.log(2.0 - 2.0 * WINDOW_VOTE_TOL)
    use = ((fine | far) & (nvote >= 4) & torch.isfinite(target) & ((target - l0).abs() > WINDOW_CONFIRM_TOL)
           & (room | ~harmonic))
    if exact is not None:
        use = use & (exact | (target > l0))
    d = (torch.log(readings.clamp_min(1e-6)) - target[:, None]).abs()
    d = torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf")))
    j = d.argmin(dim=1)
    ar = torch.arange(lw.shape[0], device=lw.device)
    got = torch.where(d[ar, j] <= WINDOW_CONFIRM_TOL, readings[ar, j], torch.exp(target))
    return torch.where(use, got, torch.full_like(period, float("nan")))


def _only_where(sel: torch.Tensor, keys: Sequence[str], like: torch.Tensor,
                fn: Callable[[torch.Tensor | None], Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{key: (B,)}`` of ``fn`` where ``sel`` (``(B,)`` bool) holds and NaN elsewhere (``like``'s dtype):
    keys that are used on those images only. ``fn(idx)`` computes ``keys`` on the images ``idx`` (``(K,)``
    long; None: all of them); on the CPU only the selected images are computed
    (:func:`~trackdiag.functional.rows.on_rows`)."""
    return on_rows(sel, fn, fills=dict.fromkeys(keys, float("nan")), like=like)


def _pair_keys(x: torch.Tensor, vf: torch.Tensor, per: Any, side: int, wst: Mapping[str, torch.Tensor],
               tx: torch.Tensor, ty: torch.Tensor, centre_scale: torch.Tensor, p: TilingParams,
               rows: torch.Tensor | None = None, basis: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> dict[str, torch.Tensor]:
    """The real-space 2×-region keys (:func:`.bands.pair_doubling_keys`): the wall's lattice vectors brought
    to the frame centre's period (``centre_scale`` = reported / global period: 1 on fronto-parallel walls),
    each window's expected scale from the window grid's perspective trend (the local map's where it has
    none). ``rows``: only these images (``(K,)`` long; None: all). ``basis``: the frame's ``real_basis``
    when known."""
    t1, t2 = real_basis(per.lattice.f, per.lattice.g, side) if basis is None else basis
    cs = torch.nan_to_num(centre_scale, nan=1.0)[:, None]
    trx = torch.where(torch.isfinite(wst["persp_trend_x"]), wst["persp_trend_x"], tx)
    try_ = torch.where(torch.isfinite(wst["persp_trend_y"]), wst["persp_trend_y"], ty)
    if rows is not None:
        x, vf, t1, t2, cs, trx, try_ = (a[rows] for a in (x, vf, t1, t2, cs, trx, try_))
    return pair_doubling_keys(x, vf, t1=t1 * cs, t2=t2 * cs, trend_x=trx, trend_y=try_,
                              window_frac=p.local_window_frac, overlap=p.local_overlap,
                              max_fft_px=p.local_max_fft_px, max_downsample=p.local_max_downsample)


def _wall_tilt(lp: Any, wst: Mapping[str, torch.Tensor], one_d: torch.Tensor, rows: torch.Tensor, height: int,
               width: int) -> torch.Tensor:
    """The wall's tilt candidates (``N×2×2``: candidate × (G_y, G_x), frame units ``G = g·side``) from the
    local lattice map's per-axis periods (:func:`~trackdiag.functional.rectify.tilt_from_axis_periods`):
    first checked against the window grid's isotropic trend (:func:`~trackdiag.functional.rectify.
    checked_tilt`; ``one_d`` ``(N,)``: no second lattice vector), second the unchecked estimate where the
    check replaced it (:func:`~trackdiag.functional.rectify.alternative_tilt`, NaN elsewhere); NaN outside
    ``rows`` (``(N,)`` bool)."""

    def tilt(i: torch.Tensor | None) -> tuple[torch.Tensor]:
        r = slice(None) if i is None else i
        py = None if lp.period_y_px is None else lp.period_y_px[r]
        g, _ = tilt_from_axis_periods(lp.period_x_px[r], py, lp.center_y, lp.center_x, height=height,
                                      width=width)
        side = torch.tensor([float(height), float(width)], device=g.device, dtype=g.dtype)
        trend = torch.stack([wst["persp_trend_y"][r], wst["persp_trend_x"][r]], dim=1)
        chk = checked_tilt(g * side, trend, one_d[r])
        alt = alternative_tilt(g * side, chk, trend, min_diff=RECT_ALT_DIFF, max_tilt=RECT_ALT_MAX)
        return (torch.stack([chk, alt], dim=1),)

    # (only where it is used: the walls with perspective)
    return on_rows(rows, tilt, fills=(float("nan"),), like=lp.period_x_px, shape=(2, 2))[0]


def _rectified_keys(x: torch.Tensor, vf: torch.Tensor, lp: Any, wst: Mapping[str, torch.Tensor], per: Any,
                    side: int, cscale: torch.Tensor, angled: torch.Tensor, out: Mapping[str, torch.Tensor],
                    p: TilingParams, refined: torch.Tensor | None = None,
                    basis: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """On the images ``angled`` (``(N,)`` bool) whose tilt is measured, the ``doubling_*`` and ``pair_*``
    keys measured on the rectified wall (:func:`.rectified.best_rectified_region_keys`) replace those of
    ``out``; ``rect_tilt_x`` / ``rect_tilt_y`` (the tilt in frame units, ``G = g·side``; NaN where not
    rectified) say where. Elsewhere ``out``'s keys unchanged. ``refined``: the tilt candidates already
    corrected on the walls they rectify (``N×2×2``, :func:`_rectified_wall`'s, on a superset of these
    images; None: corrected here). ``basis``: the frame's ``real_basis`` when known."""
    h, w = x.shape[-2:]
    t1, t2 = real_basis(per.lattice.f, per.lattice.g, side) if basis is None else basis
    gs = _wall_tilt(lp, wst, ~torch.isfinite(t2).all(1), angled, h, w)  # N×2×2, frame units
    g = gs[:, 0]
    sel = angled & torch.isfinite(g).all(1) & (g.abs() > 0).any(1)
    cs = torch.nan_to_num(cscale, nan=1.0)[:, None]
    names = (*region_key_names("doubling"), *region_key_names("pair"), "rect_tilt_y", "rect_tilt_x")

    def fn(i: torch.Tensor | None) -> dict[str, torch.Tensor]:
        r = slice(None) if i is None else i
        # (each candidate corrected once on the wall it rectifies: rectified.refine_tilts, docs/tiling.md §6)
        trend = torch.stack([wst["persp_trend_y"][r], wst["persp_trend_x"][r]], dim=1)
        gr = (refined[r] if refined is not None
              else _refined_tilts(x[r], vf[r], gs[r], trend, ~torch.isfinite(t2[r]).all(1), p))
        return best_rectified_region_keys(x[r], vf[r], gr, t1=t1[r] * cs[r], t2=t2[r] * cs[r],
                                          window_frac=p.local_window_frac, overlap=p.local_overlap,
                                          max_fft_px=p.local_max_fft_px,
                                          max_downsample=p.local_max_downsample, fronto_pair=RECT_PAIR_FRONTO)

    new = on_rows(sel, fn, fills=dict.fromkeys(names, float("nan")), like=x)
    res: dict[str, torch.Tensor] = {}
    nan = torch.full_like(g[:, 0], float("nan"))
    for pre in ("doubling", "pair"):
        # each map keeps the geometry under which its windows repeat the wall better (a wrong tilt, or a
        # trend misread, loses the lattice: its plain correlation drops)
        pc_new, pc_old = new[f"{pre}_plain_corr"], out[f"{pre}_plain_corr"]
        # (within RECT_CORR_TOL: resampling blurs and the rectified frame's margins cost a little)
        use = sel & torch.isfinite(pc_new) & ~(pc_new < pc_old - RECT_CORR_TOL)
        res.update({k: torch.where(use, new[k], out[k]) for k in region_key_names(pre)})
        res[f"rect_{pre}"] = use.to(x.dtype)
    res["rect_tilt_y"] = torch.where(sel, new["rect_tilt_y"], nan)
    res["rect_tilt_x"] = torch.where(sel, new["rect_tilt_x"], nan)
    return res


def _region_room(lattice_t1_px: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(N,)`` bool: the images whose 2×-period region maps (``doubling_*``, ``pair_*``) are computed; NaN
    elsewhere. Not where the frame holds fewer than ``MIN_REGION_PERIODS`` of the wall's shortest lattice
    vector (``lattice_t1_px``, ``(N,)``) along its shorter side, nor without a lattice (no period, so no
    "twice the period": white noise and an untrained network's outputs read a doubled zone in the spectral
    map): the maps' windows (a quarter and an eighth of the side) then hold about one period, and clean tile
    crops of 64-128 px with four periods across read zones and bands."""
    return (min(height, width) / lattice_t1_px) >= MIN_REGION_PERIODS  # NaN lattice: False


def _no_lattice_to_double(t1_px: torch.Tensor, t2_px: torch.Tensor) -> torch.Tensor:
    """``(N,)`` bool: the wall's longest lattice vector (``t1_px``, ``t2_px``: ``lattice_t1_px`` /
    ``lattice_t2_px``, ``(N,)``; NaN ignored) is under ``STRIP_MIN_LATTICE_PX``: no wall lattice of real size
    to double (a fine mosaic folded by subsampling), where neither region rule fires
    (``tiling_rules._doubled_region`` / ``_pair_region``); False without a lattice."""
    return torch.fmax(t1_px, t2_px) < STRIP_MIN_LATTICE_PX  # NaN: False


def _screened_region_keys(out: Mapping[str, torch.Tensor], *, screened_d: torch.Tensor,
                          screened_p: torch.Tensor) -> dict[str, torch.Tensor]:
    """The region keys of the images whose maps the tiering skipped (``screened_d``: the doubling map,
    ``screened_p``: the pair test and with it the rectified maps; ``(N,)`` bool each), NaN ("not measured"),
    and ``region_screened``: 1 where either was skipped, 0 elsewhere. The rules read a screened image's maps
    as read (``tiling_rules``: the older band and zone maps do not speak), as they would have been.
    (On a weak wall the rectified doubling keys may have replaced the skipped ones: NaN as well.)"""
    res: dict[str, torch.Tensor] = {}
    nan = out["pair_plain_corr"].new_full((), float("nan"))  # (one 0-d NaN for every key: no full_like each)
    for pre, sc in (("doubling", screened_d), ("pair", screened_p)):
        for k in (*region_key_names(pre), f"rect_{pre}"):
            res[k] = torch.where(sc, nan, out[k])
    for k in ("rect_tilt_x", "rect_tilt_y"):
        res[k] = torch.where(screened_p, nan, out[k])
    res["region_screened"] = (screened_d | screened_p).to(out["pair_plain_corr"].dtype)
    return res


def _mask_seam_keys(x: torch.Tensor, vf: torch.Tensor, out: dict[str, torch.Tensor], *,
                    masked: bool) -> dict[str, torch.Tensor]:
    """``mask_seam_*`` (:func:`..functional.seams.mask_seam_parts`), NaN without a mask. The reference band
    moves one row spacing deeper on a periodic wall (tiles laid from the contour): the wall's reported period
    (``fundamental_period_px``: the centre's on an angled wall, the map's where a zone pulled the frame's
    lattice to 2×) where ``periodicity_score`` (the frame's or the central half's) is confident. Eighth
    sitting: the frame's lattice alone scored 0.002 on an angled tiled wall (no shift, a false seam) and read
    a penny wall with a zone at 52.9 px for 26.4 (beyond the shift's reach)."""
    b = x.shape[0]
    if not masked:
        return {k: torch.full((b,), float("nan"), device=x.device, dtype=x.dtype)
                for k in ("mask_seam_score", "mask_seam_t", "mask_seam_agree")}
    per = out["fundamental_period_px"]
    rows = torch.where(out["periodicity_score"] >= APERIODIC_SCORE, per, torch.full_like(per, float("nan")))
    return mask_seam_parts(x, vf, period_px=rows)


def tiling_metrics(pred: torch.Tensor, *, mask: torch.Tensor | None = None, ref: torch.Tensor | None = None,
                   params: TilingParams | None = None, maps: bool = True) -> dict[str, torch.Tensor]:
    """Every tiling metric of a batch, on ``pred``'s device, with no host synchronisation.

    Args:
        pred: ``B×C×H×W`` in [0, 1] (NaN/Inf pixels are dropped and counted in ``nonfinite_frac``).
        mask: optional ``B×1×H×W`` / ``1×H×W`` / ``H×W`` (> 0.5 = wall): only wall pixels count.
        ref: optional reference texture ``C×h×w`` / ``1×C×h×w`` / ``h×w`` (any size): f* becomes its
            fundamental expressed in ``pred``'s bins.
        params: :class:`TilingParams` (defaults when None).
        maps: also return the figure maps of sample 0 (keys ``"map/..."``).

    Returns:
        ``{key: (B,) tensor}`` for every metric (see ``docs/tiling.md``), plus ``"map/..."`` tensors.
    """
    p = params or TilingParams()
    pred = check_image_batch(pred, name="pred")
    b, c, h, w = pred.shape
    gray = luminance(pred)
    x = torch.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
    finite = x == gray  # False exactly at NaN / ±Inf: one comparison (isfinite makes several passes on CPU)
    valid = finite
    if mask is not None:
        if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and tuple(mask.shape) == (b, 1, h, w):
            m = mask  # already normalised (StepInputs): no re-check, which would synchronise with the device
        else:
            m = normalize_mask(mask, batch=b, height=h, width=w)
        valid = valid & m.to(pred.device)[:, 0]
    vf = valid.to(gray.dtype)
    valid_frac = vf.mean(dim=(-2, -1))
    out: dict[str, torch.Tensor] = {
        "nonfinite_frac": ((1.0 - valid_frac) if mask is None
                           else 1.0 - finite.to(gray.dtype).mean(dim=(-2, -1))),
        "valid_px_frac": valid_frac,
    }
    # x is finite and `valid` excludes what was not (clean=True skips the checks). Without a mask the window
    # is exactly Hann (non-finite pixels get weight 0, untapered) and the cheaper unmasked paths are taken.
    vmask = None if mask is None else valid
    # the mask's tapered weights: the global spectrum's window and the strips' and windows' weights below
    apod = None if mask is None else apodized_weights(valid, taper_px=p.taper_px)
    # The lattice picks of the frame, the reference, the central half and the window vote's windows in one
    # call (lattice.pick_lattices: each image's pick as its own; ~1 100 torch calls each on the CPU)
    # Every pixel valid (no mask, all finite; read on the CPU only, where functional.order.host_ok): the
    # frame's and the vote windows' weights are the plain Hann window, one expanded view for all images
    # (the same values; detrend's moments and the window's own spectrum taken once, no weight pass)
    all_valid = mask is None and order.host_ok(vf) and bool(vf.amin() == 1)
    f_in = lattice_input(x, valid=None if all_valid else vf, min_period_px=p.min_period_px,
                         max_period_frac=p.max_period_frac,
                         taper_px=p.taper_px, detrend_order=p.detrend_order, clean=True,
                         taper=mask is not None, apodized=apod)
    r_in = None
    if ref is not None:
        r = normalize_ref(ref, channels=c).to(device=pred.device, dtype=pred.dtype)
        # Non-finite pixels of the reference are dropped and their holes tapered (prepare() does both).
        r_in = lattice_input(luminance(r), taper=True, min_period_px=p.min_period_px, max_period_frac=0.34,
                             detrend_order=p.detrend_order)
    c_in = _centre_crop_input(x, vf if mask is not None else None, p)
    w_in = _window_input(x, vf, p, masked=mask is not None, all_valid=all_valid)
    ins = [i for i in (f_in, r_in, c_in, w_in[0]) if i is not None]
    lats = iter(pick_lattices([i.peaks for i in ins], min_radius=[i.r_min for i in ins]))
    f_lat = next(lats)
    r_lat = None if r_in is None else next(lats)
    c_lat = next(lats)
    w_lat = None if w_in[0] is None else next(lats)
    per = lattice_periodicity(f_in, f_lat, min_period_px=p.min_period_px)
    s = per.spec.side
    basis = real_basis(per.lattice.f, per.lattice.g, s)  # the frame's t1, t2 (read by five helpers below)
    out["fft_side_px"] = torch.full((b,), float(s), device=pred.device, dtype=gray.dtype)
    out["fundamental_radius_bin"] = per.radius_bin
    out["fundamental_period_px"] = per.period_px
    out["acf_first_peak_period_px"] = per.acf_period_px
    out["acf_first_peak_radius_bin"] = s / per.acf_period_px
    out["acf_peak_rho"] = per.acf_rho
    out["fundamental_peak_ratio"] = per.peak_ratio
    out["periodicity_score"] = per.score

    nan_b = torch.full((b,), float("nan"), device=pred.device, dtype=gray.dtype)
    fstar = per.radius_bin
    if ref is not None:
        assert r_in is not None and r_lat is not None
        rper = lattice_periodicity(r_in, r_lat, min_period_px=p.min_period_px)
        ref_period = rper.period_px.expand(b)
        out["ref_period_px"] = ref_period
        out["ref_radius_bin"] = s / ref_period
        out["ref_periodicity_score"] = rper.score.expand(b)
        out["period_ratio_to_ref"] = per.period_px / ref_period
        out.update({k: v.expand(b) for k, v in _lattice_keys(rper, rper.spec.side, prefix="ref_").items()})
        out["ref_spectrum_distance"] = spectrum_distance(per.spec, rper.spec, height=h, width=w,
                                                         min_period_px=p.min_period_px)
        out["ref_detail_deficit_db"] = detail_deficit_db(per.spec, rper.spec, pixels=vf.sum(dim=(-2, -1)))
        out.update({k: v.expand(b) for k, v in ref_own_ratios(rper, p).items()})
        out.update(peak_ratios_at_ref(per.spec, out["ref_radius_bin"], p))
        out.update(ref_lattice_acf_keys(per, rper, basis=basis))
        out["ref_acf_period_px"] = rper.acf_period_px.expand(b)
        # the stride's fold, docs §6: on the frame and on its central half (an angled wall's fold drifts)
        for sfx, sp, wt in (("", per.spec, per.weights), ("_centre", c_in.spec, c_in.wts)):
            fold = ref_fold_gain(sp, rper.spec, out_pixels=wt.square().sum(dim=(-2, -1)),
                                 ref_pixels=rper.weights.square().sum())
            out[f"alias_ref_fold_gain{sfx}"], out[f"alias_ref_fold_power{sfx}"] = fold.gain, fold.power
        fstar = s / ref_period
    else:
        out["ref_period_px"] = nan_b
        for k in ("alias_ref_fold_gain", "alias_ref_fold_power", "alias_ref_fold_gain_centre",
                  "alias_ref_fold_power_centre"):
            out[k] = nan_b
        out["ref_spectrum_distance"] = nan_b
        out["ref_detail_deficit_db"] = nan_b
        out.update({k: nan_b for k in REF_OWN_KEYS})
        out["ref_radius_bin"] = nan_b
        out["ref_periodicity_score"] = nan_b
        out["period_ratio_to_ref"] = nan_b
    out["fstar_radius_bin"] = fstar
    out["fstar_period_px"] = s / fstar
    out.update(energy_ratios(per.spec, fstar, min_bins=p.ring_min_bins, rel_width=p.ring_rel_width,
                             axis_half_width=p.axis_half_width_bins))

    # Stride grids by demodulation (stride 2: parity gains) and grid-line jumps (strides >= 4); both work
    # at any texture period (trackdiag.functional.grid).
    strides = sorted({int(k) for k in p.checkerboard_strides})
    pg = parity_gain(x, vf)
    out.update(pg)
    out.update(grid_excess(x, vf, strides=tuple(k for k in strides if k >= 4)))
    out["checkerboard_score"] = pg["checkerboard_s2"]
    out["checkerboard_s8"] = out.get("grid_s8", torch.full((b,), float("nan"), device=pred.device,
                                                           dtype=gray.dtype))
    out.update(_lattice_keys(per, s, prefix="", basis=basis))
    lat = per.lattice
    out["alias_fine_peak_frac"], out["alias_fold_peak_frac"] = fine_peak_fracs(
        per.spec, f=lat.f, g=lat.g, lattice_ok=lat.found & (lat.radius <= s / 6.0))
    # ... and off the lattice of the frame's two strongest peaks too (where the wall's lattice was given:
    # a misread lattice leaves the wall's own fine harmonics off it)
    lat_ok = lat.found & (lat.radius <= s / 6.0)
    own_fold = fine_peak_fracs(per.spec, f=lat.f, g=lat.g, lattice_ok=lat_ok, own_lattice=True)[1]
    out["alias_own_fold_frac"] = torch.where(lat_ok, own_fold, torch.full_like(own_fold, float("nan")))
    # the same on 64-px tiles (an angled wall's folded peaks drift across the frame and smear globally)
    out["alias_win_fine_frac"], out["alias_win_fold_frac"] = window_fold_fracs(
        x, vf, f=lat.f, g=lat.g, lattice_ok=lat.found & (lat.radius <= s / 6.0), side=s)
    # Where: the frame's edge strips and the seam along the mask contour.
    # The edge strips use every finite pixel: a stripe along the frame is seen on the floor or ceiling too.
    out.update(edge_scores(x, finite.to(gray.dtype)))
    # (the mask seam: below, once the wall's period is final)

    nvalid = (valid_frac * float(h * w)).clamp_min(1.0)
    xv = x * vf
    mean = xv.sum(dim=(-2, -1)) / nvalid
    var = ((xv * x).sum(dim=(-2, -1)) / nvalid - mean.square()).clamp_min(0.0)
    u = xv - mean[:, None, None] * vf
    out.update(border_cross(u, axis_half_width=round(p.axis_half_width_bins)))

    dx1, dy1 = shift_mse(xv, valid, weights=vf)
    out["shift_mse_dx1"], out["shift_mse_dy1"] = dx1, dy1
    tiny = torch.finfo(gray.dtype).tiny
    out["shift_nmse_dx1"] = dx1 / (2 * var).clamp_min(tiny)
    out["shift_nmse_dy1"] = dy1 / (2 * var).clamp_min(tiny)
    rz = resize_metrics(x, vmask, per.signal, per.weights, per.spec, per.radius_bin, per.peak_index,
                        factor=p.resize_factor)
    out.update(rz)
    out["resize_nmse_downUp"] = rz["resize_mse_downUp"] / var.clamp_min(tiny)

    lp = local_period_map(x, vmask, clean=True, window_frac=p.local_window_frac, overlap=p.local_overlap,
                          max_fft_px=p.local_max_fft_px, max_downsample=p.local_max_downsample,
                          min_period_px=p.min_period_px, min_peak_ratio=p.local_min_peak_ratio,
                          rel_power=p.rel_power)
    bm = band_metrics(lp, doubled_range=(p.band_doubled_low, p.band_doubled_high),
                      frac_threshold=p.band_frac_threshold)
    out.update({k: v for k, v in bm.items() if not k.startswith("_")})
    ty, tx = period_trend(lp, height=h, width=w)
    out["local_period_trend_y"], out["local_period_trend_x"] = ty, tx
    # the region maps only on frames with room for a few lattice periods (NaN elsewhere)
    room = _region_room(out["lattice_t1_px"], h, w)
    # ... and only where a region rule can read them (tiering, docs/tiling.md §9; the doubling map below,
    # once periodicity_score is final): not without a wall lattice of real size to double
    fine = _no_lattice_to_double(out["lattice_t1_px"], out["lattice_t2_px"])
    # On a wall seen at an angle the global peak is smeared over the range of local periods: the period at
    # the frame centre comes from the local map (trend-corrected median) when the two agree within
    # CENTRE_AGREE, or when the global one is a multiple (>= CENTRE_MULTIPLE ×) of the map's.
    cen = centre_period(lp, ty, tx, height=h, width=w)
    gl = per.period_px
    # strips and windows: the mask edges tapered (a hard edge inside a strip would leak into its spectrum)
    sw = vf if apod is None else apod.to(gray.dtype)
    # perspective: the robust trend of a 3×3 window grid's scale; also on square transforms (persp_sq_*: the
    # perspective verdict's; bricks and planks no longer lock at shift 0; pairs a step of scale apart left
    # out; the other rules and maps keep the persp_* keys, on which they were calibrated), the windows
    # prepared once
    wst = window_scale_trend(x, sw, also_square="persp_sq", step_octaves=PERSP_STEP_OCTAVES,
                             step_margin=PERSP_STEP_MARGIN)
    out.update(wst)
    # ... and of its spectral centroid: the rules read it on aperiodic walls only (NaN on the others)
    out.update(_only_where(per.score < APERIODIC_SCORE,
                           ("centroid_trend_x", "centroid_trend_y", "aniso_trend_x", "aniso_trend_y"), x,
                           lambda i: centroid_scale_trend(x if i is None else x[i],
                                                          sw if i is None else sw[i])))
    # angled: the window grid's trend (the local map's where the grid has none: its windows at 2–4× the
    # period or in a zone at 2× make it fire on fronto-parallel walls, whose global lattice is right)
    wt = torch.fmax(wst["persp_trend_x"].abs(), wst["persp_trend_y"].abs())
    persp = torch.where(torch.isfinite(wt), wt >= PERSPECTIVE_TREND,
                        torch.fmax(ty.abs(), tx.abs()) >= PERSPECTIVE_TREND)
    hi_, lo_ = torch.fmax(gl, cen), torch.fmin(gl, cen)
    rc = hi_ / lo_
    use_c = persp & torch.isfinite(rc) & ((rc <= 1.0 + CENTRE_AGREE) | ((rc >= CENTRE_MULTIPLE) & (cen < gl)))
    # ... or where the frame's lattice scores like an aperiodic wall's (CENTRE_CROP_SCORE): only the map is
    use_c = use_c | (persp & torch.isfinite(cen) & (per.score < CENTRE_CROP_SCORE))
    # ... and better, the lattice of the frame's central half, where the period varies half as much; unless it
    # is 1.4–2.6 × the map's (a zone or band at twice the period over the centre: the map's median is not)
    cc, out["centre_periodicity_score"] = _centre_crop_finish(c_in, c_lat, p)
    # ... read once more on the wall rectified by its tilt, where the lattice does not smear over the crop's
    # range of periods: that reading where it repeats its lattice at least as well (the score of the image's
    # crop stays the wall's: periodicity_score)
    xr, vr, rsel, rtilts = _rectified_wall(x, vf, lp, wst, per, s, persp, p, basis=basis)
    on_r = lambda i: (xr, vr) if i is None else (xr[i], vr[i])
    rcc, rcs = on_rows(rsel, lambda i: _centre_crop_period(*on_r(i), p), fills=(float("nan"), float("nan")),
                       like=x)
    out["rect_crop_period_px"], out["rect_crop_periodicity_score"] = rcc, rcs
    # (and only where the rectified half has a lattice: CENTRE_CROP_SCORE)
    use_r = torch.isfinite(rcc) & (rcs >= out["centre_periodicity_score"]) & (rcs >= CENTRE_CROP_SCORE)
    cc_img, ccs_img = cc, out["centre_periodicity_score"]
    cc = torch.where(use_r, rcc, cc)
    ccs = torch.where(use_r, rcs, out["centre_periodicity_score"])
    # a lattice confident in the central half is a lattice: an angled wall's global peak smears over its
    # range of periods, a zone or band splits it (aperiodic walls score <= 0.02 there: docs/tiling.md)
    out["frame_periodicity_score"] = out["periodicity_score"]
    out["periodicity_score"] = torch.fmax(out["periodicity_score"], out["centre_periodicity_score"])
    # the spectral region map (doubling_*): not on a wall with hardly a lattice either (its rule needs
    # periodicity_score >= WEAK_SCORE); the pair test's strong regions need no score
    weak = out["periodicity_score"] < WEAK_SCORE
    room_d = room & ~fine & ~weak
    out.update(on_rows(room_d, lambda i: doubling_keys(
        x if i is None else x[i], vf if i is None else vf[i], trend_x=tx if i is None else tx[i],
        trend_y=ty if i is None else ty[i], window_frac=p.local_window_frac, overlap=p.local_overlap,
        max_fft_px=p.local_max_fft_px, max_downsample=p.local_max_downsample),
        fills=dict.fromkeys(region_key_names("doubling"), float("nan")), like=x))
    def centre_of(cc: torch.Tensor, ccs: torch.Tensor, *, halve: bool = False) -> torch.Tensor:
        q = cc / cen
        zone = torch.isfinite(q) & (q >= CENTRE_ZONE[0]) & (q <= CENTRE_ZONE[1])
        # (halve: where the crop reads up to CENTRE_HALF under twice the map's centre, the crop's half: the
        # crop's lattice is exact where the trend-moved map's median reads a few % long on an angled wall)
        zc = torch.where(halve & (0.5 * q >= 1.0 - CENTRE_HALF) & (0.5 * q < 1.0), 0.5 * cc, cen)
        # (not near the search floor, < 2 × min_period_px: an aliased wall's crop reads a folded 3-px
        # "period"; gating on the wall's periodicity_score instead would drop most angled walls, whose global
        # peak smears) (nor where the crop's lattice scores like an aperiodic wall's: CENTRE_CROP_SCORE)
        crop_ok = torch.isfinite(cc) & (cc >= 2.0 * p.min_period_px) & (ccs >= CENTRE_CROP_SCORE)
        return torch.where(crop_ok, torch.where(zone, zc, cc), torch.where(use_c, cen, gl))

    centre = centre_of(cc, ccs, halve=True)
    # (the pair test and the rectified region maps keep the image crop's centre correction, as their rules
    # were calibrated: v8 seed 21, the rectified one moved two clean walls' pair lattices and named bands)
    centre_img = centre_of(cc_img, ccs_img)
    out["centre_period_px"] = cen
    out["centre_crop_period_px"] = cc
    out["frame_period_px"] = gl
    front = _frame_doubled_period(gl, cen, cc, window_px=lp.window_px, crop_score=ccs)
    out["fundamental_period_px"] = torch.where(persp, centre, torch.where(torch.isfinite(front), front, gl))
    # ... unless most of the wall's local windows read a divisor of it (a zone or band at 2× over the centre
    # pulled the frame, the crop and the map alike): the windows' lattice, at the centre
    lw, lok, vside = _window_finish(
        w_in, w_lat, torch.where(torch.isfinite(wst["persp_trend_x"]), wst["persp_trend_x"], tx),
        torch.where(torch.isfinite(wst["persp_trend_y"]), wst["persp_trend_y"], ty))
    # (on a wall whose rectified central half was read, its windows too: there at the centre's scale, with no
    # trend to undo; the trend-moved windows of the image read a few % apart, and outvoted a right crop)
    lwr, okr = on_rows(use_r, lambda i: _rectified_windows(*on_r(i), p), fills=(float("nan"), 0.0), like=x,
                       shape=(lw.shape[1],))
    lw = torch.where(use_r[:, None], lwr, lw)
    lok = torch.where(use_r[:, None], okr > 0.5, lok)
    vote = _window_vote_period(lw, lok, vside, out["fundamental_period_px"], crop=cc,
                               crop_score=ccs, lattice_t1=out["lattice_t1_px"],
                               min_period_px=p.min_period_px)
    out["window_vote_period_px"] = vote
    # ... and of the centre's readings (the reported one, the central half's, the map's, the frame's) the one
    # that most windows confirm (every wall since the ninth sitting: a band at 2× also pulls a
    # fronto-parallel frame's hex lattice 10 % off, or the crop's, while the map and the windows read it)
    confirmed = _window_confirmed(lw, lok, out["fundamental_period_px"],
                                  torch.stack([out["fundamental_period_px"], cc, cen, gl], dim=1))
    out["fundamental_period_px"] = torch.where(torch.isfinite(confirmed), confirmed,
                                               out["fundamental_period_px"])
    out["fundamental_period_px"] = torch.where(torch.isfinite(vote), vote, out["fundamental_period_px"])
    # ... and the base lattice the windows read where a band or zone at 2× or a shell reading moved every
    # other reading: on a wall whose rectified windows were read or a fronto-parallel one (each window at the
    # centre's scale); on another angled wall (windows moved along its trend) only a majority far off towards
    # a coarser period (docs/tiling.md §6; thirteenth sitting: before, rectified walls only)
    rbase = _rectified_base(lw, lok, vside, out["fundamental_period_px"],
                            torch.stack([out["fundamental_period_px"], cc, cen, gl], dim=1),
                            lattice_t1=out["lattice_t1_px"], min_period_px=p.min_period_px,
                            exact=use_r | ~persp, fine_rows=use_r)
    out["fundamental_period_px"] = torch.where(torch.isfinite(rbase), rbase, out["fundamental_period_px"])
    out["fundamental_radius_bin"] = s / out["fundamental_period_px"]
    out.update(_mask_seam_keys(x, vf, out, masked=mask is not None))
    if ref is not None:
        # the wall's period (at the centre on an angled wall) against the reference's, and where it departs
        out["period_ratio_to_ref"] = out["fundamental_period_px"] / out["ref_period_px"]
        out.update(ref_departure(lp, out["ref_period_px"]))
        out["ref_local_max_period_px"] = torch.full_like(out["ref_period_px"], lp.window_px / REF_MAP_CYCLES)
        _, _, lds = local_geometry(h, w, window_frac=p.local_window_frac, overlap=p.local_overlap,
                                   max_fft_px=p.local_max_fft_px, max_downsample=p.local_max_downsample)
        out["ref_local_min_period_px"] = torch.full_like(out["ref_period_px"], local_min_period(
            lds, min_period_px=p.min_period_px))
    else:
        out.update({k: nan_b for k in (*REF_AREA_KEYS, "ref_local_max_period_px", "ref_local_min_period_px")})
    # (the limit: the wall's densest rows, f*; a staggered lattice's x repeat is longer than its pitch)
    out.update(strip_band_keys(x, sw, period_x_px=per.period_px, period_y_px=per.period_px))
    # (the pair test's lattice: the angled wall's centre correction only, as calibrated by the region rules)
    cscale = torch.where(persp, centre_img, gl) / gl
    room_p = room & ~fine
    out.update(on_rows(room_p, lambda i: _pair_keys(x, vf, per, s, wst, tx, ty, cscale, p, rows=i,
                                                    basis=basis),
                       fills=dict.fromkeys(region_key_names("pair"), float("nan")), like=x))
    # a wall seen at an angle: both region maps again on the wall rectified by its tilt (rectified.py)
    out.update(_rectified_keys(x, vf, lp, wst, per, s, cscale, persp & room_p, out, p, refined=rtilts,
                               basis=basis))
    out.update(_screened_region_keys(out, screened_d=room & ~room_d, screened_p=room & ~room_p))
    out.update(scale_trend(x, sw))

    if maps:
        side_max = p.map_max_side
        prof = radial_profile(per.spec.power[:1])[0]
        radii = torch.arange(prof.shape[0], device=pred.device, dtype=gray.dtype)
        out[MAP_PREFIX + "radial_profile"] = torch.stack([radii, prof])
        out[MAP_PREFIX + "radial_marks"] = torch.stack(list(RadialMarks(
            fstar_bin=fstar[0], fundamental_bin=per.radius_bin[0], ref_bin=out["ref_radius_bin"][0],
            acf_bin=s / per.acf_period_px[0], side_px=torch.tensor(float(s), device=pred.device))))[None]
        out[MAP_PREFIX + "fft_log_hann"] = _fft_log_map(per.signal[0], s, side_max)
        out[MAP_PREFIX + "fft_log_nohann"] = _fft_log_map(u[0], s, side_max)
        max_lag = max(2, min(h, w) // 4)
        acf2 = autocorrelation_map(per.signal[:1], per.weights[:1], max_lag=max_lag)[0]
        out[MAP_PREFIX + "acf"] = _shrink(acf2, side_max)
        out[MAP_PREFIX + "acf_profile"] = torch.stack([per.acf_lags, per.acf_profile[0]])
        out[MAP_PREFIX + "acf_marks"] = torch.stack(list(AcfMarks(
            acf_period_px=per.acf_period_px[0], fundamental_period_px=per.period_px[0],
            ref_period_px=out["ref_period_px"][0],
            max_lag=torch.tensor(float(max_lag), device=pred.device))))[None]
        out[MAP_PREFIX + "local_period_px"] = lp.period_px[0]
        out[MAP_PREFIX + "local_doubled"] = bm["_doubled"][0]
        out[MAP_PREFIX + "band_row_frac"] = bm["_row_frac"][:1]
        out[MAP_PREFIX + "band_col_frac"] = bm["_col_frac"][:1]
        out[MAP_PREFIX + "local_geometry"] = torch.tensor([LocalGeometry(
            window_px=float(lp.window_px), stride_px=float(lp.stride_px), height=float(h), width=float(w),
            band_frac_threshold=p.band_frac_threshold)], device=pred.device)
        out[MAP_PREFIX + "local_base"] = bm["band_base_period_px"][:1][None]
    return out
