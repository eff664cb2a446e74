"""Stride-grid and checkerboard estimators that work at any texture period and name the stride.

Pure batched functions on ``N×H×W`` luminance with ``N×H×W`` 0/1 validity weights.

* :func:`parity_gain` (stride 2, the transposed-convolution checkerboard): a ×2 transposed convolution
  whose kernel overlaps unevenly gives the output's pixel parities different gains, ``y = s·(1 + a·c)``
  with a carrier ``c = (−1)^x``, ``(−1)^y`` or ``(−1)^(x+y)``. Demodulation: the block means (``block``
  px) of ``y·c`` are ``a·s̄`` while the texture's own content near Nyquist averages out; the gain ``a``
  of each carrier is the least-squares ratio ``Σ M_c·S / Σ S²`` over the fully valid blocks (``S`` the
  block means of ``y``), i.e. the imbalance *relative to the local signal*, whatever the texture's
  period. Two guards make it a calibrated score rather than a raw ratio:

  - **noise floor**: the same ratio on each of (up to) 4×4 spatial parts of the image gives the
    standard error of ``a`` (batch means); ``PARITY_Z`` standard errors are removed from each carrier's
    ``|a|`` in quadrature (:func:`floor`), so white noise or a small image gives ≈ 0 instead of its
    sampling spread;
  - **spread over the wall**: a gain acts on every pixel, so the per-2×2-quad contrast
    ``(Σ c·y) / Σ y`` has the same central value ``a`` everywhere; a texture locked to the pixel grid
    (a period of exactly ``2n`` px, e.g. planks 18.0 px wide seen straight on) puts its Nyquist harmonic
    only on its sharp edges, a minority of the quads. The robust gain (interquartile mean of the quad
    contrasts, root sum of squares over the carriers) is ``checkerboard_robust``; the score is
    ``min(floored LS gain, SPREAD_RATIO × robust gain)``: unchanged for a gain (LS/robust ≤ 1.8 on
    generated deconvolutions after JPEG 75–95), cut down for an imbalance that sits on a few edges
    (LS/robust ≥ 10 on pixel-locked planks and tiles).

  ``checkerboard_s2 = sqrt(a_x² + a_y² + a_xy²)`` of the floored gains, capped as above: half the relative
  gain difference between parities. A bilinear ×2 upsampler has equal gains (≈ 0).
* :func:`grid_excess` (strides ≥ 4, VAE / token grids): block offsets and seams on a k-px lattice put
  jumps on every k-th line. For every line (neighbour difference across it, averaged along k-px segments
  of the line) the excess of its |jump| over the median |jump| of the ``k`` lines around it
  (``±k/2``, itself excluded) is taken; the per-phase (line index mod k) 10 %-trimmed mean of that excess
  is ``w_φ``. Because every line is compared with a window *centred on it*, all k phases are exchangeable
  on any texture not locked to the frame (smooth gradients, upsampled content, noise), so
  ``w_φ* − w_{φ*+k/2}`` (φ* the largest) is only the max-of-k sampling spread there; its standard error
  is the smaller of two estimates — the same difference on 4×4 spatial parts (batch means; conservative
  when a texture's phase drifts across the frame) and the rms of the other phase pairs'
  ``w_φ − w_{φ+k/2}`` (the empirical null of the k phases) — and the score is the mean of the two
  directions' differences less ``NOISE_Z`` standard errors (≥ 0; a linear floor: the 2-px parity pattern
  of a ×2 deconvolution lifts every even phase, and a quadrature floor would let that read as a grid).
  A grid of stride k/2 puts
  jumps on φ* + k/2 too, so ``grid_s16`` of an 8-px grid is ≈ 0 while ``grid_s8`` of a 16-px grid is
  about half its ``grid_s16``. A texture whose lattice period is a multiple of k and aligned to the
  frame cannot be told from a grid (the verdict rules use the lattice to say so).
"""

from __future__ import annotations

import torch

from . import order
from .order import kth_smallest, rank_range_sum, running_min, sorted_values
from .spectral import box_downsample

__all__ = ["NOISE_Z", "PARITY_Z", "SPREAD_RATIO", "floor", "grid_excess", "parity_gain"]

#: Standard errors subtracted from each grid estimate (see :func:`grid_excess`): the max-of-k null
#: statistic on white and blurred noise (64–512 px, k = 8, 16) stays below it.
NOISE_Z = 3.5
#: Entries per phase a part needs on average for ``grid_agree_s{k}`` (else NaN): a 16-px grid on 256 px
#: (15 per part) read 0.125, its parts' phase ranks are noise; 512 px at k = 16 has 62.
AGREE_MIN_ENTRIES = 48
#: The same for each parity carrier (one estimate, no selection among phases: a t test at p ≈ 0.01).
PARITY_Z = 3.0
#: The least-squares parity gain may exceed the robust (quad interquartile mean) gain by at most this
#: factor: generated ×2 deconvolutions after JPEG 75–95 have LS/robust ≤ 1.8, pixel-locked textures ≥ 10.
SPREAD_RATIO = 3.0


def floor(est: torch.Tensor, se: torch.Tensor, z: float) -> torch.Tensor:
    """``sqrt(max(0, est² − (z·se)²))`` for ``est ≥ 0``: 0 within ``z`` standard errors of 0, ≈ ``est``
    well above (a noise floor removed in quadrature). A NaN ``se`` gives NaN."""
    return torch.sqrt((est.clamp_min(0.0).square() - (z * se).square()).clamp_min(0.0))


def _parts(n_rows: int, n_cols: int, parts: int = 4) -> tuple[int, int]:
    """Rows and columns of the (up to) ``parts × parts`` spatial batches of a grid of cells."""
    return max(1, min(parts, n_rows)), max(1, min(parts, n_cols))


def _batch_sum(z: torch.Tensor, gr: int, gc: int) -> torch.Tensor:
    """``N×R×C`` → ``N×(gr·gc)`` sums over a ``gr × gc`` partition (trailing remainders dropped)."""
    n, r, c = z.shape
    rr, cc = (r // gr) * gr, (c // gc) * gc
    return z[:, :rr, :cc].reshape(n, gr, rr // gr, gc, cc // gc).sum(dim=(2, 4)).reshape(n, gr * gc)


def _batch_se(vals: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Standard error of the mean of the ``N×T`` batch values where ``ok`` (NaN with fewer than 4)."""
    cnt = ok.to(vals.dtype).sum(dim=1)
    v = torch.where(ok, vals, torch.zeros_like(vals))
    mean = v.sum(dim=1) / cnt.clamp_min(1.0)
    var = (torch.where(ok, vals - mean[:, None], torch.zeros_like(vals)).square().sum(dim=1)
           / (cnt - 1.0).clamp_min(1.0))
    se = torch.sqrt(var / cnt.clamp_min(1.0))
    return torch.where(cnt >= 4, se, torch.full_like(se, float("nan")))


def _iqm(p: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Interquartile mean of each row of ``N×M`` over the entries where ``ok``: the mean of the sorted valid
    values ``[n//4, max(3n//4, n//4 + 1))`` (NaN when none). No host synchronisation."""
    cnt = ok.sum(dim=1)
    lo = cnt // 4
    hi = torch.maximum((3 * cnt) // 4, lo + 1).clamp_max(p.shape[1])
    s = rank_range_sum(torch.where(ok, p, torch.full_like(p, float("inf"))), lo, hi)
    out = s / (hi - lo).clamp_min(1).to(p.dtype)
    return torch.where(cnt > 0, out, torch.full_like(out, float("nan")))


def _quad_gains(x: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Robust per-carrier gain: interquartile mean over fully valid 2×2 quads of ``Σ c·y / Σ y``."""
    n, h, w = x.shape
    h2, w2 = (h // 2) * 2, (w // 2) * 2
    q = x[:, :h2, :w2].reshape(n, h2 // 2, 2, w2 // 2, 2)
    # the quad's smallest validity from its four parity views (amin over the strided 2×2 axes is ~20× slower)
    v00, v01, v10, v11 = (valid[:, i:h2:2, j:w2:2] for i in (0, 1) for j in (0, 1))
    ok = (torch.minimum(torch.minimum(v00, v01), torch.minimum(v10, v11)) > 0.5).reshape(n, -1)
    y00, y01, y10, y11 = q[:, :, 0, :, 0], q[:, :, 0, :, 1], q[:, :, 1, :, 0], q[:, :, 1, :, 1]
    tot = (y00 + y01 + y10 + y11).clamp_min(0.08)  # a mean level of 2 % (black) is the floor
    out = {}
    for name, num in (("x", (y00 + y10) - (y01 + y11)), ("y", (y00 + y01) - (y10 + y11)),
                      ("xy", (y00 + y11) - (y01 + y10))):
        out[name] = _iqm((num / tot).reshape(n, -1), ok)
    return out


def _parity_block_sums(z: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
    """Sums over the ``block×block`` blocks (``block`` even, dividing both sides of ``N×H×W`` ``z``) of the
    pixels on even rows and even columns, even rows and odd columns, odd and even, odd and odd: four
    ``N×(H/block)×(W/block)``, from one pass of row sums and one of column sums."""
    n, h, w = z.shape
    blocks = z.reshape(n, h // block, block, w)
    re = blocks[:, :, 0].clone()
    ro = blocks[:, :, 1].clone()
    for i in range(2, block, 2):
        re += blocks[:, :, i]
        ro += blocks[:, :, i + 1]

    def cols(r: torch.Tensor, j0: int) -> torch.Tensor:
        out = r[..., j0::block].clone()
        for j in range(j0 + 2, block, 2):
            out += r[..., j::block]
        return out

    return cols(re, 0), cols(re, 1), cols(ro, 0), cols(ro, 1)


def parity_gain(x: torch.Tensor, valid: torch.Tensor, *, block: int = 8) -> dict[str, torch.Tensor]:
    """Polyphase gain imbalance of the pixel parities (see the module docstring): ``checkerboard_s2`` (the
    floored, spread-capped magnitude), ``checkerboard_robust`` (quad interquartile-mean magnitude),
    ``checkerboard_dims`` (2: the imbalance is two-dimensional — the xy carrier or both axis carriers stand
    above their noise floor, as under a ×2 transposed convolution; 1: one axis only, a 1-D pattern of
    period 2 such as a pixel-locked grating; 0: none) and the three raw least-squares carriers
    ``parity_gain_x``, ``parity_gain_y``, ``parity_gain_xy`` (signed),
    each ``(N,)``.

    ``x``: ``N×H×W`` finite luminance; ``valid``: ``N×H×W`` 0/1 float. NaN where no block is fully valid.
    """
    n, h, w = x.shape
    hc, wc = (h // block) * block, (w // block) * block
    x, v = x[:, :hc, :wc], valid[:, :hc, :wc]
    xv = x * v
    dev, dt = x.device, x.dtype
    # the blocks' sums split by pixel parity (even/odd row × even/odd column): the plain block mean and the
    # three carriers' (±1 on the x, y and xy parities) block means are their signed sums
    par = _parity_block_sums(xv, block) if block % 2 == 0 else None
    if par is None:
        cy = 1.0 - 2.0 * (torch.arange(hc, device=dev) % 2).to(dt)
        cx = 1.0 - 2.0 * (torch.arange(wc, device=dev) % 2).to(dt)
        s = box_downsample(xv, block)
    else:
        see, seo, soe, soo = par
        s = (see + seo + soe + soo) * (1.0 / (block * block))
    vb = box_downsample(v, block)
    full = (vb >= 0.999).to(dt)
    s2 = s.square() * full
    den = s2.sum(dim=(-2, -1))
    gr, gc = _parts(s.shape[1], s.shape[2])
    den_b = _batch_sum(s2, gr, gc)
    out: dict[str, torch.Tensor] = {}
    tiny = torch.finfo(dt).tiny
    names = ("x", "y", "xy")
    mss = []
    for name in names:
        if par is None:
            carrier = {"x": cx[None, None, :], "y": cy[None, :, None],
                       "xy": cy[None, :, None] * cx[None, None, :]}[name]
            mss.append(box_downsample(xv * carrier, block) * s * full)
        else:
            pos, neg = {"x": ((see, soe), (seo, soo)), "y": ((see, seo), (soe, soo)),
                        "xy": ((see, soo), (seo, soe))}[name]
            mss.append(((pos[0] + pos[1]) - (neg[0] + neg[1])) * (1.0 / (block * block)) * s * full)
    # the three carriers as one 3N batch (each image's and carrier's sums are its own: fewer small calls)
    ms = torch.stack(mss)  # 3×N×hb×wb
    a3 = ms.sum(dim=(-2, -1)) / den.clamp_min(tiny)  # 3×N
    ok_b = (den_b > 0).repeat(3, 1)
    a_b = _batch_sum(ms.flatten(0, 1), gr, gc).reshape(3, n, -1) / den_b.clamp_min(tiny)
    se = torch.nan_to_num(_batch_se(a_b.flatten(0, 1), ok_b), nan=float("inf")).reshape(3, n)
    fl = floor(a3.abs(), se, PARITY_Z)  # 3×N
    for i, name in enumerate(names):
        out[f"parity_gain_{name}"] = a3[i]
    floored = list(fl.unbind(0))
    ls = torch.sqrt(fl.square().sum(dim=0))
    share = _line_share(xv, s * full, den, block) if block % 2 == 0 else torch.full_like(ls, float("nan"))
    sig = [f > 0 for f in floored]
    dims = torch.where(sig[2] | (sig[0] & sig[1]), 2.0, torch.where(sig[0] | sig[1], 1.0, 0.0)).to(dt)
    rob = _quad_gains(x, v)
    robust = torch.sqrt(torch.stack(list(rob.values())).square().sum(dim=0))
    score = torch.minimum(ls, SPREAD_RATIO * torch.nan_to_num(robust, nan=float("inf")))
    ok = den > 0
    nan = torch.full_like(score, float("nan"))
    out = {k: torch.where(ok, v_, nan) for k, v_ in out.items()}
    out["checkerboard_robust"] = torch.where(ok, robust, nan)
    out["checkerboard_dims"] = torch.where(ok, dims, nan)
    out["checkerboard_s2"] = torch.where(ok, score, nan)
    out["checkerboard_line_share"] = torch.where(ok, share, nan)
    return out


def _line_share(xv: torch.Tensor, sw: torch.Tensor, den: torch.Tensor, block: int) -> torch.Tensor:
    """Share of the axis carriers' parity gain held by one column (row) pair class: ``(N,)`` in [2/block, 1].

    The x carrier's least-squares gain (see :func:`parity_gain`) is a sum over the ``block/2`` classes of
    column pairs ``(2c, 2c+1)`` mod ``block``: ``a_x = Σ_c a_x,c`` (the same for y with row pairs). A gain
    on every pixel parity (a ×2 transposed convolution) spreads over the classes (share ≈ 2/block–0.5 after
    JPEG); 1-px seams of a block grid, or a texture locked to the block lattice, put their parity energy on
    the one pair class that holds their lines (share → 1). Returns ``Σ_axis max_c |a_c| / Σ_axis Σ_c |a_c|``.

    ``xv``: ``N×H×W`` weighted luminance cropped to whole blocks; ``sw``: ``N×(H/block)×(W/block)`` block
    means times the fully-valid flag; ``den``: ``Σ sw²`` per image."""
    n, h, w = xv.shape
    hb, wb, cls = h // block, w // block, block // 2
    tiny = torch.finfo(xv.dtype).tiny
    px = (xv[..., 0::2] - xv[..., 1::2]).reshape(n, hb, block, wb, cls).sum(dim=2)  # N×hb×wb×cls
    py = (xv[:, 0::2] - xv[:, 1::2]).reshape(n, hb, cls, wb, block).sum(dim=4).transpose(2, 3)
    num = torch.zeros_like(den)
    tot = torch.zeros_like(den)
    for p in (px, py):
        a = ((p * (1.0 / (block * block))) * sw[..., None]).sum(dim=(1, 2)) / den.clamp_min(tiny)[:, None]
        num = num + a.abs().amax(dim=1)
        tot = tot + a.abs().sum(dim=1)
    return num / tot.clamp_min(tiny)


def _line_excess(d: torch.Tensor, pair: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per line, its |jump| over the median |jump| of the ``k`` lines around it, grouped by phase.

    ``d``, ``pair``: ``N×R×L`` differences across the last axis (pair ``j`` joins pixels ``j`` and ``j+1``;
    its line's phase is ``(j+1) mod k``), R rows along the lines, averaged over segments of ``k`` rows.
    Returns ``(e, ok)``: ``N×R'×C×k`` excesses (``C`` whole cycles of the k phases, phase last) and their
    validity (the segment and its whole window valid)."""
    n, r, length = d.shape
    h = k // 2
    rc = (r // k) * k
    if rc == 0 or length < 2 * h + 1 + k:
        return d.new_zeros(n, 0, 0, k), torch.zeros(n, 0, 0, k, dtype=torch.bool, device=d.device)
    seg = d[:, :rc].reshape(n, rc // k, k, length).mean(dim=2).abs()  # N×R'×L
    okp = pair[:, :rc].reshape(n, rc // k, k, length).amin(dim=2) > 0.5
    # lines j-h..j+h for j = h..L-h-1: the 2h neighbours as shifted views, their lower median (the value
    # torch.median gives) by a selection network
    m = length - 2 * h
    okw = running_min(okp, 2 * h + 1, -1)  # the whole window valid
    nb = kth_smallest([seg[..., i:i + m] for i in range(2 * h + 1) if i != h], h - 1)
    e = seg[..., h:h + m] - nb
    # line index j = i + h has phase (i + h + 1) mod k: start at the first i of phase 0
    start = (-(h + 1)) % k
    cyc = (e.shape[-1] - start) // k
    if cyc <= 0:
        return d.new_zeros(n, 0, 0, k), torch.zeros(n, 0, 0, k, dtype=torch.bool, device=d.device)
    sl = slice(start, start + cyc * k)
    rr = e.shape[1]
    return e[..., sl].reshape(n, rr, cyc, k), okw[..., sl].reshape(n, rr, cyc, k)


def _trimmed_phase_means(e: torch.Tensor, ok: torch.Tensor, trim: float = 0.1) -> tuple[torch.Tensor,
                                                                                        torch.Tensor]:
    """``N×M×k`` values → ``N×k`` per-phase ``trim``-trimmed means over the valid ones, and ``N×k`` counts."""
    return _trimmed_from(*_sorted_sums(e, ok), trim)


def _sorted_sums(e: torch.Tensor, ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`_trimmed_phase_means` reads at any trim: ``N×(M+1)×k`` cumulative sums of the valid
    values sorted per phase (a leading 0), and the ``N×k`` counts (one sort for several trims)."""
    cnt = ok.sum(dim=1)  # N×k
    srt = sorted_values(torch.where(ok, e, torch.full_like(e, float("inf"))), dim=1)
    cs = torch.cumsum(torch.where(torch.isfinite(srt), srt, torch.zeros_like(srt)), dim=1)
    return torch.cat([torch.zeros_like(cs[:, :1]), cs], dim=1), cnt


def _trimmed_from(cs: torch.Tensor, cnt: torch.Tensor, trim: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_trimmed_phase_means` from :func:`_sorted_sums`' output."""
    e_shape1 = cs.shape[1] - 1
    lo = torch.floor(trim * cnt).long()
    hi = torch.maximum(cnt - lo, lo + 1).clamp_max(e_shape1)
    s = cs.gather(1, hi[:, None])[:, 0] - cs.gather(1, lo[:, None])[:, 0]
    mean = s / (hi - lo).clamp_min(1).to(cs.dtype)
    return torch.where(cnt > 0, mean, torch.full_like(mean, float("nan"))), cnt


def _direction(d: torch.Tensor, pair: torch.Tensor, k: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One direction: ``(diff, se, phase, entries, agree)``, each ``(N,)``."""
    n = d.shape[0]
    e, ok = _line_excess(d, pair, k)
    rr, cyc = e.shape[1], e.shape[2]
    if rr == 0 or cyc == 0:
        z = d.new_zeros(n)
        return z, torch.full_like(z, float("nan")), z, z, torch.full_like(z, float("nan"))
    w, cnt = _trimmed_phase_means(e.reshape(n, rr * cyc, k), ok.reshape(n, rr * cyc, k))
    w0 = torch.nan_to_num(w, nan=-float("inf"))
    top, arg = w0.max(dim=1)
    sib_idx = (arg + k // 2) % k
    diff = torch.nan_to_num(top - w.gather(1, sib_idx[:, None])[:, 0], nan=0.0, posinf=0.0, neginf=0.0)
    # batch means: the same difference on (up to) 4×4 parts of the image
    gr, gc = _parts(rr, cyc)
    r2, c2 = (rr // gr) * gr, (cyc // gc) * gc
    eb = e[:, :r2, :c2].reshape(n, gr, r2 // gr, gc, c2 // gc, k).permute(0, 1, 3, 2, 4, 5)
    ob = ok[:, :r2, :c2].reshape(n, gr, r2 // gr, gc, c2 // gc, k).permute(0, 1, 3, 2, 4, 5)
    m = (r2 // gr) * (c2 // gc)
    # the parts' values sorted once for both trims (0.1 here, 0.4 for the phase agreement below)
    parts_sorted = _sorted_sums(eb.reshape(n * gr * gc, m, k), ob.reshape(n * gr * gc, m, k))
    wb, cb = _trimmed_from(*parts_sorted, 0.1)
    wb, cb = wb.reshape(n, gr * gc, k), cb.reshape(n, gr * gc, k)
    pick = lambda t, i: t.gather(2, i[:, None, None].expand(n, gr * gc, 1))[..., 0]
    db = pick(wb, arg) - pick(wb, sib_idx)
    okb = (pick(cb, arg) > 0) & (pick(cb, sib_idx) > 0)
    # phase agreement: the share of parts whose own strongest phase is the whole image's (±1 px), from the
    # parts' per-phase 40 %-trimmed means (a few strong texture joints at one phase of a part do not win it)
    wm, _ = _trimmed_from(*parts_sorted, 0.4)
    dist = (torch.nan_to_num(wm.reshape(n, gr * gc, k), nan=-float("inf")).argmax(dim=2) - arg[:, None]) % k
    near = (torch.minimum(dist, k - dist) <= 1) & okb
    agree = near.to(d.dtype).sum(dim=1) / okb.to(d.dtype).sum(dim=1)  # NaN without a valid part
    # parts too small to rank their phases (fewer than AGREE_MIN_ENTRIES entries per phase): NaN
    per_part = torch.where(okb, pick(cb, arg).to(d.dtype), torch.zeros_like(db)).sum(dim=1) / okb.to(
        d.dtype).sum(dim=1).clamp_min(1.0)
    agree = torch.where(per_part >= AGREE_MIN_ENTRIES, agree, torch.full_like(agree, float("nan")))
    se = _batch_se(torch.nan_to_num(db, nan=0.0), okb)
    # the difference itself is the mean over the same parts (a texture locked to the frame whose period
    # does not divide the cycles left over would otherwise give the phases unequal shares of its lines)
    nbv = okb.to(d.dtype).sum(dim=1)
    diff = torch.where(nbv > 0, torch.where(okb, db, torch.zeros_like(db)).sum(dim=1) / nbv.clamp_min(1.0),
                       diff)
    # the empirical null: the same difference for the other phase pairs (phase, phase + k/2)
    pair = w - w.roll(-(k // 2), dims=1)  # N×k: w_φ − w_{φ+k/2}
    ph = torch.arange(k, device=d.device)[None, :]
    other = (ph != arg[:, None]) & (ph != sib_idx[:, None])
    null = torch.where(other & torch.isfinite(pair), pair.square(), torch.zeros_like(pair))
    nscale = torch.sqrt(null.sum(dim=1) / other.sum(dim=1).clamp_min(1).to(d.dtype))
    se = torch.where(torch.isfinite(se), torch.minimum(se, nscale), nscale)
    entries = torch.minimum(cnt.gather(1, arg[:, None])[:, 0], cnt.gather(1, sib_idx[:, None])[:, 0])
    return diff, se, arg.to(d.dtype), entries.to(d.dtype), agree


def grid_excess(x: torch.Tensor, valid: torch.Tensor, *, strides: tuple[int, ...] = (8, 16),
                noise_z: float = NOISE_Z) -> dict[str, torch.Tensor]:
    """Grid-line excess for each stride k (see the module docstring), each ``(N,)``.

    ``grid_s{k}`` = ``max(0, D − noise_z·SE)`` (``noise_z`` = :data:`NOISE_Z` unless the image is known
    to be noise-free) with ``D`` the mean over the two directions of
    ``w_φ* − w_{φ*+k/2}`` (image units: the extra |jump| on the grid's lines) and ``SE`` its batch-means
    standard error; NaN with fewer than 32 valid entries per phase or fewer than 4 valid parts in either
    direction. ``grid_phase_s{k}``: φ* of the stronger direction (px). ``grid_agree_s{k}``: the phase
    agreement, the larger over the two directions of the share of the (up to) 4×4 parts whose own strongest
    phase is within ±1 px of φ* (NaN without a valid part or with fewer than :data:`AGREE_MIN_ENTRIES`
    entries per phase in a part; each part's phases ranked by their 40 %-trimmed
    means, so that a few strong texture joints at one phase do not win a part): a decoder's grid has one
    phase over the whole frame (generated 8- and 16-px grids over the limit read ≥ 0.69, nearly all 1.0),
    while a wall whose joints fall *near* every k-th line drifts through the phases across the frame
    (≈ 0.5 and below).
    """
    n, h, w = x.shape
    # (the transposed differences laid out once: every stride reads them along the rows; on a square image
    # both directions are one N·2 batch of the same shape, read by one _direction call per stride: each
    # image's result is its own, with ~100 small torch calls fewer each)
    both = h == w
    dx = x.new_empty((2 * n if both else n, h, w - 1))
    torch.sub(x[..., :, 1:], x[..., :, :-1], out=dx[:n])
    dy = dx[n:] if both else x.new_empty((n, w, h - 1))
    dy.copy_((x[..., 1:, :] - x[..., :-1, :]).transpose(-1, -2))
    # every pixel valid (read on the CPU only, where order.host_ok): every pair's weight is 1, one expanded
    # view (no products and no transposed copy of them; the same values)
    if order.host_ok(valid) and bool(valid.amin() == 1):
        one = valid.new_ones(())
        px, py = one.expand(dx.shape), one.expand(dy.shape)
    else:
        px = valid.new_empty(dx.shape)
        torch.mul(valid[..., :, 1:], valid[..., :, :-1], out=px[:n])
        py = px[n:] if both else valid.new_empty(dy.shape)
        py.copy_((valid[..., 1:, :] * valid[..., :-1, :]).transpose(-1, -2))
    out: dict[str, torch.Tensor] = {}
    for k in strides:
        if both:
            res = _direction(dx, px, k)
            (d0, s0, p0, n0, a0), (d1, s1, p1, n1, a1) = ([t[:n] for t in res], [t[n:] for t in res])
        else:
            (d0, s0, p0, n0, a0), (d1, s1, p1, n1, a1) = _direction(dx, px, k), _direction(dy, py, k)
        dmean = 0.5 * (d0 + d1)
        se = 0.5 * torch.sqrt(s0.square() + s1.square())
        sc = (dmean - float(noise_z) * se).clamp_min(0.0)
        ok = (n0 >= 32) & (n1 >= 32) & torch.isfinite(se)
        out[f"grid_s{k}"] = torch.where(ok, sc, torch.full_like(sc, float("nan")))
        out[f"grid_phase_s{k}"] = torch.where(d0 >= d1, p0, p1)
        out[f"grid_agree_s{k}"] = torch.fmax(a0, a1)
    return out
