"""The key numbers of a diagnosis against their limits: one bar per metric with warn/bad lines drawn."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from . import figure_to_rgb, new_figure

__all__ = ["limits_figure", "HOW_TO_READ"]

HOW_TO_READ = ("Each bar is one measured value on the scale of its own limits: the orange line is where it "
               "becomes a warning, the red line where it is bad (for metrics where lower is better; for the "
               "others the scale is turned so that right is always worse). Bars are coloured by the level "
               "they reach.")


def limits_figure(analyzer: str, summary: Mapping[str, Any], *, max_rows: int = 14) -> Optional[np.ndarray]:
    """``H×W×3`` uint8, or None when no metric of ``summary`` has a limit in :mod:`trackdiag.metricspec`."""
    from ..metricspec import specs_for

    rows = []
    for key, s in specs_for(analyzer).items():
        value = summary.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)) or s.goal == "none":
            continue
        warn, bad = s.warn, s.bad
        if warn is None and bad is None:
            continue
        ref = bad if bad is not None else warn
        if ref is None or ref == 0:
            continue
        # Position on a "worse to the right" scale where the bad limit (or the warn limit) sits at 1.
        pos = float(value) / ref if s.goal == "min" else ref / float(value) if float(value) else math.inf
        w = (warn / ref if s.goal == "min" else ref / warn) if warn is not None and warn != 0 else None
        rows.append((key, float(value), pos, w, bad is not None, s.level(float(value)), s.unit))
    if not rows:
        return None
    rows.sort(key=lambda r: -r[2])
    rows = rows[:max_rows]
    fig = new_figure(6.4, 0.45 * len(rows) + 1.2)
    ax = fig.add_subplot()
    colours = {"bad": "#c62828", "warn": "#e0a000", "none": "#2e7d32"}
    y = np.arange(len(rows))
    shown = [min(r[2], 3.0) for r in rows]
    ax.barh(y, shown, color=[colours[r[5]] for r in rows], height=0.6)
    for i, (_key, value, pos, w, has_bad, _level, unit) in enumerate(rows):
        if w is not None:
            ax.plot([w, w], [i - 0.4, i + 0.4], color="#e0a000", lw=2)
        if has_bad:
            ax.plot([1, 1], [i - 0.4, i + 0.4], color="#c62828", lw=2)
        ax.text(min(pos, 3.0) + 0.03, i, f"{value:.3g}{(' ' + unit) if unit and unit != 'ratio' else ''}",
                va="center", fontsize=8)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.3, min(3.2, max(shown) + 0.4)))
    ax.set_xticks([])
    ax.set_title(f"{analyzer}: values against their limits (orange = warn, red = bad)", fontsize=9)
    return figure_to_rgb(fig)
