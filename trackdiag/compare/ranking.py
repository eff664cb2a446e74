"""Ranking of the rows of a comparison, and the reasons in words.

Methods (``ranking.method``):

* ``mean_rank`` (default): each ranked column ranks the rows (1 = best; ties share the average rank; a
  missing value ranks last); a row's score is the weighted mean of its ranks. Scale-free: a metric in
  0.001s counts as much as one in 100s.
* ``lexicographic``: the first ranked metric decides; the next one breaks its ties, and so on. The score
  is the row's rank in the first metric.

With ``ranking.flagged_last`` (default) every row with a flag (a regression against the baseline or a
limit crossed) ranks below every row without one. Remaining ties keep the table's order.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .table import Comparison, onsets

__all__ = ["rank", "average_ranks", "METHODS", "fmt"]

METHODS = ("tiered", "mean_rank", "lexicographic")
#: Flags of one kind named in a row's reason; the rest are counted.
MAX_PROBLEMS = 3


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of each column of ``x`` ``(R, M)``, 1 = smallest; tied values share their average rank
    (``scipy.stats.rankdata(method="average", axis=0)``, without importing scipy.stats). ``inf`` ties
    with ``inf``."""
    x = np.asarray(x, dtype=np.float64)
    r, m = x.shape
    if r == 0 or m == 0:
        return np.zeros((r, m))
    order = np.argsort(x, axis=0, kind="stable")
    sorted_x = np.take_along_axis(x, order, axis=0)
    new = np.ones((r, m), dtype=bool)
    new[1:] = sorted_x[1:] != sorted_x[:-1]
    group = np.cumsum(new, axis=0) - 1 + np.arange(m)[None, :] * r  # unique group id per column
    positions = np.broadcast_to(np.arange(1, r + 1, dtype=np.float64)[:, None], (r, m))
    sums = np.bincount(group.ravel(), weights=positions.ravel(), minlength=r * m)
    counts = np.bincount(group.ravel(), minlength=r * m)
    avg = sums[group] / counts[group]
    out = np.empty((r, m))
    np.put_along_axis(out, order, avg, axis=0)
    return out


def fmt(value: float | None) -> str:
    """A short number: 4 significant digits, no exponent for ordinary magnitudes; ``"n/a"`` for None/NaN."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.4g}"


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else (f"+{value:.4g}" if value > 0 else f"{value:.4g}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def rank(c: Comparison, *, method: str = "mean_rank", flagged_last: bool = True, explain: int = 5
         ) -> Comparison:
    """Fill ``c.rank`` (1 = best), ``c.score``, ``c.reasons`` (one sentence per row), ``c.onsets`` and
    ``c.verdict`` (the summary in words). ``explain``: rows whose reason names every ranked column."""
    if method not in METHODS or method == "tiered":
        raise ConfigError(f"ranking.method must be one of {METHODS[1:]} here (tiered: "
                          f"trackdiag.compare.tiered.tiered_rank); got {method!r}.")
    cols = [j for j, s in enumerate(c.specs) if s.weight > 0]
    weights = np.array([c.specs[j].weight for j in cols])
    sign = np.array([c.specs[j].sign for j in cols])
    vals = c.values[:, cols]
    # lower is better after orientation; a missing value is the worst
    oriented = np.where(np.isfinite(vals), -sign[None, :] * vals, np.inf)
    ranks = average_ranks(oriented)
    n = len(c)
    flagged = np.asarray(c.flagged.any(axis=1))  # (R,)
    if method == "mean_rank":
        score = (ranks * weights[None, :]).sum(axis=1) / weights.sum()
        keys = [np.arange(n), *[oriented[:, k] for k in reversed(range(len(cols)))], score]
    else:
        score = ranks[:, 0].astype(np.float64)
        keys = [np.arange(n), *[oriented[:, k] for k in reversed(range(len(cols)))]]
    if flagged_last:
        keys.append(flagged.astype(np.int64))
    order = np.lexsort(keys)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(1, n + 1)
    c.rank, c.score = position, score
    c.onsets = onsets(c)
    c.reasons = [_reason(c, i, cols, ranks, order, method, flagged, full=position[i] <= explain)
                 for i in range(n)]
    c.verdict = _verdict(c, order, method)
    return c


def _reason(c: Comparison, i: int, cols: list[int], ranks: np.ndarray, order: np.ndarray, method: str,
            flagged: np.ndarray, *, full: bool) -> str:
    n = len(c)
    pos = int(c.rank[i])
    parts = []
    if method == "mean_rank":
        parts.append(f"mean rank {c.score[i]:.2f} over {len(cols)} ranked metric{'s' * (len(cols) != 1)} "
                     f"among {n} checkpoints")
    else:
        parts.append(f"{_ordinal(round(ranks[i, 0]))} in {c.specs[cols[0]].label}, the first ranked "
                     "metric")
    best_in = [c.specs[j].label + f" ({fmt(c.values[i, j])})" for j in cols if c.best[i, j]]
    if best_in:
        parts.append("best of all in " + ", ".join(best_in))
    if full:
        others = [f"{c.specs[j].label} {fmt(c.values[i, j])} ({_ordinal(int(np.ceil(ranks[i, k])))})"
                  for k, j in enumerate(cols) if not c.best[i, j]]
        if others:
            parts.append("elsewhere " + ", ".join(others))
    problems = []
    regressed, over = np.flatnonzero(c.regressed[i]), np.flatnonzero(c.over_limit[i])
    for j in regressed[:MAX_PROBLEMS]:
        s = c.specs[j]
        problems.append(f"{s.label} regressed to {fmt(c.values[i, j])} vs baseline "
                        f"{fmt(c.values[c.baseline, j])} ({_signed(c.delta[i, j])}, tolerance "
                        f"{fmt(c.tolerance[j])})")
    for j in over[:MAX_PROBLEMS]:
        s = c.specs[j]
        side = "above" if s.goal == "min" else "below"
        problems.append(f"{s.label} {fmt(c.values[i, j])} is {side} its limit {fmt(s.limit)}")
    more = max(0, regressed.size - MAX_PROBLEMS) + max(0, over.size - MAX_PROBLEMS)
    if more:
        problems.append(f"{more} more flag{'s' * (more != 1)} (see the table)")
    if problems:
        tail = "; ranked below every unflagged checkpoint" if flagged[i] and pos > 1 else ""
        parts.append("flagged: " + "; ".join(problems) + tail)
    elif i != c.baseline:
        parts.append("no regression against the baseline")
    else:
        parts.append("this is the baseline")
    if pos < n and full:
        nxt = int(order[pos])
        if c.score[nxt] == c.score[i] and method == "mean_rank":
            by = "its flags and " if flagged[nxt] != flagged[i] else ""
            parts.append(f"ties with {c.row_label(nxt)} on mean rank; ordered by {by}the metrics in listed "
                         "order")
        elif flagged[nxt] and not flagged[i]:
            parts.append(f"ahead of {c.row_label(nxt)}, which is flagged")
        else:
            parts.append(f"ahead of {c.row_label(nxt)} (score {c.score[nxt]:.2f})")
    return f"#{pos} {c.row_label(i)}: " + "; ".join(parts) + "."


def _verdict(c: Comparison, order: np.ndarray, method: str) -> list[str]:
    lines = []
    top = int(order[0])
    lines.append(f"Best checkpoint: {c.row_label(top)} ({c.reasons[top].split(': ', 1)[1]})")
    lines.append(f"Baseline for deltas and regressions: {c.row_label(c.baseline)}.")
    if c.onsets:
        groups: dict[tuple, list[dict]] = {}
        for o in c.onsets:  # samples mode: one line per metric for all of its aggregates
            groups.setdefault((o["run"], o["base"], o["since"]), []).append(o)
        for (run, base, since), items in groups.items():
            o = items[0]
            label = o["checkpoint"] if not str(o["checkpoint"]).isdigit() else f"step {since}"
            aggs = [i["metric"][len(base) + 1:] for i in items if i["metric"] != base]
            name = f"{base} ({', '.join(aggs)})" if aggs else base
            lines.append(f"Got worse: {run}: {name} has been flagged since {label} ({fmt(o['value'])} there, "
                         f"baseline {fmt(o['baseline'])}) through its last checkpoint.")
    else:
        lines.append("No run ends with a flagged metric: nothing regressed for good against the baseline.")
    flagged_rows = int(c.flagged.any(axis=1).sum())
    if flagged_rows:
        lines.append(f"{flagged_rows} of {len(c)} checkpoints have at least one flag (regression or limit).")
    assumed = sorted({s.label for s in c.specs if s.goal_assumed and s.weight > 0})
    if assumed:
        lines.append(f"Goal assumed 'lower is better' (default_goal) for: {', '.join(assumed)}. Set "
                     "goals.<metric>=min|max|none to change it.")
    return lines
