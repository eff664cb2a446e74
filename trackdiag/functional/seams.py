"""Where an artifact sits: per-side edge strips of the frame and the seam along the mask contour.

Pure batched functions on ``N×H×W`` luminance ``x`` (in [0, 1]) and ``N×H×W`` 0/1 validity weights ``v``.

* :func:`edge_scores`: for each side (left, right, top, bottom), per line parallel to it: its mean level,
  the log energy of differences along the line (fine stripes), and the log energy of differences to the
  next line inwards (a smear has none). A stripe is a step in these at 2–``strip`` px from the side that
  runs the whole side: steps are scored in robust z units against the interior steps, on each of
  ``segments`` pieces of the side, and only a step of the same sign on every piece counts.
* :func:`mask_seam_parts`: a halo along the inside of the mask contour (an inpainting seam): the
  relative brightness offset of the band ``skip``–``ring`` px inside the contour against the band
  ``gap``–``gap+ref`` px inside, compared block by block (``block`` px) and summarised by the median
  over blocks (signed, so a consistent halo adds up and the texture does not), as an absolute value, and
  by its consistency along the contour (median over MAD across blocks). The frame border is not a
  contour. A blur across the contour is taken out with the same bands outside the mask (a blur moves
  both sides towards each other, a halo only the inside). NaN without a contour.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from . import order
from .order import running_min
from .rows import on_rows

__all__ = ["SIDES", "edge_scores", "mask_seam_parts", "mask_seam_score", "phase_shift"]

#: Largest lattice period (px) at which the seam's reference band moves one period deeper: beyond it the
#: band leaves the contour's neighbourhood and reads the lighting's change instead (generated walls read
#: at 32 px, seeds 1 and 11, gained a seam with a 48-px limit; the tiles it must serve were 12-26 px).
_MAX_PHASE_SHIFT_PX = 28.0

#: A wall whose period is too long for a multiple in ``gap + ref`` … ``_MAX_PHASE_SHIFT_PX`` is compared one
#: period deeper up to this period (eighth sitting: clean wallpaper, penny and tile walls at 29-42 px, laid
#: from the floor or ceiling line, read a consistent 9-20 % offset at 6-10 px and none one period deeper;
#: generated v8 seed 22 had 4 such false seams). The confirmation (``_CONFIRM_RATIO``) keeps a halo that the
#: deeper band sees too.
_MAX_PERIOD_SHIFT_PX = 48.0

#: The deeper band confirms the 6-10 px band's offset when it has the same sign and at least this share of it
#: (0.5 until the eighth sitting: a penny wall laid from its contour read -0.068 at 6-10 px and -0.038 one
#: period deeper, confirmed, a false seam; the 70 halos of generated v8 seeds 7-8 keep their verdicts).
_CONFIRM_RATIO = 0.75

#: Blocks whose wall and outside levels differ by at least this share of the wall's level estimate the blur
#: across the contour (``mask_seam_parts``' ``mirror``; the floors and ceilings of generated v8 walls differ
#: by 20-80 %, and a share of a smaller contrast is mostly the outside's texture).
_MIRROR_MIN_CONTRAST = 0.1

SIDES = ("left", "right", "top", "bottom")


def _line_stats(x: torch.Tensor, v: torch.Tensor, n_lines: int) -> tuple[torch.Tensor, ...]:
    """Statistics of the first ``n_lines`` lines of ``x`` (``...×H×W``: lines along the last axis, the side at
    line 0; any leading dimensions, e.g. segments × images): mean level, log along-line difference energy,
    log to-next-line difference energy, valid share: each ``...×n_lines``."""
    xs, vs = x[..., : n_lines + 1, :], v[..., : n_lines + 1, :]
    tiny = 1e-8
    xl, vl = xs[..., :n_lines, :], vs[..., :n_lines, :]
    cnt = vl.sum(dim=-1)
    mean = (xl * vl).sum(-1) / cnt.clamp_min(1.0)
    da = (xl[..., 1:] - xl[..., :-1]).square() * vl[..., 1:] * vl[..., :-1]
    ca = (vl[..., 1:] * vl[..., :-1]).sum(-1)
    along = torch.log(da.sum(-1) / ca.clamp_min(1.0) + tiny)
    dp = (xs[..., 1:, :] - xs[..., :-1, :]).square() * vs[..., 1:, :] * vs[..., :-1, :]
    cp = (vs[..., 1:, :] * vs[..., :-1, :]).sum(-1)
    perp = torch.log(dp.sum(-1) / cp.clamp_min(1.0) + tiny)
    return mean, along, perp, cnt / float(x.shape[-1])


def edge_scores(x: torch.Tensor, v: torch.Tensor, *, strip: int = 13, inner: int = 48, reach: int = 160,
                recur: float = 1.25, segments: int = 4) -> dict[str, torch.Tensor]:
    """``edge_left``, ``edge_right``, ``edge_top``, ``edge_bottom`` and ``edge_score`` (robust z units),
    each ``(N,)``, and ``edge_side`` (index into :data:`SIDES`).

    A stripe on one side (an offset, a smear or fine stripes 3–12 px wide) is a *step* in the per-line
    statistics (mean level, log along-line and log to-next-line difference energy) at a boundary 2–``strip``
    px from the side, and it runs the whole length of the side. Each side is cut into ``segments`` pieces
    along its length; in each, the step at boundary ``b`` is the mean of the 2 lines before it minus the
    mean of the 2 lines after it, in robust z units against the steps at the interior boundaries
    (``strip+5``…``strip+inner``: median, 1.4826·MAD, floored). A step counts only with the same sign on
    *every* segment (min over segments): furniture, a frame or a shadow reaching the side only in places is
    not an edge artifact. An edge stripe also does not *recur* further in: grout lines or plank edges
    parallel to the side make the same full-length step once per texture period. So the side's score is,
    over statistics and signs, the largest near-edge step minus ``recur`` times the largest step of the same
    statistic and sign at the boundaries ``strip+5``…``reach`` px in (at most half the shorter image side; 0
    if none is positive; ``recur`` > 1 leaves a margin for tile-to-tile variation of the recurring step): a
    periodic wall's grout line cancels itself, an edge artifact stands above everything further in. A ceiling
    or floor line parallel to the side within ``strip`` px, seen nowhere else, still counts (it cannot be told
    apart). NaN for a side shorter than ``4·segments`` px or too close to the
    opposite one."""
    n_lines = strip + inner
    short = min(x.shape[-2], x.shape[-1])
    lines = max(n_lines, min(reach, short // 2 - 2))
    m = lines + 1  # only the lines near each side are read (flips of thin slices, not of the image)
    xt, vt = x.transpose(-1, -2), v.transpose(-1, -2)
    views = {"top": (x[:, :m], v[:, :m]), "bottom": (x[:, -m:].flip(-2), v[:, -m:].flip(-2)),
             "left": (xt[:, :m], vt[:, :m]), "right": (xt[:, -m:].flip(-2), vt[:, -m:].flip(-2))}
    out: dict[str, torch.Tensor] = {}
    for side in SIDES:
        xs, vs = views[side]
        length = xs.shape[-1]
        if short < n_lines + 2 or length < 4 * segments:
            out[f"edge_{side}"] = torch.full(x.shape[:1], float("nan"), device=x.device, dtype=x.dtype)
            continue
        q = length // segments
        # the segments as a leading axis of one strided view (segments×N×lines×q): one pass of statistics
        xq, vq = (t[..., : segments * q].unflatten(-1, (segments, q)).movedim(-2, 0) for t in (xs, vs))
        mean, along, perp, _share = _line_stats(xq, vq, lines)
        zs = []
        for stat, floor in ((mean, 0.004), (along, 0.1), (perp, 0.1)):
            a = 0.5 * (stat[..., :-1] + stat[..., 1:])  # a[i]: mean of lines i, i+1
            # d[i]: step at boundary i+2 (from 3 on: line 0 alone is not a stripe)
            d = a[..., :-2] - a[..., 2:]
            ins = d[..., strip + 3: n_lines - 3]
            med = ins.median(dim=-1).values
            mad = (ins - med[..., None]).abs().median(dim=-1).values
            # near the side (boundaries 3..strip), then further in (strip+5..lines-1)
            zs.append((d[..., 1:] - med[..., None]) / torch.clamp(1.4826 * mad, min=floor)[..., None])
        segz = torch.stack(zs, dim=1)  # segments×3×N×(lines−3)
        z = torch.nan_to_num(segz, nan=0.0)  # segments×3×N×(lines−3)
        best = torch.zeros(x.shape[:1], device=x.device, dtype=x.dtype)
        for same in (z.amin(dim=0), (-z).amin(dim=0)):  # the same signed step on every segment: 3×N×·
            near = same[..., : strip - 2].amax(dim=-1)
            far = same[..., strip + 2:].amax(dim=-1).clamp_min(0.0)  # recurs one period or more further in
            best = torch.maximum(best, (near - recur * far).amax(dim=0))
        out[f"edge_{side}"] = best
    sides = torch.stack([torch.nan_to_num(out[f"edge_{s}"], nan=0.0) for s in SIDES])
    out["edge_score"] = sides.amax(dim=0)
    out["edge_side"] = sides.argmax(dim=0).to(x.dtype)  # index into SIDES
    return out


def _erode(m: torch.Tensor, r: int) -> torch.Tensor:
    """Erosion of ``N×H×W`` weights in [0, 1] (0/1: binary erosion) by a (2r+1)² square: the minimum over
    the square, separably; outside the frame counts as inside (1)."""
    if r <= 0:
        return m
    k = 2 * r + 1
    return running_min(running_min(F.pad(m, (r, r, r, r), value=1.0), k, -1), k, -2)


def _erode_by(m: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Binary erosion of ``N×H×W`` 0/1 weights (> 0.5) by a (2r+1)² square with a radius per image (``r``:
    ``(N,)`` integers, 0 … ``_MAX_PERIOD_SHIFT_PX + 3``): a box count from one integral image, read with
    per-image offsets (no host synchronisation); outside the frame counts as inside, as in :func:`_erode`
    (``_MAX_PERIOD_SHIFT_PX`` is the larger limit)."""
    n, h, w = m.shape
    pad = int(max(_MAX_PHASE_SHIFT_PX, _MAX_PERIOD_SHIFT_PX)) + 8
    mp = F.pad((m > 0.5).to(torch.int32), (pad, pad, pad, pad), value=1)
    integral = F.pad(mp.cumsum(-1).cumsum(-2), (1, 0, 1, 0)).reshape(n, -1)  # I[a, b] = sum of mp[:a, :b]
    wi = w + 2 * pad + 1
    rr = r.clamp(0, pad - 1).to(torch.long)[:, None, None]
    ys = torch.arange(h, device=m.device)[None, :, None] + pad
    xs = torch.arange(w, device=m.device)[None, None, :] + pad
    y0, y1, x0, x1 = ys - rr, ys + rr + 1, xs - rr, xs + rr + 1

    def at(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return integral.gather(1, (a * wi + b).expand(n, h, w).reshape(n, -1)).reshape(n, h, w)

    count = at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)
    return (count >= (2 * rr + 1).square()).to(m.dtype)


def _band_by(m: torch.Tensor, d: torch.Tensor, *, skip: int, ring: int) -> torch.Tensor:
    """The contour band ``skip + d`` … ``ring + d`` px inside ``N×H×W`` 0/1 weights (> 0.5), ``d`` ``(N,)``
    integers (``skip ≤ ring``): ``_erode_by(m, skip + d) · (1 − _erode_by(m, ring + d))``, ``N×H×W``.
    On the CPU (the radii read on the host) each image is eroded by running minima (:func:`_erode`, the same
    binary erosion: a 0/1 image's box minimum is 1 exactly where its box count is full; outside the frame
    counts as inside in both), and the erosion by ``ring + d`` is that by ``skip + d`` eroded by
    ``ring − skip`` more (Chebyshev boxes compose, and a box point outside the frame reads 1 either way):
    the same 0/1 values without the integral image's four per-pixel gathers."""
    if not order.host_ok(m):  # (the module's attribute: the no-synchronisation test switches it off)
        return _erode_by(m, skip + d) * (1.0 - _erode_by(m, ring + d))
    top = int(max(_MAX_PHASE_SHIFT_PX, _MAX_PERIOD_SHIFT_PX)) + 7  # _erode_by's largest radius
    mb = (m > 0.5).to(m.dtype)
    out = torch.empty_like(mb)
    for i, di in enumerate(d.tolist()):
        r1, r2 = min(max(skip + di, 0), top), min(max(ring + di, 0), top)
        e1 = _erode(mb[i:i + 1], r1)
        torch.mul(e1, 1.0 - _erode(e1, r2 - r1), out=out[i:i + 1])
    return out


def mask_seam_parts(x: torch.Tensor, v: torch.Tensor, *, skip: int = 1, ring: int = 3, gap: int = 6,
                    ref: int = 4, block: int = 32, min_px: int = 16,
                    period_px: torch.Tensor | None = None, mirror: bool = True) -> dict[str, torch.Tensor]:
    """Seam along the mask contour (see the module docstring), each ``(N,)``:

    * ``mask_seam_score``: ``|median over blocks|`` of the relative offset of the band ``skip``–``ring`` px
      inside the contour against the band ``gap``–``gap+ref`` px inside (the outermost ``skip`` px hold
      pixels mixed with what the mask removed, and JPEG ringing);
    * ``mask_seam_t``: that median over its spread across blocks, ``|med| / (1.4826·MAD + 0.01)``: a halo
      is the same offset all along the contour, texture and shadows differ from block to block;
    * ``mask_seam_agree``: share of blocks whose offset has the median's sign.

    ``period_px`` (``(N,)``, NaN for none): the wall's lattice row spacing. A tiled wall is laid from its
    edges (the floor and ceiling lines are rows of the texture), so its rows run along the contour at a
    fixed phase: the contour band sits on one part of the tile or brick (its edge, or the mortar) and the
    reference band on another, a consistent offset with no seam. Where a multiple ``m·P`` (``m`` = 1…4) of
    the period falls in ``gap + ref`` … 28 px (or else the period itself up to 48 px,
    ``_MAX_PERIOD_SHIFT_PX``), the reference band is the contour band ``D`` px deeper
    instead (``skip + D``–``ring + D`` px, ``D`` the rounded multiple whose rounding error plus ``0.1·m``
    is least: brick courses of 8.2 px are compared 16 px deeper): the same phase of the texture, and outside
    any halo a few px wide — unless it confirms the 6–10 px band's median offset (the same sign and at least
    three quarters of it, ``_CONFIRM_RATIO``: then no texture phase made that offset, and the 6–10 px band's
    figures are kept; the deeper band also crosses lighting changes and the lines of a 1-D texture that runs
    across the contour).
    The deeper band may lie in the contour block's neighbour, so each ``block``-px block
    of the contour band is compared with the deeper band's mean over its 3×3-block neighbourhood: the
    offsets stay per ``block`` px of contour, so their spread (``mask_seam_t``) is on the same scale as
    without a period (blocks 3× as large, the fifth sitting's rule, halved that spread and lifted ``t``
    ≈ 1.5–2.5× on antialiased and angled clean walls: 3 of 40 clean walls of generated seed 5 alarmed).

    ``mirror`` (ninth sitting): the blur across the contour is taken out of each block's offset. A blur
    wider than the ``skip`` px (an antialiased downscale, a ×2 upsampling: σ ≈ 1–1.5 px) mixes what lies
    outside the mask into the contour band and what lies inside into the outside's, by about the same
    share for a symmetric blur. The same ``skip``–``ring`` and ``gap``–``gap+ref`` bands outside the mask
    give, per block, the wall–outside contrast ``c = m_f − m_of`` and the outside band's shift towards the
    wall ``m_o − m_of``; the image's blur share is the median of ``shift / c`` over the blocks with
    ``|c| ≥ _MIRROR_MIN_CONTRAST·|m_f|`` (clipped to [0, 0.5]; 0 without such blocks), and each block's
    offset that goes towards the outside's level (a blur's direction; not a dark line along both sides of
    the contour) gets ``share·c`` added. A halo is an offset of the wall alone: the outside does not move, the
    share stays near 0 on a sharp image, and one figure per image keeps the outside's own texture (a shadow,
    a furniture edge in one block) out of the wall's offsets. Generated v8 seed 23: four antialiased twins
    of aliasing walls (a dark floor or ceiling 70 % below the wall) read 7–11 % at 1–3 px, t 1.8–2.3 (the
    offset decaying ×2–3 per px, as a blur's does), a false seam each (docs/tiling.md §7).

    NaN where there is no contour (or fewer than 4 blocks with both bands)."""
    e_skip = _erode(v, skip)
    e_ring = _erode(v, ring)
    band_ring = e_skip * (1.0 - e_ring)
    band_ref = _erode(v, gap) * (1.0 - _erode(v, gap + ref))
    outside = None
    if mirror:  # the same bands on the far side of the contour (the frame's outside counts as outside)
        o = 1.0 - v
        outside = (_erode(o, skip) * (1.0 - _erode(o, ring)), _erode(o, gap) * (1.0 - _erode(o, gap + ref)))
    # (the contour band's and the outside bands' block sums serve both readings below)
    rs = _ring_sums(x, band_ring, outside, block=block)
    out = _contour_offsets(x, rs, band_ref, block=block, min_px=min_px)
    if period_px is None:
        out.pop("_median")
        return out
    pp = period_px.to(x.dtype)
    d, use = phase_shift(pp, lo=gap + ref)
    # a period too long for a multiple in that range: one period deeper, up to _MAX_PERIOD_SHIFT_PX
    d1, use1 = phase_shift(pp, lo=gap + ref, hi=_MAX_PERIOD_SHIFT_PX, max_multiple=1)
    d, use = torch.where(use, d, d1), use | use1

    def deeper_offsets(i: torch.Tensor | None) -> dict[str, torch.Tensor]:
        r = slice(None) if i is None else i
        deeper = _band_by(v[r], d[r], skip=skip, ring=ring)
        # the deeper band's mean over each block's 3x3 neighbourhood (it may have left the contour band's
        # block)
        return _contour_offsets(x[r], rs.rows(r), deeper, block=block, min_px=min_px, pool_ref=True)

    # (read only where a deeper band is used: on the CPU the other images are not computed)
    shifted = on_rows(use, deeper_offsets, fills=dict.fromkeys(out, float("nan")), like=x)
    # the deeper band confirms the 6-10 px band's offset (same sign, _CONFIRM_RATIO of it): no texture phase
    # made it, and the 6-10 px band's figures stand (the deeper band also crosses lighting and 1-D lines)
    mp, ms = out.pop("_median"), shifted.pop("_median")
    confirmed = (mp * ms > 0) & (ms.abs() >= _CONFIRM_RATIO * mp.abs())
    return {k: torch.where(use & ~confirmed, shifted[k], out[k]) for k in out}


def phase_shift(period_px: torch.Tensor, *, lo: float, hi: float = _MAX_PHASE_SHIFT_PX,
                max_multiple: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The depth (px) at which the texture repeats its phase along the contour: ``(D, use)``, each ``(N,)``.

    ``D`` is ``round(m·P)`` for the multiple ``m`` (1 … ``max_multiple``) of ``period_px`` ``P`` in
    [``lo``, ``hi``] whose rounding error plus ``0.1·m`` (the period's own error grows with ``m``) is least;
    ``use`` is False (and ``D`` 0) where no multiple falls in that range or ``P`` is NaN."""
    m = torch.arange(1, max_multiple + 1, device=period_px.device, dtype=period_px.dtype)
    p = torch.nan_to_num(period_px, nan=0.0, posinf=0.0, neginf=0.0)[:, None]
    cand = p * m[None, :]
    ok = (cand >= lo) & (cand <= hi) & (p > 0)
    err = (cand - cand.round()).abs() + 0.1 * m[None, :]
    cost = torch.where(ok, err, torch.full_like(cand, float("inf")))
    best = cost.argmin(dim=1, keepdim=True)
    use = ok.any(dim=1)
    d = torch.where(use, cand.gather(1, best)[:, 0].round(), torch.zeros_like(period_px)).long()
    return d, use


class _RingSums(NamedTuple):
    """:func:`_ring_sums`' block sums, each ``N×(H//block)×(W//block)``."""

    ring: torch.Tensor  # x·band_ring
    weight: torch.Tensor  # band_ring
    outside: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None  # x·ring, ring, x·ref, ref

    def rows(self, r: Any) -> _RingSums:
        """The sums of the images ``r`` (an index or a slice)."""
        o = self.outside
        out = None if o is None else (o[0][r], o[1][r], o[2][r], o[3][r])
        return _RingSums(self.ring[r], self.weight[r], out)


def _block_sums(t: torch.Tensor, k: int) -> torch.Tensor:
    """Sums of ``N×H×W`` ``t`` over its whole ``k×k`` blocks: ``N×(H//k)×(W//k)``."""
    h, w = t.shape[-2:]
    return F.avg_pool2d(t[:, None, :(h // k) * k, :(w // k) * k], k)[:, 0] * float(k * k)


def _ring_sums(x: torch.Tensor, band_ring: torch.Tensor, outside: tuple[torch.Tensor, torch.Tensor] | None,
               *, block: int) -> _RingSums:
    """The block sums of :func:`_contour_offsets` that do not depend on the reference band: ``x·band_ring``,
    ``band_ring`` and (with ``outside``: its ``(ring, ref)`` bands) ``x·ring``, ``ring``, ``x·ref``, ``ref``
    outside the contour (None without), each ``N×(H//block)×(W//block)``."""
    s_r, c_r = _block_sums(x * band_ring, block), _block_sums(band_ring, block)
    if outside is None:
        return _RingSums(s_r, c_r, None)
    return _RingSums(s_r, c_r, (_block_sums(x * outside[0], block), _block_sums(outside[0], block),
                                _block_sums(x * outside[1], block), _block_sums(outside[1], block)))


def _contour_offsets(x: torch.Tensor, ring_sums: _RingSums, band_ref: torch.Tensor, *, block: int,
                     min_px: int, pool_ref: bool = False) -> dict[str, torch.Tensor]:
    """The block-by-block relative offset of the contour band (``ring_sums``: :func:`_ring_sums`) against
    ``band_ref`` (``N×H×W`` weights) and its summaries (:func:`mask_seam_parts`' keys), each ``(N,)``.
    ``pool_ref``: the reference band's mean over each block's 3×3-block neighbourhood (inside the frame)
    instead of over the block. With the outside bands' sums (``mirror``), the image's blur share times
    each block's wall–outside contrast is added to its offset (:func:`mask_seam_parts`' ``mirror``)."""
    k = block
    n = x.shape[0]

    def around(t: torch.Tensor) -> torch.Tensor:  # sums over the 3x3 neighbourhood of block sums
        return F.avg_pool2d(t[:, None], 3, stride=1, padding=1, count_include_pad=True)[:, 0] * 9.0

    s_r, c_r, outs = ring_sums
    s_f, c_f = _block_sums(x * band_ref, k), _block_sums(band_ref, k)
    if pool_ref:
        s_f, c_f = around(s_f), around(c_f)
    ok = (c_r >= min_px) & (c_f >= min_px)
    m_r = s_r / c_r.clamp_min(1.0)
    m_f = s_f / c_f.clamp_min(1.0)
    diff = m_r - m_f
    if outs is not None:
        s_o, c_o, s_of, c_of = outs
        has = (c_o >= min_px) & (c_of >= min_px)
        m_of = s_of / c_of.clamp_min(1.0)
        contrast = m_f - m_of  # the wall's level against the outside's, per block
        # the image's blur: the median share of that contrast by which the outside band moved towards the
        # wall, over the blocks with a contrast (one figure per image: the outside's own texture, a shadow
        # or an edge of furniture in one block, does not enter the wall's offsets)
        strong = ok & has & (contrast.abs() >= _MIRROR_MIN_CONTRAST * m_f.abs().clamp_min(0.02))
        share = torch.where(strong, (s_o / c_o.clamp_min(1.0) - m_of) / torch.where(strong, contrast, 1.0),
                            torch.full_like(contrast, float("nan"))).reshape(n, -1).nanmedian(dim=1).values
        share = torch.nan_to_num(share, nan=0.0).clamp(0.0, 0.5)
        # a blur moves the wall towards the outside's level: a block whose offset goes the other way (a dark
        # line along the contour, on both sides of it) is not corrected
        blur = has & (diff * contrast < 0)
        diff = diff + torch.where(blur, share[:, None, None] * contrast, torch.zeros_like(contrast))
    rel = diff / m_f.abs().clamp_min(0.02)
    rel = torch.where(ok, rel, torch.full_like(rel, float("nan"))).reshape(n, -1)
    med = rel.nanmedian(dim=1).values
    mad = (rel - med[:, None]).abs().nanmedian(dim=1).values
    agree = torch.nanmean(torch.where(ok.reshape(n, -1), ((rel * torch.sign(med[:, None])) > 0).to(x.dtype),
                                      torch.full_like(rel, float("nan"))), dim=1)
    enough = ok.reshape(n, -1).sum(dim=1) >= 4
    nan = torch.full_like(med, float("nan"))
    return {"_median": torch.where(enough, med, nan), "mask_seam_score": torch.where(enough, med.abs(), nan),
            "mask_seam_t": torch.where(enough, med.abs() / (1.4826 * mad + 0.01), nan),
            "mask_seam_agree": torch.where(enough, agree, nan)}


def mask_seam_score(x: torch.Tensor, v: torch.Tensor, **kw: Any) -> torch.Tensor:
    """``mask_seam_score`` of :func:`mask_seam_parts`: ``(N,)``."""
    return mask_seam_parts(x, v, **kw)["mask_seam_score"]
