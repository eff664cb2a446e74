"""Figure rendering. One renderer per figure, in one module per analyzer; this module holds the shared bits.

Everything here uses matplotlib's Agg canvas directly (no pyplot global state), so it is safe on the
background worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["new_figure", "figure_to_rgb", "save_rgb_png", "heatmap"]


def new_figure(width: float = 5.0, height: float = 4.0, dpi: int = 100) -> Any:
    """A matplotlib Figure bound to an Agg canvas (thread-safe; no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_to_rgb(fig: Any) -> np.ndarray:
    """Draw ``fig`` and return its pixels as an ``H×W×3`` uint8 array."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def save_rgb_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an ``H×W×3`` (or ``H×W``) uint8 array as PNG. Returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, format="PNG")
    return path


def heatmap(values: np.ndarray, *, title: str, cmap: str = "viridis", label: str = "",
            vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Render a 2-D array as a heat map with a colour bar. Returns ``H×W×3`` uint8."""
    fig = new_figure()
    ax = fig.add_subplot()
    im = ax.imshow(np.asarray(values, dtype=np.float64), cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label)
    return figure_to_rgb(fig)
