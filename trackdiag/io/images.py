"""Loading of images and masks with clear errors. Latent and log readers live in their own modules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from ..errors import InputFileError, ShapeError
from .filesafety import IMAGE_SUFFIXES, MAX_PIXELS, check_image_header, is_regular_file, list_images

if TYPE_CHECKING:
    import PIL.Image

__all__ = ["ImageLike", "IMAGE_SUFFIXES", "MAX_PIXELS", "load_image", "load_mask", "to_chw", "list_images",
           "is_regular_file", "check_image_header"]

ImageLike = Union[str, Path, "PIL.Image.Image", np.ndarray, torch.Tensor]


def _open_pil(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise InputFileError(f"{path}: no such file.")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, expected an image file.")
    if not is_regular_file(path):
        raise InputFileError(f"{path}: not a regular file (a FIFO, socket or device); not read.")
    try:
        with Image.open(path) as im:
            check_image_header(im, path)
            im.load()
            return im.copy()
    except InputFileError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            MemoryError) as exc:
        msg = " ".join(str(exc).split())
        raise InputFileError(f"{path}: cannot decode image ({exc.__class__.__name__}: {msg}).") from None


def _pil_to_array(im: Any) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        return arr / (65535.0 if arr.max() > 255 else 255.0)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def to_chw(image: ImageLike, *, name: str = "image", value_range: str | None = None,
           auto_range: bool = True) -> torch.Tensor:
    """Convert a path, PIL image, numpy array or tensor to a float32 ``C×H×W`` tensor.

    Paths and PIL images are scaled to [0, 1]. Arrays/tensors are taken as they are: ``H×W`` → ``1×H×W``;
    ``H×W×C`` numpy arrays (C in 1, 3, 4) become ``C×H×W``; tensors must be ``C×H×W`` or ``H×W``;
    their values are read per ``value_range`` (:mod:`trackdiag.core.value_range`: integer → 0..255, float with
    values below 0 → [-1, 1], warned once); with ``auto_range=False`` only uint8 data is scaled by 1/255.
    """
    if isinstance(image, (str, Path)):
        image = _open_pil(Path(image))
    if type(image).__module__.startswith("PIL."):
        arr = _pil_to_array(image)
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
    if auto_range and isinstance(image, (np.ndarray, torch.Tensor)):
        from ..core.value_range import to_unit_range

        image = to_unit_range(image, value_range, name=name)
    if isinstance(image, np.ndarray):
        scale = 255.0 if image.dtype == np.uint8 else 1.0
        arr = image.astype(np.float32) / scale
        if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
            arr = arr.transpose(2, 0, 1)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    elif isinstance(image, torch.Tensor):
        t = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    else:
        raise InputFileError(f"{name}: unsupported type {type(image).__name__}; give a path, PIL image, "
                             "numpy array or tensor.")
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or min(t.shape) == 0:
        raise ShapeError(f"{name} must be C×H×W or H×W; got {tuple(t.shape)}.")
    if t.shape[0] == 4:
        t = t[:3]
    return t


def load_image(image: ImageLike, *, name: str = "image", value_range: str | None = None) -> torch.Tensor:
    """Load an image as float32 ``C×H×W`` in [0, 1] (C = 1 or 3); arrays and tensors are read per
    ``value_range`` (:mod:`trackdiag.core.value_range`). Raises :class:`InputFileError`."""
    return to_chw(image, name=name, value_range=value_range)


def load_mask(mask: ImageLike, *, name: str = "mask") -> torch.Tensor:
    """Load a mask as float32 ``H×W`` in [0, 1]; values > 0.5 are the wall. Colour masks are averaged."""
    t = to_chw(mask, name=name, auto_range=False)
    return t.mean(dim=0)
