"""Figures of the dataset health report: histograms with thresholds, mask centroids, contact sheets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from . import figure_to_rgb, new_figure

__all__ = ["value_histogram", "pixel_histogram", "centroid_map", "contact_sheet"]


def value_histogram(values: Sequence[float], *, title: str, xlabel: str, bins: int = 40,
                    lines: Optional[Mapping[str, float]] = None, flagged: Optional[Sequence[float]] = None
                    ) -> np.ndarray:
    """Histogram of per-image values; ``lines`` are labelled vertical markers (thresholds, median);
    ``flagged`` values are drawn as a second, red histogram on the same bins."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot()
    if v.size:
        lo, hi = float(v.min()), float(v.max())
        for x in (lines or {}).values():
            if np.isfinite(x):
                lo, hi = min(lo, x), max(hi, x)
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
        ax.hist(v, bins=edges, color="#4a78b5", label="all images")
        if flagged is not None and len(flagged):
            ax.hist(np.asarray(flagged, np.float64), bins=edges, color="#d33", label="flagged")
    for i, (label, x) in enumerate((lines or {}).items()):
        if np.isfinite(x):
            ax.axvline(x, color=("k", "#e08000", "#e08000", "#888")[i % 4], ls="--" if i else "-", lw=1,
                       label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    if v.size:
        ax.legend(fontsize=7)
    return figure_to_rgb(fig)


def pixel_histogram(counts: np.ndarray, *,
                    title: str = "pixel brightness over the whole dataset") -> np.ndarray:
    """Bar chart of the summed per-image luma histograms (``counts`` over [0, 1] in equal bins)."""
    c = np.asarray(counts, np.float64)
    total = c.sum()
    fig = new_figure(5.5, 3.0)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, c.size + 1)
    ax.bar(edges[:-1], c / total if total else c, width=1 / max(c.size, 1), align="edge", color="#777")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("luma")
    ax.set_ylabel("share of pixels")
    return figure_to_rgb(fig)


def centroid_map(cx: Sequence[float], cy: Sequence[float], *, mean: tuple[float, float],
                 prior: Optional[np.ndarray] = None, title: str = "") -> np.ndarray:
    """Mask centroids in frame coordinates (0..1, y down), the mean centroid (red cross), the frame centre
    (black plus) and, when given, the dataset's typical mask as the background."""
    fig = new_figure(4.6, 4.2)
    ax = fig.add_subplot()
    if prior is not None:
        ax.imshow(prior, cmap="Greys_r", vmin=0, vmax=1, extent=(0, 1, 1, 0), alpha=0.5)
    x, y = np.asarray(cx, np.float64), np.asarray(cy, np.float64)
    ax.scatter(x, y, s=6, alpha=0.5, color="#4a78b5", label="mask centroids")
    ax.plot([0.5], [0.5], "k+", ms=14, label="frame centre")
    if all(np.isfinite(mean)):
        ax.plot([mean[0]], [mean[1]], "rx", ms=12, mew=2, label="mean centroid")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("x / width")
    ax.set_ylabel("y / height")
    ax.set_title(title or "where the wall is in the crops", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return figure_to_rgb(fig)


def contact_sheet(thumbs: Sequence[np.ndarray], captions: Sequence[str], *, title: str, cols: int = 6,
                  cell: int = 128) -> np.ndarray:
    """A grid of ``h×w×3`` uint8 thumbnails (each at most ``cell`` px) with one short caption each.

    Drawn with Pillow, not matplotlib: a sheet per check costs milliseconds, not a layout pass.
    """
    from PIL import Image, ImageDraw

    n = max(1, len(thumbs))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    pad, cap_h, title_h = 4, 12, 16
    sheet_w = cols * (cell + pad) + pad
    sheet_h = title_h + rows * (cell + cap_h + pad) + pad
    sheet = Image.new("RGB", (sheet_w, sheet_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 2), title, fill=(0, 0, 0))
    for k, (img, cap) in enumerate(zip(thumbs, captions, strict=True)):
        r, c = divmod(k, cols)
        x, y = pad + c * (cell + pad), title_h + r * (cell + cap_h + pad)
        tile = Image.fromarray(np.asarray(img, np.uint8))
        tile.thumbnail((cell, cell))
        sheet.paste(tile.convert("RGB"), (x, y))
        text = cap if len(cap) <= 20 else "…" + cap[-19:]
        draw.text((x, y + cell + 1), text, fill=(40, 40, 40))
    return np.asarray(sheet)
