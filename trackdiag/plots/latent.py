"""Latent figures: channel maps of one sample, per-channel statistics, drift over batches or files.

Every renderer returns an ``H×W×3`` uint8 image: the in-loop ones (montage, channel statistics) drawn with
Pillow (:mod:`trackdiag.plots.raster`), the drift figure (offline reports only) on an Agg canvas (no pyplot).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from . import figure_to_rgb, new_figure

__all__ = ["STAT_ROWS", "channel_montage", "channel_stats_figure", "drift_figure"]

#: Rows of the ``7×C`` channel-statistics array of the latent analyzer.
STAT_ROWS = ("mean", "std", "skew", "kurtosis", "stripe_rows", "stripe_cols", "period_score")


_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def channel_montage(maps: np.ndarray, *, title: str, max_channels: int = 16) -> np.ndarray:
    """One panel per channel of a ``C×h×w`` latent (each with its own symmetric ``RdBu_r`` scale around its
    mean), up to 4 a row; a panel is 230 px wide. Drawn with Pillow (in-loop figure)."""
    from .raster import Canvas, colorize

    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    c = min(maps.shape[0], max_channels)
    cols = min(c, 4)
    rows = int(math.ceil(c / cols))
    pw = 230
    ph = max(8, int(round(pw * maps.shape[1] / max(maps.shape[2], 1))))
    gap, top = 10, 26
    cell = ph + 20
    canvas = Canvas(cols * (pw + gap) + gap, top + rows * cell + gap)
    canvas.text((canvas.width / 2, 6), title, size=12, anchor="ma")
    for i in range(c):
        r, k = divmod(i, cols)
        x0, y0 = gap + k * (pw + gap), top + r * cell + 18
        m = maps[i]
        finite = m[np.isfinite(m)]
        lim = float(np.abs(finite - finite.mean()).max()) if finite.size else 1.0
        centre = float(finite.mean()) if finite.size else 0.0
        lim = lim if lim > 0 else 1.0
        canvas.image(colorize(m, "RdBu_r", centre - lim, centre + lim), (x0, y0, x0 + pw, y0 + ph))
        canvas.rect((x0, y0, x0 + pw, y0 + ph), outline="#333", width=0.5)
        canvas.text((x0 + pw / 2, y0 - 4), f"channel {i}", size=11, anchor="md")
    return canvas.to_array()


def channel_stats_figure(stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-channel mean, std, skew, kurtosis, stripe energies and period score, one bar group per latent.

    ``stats``: latent name → ``7×C`` array in the order of :data:`STAT_ROWS`. Returns ``520×1000×3`` uint8
    (drawn with Pillow: an in-loop figure); the std panel has a dashed line at 1.
    """
    from .raster import Axes, Canvas

    names = list(stats)
    arrs = [np.nan_to_num(np.asarray(stats[n], dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            for n in names]
    canvas = Canvas(1000, 520)
    canvas.text((500, 6), "latent channels (std 1, skew 0, kurtosis 0 for unit-normal latents)", size=12,
                anchor="ma")
    width = 0.8 / max(1, len(names))
    nch = max([a.shape[1] for a in arrs] + [1])
    for i, label in enumerate(STAT_ROWS):
        r, k = divmod(i, 4)
        box = (50.0 + k * 245, 48.0 + r * 240, 50.0 + k * 245 + 190, 48.0 + r * 240 + 180)
        vals = np.concatenate([a[i] for a in arrs] + [np.zeros(1)])
        lo, hi = min(0.0, float(vals.min())), max(0.0, float(vals.max()))
        if i == 1:
            hi = max(hi, 1.0)
        pad = (hi - lo) * 0.08 or 0.5
        ax = Axes(canvas, box, xlim=(-0.6, nch - 0.4), ylim=(lo - (pad if lo < 0 else 0), hi + pad))
        ax.grid_under()
        for j, a in enumerate(arrs):
            for ch, v in enumerate(a[i].tolist()):
                xl = ch + j * width - 0.4
                canvas.rect((float(ax.px(xl)), float(ax.py(max(v, 0.0))), float(ax.px(xl + width)),
                             float(ax.py(min(v, 0.0)))), fill=_TAB10[j % len(_TAB10)])
        ax.hline(0.0, color="#555", width=0.6)
        if i == 1:
            ax.hline(1.0, color="#7f7f7f", width=0.8, dash=(4, 3))
        ticks = list(range(nch)) if nch <= 16 else list(range(0, nch, max(1, nch // 8)))
        ax.frame(xticks=ticks, title=label, tick_size=9, title_size=11)
    canvas.legend([(n, {"color": _TAB10[j % len(_TAB10)], "patch": True}) for j, n in enumerate(names)],
                  anchor=(790.0, 290.0), corner="ul", size=10)
    return canvas.to_array()


def drift_figure(labels: Sequence[Any], drift: Mapping[str, Sequence[float]], *, threshold: float,
                 flagged: Optional[Mapping[str, Sequence[bool]]] = None) -> np.ndarray:
    """Drift distance per batch (or file) for each latent name, flagged points marked."""
    flagged = flagged or {}
    fig = new_figure(8.0, 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    for name, values in drift.items():
        v = np.asarray(values, dtype=np.float64)
        ax.plot(x, v, marker="o", ms=3, lw=1.2, label=name)
        flags = np.asarray(flagged.get(name, [False] * len(v)), dtype=bool)
        if flags.any():
            ax.scatter(x[flags], v[flags], marker="^", s=60, color="#d62728", zorder=5)
    ax.axhline(threshold, color="#d62728", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("batch / file (in order)")
    ax.set_ylabel("distance (reference sigma)")
    ax.set_title("latent drift from the running reference")
    if len(labels) <= 20:
        ax.set_xticks(x)
        ax.set_xticklabels([str(s) for s in labels], rotation=45, ha="right", fontsize=7)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return figure_to_rgb(fig)
