"""Figures of the pixel analyzer: input / output / difference heat map / Sobel difference, with anomaly
boxes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

__all__ = ["pixel_overlay", "AXIS_COLOURS"]

#: Box colour by component axis: row-aligned red, column-aligned cyan, other yellow.
AXIS_COLOURS = {"rows": "#ff3030", "cols": "#00e5ff", "none": "#ffd600"}


def _hwc(image: np.ndarray) -> np.ndarray:
    """``C×h×w`` (C = 1 or 3) or ``h×w`` → ``h×w`` or ``h×w×3`` uint8."""
    # uint8 from the session transfer; float 0..255 when a caller moved the maps itself.
    a = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a[:3], 0, -1)
    return a


def pixel_overlay(*, image_in: np.ndarray, image_out: np.ndarray, heatmap: np.ndarray,
                  grad_heatmap: Optional[np.ndarray], boxes: Sequence[Mapping[str, Any]],
                  full_size: tuple[int, int], title: str = "") -> np.ndarray:
    """Four panels: input, output with anomaly boxes, difference heat map with boxes, Sobel difference.

    Drawn with Pillow (:mod:`trackdiag.plots.raster`): this figure is drawn in the training loop.

    Args:
        image_in, image_out: ``C×h×w`` uint8 (downsampled for the figure).
        heatmap, grad_heatmap: ``h×w`` uint8, already scaled by ``heatmap_scale`` and clipped.
        boxes: rows with ``x0, y0, x1, y1`` (full-resolution pixels, exclusive ends) and ``axis``.
        full_size: ``(H, W)`` of the full-resolution image, so that boxes land in the right place.

    Returns:
        ``H×900×3`` uint8, ``H = 2·(panel + 26) + top`` with a panel 350 px wide and ``350·H/W`` high.
    """
    from .raster import Canvas, colorize

    h, w = full_size
    pw = 350
    ph = max(16, int(round(pw * h / max(w, 1))))
    top = 24 if title else 6
    cell = ph + 26
    c = Canvas(900, top + 2 * cell + 6)
    if title:
        c.text((450, 6), title, size=12, anchor="ma")
    heat = np.asarray(heatmap)
    grad = np.asarray(grad_heatmap) if grad_heatmap is not None else np.zeros_like(heat)
    panels = [
        (_hwc(image_in), "input / target", None),
        (_hwc(image_out), f"output, {len(boxes)} anomalies", None),
        (heat, "|difference| × heatmap_scale", "inferno"),
        (grad, "Sobel gradient difference × heatmap_scale", "magma"),
    ]
    for i, (img, name, cmap) in enumerate(panels):
        r, k = divmod(i, 2)
        x0, y0 = 16 + k * 446, top + r * cell + 20
        rgb = colorize(img, cmap, 0.0, 255.0) if cmap else (img if img.ndim == 3 else
                                                             np.repeat(img[..., None], 3, axis=2))
        c.image(rgb, (x0, y0, x0 + pw, y0 + ph))
        c.rect((x0, y0, x0 + pw, y0 + ph), outline="#333", width=0.5)
        c.text((x0 + pw / 2, y0 - 4), name, size=11, anchor="md")
        if cmap is not None:
            c.colorbar((x0 + pw + 8, y0, x0 + pw + 20, y0 + ph), cmap=cmap, vmin=0.0, vmax=255.0,
                       ticks=[0.0, 255.0], tick_labels=["0", "≥1/scale"])
        if i in (1, 2):
            sx, sy = pw / max(w, 1), ph / max(h, 1)
            for b in boxes:
                colour = AXIS_COLOURS.get(str(b.get("axis", "none")), AXIS_COLOURS["none"])
                c.rect((x0 + float(b["x0"]) * sx, y0 + float(b["y0"]) * sy,
                        x0 + float(b["x1"]) * sx, y0 + float(b["y1"]) * sy), outline=colour, width=1.2)
    return c.to_array()
