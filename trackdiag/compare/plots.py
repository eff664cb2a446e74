"""Trend plots of a comparison: each metric against the step, one line per run (Agg canvas, no pyplot).

How to read one: every line is a run; the dashed grey line is the baseline's value; the dotted red line is
the metric's limit; a star marks the best checkpoint; red crosses mark flagged checkpoints (regressed
against the baseline or over the limit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plots import new_figure
from .metrics import MetricSpec
from .table import Comparison

__all__ = ["trend_figure", "mpl_text", "HOW_TO_READ"]

HOW_TO_READ = ("One line per run. Dashed grey: the baseline's value. Dotted red: the limit. Star: the best "
               "checkpoint. Red crosses: flagged checkpoints (regressed against the baseline or over the limit).")

#: Runs named in a legend; more runs are drawn but summarised as "+N more".
LEGEND_MAX = 12


def mpl_text(text: str) -> str:
    """Text for matplotlib without mathtext: ``$`` would turn a run name into a (possibly invalid) formula."""
    return str(text).replace("$", r"\$")


def trend_figure(c: Comparison, j: int, *, width: float = 7.0, height: float = 4.2) -> Any:
    """The trend figure of column ``j`` of ``c`` (a matplotlib Figure on an Agg canvas)."""
    spec: MetricSpec = c.specs[j]
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(c.run))
    code_of = {name: k for k, name in enumerate(names)}
    codes = np.fromiter((code_of[r] for r in c.run), dtype=np.int64, count=len(c))
    order = np.lexsort((c.step, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    colors = _colors(len(names))
    # One LineCollection and one scatter for every run: two artists instead of one per run (100 runs draw fast).
    x, y = c.step[order].astype(np.float64), c.values[order, j]
    segments = [np.column_stack([xs[np.isfinite(ys)], ys[np.isfinite(ys)]])
                for xs, ys in zip(np.split(x, bounds), np.split(y, bounds))]
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    ax.add_collection(LineCollection(segments, colors=colors, linewidths=1.3))
    finite = np.isfinite(y)
    ax.scatter(x[finite], y[finite], s=9, c=np.asarray(colors)[codes[order][finite]], zorder=2)
    ax.autoscale_view()
    handles = [Line2D([], [], color=colors[k], marker="o", markersize=3, linewidth=1.3, label=mpl_text(name))
               for k, name in enumerate(names[:LEGEND_MAX])]
    base = c.values[c.baseline, j]
    if np.isfinite(base):
        ax.axhline(base, color="0.45", linestyle="--", linewidth=1, label="baseline")
    if spec.limit is not None:
        ax.axhline(spec.limit, color="#c62828", linestyle=":", linewidth=1.2, label="limit")
    flagged = np.flatnonzero(c.flagged[:, j])
    if flagged.size:
        ax.plot(c.step[flagged], c.values[flagged, j], linestyle="none", marker="x", color="#c62828",
                markersize=7, label="flagged")
    best = np.flatnonzero(c.best[:, j])
    if best.size:
        ax.plot(c.step[best], c.values[best, j], linestyle="none", marker="*", color="#f9a825",
                markeredgecolor="k", markersize=13, label="best")
    goal = {"min": "lower is better", "max": "higher is better"}.get(spec.goal, "not judged")
    ax.set_title(mpl_text(f"{spec.label} ({goal})"), fontsize=10)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    labels = sorted({c.checkpoint[i] for i in range(len(c)) if not c.checkpoint[i].isdigit()})
    if labels:  # samples mode: name the checkpoints on the x axis
        ticks = {int(c.step[i]): c.checkpoint[i] for i in range(len(c))}
        ax.set_xticks(list(ticks), [mpl_text(t) for t in ticks.values()], rotation=30, fontsize=7)
        ax.set_xlabel("checkpoint")
    extra = list(ax.get_lines())  # baseline, limit, flagged, best
    shown = handles + extra
    texts = [h.get_label() for h in shown]
    if len(names) > LEGEND_MAX:
        shown.insert(LEGEND_MAX, Line2D([], [], linestyle="none"))
        texts.insert(LEGEND_MAX, f"+{len(names) - LEGEND_MAX} more runs")
    ax.legend(shown, texts, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    if n <= 20:
        return [tuple(cmap(i % cmap.N)) for i in range(n)]
    return [tuple(cmap(x)) for x in np.linspace(0, 0.95, n)]
