"""Offline change-point detection for "since when": PELT on a piecewise-linear Gaussian cost.

Pure numpy functions over 1-D series (``(N,)`` values at ``(N,)`` steps). Written here rather than taken
from ``ruptures``: the series are short (tens to a few hundred checkpoints), the one cost needed
(piecewise-linear, so a training trend is one segment and not a staircase) is ~40 lines with prefix sums,
and an optional dependency would make "since when" answer differently where it is not installed.

Model: the series is piecewise linear plus Gaussian noise of one σ. :func:`pelt` finds the segmentation
minimising ``Σ SSE(segment) + penalty · (#segments)`` exactly (Killick et al. 2012, pruned optimal
partitioning) with ``penalty = β · σ² · log N`` (β = 3: intercept, slope and break of each segment, the
BIC). σ comes from :func:`noise_sigma` (a robust estimate from second differences, which a linear trend
does not move) unless the caller knows it better (e.g. the spread between samples of one checkpoint).

A break is an *event* (:func:`events`) only when the two fits disagree at the break by a jump larger than
``min_sigma`` σ (a kink of a saturating training curve is not a jump), and by ``min_rel`` of the series'
robust scale. The uncertainty of a break is a profile-likelihood interval: every position whose two-segment
cost is within ``χ²₁(95 %) · σ²`` = 3.84 σ² of the best one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SegmentCost", "noise_sigma", "pelt", "ChangeEvent", "events", "BIC_BETA", "CHI2_95"]

#: Penalty per segment in units of σ² log N: three parameters (intercept, slope, break) — the BIC.
BIC_BETA = 3.0
#: χ² with one degree of freedom at 95 %: the profile-likelihood interval of a break position.
CHI2_95 = 3.84


class SegmentCost:
    """Residual sum of squares of the least-squares line through ``y[a:b]`` against ``x[a:b]``, in O(1)
    from prefix sums. ``x``, ``y``: ``(N,)`` float."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x = (x - x.mean()) / (x.std() or 1.0)  # conditioning only; the RSS does not depend on x's scale
        z = np.zeros(1)
        self.n = np.arange(y.size + 1, dtype=np.float64)
        self.sx = np.concatenate([z, np.cumsum(x)])
        self.sy = np.concatenate([z, np.cumsum(y)])
        self.sxx = np.concatenate([z, np.cumsum(x * x)])
        self.sxy = np.concatenate([z, np.cumsum(x * y)])
        self.syy = np.concatenate([z, np.cumsum(y * y)])
        self.x = x

    def _moments(self, a: int, b: int) -> tuple[float, float, float, float, float, float]:
        n = b - a
        return (n, self.sx[b] - self.sx[a], self.sy[b] - self.sy[a], self.sxx[b] - self.sxx[a],
                self.sxy[b] - self.sxy[a], self.syy[b] - self.syy[a])

    def cost(self, a: int, b: int) -> float:
        """RSS of the line fit on ``[a, b)``."""
        n, sx, sy, sxx, sxy, syy = self._moments(a, b)
        if n <= 0:
            return 0.0
        vxx = sxx - sx * sx / n
        vyy = syy - sy * sy / n
        vxy = sxy - sx * sy / n
        rss = vyy - (vxy * vxy / vxx if vxx > 1e-12 else 0.0)
        return max(float(rss), 0.0)

    def fit_at(self, a: int, b: int, i: float) -> float:
        """The fitted line of ``[a, b)`` evaluated at (normalised) position of point ``i`` (may be
        outside)."""
        n, sx, sy, sxx, sxy, _ = self._moments(a, b)
        vxx = sxx - sx * sx / n
        slope = (sxy - sx * sy / n) / vxx if vxx > 1e-12 else 0.0
        xi = float(np.interp(i, np.arange(self.x.size), self.x))
        return float(sy / n + slope * (xi - sx / n))


def noise_sigma(y: np.ndarray) -> float:
    """Robust σ of white noise around a piecewise-linear signal: the larger of ``MAD(Δy) / 0.6745 / √2``
    and ``MAD(Δ²y) / 0.6745 / √6`` (differences of i.i.d. noise have variance 2σ² and 6σ²; the median
    removes a line's constant slope; a few jumps barely move the median; on short series each estimate
    alone is often low, and a low σ makes noise look like a jump). ``y``: ``(N,)``; 0 for < 3 points."""
    y = np.asarray(y, dtype=np.float64)
    if y.size < 3:
        return 0.0
    d1 = np.diff(y)
    d2 = np.diff(y, 2)
    s1 = float(np.median(np.abs(d1 - np.median(d1))) / 0.6745 / math.sqrt(2.0))
    s2 = float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / math.sqrt(6.0))
    return max(s1, s2)


def pelt(cost: SegmentCost, n: int, penalty: float, *, min_size: int = 3) -> list[int]:
    """The optimal breaks of ``[0, n)`` under ``cost`` + ``penalty`` per segment (PELT). Returns the
    start indices of every segment after the first (sorted), each segment at least ``min_size`` long."""
    if n < 2 * min_size:
        return []
    f = np.full(n + 1, np.inf)
    f[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)
    candidates = [0]
    for t in range(min_size, n + 1):
        best, arg = np.inf, 0
        vals = []
        for s in candidates:
            if t - s < min_size:
                vals.append(np.inf)
                continue
            v = f[s] + cost.cost(s, t) + penalty
            vals.append(v)
            if v < best:
                best, arg = v, s
        f[t], last[t] = best, arg
        # prune: s can never be optimal again once f[s] + C(s,t) > f[t] (K = 0 for RSS costs)
        candidates = [s for s, v in zip(candidates, vals, strict=True)
                      if t - s < min_size or v - penalty <= f[t]]
        if t - min_size + 1 >= min_size:
            candidates.append(t - min_size + 1)
    breaks = []
    t = n
    while t > 0:
        s = int(last[t])
        if s > 0:
            breaks.append(s)
        t = s
    return sorted(breaks)


@dataclass(frozen=True)
class ChangeEvent:
    """One break of a series: the first index after it (``index``) and its 95 % interval
    ``[lo, hi]`` (indices the break may also be at), the fitted values on both sides at the break
    (``before``, ``after``), the jump ``after − before`` and the σ it was judged with."""

    index: int
    lo: int
    hi: int
    before: float
    after: float
    jump: float
    sigma: float


def events(y: np.ndarray, *, x: np.ndarray | None = None, sigma: float | None = None,
           min_size: int = 3, beta: float = BIC_BETA, min_sigma: float = 5.0, min_rel: float = 0.25
           ) -> list[ChangeEvent]:
    """The jumps of series ``y`` ``(N,)`` (positions ``x`` ``(N,)``, default ``arange``): PELT breaks whose
    two line fits differ at the break by more than ``min_sigma`` σ and more than ``min_rel`` × the series'
    robust scale (its interquartile range). NaNs are dropped
    (indices refer to the input). ``sigma``: the noise level when known (else :func:`noise_sigma`, floored
    at 1 % of the scale so a noise-free series is not cut at every bend)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    idx = np.flatnonzero(np.isfinite(y))
    if idx.size < 2 * min_size:
        return []
    yy = y[idx]
    xx = (np.arange(y.size, dtype=np.float64) if x is None else np.asarray(x, dtype=np.float64))[idx]
    q75, q25 = np.percentile(yy, [75, 25])
    scale = max(float(q75 - q25), 1e-6 * float(np.median(np.abs(yy))), 1e-12)
    s = noise_sigma(yy) if sigma is None else float(sigma)
    s = max(s, 0.01 * scale, 1e-12)
    cost = SegmentCost(xx, yy)
    n = yy.size
    breaks = pelt(cost, n, beta * s * s * math.log(n), min_size=min_size)
    bounds = [0, *breaks, n]
    out = []
    for k, b in enumerate(breaks):
        a, c = bounds[k], bounds[k + 2]
        before = cost.fit_at(a, b, b - 0.5)
        after = cost.fit_at(b, c, b - 0.5)
        jump = after - before
        if abs(jump) < min_sigma * s or abs(jump) < min_rel * scale:
            continue
        profile = np.array([cost.cost(a, j) + cost.cost(j, c) if min_size <= j - a and min_size <= c - j
                            else np.inf for j in range(a + 1, c)])
        ok = np.flatnonzero(profile <= profile.min() + CHI2_95 * s * s) + a + 1
        out.append(ChangeEvent(index=int(idx[b]), lo=int(idx[int(ok.min())]), hi=int(idx[int(ok.max())]),
                               before=before, after=after, jump=jump, sigma=s))
    return out
