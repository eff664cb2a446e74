"""Loss-curve figures: the raw loss, its EMA and smoothing, and the timestep profile, with events marked.

Every renderer returns an ``H×W×3`` uint8 image (Agg canvas, no pyplot), so it runs on the worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from . import figure_to_rgb, new_figure

__all__ = ["EVENT_STYLE", "loss_curve_figure", "loss_history_figure", "bucket_profile_figure"]

#: Marker style per event kind.
EVENT_STYLE: dict[str, dict[str, Any]] = {
    "spike": {"marker": "^", "color": "#d62728", "label": "spike"},
    "plateau": {"marker": "s", "color": "#9467bd", "label": "plateau"},
    "ema_divergence": {"marker": "D", "color": "#ff7f0e", "label": "EMA divergence"},
    "nonfinite": {"marker": "x", "color": "#000000", "label": "NaN/Inf"},
}


def _positive(*series: np.ndarray) -> bool:
    vals = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in series])
    vals = vals[np.isfinite(vals)]
    return bool(vals.size) and bool((vals > 0).all())


def _mark_events(ax: Any, steps: np.ndarray, y: np.ndarray, events: Sequence[Mapping[str, Any]]) -> None:
    """Put one marker per event on curve ``y`` (at the event's step; NaN/Inf events at the axis bottom)."""
    if not events or steps.size == 0:
        return
    order = np.argsort(steps)
    s_sorted, y_sorted = steps[order], y[order]
    finite_y = y[np.isfinite(y)]
    bottom = float(finite_y.min()) if finite_y.size else 0.0
    for kind, style in EVENT_STYLE.items():
        xs = np.asarray([float(e["step"]) for e in events if e.get("kind") == kind])
        if xs.size == 0:
            continue
        idx = np.clip(np.searchsorted(s_sorted, xs), 0, s_sorted.size - 1)
        ys = y_sorted[idx].astype(np.float64)
        ys = np.where(np.isfinite(ys), ys, bottom)
        ax.scatter(xs, ys, marker=style["marker"], color=style["color"], s=36, zorder=5,
                   label=f"{style['label']} ({xs.size})")
        if kind in ("plateau", "ema_divergence"):
            for x in xs:
                ax.axvline(x, color=style["color"], alpha=0.25, lw=1)


def loss_curve_figure(steps: np.ndarray, curves: Mapping[str, np.ndarray], *, title: str,
                      events: Sequence[Mapping[str, Any]] = (), mark_on: Optional[str] = None,
                      ylabel: str = "loss", log_y: Optional[bool] = None) -> np.ndarray:
    """One panel with ``curves`` (name → ``(N,)``, aligned with ``steps``) and the events marked.

    ``mark_on`` names the curve that carries the event markers (default: the first). ``log_y`` defaults to
    a log axis when every value is positive.
    """
    steps = np.asarray(steps, dtype=np.float64)
    fig = new_figure(8.0, 4.0)
    ax = fig.add_subplot()
    names = list(curves)
    styles = [dict(lw=0.6, alpha=0.55, color="#1f77b4"), dict(lw=1.6, color="#ff7f0e"),
              dict(lw=1.4, color="#2ca02c"), dict(lw=1.0, color="#7f7f7f", ls="--")]
    for i, name in enumerate(names):
        ax.plot(steps, np.asarray(curves[name], dtype=np.float64), label=name, **styles[i % len(styles)])
    if names:
        key = mark_on if mark_on in curves else names[0]
        _mark_events(ax, steps, np.asarray(curves[key], dtype=np.float64), events)
    if (log_y is None and _positive(*curves.values())) or log_y:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure_to_rgb(fig)


def loss_history_figure(history: np.ndarray, *, spike_sigma: float = 3.0) -> np.ndarray:
    """The in-loop figure from :meth:`LossDetector.history_array` (``6×N``: step, loss, ema, smoothed,
    expected, spike flag): loss, ema_loss, smoothed and the expected level, spikes marked."""
    h = np.asarray(history, dtype=np.float64)
    steps = h[0]
    events = [{"step": s, "kind": "spike"} for s in steps[h[5] > 0]]
    events += [{"step": s, "kind": "nonfinite"} for s in steps[~np.isfinite(h[1])]]
    return loss_curve_figure(steps, {"train_loss": h[1], "ema_loss": h[2], "smoothed": h[3],
                                     "expected (timestep-aware)": h[4]},
                             title=f"loss, last {h.shape[1]} steps (spike > {spike_sigma:g} sigma)",
                             events=events)


def bucket_profile_figure(profile: np.ndarray, *, t_max: float, transform: str = "log") -> np.ndarray:
    """Bar chart of the learned loss level per timestep bucket (``(K,)``; NaN = bucket never seen)."""
    prof = np.asarray(profile, dtype=np.float64)
    k = prof.size
    edges = np.linspace(0.0, float(t_max), k + 1)
    fig = new_figure(6.0, 3.5)
    ax = fig.add_subplot()
    ok = np.isfinite(prof)
    ax.bar(edges[:-1][ok], prof[ok], width=np.diff(edges)[ok], align="edge", color="#1f77b4",
           edgecolor="white")
    ax.set_xlabel("timestep")
    ax.set_ylabel("relative loss level" if transform == "log" else "loss offset")
    if transform == "log":
        ax.axhline(1.0, color="#7f7f7f", lw=1, ls="--")
    ax.set_title("loss level per timestep bucket (what the detector normalises away)")
    ax.grid(True, axis="y", alpha=0.3)
    return figure_to_rgb(fig)
