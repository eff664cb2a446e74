"""Tiled source textures: the texture's period (the tiling analyzer's f*) and whether it is an exact
repetition.

The period comes from :func:`trackdiag.dataset.period.dominant_period`, a numpy port of
:func:`trackdiag.functional.spectral.dominant_period` (tested to agree with it), so that the scan's workers
need no torch. A texture is *already tiled* when it equals itself shifted along x or y by a
lattice period: the Pearson correlation of the overlapping parts reaches ``tiled_similarity``. The radial f*
of a 2-D lattice of period ``T`` can be any ``|(a, b)| / T`` (a diagonal harmonic), so the shifts tried are
``P · sqrt(a² + b²)`` for small integers, ±1 px. A region that is constant along an axis matches itself at
every shift; it counts only when the half shift matches clearly worse (``tiled_margin``). Natural periodic
walls (bricks, tiles photographed in place) vary from repeat to repeat and stay well below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

from .records import ScanParams

__all__ = ["Periodicity", "MIN_WALL_PX", "centre_crop", "half_resolution", "shift_similarity", "repetition",
           "periodicity", "periodicities", "period_flags"]

#: Fewest wall pixels for the period to be measured on the wall alone.
MIN_WALL_PX = 1024

#: Most pixels estimated in one batched ``dominant_period`` call (bounds a worker's memory).
BATCH_PIXELS = 1 << 22

#: An 8-bit luma level ``v`` stands for ``v · LEVEL`` (float32, the same value as ``v / 255`` rounded once).
LEVEL = np.float32(1.0 / 255.0)


def as_float(gray: np.ndarray) -> np.ndarray:
    """Pixel values as float32: 8-bit luma (uint8) scaled by :data:`LEVEL`, anything else as it is.

    The functions of this module take either: a scan passes its 8-bit luma and only the pixels a step reads
    are converted (the same float32 values as converting the whole image first)."""
    if gray.dtype == np.uint8:
        return np.multiply(gray, LEVEL, dtype=np.float32)
    return np.asarray(gray, np.float32)


@dataclass(frozen=True)
class Periodicity:
    period_px: float
    score: float
    similarity: float  # best correlation of the image with itself shifted by a multiple of the period
    shift: tuple[int, int]  # (dx, dy) of that shift


def centre_crop(gray: np.ndarray, max_side: int) -> np.ndarray:
    """The centre ``min(H, max_side) × min(W, max_side)`` part of an ``H×W`` array (no resampling)."""
    h, w = gray.shape
    ch, cw = min(h, max_side), min(w, max_side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return gray[y0:y0 + ch, x0:x0 + cw]


def shift_similarity(gray: np.ndarray, dx: int, dy: int, *, valid: Optional[np.ndarray] = None,
                     max_pairs: int = 16384) -> float:
    """Pearson correlation between ``gray`` (``H×W`` float, or 8-bit luma: :func:`as_float`) and itself
    shifted by ``(dx, dy) >= 0`` over the overlap.

    With ``valid`` (``H×W`` bool, the wall), only pixel pairs whose both ends are valid count. Large overlaps
    are subsampled on a regular grid to about ``max_pairs`` pairs (an exact repetition still gives 1).
    NaN when the shift exceeds half the image, fewer than 256 pairs remain, or they have no variance.
    """
    h, w = gray.shape
    if dx < 0 or dy < 0 or dx > w // 2 or dy > h // 2 or (dx == 0 and dy == 0):
        return float("nan")
    k = max(1, int(math.sqrt((h - dy) * (w - dx) / max_pairs)))
    a = gray[dy::k, dx::k]
    b = gray[: h - dy: k, : w - dx: k]
    if valid is not None:
        both = valid[dy::k, dx::k] & valid[: h - dy: k, : w - dx: k]
        if np.count_nonzero(both) < 256:
            return float("nan")
        a, b = a[both], b[both]
    a = as_float(a).astype(np.float64).ravel()
    b = as_float(b).astype(np.float64).ravel()
    a -= a.mean()
    b -= b.mean()
    # Elementwise sums, not BLAS dot: a multi-threaded BLAS in each of several workers thrashes the cores.
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


#: ``sqrt(a² + b²)`` for small lattice indices: how an axis period relates to a radial f*.
_LATTICE = sorted({math.sqrt(a * a + b * b) for a in range(4) for b in range(4) if a or b})


def _candidate_shifts(period: float, limit: int) -> list[int]:
    out: set[int] = set()
    for m in _LATTICE:
        base = int(round(m * period))
        out.update(s for s in (base - 1, base, base + 1) if 2 <= s <= limit)
    return sorted(out)


@lru_cache(maxsize=16)
def _screen_grid(h: int, w: int, pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The screen's regular grid of about ``pairs`` points on ``H×W`` (cached): flat index, x, y."""
    k = max(1, int(math.sqrt(h * w / pairs)))
    ys, xs = np.mgrid[0:h:k, 0:w:k]
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    here = ys * w + xs
    for a in (here, xs, ys):
        a.flags.writeable = False
    return here, xs, ys


def _screen(gray: np.ndarray, shifts: list[tuple[int, int]], *, valid: Optional[np.ndarray] = None,
            pairs: int = 2048) -> np.ndarray:
    """:func:`shift_similarity` of every shift ``(dx, dy)`` at once on one regular grid of about ``pairs``
    points (each paired with the point ``(dx, dy)`` further; pairs that leave the image or the wall are
    dropped): a cheap screen, NaN where fewer than 256 pairs remain or they have no variance."""
    h, w = gray.shape
    here, xs, ys = _screen_grid(h, w, pairs)
    dx = np.asarray([s[0] for s in shifts])[:, None]
    dy = np.asarray([s[1] for s in shifts])[:, None]
    ok = (xs[None] < w - dx) & (ys[None] < h - dy)  # C × P: the pair stays in the image
    there = here[None] + (dy * w + dx)
    flat = np.ascontiguousarray(gray).reshape(-1)
    b = as_float(flat[here])
    centre = np.float32(b.mean())
    b -= centre  # centred (only the pixels read, not the whole image): the one-pass sums below lose nothing
    if valid is not None:
        vflat = np.asarray(valid, bool).reshape(-1)
        ok &= vflat[here][None] & np.take(vflat, there, mode="clip")
    m = ok.astype(np.float32)
    a = as_float(np.take(flat, there, mode="clip"))
    a -= centre
    a *= m  # the shifted ends, 0 where the pair is dropped
    n = m.sum(axis=1).astype(np.float64)
    nn = np.maximum(n, 1.0)
    sa, sb = a.sum(axis=1, dtype=np.float64), (m @ b).astype(np.float64)
    cov = (a @ b).astype(np.float64) - sa * sb / nn
    va = (a * a).sum(axis=1, dtype=np.float64) - sa * sa / nn
    vb = (m @ (b * b)).astype(np.float64) - sb * sb / nn
    den = np.sqrt(np.clip(va, 0.0, None) * np.clip(vb, 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = cov / den
    return np.where((n >= 256) & (den > 0), sim, np.nan)


def repetition(gray: np.ndarray, period: float, *, valid: Optional[np.ndarray] = None,
               threshold: float = 0.97, margin: float = 0.2, screen_pairs: int = 1024
               ) -> tuple[float, tuple[int, int]]:
    """Best self-similarity of ``gray`` under an axis shift related to ``period``, and that shift.

    A shift whose half shift matches as well (within ``margin``) is degenerate (the region is constant along
    that axis) and is left out when it reaches ``threshold``. Every candidate shift is first screened on one
    grid of about ``screen_pairs`` points (all shifts in one vectorised pass, :func:`_screen`); only the best
    one and those that come within 0.15 of ``threshold`` are measured on the full sample (an exact
    repetition scores 1 on any subsample).
    """
    h, w = gray.shape
    shifts = [(s, 0) for s in _candidate_shifts(period, w // 2)] + \
             [(0, s) for s in _candidate_shifts(period, h // 2)]
    if not shifts:
        return float("nan"), (0, 0)
    screen = _screen(gray, shifts, valid=valid, pairs=screen_pairs)
    cands = [(float(sim), dx, dy) for sim, (dx, dy) in zip(screen, shifts, strict=True) if math.isfinite(sim)]
    if not cands:
        return float("nan"), (0, 0)
    # In the order tried (smaller shifts first, as without the screen: ties keep the first one).
    refine = [c for c in cands if c[0] >= threshold - 0.15] or [max(cands, key=lambda c: c[0])]
    best, where = float("nan"), (0, 0)
    for _, dx, dy in refine:
        sim = shift_similarity(gray, dx, dy, valid=valid)
        if not math.isfinite(sim) or sim <= best:
            continue
        if sim >= threshold:
            s = dx or dy
            hx, hy = (max(1, s // 2), 0) if dx else (0, max(1, s // 2))
            half = shift_similarity(gray, hx, hy, valid=valid)
            if math.isfinite(half) and half > sim - margin:
                continue
        best, where = sim, (dx, dy)
    return best, where


def half_resolution(gray: np.ndarray, valid: Optional[np.ndarray] = None
                    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``H×W`` → ``⌊H/2⌋×⌊W/2⌋`` float32: each 2×2 block averaged; a block of ``valid`` counts when all four
    are. 8-bit luma (uint8, :func:`as_float`) is summed exactly and scaled once."""
    h, w = (gray.shape[0] // 2) * 2, (gray.shape[1] // 2) * 2
    if gray.dtype == np.uint8:  # the four levels summed exactly (uint16), scaled once
        rows = np.add(gray[0:h:2, :w], gray[1:h:2, :w], dtype=np.uint16)  # row pairs first: contiguous
        total = np.add(rows[:, 0::2], rows[:, 1::2])
        half = np.multiply(total, np.float32(0.25 / 255.0), dtype=np.float32)
    else:
        g = np.asarray(gray[:h, :w], np.float32)
        # 0.25 · (((a + b) + c) + d) in one output buffer (the same float32 operations, no temporaries).
        half = np.add(g[0::2, 0::2], g[1::2, 0::2])
        half += g[0::2, 1::2]
        half += g[1::2, 1::2]
        half *= np.float32(0.25)
    if valid is None:
        return half, None
    v = np.asarray(valid, bool)
    rows_v = np.logical_and(v[0:h:2, :w], v[1:h:2, :w])
    return half, np.logical_and(rows_v[:, 0::2], rows_v[:, 1::2])


def _estimate(gray: np.ndarray, wall: Optional[np.ndarray]) -> tuple[float, float]:
    """``dominant_period`` of one ``H×W`` image (under ``wall``): ``(period_px, score)``."""
    return _estimate_batch([gray], [wall])[0]


def _estimate_batch(grays: list[np.ndarray], walls: list[Optional[np.ndarray]]) -> list[tuple[float, float]]:
    """The dominant period of several images (:func:`trackdiag.dataset.period.dominant_period`, numpy: the
    scan's workers import no torch), ``(period_px, score)`` each: one batched call per group of images with
    the same shape (an image without a wall is all valid), at most ``BATCH_PIXELS`` pixels per call (a
    call has a fixed cost of a few ms: batching 16 images of 256² halves the cost per image)."""
    from .period import dominant_period

    out: list[tuple[float, float]] = [(float("nan"), float("nan"))] * len(grays)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, g in enumerate(grays):
        groups.setdefault(g.shape, []).append(i)
    for shape, idx in groups.items():
        step = max(1, BATCH_PIXELS // max(1, int(np.prod(shape))))
        for j in range(0, len(idx), step):
            part = idx[j:j + step]
            x = np.empty((len(part), *shape), np.float32)
            for n, i in enumerate(part):
                x[n] = grays[i]
            valid = None
            if any(walls[i] is not None for i in part):
                # An image without a wall joins the batch with every pixel valid: the same weights (the
                # apodized all-valid mask is 1 everywhere), one call instead of two.
                valid = np.ones((len(part), *shape), bool)
                for n, i in enumerate(part):
                    if walls[i] is not None:
                        valid[n] = walls[i]
            est = dominant_period(x, valid=valid)
            for n, i in enumerate(part):
                out[i] = (float(est.period_px[n]), float(est.score[n]))
    return out


def _crop_and_wall(gray: np.ndarray, valid: Optional[np.ndarray], max_side: int
                   ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    src = gray if gray.dtype == np.uint8 else np.asarray(gray, np.float32)
    crop = np.ascontiguousarray(centre_crop(src, max_side))
    wall = None
    if valid is not None and valid.shape == gray.shape:
        wall = np.ascontiguousarray(centre_crop(np.asarray(valid, bool), max_side))
        if np.count_nonzero(wall) < MIN_WALL_PX:
            wall = None
    return crop, wall


def periodicity(gray: np.ndarray, *, valid: Optional[np.ndarray] = None, max_side: int = 1024,
                tiled_similarity: float = 0.97, tiled_margin: float = 0.2,
                fine_below_px: float = 0.0) -> Periodicity:
    """Period (``dominant_period``) and repetition similarity of an ``H×W`` float image or 8-bit luma
    (:func:`as_float`; centre crop).

    ``valid`` (``H×W`` bool, the wall mask) restricts both to the wall: ceilings, floors and furniture
    would otherwise lend their own structure to the estimate. A wall of fewer than ``MIN_WALL_PX`` pixels
    in the crop is ignored (the whole crop is used).

    With ``fine_below_px > 0`` the period is first estimated on the crop averaged over 2×2 blocks (a quarter
    of the pixels, about 3× faster; a period of ``P`` px becomes ``P/2``, far from the Nyquist limit for
    the periods that matter) and measured again at full resolution only when that estimate is below
    ``fine_below_px`` or not finite. The repetition test always runs at full resolution.
    """
    return periodicities([gray], valids=[valid], max_side=max_side, tiled_similarity=tiled_similarity,
                         tiled_margin=tiled_margin, fine_below_px=fine_below_px)[0]


def periodicities(grays: list[np.ndarray], *, valids: Optional[list[Optional[np.ndarray]]] = None,
                  max_side: int = 1024, tiled_similarity: float = 0.97, tiled_margin: float = 0.2,
                  fine_below_px: float = 0.0) -> list[Periodicity]:
    """:func:`periodicity` of several images (each ``H×W`` float or 8-bit luma, with its own ``valid`` or
    None); the
    period estimates of images of the same size run as one batched ``dominant_period`` call (several
    times cheaper per image than one call each), the rest image by image."""
    walls_in = valids if valids is not None else [None] * len(grays)
    items = [_crop_and_wall(g, v, max_side) for g, v in zip(grays, walls_in, strict=True)]
    period = [float("nan")] * len(items)
    score = [float("nan")] * len(items)
    coarse = [i for i, (crop, _) in enumerate(items)
              if fine_below_px > 0 and min(crop.shape) >= 128]
    if coarse:
        halves = [half_resolution(*items[i]) for i in coarse]
        half_walls = [hw if hw is None or np.count_nonzero(hw) >= MIN_WALL_PX // 4 else None
                      for _, hw in halves]
        for i, (p, sc) in zip(coarse, _estimate_batch([h for h, _ in halves], half_walls), strict=True):
            period[i], score[i] = 2.0 * p, sc
    fine = [i for i in range(len(items)) if not (math.isfinite(period[i]) and period[i] >= fine_below_px)]
    if fine:
        for i, (p, sc) in zip(fine, _estimate_batch([as_float(items[i][0]) for i in fine],
                                                    [items[i][1] for i in fine]), strict=True):
            period[i], score[i] = p, sc
    out = []
    for (crop, wall), p, sc in zip(items, period, score, strict=True):
        best, shift = float("nan"), (0, 0)
        if math.isfinite(p) and p >= 2:
            best, shift = repetition(crop, p, valid=wall, threshold=tiled_similarity, margin=tiled_margin)
        out.append(Periodicity(p, sc, best, shift))
    return out


def period_flags(per: Periodicity, *, image_size: tuple[int, int],
                 params: ScanParams) -> list[tuple[str, str]]:
    """``tiled_texture``, ``period_too_small``, ``period_too_large`` for one image (``image_size`` = W, H).

    Period limits apply only to textures that are periodic (``score >= periodic_score``) or tiled: the crop
    side is ``crop_size`` (default: the image's shorter side), resized to ``train_size`` for training.
    """
    p = params
    out: list[tuple[str, str]] = []
    tiled = math.isfinite(per.similarity) and per.similarity >= p.tiled_similarity
    if tiled:
        out.append(("tiled_texture", f"repeats itself after dx={per.shift[0]}, dy={per.shift[1]} px "
                                     f"(correlation {per.similarity:.3f}; period {per.period_px:.1f} px)"))
    periodic = tiled or (math.isfinite(per.score) and per.score >= p.periodic_score)
    if not periodic or not math.isfinite(per.period_px) or per.period_px <= 0:
        return out
    crop = float(p.crop_size or min(image_size))
    train = float(p.train_size or crop)
    effective = per.period_px * train / crop
    repeats = crop / per.period_px
    if effective < p.min_period_px:
        out.append(("period_too_small", f"period {per.period_px:.1f} px is {effective:.1f} px at the "
                                        f"training resolution (minimum {p.min_period_px:g})"))
    if repeats < p.min_repeats:
        out.append(("period_too_large", f"period {per.period_px:.1f} px repeats only {repeats:.1f}× in a "
                                        f"{crop:.0f} px crop (minimum {p.min_repeats:g})"))
    return out
