"""Figures to MLflow without encoding them a second time, several per upload.

MLflow's ``MlflowClient.log_image(key=, step=)`` encodes the image as PNG, writes a ``≤ 256 px`` WebP
thumbnail beside it, uploads each file on its own and sets the run tag ``mlflow.loggedImages`` once per image.
The spool has already written the figure's PNG, so :func:`upload_images` writes the same two files under the
same names (the file-name scheme of the installed MLflow, read from its own ``log_image``), hard-linking the
spool's PNG instead of encoding it again, uploads a whole batch with one ``log_artifacts`` call and sets the
tag once per run. The name's unique part is derived from the run, key, step and the step's timestamp, so an
upload that is repeated (a retry after a partial failure, ``trackdiag.sync`` after a crash) replaces the same
files instead of adding a copy.

When the installed MLflow's scheme cannot be read, :func:`image_names` returns None and the caller falls back
to MLflow's own ``log_image``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .base import ImageItem

__all__ = ["image_names", "upload_images", "KEY_PATTERN"]

#: The keys MLflow's ``log_image`` accepts (it raises ``ValueError`` for any other).
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
#: MLflow's thumbnail side (``mlflow.tracking.multimedia.COMPRESSED_IMAGE_SIZE``).
_THUMB_SIDE = 256
_NAMESPACE = uuid.UUID("6f1d3a52-7d0e-4c4e-9a55-1f0d6c1b2a77")


@functools.lru_cache(maxsize=1)
def _scheme() -> Optional[tuple[str, str]]:
    """``(separator, what "/" in a key becomes)`` in the installed MLflow's image file names, or None."""
    import inspect

    sources = []
    try:
        from mlflow import MlflowClient

        sources.append(inspect.getsource(MlflowClient.log_image))
    except Exception:
        return None
    try:  # some versions build the name in a helper
        import mlflow.utils.image as helper  # type: ignore[import-not-found]

        sources.append(inspect.getsource(helper))
    except Exception:
        pass
    text = "\n".join(sources)
    name = re.search(r"images/\{sanitized_key\}(\W)step\1\{step\}\1timestamp\1\{timestamp\}\1\{\w+\}", text)
    slash = re.search(r"""re\.sub\(r?["']/["'],\s*r?["'](.)["'],\s*key\)"""
                      r"""|key\.replace\(["']/["'],\s*["'](.)["']\)""", text)
    compressed = name is not None and re.search(
        r"\{uncompressed_filename\}" + re.escape(name.group(1)) + "compressed", text)
    if name is None or slash is None or not compressed:
        return None
    return name.group(1), slash.group(1) or slash.group(2)


def image_names(run_id: str, item: ImageItem) -> Optional[tuple[str, str]]:
    """The PNG and WebP file names (under ``images/``) the installed MLflow gives this figure, with a unique
    part that is the same each time the same figure is sent; None when the scheme is unknown."""
    scheme = _scheme()
    if scheme is None:
        return None
    sep, slash = scheme
    if item.timestamp_ms is None:
        import time

        stamp, unique = int(time.time() * 1000), str(uuid.uuid4())
    else:
        stamp = int(item.timestamp_ms)
        unique = str(uuid.uuid5(_NAMESPACE, f"{run_id}\0{item.key}\0{int(item.step)}\0{stamp}"))
    key = item.key.replace("/", slash)
    base = f"{key}{sep}step{sep}{int(item.step)}{sep}timestamp{sep}{stamp}{sep}{unique}"
    return f"{base}.png", f"{base}{sep}compressed.webp"


def _thumbnail(image: np.ndarray, path: Path) -> None:
    """MLflow's thumbnail: the image resized so that its longer side is 256 px, as WebP."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    w, h = im.size
    if w > h:
        size = (_THUMB_SIDE, int(h * (_THUMB_SIDE / w)))
    else:
        size = (int(w * (_THUMB_SIDE / h)), _THUMB_SIDE)
    im.resize(size).save(path)


def _place_png(item: ImageItem, path: Path) -> None:
    """The figure's PNG at ``path``: a hard link to (or a copy of) the spool's file; encoded only without
    one."""
    if item.png is not None and Path(item.png).is_file():
        try:
            os.link(item.png, path)
        except OSError:
            shutil.copyfile(item.png, path)
        return
    from ..plots import save_rgb_png

    save_rgb_png(item.array(), path)


def upload_images(client: Any, run_id: str, items: Sequence[ImageItem]) -> bool:
    """Upload ``items`` to the run in one ``log_artifacts`` call. False (nothing uploaded) when the installed
    MLflow's naming scheme is unknown. Raises ``ValueError`` for a key MLflow would refuse."""
    for item in items:
        if not KEY_PATTERN.match(item.key):
            raise ValueError("The `key` parameter may only contain alphanumerics, underscores (_), dashes "
                             "(-), periods (.), spaces ( ), and slashes (/). The provided key "
                             f"`{item.key}` contains invalid characters.")
    if _scheme() is None:
        return False
    with tempfile.TemporaryDirectory(prefix="trackdiag_images_") as tmp:
        folder = Path(tmp)
        for item in items:
            names = image_names(run_id, item)
            assert names is not None
            _place_png(item, folder / names[0])
            _thumbnail(item.array(), folder / names[1])
        client.log_artifacts(run_id, str(folder), artifact_path="images")
    return True
