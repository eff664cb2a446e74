"""Crop bias: where the mask centroids fall in the frame, across the dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CropBias", "crop_bias"]


@dataclass(frozen=True)
class CropBias:
    n: int  # masks with a centroid (coverage strictly between 1 % and 99 %)
    mean_x: float  # mean centroid, 0..1 of the frame
    mean_y: float
    std_x: float
    std_y: float
    offset: float  # distance of the mean centroid from the centre (0.5, 0.5)
    biased: bool
    reason: str


def crop_bias(cx: Sequence[float], cy: Sequence[float], coverage: Sequence[float], *,
              max_offset: float = 0.15, min_masks: int = 8) -> CropBias:
    """Whether the wall sits systematically off-centre in the crops.

    Only masks that are neither (almost) empty nor (almost) full take part: their centroid says where the wall
    was in the crop. The dataset is biased when the mean centroid lies more than ``max_offset`` (a fraction of
    the frame) from the centre; the reason names the direction.
    """
    x, y, c = (np.asarray(v, np.float64) for v in (cx, cy, coverage))
    use = np.isfinite(x) & np.isfinite(y) & (c > 0.01) & (c < 0.99)
    n = int(use.sum())
    if n < min_masks:
        return CropBias(n, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), False,
                        f"too few usable masks ({n} < {min_masks})")
    mx, my = float(x[use].mean()), float(y[use].mean())
    off = float(np.hypot(mx - 0.5, my - 0.5))
    where = []
    if abs(my - 0.5) > max_offset / 2:
        where.append("top" if my < 0.5 else "bottom")
    if abs(mx - 0.5) > max_offset / 2:
        where.append("left" if mx < 0.5 else "right")
    biased = off > max_offset
    reason = (f"mean mask centroid at x={mx:.2f}, y={my:.2f} of the frame ({off:.2f} from the centre"
              + (f", towards the {'-'.join(where)}" if where else "") + f") over {n} masks")
    return CropBias(n, mx, my, float(x[use].std()), float(y[use].std()), off, biased, reason)
