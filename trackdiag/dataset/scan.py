"""Stream a folder of images through worker processes and run the dataset-level checks on the small records.

Memory stays bounded: paths are walked lazily, each worker decodes one image at a time and sends back an
:class:`~trackdiag.dataset.records.ImageRecord` of a few hundred bytes (numbers, two hashes and a 16×16 mask
thumbnail); the pixel histogram is summed on arrival and dropped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import InputFileError, InputValueError
from ..io.filesafety import IMAGE_SUFFIXES
from .crop_bias import CropBias, crop_bias
from .duplicates import exact_groups, near_groups
from .executors import PoolStart, records
from .masks import inverted_masks
from .photometry import HIST_BINS, RobustStats, photometry_flags
from .records import Flag, ImageRecord, ScanParams
from .worker import Source, Task

__all__ = ["ScanResult", "iter_images", "iter_shard", "mask_index", "scan", "default_workers"]


@dataclass
class ScanResult:
    root: str
    masks_root: Optional[str]
    records: list[ImageRecord]
    flags: list[Flag]
    params: ScanParams
    luma_hist: np.ndarray
    photometry: dict[str, RobustStats] = field(default_factory=dict)
    crop: Optional[CropBias] = None
    mask_prior: Optional[np.ndarray] = None
    duplicate_groups: list[list[str]] = field(default_factory=list)
    near_duplicate_groups: list[list[str]] = field(default_factory=list)
    elapsed_s: float = 0.0
    workers: int = 0

    @property
    def images_per_second(self) -> float:
        return len(self.records) / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def _image_suffixes() -> frozenset[str]:
    # trackdiag.io.images imports torch: only the parent needs the suffixes, workers must not pay for torch.

    return IMAGE_SUFFIXES


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in _image_suffixes() and not name.startswith(".")


def _is_tar(name: str) -> bool:
    return name.lower().endswith(".tar") and not name.startswith(".")


def iter_images(root: Path, *, exclude: Optional[Path] = None, shards: bool = False) -> Iterator[Path]:
    """Image files below ``root`` in sorted path order, walked lazily (``exclude``: a folder to skip).

    With ``shards``, uncompressed ``.tar`` files (webdataset shards) are yielded too. Only names are looked
    at here: a FIFO or device named like an image is refused later by the reader, without blocking.
    """
    if not root.is_dir():
        if root.exists():
            yield root
        return
    excluded = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (excluded is None or Path(dirpath, d).resolve() != excluded))
        for name in sorted(filenames):
            # a FIFO or device named like an image is listed too: the worker reports it without opening it
            if _is_image(name) or (shards and _is_tar(name)):
                yield Path(dirpath, name)


def _member_key(name: str) -> tuple[str, str]:
    """webdataset's split of a member name: ``dir/000123.mask.png`` → (``dir/000123``, ``mask.png``)."""
    d, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


#: webdataset extensions of a sample's mask member (``000123.mask.png``, ``000123.seg.png``).
MASK_EXTS = ("mask", "seg")


def iter_shard(tar: Path) -> Iterator[tuple[str, Source, Optional[tuple[str, Source]]]]:
    """The samples of an uncompressed tar shard: ``(display path, image source, (mask path, source) | None)``.

    Members are read by offset (no unpacking, nothing written to disk). A sample is a webdataset key with an
    image member (``.jpg``, ``.png`` ...); its mask is the member with the same key and an extension that
    starts with ``mask.`` or ``seg.``. Non-regular members (links, devices) are ignored.

    Raises:
        InputFileError: the shard is compressed or not a readable tar.
    """
    import tarfile

    images: list[tuple[str, Source]] = []
    masks: dict[str, tuple[str, Source]] = {}
    try:
        with tarfile.open(tar, mode="r:") as tf:
            for m in tf:
                if not m.isreg():
                    continue
                key, ext = _member_key(m.name)
                src = Source(str(tar), m.offset_data, m.size)
                shown = f"{tar}/{m.name}"
                head, _, tail = ext.partition(".")
                if head in MASK_EXTS and ("." + tail) in _image_suffixes():
                    masks.setdefault(key, (shown, src))
                elif ("." + ext) in _image_suffixes():
                    images.append((key, src, shown))  # type: ignore[arg-type]
    except (tarfile.TarError, OSError) as exc:
        raise InputFileError(f"{tar}: not a readable uncompressed tar shard "
                             f"({exc.__class__.__name__}: {exc}).") from None
    for key, src, shown in images:  # type: ignore[misc]
        yield shown, src, masks.get(key)


def mask_index(masks_root: Path) -> dict[str, str]:
    """``relative/path/stem`` → mask path for every image file under ``masks_root`` (``.png`` preferred):
    :func:`trackdiag.io.pairing.stem_index` with relative keys, the paths as strings for the workers."""
    from ..io.pairing import stem_index

    return {key: str(p) for key, p in stem_index(masks_root, recursive=True).items()}


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 1)))


def _tasks(root: Path, masks_root: Optional[Path], params: ScanParams) -> Iterator[Task]:
    masks = mask_index(masks_root) if masks_root is not None else None
    base = root if root.is_dir() else root.parent
    for path in iter_images(root, exclude=masks_root, shards=True):
        if _is_tar(path.name):
            stem = path.relative_to(base).with_suffix("").as_posix()
            try:
                for shown, src, in_shard in iter_shard(path):
                    mask_path, mask_src = in_shard if in_shard is not None else (None, None)
                    if mask_path is None and masks is not None:
                        key = f"{stem}/{_member_key(shown[len(str(path)) + 1:])[0]}"
                        mask_path = masks.get(key)
                    yield Task(shown, mask_path, masks is not None or in_shard is not None, params,
                               source=src, mask_source=mask_src)
            except InputFileError as exc:
                yield Task(str(path), None, False, params, error=str(exc))
            continue
        mask = None
        if masks is not None:
            mask = masks.get(path.relative_to(base).with_suffix("").as_posix())
        yield Task(str(path), mask, masks is not None, params)


def _count(root: Path, masks_root: Optional[Path]) -> int:
    """Images to scan: image files, plus the image members of tar shards (their headers are read)."""
    n = 0
    for path in iter_images(root, exclude=masks_root, shards=True):
        if _is_tar(path.name):
            try:
                n += sum(1 for _ in iter_shard(path))
            except InputFileError:
                n += 1  # reported as one corrupt entry
        else:
            n += 1
    return n


def scan(images: str | Path, masks: str | Path | None = None, *, params: Optional[ScanParams] = None,
         workers: Optional[int] = None, progress: bool = True, executor: str = "local") -> ScanResult:
    """Run every dataset check on the images below ``images`` (masks paired from ``masks``, see docs).

    Args:
        images: a folder (walked recursively; uncompressed ``.tar`` webdataset shards in it are read
            member by member), one image file or one ``.tar`` shard.
        masks: a folder whose files have the images' relative paths and stems (any image suffix).
        workers: worker processes (default: CPU count, at most 8); 0 or 1 runs in this process.
        executor: ``"local"`` (this machine's process pool) or ``"ray"`` (Ray Data on the connected
            cluster; ``workers`` is then ignored). Both give the same records and flags.

    Raises:
        InputFileError: ``images`` or ``masks`` does not exist.
        InputValueError: no image was found.
    """
    p = params or ScanParams()
    root = Path(images)
    if not root.exists():
        raise InputFileError(f"{root}: no such file or folder.")
    masks_root = Path(masks) if masks is not None else None
    if masks_root is not None and not masks_root.is_dir():
        raise InputFileError(f"--mask {masks_root}: not a folder (give the folder that holds the masks).")
    if executor not in ("local", "ray"):
        raise InputValueError(f"executor must be 'local' or 'ray'; got {executor!r}.")
    workers = default_workers() if workers is None else int(workers)
    t0 = time.perf_counter()
    # The pool starts now (its forkserver imports numpy, Pillow, scipy.fft), while the folder is counted.
    start = PoolStart(workers, spectral=p.spectral_tier) if executor == "local" and workers > 1 else None
    bar: Any = None
    records_: list[ImageRecord] = []
    hist = np.zeros(HIST_BINS, np.int64)
    try:
        total = _count(root, masks_root)
        if total == 0:
            raise InputValueError(f"{root}: no image files ({', '.join(sorted(_image_suffixes()))}).")
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="dataset", unit="img")
        for rec in records(_tasks(root, masks_root, p), workers=workers, total=total, executor=executor,
                           start=start, spectral=p.spectral_tier):
            if rec.luma_hist is not None:
                hist += rec.luma_hist
                rec.luma_hist = None
            records_.append(rec)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if start is not None:
            start.close()
    result = ScanResult(root=str(root), masks_root=str(masks_root) if masks_root else None, records=records_,
                        flags=[], params=p, luma_hist=hist, workers=workers)
    _dataset_checks(result)
    result.elapsed_s = time.perf_counter() - t0
    return result


def _dataset_checks(res: ScanResult) -> None:
    p = res.params
    recs = res.records
    extra: list[list[tuple[str, str]]] = [[] for _ in recs]
    ok = [i for i, r in enumerate(recs) if r.error is None]
    # Photometry: robust z over the readable images.
    phot, res.photometry = photometry_flags([recs[i].brightness for i in ok], [recs[i].contrast for i in ok],
                                            params=p)
    for i, flags in zip(ok, phot, strict=True):
        extra[i].extend(flags)
    # Duplicates: the first image of a group (path order) stays unflagged.
    digests = [recs[i].content_hash for i in ok]
    for group in exact_groups(digests):
        keep = recs[ok[group[0]]].path
        res.duplicate_groups.append([recs[ok[g]].path for g in group])
        for g in group[1:]:
            extra[ok[g]].append(("duplicate", f"same pixels as {keep}"))
    groups, dist = near_groups([recs[i].phash for i in ok], digests, max_bits=p.near_duplicate_bits)
    nearest: dict[int, int] = {}
    for (a, b), d in dist.items():
        nearest[a] = min(d, nearest.get(a, d))
        nearest[b] = min(d, nearest.get(b, d))
    for group in groups:
        keep = recs[ok[group[0]]].path
        res.near_duplicate_groups.append([recs[ok[g]].path for g in group])
        for g in group[1:]:
            d = nearest.get(g, -1)
            extra[ok[g]].append(("near_duplicate", f"perceptual hash within {d} bits of an image in the "
                                                   f"group of {keep}"))
    # Masks: inversion against the dataset prior; crop bias from the centroids.
    masks = {i: mr for i in ok if (mr := recs[i].mask) is not None and mr.thumb is not None}
    thumbs = {i: t for i, mr in masks.items() if (t := mr.thumb) is not None}
    with_mask = list(masks)
    flagged, corr, res.mask_prior = inverted_masks([thumbs[i] for i in with_mask],
                                                   [masks[i].coverage for i in with_mask],
                                                   min_corr=p.inverted_corr, min_masks=p.min_images_for_stats)
    cov_med = float(np.median([masks[i].coverage for i in with_mask])) if with_mask else float("nan")
    for k, i in enumerate(with_mask):
        if flagged[k]:
            extra[i].append(("mask_inverted", f"correlation {corr[k]:.2f} with the dataset's typical mask; "
                                              f"coverage {masks[i].coverage:.2f} vs typical {cov_med:.2f}"))
    if with_mask:
        m = [masks[i] for i in with_mask]
        res.crop = crop_bias([x.centroid_x for x in m], [x.centroid_y for x in m], [x.coverage for x in m],
                             max_offset=p.crop_bias_offset, min_masks=p.min_images_for_stats)
    for rec, more in zip(recs, extra, strict=True):
        for check, reason in rec.flags + more:
            res.flags.append(Flag(rec.path, check, reason))
    if res.crop is not None and res.crop.biased:
        res.flags.append(Flag(res.root, "crop_bias", res.crop.reason))
