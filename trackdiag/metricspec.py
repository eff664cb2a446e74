"""What each metric means: its goal, unit, one-line doc and the limits its verdict rules use.

Each analyzer declares the specs of the metrics it produces next to the code that makes them, with
:func:`register_metrics`; ``compare_ckpts`` (directions, limits), the reports (thresholds in plots and tables)
and the docs read them from here, so there is one source for "which way is better" and "from which value on
is it a problem".

>>> register_metrics("example", [MetricSpec("grid_s8", goal="min", unit="ratio", doc="8-px grid excess",
...                                         warn=0.1, bad=0.3)])
>>> spec("example", "grid_s8").level(0.2)
'warn'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["Goal", "MetricSpec", "register_metrics", "spec", "specs_for", "all_specs"]

Goal = Literal["min", "max", "none"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of one analyzer.

    Attributes:
        key: the metric's flat key (``checkerboard_s2``), without the ``trackdiag/<analyzer>/`` prefix.
        goal: ``"min"`` (lower is better), ``"max"`` or ``"none"`` (shown, never judged).
        unit: a short unit (``"px"``, ``"ratio"``, ``"dB"``, ``"σ"``, ``""``).
        doc: one line in plain words.
        warn: the value from which the analyzer's rules call it a problem (``None``: no limit).
        bad: the value from which it is a bad problem (``None``: no limit).
    """

    key: str
    goal: Goal = "min"
    unit: str = ""
    doc: str = ""
    warn: Optional[float] = None
    bad: Optional[float] = None

    def level(self, value: float) -> str:
        """``"none"``, ``"warn"`` or ``"bad"`` for ``value`` against this spec's limits."""
        if not math.isfinite(value) or self.goal == "none":
            return "none"
        worse = (lambda v, lim: v >= lim) if self.goal == "min" else (lambda v, lim: v <= lim)
        if self.bad is not None and worse(value, self.bad):
            return "bad"
        if self.warn is not None and worse(value, self.warn):
            return "warn"
        return "none"


_SPECS: dict[str, dict[str, MetricSpec]] = {}


def register_metrics(analyzer: str, specs: Iterable[MetricSpec]) -> None:
    """Declare (or replace) the specs of ``analyzer``'s metrics."""
    table = _SPECS.setdefault(analyzer, {})
    for s in specs:
        table[s.key] = s


def specs_for(analyzer: str) -> dict[str, MetricSpec]:
    """``key -> spec`` for ``analyzer`` (importing ``trackdiag.analyzers.<analyzer>`` if needed)."""
    if analyzer not in _SPECS:
        import importlib

        try:
            importlib.import_module(f"trackdiag.analyzers.{analyzer}")
        except ImportError:
            return {}
    return dict(_SPECS.get(analyzer, {}))


def spec(analyzer: str, key: str) -> Optional[MetricSpec]:
    """The spec of ``analyzer``'s metric ``key``, or ``None`` when it has none."""
    return specs_for(analyzer).get(key)


def all_specs() -> dict[str, dict[str, MetricSpec]]:
    """Every registered spec, ``analyzer -> key -> spec`` (only analyzers imported so far)."""
    return {a: dict(t) for a, t in _SPECS.items()}
