"""Checks on image files before they are decoded: plain files only, and no header that claims too much.

Torch-free, so the dataset scan's cheap tier can use it without importing torch.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..errors import InputFileError

__all__ = ["MAX_PIXELS", "IMAGE_SUFFIXES", "is_regular_file", "list_images", "check_image_header"]

#: The largest image trackdiag decodes (pixels): a file that claims more is refused before decoding
#: (a decompression bomb, or a header that lies). 2**28 = 16384 × 16384.
MAX_PIXELS = 2**28

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def is_regular_file(path: str | Path) -> bool:
    """A plain file (not a FIFO, socket or device, whose reading could block forever), links followed."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def list_images(root: str | Path) -> list[Path]:
    """Image files below ``root`` (recursively, sorted), or ``[root]`` when it is a file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputFileError(f"{root}: no such file or folder.")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and is_regular_file(p))


def check_image_header(im: Any, path: Path | str, *, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an opened (not yet decoded) PIL image whose header claims more than ``max_pixels``."""
    w, h = im.size
    if w * h > max_pixels:
        raise InputFileError(f"{path}: the file claims {w}×{h} pixels ({w * h / 1e6:.0f} MP), more than the "
                             f"{max_pixels / 1e6:.0f} MP trackdiag decodes; not read.")
