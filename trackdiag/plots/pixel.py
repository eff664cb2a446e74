"""Figures of the pixel analyzer: input / output / difference heat map / Sobel difference, with anomaly boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from . import figure_to_rgb, new_figure

__all__ = ["pixel_overlay", "AXIS_COLOURS"]

#: Box colour by component axis: row-aligned red, column-aligned cyan, other yellow.
AXIS_COLOURS = {"rows": "#ff3030", "cols": "#00e5ff", "none": "#ffd600"}


def _hwc(image: np.ndarray) -> np.ndarray:
    """``C×h×w`` (C = 1 or 3) or ``h×w`` → what ``imshow`` wants."""
    # uint8 from the session transfer; float 0..255 when a caller moved the maps itself.
    a = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
    return a


def _draw_boxes(ax: Any, boxes: Sequence[Mapping[str, Any]]) -> None:
    from matplotlib.patches import Rectangle

    for b in boxes:
        colour = AXIS_COLOURS.get(str(b.get("axis", "none")), AXIS_COLOURS["none"])
        ax.add_patch(Rectangle((b["x0"], b["y0"]), b["x1"] - b["x0"], b["y1"] - b["y0"], fill=False,
                               edgecolor=colour, linewidth=1.2))


def pixel_overlay(*, image_in: np.ndarray, image_out: np.ndarray, heatmap: np.ndarray,
                  grad_heatmap: Optional[np.ndarray], boxes: Sequence[Mapping[str, Any]],
                  full_size: tuple[int, int], title: str = "") -> np.ndarray:
    """Four panels: input, output with anomaly boxes, difference heat map with boxes, Sobel difference.

    Args:
        image_in, image_out: ``C×h×w`` uint8 (downsampled for the figure).
        heatmap, grad_heatmap: ``h×w`` uint8, already scaled by ``heatmap_scale`` and clipped.
        boxes: rows with ``x0, y0, x1, y1`` (full-resolution pixels, exclusive ends) and ``axis``.
        full_size: ``(H, W)`` of the full-resolution image, so that boxes land in the right place.

    Returns:
        ``H×W×3`` uint8.
    """
    h, w = full_size
    extent = (0, w, h, 0)
    fig = new_figure(9.0, 8.0 * h / max(w, 1) + 0.8)
    axes = fig.subplots(2, 2)
    panels = [
        (axes[0, 0], _hwc(image_in), "input / target", None),
        (axes[0, 1], _hwc(image_out), f"output, {len(boxes)} anomalies", None),
        (axes[1, 0], np.asarray(heatmap), "|difference| × heatmap_scale", "inferno"),
        (axes[1, 1], np.asarray(grad_heatmap) if grad_heatmap is not None else np.zeros_like(heatmap),
         "Sobel gradient difference × heatmap_scale", "magma"),
    ]
    for ax, img, name, cmap in panels:
        gray = img.ndim == 2
        im = ax.imshow(img, cmap=cmap or ("gray" if gray else None), vmin=0, vmax=255, extent=extent,
                       interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if cmap is not None:
            cb = fig.colorbar(im, ax=ax, fraction=0.046, ticks=[0, 255])
            cb.ax.set_yticklabels(["0", "≥1/scale"], fontsize=7)
    _draw_boxes(axes[0, 1], boxes)
    _draw_boxes(axes[1, 0], boxes)
    if title:
        fig.suptitle(title, fontsize=10)
    return figure_to_rgb(fig)
