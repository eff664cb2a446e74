"""Brightness and contrast: per-image numbers, and outliers by robust z-scores across the dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import ScanParams

__all__ = ["HIST_BINS", "luma", "image_stats", "level_stats", "robust_z", "RobustStats", "photometry_flags"]

#: Bins of the per-image pixel histogram that the parent sums into the dataset histogram.
HIST_BINS = 64


def luma(rgb: np.ndarray) -> np.ndarray:
    """``H×W×3`` (or ``H×W``) uint8/float → ``H×W`` float32 luma in [0, 1] (ITU-R BT.601 weights)."""
    a = np.asarray(rgb)
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    if a.ndim == 2:
        return a.astype(np.float32) / scale
    w = np.asarray([0.299, 0.587, 0.114], np.float32)
    return (a[..., :3].astype(np.float32) @ w) / scale


def image_stats(gray: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(brightness, contrast, hist)``: mean luma, RMS contrast (std of luma), ``HIST_BINS`` pixel counts."""
    hist = np.bincount(np.clip((gray * HIST_BINS).astype(np.int64), 0, HIST_BINS - 1).reshape(-1),
                       minlength=HIST_BINS)
    return float(gray.mean()), float(gray.std()), hist


def level_stats(counts: np.ndarray) -> tuple[float, float, np.ndarray]:
    """:func:`image_stats` of an 8-bit luma image from its 256-level histogram (``counts[v]`` pixels of
    level ``v``, luma ``v / 255``): the same numbers without another pass over the pixels."""
    c = np.asarray(counts, np.float64)
    n = c.sum()
    levels = np.arange(256, dtype=np.float64) / 255.0
    mean = float(c @ levels / n)
    var = float(c @ np.square(levels - mean) / n)
    bins = np.clip((np.arange(256, dtype=np.float32) / np.float32(255.0) * HIST_BINS).astype(np.int64), 0,
                   HIST_BINS - 1)
    hist = np.bincount(bins, weights=c, minlength=HIST_BINS).round().astype(np.int64)
    return mean, float(np.sqrt(max(var, 0.0))), hist


@dataclass(frozen=True)
class RobustStats:
    median: float
    scale: float  # 1.4826 · MAD, never below the floor


def robust_z(values: Sequence[float], *, floor: float) -> tuple[np.ndarray, RobustStats]:
    """Robust z-scores ``(x - median) / max(1.4826·MAD, floor)`` over the finite values (NaN stays NaN)."""
    x = np.asarray(values, np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.full_like(x, np.nan), RobustStats(float("nan"), float("nan"))
    med = float(np.median(finite))
    scale = max(1.4826 * float(np.median(np.abs(finite - med))), floor)
    return (x - med) / scale, RobustStats(med, scale)


def photometry_flags(brightness: Sequence[float], contrast: Sequence[float], *, params: ScanParams
                     ) -> tuple[list[list[tuple[str, str]]], dict[str, RobustStats]]:
    """Flags ``dark``, ``bright``, ``low_contrast`` per image (same order as the inputs).

    Outliers by robust z (only with at least ``min_images_for_stats`` images), plus absolute floors and
    ceilings that also catch a dataset that is dark as a whole.
    """
    p = params
    zb, sb = robust_z(brightness, floor=p.brightness_scale_floor)
    zc, sc = robust_z(contrast, floor=p.contrast_scale_floor)
    use_z = int(np.isfinite(zb).sum()) >= p.min_images_for_stats
    out: list[list[tuple[str, str]]] = []
    for b, c, z1, z2 in zip(brightness, contrast, zb, zc, strict=True):
        flags: list[tuple[str, str]] = []
        brightness_note = f"mean brightness {b:.3f} (dataset median {sb.median:.3f}, z = {z1:.1f})"
        if np.isfinite(b):
            if b < p.dark_abs or (use_z and z1 <= -p.z_threshold):
                flags.append(("dark", brightness_note))
            elif b > p.bright_abs or (use_z and z1 >= p.z_threshold):
                flags.append(("bright", brightness_note))
        if np.isfinite(c) and (c < p.low_contrast_abs or (use_z and z2 <= -p.z_threshold)):
            flags.append(("low_contrast",
                          f"RMS contrast {c:.3f} (dataset median {sc.median:.3f}, z = {z2:.1f})"))
        out.append(flags)
    return out, {"brightness": sb, "contrast": sc}
