"""When an analyzer is due: every n steps, log-spaced, or an explicit list of steps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..errors import ConfigError

__all__ = ["Schedule"]


@dataclass
class Schedule:
    """Schedule of one analyzer.

    ``kind``:
      * ``"every"``: due when ``step >= start`` and ``(step - start) % every == 0``;
      * ``"log"``: due on ``round(10 ** (k / per_decade))`` for k = 0, 1, ... (plus step 0), so that
        expensive analyses are dense early and sparse later (cockpit-style);
      * ``"steps"``: due exactly on the listed steps.
    """

    #: "every" (every n steps from ``start``), "log" (log-spaced) or "steps" (the listed steps).
    kind: str = "every"
    #: kind "every": the number of steps between two runs.
    every: int = 100
    #: The first step the analyzer may run at.
    start: int = 0
    #: kind "log": runs per decade of steps.
    per_decade: int = 10
    #: kind "steps": the steps to run at.
    steps: list[int] = field(default_factory=list)
    #: No run after this step (None: never stop).
    stop: Optional[int] = None

    def __post_init__(self) -> None:
        if self.kind not in ("every", "log", "steps"):
            raise ConfigError(f"schedule.kind must be 'every', 'log' or 'steps'; got {self.kind!r}.")
        if self.every < 1 or self.per_decade < 1:
            raise ConfigError("schedule.every and schedule.per_decade must be >= 1.")
        self._steps = frozenset(int(s) for s in self.steps)

    def due(self, step: int) -> bool:
        """Whether the analyzer runs at ``step``."""
        if step < self.start or (self.stop is not None and step > self.stop):
            return False
        if self.kind == "every":
            return (step - self.start) % self.every == 0
        if self.kind == "steps":
            return step in self._steps
        if step == 0:
            return True
        k = round(self.per_decade * math.log10(step))
        # Several k can round to one step at the start; accept a step when it is the rounding of a k.
        return any(round(10 ** (j / self.per_decade)) == step for j in (k - 1, k, k + 1))
