"""Misplaced patches processed after the copy (resampled, blended, re-compressed): a local block search.

The copied grain (:mod:`trackdiag.functional.pixel_copy`) needs the 1-px grain to repeat; a resampled copy
keeps only a coarser band of it, and the whole-wall (whitened) cross-correlation does not rank its
displacement among its highest peaks (a copy covers ~5 % of the wall; docs/pixel.md, tenth sitting). Here
the displacement is searched **block by block** (``signal``: ``B×H×W`` luminance, ``region``: ``B×H×W``
bool, the wall):

1. :func:`bandpass_grain`: the luminance's band-pass (difference of Gaussians σ ``lo`` − ``hi`` px) on the
   brick faces (pixels whose Sobel magnitude of the σ 1.5-blurred wall is below its median, inside the
   region eroded by 2 px; 0 elsewhere);
2. :func:`block_candidates`: every ``block``-px block of it (step ``stride``, at least ``min_face`` of it
   faces) is matched by normalised cross-correlation against the whole band-pass image under each transform
   (:data:`~trackdiag.functional.pixel_copy.TRANSFORMS`); a block's match counts when it reaches ``level``
   and beats the block's best match more than ``sup`` px away by ``margin`` (a ratio test: a one-
   dimensional structure, a mortar line or a streak, matches all along itself under a flip and is no
   evidence of a copy); displacements that at least ``votes`` blocks within ``reach`` px of each other agree
   on (± ``tol`` px: a resampled copy's displacement drifts over its box) are the candidates;
3. :func:`bandpass_match`: per candidate, the local normalised correlation (``window`` px) of the faces'
   band-pass with its transform at that displacement, best over ± ``radius`` px;
4. :func:`block_copy_pairs`: pixels ≥ ``match`` closed over 5 px, components of ≥ ``min_area`` px grown
   by ``grow`` px (the window's reach), each with its partner (a component its partner overlaps by more
   than half is a flip's axis, dropped), as :func:`~trackdiag.functional.pixel_copy.copy_pairs` returns
   them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pixel_copy import TRANSFORMS, _apply, add_pairs
from .pixel_edit import box_mean, shift_fill
from .pixel_phase import _blur
from .pixel_translate import edge_magnitude

__all__ = ["bandpass_grain", "block_candidates", "bandpass_match", "block_copy_pairs"]


def bandpass_grain(signal: torch.Tensor, region: torch.Tensor, *, lo: float = 0.8, hi: float = 2.0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(``g``, ``faces``, ``inner``), each ``B×H×W``: the band-pass of ``signal`` on the faces (0 elsewhere),
    the faces (bool) and the region eroded by 2 px (bool)."""
    x = signal.float()[:, None]
    g = (_blur(x, lo, lo) - _blur(x, hi, hi))[:, 0]
    inner = -F.max_pool2d(-F.pad(region.float()[:, None], (2, 2, 2, 2)), 5, stride=1)[:, 0] > 0.5
    edges = edge_magnitude(_blur(x, 1.5, 1.5)[:, 0])
    faces = torch.zeros_like(inner)
    for i in range(g.shape[0]):
        if bool(inner[i].any()):
            faces[i] = inner[i] & (edges[i] < edges[i][inner[i]].median())
    return torch.where(faces, g, torch.zeros_like(g)), faces, inner


def _matches(g: torch.Tensor, faces: torch.Tensor, inner: torch.Tensor, *, block: int, stride: int,
             min_face: float, exclude: int, sup: int, min_inner: float = 0.75) -> torch.Tensor:
    """``N×7`` float: per block and transform ``(transform index, by, bx, dy, dx, ncc, second)`` (one image,
    ``H×W`` each): the best normalised correlation of the block with the transformed band-pass image at
    ``(by + dy, bx + dx)`` and the best more than ``sup`` px from it."""
    h, w = g.shape
    k = block
    ok = F.avg_pool2d(inner.float()[None, None], k, stride=stride)[0, 0] >= min_inner
    ok &= F.avg_pool2d(faces.float()[None, None], k, stride=stride)[0, 0] >= min_face
    py, px = (torch.nonzero(ok, as_tuple=True))
    py, px = py * stride, px * stride
    if py.numel() == 0:
        return g.new_zeros(0, 7)
    tb = torch.stack([g[y:y + k, x:x + k] for y, x in zip(py.tolist(), px.tolist(), strict=True)])
    tb = tb / tb.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
    size = (h + k, w + k)  # no wrap-around for the valid top-left corners
    spec = torch.fft.rfft2(tb, s=size).conj()
    hh, ww = h - k + 1, w - k + 1
    yy = torch.arange(hh, device=g.device)[None, :, None]
    xx = torch.arange(ww, device=g.device)[None, None, :]
    rows = []
    for t, name in enumerate(TRANSFORMS):
        img = _apply(g, name)
        c = torch.fft.irfft2(spec * torch.fft.rfft2(img, s=size)[None], s=size)[:, :hh, :ww]
        e2 = F.avg_pool2d((img ** 2)[None, None], k, stride=1)[0, 0] * (k * k)
        ncc = torch.where(e2[None] > 1e-10, c / e2.clamp_min(1e-12).sqrt()[None], torch.full_like(c, -1.0))
        if name == "identity":  # every block matches itself
            ncc = ncc.masked_fill(((yy - py[:, None, None]).abs() <= exclude)
                                  & ((xx - px[:, None, None]).abs() <= exclude), -1.0)
        val, idx = ncc.reshape(len(py), -1).max(dim=1)
        qy, qx = idx // ww, idx % ww
        beside = ((yy - qy[:, None, None]).abs() <= sup) & ((xx - qx[:, None, None]).abs() <= sup)
        second = ncc.masked_fill(beside, -1.0).reshape(len(py), -1).max(dim=1).values
        rows.append(torch.stack([torch.full_like(val, float(t)), py.float(), px.float(), (qy - py).float(),
                                 (qx - px).float(), val, second], dim=1))
    return torch.cat(rows)


def block_candidates(g: torch.Tensor, faces: torch.Tensor, inner: torch.Tensor, *, block: int = 16,
                     stride: int = 8, min_face: float = 0.4, level: float = 0.5, margin: float = 0.2,
                     sup: int = 3, tol: int = 3, reach: int = 40, votes: int = 2, exclude: int = 8,
                     count: int = 6) -> list[list[tuple[str, int, int]]]:
    """Per sample, up to ``count`` ``(transform, dy, dx)`` that at least ``votes`` blocks agree on (most
    votes first; ``g``, ``faces``, ``inner``: ``B×H×W`` from :func:`bandpass_grain`)."""
    out: list[list[tuple[str, int, int]]] = []
    for i in range(g.shape[0]):
        m = _matches(g[i], faces[i], inner[i], block=block, stride=stride, min_face=min_face,
                     exclude=exclude, sup=sup)
        m = m[(m[:, 5] >= level) & (m[:, 5] - m[:, 6] >= margin)]
        found: list[tuple[str, int, int]] = []
        if len(m):
            same = m[:, None, 0] == m[None, :, 0]
            same &= ((m[:, None, 3:5] - m[None, :, 3:5]).abs() <= tol).all(-1)
            same &= ((m[:, None, 1:3] - m[None, :, 1:3]).abs() <= reach).all(-1)
            n = same.sum(dim=1)
            for j in torch.argsort(-n, stable=True).tolist():
                if int(n[j]) < votes or len(found) >= count:
                    break
                name, dy, dx = TRANSFORMS[int(m[j, 0])], int(m[j, 3]), int(m[j, 4])
                if not any(f[0] == name and abs(f[1] - dy) <= tol and abs(f[2] - dx) <= tol for f in found):
                    found.append((name, dy, dx))
        out.append(found)
    return out


def bandpass_match(g: torch.Tensor, faces: torch.Tensor, name: str, dy: int, dx: int, *, window: int = 13,
                   radius: int = 2) -> torch.Tensor:
    """``H×W``: the normalised correlation over ``window`` px of ``g`` (faces only) with ``T(g)`` at
    ``p + (dy, dx) + δ``, best over ``|δ| ≤ radius``; −1 where under 0.3 of the window has faces at both
    ends. ``g``, ``faces``: ``H×W``."""
    x, m = g[None, None], faces.float()[None, None]
    tx0, tm0 = _apply(x, name), _apply(m, name)
    best = torch.full_like(x, -1.0)
    for ey in range(-radius, radius + 1):
        for ex in range(-radius, radius + 1):
            tm = shift_fill(tm0, dy + ey, dx + ex, 0.0) * m
            a, b = x * tm, shift_fill(tx0, dy + ey, dx + ex, 0.0) * tm
            den = (box_mean(a * a, window) * box_mean(b * b, window)).sqrt()
            ok = (box_mean(tm, window) > 0.3) & (den > 1e-12)
            best = torch.maximum(best, torch.where(ok, box_mean(a * b, window) / den.clamp_min(1e-12), -1.0))
    return best[0, 0]


def block_copy_pairs(signal: torch.Tensor, region: torch.Tensor, *, match: float = 0.5,
                     distinct: float = 0.25, away: int = 6, min_area: int = 250, grow: int = 4,
                     window: int = 13) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per sample, the pairs ``(component, partner)`` (``H×W`` bool each) whose band-pass grain matches at
    one of the :func:`block_candidates` (``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool).

    A pixel matches where :func:`bandpass_match` reaches ``match`` and beats the match ``away`` px off the
    displacement (4 directions, best over ±1 px) by ``distinct`` (a one-dimensional structure matches all
    along itself); matching pixels closed over 5 px, components of ≥ ``min_area`` px grown by ``grow`` px
    (the window reads a copy's border low)."""
    import numpy as np
    from scipy import ndimage

    g, faces, inner = bandpass_grain(signal, region)
    cands = block_candidates(g, faces, inner)
    out: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    for i, cand in enumerate(cands):
        found: list[tuple[torch.Tensor, torch.Tensor]] = []
        for name, dy, dx in cand:
            m0 = bandpass_match(g[i], faces[i], name, dy, dx, window=window)
            off = torch.stack([bandpass_match(g[i], faces[i], name, dy + sy, dx + sx, window=window, radius=1)
                               for sy, sx in ((away, 0), (-away, 0), (0, away), (0, -away))]).amax(dim=0)
            hot = ((m0 >= match) & (m0 - off >= distinct) & inner[i]).cpu().numpy()
            add_pairs(found, ndimage.binary_closing(hot, np.ones((5, 5))), name, dy, dx, min_area=min_area,
                      grow=grow, device=signal.device)
        out.append(found)
    return out
