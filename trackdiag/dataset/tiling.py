"""Tiled source textures: the texture's period (the tiling analyzer's f*) and whether it is an exact repetition.

The period comes from :func:`trackdiag.spectral.dominant_period`, the same estimate as the tiling analyzer's
``fundamental_period_px``. A texture is *already tiled* when it equals itself shifted by one period (or two:
the radial f* may sit on a harmonic): the Pearson correlation of the overlapping parts reaches
``tiled_similarity``. Natural periodic walls (bricks, tiles photographed in place) vary from repeat to repeat
and stay well below that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .records import ScanParams

__all__ = ["Periodicity", "centre_crop", "shift_similarity", "periodicity", "period_flags"]


@dataclass(frozen=True)
class Periodicity:
    period_px: float
    score: float
    similarity: float  # best correlation of the image with itself shifted by a multiple of the period
    shift: tuple[int, int]  # (dx, dy) of that shift


def centre_crop(gray: np.ndarray, max_side: int) -> np.ndarray:
    """The centre ``min(H, max_side) × min(W, max_side)`` part of an ``H×W`` array (no resampling)."""
    h, w = gray.shape
    ch, cw = min(h, max_side), min(w, max_side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return gray[y0:y0 + ch, x0:x0 + cw]


def shift_similarity(gray: np.ndarray, dx: int, dy: int) -> float:
    """Pearson correlation between ``gray`` and itself shifted by ``(dx, dy) >= 0`` over the overlap.

    NaN when the overlap is less than half the image along the shifted axis or has no variance.
    """
    h, w = gray.shape
    if dx < 0 or dy < 0 or dx > w // 2 or dy > h // 2 or (dx == 0 and dy == 0):
        return float("nan")
    a = gray[dy:, dx:].astype(np.float64)
    b = gray[: h - dy, : w - dx].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _candidate_shifts(period: float) -> list[int]:
    out: set[int] = set()
    for k in (1, 2):
        base = int(round(k * period))
        out.update(s for s in (base - 1, base, base + 1) if s > 0)
    return sorted(out)


def periodicity(gray: np.ndarray, *, max_side: int = 1024) -> Periodicity:
    """Period (``dominant_period``) and repetition similarity of an ``H×W`` float image (centre crop)."""
    import torch

    from ..spectral import dominant_period

    crop = centre_crop(np.asarray(gray, np.float32), max_side)
    est = dominant_period(torch.from_numpy(np.ascontiguousarray(crop))[None])
    period = float(np.asarray(est.period_px, dtype=np.float64).reshape(-1)[0])
    score = float(np.asarray(est.score, dtype=np.float64).reshape(-1)[0])
    best, shift = float("nan"), (0, 0)
    if math.isfinite(period) and period >= 2:
        for s in _candidate_shifts(period):
            for dx, dy in ((s, 0), (0, s)):
                sim = shift_similarity(crop, dx, dy)
                if math.isfinite(sim) and not (sim <= best):
                    best, shift = sim, (dx, dy)
    return Periodicity(period, score, best, shift)


def period_flags(per: Periodicity, *, image_size: tuple[int, int], params: ScanParams) -> list[tuple[str, str]]:
    """``tiled_texture``, ``period_too_small``, ``period_too_large`` for one image (``image_size`` = W, H).

    Period limits apply only to textures that are periodic (``score >= periodic_score``) or tiled: the crop
    side is ``crop_size`` (default: the image's shorter side), resized to ``train_size`` for training.
    """
    p = params
    out: list[tuple[str, str]] = []
    tiled = math.isfinite(per.similarity) and per.similarity >= p.tiled_similarity
    if tiled:
        out.append(("tiled_texture", f"repeats itself after dx={per.shift[0]}, dy={per.shift[1]} px "
                                     f"(correlation {per.similarity:.3f}; period {per.period_px:.1f} px)"))
    periodic = tiled or (math.isfinite(per.score) and per.score >= p.periodic_score)
    if not periodic or not math.isfinite(per.period_px) or per.period_px <= 0:
        return out
    crop = float(p.crop_size or min(image_size))
    train = float(p.train_size or crop)
    effective = per.period_px * train / crop
    repeats = crop / per.period_px
    if effective < p.min_period_px:
        out.append(("period_too_small", f"period {per.period_px:.1f} px is {effective:.1f} px at the training "
                                        f"resolution (minimum {p.min_period_px:g})"))
    if repeats < p.min_repeats:
        out.append(("period_too_large", f"period {per.period_px:.1f} px repeats only {repeats:.1f}× in a "
                                        f"{crop:.0f} px crop (minimum {p.min_repeats:g})"))
    return out
