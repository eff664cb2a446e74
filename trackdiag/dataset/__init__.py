"""Dataset health checks (seed section 3.4):
``python -m trackdiag.dataset IMAGES [--mask MASKS] --report DIR``.

Modules, one check family each: :mod:`.masks` (validity, inversion), :mod:`.photometry` (brightness and
contrast outliers), :mod:`.duplicates` (exact and perceptual-hash duplicates), :mod:`.tiling` (already tiled
textures, period vs crop size), :mod:`.crop_bias` (mask centroids). :mod:`.worker` runs the per-image part in
worker processes, :mod:`.scan` streams a folder through them and runs the dataset-level checks, and
:mod:`.report` writes ``flagged.csv``, ``summary.json`` and ``index.html``.

>>> from trackdiag.dataset import scan, write_dataset_report   # doctest: +SKIP
>>> res = scan("data/images", "data/masks", workers=4)          # doctest: +SKIP
>>> write_dataset_report(res, "dataset_report")                  # doctest: +SKIP
"""

from __future__ import annotations

from .records import CHECKS, DATASET_LEVEL, Flag, ImageRecord, ScanParams
from .report import write_dataset_report, write_flagged_csv
from .scan import ScanResult, scan

__all__ = ["CHECKS", "DATASET_LEVEL", "Flag", "ImageRecord", "ScanParams", "ScanResult", "scan",
           "write_dataset_report", "write_flagged_csv"]
