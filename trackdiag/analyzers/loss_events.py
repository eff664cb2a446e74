"""The loss detectors' records: the event kinds and table columns, :class:`LossEvent` (one row of the events
table) and :class:`StepReport` (what one step gave)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EVENT_KINDS", "EVENT_COLUMNS", "LossEvent", "StepReport"]

EVENT_KINDS = ("spike", "plateau", "ema_divergence", "nonfinite")
EVENT_COLUMNS = ("step", "kind", "value", "expected", "z", "samples", "detail")


@dataclass
class LossEvent:
    """One row of the events table: ``value``/``expected`` in loss units, ``z`` in σ of the local level."""

    step: int
    kind: str
    value: float
    expected: float
    z: float
    samples: str = ""
    detail: str = ""

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepReport:
    """What :meth:`~trackdiag.analyzers.loss_detector.LossDetector.update` found at one step (NaN: not
    measurable yet)."""

    step: int
    value: float
    expected: float = math.nan
    z: float = math.nan
    normalized: float = math.nan
    ema: float = math.nan
    smoothed: float = math.nan
    spike: bool = False
    plateau: bool = False
    diverging: bool = False
    events: list[LossEvent] = field(default_factory=list)
