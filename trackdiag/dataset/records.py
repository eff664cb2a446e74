"""Check names, parameters and the small per-image record that workers send back.

Check names are stable snake_case strings: they appear in ``flagged.csv`` and ``summary.json`` and users
filter on them. Add new names at the end; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

__all__ = ["CHECKS", "DATASET_LEVEL", "Flag", "ImageRecord", "MaskRecord", "ScanParams"]

#: Every check, with what it means. ``docs/dataset.md`` lists the same names.
CHECKS: dict[str, str] = {
    "corrupt": "the image file cannot be opened or decoded",
    "mask_missing": "--mask was given but no mask has the image's relative path and stem",
    "mask_unreadable": "the mask file cannot be opened or decoded",
    "mask_size_mismatch": "the mask's size differs from the image's",
    "mask_empty": "(almost) no pixel of the mask is wall (> 0.5)",
    "mask_full": "(almost) every pixel of the mask is wall",
    "mask_not_binary": "many mask pixels are neither black nor white (soft, resized or JPEG-compressed mask)",
    "mask_inverted": "the mask agrees with the dataset's typical mask only when inverted (probably inverted)",
    "mask_fragmented": "the wall is split into many pieces (speckle noise in the mask)",
    "mask_holes": "the wall has many holes (pinholes in the mask)",
    "mask_offset": "the mask's border lines up with the image's edges only after a shift of a few pixels",
    "dark": "mean brightness is a low outlier (robust z-score) or below the absolute floor",
    "bright": "mean brightness is a high outlier (robust z-score) or above the absolute ceiling",
    "low_contrast": "RMS contrast is a low outlier (robust z-score) or below the absolute floor",
    "duplicate": "same pixels as another image (the first one in path order is kept unflagged)",
    "near_duplicate": "perceptual hash within a few bits of another image",
    "tiled_texture": "the texture is an exact repetition of a smaller tile (already tiled source)",
    "period_too_small": "the texture's period is too small for the training resolution (aliasing risk)",
    "period_too_large": "the crop holds too few repeats of the texture's period to learn it",
    "crop_bias": "dataset level: the mask centroids concentrate away from the centre of the frame",
    "check_error": "a check raised an unexpected error on this file (the reason has it); the others ran",
}

#: Checks that describe the whole dataset; their ``flagged.csv`` rows carry the images folder as the path.
DATASET_LEVEL = frozenset({"crop_bias"})


@dataclass(frozen=True)
class Flag:
    path: str
    check: str
    reason: str

    def __post_init__(self) -> None:
        if self.check not in CHECKS:  # pragma: no cover - programming error
            raise ValueError(f"unknown check name {self.check!r}")


@dataclass
class MaskRecord:
    """Per-mask numbers (all small)."""

    width: int
    height: int
    coverage: float  # share of pixels > 0.5
    nonbinary_frac: float  # share of pixels strictly between 0.02 and 0.98
    max_value: float
    fragments: int  # 8-connected wall components
    holes: int  # background components enclosed by the wall
    centroid_x: float  # wall centroid, 0..1 of the width (NaN when empty)
    centroid_y: float
    thumb: Optional[np.ndarray] = None  # 16×16 uint8 block mean (dataset prior, inversion check)
    offset_dx: int = 0  # best shift of the mask border onto image edges
    offset_dy: int = 0
    offset_gain: float = float("nan")  # edge strength at the best shift / at no shift


@dataclass
class ImageRecord:
    """What one worker learns about one image. Pixel data never leaves the worker."""

    path: str
    mask_path: Optional[str] = None
    error: Optional[str] = None
    width: int = 0
    height: int = 0
    brightness: float = float("nan")  # mean luma in [0, 1]
    contrast: float = float("nan")  # std of luma (RMS contrast)
    content_hash: str = ""  # SHA-256 (128 bits) of the decoded pixels: equal ⇔ identical image
    phash: int = 0  # 64-bit perceptual hash (imagehash.phash)
    period_px: float = float("nan")
    period_score: float = float("nan")
    repeat_similarity: float = float("nan")  # correlation of the image with itself shifted by one period
    repeat_shift: tuple[int, int] = (0, 0)
    luma_hist: Optional[np.ndarray] = None  # 64-bin pixel histogram, summed by the parent then dropped
    mask: Optional[MaskRecord] = None
    flags: list[tuple[str, str]] = field(default_factory=list)  # (check, reason) decided per image


@dataclass
class ScanParams:
    """Thresholds of every check (see ``docs/dataset.md``)."""

    # photometry
    z_threshold: float = 3.5
    min_images_for_stats: int = 8
    brightness_scale_floor: float = 0.02  # robust sigma never below this (a very uniform dataset)
    contrast_scale_floor: float = 0.01
    dark_abs: float = 0.06
    bright_abs: float = 0.94
    low_contrast_abs: float = 0.02
    # duplicates
    near_duplicate_bits: int = 4  # phash Hamming distance (of 64 bits) for a near duplicate
    # masks
    empty_frac: float = 0.001
    full_frac: float = 0.999
    nonbinary_frac: float = 0.02
    max_fragments: int = 8
    max_holes: int = 8
    max_offset_px: int = 4  # mask/image shifts searched: ±this many pixels
    min_offset_px: int = 2  # smaller shifts are annotation noise, not a misaligned mask
    offset_gain: float = 1.5
    inverted_corr: float = 0.3
    # crop bias
    #: Distance of the mean centroid from the frame centre (fraction of the frame).
    crop_bias_offset: float = 0.15
    # periodicity
    analysis_max_side: int = 1024  # centre crop for the period estimate
    #: The period is estimated on a 2×2-averaged luminance first and measured again at full resolution only
    #: below this many source px (0: always at full resolution).
    coarse_period_min_px: float = 24.0
    periodic_score: float = 0.5  # dominant_period score: walls ≥ 0.5, aperiodic surfaces ≈ 0 (docs/tiling.md)
    tiled_similarity: float = 0.97  # correlation with itself shifted by one period → already tiled
    tiled_margin: float = 0.2  # ... and the half shift must match at least this much worse
    crop_size: int = 0  # training crop side in source pixels (0 = the image's shorter side)
    train_size: int = 0  # side the crop is resized to for training (0 = crop_size, no resize)
    min_period_px: float = 6.0  # at training resolution
    min_repeats: float = 2.0  # repeats of the period across the crop
    # tiers
    spectral_tier: bool = True  # False: photometry, hashes and masks only (no period)
