"""Misplaced patches inside an intended edit: regions that repeat another part of the same wall.

A *misplaced* patch is a piece of the wall copied elsewhere (here flipped: turned by 180° or mirrored
top-down). Where its lattice phase happens to match its new place, the lattice phase
(:mod:`trackdiag.functional.pixel_phase`) cannot see it: the mortar lines run on across its border. What a
copy keeps that no clean wall has is its **fine grain**: the photo's grain and sensor noise are unique to each
place of a wall, while a copy repeats them. The wall's lattice repeats its bricks, never its grain, so a
lattice translate (or a mirrored brick) matches the coarse texture but not the grain. Steps (``signal``:
``B×H×W`` luminance of the output, ``region``: ``B×H×W`` bool, the wall):

1. the grain: ``e = signal − its 3×3 mean`` inside the region (eroded by 1 px);
2. candidates: for each transform ``T`` (identity, flip top-down, flip left-right, turn by 180°), the
   whitened (phase) cross-correlation of the faces' grain (``e`` where the Sobel magnitude is below its
   median: the lattice's edges repeat at every lattice translate) with its ``T`` image over all
   displacements ``d``; its ``count`` highest peaks (for the identity, ``|d| > exclude`` px) are the
   displacements where much grain agrees;
3. :func:`copy_ratio`: per pixel, the mean over ``window`` px of ``(e(p) − T(e)(p + d))²`` over the
   smallest such mean against the pixel's own neighbours 2 px away (4 directions): a copy reads ≈ 0, any
   other place ≥ 1. The neighbour baseline keeps one-dimensional structures (a straight mortar line, which
   a flip along it maps onto itself) at ≈ 1, where the grain is what differs;
4. :func:`copy_pairs`: pixels below ``level`` as 8-connected components of ≥ ``min_area`` px, each with its
   *partner* (where ``T`` and ``d`` send it): the copy and its source (a component that its partner
   overlaps by more than half is a strip a flip maps onto itself, dropped);
5. :func:`copy_boxes`: of each pair, the member whose lattice phase departs more on average (the source
   is the wall itself, in phase by definition), grown by ``grow`` px (the window's reach).

What it cannot see: an offset (the content moved inside its own box leaves no second copy), a copy so
processed afterwards (resampled, strongly compressed) that its grain no longer repeats.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .pixel_edit import box_mean, box_sum, shift_fill
from .pixel_translate import edge_magnitude

__all__ = ["TRANSFORMS", "grain", "grain_level", "copy_candidates", "copy_ratio", "copy_pairs", "copy_boxes"]

TRANSFORMS = ("identity", "flip_y", "flip_x", "rot180")


def _apply(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` (``...×H×W``) under a transform of :data:`TRANSFORMS`."""
    if name == "flip_y":
        return x.flip(-2)
    if name == "flip_x":
        return x.flip(-1)
    if name == "rot180":
        return x.flip(-2).flip(-1)
    return x


def grain(signal: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(``e``, ``inner``): ``signal`` (``B×H×W``) less its 3×3 mean (replicate padding), 0 outside ``inner``,
    the region (``B×H×W`` bool) eroded by 1 px."""
    x = signal.float()[:, None]
    e = (x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1))[:, 0]
    inner = -F.max_pool2d(-F.pad(region.float()[:, None], (1, 1, 1, 1), value=0.0), 3, stride=1)[:, 0] > 0.5
    return torch.where(inner, e, torch.zeros_like(e)), inner


def copy_candidates(e: torch.Tensor, *, count: int = 8, exclude: int = 8) -> list[list[tuple[str, int, int]]]:
    """Per sample, ``(transform, dy, dx)`` of the ``count`` highest peaks per transform of the whitened
    cross-correlation ``c(d) = Σ_p e(p) · T(e)(p + d)`` (``e``: ``B×H×W``, zero-padded to ``2H×2W``; for
    the identity, displacements within ``exclude`` px of 0 are left out: every image matches itself)."""
    b, h, w = e.shape
    spec = torch.fft.rfft2(e.double(), s=(2 * h, 2 * w))
    out: list[list[tuple[str, int, int]]] = [[] for _ in range(b)]
    for name in TRANSFORMS:
        cross = spec.conj() * torch.fft.rfft2(_apply(e, name).double(), s=(2 * h, 2 * w))
        c = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=(2 * h, 2 * w))
        if name == "identity":
            r = exclude + 1
            c[:, :r, :r] = c[:, :r, -r:] = c[:, -r:, :r] = c[:, -r:, -r:] = float("-inf")
        idx = c.reshape(b, -1).topk(count, dim=1).indices
        for i in range(b):
            for flat in idx[i].tolist():
                dy, dx = divmod(int(flat), 2 * w)
                out[i].append((name, dy - 2 * h if dy >= h else dy, dx - 2 * w if dx >= w else dx))
    return out


def _faces(signal: torch.Tensor, e: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """``e`` (``B×H×W``) where the output's Sobel magnitude is below its median over ``inner`` (the brick
    faces), 0 elsewhere: the lattice's edges repeat at every lattice translate and would fill the
    correlation's highest peaks on a regular wall; the faces' grain repeats only where it was copied."""
    edges = edge_magnitude(signal)
    out = torch.zeros_like(e)
    for i in range(e.shape[0]):
        if bool(inner[i].any()):
            out[i] = torch.where(inner[i] & (edges[i] < edges[i][inner[i]].median()), e[i], out[i])
    return out


def _self_residual(e: torch.Tensor, inner: torch.Tensor, window: int) -> torch.Tensor:
    """``B×H×W``: the smallest mean over ``window`` px of ``(e(p) − e(p + s))²`` for ``s`` 2 px away
    (4 directions; ``inf`` where under half of the window has both ends inside)."""
    x, m = e[:, None], inner.float()[:, None]
    best = torch.full_like(x, float("inf"))
    for sy, sx in ((0, 2), (2, 0), (2, 2), (2, -2)):
        mv = shift_fill(m, sy, sx, 0.0) * m
        num, cov = box_mean((x - shift_fill(x, sy, sx, 0.0)) ** 2 * mv, window), box_mean(mv, window)
        best = torch.minimum(best, torch.where(cov > 0.5, num / cov.clamp_min(1e-6), best))
    return best[:, 0]


def grain_level(e: torch.Tensor, inner: torch.Tensor, *, window: int = 9) -> torch.Tensor:
    """``()``: twice the wall's median local grain energy (the mean of ``e²`` over ``window`` px, its median
    over ``inner``; 0 where ``inner`` is empty). ``e``, ``inner``: ``H×W``."""
    x, m = e[None, None], inner[None, None]
    return 2.0 * box_mean(x ** 2, window)[m].median() if bool(m.any()) else x.new_tensor(0.0)


def copy_ratio(e: torch.Tensor, inner: torch.Tensor, base: torch.Tensor, name: str, dy: int, dx: int, *,
               window: int = 9, floor: float = 0.02, level: torch.Tensor | None = None) -> torch.Tensor:
    """``H×W``: mean over ``window`` px of ``(e(p) − T(e)(p + d))²`` over ``base`` (the pixel's own
    neighbour residual, :func:`_self_residual`); 1 where under half of the window has both ends inside or
    where the grain is below ``floor`` × ``level`` (:func:`grain_level`, computed when not given: a
    clipped, flat patch matches any other). ``e``, ``inner``, ``base``: ``H×W``."""
    x, m = e[None, None], inner.float()[None, None]
    tx, tm = shift_fill(_apply(x, name), dy, dx, 0.0), shift_fill(_apply(m, name), dy, dx, 0.0) * m
    num, cov = box_mean((x - tx) ** 2 * tm, window), box_mean(tm, window)
    energy = box_mean((x ** 2 + tx ** 2) * tm, window)
    level = grain_level(e, inner, window=window) if level is None else level
    ok = (cov > 0.5) & (energy > floor * level) & torch.isfinite(base[None, None])
    ratio = num / cov.clamp_min(1e-6) / base[None, None].clamp_min(1e-12)
    return torch.where(ok, ratio, torch.ones_like(ratio))[0, 0]


def _copy_ratios(e: torch.Tensor, inner: torch.Tensor, base: torch.Tensor,
                 cands: list[tuple[str, int, int]], *, window: int, level: torch.Tensor,
                 floor: float = 0.02) -> torch.Tensor:
    """``S×H×W``: :func:`copy_ratio` at each of the ``S`` candidates ``(transform, dy, dx)``, as one batch of
    cumulative-sum box sums (:func:`~trackdiag.functional.pixel_edit.box_sum`) over the bounding box of
    ``inner`` (outside it under half of any window is inside: 1, as :func:`copy_ratio` reads there).
    ``e``, ``inner``, ``base``: ``H×W``; ``level``: ``()``."""
    h, w = e.shape
    out = torch.ones(len(cands), h, w, dtype=e.dtype, device=e.device)
    ys, xs = torch.nonzero(inner, as_tuple=True)
    if not cands or ys.numel() == 0:
        return out
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    m = inner.to(e.dtype)
    pad = max(max(abs(dy), abs(dx)) for _, dy, dx in cands)
    moved = {name: (F.pad(_apply(e, name), (pad,) * 4), F.pad(_apply(m, name), (pad,) * 4))
             for name in {c[0] for c in cands}}
    x, mx = e[y0:y1, x0:x1], m[y0:y1, x0:x1]
    tx = torch.stack([moved[n][0][pad + y0 + dy:pad + y1 + dy, pad + x0 + dx:pad + x1 + dx]
                      for n, dy, dx in cands])
    tm = torch.stack([moved[n][1][pad + y0 + dy:pad + y1 + dy, pad + x0 + dx:pad + x1 + dx]
                      for n, dy, dx in cands]) * mx
    k2 = window * window
    num, cov, energy = box_sum(torch.stack([(x - tx) ** 2 * tm, tm, (x ** 2 + tx ** 2) * tm]), window)
    b = base[y0:y1, x0:x1]
    ok = (cov > 0.5 * k2) & (energy > floor * level * k2) & torch.isfinite(b)
    ratio = num / cov.clamp_min(1e-6 * k2) / b.clamp_min(1e-12)
    out[:, y0:y1, x0:x1] = torch.where(ok, ratio, torch.ones_like(ratio))
    return out


def _partner(comp: torch.Tensor, name: str, dy: int, dx: int) -> torch.Tensor:
    """``H×W`` bool: where ``p ↦ T⁻¹(p + d)`` sends the pixels of ``comp`` (``H×W`` bool)."""
    h, w = comp.shape
    ys, xs = torch.nonzero(comp, as_tuple=True)
    qy, qx = ys + dy, xs + dx
    if name in ("flip_y", "rot180"):
        qy = h - 1 - qy
    if name in ("flip_x", "rot180"):
        qx = w - 1 - qx
    ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
    out = torch.zeros_like(comp)
    out[qy[ok], qx[ok]] = True
    return out


def add_pairs(found: list[tuple[torch.Tensor, torch.Tensor]], hot: Any, name: str, dy: int, dx: int, *,
              min_area: int, grow: int = 0, device: torch.device | str = "cpu") -> None:
    """Append to ``found`` the pairs ``(component, partner)`` (``H×W`` bool each) of the 8-connected
    components of ``hot`` (``H×W`` bool numpy array) of at least ``min_area`` px, each grown by ``grow`` px,
    under the relation ``(name, dy, dx)`` (:func:`_partner`). A component sharing most of its pixels with a
    pair already found, or one the relation maps mostly onto itself (a strip on a flip's axis), is skipped."""
    import numpy as np
    from scipy import ndimage

    labels, n = ndimage.label(hot, structure=np.ones((3, 3)))
    for j in range(1, n + 1):
        comp_np = labels == j
        if int(comp_np.sum()) < min_area:
            continue
        if grow > 0:
            comp_np = ndimage.binary_dilation(comp_np, np.ones((2 * grow + 1, 2 * grow + 1)))
        comp = torch.from_numpy(comp_np).to(device)
        if any(int((comp & (a | b)).sum()) > 0.5 * int(comp.sum()) for a, b in found):
            continue
        partner = _partner(comp, name, dy, dx)
        if int((partner & comp).sum()) > 0.5 * int(comp.sum()):
            continue  # a strip the flip maps onto itself (its axis), no copy
        found.append((comp, partner))


def copy_pairs(signal: torch.Tensor, region: torch.Tensor, *, count: int = 8, window: int = 9,
               level: float = 0.25, min_area: int = 250, exclude: int = 8
               ) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per sample, the pairs ``(component, partner)`` (``H×W`` bool each) of regions of at least
    ``min_area`` px whose grain repeats elsewhere in the region (:func:`copy_ratio` below ``level`` at one
    of the :func:`copy_candidates`), one pair per relation (a pair sharing most of a member with one
    already found is dropped). ``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool."""

    e, inner = grain(signal, region)
    base = _self_residual(e, inner, window)
    cands = copy_candidates(_faces(signal, e, inner), count=count, exclude=exclude)
    out: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    for i in range(e.shape[0]):
        found: list[tuple[torch.Tensor, torch.Tensor]] = []
        if int(inner[i].sum()) < 4 * min_area:
            out.append(found)
            continue
        energy = grain_level(e[i], inner[i], window=window)  # one per image, not per candidate
        hot_all = (_copy_ratios(e[i], inner[i], base[i], cands[i], window=window, level=energy)
                   < level).cpu().numpy()
        for (name, dy, dx), hot in zip(cands[i], hot_all, strict=True):
            add_pairs(found, hot, name, dy, dx, min_area=min_area, device=signal.device)
        out.append(found)
    return out


def copy_boxes(signal: torch.Tensor, region: torch.Tensor, departure: torch.Tensor, *, grow: int = 2,
               count: int = 8, window: int = 9, level: float = 0.25, min_area: int = 250,
               blocks: bool = False, block_region: torch.Tensor | None = None) -> torch.Tensor:
    """``B×H×W`` bool: of each pair of :func:`copy_pairs`, the member judged the copy, its component grown by
    ``grow`` px. The copy is the member whose lattice phase departs more on average (``departure``:
    ``B×H×W`` degrees, :func:`~trackdiag.functional.pixel_phase.phase_departure`, NaN read as 0): its source
    is the wall itself, in phase by definition, while a copy carries the phase of another place (even where
    that departure is within the wall's own irregularity). Not restricted to ``region`` (the caller
    intersects it with the wall: a region less its clipped pixels would cut a box into pieces).

    With ``blocks``, the pairs of :func:`~trackdiag.functional.pixel_blocks.block_copy_pairs` (copies
    processed after the copy: resampled, blended, re-compressed) are added where they overlap no pair found
    by the grain by more than half, searched over ``block_region`` (``B×H×W`` bool; default ``region``)."""
    out = torch.zeros_like(region)
    dep = torch.nan_to_num(departure.float(), nan=0.0)
    pairs = copy_pairs(signal, region, count=count, window=window, level=level, min_area=min_area)
    if blocks:
        from .pixel_blocks import block_copy_pairs  # it imports this module

        more_pairs = block_copy_pairs(signal, region if block_region is None else block_region,
                                      min_area=min_area)
        for found, more in zip(pairs, more_pairs, strict=True):
            found.extend((a, b) for a, b in more
                         if not any(int((a & (c | d)).sum()) > 0.5 * int(a.sum()) for c, d in found))
    for i, found in enumerate(pairs):
        for a, b in found:
            if bool(b.any()) and float(dep[i][b].mean()) > float(dep[i][a].mean()):
                a, b = b, a
            out[i] |= a
    if grow > 0:
        k = 2 * grow + 1
        out = F.max_pool2d(out.float()[:, None], k, stride=1, padding=grow)[:, 0] > 0.5
    return out
