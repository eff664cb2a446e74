"""The one home of image ↔ mask / reference pairing by file stem.

Every CLI that takes images and their masks (or references) pairs them the same way:

* **nothing given** → no companion for any image;
* **a file** → that one file is the companion of every image (one wall mask for a fixed camera);
* **a folder** → the companion of ``photos/a/wall_01.jpg`` is the image file below the folder whose stem is
  ``wall_01`` or, when the images are given relative to a root, whose path relative to the folder without
  its suffix is ``a/wall_01`` (trees of masks); when two files share a key the ``.png`` wins (lossless).

The documented flag spelling is ``--mask`` (one file or a folder); ``--masks`` is kept as an alias, and the
compare config's ``samples.masks`` is the same option.

Functions:

* :func:`stem_index` — ``key → path`` for every image under a folder (flat: the stem; ``recursive=True``: the
  relative path without suffix, ``a/wall_01``);
* :func:`companion_lookup` — ``image path → companion path or None`` for a file, a folder or None, optionally
  refusing an image without a companion with a typed :class:`~trackdiag.errors.InputFileError`.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("wall_01.jpg", "wall_01.png", "wall_02.png"):
...     _ = (root / name).write_bytes(b"")
>>> sorted((k, p.name) for k, p in stem_index(root).items())
[('wall_01', 'wall_01.png'), ('wall_02', 'wall_02.png')]
>>> lookup = companion_lookup(root)
>>> lookup(pathlib.Path("out/wall_02.jpg")).name, lookup(pathlib.Path("out/other.jpg"))
('wall_02.png', None)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional, Union

from ..errors import InputFileError
from .filesafety import list_images  # torch-free: the dataset scan's parent pairs masks

__all__ = ["MASK_FLAG", "MASK_FLAG_ALIASES", "stem_index", "companion_lookup"]

#: The documented command-line spelling of the mask option, and the spellings kept as aliases.
MASK_FLAG = "--mask"
MASK_FLAG_ALIASES = ("--masks",)


def stem_index(folder: Union[str, Path], *, recursive: bool = False) -> dict[str, Path]:
    """``key → image path`` for every image file below ``folder`` (searched recursively, regular files only);
    ``.png`` wins when two files share a key.

    The key is the file's stem (``wall_01``), or with ``recursive=True`` its path relative to ``folder``
    without the suffix, in POSIX form (``a/wall_01``).
    """
    root = Path(folder)
    index: dict[str, Path] = {}
    for p in list_images(root):
        key = p.relative_to(root).with_suffix("").as_posix() if recursive else p.stem
        if key not in index or p.suffix.lower() == ".png":
            index[key] = p
    return index


def companion_lookup(spec: Union[str, Path, None], *, what: str = "mask", required: bool = False,
                     root: Optional[Path] = None) -> Callable[[Path], Optional[Path]]:
    """A function ``image path → companion path`` (or None) for ``spec``: None, one file, or a folder.

    ``what`` names the companion in messages (``"mask"``, ``"reference"``). ``required=True`` makes a folder
    lookup raise :class:`~trackdiag.errors.InputFileError` for an image without a companion instead of
    returning None. ``root``: the images' root folder; when given, a folder lookup also matches the image's
    path relative to ``root`` (``a/wall_01``), so trees of images pair with trees of masks.
    A ``spec`` that is neither a file nor a folder raises :class:`~trackdiag.errors.InputFileError`.
    """
    if spec is None:
        return lambda _image: None
    path = Path(spec)
    if path.is_file():
        return lambda _image: path
    if not path.is_dir():
        raise InputFileError(f"{what} {path}: neither a file nor a folder of {what}s.")
    flat = stem_index(path)
    nested = stem_index(path, recursive=True) if root is not None else {}

    def lookup(image: Path) -> Optional[Path]:
        found = None
        if root is not None:
            try:
                found = nested.get(Path(image).relative_to(root).with_suffix("").as_posix())
            except ValueError:
                found = None
        if found is None:
            found = flat.get(Path(image).stem)
        if found is None and required:
            raise InputFileError(f"{image}: no {what} with stem {Path(image).stem!r} in {path}.")
        return found

    return lookup
