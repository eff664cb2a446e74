"""``python -m trackdiag.dataset IMAGES [--mask MASKS] --report DIR``: dataset health checks.

Exit status: 0 when the report was written (whatever was flagged), 1 when the scan could not run (the reason
on one line), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Optional

from ..errors import TrackdiagError
from ..io.pairing import MASK_FLAG, MASK_FLAG_ALIASES
from .records import CHECKS, ScanParams

_FLAGS = {  # ScanParams fields exposed on the command line (the rest keep their defaults)
    "crop_size": "training crop side in source pixels (default: each image's shorter side)",
    "train_size": "side the crop is resized to for training (default: the crop size)",
    "near_duplicate_bits": "phash bits (of 64) within which two images are near duplicates",
    "z_threshold": "robust z-score beyond which brightness/contrast is an outlier",
    "tiled_similarity": "correlation with itself shifted by one period from which a texture counts as tiled",
    "periodic_score": "dominant_period score from which a texture counts as periodic",
    "min_period_px": "smallest period at the training resolution",
    "min_repeats": "fewest repeats of the period across the crop",
    "max_fragments": "most wall pieces in a mask",
    "max_holes": "most holes inside the wall of a mask",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trackdiag.dataset",
        description="Check a folder of training images (and masks) for tiled textures, broken masks, "
                    "brightness/contrast outliers, duplicates and crop bias.",
        epilog="check names: " + ", ".join(CHECKS))
    parser.add_argument("images", type=Path,
                        help="folder of images (recursive; .tar webdataset shards included), one image "
                             "or one shard")
    parser.add_argument(MASK_FLAG, *MASK_FLAG_ALIASES, dest="masks", type=Path, default=None,
                        help="folder of masks with the images' relative paths and stems (any image suffix); "
                             "--masks is accepted as an alias")
    parser.add_argument("--report", "--out", dest="report", type=Path, required=True, help="report folder")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: CPU count, at most 8; 0 = in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-spectral", action="store_true",
                        help="cheap tier only: photometry, duplicates and masks, no periods "
                             "(no spectra: faster)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local process pool (default) or Ray Data on the connected cluster "
                             "(pip install 'trackdiag[ray]')")
    defaults = ScanParams()
    for f in fields(ScanParams):
        if f.name in _FLAGS:
            parser.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)),
                                default=getattr(defaults, f.name),
                                help=f"{_FLAGS[f.name]} (default {getattr(defaults, f.name)})")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .report import write_dataset_report
    from .scan import scan

    args = build_parser().parse_args(argv)
    params = ScanParams(**{name: getattr(args, name) for name in _FLAGS}, spectral_tier=not args.no_spectral)
    try:
        res = scan(args.images, args.masks, params=params, workers=args.workers,
                   progress=not args.no_progress, executor=args.executor)
        index = write_dataset_report(res, args.report)
    except TrackdiagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_flag = len({f.path for f in res.flags})
    print(f"{len(res.records)} images in {res.elapsed_s:.1f} s ({res.images_per_second:.1f} img/s), "
          f"{len(res.flags)} findings on {n_flag} paths")
    from ..core.findings import console_text
    from .report import dataset_verdicts

    print(console_text([v for v in dataset_verdicts(res) if v.is_problem], title="dataset findings",
                       where=f"where to look: {index} and {Path(args.report).resolve() / 'flagged.csv'}"))
    print(f"report: {index}")
    print(f"flagged: {Path(args.report) / 'flagged.csv'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
