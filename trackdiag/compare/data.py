"""The data model of a comparison: metric series per run, and the values at chosen checkpoints.

A :class:`Series` is one metric of one run: sorted unique steps and their values (the last value logged at a
step wins). :func:`values_at` picks, for each checkpoint step, the value at the nearest logged step within a
tolerance — vectorised with ``searchsorted``, no loop over steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TrackdiagError
from ..io.series import Series

__all__ = ["Series", "RunData", "MissingRunError", "MissingMetricError", "series_from_points", "values_at",
           "checkpoint_steps", "unique_names"]


class MissingRunError(TrackdiagError, LookupError):
    """A run (MLflow run id or name, run folder, sample folder) that was asked for does not exist."""

    kind = "missing_run"


class MissingMetricError(TrackdiagError, LookupError):
    """A metric that was asked for was not logged by any (or by a given) run."""

    kind = "missing_metric"


@dataclass
class RunData:
    """Everything a comparison needs from one run.

    ``name`` is the display name (unique within a comparison), ``run_id`` the tracker's id (or the folder),
    ``source`` the reader (``mlflow``, ``wandb``, ``tensorboard``, ``local``, ``samples``), ``tags`` the
    run's tags, ``metrics`` key → :class:`Series`. ``labels`` optionally names checkpoints by step (samples
    mode: the folder name of each checkpoint); ``notes`` are per-run problems found while reading.
    """

    name: str
    run_id: str
    source: str
    metrics: dict[str, Series] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def series_from_points(steps: Any, values: Any, order: Any = None) -> Series:
    """Build a :class:`Series` from unsorted points; at a repeated step the point last in ``order`` wins.

    ``steps``, ``values``: ``(N,)``; ``order``: ``(N,)`` sort key for repeats (e.g. timestamps), default the
    position in the input (so the point logged last wins).
    """
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if steps.size == 0:
        return Series(steps, values)
    order = np.arange(steps.size) if order is None else np.asarray(order).reshape(-1)
    idx = np.lexsort((order, steps))  # by step, then by order
    steps, values = steps[idx], values[idx]
    last = np.ones(steps.size, dtype=bool)
    last[:-1] = steps[1:] != steps[:-1]
    return Series(steps[last], values[last], duplicates=int(steps.size - last.sum()))


def values_at(series: Series, steps: np.ndarray, tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """Values at the logged step nearest to each of ``steps`` (``(K,)`` int), within ``tolerance`` steps.

    Returns ``(values, logged)``, both ``(K,)``: ``values`` float64 (NaN where no step is within the
    tolerance), ``logged`` int64 (the step the value was logged at, ``-1`` where none). On a tie between an
    earlier and a later logged step the earlier one is taken.
    """
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    out = np.full(steps.shape, np.nan)
    logged = np.full(steps.shape, -1, dtype=np.int64)
    n = series.steps.size
    if n == 0 or steps.size == 0:
        return out, logged
    right = np.clip(np.searchsorted(series.steps, steps, side="left"), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    d_left = np.abs(steps - series.steps[left])
    d_right = np.abs(series.steps[right] - steps)
    pick = np.where(d_left <= d_right, left, right)
    dist = np.minimum(d_left, d_right)
    ok = dist <= max(0, int(tolerance))
    out[ok] = series.values[pick[ok]]
    logged[ok] = series.steps[pick[ok]]
    return out, logged


def checkpoint_steps(run: RunData, keys: Sequence[str], steps: Any) -> np.ndarray:
    """The checkpoint steps of one run: ``"all"`` (every step any of ``keys`` was logged at), ``"last"``
    (the last such step) or an explicit list of steps (kept as given, sorted, unique)."""
    if isinstance(steps, str):
        present = [run.metrics[k].steps for k in keys if k in run.metrics]
        logged = np.unique(np.concatenate(present)) if present else np.zeros(0, dtype=np.int64)
        if steps == "all":
            return logged
        return logged[-1:]  # "last"
    return np.unique(np.asarray(list(steps), dtype=np.int64))


def unique_names(names: Sequence[str], ids: Sequence[str]) -> list[str]:
    """Display names, made unique by appending a short id where two runs share a name."""
    counts: Mapping[str, int] = {n: names.count(n) for n in set(names)}
    out = []
    for name, rid in zip(names, ids, strict=True):
        out.append(name if counts[name] == 1 else f"{name} [{str(rid)[:8]}]")
    # Still equal (same name and id prefix): number them.
    seen: dict[str, int] = {}
    final = []
    for name in out:
        seen[name] = seen.get(name, 0) + 1
        final.append(name if out.count(name) == 1 else f"{name} #{seen[name]}")
    return final
