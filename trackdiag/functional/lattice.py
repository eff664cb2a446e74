"""The texture's 2-D lattice from prominent spectral peaks, confirmed in the autocorrelation.

Pure batched functions on spectra of ``N×H×W`` images (:class:`~trackdiag.functional.spectral.Spectrum`,
square
``S×S`` grid, rfft2 layout). No Python loop over images or pixels.

1. **Whitening** (:func:`prominence_map`): each coefficient's log power minus the mean log power of its
   ``(2R+1)²`` neighbourhood (its own 3×3 left out). Smooth spectral envelopes — shading, per-tile colour
   variation (a broad low-frequency hump), grain, JPEG — whiten to about 1; a lattice line stands out by
   10²–10⁵. The result is the *prominence* (a ratio).
2. **Peaks** (:func:`prominent_peaks`): local maxima of the prominence in the searched band, the ``k`` most
   prominent, each with its raw power and sub-bin frequency.
3. **Lattice** (:func:`pick_lattice`): among the peaks prominent enough (``min_prominence``), the strongest
   (raw power) is a lattice vector ``k₁``; it is reduced to the fundamental of its own direction (a prominent
   peak at ``k₁/m`` with ≥ ``rel_power`` of its power: thin grout lines have slowly decaying harmonics) and
   to a shorter pair (two prominent peaks ``a ± b = k₁`` each with ≥ ``rel_power`` of the power: the
   diagonal of a square motif). The result ``f`` is the fundamental spectral peak f*: its period
   ``S/|f|`` is the spacing of the lattice's densest rows (tile pitch, brick course, hex row, plank width,
   wallpaper repeat). The second basis vector is the shortest prominent peak not collinear with ``f``
   (none on a 1-D texture such as planks).
4. **Real-space basis** (:func:`real_basis`): ``t₁, t₂`` with ``tᵢ·bⱼ = δᵢⱼ`` (cycles/px), Gauss-reduced,
   and the periods along x and y (:func:`axis_periods`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from .order import running_max
from .spectral import Spectrum, _mirror_index

__all__ = ["Lattice", "PromPeaks", "axis_periods", "pick_lattice", "pick_lattices", "prominence_map",
           "prominent_peaks", "real_basis"]


@functools.lru_cache(maxsize=32)
def _framed(side: int, rr: int, reach: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor,
                                                                           torch.Tensor]:
    """Flat storage indices of the crop ``|ky| ≤ rr, 0 ≤ kx ≤ rr`` framed by ``reach`` bins (Hermitian
    twins beyond kx < 0 or > S/2, ky wraps), and the crop's signed ``ky`` and ``kx`` (long)."""
    c = side // 2 + 1
    y0, y1 = -min(rr, (side - 1) // 2), min(rr, side // 2)
    ky = torch.arange(y0 - reach, y1 + reach + 1, device=device)
    kx = torch.arange(-reach, min(rr, c - 1) + reach + 1, device=device)
    gy, gx = _mirror_index(ky[:, None].expand(-1, kx.numel()), kx[None, :].expand(ky.numel(), -1), side)
    return (gy * c + gx).flatten(), ky[reach: ky.numel() - reach], kx[reach: kx.numel() - reach]


def _box_sum(x: torch.Tensor, k: int) -> torch.Tensor:
    """Separable ``k×k`` box sum without padding: ``N×H×W`` → ``N×(H−k+1)×(W−k+1)``."""
    c = x.cumsum(dim=-1)
    c = torch.cat([c[..., k - 1: k], c[..., k:] - c[..., : -k]], dim=-1)
    c = c.cumsum(dim=-2)
    return torch.cat([c[..., k - 1: k, :], c[..., k:, :] - c[..., : -k, :]], dim=-2)


def prominence_map(spec: Spectrum, *, rr: int, bg_reach: int = 6, frame: int = 0,
                   log_power: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log prominence and log power of the crop ``|ky| ≤ rr, 0 ≤ kx ≤ rr`` of ``spec`` (with ``frame``
    more bins on every side).

    ``log_prom = log P − mean(log P over the (2R+1)² neighbourhood without its central 3×3)``, with
    ``R = bg_reach``. Returns ``(log_prom, log_power, ky, kx)``: ``N×h×w`` (framed) and the crop's signed
    integer frequencies (unframed, long). ``log_power``: ``spectral.log_power(spec.power)`` when the
    caller has it already (the crop is then read from it: the same values, one pass fewer).
    """
    power = spec.power
    n, s, _c = power.shape
    reach = bg_reach + frame
    flat, cy, cx = _framed(s, rr, reach, power.device)
    fh, fw = cy.numel() + 2 * reach, cx.numel() + 2 * reach
    if log_power is None:
        lp = torch.log(power.flatten(1).index_select(1, flat).clamp_min(torch.finfo(power.dtype).tiny))
    else:
        lp = log_power.flatten(1).index_select(1, flat)
    lp = lp.reshape(n, fh, fw)
    k = 2 * bg_reach + 1
    big = _box_sum(lp, k)  # framed by `frame`
    small = _box_sum(lp[:, bg_reach - 1: fh - bg_reach + 1, bg_reach - 1: fw - bg_reach + 1], 3)
    bg = (big - small) / float(k * k - 9)
    inner = lp[:, bg_reach: fh - bg_reach, bg_reach: fw - bg_reach]
    return inner - bg, inner, cy, cx


class PromPeaks(NamedTuple):
    """The ``k`` most prominent spectral peaks of each image, most prominent first; every field ``N×K``.

    ``ky``, ``kx``: sub-bin signed frequencies (bins; kx ≥ 0, and ky > 0 on the kx = 0 column);
    ``radius``; ``power`` (raw); ``prominence`` (ratio to the neighbourhood's geometric mean); ``valid``;
    ``iy``, ``ix``: storage indices (rfft2 layout) of the peak coefficient.
    """

    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    power: torch.Tensor
    prominence: torch.Tensor
    valid: torch.Tensor
    iy: torch.Tensor
    ix: torch.Tensor


def prominent_peaks(spec: Spectrum, *, r_min: float, r_max: float, k: int = 32, bg_reach: int = 6,
                    reach: int = 2, min_prominence: float = 30.0, log_power: torch.Tensor | None = None
                    ) -> PromPeaks:
    """Local maxima (over ``(2·reach+1)²``) of the prominence (:func:`prominence_map`) with
    ``r_min ≤ radius ≤ r_max`` bins: the ``k`` strongest (raw power) of those at least ``min_prominence``
    prominent (the most prominent where fewer are), refined below one bin by a 3-point parabola through the
    log power along ky and kx. ``log_power``: see :func:`prominence_map`."""
    s = spec.side
    rr = min(s // 2, math.ceil(r_max) + 1)
    lprom, lpow, cy, cx = prominence_map(spec, rr=rr, bg_reach=bg_reach, frame=reach, log_power=log_power)
    n = lprom.shape[0]
    h, w = cy.numel(), cx.numel()
    k5 = 2 * reach + 1  # separable maximum: rows then columns (a 2-D pool is not separable on CPU)
    pooled = running_max(running_max(lprom, k5, -1), k5, -2)  # crop-sized
    centre = lprom[:, reach: reach + h, reach: reach + w]
    lc = lpow[:, reach: reach + h, reach: reach + w]
    radius = torch.sqrt((cy[:, None].square() + cx[None, :].square()).to(lprom.dtype))
    band = (radius >= r_min) & (radius <= r_max) & ~((cx[None, :] == 0) & (cy[:, None] < 0))
    cand = (centre >= pooled) & band[None]
    lmin = math.log(min_prominence)
    rank = torch.where(centre >= lmin, lc + 1e4, centre)  # prominent ones first, by power
    score = torch.where(cand, rank, torch.full_like(centre, -1e30)).flatten(1)
    kk = min(k, score.shape[1])
    topr, j = score.topk(kk, dim=1)
    row, col = j // w, j % w
    top = torch.where(topr > -1e29, centre.flatten(1).gather(1, j), topr)
    ar = torch.arange(n, device=lprom.device)[:, None]

    def at(dy: int, dx: int) -> torch.Tensor:
        return lpow[ar, row + reach + dy, col + reach + dx]

    def off(lm: torch.Tensor, l0: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        den = lm - 2 * l0 + lq
        d = 0.5 * (lm - lq) / torch.where(den < 0, den, torch.full_like(den, -1.0))
        return torch.where(den < 0, d, torch.zeros_like(d)).clamp(-0.5, 0.5)

    l0 = at(0, 0)
    ky = cy[row].to(lprom.dtype) + off(at(-1, 0), l0, at(1, 0))
    kx = cx[col].to(lprom.dtype) + off(at(0, -1), l0, at(0, 1))
    valid = top > -1e29
    del lc
    return PromPeaks(ky, kx, torch.sqrt(ky.square() + kx.square()), torch.exp(l0),
                     torch.exp(top.clamp_max(80.0)), valid, cy[row] % s, cx[col])


class Lattice(NamedTuple):
    """The lattice of each image (every field ``(N,)`` unless noted; NaN where undefined).

    ``f``: ``N×2`` fundamental reciprocal vector (ky, kx) in bins (the densest rows' normal, length f*);
    ``g``: ``N×2`` second basis vector (NaN on 1-D textures); ``radius`` = ``|f|``; ``power`` and
    ``prominence`` of f's peak; ``found``: a prominent peak exists; ``best``: ``(N,)`` long index of f in
    the peaks; ``n_prominent``: how many peaks pass ``min_prominence``.
    """

    f: torch.Tensor
    g: torch.Tensor
    radius: torch.Tensor
    power: torch.Tensor
    prominence: torch.Tensor
    found: torch.Tensor
    best: torch.Tensor
    n_prominent: torch.Tensor


def _lowest_divisor(peaks: PromPeaks, k: torch.Tensor, ok: torch.Tensor, best: torch.Tensor,
                    best_r: torch.Tensor, ms: tuple[int, ...], tol_bins: float, tol_rel: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The divisors ``k/m`` (``k``: ``N×2``; ``m`` in ``ms``, ascending) of a line: for each ``m`` the most
    powerful peak among ``ok[:, i]`` (``N×M×K``) within ``tol_bins + tol_rel·|k/m|`` of ``±k/m``; of those
    shorter than ``best_r``, the shortest replaces ``best`` (ties: the smallest ``m``, as a loop over ``m``
    that replaces only on a strictly shorter radius). Returns ``(best, best_r)``, ``(N,)`` each."""
    if not ms:
        return best, best_r
    n = k.shape[0]
    mt = torch.tensor([float(m) for m in ms], device=k.device, dtype=k.dtype)
    target = k[:, None, :] / mt[None, :, None]  # N×M×2
    ty, tx = target[..., :1], target[..., 1:]
    tol = tol_bins + tol_rel * torch.sqrt(ty.square() + tx.square())
    d1 = torch.sqrt((peaks.ky[:, None] - ty).square() + (peaks.kx[:, None] - tx).square())
    d2 = torch.sqrt((peaks.ky[:, None] + ty).square() + (peaks.kx[:, None] + tx).square())
    near = ok & (torch.minimum(d1, d2) <= tol)  # N×M×K
    j = torch.where(near, peaks.power[:, None], torch.full_like(d1, -1.0)).argmax(dim=2)  # N×M
    inf = torch.full(j.shape, math.inf, device=k.device, dtype=k.dtype)
    r = torch.where(near.any(dim=2), peaks.radius.gather(1, j), inf)
    # the first minimum of [best_r, r_2, …] is what a loop replacing on r < best_r keeps
    i = torch.cat([best_r[:, None], r], dim=1).argmin(dim=1)
    ar = torch.arange(n, device=k.device)
    jj = torch.cat([best[:, None], j], dim=1)[ar, i]
    return jj, torch.cat([best_r[:, None], r], dim=1)[ar, i]


def _pair_geometry(peaks: PromPeaks, strong: torch.Tensor, weak: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`_reduce_pair` reads that does not depend on the line being reduced: the sums and
    differences ``a ± b`` of every pair of peaks (``N×2×1×K×K`` ky and kx) and which pairs may stand for a
    shorter basis (``N×K×K`` bool): not collinear, and both ``strong``, or both ``weak`` with the geometry of
    a square or hexagonal lattice (see :func:`_reduce_pair`)."""
    ay, ax = peaks.ky[:, :, None], peaks.kx[:, :, None]
    by, bx = peaks.ky[:, None, :], peaks.kx[:, None, :]
    ra, rb = peaks.radius[:, :, None], peaks.radius[:, None, :]
    sy = torch.stack([ay + by, ay - by], dim=1)[:, :, None]
    sx = torch.stack([ax + bx, ax - bx], dim=1)[:, :, None]
    same = (ra - rb).abs() <= 0.05 * ra
    cos = (ay * by + ax * bx) / (ra * rb).clamp_min(1e-9)
    # the square case only with a and b along the frame's axes (a wallpaper whose diagonal line is the
    # strongest); a brick bond with bricks twice as long as high has the same geometry at 45°
    axis_a = torch.minimum(ay.abs(), ax.abs()) <= 0.18 * ra
    axis_b = torch.minimum(by.abs(), bx.abs()) <= 0.18 * rb
    square = same & (cos.abs() <= 0.15) & axis_a & axis_b
    hexa = same & ((cos.abs() - 0.5).abs() <= 0.03)
    both = lambda m: m[:, :, None] & m[:, None, :]
    # a and b not collinear (|sin| > 0.3): collinear pairs are harmonic relations (the divisor search), and
    # the bumps of per-plank colour sum to a plank line by chance
    apart = (ay * bx - ax * by).abs() > 0.3 * ra * rb
    return sy, sx, apart & (both(strong) | (both(weak) & (square | hexa)))


def _reduce_pair(peaks: PromPeaks, best: torch.Tensor, best_r: torch.Tensor,
                 geometry: tuple[torch.Tensor, torch.Tensor, torch.Tensor], tol_bins: float, tol_rel: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``best`` by a shorter peak ``a`` when ``a ± b = best`` for another peak ``b``, both at most
    0.85 × its radius: both ``strong``; or both ``weak`` with the geometry of a square (``a ⊥ b``,
    ``|a| = |b|``) or hexagonal lattice (``|a| = |b| = |a − b|``). A running bond's head-joint pair sums
    to the bed-joint line too, but at 62–75° and with little power: it is not taken. ``geometry``:
    :func:`_pair_geometry` of the peaks with ``strong`` and ``weak`` (the same for every ``best``)."""
    n, kk = peaks.power.shape
    ar = torch.arange(n, device=peaks.power.device)
    kb = torch.stack([peaks.ky[ar, best], peaks.kx[ar, best]], dim=1)
    sy, sx, allowed = geometry
    short = peaks.radius <= 0.85 * best_r[:, None]
    tol = (tol_bins + tol_rel * best_r)[:, None, None]
    # a ± b against ±best, the four sign choices at once (N×2×2×K×K: sum/difference, sign of best)
    ky_ = torch.stack([kb[:, 0], -kb[:, 0]], dim=1)[:, None, :, None, None]
    kx_ = torch.stack([kb[:, 1], -kb[:, 1]], dim=1)[:, None, :, None, None]
    d = torch.sqrt((sy - ky_).square() + (sx - kx_).square())
    hit = (d <= tol[:, None, None]).flatten(1, 2).any(dim=1)
    hit &= short[:, :, None] & short[:, None, :] & allowed
    has = hit.flatten(1).any(dim=1)
    pj = torch.where(hit.any(dim=2), peaks.power, torch.full_like(peaks.power, -1.0)).argmax(dim=1)
    return torch.where(has, pj, best), torch.where(has, peaks.radius[ar, pj], best_r)


def _centred_square(peaks: PromPeaks, best: torch.Tensor, fr: torch.Tensor, f: torch.Tensor, ok: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A centred square lattice seen along its axes (a wallpaper motif with a second motif at the cell
    centre): ``f`` runs at 45° (± 8°) to the axes and a prominent peak ``g`` of the same length (± 5 %)
    stands perpendicular to it. The wall's repeat along its axes is then ``2/|f ± g|``-periodic: the
    returned fundamental is the axis-aligned ``(f ± g)/2`` (a line the motif need not show), length
    ``|f|/√2``. Returns ``(radius, f)``."""
    ar = torch.arange(f.shape[0], device=f.device)
    ang = torch.rad2deg(torch.atan2(f[:, 0].abs(), f[:, 1].abs()))
    diag = (ang - 45.0).abs() <= 8.0
    cos = (peaks.ky * f[:, :1] + peaks.kx * f[:, 1:]) / (peaks.radius * fr[:, None]).clamp_min(1e-9)
    perp = ok & (cos.abs() <= 0.15) & ((peaks.radius - fr[:, None]).abs() <= 0.05 * fr[:, None])
    jg = torch.where(perp, peaks.power, torch.full_like(peaks.power, -1.0)).argmax(dim=1)
    g = torch.stack([peaks.ky[ar, jg], peaks.kx[ar, jg]], dim=1)
    a, b = (f + g) / 2, (f - g) / 2
    a_axis = torch.minimum(a[:, 0].abs(), a[:, 1].abs()) <= torch.minimum(b[:, 0].abs(), b[:, 1].abs())
    h = torch.where(a_axis[:, None], a, b)
    use = diag & perp.any(dim=1)
    hr = torch.sqrt(h.square().sum(dim=1))
    return torch.where(use, hr, fr), torch.where(use[:, None], h, f)


def _pair_support(peaks: PromPeaks, cand: torch.Tensor, ok: torch.Tensor, tol_bins: float, tol_rel: float,
                  *, need: torch.Tensor | None = None) -> torch.Tensor:
    """``N×K`` bool: peak ``a`` (among ``cand``) has a partner ``b`` (among ``cand``, not ``±a``) with
    ``a ± b`` within tolerance of a longer peak ``c`` among ``ok``. ``need`` (``N×K`` bool, optional): only
    these peaks ``a`` are asked (False elsewhere); on the CPU only they are computed (an ``N×K×K×K`` test
    otherwise: most of ``pick_lattice`` on many small windows), with the same element-wise arithmetic."""
    if need is not None and need.device.type == "cpu":
        ni, ai = need.nonzero().unbind(1)
        out = torch.zeros_like(need)
        if ni.numel():
            out[ni, ai] = _pair_support_at(peaks, cand, ok, tol_bins, tol_rel, ni, ai)
        return out
    n, kk = peaks.ky.shape
    ar = torch.arange(kk, device=peaks.ky.device)
    ni = torch.arange(n, device=ar.device).repeat_interleave(kk)
    hit = _pair_support_at(peaks, cand, ok, tol_bins, tol_rel, ni, ar.repeat(n)).reshape(n, kk)
    return hit if need is None else hit & need


def _pair_support_at(peaks: PromPeaks, cand: torch.Tensor, ok: torch.Tensor, tol_bins: float, tol_rel: float,
                     ni: torch.Tensor, ai: torch.Tensor) -> torch.Tensor:
    """:func:`_pair_support` of the peaks ``a = ai`` of the images ``ni`` (``(M,)`` long each): ``(M,)``."""
    ky, kx, rad = peaks.ky[ni], peaks.kx[ni], peaks.radius[ni]  # M×K: every b and c of a's image
    ay, ax = peaks.ky[ni, ai][:, None, None], peaks.kx[ni, ai][:, None, None]
    ra = peaks.radius[ni, ai][:, None, None]
    by, bx = ky[:, :, None], kx[:, :, None]
    cy, cx = ky[:, None, :], kx[:, None, :]
    rc = rad[:, None, :]
    tol = tol_bins + tol_rel * rc
    hit = torch.zeros(ni.shape[0], ky.shape[1], ky.shape[1], dtype=torch.bool, device=ky.device)
    for sy, sx in ((ay + by, ax + bx), (ay - by, ax - bx)):
        d = torch.minimum(torch.sqrt((sy - cy).square() + (sx - cx).square()),
                          torch.sqrt((sy + cy).square() + (sx + cx).square()))
        hit |= d <= tol
    longer = (ra < 0.9 * rc) & (rad[:, :, None] < 0.9 * rc)
    # not collinear (|sin| > 0.3): along one direction a sum of two peaks is a harmonic relation, and the
    # random bumps of per-plank colour sum to the planks' lines by chance
    sin = (ay * bx - ax * by).abs() / (ra * rad[:, :, None]).clamp_min(1e-9)
    longer &= sin > 0.3
    same = (torch.arange(ky.shape[1], device=ky.device)[None, :] == ai[:, None])[:, :, None]
    hit &= longer & ~same & cand[ni, ai][:, None, None] & cand[ni][:, :, None] & ok[ni][:, None, :]
    return hit.flatten(1).any(dim=1)


def _comb_near(peaks: PromPeaks, tol_bins: float, tol_rel: float, max_m: int = 6
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """What every :func:`_comb` of one set of peaks shares, for ``m = 2..max_m``: ``near`` ``N×M×K×K`` bool
    (peak ``j`` within the tolerance of ``±m·k_i``) and ``inside`` ``N×M×K`` 0/1 (``m·k_i`` within the
    searched band, up to the farthest valid peak)."""
    dt = peaks.radius.dtype
    r_top = torch.where(peaks.valid, peaks.radius, torch.zeros_like(peaks.radius)).amax(dim=1, keepdim=True)
    ms = list(range(2, max_m + 1))
    m_ = torch.tensor(ms, device=peaks.radius.device, dtype=dt)[None, :, None, None]
    rel = torch.tensor([tol_rel * m for m in ms], device=peaks.radius.device, dtype=dt)[None, :, None, None]
    ty, tx = m_ * peaks.ky[:, None, :, None], m_ * peaks.kx[:, None, :, None]
    py, px = peaks.ky[:, None, None, :], peaks.kx[:, None, None, :]
    d = torch.minimum(torch.sqrt((py - ty).square() + (px - tx).square()),
                      torch.sqrt((py + ty).square() + (px + tx).square()))
    tol = tol_bins + rel * peaks.radius[:, None, :, None]
    inside = (m_[..., 0] * peaks.radius[:, None, :] <= r_top[:, :, None]).to(dt)
    return d <= tol, inside


def _comb(peaks: PromPeaks, among: torch.Tensor, tol_bins: float, tol_rel: float, *, skip: int,
          max_m: int = 6, share: float = 0.6, near: tuple[torch.Tensor, torch.Tensor] | None = None
          ) -> torch.Tensor:
    """``N×K`` bool: of the multiples ``m·k`` (``m = 2..max_m``, ``m`` not a multiple of ``skip``) of each
    peak that lie within the searched band (up to the farthest valid peak), at least ``share`` are peaks among
    ``among`` (True when none lie in the band). For a divisor ``k₁/skip`` these are the lines it claims
    beyond ``k₁``'s own harmonics: a half-period bump sits on every second harmonic of the true lattice.
    ``near``: :func:`_comb_near` of the same peaks, tolerances and ``max_m`` (computed when None)."""
    return _combs(peaks, among, tol_bins, tol_rel, skips=(skip,), max_m=max_m, share=share, near=near)[:, 0]


def _combs(peaks: PromPeaks, among: torch.Tensor, tol_bins: float, tol_rel: float, *, skips: tuple[int, ...],
           max_m: int = 6, share: float = 0.6, near: tuple[torch.Tensor, torch.Tensor] | None = None
           ) -> torch.Tensor:
    """:func:`_comb` for several ``skips`` at once: ``N×S×K`` bool (the counts are small integers held
    exactly in floating point, so summing over a 0/1 selection of the multiples gives the same values)."""
    hit, inside = _comb_near(peaks, tol_bins, tol_rel, max_m) if near is None else near
    dt = inside.dtype
    ms = range(2, max_m + 1)
    sel = torch.tensor([[float(m % skip != 0) for m in ms] for skip in skips], device=inside.device,
                       dtype=dt)[None, :, :, None]  # 1×S×M×1
    found = inside * (hit & among[:, None, None, :]).any(dim=3).to(dt)  # N×M×K
    hits = (found[:, None] * sel).sum(dim=2)
    return hits >= share * (inside[:, None] * sel).sum(dim=2)


def _vector_comb(peaks: PromPeaks, v: torch.Tensor, among: torch.Tensor, tol_bins: float, tol_rel: float, *,
                 ms: tuple[int, ...], max_j: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """The comb of each ``v[:, i] = k₁/ms[i]`` (``N×M×2`` bins) among the peaks ``among`` (``N×K``): of the
    multiples ``j·v`` (``j = 2..max_j``, ``j`` prime to ``m``) up to the farthest valid peak, how many are
    peaks (``N×M`` float) and how many were tested. Along one direction the lattice points are the multiples
    of one primitive vector, so a peak at ``j·v`` with ``j`` prime to ``m`` shows that ``v`` itself is a
    lattice vector even where no peak stands at ``v`` (a fundamental on the low-frequency hump of per-plank
    colour). Every ``(m, j)`` pair is one slice of one tensor op (the counts are exact small integers)."""
    dev, dt = v.device, v.dtype
    pairs = [(i, j) for i, m in enumerate(ms) for j in range(2, max_j + 1)
             if j % m != 0 and math.gcd(j, m) == 1]
    mi = torch.tensor([i for i, _ in pairs], device=dev)
    jf = torch.tensor([float(j) for _, j in pairs], device=dev, dtype=dt)
    rel = torch.tensor([tol_rel * j for _, j in pairs], device=dev, dtype=dt)
    onehot = (mi[:, None] == torch.arange(len(ms), device=dev)[None, :]).to(dt)  # P×M
    r_top = torch.where(peaks.valid, peaks.radius, torch.zeros_like(peaks.radius)).amax(dim=1)
    rv = torch.sqrt(v.square().sum(dim=-1))[:, mi]  # N×P
    t = jf[None, :, None] * v[:, mi]  # N×P×2
    ty, tx = t[..., :1], t[..., 1:]
    d = torch.minimum(torch.sqrt((peaks.ky[:, None] - ty).square() + (peaks.kx[:, None] - tx).square()),
                      torch.sqrt((peaks.ky[:, None] + ty).square() + (peaks.kx[:, None] + tx).square()))
    tol = tol_bins + rel[None] * rv
    inside = (jf[None] * rv <= r_top[:, None]).to(dt)  # N×P
    found = inside * ((d <= tol[..., None]) & among[:, None]).any(dim=2).to(dt)
    return found @ onehot, inside @ onehot


def _finer_lattice(peaks: PromPeaks, f: torch.Tensor, g: torch.Tensor, sel: torch.Tensor, *,
                   min_radius: float | torch.Tensor, tol_bins: float, tol_rel: float, min_share: float = 0.9,
                   min_gain: int = 2, m_short: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """The coarsest lattice that explains the strong peaks, where the chosen one does not (``f``, ``g``:
    ``N×2`` bins, ``g`` NaN on 1-D textures; ``sel``: ``N×K`` the strong prominent peaks).

    A peak is explained by a lattice when it lies within ``tol_bins + tol_rel·|p|`` of a lattice point.
    When ``f``, ``g`` explain fewer than ``min_share`` of the selected peaks, the basis pairs are drawn
    from the ``m_short`` shortest of the selected peaks and their differences and sums (``≥ min_radius``);
    of the non-collinear pairs that explain ``≥ min_share`` of the peaks, the one spanning the coarsest
    lattice (largest cell) is taken if it explains ``≥ min_gain`` more peaks than ``f``, ``g``: a hexagonal
    mosaic whose low shells sit on the hump of per-tile colour shows only its √3, 2, √7, √12 … shells, and
    the strongest of them spans a lattice that misses the others. Returns the Gauss-reduced ``(f, g)``
    (``f`` the shortest vector: the densest rows' normal). ``min_radius``: a number or ``(N,)``."""
    n, kk = peaks.ky.shape
    dt = peaks.ky.dtype
    sel0 = sel
    p = torch.stack([peaks.ky, peaks.kx], dim=-1)  # N×K×2

    def explained(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        """``b1``, ``b2``: N×C×2 → N×C count of selected peaks on the lattice they span (0 if degenerate)."""
        det = b1[..., 0] * b2[..., 1] - b1[..., 1] * b2[..., 0]  # N×C
        ok_det = det.abs() > 1e-6
        det = torch.where(ok_det, det, torch.ones_like(det))
        py, px = p[:, None, :, 0], p[:, None, :, 1]  # N×1×K
        a = ((py * b2[..., 1, None] - px * b2[..., 0, None]) / det[..., None]).round()
        b = ((px * b1[..., 0, None] - py * b1[..., 1, None]) / det[..., None]).round()
        ry = py - a * b1[..., 0, None] - b * b2[..., 0, None]
        rx = px - a * b1[..., 1, None] - b * b2[..., 1, None]
        tol = tol_bins + tol_rel * peaks.radius[:, None, :]
        return (torch.sqrt(ry.square() + rx.square()) <= tol) & ok_det[..., None]  # N×C×K

    one_d = ~torch.isfinite(g).all(dim=1)
    # the current lattice (1-D: f and a vector far off, so that only multiples of f count)
    gg = torch.where(one_d[:, None], torch.stack([-f[:, 1], f[:, 0]], dim=1) * 1e3, g)
    cur_hit = explained(f[:, None], torch.nan_to_num(gg)[:, None])[:, 0]  # N×K
    # Unexplained peaks along f or g are fractional harmonics of the wall's own lines (a zone or band at
    # twice the period adds its 3rd harmonic at 1.5 f): no evidence of a finer lattice.
    def along(v: torch.Tensor) -> torch.Tensor:
        vr = torch.sqrt(v.square().sum(-1)).clamp_min(1e-9)
        return (peaks.ky * v[:, 1:] - peaks.kx * v[:, :1]).abs() <= 0.1 * peaks.radius * vr[:, None]
    sel = sel & (cur_hit | ~(along(f) | (along(torch.nan_to_num(g)) & ~one_d[:, None])))
    cur = (cur_hit & sel).sum(-1)
    nsel = sel.sum(dim=1)
    # the search below only where its result can be used (the current lattice leaves peaks unexplained);
    # on the CPU the other images are left out (functional.rows)
    need = (cur.to(dt) < min_share * nsel.to(dt)) & torch.isfinite(f).all(dim=1)
    sub = need.nonzero()[:, 0] if need.device.type == "cpu" else None
    if sub is not None and sub.numel() < n:
        t1, t2 = f.clone(), g.clone()
        if sub.numel():
            mr = min_radius[sub] if isinstance(min_radius, torch.Tensor) else min_radius
            t1[sub], t2[sub] = _finer_lattice(PromPeaks(*(t[sub] for t in peaks)), f[sub], g[sub], sel0[sub],
                                              min_radius=mr, tol_bins=tol_bins, tol_rel=tol_rel,
                                              min_share=min_share, min_gain=min_gain, m_short=m_short)
        return t1, t2
    # candidate basis vectors: the selected peaks, their differences and sums; the m_short shortest
    c = torch.cat([p, (p[:, :, None] - p[:, None, :]).reshape(n, -1, 2),
                   (p[:, :, None] + p[:, None, :]).reshape(n, -1, 2)], dim=1)
    pair_ok = (sel[:, :, None] & sel[:, None, :]).reshape(n, -1)
    cok = torch.cat([sel, pair_ok, pair_ok], dim=1)
    cr = torch.sqrt(c.square().sum(-1))
    cok &= cr >= (min_radius.clamp_min(1.0)[:, None] if isinstance(min_radius, torch.Tensor)
                  else max(min_radius, 1.0))
    key = torch.where(cok, cr, torch.full_like(cr, float("inf")))
    m = min(m_short, key.shape[1])
    kr, j = key.topk(m, dim=1, largest=False)
    cv = c.gather(1, j[..., None].expand(n, m, 2))  # N×M×2
    vok = torch.isfinite(kr)
    b1 = cv[:, :, None, :].expand(n, m, m, 2).reshape(n, m * m, 2)
    b2 = cv[:, None, :, :].expand(n, m, m, 2).reshape(n, m * m, 2)
    r1, r2 = kr[:, :, None].expand(n, m, m).reshape(n, -1), kr[:, None, :].expand(n, m, m).reshape(n, -1)
    det = (b1[..., 0] * b2[..., 1] - b1[..., 1] * b2[..., 0]).abs()
    sin = det / (torch.nan_to_num(r1, posinf=1.0) * torch.nan_to_num(r2, posinf=1.0)).clamp_min(1e-9)
    pok = (vok[:, :, None] & vok[:, None, :]).reshape(n, -1) & (sin > 0.3)
    cnt = torch.where(pok, (explained(b1, b2) & sel[:, None, :]).sum(-1), torch.full_like(det, -1,
                                                                                          dtype=torch.long))
    qual = pok & (cnt.to(dt) >= min_share * nsel[:, None].to(dt))
    jj = torch.where(qual, det, torch.full_like(det, -1.0)).argmax(dim=1)
    ar = torch.arange(n, device=f.device)
    use = qual.any(dim=1) & (cnt[ar, jj] >= cur + min_gain) & (cur.to(dt) < min_share * nsel.to(dt))
    use &= torch.isfinite(f).all(dim=1)
    t1, t2 = b1[ar, jj], b2[ar, jj]
    for _ in range(4):  # Lagrange–Gauss reduction in reciprocal space
        swap = (t2.square().sum(1) < t1.square().sum(1))[:, None]
        t1, t2 = torch.where(swap, t2, t1), torch.where(swap, t1, t2)
        mu = torch.round((t1 * t2).sum(1) / t1.square().sum(1).clamp_min(1e-12))
        t2 = t2 - mu[:, None] * t1
    return torch.where(use[:, None], t1, f), torch.where(use[:, None], t2, g)


def pick_lattice(peaks: PromPeaks, *, min_prominence: float = 30.0, rel_prominence: float = 0.03,
                 rel_power: float = 0.25, weak_power: float = 0.02, max_harmonic: int = 6,
                 tol_bins: float = 0.3, tol_rel: float = 0.03, low_radius: float = 14.0,
                 lone_prominence: float = 1e5, min_radius: float | torch.Tensor = 0.0) -> Lattice:
    """The fundamental ``f`` and the second basis vector ``g`` from :func:`prominent_peaks` (see the module
    docstring, step 3); ``min_radius``: the lowest frequency searched (bins; a fundamental implied by its
    comb is not taken below it), a number or ``(N,)`` (one per image: :func:`pick_lattices`)."""
    n, kk = peaks.power.shape
    dev, dt = peaks.power.device, peaks.power.dtype
    top = torch.where(peaks.valid, peaks.prominence, torch.zeros_like(peaks.prominence)).amax(dim=1)
    base = peaks.valid & (peaks.prominence >= min_prominence)
    ok = base & (peaks.prominence >= (rel_prominence * top)[:, None])
    # A low-frequency line (< low_radius bins) must have a harmonic (a prominent peak at 2k or 3k) to be a
    # lattice line: a lone bump of colour variation between planks has none.
    # (the peaks near ±2k and ±3k: the first two multiples of _comb_near's, shared by every comb below)
    cn = _comb_near(peaks, tol_bins, tol_rel)
    hit23 = (cn[0][:, :2] & ok[:, None, None, :]).any(dim=3)  # N×2×K
    support = hit23[:, 0] | hit23[:, 1]
    both = hit23[:, 0] & hit23[:, 1]
    # (and both 2k and 3k, or most of its multiples 2k..6k, are prominent peaks: two humps of per-plank
    # colour make a "harmonic" pair by chance, not a comb)
    # (a line among the most prominent, at least half the top prominence, needs only one: the brick
    # photograph's harmonics fade after the 2nd)
    top_prom = torch.where(ok, peaks.prominence, torch.zeros_like(peaks.prominence)).amax(dim=1, keepdim=True)
    support &= (both | _comb(peaks, ok, tol_bins, tol_rel, skip=max_harmonic + 1, share=0.75, near=cn)
                | (peaks.prominence >= 0.5 * top_prom))
    # ... or is one of a pair of shorter lattice vectors summing to a lattice line (the fundamentals of a
    # hex or penny mosaic of 60-80 px on a 256-px reference: the sqrt(3) shell is their only "harmonic")
    # (asked only where it decides lowok below: a low line without that support and not lone-prominent)
    free = (peaks.radius >= low_radius) | (peaks.prominence >= lone_prominence)
    support |= _pair_support(peaks, base, ok, tol_bins, tol_rel, need=base & ~(support | free))
    # ... unless it stands so far above its neighbourhood that nothing but a grating can make it (a pure
    # sinusoid has no harmonics: measured 4e10; colour humps between planks 30-50, wall lattice peaks < 3e3).
    lowok = (peaks.radius >= low_radius) | support | (peaks.prominence >= lone_prominence)
    ok &= lowok
    # Divisors and pairs of the strongest line need not pass the relative prominence: on a clean, sharp
    # reference patch the thin grout or joint lines' high harmonics stand 10^4 above their neighbourhood,
    # the fundamental (on the hump of per-tile colour) only 10^2 (planks read at 1/3, tiles at 1/2).
    # Those must carry their own harmonic comb (>= 60 % of the multiples 2k..6k that k1 does not explain are
    # peaks): a bump of per-plank colour at a third (a half) of the plank line does not.
    extra = base & lowok & ~ok
    found = ok.any(dim=1)
    pw = torch.where(ok, peaks.power, torch.full_like(peaks.power, -1.0))
    i1 = pw.argmax(dim=1)
    ar = torch.arange(n, device=dev)
    k1 = torch.stack([peaks.ky[ar, i1], peaks.kx[ar, i1]], dim=1)
    p1 = peaks.power[ar, i1]
    strong_pw = peaks.power >= rel_power * p1[:, None]
    # (the comb's lines strong too: a faint two-plank repeat under a colour bump is not the wall's lattice)
    # A prominent divisor must not contradict its comb either (>= half of the multiples that k1 does not
    # explain are prominent peaks with some power): with a 3 % tolerance a bump of per-plank colour near k1/5
    # passes for the planks' fundamental otherwise.
    weak_pw = peaks.power >= weak_power * p1[:, None]
    skips = tuple(range(2, max_harmonic + 1))
    combs = ((ok[:, None] & _combs(peaks, base & weak_pw, tol_bins, tol_rel, skips=skips, share=0.5, near=cn))
             | (extra[:, None] & _combs(peaks, base & strong_pw, tol_bins, tol_rel, skips=skips, near=cn)))
    div_ok = combs & strong_pw[:, None]  # N×M×K: the peaks that may stand at k/m, m = 2..max_harmonic
    strong = ok & strong_pw  # (pairs: the relaxed candidates only through the square/hex geometry, weak)
    best = i1.clone()
    best_r = peaks.radius[ar, i1].clone()
    # Divisors along k1's own direction (the lowest present wins), then shorter pairs; twice over (the
    # √12 line of a hex mosaic → its half, the √3 line → the pair of fundamentals).
    best, best_r = _lowest_divisor(peaks, k1, div_ok, best, best_r, skips, tol_bins, tol_rel)
    # (pairs of relaxed candidates need a comb of their own as well: the head-joint pair of a running bond,
    # at 62° and 36× prominent, otherwise passes for a hexagonal one)
    pair_ok = ok | (extra & _comb(peaks, base, tol_bins, tol_rel, skip=max_harmonic + 1, near=cn))
    weak = pair_ok & (peaks.power >= weak_power * p1[:, None])
    geometry = _pair_geometry(peaks, strong, weak)
    for _ in range(2):
        best, best_r = _reduce_pair(peaks, best, best_r, geometry, tol_bins, tol_rel)
        kb = torch.stack([peaks.ky[ar, best], peaks.kx[ar, best]], dim=1)
        best, best_r = _lowest_divisor(peaks, kb, div_ok, best, best_r, skips, tol_bins, tol_rel)
    f = torch.stack([peaks.ky[ar, best], peaks.kx[ar, best]], dim=1)
    fr = peaks.radius[ar, best]
    # The fundamental need not be a peak: on a clean reference of planks the fundamental sits on the hump
    # of per-plank colour (another bump within two bins is the local maximum), while the joints' harmonics
    # stand 10^3 above their neighbourhood. A comb of strong prominent peaks at j·f/m with j prime to m
    # (>= 2 of them, >= 60 % of those in the band) makes f/m the fundamental; the largest such m wins.
    among_v = ok & strong_pw
    # (the lattice so far: f and the shortest prominent peak not collinear with it, as g is chosen below)
    cross0 = (peaks.ky * f[:, 1:] - peaks.kx * f[:, :1]).abs() / (peaks.radius * fr[:, None]).clamp_min(1e-9)
    cand0 = ok & (cross0 > 0.3) & (peaks.power >= 0.02 * peaks.power[ar, best][:, None])
    j0 = torch.where(cand0, peaks.radius, torch.full_like(peaks.radius, float("inf"))).argmin(dim=1)
    g0 = torch.where(cand0.any(dim=1)[:, None], torch.stack([peaks.ky[ar, j0], peaks.kx[ar, j0]], dim=1),
                     torch.full_like(f, float("nan")))
    f, _g = _finer_lattice(peaks, f, g0, among_v, min_radius=min_radius, tol_bins=tol_bins, tol_rel=tol_rel)
    fr = torch.sqrt(f.square().sum(dim=1))
    # (and the strong peaks along f lie on that comb, >= 70 % of them: on an aliased wall a dense row of
    # folded peaks matches any comb within its tolerance)
    fn = f / fr[:, None].clamp_min(1e-9)
    along_f = among_v & ((peaks.ky * fn[:, 1:] - peaks.kx * fn[:, :1]).abs() <= 0.1 * peaks.radius)
    # every divisor m at once (M = max_harmonic … 2, the largest that qualifies wins)
    ms = tuple(range(max_harmonic, 1, -1))
    if ms:
        mt = torch.tensor([float(m) for m in ms], device=dev, dtype=dt)
        v = f[:, None, :] / mt[None, :, None]  # N×M×2
        hits, seen = _vector_comb(peaks, v, among_v, tol_bins, tol_rel, ms=ms)
        vy, vx = v[..., :1], v[..., 1:]
        vv = v.square().sum(dim=-1, keepdim=True).clamp_min(1e-12)
        j = ((peaks.ky[:, None] * vy + peaks.kx[:, None] * vx) / vv).round()  # N×M×K
        off = torch.sqrt((peaks.ky[:, None] - j * vy).square() + (peaks.kx[:, None] - j * vx).square())
        on = along_f[:, None] & (off <= (tol_bins + tol_rel * peaks.radius)[:, None])
        fits = on.sum(dim=2) >= 0.7 * along_f.sum(dim=1)[:, None]
        frm = fr[:, None] / mt[None]
        low = frm >= (min_radius[:, None] if isinstance(min_radius, torch.Tensor) else min_radius)
        use = (hits >= 2) & (hits >= 0.6 * seen) & low & fits  # N×M
        first = use.to(torch.uint8).argmax(dim=1)  # the first (largest) m that qualifies
        any_use = use.any(dim=1)
        f = torch.where(any_use[:, None], v[ar, first], f)
        fr = torch.where(any_use, frm[ar, first], fr)
    # A centred square lattice seen along its axes (a wallpaper motif with a second motif at the cell
    # centre): the basis lines run at 45°; the wall's repeat is the axis-aligned line f ± g, if prominent.
    fr, f = _centred_square(peaks, best, fr, f, ok)
    # Second basis vector: the shortest prominent peak not collinear with f (|sin| > 0.3), with some power.
    cross = (peaks.ky * f[:, 1:] - peaks.kx * f[:, :1]).abs() / (peaks.radius * fr[:, None]).clamp_min(1e-9)
    cand = ok & (cross > 0.3) & (peaks.power >= 0.02 * peaks.power[ar, best][:, None])
    jg = torch.where(cand, peaks.radius, torch.full_like(peaks.radius, float("inf"))).argmin(dim=1)
    has_g = cand.any(dim=1) & found
    nan2 = torch.full((n, 2), float("nan"), device=dev, dtype=dt)
    g = torch.where(has_g[:, None], torch.stack([peaks.ky[ar, jg], peaks.kx[ar, jg]], dim=1), nan2)
    nan = torch.full((n,), float("nan"), device=dev, dtype=dt)
    prominence = torch.where(found, peaks.prominence[ar, best], torch.zeros_like(fr))
    return Lattice(torch.where(found[:, None], f, nan2), g, torch.where(found, fr, nan),
                   torch.where(found, peaks.power[ar, best], nan), prominence, found, best, ok.sum(dim=1))


def pick_lattices(peaks: Sequence[PromPeaks], *, min_radius: Sequence[float]) -> list[Lattice]:
    """:func:`pick_lattice` (default options) of several peak sets at once (``peaks[i]`` ``Nᵢ×K``, of
    spectra of any sides; ``min_radius[i]`` each set's): one pick over their concatenation, split back
    (each image's result is the same as its own pick's: every step is per image). Sets with different
    ``K`` are picked one by one."""
    if len({p.power.shape[1] for p in peaks}) != 1 or len(peaks) < 2:
        return [pick_lattice(p, min_radius=r) for p, r in zip(peaks, min_radius, strict=True)]
    sizes = [p.power.shape[0] for p in peaks]
    ref = peaks[0].power
    mr = torch.cat([torch.full((k,), float(r), device=ref.device, dtype=ref.dtype)
                    for k, r in zip(sizes, min_radius, strict=True)])
    lat = pick_lattice(PromPeaks(*(torch.cat(t) for t in zip(*peaks, strict=True))), min_radius=mr)
    return [Lattice(*parts) for parts in zip(*(t.split(sizes) for t in lat), strict=True)]


def real_basis(f: torch.Tensor, g: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real-space lattice vectors ``t₁``, ``t₂`` (``N×2``, (ty, tx) px) dual to the reciprocal ``f``, ``g``
    (``N×2`` bins of the ``side`` grid): ``tᵢ·bⱼ = δᵢⱼ`` with ``b = k / side``, then Gauss-reduced (``t₁``
    the shortest). Where ``g`` is NaN (1-D texture), ``t₁ = f/|f|²·side`` (the repeat across the lines) and
    ``t₂`` is NaN."""
    b1, b2 = f / side, g / side
    det = b1[:, 0] * b2[:, 1] - b1[:, 1] * b2[:, 0]
    # rows of T = inverse-transpose of B (rows b1, b2)
    t1 = torch.stack([b2[:, 1], -b2[:, 0]], dim=1) / det[:, None]
    t2 = torch.stack([-b1[:, 1], b1[:, 0]], dim=1) / det[:, None]
    for _ in range(4):  # Lagrange–Gauss reduction, a few rounds are plenty
        swap = (t2.square().sum(1) < t1.square().sum(1))[:, None]
        t1, t2 = torch.where(swap, t2, t1), torch.where(swap, t1, t2)
        mu = torch.round((t1 * t2).sum(1) / t1.square().sum(1).clamp_min(1e-12))
        t2 = t2 - mu[:, None] * t1
    one_d = ~torch.isfinite(g).all(dim=1)
    t1d = b1 / b1.square().sum(1, keepdim=True).clamp_min(1e-12)
    nan2 = torch.full_like(t1, float("nan"))
    return torch.where(one_d[:, None], t1d, t1), torch.where(one_d[:, None], nan2, t2)


def axis_periods(t1: torch.Tensor, t2: torch.Tensor, *, max_angle_deg: float = 30.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Period along x and along y (``(N,)`` px): the length of the shortest lattice vector ``a·t₁ + b·t₂``
    (``|a|, |b| ≤ 3``) within ``max_angle_deg`` of that axis; NaN where none is. On a 1-D texture only
    ``t₁`` counts."""
    dev, dt = t1.device, t1.dtype
    r = torch.arange(-3, 4, device=dev, dtype=dt)
    a, b = torch.meshgrid(r, r, indexing="ij")
    a, b = a.flatten(), b.flatten()
    keep = (a != 0) | (b != 0)
    a, b = a[keep], b[keep]
    t2z = torch.nan_to_num(t2, nan=0.0)
    one_d = ~torch.isfinite(t2).all(dim=1)
    vy = a[None] * t1[:, :1] + b[None] * t2z[:, :1]
    vx = a[None] * t1[:, 1:] + b[None] * t2z[:, 1:]
    ln = torch.sqrt(vy.square() + vx.square())
    valid = torch.where(one_d[:, None], (b == 0)[None].expand_as(ln), torch.ones_like(ln, dtype=torch.bool))
    valid &= ln > 1e-6
    c = math.cos(math.radians(max_angle_deg))
    inf = torch.full_like(ln, float("inf"))
    px = torch.where(valid & (vx.abs() >= c * ln), ln, inf).amin(dim=1)
    py = torch.where(valid & (vy.abs() >= c * ln), ln, inf).amin(dim=1)
    nan = torch.full_like(px, float("nan"))
    return torch.where(torch.isfinite(px), px, nan), torch.where(torch.isfinite(py), py, nan)
