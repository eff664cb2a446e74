"""Stride-grid and checkerboard estimators that work at any texture period and name the stride.

Pure batched functions on ``N×H×W`` luminance with ``N×H×W`` 0/1 validity weights.

* :func:`parity_gain` (stride 2, the transposed-convolution checkerboard): a ×2 transposed convolution
  whose kernel overlaps unevenly gives the output's pixel parities different gains, ``y = s·(1 + a·c)``
  with a carrier ``c = (−1)^x``, ``(−1)^y`` or ``(−1)^(x+y)``. Demodulation: the block means (``block``
  px) of ``y·c`` are ``a·s̄`` while the texture's own content near Nyquist averages out; the gain ``a``
  of each carrier is the least-squares ratio ``Σ M_c·S / Σ S²`` over the fully valid blocks (``S`` the
  block means of ``y``), i.e. the imbalance *relative to the local signal*, whatever the texture's
  period. The score is ``sqrt(a_x² + a_y² + a_xy²)``: half the relative gain difference between parities.
  A bilinear ×2 upsampler has equal gains (≈ 0).
* :func:`grid_excess` (strides ≥ 4, VAE / token grids): block offsets and seams on a k-px lattice put
  jumps on every k-th line. For each phase φ of the k lines, ``L_φ`` is the mean of
  ``log(D² + ε)`` over the valid neighbour differences ``D`` that cross a line of that phase (both
  directions); the score is ``exp(max_φ L_φ − median_φ L_φ) − 1`` per direction, averaged over the two
  directions: the excess of (geometric-mean) jump energy on the grid lines over the other lines. A texture
  that is not locked to the frame's pixel grid spreads its edges over all phases; a texture whose lattice
  period is a multiple of k and aligned to the frame cannot be told from a grid (the verdict rules use
  the lattice to say so).
"""

from __future__ import annotations

import torch

from ..spectral import box_downsample

__all__ = ["grid_excess", "parity_gain"]


def parity_gain(x: torch.Tensor, valid: torch.Tensor, *, block: int = 8) -> dict[str, torch.Tensor]:
    """Polyphase gain imbalance of the pixel parities (see the module docstring): ``checkerboard_s2`` and
    its three carriers ``parity_gain_x``, ``parity_gain_y``, ``parity_gain_xy`` (signed), each ``(N,)``.

    ``x``: ``N×H×W`` finite luminance; ``valid``: ``N×H×W`` 0/1 float. NaN where no block is fully valid.
    """
    n, h, w = x.shape
    hc, wc = (h // block) * block, (w // block) * block
    x, v = x[:, :hc, :wc], valid[:, :hc, :wc]
    xv = x * v
    dev, dt = x.device, x.dtype
    cy = 1.0 - 2.0 * (torch.arange(hc, device=dev) % 2).to(dt)
    cx = 1.0 - 2.0 * (torch.arange(wc, device=dev) % 2).to(dt)
    s = box_downsample(xv, block)
    vb = box_downsample(v, block)
    full = (vb >= 0.999).to(dt)
    den = (s.square() * full).sum(dim=(-2, -1))
    out: dict[str, torch.Tensor] = {}
    tiny = torch.finfo(dt).tiny
    for name, carrier in (("x", cx[None, None, :]), ("y", cy[None, :, None]),
                          ("xy", cy[None, :, None] * cx[None, None, :])):
        m = box_downsample(xv * carrier, block)
        out[f"parity_gain_{name}"] = (m * s * full).sum(dim=(-2, -1)) / den.clamp_min(tiny)
    score = torch.sqrt(torch.stack(list(out.values())).square().sum(dim=0))
    ok = den > 0
    nan = torch.full_like(score, float("nan"))
    out = {k: torch.where(ok, v_, nan) for k, v_ in out.items()}
    out["checkerboard_s2"] = torch.where(ok, score, nan)
    return out


def _win_rates(d: torch.Tensor, pair: torch.Tensor, k: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per phase, the share of blocks in which that phase's line has the largest |segment-mean jump|.

    ``d``, ``pair``: ``N×R×L`` differences across the last axis (pair ``j`` joins pixels ``j`` and ``j+1``;
    its phase is ``(j+1) mod k``), R rows along the lines. Rows are grouped into segments of ``k`` (a block
    edge) and averaged; columns into blocks of the k phases. A block counts when all its pairs are valid.
    Returns ``(win, blocks)``: ``N×k`` shares and ``(N,)`` block counts."""
    n, r, length = d.shape
    rc = (r // k) * k
    m = (length - (k - 1)) // k
    if rc == 0 or m <= 0:
        z = torch.zeros(n, k, device=d.device, dtype=d.dtype)
        zn = torch.zeros(n, device=d.device, dtype=d.dtype)
        return z, zn, zn
    cols = slice(k - 1, k - 1 + k * m)
    seg = d[:, :rc, cols].reshape(n, rc // k, k, m, k).mean(dim=2).abs()  # N×R'×M×k (phase last)
    ok = pair[:, :rc, cols].reshape(n, rc // k, k, m, k).amin(dim=2).amin(dim=-1) > 0.5  # N×R'×M
    blocks = ok.to(d.dtype).sum(dim=(1, 2))
    # each phase's jump above the block's median jump; the median of that over the valid blocks
    med = seg.median(dim=-1, keepdim=True).values
    exc = seg - med
    exc = torch.where(ok[..., None], exc, torch.full_like(exc, float("nan"))).reshape(n, -1, k)
    level = torch.where(ok[..., None], med, torch.full_like(med, float("nan"))).reshape(n, -1)
    return (torch.nan_to_num(exc.nanmedian(dim=1).values, nan=0.0),
            torch.nan_to_num(level.nanmedian(dim=1).values, nan=0.0), blocks)


def grid_excess(x: torch.Tensor, valid: torch.Tensor, *, strides: tuple[int, ...] = (8, 16)
                ) -> dict[str, torch.Tensor]:
    """Grid-line excess for each stride k (see the module docstring), each ``(N,)``.

    In every k×k block the phase whose line has the largest |mean jump| along the block edge "wins"; a
    texture not locked to the pixel grid lets every phase win about 1/k of the blocks, a grid lets its own
    phase φ* win most. ``grid_s{k}`` = ``win(φ*) − win(φ* + k/2)`` averaged over the two directions (the
    phase half a stride away is the baseline: a grid of stride k/2 wins there too, so ``grid_s16`` of an
    8-px grid is ≈ 0 while ``grid_s8`` of a 16-px grid is about half its ``grid_s16``); 0..1. NaN with
    fewer than 32 valid blocks. ``grid_phase_s{k}``: φ* of the stronger direction (px)."""
    dx = x[..., :, 1:] - x[..., :, :-1]
    px = valid[..., :, 1:] * valid[..., :, :-1]
    dy = (x[..., 1:, :] - x[..., :-1, :]).transpose(-1, -2)
    py = (valid[..., 1:, :] * valid[..., :-1, :]).transpose(-1, -2)
    out: dict[str, torch.Tensor] = {}
    for k in strides:
        scores, phases, enough, levels = [], [], [], []
        for d, p in ((dx, px), (dy, py)):
            win, level, blocks = _win_rates(d, p, k)
            levels.append(level)
            top, arg = win.max(dim=1)
            sib = win.gather(1, ((arg + k // 2) % k)[:, None])[:, 0]
            scores.append(top - sib)
            phases.append(arg.to(x.dtype))
            enough.append(blocks >= 32)
        sc = 0.5 * (scores[0] + scores[1])
        ok = enough[0] & enough[1]
        out[f"grid_s{k}"] = torch.where(ok, sc, torch.full_like(sc, float("nan")))
        out[f"grid_phase_s{k}"] = torch.where(scores[0] >= scores[1], phases[0], phases[1])
    return out
