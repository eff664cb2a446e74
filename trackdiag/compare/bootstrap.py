"""Bootstrap intervals of per-checkpoint aggregates from per-sample values (samples mode).

:func:`bootstrap_mean` resamples one checkpoint's per-image values ``(N,)`` with replacement ``n_boot``
times (a fixed seed: the same report twice gives the same intervals) and returns the standard error and the
95 % percentile interval of the mean. :func:`sample_intervals` does it for every row and ranked column of a
comparison whose aggregate is the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .table import Comparison

__all__ = ["bootstrap_mean", "sample_intervals"]


def bootstrap_mean(x: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(se, lo, hi)`` of the mean of ``x`` ``(N,)`` (NaNs dropped); NaNs for fewer than 2 values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)  # (n_boot,)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(means.std(ddof=1)), float(lo), float(hi)


def sample_intervals(c: Comparison, per_image: Sequence[Mapping[str, Any]]
                     ) -> tuple[dict[int, np.ndarray], dict[tuple[int, int], tuple[float, float]]]:
    """Per ranked ``<key>/mean`` column ``j``: the bootstrap SE per row ``(R,)`` and the 95 % interval of each
    ``(row, j)``, from the per-image values of that row's checkpoint."""
    within: dict[int, np.ndarray] = {}
    intervals: dict[tuple[int, int], tuple[float, float]] = {}
    by_ck: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in per_image:
        by_ck.setdefault((str(r.get("run")), str(r.get("checkpoint"))), []).append(r)
    for j, s in enumerate(c.specs):
        if s.weight <= 0 or not s.key.endswith("/mean"):
            continue
        se = np.full(len(c), np.nan)
        for i in range(len(c)):
            rows = by_ck.get((c.run[i], c.checkpoint[i]), [])
            vals = np.array([float(r[s.base]) for r in rows if s.base in r and r[s.base] is not None])
            e, lo, hi = bootstrap_mean(vals)
            se[i] = e
            if np.isfinite(lo):
                intervals[(i, j)] = (lo, hi)
        within[j] = se
    return within, intervals
