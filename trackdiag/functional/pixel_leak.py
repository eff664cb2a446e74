"""Pixel leak as an absolute measure: the change outside the mask in multiples of the image's own noise.

Only meaningful when the output should equal the *unedited input* outside the mask (an edit confined to the
wall); in the training loop, where the output is compared with its target everywhere, it is not computed.

Steps (``pred``, ``inp``: ``B×C×H×W`` in [0, 1]; ``mask``: ``B×H×W`` bool, True = the intended edit):

1. :func:`register_shift`: the integer shift (±``max_shift`` px) that best aligns ``inp`` with ``pred``
   outside the mask (a re-render moved by a pixel is not a leak);
2. :func:`photometric_residual`: per channel, the least-squares fit ``pred ≈ a·inp + b`` outside the mask
   (exposure and white-balance changes are not leaks); the residual, averaged over channels;
3. the local RMS of the residual over ``window`` px; the **noise level** is its median outside the mask
   (noise, compression and resampling errors as they are in this image);
4. :func:`leak_profile`: for every distance ``k = 1 … max_px`` from the mask, the share of the pixels at that
   distance whose local RMS is at least ``level`` × the noise level; the **leak depth** is the largest ``k``
   such that every distance ``1 … k`` has at least ``min_share`` of its pixels hot, less ``window // 2`` (the
   window's own reach). A spill of the edit 4 px beyond the mask at 3× the noise level gives a depth of
   about 4; an edit that stops at the mask gives 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["register_shift", "photometric_residual", "leak_profile", "leak_measure"]


def register_shift(pred: torch.Tensor, inp: torch.Tensor, outside: torch.Tensor, *, max_shift: int = 2
                   ) -> torch.Tensor:
    """``inp`` rolled by the integer shift (per sample, within ±``max_shift``) that minimises the mean
    absolute difference to ``pred`` over ``outside`` (``B×H×W`` bool, eroded by ``max_shift`` first)."""
    b = pred.shape[0]
    best = torch.full((b,), float("inf"), device=pred.device)
    out = inp.clone()
    w = outside.float()[:, None]
    wc = w.clone()
    for _ in range(max_shift):  # stay away from the mask and the frame (rolled-in pixels)
        wc = -F.max_pool2d(-F.pad(wc, (1, 1, 1, 1), value=0.0), 3, stride=1)
    denom = wc.sum(dim=(1, 2, 3)).clamp_min(1.0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            moved = torch.roll(inp, (dy, dx), dims=(-2, -1))
            err = ((pred - moved).abs().mean(dim=1, keepdim=True) * wc).sum(dim=(1, 2, 3)) / denom
            better = err < best - 1e-9
            best = torch.where(better, err, best)
            out = torch.where(better[:, None, None, None], moved, out)
    return out


def photometric_residual(pred: torch.Tensor, inp: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """``B×H×W``: ``pred - (a·inp + b)`` averaged over channels, ``a, b`` fitted per sample and channel
    over ``outside`` (least squares)."""
    w = outside.float()[:, None]
    n = w.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mx = (inp * w).sum(dim=(2, 3), keepdim=True) / n
    my = (pred * w).sum(dim=(2, 3), keepdim=True) / n
    vx = (((inp - mx) ** 2) * w).sum(dim=(2, 3), keepdim=True) / n
    cxy = ((inp - mx) * (pred - my) * w).sum(dim=(2, 3), keepdim=True) / n
    a = torch.where(vx > 1e-8, cxy / vx.clamp_min(1e-8), torch.ones_like(vx))
    return (pred - (a * (inp - mx) + my)).mean(dim=1)


def leak_profile(ratio: torch.Tensor, mask: torch.Tensor, *, level: float = 3.0, max_px: int = 32
                 ) -> torch.Tensor:
    """``B×max_px``: for each distance 1 … ``max_px`` px outside the mask (chessboard rings of the
    dilated mask), the share of its pixels whose ``ratio`` (``B×H×W``) is at least ``level``."""
    m = mask.float()[:, None]
    prev = m
    shares = []
    hot = (ratio >= level).float()[:, None]
    for _ in range(max_px):
        grown = F.max_pool2d(F.pad(prev, (1, 1, 1, 1), value=0.0), 3, stride=1)
        ring = grown - prev
        cnt = ring.sum(dim=(1, 2, 3))
        shares.append(torch.where(cnt > 0, (hot * ring).sum(dim=(1, 2, 3)) / cnt.clamp_min(1.0),
                                  torch.zeros_like(cnt)))
        prev = grown
    return torch.stack(shares, dim=1)


def leak_measure(pred: torch.Tensor, inp: torch.Tensor, mask: torch.Tensor, *, window: int = 5,
                 level: float = 3.0, min_share: float = 0.05, max_px: int = 32, max_shift: int = 2
                 ) -> dict[str, torch.Tensor]:
    """Leak metrics per sample (each ``(B,)``).

    Returns ``leak_px`` (depth of the spill in px, 0 when none), ``leak_level`` (the median local RMS in the
    first ring, in noise levels), ``noise_level`` (the median local RMS of the residual outside the mask, in
    image units) and ``leak_share_1`` (share of the first ring that is hot).
    """
    outside = ~mask
    aligned = register_shift(pred, inp, outside, max_shift=max_shift)
    res = photometric_residual(pred, aligned, outside)
    k = int(window)
    local = F.avg_pool2d(F.pad(res[:, None] ** 2, (k // 2,) * 4, mode="replicate"), k, stride=1)[:, 0].sqrt()
    flat = torch.where(outside, local, torch.full_like(local, float("nan"))).reshape(local.shape[0], -1)
    noise = flat.nanmedian(dim=1).values.clamp_min(0.5 / 255)  # not below 8-bit quantisation
    ratio = local / noise[:, None, None]
    prof = leak_profile(ratio, mask, level=level, max_px=max_px)
    ok = (prof >= min_share).float()
    # the local window carries the change at the mask border k // 2 px outwards: not a spill
    depth = (torch.cumprod(ok, dim=1).sum(dim=1) - k // 2).clamp_min(0)
    first_ring = F.max_pool2d(F.pad(mask.float()[:, None], (1, 1, 1, 1)), 3, stride=1)[:, 0] - mask.float()
    r1 = torch.where(first_ring > 0, ratio, torch.full_like(ratio, float("nan"))).reshape(ratio.shape[0], -1)
    return {"leak_px": depth, "leak_level": r1.nanmedian(dim=1).values, "noise_level": noise,
            "leak_share_1": prof[:, 0]}
