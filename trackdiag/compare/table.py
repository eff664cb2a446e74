"""The comparison table: one row per run and checkpoint, one column per metric, with deltas against a
baseline row, the best value of each column marked and regressions flagged.

All judgements are vectorised over the ``R×M`` value matrix:

* ``delta = value − baseline`` (per column, raw difference);
* ``worsening = delta`` for a ``min`` goal, ``−delta`` for ``max``; a cell *regressed* when
  ``worsening > tolerance``, where the tolerance is the metric's ``regression.abs`` entry or
  ``regression.rel × |baseline|``;
* a cell is *over its limit* when it lies on the wrong side of ``limits.<metric>``;
* *best*: the best finite value of the column (every tied row is marked).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import ConfigError
from .data import MissingMetricError, MissingRunError, RunData, checkpoint_steps, values_at
from .metrics import MetricSpec, label_of

__all__ = ["Comparison", "build_table", "find_baseline", "onsets"]


@dataclass
class Comparison:
    """Everything the outputs need. Arrays: ``(R,)`` per row, ``(R, M)`` per cell, ``M = len(specs)``."""

    specs: list[MetricSpec]
    run: list[str]
    run_id: list[str]
    step: np.ndarray
    checkpoint: list[str]
    values: np.ndarray
    logged: np.ndarray
    delta: np.ndarray
    best: np.ndarray
    regressed: np.ndarray
    over_limit: np.ndarray
    tolerance: np.ndarray  # (M,) the tolerance used per column (NaN: baseline missing)
    baseline: int
    runs: list[RunData]
    notes: list[str] = field(default_factory=list)
    # filled by ranking.rank()
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reasons: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    onsets: list[dict] = field(default_factory=list)
    mode: str = "runs"
    # filled by tiered.tiered_rank(): worst verdict level per row (0/1/2) and the ranked columns by role
    severity: Optional[np.ndarray] = None
    ranked_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def flagged(self) -> np.ndarray:
        """``(R, M)``: regressed against the baseline or over the limit (computed once)."""
        cached = self.__dict__.get("_flagged")
        if cached is None or cached.shape != self.regressed.shape:
            cached = self.__dict__["_flagged"] = self.regressed | self.over_limit
        return cached

    def row_label(self, i: int) -> str:
        """``run @ checkpoint`` (``run @ step 3000`` in tracker mode)."""
        ck = self.checkpoint[i]
        return f"{self.run[i]} @ {ck}" if not ck.isdigit() else f"{self.run[i]} @ step {ck}"

    def __len__(self) -> int:
        return len(self.run)


def _checkpoint_label(run: RunData, step: int) -> str:
    return run.labels.get(int(step), str(int(step)))


def find_baseline(spec: str, run: Sequence[str], run_id: Sequence[str], step: np.ndarray,
                  checkpoint: Sequence[str]) -> int:
    """The row index named by ``baseline``: ``first`` (the first row), ``<run>`` (that run's last
    checkpoint), ``<run>@<step>``, ``<run>@first`` / ``<run>@last``, or a checkpoint name (samples mode).
    ``<run>`` is a display name or a run id."""
    spec = str(spec).strip()
    if not run:
        raise MissingRunError("there is no row to compare.")
    if spec in ("", "first"):
        return 0
    rows = [i for i, c in enumerate(checkpoint) if c == spec and not c.isdigit()]
    if len(rows) == 1:
        return rows[0]
    name, sep, at = spec.rpartition("@") if "@" in spec else (spec, "", "")
    name = name.strip()
    at = at.strip()
    rows = [i for i in range(len(run)) if run[i] == name or run_id[i] == name]
    if not rows:
        shown = sorted(set(run))
        raise ConfigError(f"baseline {spec!r}: no run named {name!r} in the comparison; runs: "
                          f"{shown[:20]}{' …' if len(shown) > 20 else ''}. Use baseline=<run>@<step>.")
    if not sep or at == "last":
        return rows[-1]
    if at == "first":
        return rows[0]
    number = int(at) if re.fullmatch(r"-?\d+", at) else None
    hits = [i for i in rows if checkpoint[i] == at or (number is not None and int(step[i]) == number)]
    if not hits:
        raise ConfigError(f"baseline {spec!r}: run {name!r} has no checkpoint {at!r}; its checkpoints: "
                          f"{[checkpoint[i] for i in rows][:20]}.")
    return hits[0]


def build_table(runs: Sequence[RunData], specs: Sequence[MetricSpec], *, steps: object, tolerance: int,
                baseline: str = "first", rel_tolerance: float = 0.1, on_missing: str = "error") -> Comparison:
    """Collect the values of ``specs`` at the checkpoints of every run and judge them (see module doc).

    ``steps``: ``"all"``, ``"last"`` or a list of steps; ``tolerance``: the largest distance in steps
    between a checkpoint and the logged step used for it; ``on_missing``: ``"error"`` raises on a run
    that never logged a selected metric or a checkpoint without any value, ``"skip"`` notes them.
    """
    if on_missing not in ("error", "skip"):
        raise ConfigError(f"on_missing must be 'error' or 'skip'; got {on_missing!r}.")
    if rel_tolerance < 0 or tolerance < 0:
        raise ConfigError("tolerance and regression.rel must be >= 0.")
    keys = [s.key for s in specs]
    m = len(keys)
    notes: list[str] = []
    row_run, row_id, row_step, row_ck = [], [], [], []
    blocks_v, blocks_l = [], []
    for run in runs:
        absent = [s.label for s in specs if s.key not in run.metrics]
        if absent:
            msg = f"run {run.name!r} ({run.source} {run.run_id}) never logged {absent}."
            if on_missing == "error":
                raise MissingMetricError(msg + " Drop it from metrics=[…], or set on_missing=skip to compare "
                                         "the other metrics.")
            notes.append(msg)
        ck = checkpoint_steps(run, keys, steps)
        if ck.size == 0:
            msg = f"run {run.name!r} has no logged step of the selected metrics."
            if on_missing == "error":
                raise MissingMetricError(msg)
            notes.append(msg)
            continue
        vals = np.full((ck.size, m), np.nan)
        logged = np.full((ck.size, m), -1, dtype=np.int64)
        for j, key in enumerate(keys):
            if key in run.metrics:
                vals[:, j], logged[:, j] = values_at(run.metrics[key], ck, tolerance)
        empty = (logged < 0).all(axis=1)
        if empty.any():
            last = max((int(run.metrics[k].steps[-1]) for k in keys if k in run.metrics
                        and run.metrics[k].steps.size), default=None)
            msg = (f"run {run.name!r}: no value of any selected metric within ±{tolerance} steps of step(s) "
                   f"{ck[empty].tolist()} (its last logged step is {last}).")
            if on_missing == "error":
                raise MissingMetricError(msg + " Pick logged steps (steps=all shows them), raise tolerance=, "
                                         "or set on_missing=skip.")
            notes.append(msg)
            ck, vals, logged = ck[~empty], vals[~empty], logged[~empty]
        gaps = (logged < 0) & np.array([k in run.metrics for k in keys])[None, :]
        for i, j in zip(*np.nonzero(gaps), strict=True):
            notes.append(f"run {run.name!r} @ {_checkpoint_label(run, int(ck[i]))}: no {specs[j].label} "
                         f"within ±{tolerance} steps.")
        row_run += [run.name] * ck.size
        row_id += [run.run_id] * ck.size
        row_step.append(ck)
        row_ck += [_checkpoint_label(run, int(s)) for s in ck]
        blocks_v.append(vals)
        blocks_l.append(logged)
    if not row_run:
        raise MissingMetricError("no run has a value of the selected metrics at the selected steps.")
    values = np.concatenate(blocks_v)
    logged = np.concatenate(blocks_l)
    step = np.concatenate(row_step)
    b = find_baseline(baseline, row_run, row_id, step, row_ck)
    delta, best, regressed, over, tol = judge(values, specs, b, rel_tolerance)
    if np.isnan(values[b]).any():
        missing = [specs[int(j)].label for j in np.flatnonzero(np.isnan(values[b]))]
        notes.append(f"the baseline {row_run[b]} @ {row_ck[b]} has no value of {missing}: no deltas or "
                     "regressions for those columns.")
    return Comparison(specs=list(specs), run=row_run, run_id=row_id, step=step, checkpoint=row_ck,
                      values=values, logged=logged, delta=delta, best=best, regressed=regressed,
                      over_limit=over, tolerance=tol, baseline=b, runs=list(runs), notes=notes)


def judge(values: np.ndarray, specs: Sequence[MetricSpec], baseline: int, rel_tolerance: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deltas, best marks, regressions and limit violations of an ``R×M`` value matrix.

    Returns ``delta (R, M)``, ``best (R, M) bool``, ``regressed (R, M) bool``, ``over_limit (R, M) bool``
    and the tolerance per column ``(M,)``.
    """
    sign = np.array([s.sign for s in specs])  # (M,)
    base = values[baseline]  # (M,)
    delta = values - base[None, :]
    tol_abs = np.array([np.nan if s.tolerance is None else s.tolerance for s in specs])
    tol = np.where(np.isnan(tol_abs), rel_tolerance * np.abs(base), tol_abs)
    worsening = -sign[None, :] * delta
    with np.errstate(invalid="ignore"):
        regressed = (sign[None, :] != 0) & (worsening > tol[None, :])
    regressed = regressed & np.isfinite(delta)
    regressed[baseline] = False
    limit = np.array([np.nan if s.limit is None else s.limit for s in specs])
    with np.errstate(invalid="ignore"):
        over = (((sign[None, :] < 0) & (values > limit[None, :]))
                | ((sign[None, :] > 0) & (values < limit[None, :])))
    oriented = np.where(np.isfinite(values), sign[None, :] * values, -np.inf)  # higher is better
    top = oriented.max(axis=0)
    best = (oriented == top[None, :]) & np.isfinite(top)[None, :] & (sign[None, :] != 0)
    return delta, best, regressed, over, tol


def onsets(c: Comparison) -> list[dict]:
    """For each run and judged metric: the step since which it has stayed flagged (regressed or over the
    limit) up to the run's last checkpoint. ``[{"run", "metric", "base", "since", "checkpoint", "value",
    "baseline"}]`` (``base``: the metric without its samples-mode aggregate); runs whose last checkpoint is
    fine have no entry for that metric."""
    out = []
    flagged = c.flagged
    runs = list(dict.fromkeys(c.run))
    for name in runs:
        rows = np.flatnonzero(np.array(c.run) == name)
        rows = rows[np.argsort(c.step[rows], kind="stable")]
        f = flagged[rows]  # (K, M)
        # suffix "all flagged": reverse cumulative AND
        tail = np.flip(np.logical_and.accumulate(np.flip(f, axis=0), axis=0), axis=0)
        for j in np.flatnonzero(tail[-1]):
            first = rows[int(np.argmax(tail[:, j]))]
            out.append({"run": name, "metric": c.specs[j].label, "base": label_of(c.specs[j].base),
                        "since": int(c.step[first]),
                        "checkpoint": c.checkpoint[first], "value": float(c.values[first, j]),
                        "baseline": float(c.values[c.baseline, j])})
    return out


def column_of(c: Comparison, key: str) -> Optional[int]:
    for j, s in enumerate(c.specs):
        if s.key == key or s.label == key:
            return j
    return None
