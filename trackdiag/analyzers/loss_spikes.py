"""Upward outliers of a scalar series against a rolling local level: :class:`RollingSpikeDetector`.

The math is :mod:`trackdiag.functional.loss_level`; this module holds the window and the run of spikes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..functional.loss_level import LocalLevel, local_level, t_to_z
from .loss_ring import PointRing

__all__ = ["SpikeCheck", "COLD_CHECK", "RollingSpikeDetector"]


@dataclass
class SpikeCheck:
    """Outcome of one :meth:`RollingSpikeDetector.check` (``warm`` False: not enough history).

    ``z`` is the normal-equivalent score of the point against the local level (see :func:`t_to_z`).
    """

    z: float
    expected: float
    scale: float
    spike: bool
    warm: bool


#: The check of a point that cannot be tested (not enough history).
COLD_CHECK = SpikeCheck(math.nan, math.nan, math.nan, False, False)


class RollingSpikeDetector:
    """Upward outliers of a scalar series against a rolling local level.

    ``check(x, pos)`` compares ``x`` with :func:`local_level` of the last ``window`` accepted points; the
    t-score is mapped to a normal-equivalent ``z`` (:func:`t_to_z`) so that ``sigma = 3`` keeps the
    Gaussian false-alarm rate (0.135 % of the points) whatever the window length.
    ``commit`` accepts a normal point into the window and holds spikes out of it, so that a spike does not
    inflate σ. After ``max_run`` consecutive spikes the run is taken as a new level: the window restarts
    from the run's points (and :meth:`commit` returns them).
    """

    def __init__(self, *, window: int = 100, sigma: float = 3.0, robust: bool = False, detrend: bool = True,
                 min_history: int = 20, max_run: int = 5, min_scale: float = 1e-3) -> None:
        self.window, self.sigma = int(window), float(sigma)
        self.robust, self.detrend = bool(robust), bool(detrend)
        self.min_history, self.max_run = max(3, int(min_history)), int(max_run)
        self.min_scale = float(min_scale)
        self._ring = PointRing(self.window)
        self._run: list[tuple[float, float]] = []

    @property
    def count(self) -> int:
        return self._ring.count

    def level(self, at: float) -> Optional[LocalLevel]:
        """The local level at ``at`` from the current window; None while the window is too short."""
        if self._ring.count < self.min_history:
            return None
        pos, x = self._ring.view()
        lv = local_level(pos, x, at, robust=self.robust, detrend=self.detrend)
        return LocalLevel(lv.expected, max(lv.scale, self.min_scale), lv.dof)

    def recent_level(self, at: float) -> Optional[LocalLevel]:
        """The local level at ``at`` from the newest half of the window (at least ``min_history`` points);
        None while the window is too short or when it is the whole window anyway."""
        n = self._ring.count
        k = max(self.min_history, n // 2)
        if n < self.min_history or k >= n or not self.detrend:
            return None
        pos, x = self._ring.view()
        newest = np.argsort(pos, kind="stable")[-k:]
        lv = local_level(pos[newest], x[newest], at, robust=self.robust, detrend=True)
        return LocalLevel(lv.expected, max(lv.scale, self.min_scale), lv.dof)

    def check(self, x: float, pos: float) -> SpikeCheck:
        """A spike must stand out against the trend of the whole window AND against the trend of its newest
        half: a curve whose descent slows down (every converging loss) sits above the straight line
        extrapolated from its steeper past, but not above its own recent trend. When the newest half's
        extrapolation lies above the whole window's by more than one σ of a new point (a bend, not noise),
        it is the expected value; σ stays the whole window's (more points, a steadier estimate)."""
        lv = self.level(pos)
        if lv is None:
            return COLD_CHECK
        near = self.recent_level(pos)
        if near is not None and near.expected > lv.expected:
            lv = LocalLevel(near.expected, lv.scale, lv.dof)
        z = t_to_z((float(x) - lv.expected) / lv.scale, lv.dof)
        return SpikeCheck(z, lv.expected, lv.scale, z > self.sigma, True)

    def commit(self, x: float, pos: float, spike: bool) -> list[tuple[float, float]]:
        """Record the point. Returns the points of a spike run accepted as a new level (else ``[]``)."""
        if not spike:
            self._run.clear()
            self._ring.append(float(pos), float(x))
            return []
        self._run.append((float(pos), float(x)))
        if len(self._run) < self.max_run:
            return []
        accepted, self._run = self._run, []
        self._ring.clear()
        for p, v in accepted:
            self._ring.append(p, v)
        return accepted

    def observe(self, x: float, pos: float) -> SpikeCheck:
        """:meth:`check` then :meth:`commit`."""
        res = self.check(x, pos)
        self.commit(x, pos, res.spike)
        return res

    def state_dict(self) -> dict[str, Any]:
        return {"ring": self._ring.state_dict(), "run": [list(r) for r in self._run]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._ring.load_state_dict(state.get("ring", {}))
        self._run = [(float(p), float(v)) for p, v in state.get("run", [])]
