"""Defects inside an intended edit, judged against the edited texture's own local statistics.

A re-textured wall differs from the old wall everywhere, so inside an edit the pixel difference to the
input says nothing; the output is judged against *itself*. What is measured here:

* :func:`sharpness_deficit` (smears, lost detail): the finest scale of the texture's local spectrum — the
  local RMS of the 3×3 high-pass (:func:`~trackdiag.functional.pixel_change.texture_activity`), which on a
  textured output is its grain and its sharp edges. A smeared patch has lost both, so its fine-scale energy
  falls far below even the smoothest parts of the texture. The score is the region's ``quantile`` level of
  that energy (the smoothest faces of the texture, grain included) over the local level: ≈ 1 or below on
  the texture, ≫ 1 on a smear (the grain under a σ = 3 px blur keeps about a tenth of its amplitude).

* :func:`chroma_band_level` (bands in colour): a wall's texture varies mostly along one colour direction
  (its own tint: brighter and darker brick and mortar), so the colour plane orthogonal to the wall's mean
  colour (:func:`chroma_plane`) holds little texture; a band offset that is not along the wall's colour
  (a grey or coloured stripe) shows there against that small level. This is the same lattice-translate
  band level, measured on the two chroma components.

Row/column bands inside an edit are judged by :func:`~trackdiag.functional.pixel_texture.band_profile` on
the texture's own lattice residual (see :mod:`trackdiag.functional.pixel_judge`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .pixel_change import QUANT_FLOOR, texture_activity

__all__ = ["sharpness_deficit", "matched_lattice_residual", "matched_lattice_residuals", "band_level",
           "chroma_plane", "chroma_band_level", "chroma_level", "drop_echoes", "box_mean", "box_sum",
           "shift_fill"]


def sharpness_deficit(signal: torch.Tensor, region: torch.Tensor, *, window: int = 7,
                      quantile: float = 0.1) -> torch.Tensor:
    """``B×H×W``: the region's ``quantile`` of the local fine-scale RMS over the local fine-scale RMS
    (``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool; 0 outside the region and for samples whose region
    has fewer than 64 pixels). Both levels are floored at half an 8-bit step, so an image without grain
    scores ≈ 1, not ∞."""
    act = texture_activity(signal, window=window)
    b = signal.shape[0]
    out = torch.zeros_like(signal)
    ok = region & torch.isfinite(act)
    for i in range(b):
        if int(ok[i].sum()) < 64:
            continue
        ref = torch.quantile(act[i][ok[i]].float(), float(quantile)).clamp_min(QUANT_FLOOR)
        out[i] = torch.where(ok[i], ref / act[i].clamp_min(QUANT_FLOOR / 2), torch.zeros_like(act[i]))
    return out


def _translates(vectors: torch.Tensor, *, axis: str, min_step: int, max_len: float, count: int
                ) -> list[tuple[int, int]]:
    """The ``count`` shortest lattice translates ``m·t1 + n·t2`` (``|m|, |n| ≤ 2``, ``vectors``: ``2×2``
    ``(dy, dx)``) that move at least ``min_step`` px across the band direction (along y for ``rows``),
    in ± pairs."""
    t1, t2 = (tuple(float(c) for c in v) for v in vectors)
    cand: dict[tuple[int, int], float] = {}
    for m in range(-2, 3):
        for n in range(-2, 3):
            dy = round(m * t1[0] + n * t2[0])
            dx = round(m * t1[1] + n * t2[1])
            across = abs(dy) if axis == "rows" else abs(dx)
            length = math.hypot(dy, dx)
            if across >= min_step and length <= max_len:
                cand[(dy, dx)] = length
    if not cand:  # no usable lattice: plain steps across the band
        s = 2 * min_step
        cand = {((s, 0) if axis == "rows" else (0, s)): 1.0, ((-s, 0) if axis == "rows" else (0, -s)): 1.0}
    return sorted(cand, key=lambda d: (cand[d], d))[:count]


def shift_fill(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``out[..., y, x] = x[..., y + dy, x + dx]`` (``fill`` beyond the frame)."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    xp = F.pad(x, (p, p, p, p), value=fill)
    return xp[..., p + dy: p + dy + h, p + dx: p + dx + w]


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """``N×C×H×W`` mean over a ``k×k`` box (``k`` odd, zero padding): :func:`box_sum` / ``k²`` (twelfth
    sitting; two separable average poolings before, which cost ``k`` operations per pixel and pass and were
    most of the band step's time; the values agree to float rounding, ~1e-7 of a row's running sum)."""
    return box_sum(x, k) / float(k * k)


def box_sum(x: torch.Tensor, k: int) -> torch.Tensor:
    """``...×H×W`` sum over a ``k×k`` box (``k`` odd, zero padding) as two passes of differences of
    cumulative sums: O(1) per pixel whatever ``k`` (4× faster than :func:`box_mean`'s pooling at 13 px), for
    the many box means of the copy searches. A box over zeros reads exactly 0; elsewhere it equals
    ``k² · box_mean(x, k)`` to float rounding of the running sum (~1e-7 of a row's sum in float32)."""
    r = k // 2
    c = F.pad(x, (r + 1, r)).cumsum(-1)
    c = c[..., k:] - c[..., :-k]
    c = F.pad(c.transpose(-1, -2), (r + 1, r)).cumsum(-1)
    return (c[..., k:] - c[..., :-k]).transpose(-1, -2)


def matched_lattice_residual(signal: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor, *,
                             axis: str, min_step: int = 10, tol: int = 4, window: int = 9, count: int = 4,
                             max_len: float = 80.0) -> torch.Tensor:
    """``B×H×W``: ``signal`` minus the median of its block-matched lattice translates that leave a band of
    rows (``axis="rows"``) or columns: for each translate ``t`` (:func:`_translates`, at least ``min_step``
    px across the band), the pixel at ``x + t + δ`` where ``δ`` (up to ``tol`` px across the band, 1 px
    along it) best matches the
    ``window``-px neighbourhood (the texture drifts with perspective). A band offset by ``a`` keeps ``a``
    here; the texture (mortar lines included) cancels. NaN outside the region or without a translate.

    ``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool; ``vectors``: ``B×2×2`` (``(dy, dx)``)."""
    return matched_lattice_residuals(signal, region, vectors, axis=axis, min_step=min_step, tol=tol,
                                     window=window, count=count, max_len=max_len)[0]


def matched_lattice_residuals(signal: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor, *,
                              axis: str, follow: torch.Tensor | None = None,
                              source: torch.Tensor | None = None, min_step: int = 10, tol: int = 4,
                              window: int = 9, count: int = 4, max_len: float = 80.0
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`matched_lattice_residual` of ``signal`` (``B×H×W``) and, with the **same** matches (each
    pixel's translate and offset chosen on ``signal``), of the ``K`` channels of ``follow`` (``B×K×H×W``,
    e.g. the chroma plane, where the texture is too faint to match on). With ``source`` (``B×H×W`` bool),
    a translate may land only there (default: the region), e.g. not on a band already found, whose
    offset would otherwise echo into the lines one translate away. Returns ``(B×H×W, B×K×H×W)`` (the
    second ``B×0×H×W`` without ``follow``)."""
    b, h, w = signal.shape
    fol = follow if follow is not None else signal.new_zeros(b, 0, h, w)
    out = torch.full_like(signal, float("nan"))
    out_f = torch.full_like(fol, float("nan"))
    k = int(window)
    for i in range(b):
        sig = signal[i][None, None]
        reg = region[i].float()[None, None]
        src = reg if source is None else (source[i] & region[i]).float()[None, None]
        preds, preds_f = [], []
        for dy, dx in _translates(vectors[i], axis=axis, min_step=min_step, max_len=max_len, count=count):
            ty, tx = (tol, 1) if axis == "rows" else (1, tol)
            offs = [(dy + ey, dx + ex) for ey in range(-ty, ty + 1) for ex in range(-tx, tx + 1)]
            mv = torch.cat([shift_fill(sig, oy, ox, 0.0) for oy, ox in offs], dim=1)  # 1×D×H×W
            mr = torch.cat([shift_fill(src, oy, ox, 0.0) for oy, ox in offs], dim=1) * reg
            s, c = box_mean((sig - mv) ** 2 * mr, k), box_mean(mr, k)
            err = torch.where((c > 0.5) & (mr > 0), s / c.clamp_min(1e-6), torch.full_like(s, math.inf))[0]
            best = err.argmin(dim=0, keepdim=True)
            found = torch.isfinite(err.gather(0, best))
            best_val = torch.where(found, mv[0].gather(0, best),
                                   torch.full_like(best, math.nan, dtype=signal.dtype))[0]
            preds.append(best_val)
            for j in range(fol.shape[1]):
                fv = torch.cat([shift_fill(fol[i, j][None, None], oy, ox, 0.0) for oy, ox in offs], dim=1)
                preds_f.append(torch.where(found, fv[0].gather(0, best),
                                           torch.full_like(best, math.nan, dtype=fol.dtype))[0])
        if preds:
            pred = torch.stack(preds).nanmedian(dim=0).values
            out[i] = torch.where(region[i], signal[i] - pred, torch.full_like(pred, math.nan))
            for j in range(fol.shape[1]):
                pf = torch.stack(preds_f[j::fol.shape[1]]).nanmedian(dim=0).values
                out_f[i, j] = torch.where(region[i], fol[i, j] - pf, torch.full_like(pf, math.nan))
    return out, out_f


def band_level(res: torch.Tensor, region: torch.Tensor, *, axis: str, run: int = 3, min_px: int = 16,
               min_share: float = 0.5, signal: torch.Tensor | None = None, kappa: float = 0.15
               ) -> torch.Tensor:
    """``B×L``: the level of a band of rows (``axis="rows"``) or columns in image units: the median
    residual of each line of the region (the median ignores the texture's minority features on a line,
    e.g. a few joints), kept where ``run`` consecutive lines centred on it have the same sign, as the
    smallest ``|median|`` of those lines (0 elsewhere). A band offset by ``a`` over ≥ ``run`` lines gives
    ≈ ``a``; a mispredicted texture line gives a +/− pair of short runs, which this drops. Lines with
    fewer than ``min_px`` measured pixels, or fewer than ``min_share`` of the median line's (a mortar line
    clipped at white leaves only its edges), count as 0.

    With ``signal`` (the image the residual was taken of, ``B×H×W``), each line's median is measured
    against the lattice's *expected line profile*: the prediction ``signal − res`` has its own line profile
    (a mortar line running along the band direction stands ``c`` above or below the texture's typical line),
    and lattice lines differ from period to period by a share of that contrast (one mortar line brighter
    or sharper than its neighbours, one course wider: the translates mispredict it). The level keeps only
    the departure beyond ``kappa · c``: ``sign(m) · max(0, |m| − kappa · c)``. A band across flat brick
    faces (``c ≈ 0``) keeps its amplitude; a clean wall's sharpest mortar line (residual 0.07–0.09 at a
    contrast of 0.25–0.3) no longer reads as a band."""
    dim = 2 if axis == "rows" else 1
    ok = region & torch.isfinite(res)
    vals = torch.where(ok, res, torch.full_like(res, math.nan))
    med = torch.nan_to_num(vals.nanmedian(dim=dim).values, nan=0.0)
    if signal is not None and kappa > 0:
        pred = torch.where(ok, signal - res, torch.full_like(res, math.nan))
        prof = pred.nanmedian(dim=dim).values  # B×L: the lattice's expected line profile
        contrast = torch.nan_to_num((prof - prof.nanmedian(dim=1, keepdim=True).values).abs(), nan=0.0)
        med = torch.sign(med) * (med.abs() - float(kappa) * contrast).clamp_min(0.0)
    n = ok.sum(dim=dim).float()
    typical = torch.where(n > 0, n, torch.full_like(n, math.nan)).nanmedian(dim=1, keepdim=True).values
    med = torch.where((n >= min_px) & (n >= min_share * typical), med, torch.zeros_like(med))
    k = int(run)
    win = med.unfold(1, k, 1)  # B×(L−k+1)×k
    same = (win > 0).all(dim=2) | (win < 0).all(dim=2)
    level = torch.where(same, win.abs().min(dim=2).values, torch.zeros_like(win[..., 0]))
    return F.pad(level, (k // 2, k - 1 - k // 2))


def chroma_plane(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``B×2×H×W``: ``image`` (``B×3×H×W``) projected on two orthonormal colour directions orthogonal to
    the region's mean colour ``ĉ`` (``region``: ``B×H×W`` bool): ``u1``, the part of neutral grey
    orthogonal to ``ĉ`` (a grey wall: any direction orthogonal to it), and ``u2 = ĉ × u1``. A texture whose
    colour varies along its own tint (``I = g(x) · c``) is 0 here up to noise."""
    b = image.shape[0]
    img = image.float()
    m = region.float()[:, None]
    mean = (img * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3)).clamp_min(1.0)  # B×3
    c = mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-6)
    grey = torch.full_like(c, 3 ** -0.5)
    u1 = grey - (grey * c).sum(dim=1, keepdim=True) * c
    other = torch.tensor([1.0, -1.0, 0.0], device=img.device).expand(b, 3) / 2 ** 0.5
    other = other - (other * c).sum(dim=1, keepdim=True) * c
    u1 = torch.where(u1.norm(dim=1, keepdim=True) > 1e-3, u1, other)  # a grey wall
    u1 = u1 / u1.norm(dim=1, keepdim=True).clamp_min(1e-6)
    u2 = torch.linalg.cross(c, u1, dim=1)
    return torch.einsum("bkc,bchw->bkhw", torch.stack([u1, u2], dim=1), img)


def _line_spread(res: torch.Tensor, region: torch.Tensor, *, axis: str) -> torch.Tensor:
    """``(B,)``: 1.4826 × the MAD over lines of the lines' median residual (``B×H×W``), NaN-safe."""
    dim = 2 if axis == "rows" else 1
    vals = torch.where(region & torch.isfinite(res), res, torch.full_like(res, math.nan))
    med = vals.nanmedian(dim=dim).values  # B×L
    centre = med.nanmedian(dim=1, keepdim=True).values
    return torch.nan_to_num(1.4826 * (med - centre).abs().nanmedian(dim=1).values, nan=0.0)


def _along_spread(res: torch.Tensor, region: torch.Tensor, *, axis: str, smooth: int = 15) -> torch.Tensor:
    """``B×L``: 1.4826 × the MAD **along** each line of its residual (``B×H×W``) averaged over ``smooth`` px
    along the line (NaN-safe, 0 where a line has none): a band moves its lines uniformly, bricks of several
    colours scatter them brick by brick; the average takes out the pixel noise, which the line's median
    already averages over the whole line."""
    dim = 2 if axis == "rows" else 1
    ok = region & torch.isfinite(res)
    x = torch.where(ok, res, torch.zeros_like(res))[:, None]
    k = int(smooth)
    kern = (1, k) if axis == "rows" else (k, 1)
    pad = (k // 2, k // 2, 0, 0) if axis == "rows" else (0, 0, k // 2, k // 2)
    num = F.avg_pool2d(F.pad(x, pad), kern, stride=1)[:, 0]
    cov = F.avg_pool2d(F.pad(ok.float()[:, None], pad), kern, stride=1)[:, 0]
    vals = torch.where(ok & (cov > 0.5), num / cov.clamp_min(1e-6), torch.full_like(res, math.nan))
    med = vals.nanmedian(dim=dim, keepdim=True).values
    return torch.nan_to_num(1.4826 * (vals - med).abs().nanmedian(dim=dim).values, nan=0.0)


def chroma_band_level(image: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor, *, axis: str,
                      kappa: float = 0.15, z_guard: float = 6.0, along_z: float = 3.0) -> torch.Tensor:
    """``B×L``: the band level (:func:`band_level` of :func:`matched_lattice_residual`, image units) of the
    two chroma components (:func:`chroma_plane`) combined as ``√(l1² + l2²)``, kept only where it is at
    least ``z_guard`` × the components' spread of line medians (``√(s1² + s2²)``, :func:`_line_spread`):
    on a wall whose colour varies off its tint (bricks of several colours) the chroma plane carries
    texture of its own, and a line level is judged against it. ``image``: ``B×3×H×W``; ``region``:
    ``B×H×W`` bool; ``vectors``: ``B×2×2``. The matches are those of the luminance (the mean of the
    channels; :func:`matched_lattice_residuals`). All zeros for images with other than 3 channels."""
    length = image.shape[2] if axis == "rows" else image.shape[3]
    if image.shape[1] != 3:
        return torch.zeros(image.shape[0], length, device=image.device)
    ch = chroma_plane(image, region)
    _, res_ch = matched_lattice_residuals(image.float().mean(dim=1), region, vectors, axis=axis, follow=ch)
    return chroma_level(res_ch, ch, region, axis=axis, kappa=kappa, z_guard=z_guard, along_z=along_z)


def chroma_level(res: torch.Tensor, chroma: torch.Tensor, region: torch.Tensor, *, axis: str,
                 kappa: float = 0.15, z_guard: float = 6.0, along_z: float = 3.0) -> torch.Tensor:
    """``B×L``: :func:`chroma_band_level` from the chroma plane ``chroma`` (``B×2×H×W``) and its
    lattice residuals ``res`` (``B×2×H×W``, :func:`matched_lattice_residuals`); ``region``: ``B×H×W``.
    With ``along_z`` > 0 a line's level is kept only where it is also at least ``along_z`` × the spread of
    its residual along the line (:func:`_along_spread`, both components combined): a band offsets a line
    uniformly, a wall of bricks of several colours leaves each line's residual scattered brick by brick."""
    levels, spreads, along = [], [], []
    for j in range(2):
        levels.append(band_level(res[:, j], region, axis=axis, signal=chroma[:, j], kappa=kappa))
        spreads.append(_line_spread(res[:, j], region, axis=axis))
        if along_z > 0:
            along.append(_along_spread(res[:, j], region, axis=axis))
    level = torch.sqrt(levels[0].square() + levels[1].square())
    guard = float(z_guard) * torch.sqrt(spreads[0].square() + spreads[1].square())
    keep = level >= guard[:, None]
    if along_z > 0:
        keep = keep & (level >= float(along_z) * torch.sqrt(along[0].square() + along[1].square()))
    return torch.where(keep, level, torch.zeros_like(level))


def drop_echoes(level: torch.Tensor, vectors: torch.Tensor, *, axis: str, threshold: float,
                ratio: float = 1.0, slack: int = 4, min_step: int = 10, max_len: float = 80.0,
                count: int = 4) -> torch.Tensor:
    """``B×L``: ``level`` (band levels of lines, ``B×L``) with the **echoes** set to 0: a run of lines at
    or above ``threshold`` whose peak is below ``ratio`` × the peak of another run lying one lattice
    translate away across the band (``|Δ|`` within ``slack`` px of a translate's across step,
    :func:`_translates`). Where a line has few translates inside the wall (near its edge), one that
    lands on a band carries part of the band's offset into it with the opposite sign (measured: 0.78 of
    the band's level, one stripe of seed 201 near the wall's edge, whose own level its missing translates
    lower too): of two runs that predict each other, the stronger is the band.
    ``vectors``: ``B×2×2``."""
    thr = float(threshold)
    out = level.clone()
    for i in range(level.shape[0]):
        on = (level[i] >= thr).cpu().numpy()
        if on.sum() == 0:
            continue
        edges = [j for j in range(len(on)) if on[j] and (j == 0 or not on[j - 1])]
        runs = []
        for a in edges:
            b = a
            while b + 1 < len(on) and on[b + 1]:
                b += 1
            runs.append((a, b, float(level[i, a:b + 1].max()), (a + b) / 2.0))
        if len(runs) < 2:
            continue
        steps = {abs(t[0] if axis == "rows" else t[1])
                 for t in _translates(vectors[i], axis=axis, min_step=min_step, max_len=max_len, count=count)}
        for a, b, peak, centre in runs:
            if any(p2 * ratio > peak and any(abs(abs(c2 - centre) - st) <= slack for st in steps)
                   for a2, b2, p2, c2 in runs if (a2, b2) != (a, b)):
                out[i, a:b + 1] = 0.0
    return out
