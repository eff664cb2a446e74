"""Latent figures: channel maps of one sample, per-channel statistics, drift over batches or files.

Every renderer returns an ``H×W×3`` uint8 image (Agg canvas, no pyplot), so it runs on the worker thread.
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


def channel_montage(maps: np.ndarray, *, title: str, max_channels: int = 16) -> np.ndarray:
    """One panel per channel of a ``C×h×w`` latent (each with its own symmetric colour scale)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    c = min(maps.shape[0], max_channels)
    cols = min(c, 4)
    rows = int(math.ceil(c / cols))
    fig = new_figure(2.4 * cols + 0.4, 2.4 * rows + 0.5)
    for i in range(c):
        ax = fig.add_subplot(rows, cols, i + 1)
        m = maps[i]
        finite = m[np.isfinite(m)]
        lim = float(np.abs(finite - finite.mean()).max()) if finite.size else 1.0
        centre = float(finite.mean()) if finite.size else 0.0
        ax.imshow(m, cmap="RdBu_r", vmin=centre - lim, vmax=centre + lim, interpolation="nearest")
        ax.set_title(f"channel {i}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return figure_to_rgb(fig)


def channel_stats_figure(stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-channel mean, std, skew, kurtosis, stripe energies and period score, one bar group per latent.

    ``stats``: latent name → ``7×C`` array in the order of :data:`STAT_ROWS`.
    """
    names = list(stats)
    fig = new_figure(10.0, 5.2)
    axes = [fig.add_subplot(2, 4, i + 1) for i in range(len(STAT_ROWS))]
    width = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        arr = np.asarray(stats[name], dtype=np.float64)
        x = np.arange(arr.shape[1])
        for i, (ax, label) in enumerate(zip(axes, STAT_ROWS)):
            ax.bar(x + j * width - 0.4 + width / 2, np.nan_to_num(arr[i], nan=0.0), width=width, label=name)
            ax.set_title(label, fontsize=9)
            ax.set_xticks(x)
            ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    axes[1].axhline(1.0, color="#7f7f7f", lw=0.8, ls="--")
    fig.suptitle("latent channels (std 1, skew 0, kurtosis 0 for unit-normal latents)", fontsize=10)
    return figure_to_rgb(fig)


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
