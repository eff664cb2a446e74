"""Loss-curve figures: the raw loss, its EMA and smoothing, and the timestep profile, with events marked.

Every renderer returns an ``H×W×3`` uint8 image: the loss curves (drawn in the training loop) with Pillow
(:mod:`trackdiag.plots.raster`), the bucket profile (offline reports only) on an Agg canvas (no pyplot).
"""

from __future__ import annotations

import math
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


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks at 1, 2, 5 × 10^k between ``lo`` and ``hi`` (positive), thinned to at most ~8."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    out = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
           for m in (1.0, 2.0, 5.0)]
    out = [v for v in out if lo <= v <= hi]
    if len(out) > 8:
        out = [v for v in out if math.isclose(math.log10(v) % 1.0, 0.0, abs_tol=1e-9)
               or math.isclose(math.log10(v) % 1.0, 1.0, abs_tol=1e-9)]
    return out


#: Line style per curve position (colour, width, dash).
_STYLES: list[dict[str, Any]] = [{"color": "#8fb8dc", "width": 0.8}, {"color": "#ff7f0e", "width": 1.6},
           {"color": "#2ca02c", "width": 1.4}, {"color": "#7f7f7f", "width": 1.0, "dash": (5, 3)}]
_SHAPES = {"^": "^", "s": "s", "D": "D", "x": "x"}


def loss_curve_figure(steps: np.ndarray, curves: Mapping[str, np.ndarray], *, title: str,
                      events: Sequence[Mapping[str, Any]] = (), mark_on: Optional[str] = None,
                      ylabel: str = "loss", log_y: Optional[bool] = None) -> np.ndarray:
    """One panel with ``curves`` (name → ``(N,)``, aligned with ``steps``) and the events marked.

    ``mark_on`` names the curve that carries the event markers (default: the first). ``log_y`` defaults to
    a log axis when every value is positive. Returns ``400×800×3`` uint8 (drawn with Pillow).
    """
    from .raster import Axes, Canvas

    steps = np.asarray(steps, dtype=np.float64)
    names = list(curves)
    use_log = bool(log_y) or (log_y is None and _positive(*curves.values()))
    vals = {n: np.asarray(curves[n], dtype=np.float64) for n in names}
    with np.errstate(divide="ignore", invalid="ignore"):
        shown = {n: (np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan) if use_log else v)
                 for n, v in vals.items()}
    allv = np.concatenate([v[np.isfinite(v)] for v in shown.values()] + [np.zeros(0)])
    fs = steps[np.isfinite(steps)]
    xlim = (float(fs.min()), float(fs.max())) if fs.size else (0.0, 1.0)
    xlim = (xlim[0] - 0.5, xlim[0] + 0.5) if xlim[1] <= xlim[0] else (
        xlim[0] - 0.02 * (xlim[1] - xlim[0]), xlim[1] + 0.02 * (xlim[1] - xlim[0]))
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    pad = (hi - lo) * 0.06 if hi > lo else 0.5
    ylim = (lo - pad, hi + pad)
    c = Canvas(800, 400)
    ax = Axes(c, (72.0, 30.0, 786.0, 350.0), xlim=xlim, ylim=ylim)
    if use_log:
        yt = _log_ticks(10 ** ylim[0], 10 ** ylim[1])
        if len(yt) < 2:  # a narrow range: linear ticks in value, placed on the log axis
            from .raster import nice_ticks

            yt = [v for v in nice_ticks(10 ** ylim[0], 10 ** ylim[1], 5) if v > 0]
        ytp, ylab = [math.log10(v) for v in yt], [f"{v:g}" for v in yt]
    else:
        from .raster import fmt_tick, nice_ticks

        ytp = nice_ticks(*ylim)
        ylab = [fmt_tick(v) for v in ytp]
    from .raster import nice_ticks as _nt

    xt = _nt(*xlim)
    for v in xt:
        ax.vline(v, color="#e6e6e6")
    for v in ytp:
        ax.hline(v, color="#e6e6e6")
    legend: list[tuple[str, dict[str, Any]]] = []
    for i, name in enumerate(names):
        st = _STYLES[i % len(_STYLES)]
        ax.plot(steps, shown[name], color=st["color"], width=st["width"], dash=st.get("dash"))
        legend.append((name, dict(st)))
    if names and events and steps.size:
        key = mark_on if (mark_on is not None and mark_on in curves) else names[0]
        y = shown[key]
        order = np.argsort(steps)
        s_sorted, y_sorted = steps[order], y[order]
        fy = y[np.isfinite(y)]
        bottom = float(fy.min()) if fy.size else ylim[0]
        for kind, style in EVENT_STYLE.items():
            xs = np.asarray([float(e["step"]) for e in events if e.get("kind") == kind])
            if xs.size == 0:
                continue
            if kind in ("plateau", "ema_divergence"):
                for x in xs:
                    ax.vline(float(x), color=_faint(style["color"]), width=1.0)
            idx = np.clip(np.searchsorted(s_sorted, xs), 0, s_sorted.size - 1)
            ys = np.where(np.isfinite(y_sorted[idx]), y_sorted[idx], bottom)
            pxs, pys = np.atleast_1d(ax.px(xs)).tolist(), np.atleast_1d(ax.py(ys)).tolist()
            for px_, py_ in zip(pxs, pys, strict=True):
                c.marker(px_, py_, shape=_SHAPES[style["marker"]], fill=style["color"], size=8)
            legend.append((f"{style['label']} ({xs.size})",
                           {"color": style["color"], "marker": style["marker"]}))
    ax.frame(xticks=xt, yticks=ytp, ylabels=ylab, xlabel="step", ylabel=ylabel, title=title)
    c.legend(legend, anchor=(ax.box[2] - 6, ax.box[1] + 6), corner="ur", size=8)
    return c.to_array()


def _faint(colour: str) -> tuple[int, int, int]:
    """``colour`` at 25 % over white (the look of alpha 0.25)."""
    h = colour.lstrip("#")
    rgb = [int(h[i:i + 2], 16) for i in (0, 2, 4)]
    return tuple(int(round(255 - 0.25 * (255 - v))) for v in rgb)  # type: ignore[return-value]


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
