"""Trend plots of a comparison: each metric against the step, one line per run (Agg canvas, no pyplot).

How to read one: every line is a run; the dashed grey line is the baseline's value; the dotted red line is
the metric's limit; a star marks the best checkpoint; red crosses mark flagged checkpoints (regressed
against the baseline or over the limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..plots import new_figure
from .metrics import MetricSpec, label_of
from .table import Comparison

__all__ = ["trend_figure", "trend_groups", "mpl_text", "HOW_TO_READ"]

HOW_TO_READ = ("One line per run (samples mode: the ranked aggregate solid, the others dotted). Dashed "
               "grey: the baseline's value. Dotted red: the limit. Star: the best checkpoint. Red crosses: "
               "flagged checkpoints (regressed against the baseline or over the limit).")

#: Runs named in a legend; more runs are drawn but summarised as "+N more".
LEGEND_MAX = 12
#: Above this many points the lines and markers are rasterised in vector output (PDF).
RASTER_POINTS = 1500


def mpl_text(text: str) -> str:
    """Text for matplotlib without mathtext: ``$`` would turn a run name into a (possibly invalid) formula."""
    return str(text).replace("$", r"\$")


def trend_groups(c: Comparison) -> list[tuple[str, list[int]]]:
    """One figure per metric: ``(label, columns)``; in samples mode a metric's aggregates share a figure,
    the ranked aggregate first."""
    groups: dict[str, list[int]] = {}
    for j, spec in enumerate(c.specs):
        groups.setdefault(label_of(spec.base), []).append(j)
    return [(label, sorted(cols, key=lambda j: c.specs[j].weight <= 0)) for label, cols in groups.items()]


_AGG_STYLES: tuple[Any, ...] = (":", "-.", (0, (1, 3)))  # matplotlib line styles: a name or (offset, dashes)


def trend_figure(c: Comparison, j: int, *, extra: Sequence[int] = (), width: float = 7.0, height: float = 4.2
                 ) -> Any:
    """The trend figure of column ``j`` of ``c`` (a matplotlib Figure on an Agg canvas). ``extra`` columns
    (the other samples-mode aggregates of the same metric) are drawn as thin dashed / dotted lines."""
    spec: MetricSpec = c.specs[j]
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(c.run))
    code_of = {name: k for k, name in enumerate(names)}
    codes = np.fromiter((code_of[r] for r in c.run), dtype=np.int64, count=len(c))
    order = np.lexsort((c.step, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    colors = _colors(len(names))
    # One LineCollection and one scatter for every run: two artists, not one per run (100 runs draw fast).
    x, y = c.step[order].astype(np.float64), c.values[order, j]
    segments = [np.column_stack([xs[np.isfinite(ys)], ys[np.isfinite(ys)]])
                for xs, ys in zip(np.split(x, bounds), np.split(y, bounds), strict=True)]
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    # Many points: draw the data as pixels inside vector output (a PDF page of 5000 markers is slow and big).
    raster = bool(np.isfinite(y).sum() > RASTER_POINTS)
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=1.3, rasterized=raster))
    agg_handles = []
    for style, k in zip(_AGG_STYLES, extra, strict=False):  # at most as many aggregates as styles
        yk = c.values[order, k]
        segs = [np.column_stack([xs[np.isfinite(ys)], ys[np.isfinite(ys)]])
                for xs, ys in zip(np.split(x, bounds), np.split(yk, bounds), strict=True)]
        ax.add_collection(LineCollection(segs, colors=colors, linewidths=0.9, linestyles=style, alpha=0.8,
                                         rasterized=raster))
        agg_handles.append(Line2D([], [], color="0.3", linewidth=0.9, linestyle=style,
                                  label=mpl_text(c.specs[k].key.rsplit("/", 1)[-1])))
    finite = np.isfinite(y)
    ax.scatter(x[finite], y[finite], s=9, c=np.asarray(colors)[codes[order][finite]], zorder=2,
               rasterized=raster)
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
    title = spec.label if not extra else f"{spec.label} (solid; other aggregates dotted)"
    ax.set_title(mpl_text(f"{title}, {goal}"), fontsize=10)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    labels = sorted({c.checkpoint[i] for i in range(len(c)) if not c.checkpoint[i].isdigit()})
    if labels:  # samples mode: name the checkpoints on the x axis
        ticks = {int(c.step[i]): c.checkpoint[i] for i in range(len(c))}
        ax.set_xticks(list(ticks), [mpl_text(t) for t in ticks.values()], rotation=30, fontsize=7)
        ax.set_xlabel("checkpoint")
    marks = list(ax.get_lines())  # baseline, limit, flagged, best
    shown = handles + agg_handles + marks
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
