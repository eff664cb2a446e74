"""The samples figure: a few of the diagnosed predictions with what the verdicts point at marked on them.

Like the validation-image grids of diffusers' training scripts, but diagnostic: at every analysis step the
session keeps small ``uint8`` thumbnails of the first few predictions (made on the device, in the same one
transfer as the analyzers' outputs) and the worker draws them with

* the wall mask's outline (cyan): where a mask seam would show;
* the zones where the local period is about twice the image's period (red, from the tiling analyzer's map
  of sample 0): doubled-period zones and bands;
* the stride grid of a ``grid_s<k>`` verdict (yellow lines every k pixels);
* the step's verdicts as the title, worst first.

``trackdiag/samples`` is the figure's key in every tracker. Nothing is logged when there is no image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["thumbnails", "samples_figure", "KEY", "SAMPLES"]

#: The pseudo-analyzer name under which thumbnails travel with the analyzers' outputs.
SAMPLES = "_samples"
#: The figure's metric key.
KEY = "trackdiag/samples"

_GRID = re.compile(r"^grid_s(\d+)$")


def thumbnails(pred: torch.Tensor, mask: Optional[torch.Tensor] = None, *, max_n: int = 4,
               max_side: int = 256) -> dict[str, torch.Tensor]:
    """Small copies of the first ``max_n`` samples, on ``pred``'s device.

    Args:
        pred: B×C×H×W in [0, 1] (C = 1 or 3; other C: the first channel).
        mask: B×1×H×W bool or None.

    Returns:
        ``{"map/images": n×h×w×3 uint8, "map/masks": n×h×w uint8 (only with a mask),
        "map/size": (2,) the original H, W}``.
    """
    with torch.no_grad():
        x = pred[:max_n].detach().float()
        if x.shape[1] != 3:
            x = x[:, :1].expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        scale = min(1.0, max_side / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if scale < 1.0:
            x = torch.nn.functional.interpolate(x, size=size, mode="area")
        x = torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
        out = {"map/images": (x * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous(),
               "map/size": torch.tensor([h, w], dtype=torch.int64, device=x.device)}
        if mask is not None:
            m = mask[:max_n].float()
            if scale < 1.0:
                m = torch.nn.functional.interpolate(m, size=size, mode="nearest")
            out["map/masks"] = (m[:, 0] > 0.5).to(torch.uint8)
        return out


def _zones(doubled: np.ndarray, geometry: np.ndarray, shape: tuple[int, int], size: tuple[float, float]
           ) -> Optional[np.ndarray]:
    """The doubled-period map (tiling, sample 0) resampled onto a thumbnail of ``shape`` (h, w)."""
    d = np.asarray(doubled, dtype=np.float64)
    g = np.asarray(geometry, dtype=np.float64).reshape(-1)
    if d.ndim != 2 or g.size < 4 or not d.size:
        return None
    win, stride = g[0], g[1]
    h, w = shape
    sy, sx = size[0] / h, size[1] / w
    ys = (np.arange(h) + 0.5) * sy
    xs = (np.arange(w) + 0.5) * sx
    iy = np.floor((ys - (win / 2 - stride / 2)) / stride).astype(int)
    ix = np.floor((xs - (win / 2 - stride / 2)) / stride).astype(int)
    inside = (iy[:, None] >= 0) & (iy[:, None] < d.shape[0]) & (ix[None, :] >= 0) & (ix[None, :] < d.shape[1])
    vals = d[np.clip(iy, 0, d.shape[0] - 1)[:, None], np.clip(ix, 0, d.shape[1] - 1)[None, :]]
    return np.where(inside & np.isfinite(vals), vals, 0.0)


def samples_figure(images: np.ndarray, *, masks: Optional[np.ndarray] = None, size: Sequence[int] = (),
                   tiling_maps: Optional[Mapping[str, np.ndarray]] = None,
                   verdicts: Sequence[Any] = (), step: Optional[int] = None,
                   sample_ids: Optional[Sequence[str]] = None, panel_in: float = 3.2) -> Optional[np.ndarray]:
    """Render the samples figure (``H×W×3`` uint8), or None when there is no image to show.

    ``images`` n×h×w×3 uint8; ``masks`` n×h×w; ``size`` the original (H, W); ``tiling_maps`` the tiling
    Result's maps (``local_doubled``, ``local_geometry``); ``verdicts`` the step's verdicts; ``panel_in`` the
    width of one image in inches (100 dpi).
    """
    from matplotlib.patches import Patch

    from .plots import figure_to_rgb, new_figure

    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[0] == 0 or imgs.shape[1] < 2 or imgs.shape[2] < 2:
        return None
    n, h, w = imgs.shape[:3]
    orig = (float(size[0]), float(size[1])) if len(size) >= 2 else (float(h), float(w))
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = new_figure(panel_in * cols, panel_in * rows * h / w + 0.9, dpi=100)
    problems = [v for v in verdicts if getattr(v, "severity", "") in ("bad", "warn")]
    grids = sorted({int(m.group(1)) for v in problems if (m := _GRID.match(v.code))})
    zones = None
    maps = tiling_maps or {}
    if "local_doubled" in maps and "local_geometry" in maps:
        zones = _zones(maps["local_doubled"], maps["local_geometry"], (h, w), orig)
    legend = []
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(imgs[i], interpolation="nearest")
        if masks is not None and i < len(masks) and np.asarray(masks[i]).any() and not np.asarray(masks[i]).all():
            ax.contour(np.asarray(masks[i], dtype=float), levels=[0.5], colors="cyan", linewidths=1.0)
            if i == 0:
                legend.append(Patch(color="cyan", label="mask outline"))
        if i == 0 and zones is not None and (zones > 0.5).any():
            overlay = np.zeros((h, w, 4))
            overlay[..., 0] = 1.0
            overlay[..., 3] = np.where(zones > 0.5, 0.35, 0.0)
            ax.imshow(overlay, interpolation="nearest")
            legend.append(Patch(color=(1, 0, 0, 0.5), label="≈2× period zones"))
        for k in grids:
            step_px = k * w / orig[1]
            if step_px >= 3:
                for x in np.arange(step_px, w, step_px):
                    ax.axvline(x - 0.5, color="yellow", lw=0.4, alpha=0.6)
                for y in np.arange(k * h / orig[0], h, k * h / orig[0]):
                    ax.axhline(y - 0.5, color="yellow", lw=0.4, alpha=0.6)
                if i == 0:
                    legend.append(Patch(color="yellow", label=f"{k}-px grid"))
        label = str(sample_ids[i]) if sample_ids is not None and i < len(sample_ids) else f"sample {i}"
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    worst = sorted(problems, key=lambda v: v.severity != "bad")
    head = "; ".join(f"{v.severity.upper()}: {v.title}" for v in worst[:3]) or "no problem found"
    where = f"step {step}: " if step is not None else ""
    fig.suptitle(f"{where}{head}", fontsize=9, wrap=True)
    if legend:
        fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    return figure_to_rgb(fig)
