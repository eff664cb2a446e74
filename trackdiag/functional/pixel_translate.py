"""Where a texture's edges disagree with their own lattice translates (support for phase-departure boxes).

A periodic wall repeats under its lattice vectors ``t1, t2``: its edge image ``E`` (the gradient magnitude,
which per-brick colour variation barely moves) satisfies ``E(x) ≈ E(x + t)``. A patch shifted or copied into
the wall is periodic inside and outside, but the lattice breaks *across* its border, so the residual
``|E(x) − E(x + t)|`` is large within ``|t|`` of the border. On a photographed brick wall, though, the wall's
own irregular joints (head joints off the lattice, a course wider than its neighbours) break it just as much:
measured as a box finder of its own (``benchmarks/eval_pixel_edit.py --step translate``: hot pixels voted at
``x + t/2``, the frame's centre line), it raised boxes on 15–48 of 48 clean walls at every level and matched
a planted box (IoU ≥ 0.5) in ≤ 3 of 48 (seeds 201–204). What it does tell is whether a region the lattice
*phase* marks weakly (:mod:`trackdiag.functional.pixel_phase`) also breaks the edges' lattice more than the
wall does on average: :func:`translate_support`.

``signal``: ``B×H×W`` luminance; ``region``: ``B×H×W`` bool (the wall); ``vectors``: ``B×2×2`` ``(dy, dx)``
(:func:`~trackdiag.functional.pixel_texture.lattice_vectors`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .pixel_edit import box_mean, shift_fill

__all__ = ["edge_magnitude", "translate_residual_z", "translate_support"]


def edge_magnitude(signal: torch.Tensor) -> torch.Tensor:
    """``B×H×W``: the Sobel gradient magnitude of ``B×H×W`` ``signal`` (kernels / 8: a step ``c`` gives
    ``c/2``; replicate padding)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=signal.device) / 8.0
    padded = F.pad(signal.float()[:, None], (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(padded, torch.stack([kx, kx.T])[:, None])
    return g.square().sum(dim=1).sqrt()


def _residual(e: torch.Tensor, reg: torch.Tensor, t: tuple[int, int], tol: int, window: int) -> torch.Tensor:
    """``H×W``: RMS over ``window`` px of ``e(x) − e(x + t + δ)`` for the best ``δ`` within ±``tol`` px
    (``e``, ``reg``: ``H×W``); ``inf`` where under half of the window has both ends in ``reg``."""
    x, m = e[None, None], reg.float()[None, None]
    best = torch.full_like(x, math.inf)
    for ey in range(-tol, tol + 1):
        for ex in range(-tol, tol + 1):
            mv, mr = shift_fill(x, t[0] + ey, t[1] + ex, 0.0), shift_fill(m, t[0] + ey, t[1] + ex, 0.0) * m
            s, c = box_mean((x - mv) ** 2 * mr, window), box_mean(mr, window)
            err = torch.where(c > 0.5, s / c.clamp_min(1e-6), torch.full_like(s, math.inf))
            best = torch.minimum(best, err)
    return best[0, 0].sqrt()


def translate_residual_z(signal: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor, *, tol: int = 2,
                         window: int = 7) -> torch.Tensor:
    """``B×H×W``: the largest (over ``t`` = ±t1, ±t2) robust z of the edge image's lattice-translate
    residual, ``(r_t − median) / (1.4826 · MAD)`` over the region, clamped at 0 (0 outside the region and
    where no translate stays in it). ``r_t``: RMS over ``window`` px of ``E(x) − E(x + t + δ)``, ``δ`` the
    best within ±``tol`` px (the photo's perspective drifts the lattice)."""
    e = edge_magnitude(signal)
    out = torch.zeros_like(e)
    for i in range(e.shape[0]):
        if int(region[i].sum()) < 256:
            continue
        ts = [(round(float(v[0])) * s, round(float(v[1])) * s) for v in vectors[i] for s in (1, -1)]
        for t in dict.fromkeys(ts):
            if t == (0, 0):
                continue
            r = _residual(e[i], region[i], t, tol, window)
            ok = torch.isfinite(r) & region[i]
            if int(ok.sum()) < 64:
                continue
            med = r[ok].median()
            mad = 1.4826 * (r[ok] - med).abs().median()
            z = torch.where(ok, (r - med) / mad.clamp_min(1e-9), torch.zeros_like(r))
            out[i] = torch.maximum(out[i], z.clamp_min(0.0))
    return out


def translate_support(z: torch.Tensor, region: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """``B×H×W``: for each 8-connected component of ``components`` (``B×H×W`` bool), the mean of ``z``
    (:func:`translate_residual_z`) over it divided by the mean over the region (the wall's own level of
    lattice breaks); 0 outside the components. ``z``, ``region``: ``B×H×W``."""
    import numpy as np
    from scipy import ndimage

    out = torch.zeros_like(z)
    comp_np = components.cpu().numpy()
    z_np = z.cpu().numpy()
    for i in range(z.shape[0]):
        wall = float(z_np[i][region[i].cpu().numpy()].mean()) if bool(region[i].any()) else 0.0
        labels, n = ndimage.label(comp_np[i], structure=np.ones((3, 3)))
        if n == 0 or wall <= 0:
            continue
        means = np.asarray(ndimage.mean(z_np[i], labels, range(1, n + 1)), dtype=np.float32)
        ratio = np.concatenate([[0.0], means / wall]).astype(np.float32)
        out[i] = torch.from_numpy(ratio[labels])
    return out.to(z.device)
