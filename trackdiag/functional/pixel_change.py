"""Change of an unedited pair against the change the local texture explains (defect boxes, localised).

Noise, compression and resampling change a textured image more where the texture is busy (JPEG and a
re-render err at brick edges and mortar seams, not on flat brick faces). A threshold on the raw difference
therefore either merges a defect with the seams around it or misses it on a flat face. Here the change is
measured against the change *expected at that texture activity in this image*:

1. the texture activity ``a``: the local RMS of the input's 3×3 high-pass (``B×H×W``);
2. the change ``c``: the local RMS of the aligned, exposure-corrected difference (``B×H×W``);
3. :func:`expected_change`: the pixels of the region are split into ``bins`` equal-count bins of ``a``; the
   expected change at a pixel is the median ``c`` of its bin (a defect covers a few % of the region, so
   the medians are the texture's own statistics), floored at the 8-bit quantisation level;
4. :func:`relative_change`: ``c / expected`` (1 = as the texture explains; a shifted, smeared or misplaced
   patch gives 5-100).

Segmentation (:func:`close_hot`): the pixels above a threshold, closed over ``close_px`` so that a defect
broken by flat faces stays one component; a component is kept when its peak reaches a higher level
(hysteresis, applied where the components are labelled), and its box is shrunk by the window's reach.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pixel_texture import local_rms

__all__ = ["texture_activity", "expected_change", "relative_change", "close_hot", "close_binary"]

#: Half an 8-bit step: the smallest change an image stored in 8 bits can explain.
QUANT_FLOOR = 0.5 / 255


def texture_activity(image: torch.Tensor, *, window: int = 9) -> torch.Tensor:
    """``B×H×W``: local RMS (over ``window`` px) of ``image`` (``B×H×W``) minus its 3×3 box mean."""
    x = image[:, None]
    hp = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return local_rms(hp[:, 0], window=window)


def expected_change(change: torch.Tensor, activity: torch.Tensor, region: torch.Tensor, *, bins: int = 16
                    ) -> torch.Tensor:
    """``B×H×W``: the median ``change`` of the region's pixels with a similar ``activity`` (``bins``
    equal-count bins of ``activity`` per sample; a pixel outside the region gets its activity's bin too),
    floored at :data:`QUANT_FLOOR`. Samples whose region is empty get the floor."""
    b = change.shape[0]
    out = torch.full_like(change, QUANT_FLOOR)
    ok = region & torch.isfinite(change) & torch.isfinite(activity)
    for i in range(b):
        a, c, m = activity[i], change[i], ok[i]
        if int(m.sum()) < 4 * bins:
            continue
        edges = torch.quantile(a[m].float(), torch.linspace(0, 1, bins + 1, device=a.device)[1:-1])
        idx = torch.bucketize(torch.nan_to_num(a, nan=0.0), edges)
        med = torch.full((bins,), float(c[m].median()), device=a.device)
        for k in range(bins):
            sel = m & (idx == k)
            if bool(sel.any()):
                med[k] = c[sel].median()
        out[i] = med[idx].clamp_min(QUANT_FLOOR)
    return out


def relative_change(diff: torch.Tensor, reference: torch.Tensor, region: torch.Tensor, *, window: int = 9,
                    bins: int = 16) -> torch.Tensor:
    """``B×H×W``: local RMS of ``diff`` over :func:`expected_change` at ``reference``'s texture activity
    (``diff``, ``reference``: ``B×H×W``; ``region``: ``B×H×W`` bool where the statistics are taken);
    0 where the local RMS is undefined."""
    change = local_rms(torch.where(region, diff, torch.full_like(diff, float("nan"))), window=window)
    act = texture_activity(reference, window=window)
    exp = expected_change(change, act, region, bins=bins)
    return torch.nan_to_num(change / exp, nan=0.0)


def close_hot(score: torch.Tensor, threshold: torch.Tensor, *, close_px: int = 5) -> torch.Tensor:
    """``score`` (``B×H×W``) with the gaps of its hot set (``score > threshold``, ``(B,)``) closed over
    ``close_px`` (dilation then erosion): pixels the closing adds get a score just above the threshold."""
    thr = threshold[:, None, None]
    if int(close_px) <= 1:
        return score
    closed = close_binary(score > thr, close_px=close_px)
    return torch.where(closed & (score <= thr), thr * 1.0001 + 1e-6, score)


def close_binary(hot: torch.Tensor, *, close_px: int) -> torch.Tensor:
    """``B×H×W`` bool ``hot`` closed over a ``close_px`` square (dilation then erosion; as is when
    ``close_px <= 1``)."""
    k = int(close_px)
    if k <= 1:
        return hot
    x = hot.float()[:, None]
    grown = F.max_pool2d(F.pad(x, (k // 2,) * 4, value=0.0), k, stride=1)
    closed = -F.max_pool2d(F.pad(-grown, (k // 2,) * 4, value=-1.0), k, stride=1)
    return closed[:, 0, : hot.shape[-2], : hot.shape[-1]] > 0.5
