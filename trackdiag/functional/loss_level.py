"""The local level of a noisy scalar series and the tests on it (numpy on host floats, no state).

:func:`local_level` is the expected value of the next point of a window (a local linear trend, OLS or a
robust two-halves median slope) with the σ of a new point around it; :func:`t_to_z` maps its t-score to a
normal-equivalent score; :func:`linear_improvement` is the fitted decrease over a window (the plateau test).
The loss detectors (:mod:`trackdiag.analyzers.loss_spikes`, :mod:`trackdiag.analyzers.loss_detector`) read
them; ``docs/loss.md`` explains the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputValueError

__all__ = ["LocalLevel", "local_level", "t_to_z", "linear_improvement"]

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class LocalLevel:
    """Expected value at one position, the σ of a new point around it, and the degrees of freedom of σ."""

    expected: float
    scale: float
    dof: int


def local_level(pos: np.ndarray, x: np.ndarray, at: float, *, robust: bool = False, detrend: bool = True
                ) -> LocalLevel:
    """Expected value at ``at`` of a window of points ``(pos[i], x[i])`` (shapes ``(N,)``, any order).

    ``detrend``: a local linear trend (OLS, or the two-halves median slope when ``robust``) extrapolated to
    ``at`` (at most half the window's span beyond its last point); else the mean (median). ``scale`` is the
    σ of a *new* point around that expectation: the residual σ (``1.4826 · MAD`` when ``robust``) times the
    prediction-interval factor ``sqrt(1 + 1/N + (at - mean(pos))² / Sxx)``. Needs ``N >= 3``.

    >>> lv = local_level(np.arange(10.0), 2.0 * np.arange(10.0), 10.0)
    >>> round(lv.expected, 6), round(lv.scale, 6), lv.dof
    (20.0, 0.0, 8)
    """
    pos = np.asarray(pos, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 3:
        raise InputValueError(f"local_level needs at least 3 points; got {n}.")
    lo, hi = float(pos.min()), float(pos.max())
    span = hi - lo
    trend = detrend and span > 0
    pm = float(pos.sum()) / n
    pc = pos - pm
    slope = 0.0
    if trend:
        at = min(float(at), hi + 0.5 * span)
        if robust:
            split = float(np.median(pos))
            first, second = pos <= split, pos > split
            if first.any() and second.any():
                dp = float(np.median(pos[second]) - np.median(pos[first]))
                slope = float(np.median(x[second]) - np.median(x[first])) / dp if dp > 0 else 0.0
        else:
            sxx0 = float(pc @ pc)
            slope = float(pc @ x) / sxx0 if sxx0 > 0 else 0.0
    resid = x - slope * pc
    if robust:
        base = float(np.median(resid))
        scale = _MAD_TO_SIGMA * float(np.median(np.abs(resid - base)))
    else:
        base = float(resid.sum()) / n
        d = resid - base
        scale = math.sqrt(float(d @ d) / max(1, n - (2 if trend else 1)))
    factor = 1.0 + 1.0 / n
    if trend:
        sxx = float(pc @ pc)
        factor += (float(at) - pm) ** 2 / sxx if sxx > 0 else 0.0
    expected = base + slope * (float(at) - pm)
    return LocalLevel(expected, scale * math.sqrt(factor), max(1, n - (2 if trend else 1)))


def t_to_z(t: float, dof: int) -> float:
    """The standard-normal score with the same upper-tail probability as Student's ``t`` with ``dof``.

    >>> round(t_to_z(3.0, 10 ** 6), 3)
    3.0
    >>> t_to_z(3.0, 10) < 3.0
    True
    """
    from scipy.special import ndtri, stdtr  # imported once, then cached by Python

    if not math.isfinite(t):
        return t
    if t >= 0:
        return float(-ndtri(stdtr(dof, -t)))
    return float(ndtri(stdtr(dof, t)))


def linear_improvement(pos: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Decrease of an OLS line over a window, and its standard error; ``pos``/``x`` shapes ``(N,)``, N >= 3.

    Returns ``(I, se)`` with ``I = -slope · (max(pos) - min(pos))`` (in ``x`` units: a relative improvement
    when ``x`` is a log-loss) and ``se`` the standard error of ``I`` from the fit's residuals. The points
    may come in any order.

    >>> [round(v, 6) for v in linear_improvement(np.arange(5.0), -np.arange(5.0))]
    [4.0, 0.0]
    """
    pos = np.asarray(pos, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        raise InputValueError(f"linear_improvement needs at least 3 points; got {x.size}.")
    pc = pos - float(pos.sum()) / pos.size
    sxx = float(pc @ pc)
    if sxx <= 0:
        return 0.0, math.inf
    xc = x - float(x.sum()) / x.size
    slope = float(pc @ xc) / sxx
    span = float(pos.max() - pos.min())
    resid = xc - slope * pc
    s2 = float(resid @ resid) / max(1, x.size - 2)
    return -slope * span, math.sqrt(s2 / sxx) * span
