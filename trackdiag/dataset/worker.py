"""Per-image work, run in worker processes: decode, measure, and return a small :class:`ImageRecord`.

Nothing here raises for a bad file: any failure becomes a ``corrupt`` / ``mask_unreadable`` flag, so one
broken file never stops a scan of thousands.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..errors import InputFileError
from .records import ImageRecord, ScanParams

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Source", "Task", "analyze_image", "analyze_images", "cheap_tier", "finish_spectral",
           "init_pool_worker", "init_worker", "keep_heap", "read_source", "run_job"]


#: Largest file (or tar member) a scan reads: anything bigger is reported, not decoded.
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class Source:
    """Where an image's bytes are: a whole regular file (``offset < 0``), or ``size`` bytes at ``offset`` of
    an uncompressed tar shard (a webdataset member, read directly without unpacking)."""

    file: str
    offset: int = -1
    size: int = -1


@dataclass(frozen=True)
class Task:
    path: str  # what flagged.csv shows: a file path, or ``shard.tar/member`` for a tar member
    mask_path: Optional[str]
    mask_expected: bool  # --mask was given (a missing mask is then flagged)
    params: ScanParams
    source: Optional[Source] = None  # None: the file ``path``
    mask_source: Optional[Source] = None  # None: the file ``mask_path``
    error: Optional[str] = None  # found while listing (e.g. an unreadable tar shard): reported as corrupt


def read_source(src: Source, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file or of a tar member, without ever blocking on a special file.

    The file is opened non-blocking and checked with ``fstat`` on the open descriptor: a FIFO, socket or
    device (also behind a symlink) is refused before anything is read, so a scan cannot hang on one.

    Raises:
        InputFileError: not a regular file, too large, truncated, or unreadable.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(src.file, flags)
    except OSError as exc:
        raise InputFileError(f"{src.file}: cannot open ({exc.strerror or exc}).") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{src.file}: not a regular file (FIFO, socket or device); not read.")
        n = st.st_size if src.offset < 0 else src.size
        if n > max_bytes:
            raise InputFileError(f"{src.file}: {n} bytes, more than the {max_bytes} a scan reads per image.")
        if src.offset >= 0:
            if src.offset + n > st.st_size:
                raise InputFileError(f"{src.file}: tar member at {src.offset} runs past the end of the file.")
            os.lseek(fd, src.offset, os.SEEK_SET)
        chunks, got = [], 0
        while got < n:
            b = os.read(fd, min(n - got, 1 << 24))
            if not b:
                break
            chunks.append(b)
            got += len(b)
        if got < n:
            raise InputFileError(f"{src.file}: truncated ({got} of {n} bytes).")
        return b"".join(chunks)
    finally:
        os.close(fd)


def init_worker() -> None:
    """Worker-process initialiser: one torch/BLAS thread per process (the pool provides the parallelism).

    Only worker processes are touched; the caller's process keeps its thread settings.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by torch when a worker first imports it
    if "torch" in sys.modules:  # preloaded by the forkserver (the spectral tier needs it)
        sys.modules["torch"].set_num_threads(1)
    try:  # BLAS pools were sized when numpy was imported (in the forkserver): shrink them if we can.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - optional
        pass


#: glibc ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_heap() -> bool:
    """Let this process reuse freed memory instead of returning it to the system (glibc only; a no-op
    elsewhere). Returns whether the setting took.

    A scan allocates and frees the same few MB for every image (decoded pixels, float copies, the spectral
    tier's batch tensors). With glibc's defaults, blocks above a threshold go straight to ``mmap`` and back
    to the kernel on ``free``, so each image pays its pages again as page faults (zeroed 4 KiB pages): on
    the 512² benchmark scan about 130,000 of them, 3-4 % of its CPU. Only for processes that a scan owns (the
    local pool's workers), never the caller's: their memory peak is kept until they exit.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc accepts on 64-bit
    ok &= mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    ok &= mallopt(_M_TOP_PAD, 16 << 20)
    return bool(ok)


def init_pool_worker() -> None:
    """Initialiser of the local pool's workers: :func:`init_worker` and :func:`keep_heap`."""
    init_worker()
    keep_heap()


def _describe(exc: BaseException) -> str:
    # Decoders read from memory: name no in-memory object (its address differs from run to run).
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc).strip().replace("\n", " "))
    return f"{exc.__class__.__name__}: {text}"[:300]


def draft_scale(width: int, height: int, params: ScanParams) -> int:
    """The JPEG draft scale (1, 2, 4 or 8) at which every check still sees what it needs.

    The smallest period that matters is ``min_period_px`` at the *training* resolution, i.e.
    ``min_period_px · crop / train`` source pixels; decoding at 1/k keeps it ≥ 4 px when
    ``k ≤ min_period_px · crop / train / 4``. With the defaults (no resize for training) that is 1: full
    decode. Datasets of large photos trained at a smaller size decode at 1/2..1/8, several times faster.
    """
    crop = float(params.crop_size or min(width, height))
    train = float(params.train_size or crop)
    if train <= 0 or crop <= 0:
        return 1
    limit = params.min_period_px * crop / train / 4.0
    k = 1
    for cand in (2, 4, 8):
        if cand <= limit and min(width, height) // cand >= 64:
            k = cand
    return k


def _open_rgb(data: bytes, params: Optional[ScanParams] = None, *, name: str = "image"
              ) -> tuple[Image.Image, np.ndarray, tuple[int, int], int]:
    """Decode (truncated files fail here, not later): an 8-bit L/RGB PIL image, its array, the file's own
    ``(width, height)`` and the draft scale ``k`` (JPEG decoded at 1/k, see :func:`draft_scale`).

    16-bit and float images are scaled to 8 bits by their range (as :func:`trackdiag.io.images.load_image`
    does),
    not clipped; other modes (palette, RGBA, CMYK ...) are converted to RGB.
    """
    from PIL import Image

    from ..io.filesafety import check_image_header

    # Not closed: closing would drop the decoded pixels (keeping them needs a copy); the bytes are in memory.
    im: Image.Image = Image.open(io.BytesIO(data))
    check_image_header(im, name)  # a header that claims 50000×50000 is refused before decoding
    size = im.size
    k = 1
    if params is not None and im.format == "JPEG":
        k = draft_scale(size[0], size[1], params)
        if k > 1:
            im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (size[0] // k, size[1] // k))
            k = max(1, round(size[0] / im.size[0]))
    im.load()
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray((np.clip(arr / top, 0, 1) * 255).round().astype(np.uint8))
    elif im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    return im, np.asarray(im), size, k


def _reduce_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask (float in [0, 1] or uint8) box-averaged onto ``shape`` (the draft-decoded image's size):
    float in [0, 1]."""
    from PIL import Image

    m = np.asarray(mask, np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0)
    im = Image.fromarray(m, mode="F")
    return np.asarray(im.resize((shape[1], shape[0]), Image.Resampling.BOX), dtype=np.float32)


def _load_mask(data: bytes, name: str) -> np.ndarray:
    """``H×W`` float32 in [0, 1] like :func:`trackdiag.io.images.load_mask` (16-bit by range, colour
    averaged), without importing torch; an 8-bit grey mask comes back as it is decoded, ``H×W`` uint8
    (the same values ×255: the mask checks read both)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode == "L":
                return np.asarray(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32)
                arr = arr / (65535.0 if arr.max() > 255 else 255.0)
            else:
                rgb = im if im.mode in ("L", "RGB") else im.convert("RGB")
                arr = np.asarray(rgb, dtype=np.float32) / 255.0
    except Exception as exc:  # any decoder failure
        raise InputFileError(f"{name}: cannot decode image ({_describe(exc)}).") from None
    return arr.mean(axis=2) if arr.ndim == 3 else arr


def _thumbnail(im: Image.Image) -> Image.Image:
    """The cheap tier's view for the perceptual hash: a box-reduced copy (≥ 64 px on the short side)."""
    w, h = im.size
    k = max(1, min(w, h) // 128)
    return im.reduce(k) if k > 1 else im


def analyze_image(task: Task) -> ImageRecord:
    """Everything measured on one image (and its mask). Never raises for a bad file."""
    return analyze_images([task])[0]


@dataclass
class _Spectral:
    """What the spectral tier needs of one image: its 8-bit luma and wall on the decoded grid, the scale.

    ``bits``: the wall packed 8 pixels per byte instead (:meth:`packed`, for images whose spectral tier runs
    in another process: an eighth of the bytes to keep and to send)."""

    lum: np.ndarray
    wall: Optional[np.ndarray]
    k: int
    bits: Optional[np.ndarray] = None

    def packed(self) -> _Spectral:
        if self.wall is None:
            return self
        return _Spectral(self.lum, None, self.k, np.packbits(self.wall, axis=None))

    def wall_mask(self) -> Optional[np.ndarray]:
        """The wall, ``H×W`` bool (None: no mask that fits the image)."""
        if self.bits is None:
            return self.wall
        return np.unpackbits(self.bits, count=self.lum.size).reshape(self.lum.shape).view(bool)

    @property
    def nbytes(self) -> int:
        extra = self.wall.nbytes if self.wall is not None else 0
        return self.lum.nbytes + extra + (self.bits.nbytes if self.bits is not None else 0)


def analyze_images(tasks: list[Task]) -> list[ImageRecord]:
    """:func:`analyze_image` of several images: the cheap tier image by image, then the spectral tier's
    period estimates batched over the images of the same size (several times cheaper per image than one
    call each). Never raises for a bad file."""
    recs, pending = cheap_tier(tasks)
    return finish_spectral(recs, pending)


#: An image whose spectral tier is still to run: its record, its task and what the tier needs of it.
Pending = tuple[ImageRecord, Task, _Spectral]


def cheap_tier(tasks: list[Task]) -> tuple[list[ImageRecord], list[Pending]]:
    """The cheap tier of several images (no torch): their records, and those still waiting for the spectral
    tier (whose inputs, the 8-bit luma and the wall, can be sent to another process:
    :func:`finish_spectral`)."""
    recs: list[ImageRecord] = []
    pending: list[Pending] = []
    for task in tasks:
        rec, spectral = _cheap_tier(task)
        recs.append(rec)
        if spectral is not None and task.params.spectral_tier:
            pending.append((rec, task, spectral))
    return recs, pending


def finish_spectral(recs: list[ImageRecord], pending: list[Pending]) -> list[ImageRecord]:
    """Run the spectral tier of ``pending`` (records among ``recs``, completed in place) and return
    ``recs``."""
    groups: dict[tuple[int, int], list[Pending]] = {}
    for item in pending:  # one batch per draft scale and parameter set (normally a single one)
        groups.setdefault((item[2].k, id(item[1].params)), []).append(item)
    for group in groups.values():
        _spectral_tier(group)
    return recs


def run_job(job: tuple[str, Any]) -> list[ImageRecord]:
    """A pool job: ``("all", tasks)`` — :func:`analyze_images`; ``("spectral", (recs, pending))`` — the
    spectral tier of images whose cheap tier ran elsewhere (:func:`finish_spectral`)."""
    kind, payload = job
    if kind == "spectral":
        return finish_spectral(*payload)
    return analyze_images(payload)


def _spectral_tier(group: list[tuple[ImageRecord, Task, _Spectral]]) -> None:
    """The period and the repetition test of images with the same draft scale and parameters, batched;
    when the batch fails, image by image, so that an error is reported on the image that caused it."""
    from . import tiling

    p, k = group[0][1].params, group[0][2].k
    opts: dict[str, Any] = {"max_side": max(8, p.analysis_max_side // k),
                            "tiled_similarity": p.tiled_similarity, "tiled_margin": p.tiled_margin,
                            "fine_below_px": p.coarse_period_min_px / k}

    walls = [s.wall_mask() for _, _, s in group]
    try:  # on the 8-bit luma: only the pixels each step reads are converted to float
        pers = tiling.periodicities([s.lum for _, _, s in group], valids=walls, **opts)
    except ImportError:
        return  # the spectral module is missing: the report says periodicity was not measured
    except Exception:
        pers = []
    for n, ((rec, _, s), wall) in enumerate(zip(group, walls, strict=True)):
        try:
            # The period of the wall: measured under the mask when it fits the image (in source pixels).
            per = pers[n] if pers else tiling.periodicity(s.lum, valid=wall, **opts)
            if k > 1:
                per = dataclasses.replace(per, period_px=per.period_px * k,
                                          shift=(per.shift[0] * k, per.shift[1] * k))
            rec.period_px, rec.period_score, rec.repeat_similarity, rec.repeat_shift = (
                per.period_px, per.score, per.similarity, per.shift)
            rec.flags.extend(tiling.period_flags(per, image_size=(rec.width, rec.height), params=p))
        except ImportError:
            pass
        except Exception as exc:  # one check failing on one file must not stop the scan
            rec.flags.append(("check_error", f"periodicity: {_describe(exc)}"))


def _cheap_tier(task: Task) -> tuple[ImageRecord, Optional[_Spectral]]:
    """Decoding, photometry, hashes and every mask check of one image; what the spectral tier needs of it
    (None when the image could not be read)."""
    from .duplicates import content_hash, perceptual_hash
    from .masks import mask_flags, mask_offset, mask_record, wall_of
    from .photometry import level_stats

    p = task.params
    rec = ImageRecord(path=task.path, mask_path=task.mask_path)
    if task.error is not None:
        rec.error = task.error
        rec.flags.append(("corrupt", rec.error))
        return rec, None
    try:
        data = read_source(task.source or Source(task.path))
        im, pixels, (full_w, full_h), k = _open_rgb(data, p, name=str(task.path))
    except Exception as exc:  # any decoder failure is a corrupt file, reported, not fatal
        rec.error = _describe(exc)
        rec.flags.append(("corrupt", rec.error))
        return rec, None
    rec.height, rec.width = full_h, full_w
    if min(rec.height, rec.width) < 8:
        rec.error = f"image is {rec.width}×{rec.height} px; too small to analyse (at least 8×8)"
        rec.flags.append(("corrupt", rec.error))
        return rec, None
    # 8-bit luma (BT.601, Pillow's rounding) once: its histogram gives brightness and contrast, the hash
    # and the mask-offset search read it, the spectral tier reads it as float.
    lim = im if im.mode == "L" else im.convert("L")
    lum = np.asarray(lim)
    rec.brightness, rec.contrast, rec.luma_hist = level_stats(np.asarray(lim.histogram(), np.int64))
    rec.content_hash = content_hash(pixels)
    try:
        rec.phash = perceptual_hash(_thumbnail(im))  # of the colour thumbnail, as imagehash.phash would
    except Exception as exc:
        rec.flags.append(("corrupt", f"perceptual hash failed ({_describe(exc)})"))
    del data, im, pixels
    mask = None
    if task.mask_path is None:
        if task.mask_expected:
            rec.flags.append(("mask_missing", "no mask with the same relative path and stem under --mask"))
    else:
        try:
            mask = _load_mask(read_source(task.mask_source or Source(task.mask_path)), task.mask_path)
        except InputFileError as exc:
            rec.flags.append(("mask_unreadable", str(exc)[:300]))
        except Exception as exc:
            rec.flags.append(("mask_unreadable", f"{task.mask_path}: {_describe(exc)}"))
    # The mask's own checks at its resolution; the offset and the period on the (draft-decoded) image's grid.
    wall: Optional[np.ndarray] = None  # the wall on the decoded image's grid, when the mask fits the image
    if mask is not None and mask.shape == (full_h, full_w):
        wall = wall_of(mask if k == 1 else _reduce_mask(mask, (lum.shape[0], lum.shape[1])))
    if mask is not None:
        try:
            rec.mask = mask_record(mask, max_shift=p.max_offset_px)
            if wall is not None and 0.01 < rec.mask.coverage < 0.99:
                dx, dy, gain = mask_offset(wall, gray=lum, max_shift=p.max_offset_px)
                rec.mask.offset_dx, rec.mask.offset_dy, rec.mask.offset_gain = dx * k, dy * k, gain
            rec.flags.extend(mask_flags(rec.mask, image_size=(rec.width, rec.height), params=p))
        except Exception as exc:
            rec.mask = None
            rec.flags.append(("check_error", f"mask checks: {_describe(exc)}"))
    return rec, _Spectral(lum, wall, k)
