"""Mask validity: per-mask numbers, per-mask flags, and the dataset-level inversion check.

A mask is an ``H×W`` float array in [0, 1] (colour masks are averaged), or an ``H×W`` uint8 array in
0..255 (an 8-bit grey mask as decoded, the same values ×255); values > 0.5 (uint8: > 127) are the wall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .records import MaskRecord, ScanParams

__all__ = ["THUMB", "wall_of", "mask_record", "mask_offset", "mask_flags", "mask_prior", "inverted_masks",
           "sobel_magnitude", "euler_number"]

#: Side of the mask thumbnails kept per image (16×16 uint8 = 256 bytes).
THUMB = 16


def wall_of(mask: np.ndarray) -> np.ndarray:
    """The wall (``H×W`` bool) of a float mask in [0, 1] (> 0.5) or of a uint8 mask in 0..255 (> 127)."""
    m = np.asarray(mask)
    return m > 127 if m.dtype == np.uint8 else m > 0.5


def _bbox(binary: np.ndarray) -> Optional[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)``, the half-open bounding box of the ``True`` pixels; None when there are none."""
    rows = np.flatnonzero(binary.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(binary[rows[0]:rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def euler_number(binary: np.ndarray) -> int:
    """Euler number of an ``H×W`` bool image, the wall 8-connected and the rest 4-connected (the frame
    counts as background): wall components minus holes (4-connected background components that do not
    touch the frame). From 2×2 quad counts (Gray 1971): ``(Q1 − Q3 − 2·QD) / 4``.
    """
    b = np.pad(np.asarray(binary, bool), 1).view(np.uint8)
    tl, tr, bl, br = b[:-1, :-1], b[:-1, 1:], b[1:, :-1], b[1:, 1:]
    n = tl + tr + bl + br  # wall pixels per quad
    q1 = int(np.count_nonzero(n == 1))
    q3 = int(np.count_nonzero(n == 3))
    qd = int(np.count_nonzero((n == 2) & (tl == br)))  # two wall pixels on a diagonal
    return (q1 - q3 - 2 * qd) // 4


def _thumb(binary: np.ndarray) -> np.ndarray:
    """Area mean of a boolean ``H×W`` onto ``THUMB×THUMB`` cells (uint8, 0..255; Pillow's box filter)."""
    from PIL import Image

    im = Image.fromarray(np.multiply(np.asarray(binary, bool).view(np.uint8), np.uint8(255)))
    return np.asarray(im.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)


def sobel_magnitude(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of an ``H×W`` float image (reflect padding, as ``scipy.ndimage.sobel``).

    Separable numpy slices on one padded copy: the same values as ``scipy.ndimage.sobel`` along each axis,
    several times faster on the sizes of a dataset scan.
    """
    g = np.pad(np.asarray(gray, np.float32), 1, mode="symmetric")
    sy = g[:-2] + 2.0 * g[1:-1] + g[2:]  # smoothing along y, then difference along x
    gx = sy[:, 2:] - sy[:, :-2]
    sx = g[:, :-2] + 2.0 * g[:, 1:-1] + g[:, 2:]  # smoothing along x, then difference along y
    gy = sx[2:] - sx[:-2]
    return np.hypot(gx, gy) / 8.0


def _inner_border(binary: np.ndarray) -> np.ndarray:
    """Wall pixels with a non-wall 4-neighbour (the frame counts as wall): ``binary & ~erosion(binary)``."""
    inner = binary.copy()
    inner[1:] &= binary[:-1]
    inner[:-1] &= binary[1:]
    inner[:, 1:] &= binary[:, :-1]
    inner[:, :-1] &= binary[:, 1:]
    return binary & ~inner


def mask_offset(binary: np.ndarray, edges: np.ndarray | None = None, *, gray: np.ndarray | None = None,
                max_shift: int = 4, max_points: int = 4000) -> tuple[int, int, float]:
    """How well the mask border sits on image edges, at every shift within ``±max_shift`` px.

    Args:
        binary: ``H×W`` bool mask; edges: ``H×W`` edge strength of the image (:func:`sobel_magnitude`), or
            ``gray``: the ``H×W`` luma (float, or uint8 in 0..255), whose edge strength is then computed
            only where it is read (the ``(2·max_shift + 1)²`` neighbourhood of each border point; the same
            values).

    Returns:
        ``(dx, dy, gain)``: the shift that puts the border on the strongest edges and
        ``gain = edge(best) / edge(no shift)`` (1.0 when no shift beats the current position, NaN when the
        mask has no inner border away from the frame).
    """
    h, w = binary.shape
    box = _bbox(binary)
    if box is None:
        return 0, 0, float("nan")
    # The inner border inside the wall's bounding box (+1 px of background, or the frame).
    y0, y1, x0, x1 = max(0, box[0] - 1), min(h, box[1] + 1), max(0, box[2] - 1), min(w, box[3] + 1)
    border = _inner_border(binary[y0:y1, x0:x1])
    rows = np.flatnonzero(border.any(axis=1))  # a band's border is two rows: look only at those
    ys, xs = np.nonzero(border[rows])
    ys, xs = rows[ys] + y0, xs + x0
    m = max_shift + 1
    keep = (ys >= m) & (ys < h - m) & (xs >= m) & (xs < w - m)
    ys, xs = ys[keep], xs[keep]
    if ys.size < 16:
        return 0, 0, float("nan")
    if edges is None and gray is None:
        raise ValueError("mask_offset needs edges or gray")
    if ys.size > max_points:
        pick = np.linspace(0, ys.size - 1, max_points).astype(np.int64)
        ys, xs = ys[pick], xs[pick]
    shifts = np.arange(-max_shift, max_shift + 1)
    if edges is not None:
        # (S, S, P) gathers of the edge map at the shifted border points: at most 4000 points × 81 shifts.
        rows = ys[None, None, :] + shifts[:, None, None]
        cols = xs[None, None, :] + shifts[None, :, None]
        scores = edges[rows, cols].mean(-1)
    else:
        scores = _local_sobel_scores(np.asarray(gray), ys, xs, max_shift)
    at0 = scores[max_shift, max_shift]
    # Among near-ties (within 2 %) prefer the smallest shift: a straight border is blind to shifts
    # along itself.
    near_best = scores >= scores.max() * 0.98
    size = np.abs(shifts)[:, None] + np.abs(shifts)[None, :]
    iy, ix = np.unravel_index(int(np.argmin(np.where(near_best, size, np.iinfo(np.int64).max))), scores.shape)
    best = scores[iy, ix]
    if best <= at0 * (1 + 1e-6):
        return 0, 0, 1.0
    return int(shifts[ix]), int(shifts[iy]), float(best / max(at0, 1e-12))


def _local_sobel_scores(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, max_shift: int) -> np.ndarray:
    """``(S, S)`` mean :func:`sobel_magnitude` of ``gray`` over the points ``(ys + dy, xs + dx)`` for every
    shift ``dy, dx`` in ``±max_shift`` (``S = 2·max_shift + 1``). The edge strength is computed only on the
    rows within ``max_shift`` of a point (a band's two borders: a few dozen rows), or on such columns when
    they are fewer (upright borders). Every point must lie ``max_shift + 1`` px inside the frame (no
    padding needed). ``gray``: float, or uint8 luma in 0..255 (read as ``v / 255``)."""
    r = max_shift
    rows, cols = _within(ys, gray.shape[0], r), _within(xs, gray.shape[1], r)
    height, width = int(ys.max()) - int(ys.min()) + 2 * r + 1, int(xs.max()) - int(xs.min()) + 2 * r + 1
    if cols.size * height < rows.size * width:
        return _row_sobel_scores(gray.T, xs, ys, cols, r).T
    return _row_sobel_scores(gray, ys, xs, rows, r)


def _within(idx: np.ndarray, n: int, r: int) -> np.ndarray:
    """Sorted indices in ``[0, n)`` within ``r`` of any of ``idx``."""
    mark = np.zeros(n, np.float32)
    mark[idx] = 1.0
    return np.flatnonzero(np.convolve(mark, np.ones(2 * r + 1, np.float32), mode="same") > 0.5)


def _row_sobel_scores(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, rows: np.ndarray, r: int
                      ) -> np.ndarray:
    """:func:`_local_sobel_scores` with the edge strength computed on ``rows`` (sorted, every ``ys + dy``
    among them), between the leftmost and rightmost ``xs ± r``."""
    x0, x1 = int(xs.min()) - r, int(xs.max()) + r + 1
    g = gray[rows[:, None] + np.arange(-1, 2)[None, :], x0 - 1:x1 + 1].astype(np.float32)  # R × 3 × (X+2)
    if gray.dtype == np.uint8:
        g *= np.float32(1.0 / 255.0)
    sy = g[:, 0] + 2.0 * g[:, 1] + g[:, 2]  # smoothing along y, then difference along x
    gx = sy[:, 2:] - sy[:, :-2]
    sx = g[:, :, :-2] + 2.0 * g[:, :, 1:-1] + g[:, :, 2:]  # smoothing along x, then difference along y
    gy = sx[:, 2] - sx[:, 0]
    edges = np.hypot(gx, gy) / 8.0  # R × X
    lut = np.zeros(gray.shape[0], np.int64)
    lut[rows] = np.arange(rows.size)
    # Row ys - r .. ys + r of ``edges`` are consecutive there (every one is among ``rows``): each point's
    # (S, S) neighbourhood is one window of the sliding view.
    win = sliding_window_view(edges, (2 * r + 1, 2 * r + 1))
    return win[lut[ys] - r, xs - r - x0].mean(axis=0)


def _squeeze(binary: np.ndarray) -> np.ndarray:
    """``binary`` with every run of identical adjacent rows, then of identical adjacent columns, kept once.

    Two identical adjacent rows touch each other's pixels wherever either touches anything, so dropping one
    changes neither the components (8-connected wall, 4-connected background) nor which of them reach the
    frame: a wall band becomes a few pixels."""
    rows = np.ones(binary.shape[0], bool)
    rows[1:] = (binary[1:] != binary[:-1]).any(axis=1)
    b = binary[rows]
    cols = np.ones(b.shape[1], bool)
    cols[1:] = (b[:, 1:] != b[:, :-1]).any(axis=0)
    return b[:, cols]


#: Largest squeezed box (pixels) whose wall components are counted here rather than by
#: ``scipy.ndimage.label``: a wall band squeezes to a few pixels, and importing scipy costs 0.3 s of CPU in
#: every process of a scan.
SMALL_BOX_PX = 256


def _count_8_connected(binary: np.ndarray) -> int:
    """Number of 8-connected components of the ``True`` pixels of a small ``H×W`` bool array (a flood fill
    in Python: for :data:`SMALL_BOX_PX` pixels or so)."""
    h, w = binary.shape
    todo = {(int(y), int(x)) for y, x in zip(*np.nonzero(binary), strict=True)}
    n = 0
    while todo:
        n += 1
        stack = [todo.pop()]
        while stack:
            y, x = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    q = (y + dy, x + dx)
                    if q in todo:
                        todo.remove(q)
                        stack.append(q)
    return n


def _components(binary: np.ndarray) -> tuple[int, int]:
    """``(fragments, holes)``: 8-connected wall components and the 4-connected background components that
    do not touch the frame (``binary_fill_holes``' holes). Both live inside the wall's bounding box (any
    background outside it reaches the frame), so one labelling of the box (its repeated rows and columns
    dropped, :func:`_squeeze`) gives the wall components and the Euler number the holes."""
    box = _bbox(binary)
    if box is None:
        return 0, 0
    crop = _squeeze(binary[box[0]:box[1], box[2]:box[3]])
    if crop.size <= SMALL_BOX_PX:
        fragments = _count_8_connected(crop)
    else:
        from scipy import ndimage

        fragments = int(ndimage.label(crop, structure=np.ones((3, 3), bool))[1])
    return fragments, fragments - euler_number(crop)


def mask_record(mask: np.ndarray, *, gray: Optional[np.ndarray] = None, max_shift: int = 4) -> MaskRecord:
    """Numbers of one mask; with the image's ``gray`` (same size) also the border/edge offset.

    Args:
        mask: ``H×W`` float in [0, 1] or uint8 in 0..255; gray: ``H×W`` float luma of the image, or None.
    """
    m = np.asarray(mask)
    if m.dtype != np.uint8:
        m = m.astype(np.float32, copy=False)
    h, w = m.shape
    binary = wall_of(m)
    n_wall = int(np.count_nonzero(binary))
    coverage = n_wall / float(h * w)
    if m.dtype == np.uint8:  # 0.02 < v/255 < 0.98 ⇔ 6 ≤ v ≤ 249 (one wrapping subtraction)
        grey = int(np.count_nonzero((m - np.uint8(6)) <= np.uint8(243)))
        max_value = float(m.max()) / 255.0
    else:
        grey = int(np.count_nonzero((m > 0.02) & (m < 0.98)))
        max_value = float(m.max())
    nonbinary = grey / float(h * w)
    fragments, holes = _components(binary)
    if coverage > 0:
        u8 = binary.view(np.uint8)
        # Wall pixels per column and per row: exact in int32 (at most H or W each), summed twice as fast.
        cx = float((u8.sum(axis=0, dtype=np.int32) @ (np.arange(w) + 0.5)) / n_wall / w)
        cy = float((u8.sum(axis=1, dtype=np.int32) @ (np.arange(h) + 0.5)) / n_wall / h)
    else:
        cx = cy = float("nan")
    rec = MaskRecord(width=w, height=h, coverage=coverage, nonbinary_frac=nonbinary, max_value=max_value,
                     fragments=int(fragments), holes=int(holes), centroid_x=cx, centroid_y=cy,
                     thumb=_thumb(binary))
    if gray is not None and gray.shape == m.shape and 0.01 < coverage < 0.99:
        rec.offset_dx, rec.offset_dy, rec.offset_gain = mask_offset(binary, gray=gray, max_shift=max_shift)
    return rec


def mask_flags(rec: MaskRecord, *, image_size: tuple[int, int], params: ScanParams) -> list[tuple[str, str]]:
    """Per-mask flags ``(check, reason)``. ``image_size`` is ``(width, height)`` of the image."""
    p = params
    out: list[tuple[str, str]] = []
    if (rec.width, rec.height) != tuple(image_size):
        out.append(("mask_size_mismatch", f"mask is {rec.width}×{rec.height}, image is "
                                          f"{image_size[0]}×{image_size[1]}"))
    if rec.coverage <= p.empty_frac:
        if 0 < rec.max_value <= 1.5 / 255:
            out.append(("mask_empty", "all values ≤ 1/255: the mask was probably saved as 0/1 instead of "
                                      "0/255; multiply it by 255"))
        else:
            out.append(("mask_empty", f"wall covers {rec.coverage:.2%} of the mask"))
    elif rec.coverage >= p.full_frac:
        out.append(("mask_full", f"wall covers {rec.coverage:.2%} of the mask"))
    if rec.nonbinary_frac > p.nonbinary_frac:
        out.append(("mask_not_binary", f"{rec.nonbinary_frac:.1%} of pixels are grey (0.02 < v < 0.98); "
                                       "save masks as lossless 0/255 PNG and resize them with nearest"))
    if rec.fragments > p.max_fragments:
        out.append(("mask_fragmented", f"{rec.fragments} separate wall pieces (limit {p.max_fragments})"))
    if rec.holes > p.max_holes:
        out.append(("mask_holes", f"{rec.holes} holes inside the wall (limit {p.max_holes})"))
    if np.isfinite(rec.offset_gain) and rec.offset_gain >= p.offset_gain and \
            max(abs(rec.offset_dx), abs(rec.offset_dy)) >= p.min_offset_px:
        out.append(("mask_offset", f"mask border sits on image edges after a shift of dx={rec.offset_dx}, "
                                   f"dy={rec.offset_dy} px ({rec.offset_gain:.2f}× stronger edges)"))
    return out


def mask_prior(thumbs: Sequence[np.ndarray]) -> np.ndarray:
    """The dataset's typical mask: the per-cell median of the thumbnails, ``THUMB×THUMB`` float in [0, 1]."""
    return np.median(np.stack([np.asarray(t, np.float32) / 255.0 for t in thumbs]), axis=0)


def inverted_masks(thumbs: Sequence[np.ndarray], coverages: Sequence[float], *, min_corr: float = 0.3,
                   min_masks: int = 8) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Which masks are probably inverted, judged against the dataset.

    A mask is flagged when both hold: (1) its thumbnail is anti-correlated with the dataset prior
    (:func:`mask_prior`; correlation ≤ ``-min_corr``), so inverting it makes it look like the other masks;
    (2) inverting its coverage ``c`` brings it closer to the median coverage (``|1-c - med| < |c - med|``).

    Returns:
        ``(flagged, corr, prior)``: a boolean array, the correlations (NaN where undefined) and the prior
        (None when there are fewer than ``min_masks`` masks or the prior is flat, then nothing is flagged).
    """
    n = len(thumbs)
    flagged = np.zeros(n, bool)
    corr = np.full(n, np.nan)
    if n < min_masks:
        return flagged, corr, None
    prior = mask_prior(thumbs)
    pc = prior - prior.mean()
    if pc.std() < 0.05:
        return flagged, corr, prior
    t = np.stack([np.asarray(x, np.float32) / 255.0 for x in thumbs]).reshape(n, -1)
    tc = t - t.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(tc, axis=1) * np.linalg.norm(pc)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, tc @ pc.reshape(-1) / denom, np.nan)
    cov = np.asarray(coverages, np.float64)
    med = float(np.median(cov))
    closer = np.abs(1 - cov - med) < np.abs(cov - med)
    flagged = (corr <= -min_corr) & closer
    return flagged, corr, prior
