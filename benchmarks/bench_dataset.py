"""Dataset health scan throughput: images per second on a folder of generated 512×512 RGB images with masks.

All checks run (decode, photometry, hashes, period + repetition, mask validity and offset, dataset-level
checks). Rows: in-process (``workers=0``) and with a worker pool, plus the pool's start-up cost, which is paid
once per scan. The report writing is not included (it is a fixed cost of a few figures).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import row

SIDE = 512


def _make_folder(root: Path, n: int) -> None:
    from PIL import Image
    from scipy import ndimage

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    base = ndimage.gaussian_filter(rng.standard_normal((SIDE, SIDE)), 2.0)
    base = base / base.std()
    for i in range(n):
        # Cheap variety: a rolled, re-scaled texture in a band of random height; flat surroundings.
        top, bot = int(rng.integers(60, 140)), int(rng.integers(SIDE - 140, SIDE - 60))
        wall = 0.5 + 0.12 * np.roll(base, (int(rng.integers(SIDE)), int(rng.integers(SIDE))), axis=(0, 1))
        img = np.full((SIDE, SIDE), rng.uniform(0.2, 0.8))
        img[bot:] = rng.uniform(0.2, 0.8)
        img[top:bot] = wall[top:bot]
        rgb = (np.clip(img[..., None] * rng.uniform(0.9, 1.1, 3), 0, 1) * 255).astype(np.uint8)
        mask = np.zeros((SIDE, SIDE), np.uint8)
        mask[top:bot] = 255
        Image.fromarray(rgb).save(root / "images" / f"{i:05d}.png", compress_level=1)
        Image.fromarray(mask).save(root / "masks" / f"{i:05d}.png", compress_level=1)


def run(quick: bool) -> list[dict]:
    from trackdiag.dataset import scan

    n = 24 if quick else 120
    workers = max(2, min(8, os.cpu_count() or 1))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make_folder(root, n)
        images, masks = root / "images", root / "masks"
        t0 = time.perf_counter()
        serial = scan(images, masks, workers=0, progress=False)
        t_serial = time.perf_counter() - t0
        rows.append(row("dataset_scan", "images_per_second_workers0", n / t_serial, "img/s",
                        f"{n} images {SIDE}x{SIDE} with masks, in-process"))
        t0 = time.perf_counter()
        scan(images, masks, workers=workers, progress=False)  # the first pool also starts the forkserver
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        par = scan(images, masks, workers=workers, progress=False)
        t_par = time.perf_counter() - t0
        rows.append(row("dataset_scan", f"images_per_second_workers{workers}", n / t_par, "img/s",
                        f"{n} images, warm forkserver; {os.cpu_count()} CPUs"))
        rows.append(row("dataset_scan", "pool_startup_s", max(0.0, t_first - t_par), "s",
                        "first scan of a process: forkserver start + imports (torch), once per process"))
        assert len(serial.flags) == len(par.flags)  # same findings whichever way it runs
    return rows


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for r in run(quick="--quick" in sys.argv):
        print(r)
