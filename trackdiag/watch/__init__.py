"""``trackdiag watch``: follow a trainer's validation images and log each one's diagnosis at its step.

See :mod:`trackdiag.watch.layouts` (kohya, ai-toolkit, SimpleTuner, a pattern) and
:mod:`trackdiag.watch.follower` (polling, half-written files, restart without duplicates).
"""

from __future__ import annotations

from .follower import Follower, WatchState, state_dir_for
from .layouts import (
    AiToolkitLayout,
    KohyaLayout,
    Layout,
    PatternLayout,
    Sample,
    SimpleTunerLayout,
    detect_layout,
    epoch_steps_from_log,
)

__all__ = [
    "Follower",
    "WatchState",
    "state_dir_for",
    "Layout",
    "Sample",
    "KohyaLayout",
    "AiToolkitLayout",
    "SimpleTunerLayout",
    "PatternLayout",
    "detect_layout",
    "epoch_steps_from_log",
    "make_layout",
]


def make_layout(
    name: str,
    *,
    pattern: str | None = None,
    steps_per_epoch: int | None = None,
    trainer_log: str | None = None,
) -> Layout:
    """A layout by name: ``kohya``, ``ai-toolkit``, ``simpletuner`` or ``pattern`` (needs ``pattern``)."""
    from pathlib import Path

    from ..errors import ConfigError

    if name == "kohya":
        return KohyaLayout(steps_per_epoch=steps_per_epoch, log=Path(trainer_log) if trainer_log else None)
    if name == "ai-toolkit":
        return AiToolkitLayout()
    if name == "simpletuner":
        return SimpleTunerLayout()
    if name == "pattern":
        if not pattern:
            raise ConfigError("--layout pattern needs --pattern, e.g. 'val/{step}_{idx}.png'")
        return PatternLayout(pattern)
    raise ConfigError(f"unknown layout {name!r}; known: kohya, ai-toolkit, simpletuner, pattern")
