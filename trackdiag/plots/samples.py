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

from .figuredata import LocalGeometry

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
    if d.ndim != 2 or np.asarray(geometry).size < 4 or not d.size:
        return None
    g = LocalGeometry.from_array(geometry)
    win, stride = g.window_px, g.stride_px
    h, w = shape
    sy, sx = size[0] / h, size[1] / w
    ys = (np.arange(h) + 0.5) * sy
    xs = (np.arange(w) + 0.5) * sx
    iy = np.floor((ys - (win / 2 - stride / 2)) / stride).astype(int)
    ix = np.floor((xs - (win / 2 - stride / 2)) / stride).astype(int)
    inside = (iy[:, None] >= 0) & (iy[:, None] < d.shape[0]) & (ix[None, :] >= 0) & (ix[None, :] < d.shape[1])
    vals = d[np.clip(iy, 0, d.shape[0] - 1)[:, None], np.clip(ix, 0, d.shape[1] - 1)[None, :]]
    return np.where(inside & np.isfinite(vals), vals, 0.0)


def _resize(a: np.ndarray, size: tuple[int, int], *, nearest: bool) -> np.ndarray:
    """``h×w`` or ``h×w×3`` uint8 → ``size`` (W, H): box-averaged when shrinking, nearest otherwise."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))
    shrink = size[0] < im.width or size[1] < im.height
    mode = Image.Resampling.NEAREST if nearest or not shrink else Image.Resampling.BOX
    return np.asarray(im.resize(size, mode))


def _wrap(canvas: Any, text: str, width: float, size: float) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` output pixels."""
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        trial = f"{cur} {word}" if cur else word
        if cur and canvas.text_width(trial, size) > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def _panel(img: np.ndarray, pw: int, ph: int, *, mask: Optional[np.ndarray], zones: Optional[np.ndarray],
           grid_steps: Sequence[tuple[float, float]]) -> np.ndarray:
    """One sample at ``ph×pw`` with the zones (red, 35 %), the grid lines (yellow, 45 %) and the mask outline
    (cyan) drawn into its pixels."""
    rgb = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    out = _resize(rgb[..., :3], (pw, ph), nearest=False).astype(np.float32)
    h, w = img.shape[:2]
    if zones is not None:
        z = _resize((zones > 0.5).astype(np.uint8) * 255, (pw, ph), nearest=True) > 127
        out[z] = out[z] * 0.65 + np.array([255.0, 0.0, 0.0]) * 0.35
    yellow = np.array([255.0, 255.0, 0.0])
    for sx, sy in grid_steps:  # in thumbnail pixels
        for x in np.arange(sx, w, sx):
            c = int(round((x - 0.5) / w * pw))
            if 0 <= c < pw:
                out[:, c] = out[:, c] * 0.55 + yellow * 0.45
        for y in np.arange(sy, h, sy):
            r = int(round((y - 0.5) / h * ph))
            if 0 <= r < ph:
                out[r] = out[r] * 0.55 + yellow * 0.45
    if mask is not None:
        m = _resize(np.asarray(mask, dtype=np.uint8) * 255, (pw, ph), nearest=True) > 127
        edge = np.zeros_like(m)
        edge[:-1] |= m[:-1] != m[1:]
        edge[:, :-1] |= m[:, :-1] != m[:, 1:]
        out[edge] = (0.0, 255.0, 255.0)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def samples_figure(images: np.ndarray, *, masks: Optional[np.ndarray] = None, size: Sequence[int] = (),
                   tiling_maps: Optional[Mapping[str, np.ndarray]] = None,
                   verdicts: Sequence[Any] = (), step: Optional[int] = None,
                   sample_ids: Optional[Sequence[str]] = None, panel_in: float = 3.2) -> Optional[np.ndarray]:
    """Render the samples figure (``H×W×3`` uint8), or None when there is no image to show.

    ``images`` n×h×w×3 uint8; ``masks`` n×h×w; ``size`` the original (H, W); ``tiling_maps`` the tiling
    Result's maps (``local_doubled``, ``local_geometry``); ``verdicts`` the step's verdicts; ``panel_in`` the
    width of one image in inches at 100 dpi (so a panel is ``100·panel_in`` pixels wide, less its margins).
    Drawn with Pillow (:mod:`trackdiag.plots.raster`): this figure is drawn at every analysis step.
    """
    from .raster import Canvas

    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[0] == 0 or imgs.shape[1] < 2 or imgs.shape[2] < 2:
        return None
    n, h, w = imgs.shape[:3]
    orig = (float(size[0]), float(size[1])) if len(size) >= 2 else (float(h), float(w))
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    gap = 10
    pw = max(16, int(round(100 * panel_in)) - gap)
    ph = max(16, int(round(pw * h / w)))
    problems = [v for v in verdicts if getattr(v, "severity", "") in ("bad", "warn")]
    grids = sorted({int(m.group(1)) for v in problems if (m := _GRID.match(v.code))})
    zones = None
    maps = tiling_maps or {}
    if "local_doubled" in maps and "local_geometry" in maps:
        zones = _zones(maps["local_doubled"], maps["local_geometry"], (h, w), orig)
    worst = sorted(problems, key=lambda v: v.severity != "bad")
    head = "; ".join(f"{v.severity.upper()}: {v.title}" for v in worst[:3]) or "no problem found"
    where = f"step {step}: " if step is not None else ""
    width = cols * (pw + gap) + gap
    probe = Canvas(1, 1)
    title_lines = _wrap(probe, f"{where}{head}", width - 2 * gap, 12)
    top = 8 + 17 * len(title_lines)
    cell_h = 18 + ph + gap
    legend: list[tuple[str, dict[str, Any]]] = []
    has_mask = [masks is not None and i < len(masks) and bool(np.asarray(masks[i]).any())
                and not bool(np.asarray(masks[i]).all()) for i in range(n)]
    if has_mask and has_mask[0]:
        legend.append(("mask outline", {"color": "cyan", "patch": True}))
    show_zones = zones is not None and bool((zones > 0.5).any())
    if show_zones:
        legend.append(("≈2× period zones", {"color": (255, 128, 128), "patch": True}))
    steps_px = [(k * w / orig[1], k * h / orig[0]) for k in grids if k * w / orig[1] >= 3]
    legend += [(f"{k}-px grid", {"color": "yellow", "patch": True}) for k in grids if k * w / orig[1] >= 3]
    legend_rows: list[list[tuple[str, dict[str, Any]]]] = []
    for entry in legend:  # greedy rows that fit the width
        need = probe.text_width(entry[0], 10) + 36
        row_w = sum(probe.text_width(e[0], 10) + 36 for e in legend_rows[-1]) if legend_rows else 0.0
        if legend_rows and row_w + need <= width - gap:
            legend_rows[-1].append(entry)
        else:
            legend_rows.append([entry])
    height = top + rows * cell_h + (4 + 18 * len(legend_rows) if legend_rows else 4)
    c = Canvas(width, height)
    for j, line in enumerate(title_lines):
        c.text((width / 2, 6 + 17 * j), line, size=12, anchor="ma")
    for i in range(n):
        r, k = divmod(i, cols)
        x0, y0 = gap + k * (pw + gap), top + r * cell_h
        label = str(sample_ids[i]) if sample_ids is not None and i < len(sample_ids) else f"sample {i}"
        c.text((x0 + pw / 2, y0 + 14), label, size=11, anchor="md")
        mask_i = np.asarray(masks[i]) if (masks is not None and has_mask[i]) else None
        panel = _panel(imgs[i], pw, ph, mask=mask_i,
                       zones=zones if (i == 0 and show_zones) else None, grid_steps=steps_px)
        c.image(panel, (x0, y0 + 18, x0 + pw, y0 + 18 + ph))
        c.rect((x0 - 1, y0 + 17, x0 + pw, y0 + 18 + ph), outline="#333", width=0.5)
    for j, row in enumerate(legend_rows):
        lw = sum(c.text_width(lab, 10) + 36 for lab, _ in row) - 12
        x = (width - lw) / 2
        y = height - 12 - 18 * (len(legend_rows) - 1 - j)
        for lab, st in row:
            c.rect((x, y - 5, x + 20, y + 5), fill=st["color"])
            c.text((x + 25, y), lab, size=10, anchor="lm")
            x += c.text_width(lab, 10) + 36
    return c.to_array()
