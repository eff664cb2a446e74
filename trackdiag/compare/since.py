""""Since when": the step at which a run got worse, by change-point detection on every diagnostic series.

For each run, every judged series (the table's columns with a goal, the verdict severities — logged, or
recomputed per checkpoint — and the training loss) goes through
:func:`trackdiag.functional.changepoint.events`.
A break is an *onset* when it goes the wrong way (up for a ``min`` metric, a verdict or the loss; down for
``max``) and, for a metric with a ``warn`` limit in :mod:`trackdiag.metricspec`, lands on the wrong side of
it. Each onset has the first step after the break, its 95 % interval (``lo``..``hi`` steps) and the last
good checkpoint (the last checkpoint before ``lo``); for the loss also the samples and steps of the loss
events logged inside the window (the loss analyzer's ``events`` table), when the run has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import numpy as np

from ..core.values import ROOT
from ..functional.changepoint import events
from .data import RunData, Series
from .metrics import label_of

__all__ = ["onsets", "LOSS_KEYS", "summary_lines"]

#: The training-loss series, by preference.
LOSS_KEYS = (f"{ROOT}/loss/train_loss", "train_loss", "loss", "train/loss")


def _onset(run: RunData, label: str, series: Series, sign: float, checkpoints: np.ndarray,
           bad_side: Optional[Callable[[float], bool]]) -> Optional[dict[str, Any]]:
    ok = np.isfinite(series.values)
    steps, vals = series.steps[ok], series.values[ok]
    if steps.size < 6:
        return None
    for ev in events(vals, x=steps.astype(np.float64)):
        worse = -sign * ev.jump > 0  # sign: +1 higher is better
        if not worse or (bad_side is not None and not bad_side(ev.after)):
            continue
        # the values themselves must move the wrong way (a converging curve that bends is not worse)
        i = ev.index
        moved = float(np.median(vals[i:i + 3]) - np.median(vals[max(0, i - 3):i]))
        if -sign * moved <= 2.0 * ev.sigma:
            continue
        lo, hi = int(steps[ev.lo]), int(steps[ev.hi])
        before = checkpoints[checkpoints < lo]
        return {"run": run.name, "run_id": run.run_id, "metric": label, "base": label,
                "since": int(steps[ev.index]), "checkpoint": str(int(steps[ev.index])), "lo": lo, "hi": hi,
                "last_good": int(before[-1]) if before.size else None,
                "value": float(vals[ev.index]), "baseline": float(ev.before), "after": float(ev.after),
                "jump": float(ev.jump), "sigma": float(ev.sigma)}
    return None


def onsets(runs: Sequence[RunData], *, columns: Sequence[tuple[str, float, Optional[float]]],
           checkpoints: Mapping[str, np.ndarray],
           verdict_series: Mapping[str, Mapping[str, Series]] = {},
           loss_samples: Optional[Callable[[RunData, int, int], list[dict[str, Any]]]] = None
           ) -> list[dict[str, Any]]:
    """Every onset of every run (see the module doc), earliest first per run.

    ``columns``: ``(key, sign, warn)`` of each judged metric (``sign`` +1 higher is better, −1 lower;
    ``warn``: the spec's warn limit or None); ``checkpoints``: run id → its checkpoint steps;
    ``verdict_series``: run id → ``label → Series`` of verdict severities (0/1/2);
    ``loss_samples(run, lo, hi)``: the loss events logged in ``[lo, hi]``.
    """
    out: list[dict[str, Any]] = []
    for run in runs:
        ck = np.asarray(checkpoints.get(run.run_id, np.zeros(0)), dtype=np.int64)
        found = []
        for key, sign, warn in columns:
            if key not in run.metrics or sign == 0:
                continue
            side = None if warn is None else ((lambda v, w=warn: v >= w) if sign < 0 else
                                             (lambda v, w=warn: v <= w))
            o = _onset(run, label_of(key), run.metrics[key], sign, ck, side)
            if o:
                found.append(o)
        series = dict(verdict_series.get(run.run_id, {}))
        for k, s in run.metrics.items():
            if k.startswith(ROOT + "/") and "/verdict/" in k:
                series.setdefault(label_of(k), s)
        for label, s in series.items():
            o = _onset(run, label, s, -1.0, ck, lambda v: v >= 0.5)
            if o:
                found.append(o)
        loss_key = next((k for k in LOSS_KEYS if k in run.metrics), None)
        if loss_key is not None:
            s = run.metrics[loss_key]
            pos = s.values > 0
            logs = Series(s.steps[pos], np.log(s.values[pos]))  # multiplicative noise becomes additive
            o = _onset(run, label_of(loss_key), logs, -1.0, ck, None)
            if o:
                o["value"], o["baseline"] = float(np.exp(o["value"])), float(np.exp(o["baseline"]))
                o["after"] = float(np.exp(o["after"]))
                o["kind"] = "loss"
                o["samples"] = loss_samples(run, o["lo"], o["hi"]) if loss_samples else []
                found.append(o)
        out += sorted(found, key=lambda o: (o["since"], o["metric"]))
    return out


def summary_lines(found: Sequence[Mapping[str, Any]], run_names: Sequence[str],
                  bad_start: Optional[Mapping[str, str]] = None) -> list[str]:
    """One line per run: its earliest onset, the window and the last good checkpoint; or "no onset"."""
    lines = []
    for name in run_names:
        mine = [o for o in found if o["run"] == name]
        if not mine:
            bad_from_start = bad_start.get(name) if bad_start else None
            if bad_from_start:
                lines.append(f"Since when: {name} has a warn/bad verdict from its first checkpoint "
                             f"({bad_from_start}) "
                             "on: no good checkpoint to return to.")
            else:
                lines.append(f"Since when: {name}: no onset — no diagnostic series got worse for good.")
            continue
        first = min(mine, key=lambda o: o["since"])
        what = sorted({o["metric"] for o in mine if o["lo"] <= first["hi"]})
        good = "none (it was never good)" if first["last_good"] is None else f"step {first['last_good']}"
        lines.append(f"Since when: {name} got worse at step {first['since']} (between steps {first['lo']} "
                     f"and {first['hi']}) in {', '.join(what[:6])}; last good checkpoint: {good}.")
        for o in mine:
            if o.get("kind") == "loss":
                ids = sorted({s for e in o.get("samples", []) for s in str(e.get("samples", "")).split(";")
                              if s})
                steps = sorted({int(e["step"]) for e in o.get("samples", []) if "step" in e})
                lines.append(f"  loss onset at step {o['since']} (steps {o['lo']}–{o['hi']}): "
                             + (f"loss events at steps {steps[:10]}, samples {ids[:10]}." if steps else
                                "no loss events with sample ids were logged in that window."))
    return lines
