"""Per-image work, run in worker processes: decode, measure, and return a small :class:`ImageRecord`.

Nothing here raises for a bad file: any failure becomes a ``corrupt`` / ``mask_unreadable`` flag, so one
broken file never stops a scan of thousands.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputFileError
from .records import ImageRecord, ScanParams

__all__ = ["Task", "analyze_image", "init_worker"]


@dataclass(frozen=True)
class Task:
    path: str
    mask_path: Optional[str]
    mask_expected: bool  # --masks was given (a missing mask is then flagged)
    params: ScanParams


def init_worker() -> None:
    """Worker-process initialiser: one torch/BLAS thread per process (the pool provides the parallelism).

    Only worker processes are touched; the caller's process keeps its thread settings.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    try:  # BLAS pools were sized when numpy was imported (in the forkserver): shrink them if we can.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{exc.__class__.__name__}: {text}"[:300]


def _open_rgb(path: str) -> tuple[object, np.ndarray]:
    """Decode fully (truncated files fail here, not later). Returns an 8-bit L/RGB PIL image and its array.

    16-bit and float images are scaled to 8 bits by their range (as :func:`trackdiag.io.load_image` does),
    not clipped; other modes (palette, RGBA, CMYK ...) are converted to RGB.
    """
    from PIL import Image

    from ..io import check_image_header

    with Image.open(path) as im:
        check_image_header(im, path)  # a header that claims 50000×50000 is refused before decoding
        im.load()
        if im.mode in ("L", "RGB"):
            im = im.copy()
        elif im.mode.startswith("I") or im.mode == "F":
            arr = np.asarray(im, dtype=np.float32)
            top = 65535.0 if arr.max() > 255 else 255.0
            im = Image.fromarray((np.clip(arr / top, 0, 1) * 255).round().astype(np.uint8))
        else:
            im = im.convert("RGB")
    return im, np.asarray(im)


def _load_mask(path: str) -> np.ndarray:
    from ..io import load_mask

    return load_mask(path, name=path).numpy()


def analyze_image(task: Task) -> ImageRecord:
    """Everything measured on one image (and its mask). Never raises for a bad file."""
    from .duplicates import content_hash, perceptual_hash
    from .masks import mask_flags, mask_record
    from .photometry import image_stats, luma
    from .tiling import period_flags, periodicity

    p = task.params
    rec = ImageRecord(path=task.path, mask_path=task.mask_path)
    try:
        im, pixels = _open_rgb(task.path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a corrupt file, reported, not fatal
        rec.error = _describe(exc)
        rec.flags.append(("corrupt", rec.error))
        return rec
    rec.height, rec.width = pixels.shape[:2]
    if min(rec.height, rec.width) < 8:
        rec.error = f"image is {rec.width}×{rec.height} px; too small to analyse (at least 8×8)"
        rec.flags.append(("corrupt", rec.error))
        return rec
    gray = luma(pixels)
    rec.brightness, rec.contrast, rec.luma_hist = image_stats(gray)
    rec.content_hash = content_hash(pixels)
    try:
        rec.phash = perceptual_hash(im)
    except Exception as exc:  # noqa: BLE001
        rec.flags.append(("corrupt", f"perceptual hash failed ({_describe(exc)})"))
    del im, pixels
    mask = None
    if task.mask_path is None:
        if task.mask_expected:
            rec.flags.append(("mask_missing", "no mask with the same relative path and stem under --masks"))
    else:
        try:
            mask = _load_mask(task.mask_path)
        except InputFileError as exc:
            rec.flags.append(("mask_unreadable", str(exc)[:300]))
        except Exception as exc:  # noqa: BLE001
            rec.flags.append(("mask_unreadable", f"{task.mask_path}: {_describe(exc)}"))
    same = mask is not None and mask.shape == gray.shape
    if mask is not None:
        try:
            rec.mask = mask_record(mask, gray=gray if same else None, max_shift=p.max_offset_px)
            rec.flags.extend(mask_flags(rec.mask, image_size=(rec.width, rec.height), params=p))
        except Exception as exc:  # noqa: BLE001
            rec.mask = None
            rec.flags.append(("check_error", f"mask checks: {_describe(exc)}"))
    try:
        # The period of the wall: measured under the mask when it fits the image.
        per = periodicity(gray, valid=(mask > 0.5) if same else None, max_side=p.analysis_max_side,
                          tiled_similarity=p.tiled_similarity, tiled_margin=p.tiled_margin)
        rec.period_px, rec.period_score, rec.repeat_similarity, rec.repeat_shift = (
            per.period_px, per.score, per.similarity, per.shift)
        rec.flags.extend(period_flags(per, image_size=(rec.width, rec.height), params=p))
    except ImportError:
        pass  # the spectral module is missing: the report says periodicity was not measured
    except Exception as exc:  # noqa: BLE001 - one check failing on one file must not stop the scan
        rec.flags.append(("check_error", f"periodicity: {_describe(exc)}"))
    return rec
