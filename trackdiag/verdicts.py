"""Verdicts: the answer every analyzer gives, in one machine-readable schema.

A verdict is a stable ``code`` (``checkerboard``, ``grid_s8``, ``loss_spike`` …), a ``severity``
(``info`` | ``warn`` | ``bad``), a one-line ``title`` in plain words, the ``evidence`` (the numbers that
support it, with their limits) and the usual ``fix``. Reports, the console, the trackers' run descriptions
and tags, and ``compare_ckpts`` all read verdicts in this one shape.

Each analyzer keeps its verdict rules beside its math and registers them here under its name with
:func:`register_rules`, so that a verdict can be recomputed from stored metrics (``compare_ckpts`` on an
older run) with the same code that produced it in training.

>>> v = Verdict(code="checkerboard", severity="bad", title="Checkerboard", evidence={"checkerboard_s2": 0.2},
...             fix="Use resize then conv.")
>>> worst_severity([v]), causes([v])
('bad', ['checkerboard'])
>>> verdict_metrics([v], "tiling", codes=("checkerboard", "grid_s8"))
{'trackdiag/tiling/verdict/checkerboard': 2.0, 'trackdiag/tiling/verdict/grid_s8': 0.0}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Severity", "Verdict", "SEVERITY_LEVEL", "worst_severity", "causes", "verdict_metrics",
    "register_rules", "rules_for", "evaluate", "from_dict",
]

Severity = Literal["info", "warn", "bad"]

#: The numeric level of each severity: the value of a ``…/verdict/<code>`` metric.
SEVERITY_LEVEL: Mapping[str, int] = {"none": 0, "info": 0, "warn": 1, "bad": 2}
_ORDER = {"none": 0, "info": 1, "warn": 2, "bad": 3}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One finding of an analyzer.

    Attributes:
        code: stable identifier (``[a-z][a-z0-9_]*``), the same in every release.
        severity: ``"info"`` (context, nothing to fix), ``"warn"`` or ``"bad"``.
        title: the finding in plain words, one line.
        evidence: the numbers behind it, ``key -> value`` (thresholds included where they matter).
        fix: what usually removes the cause.
    """

    code: str
    severity: Severity
    title: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""

    def __post_init__(self) -> None:
        if self.severity not in ("info", "warn", "bad"):
            raise ValueError(f"verdict severity must be 'info', 'warn' or 'bad', got {self.severity!r}")

    @property
    def cause(self) -> str:
        """The title (the name used before verdicts had codes)."""
        return self.title

    @property
    def is_problem(self) -> bool:
        """True for ``warn`` and ``bad``."""
        return self.severity in ("warn", "bad")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"code", "severity", "title", "evidence", "fix"}``."""
        return {"code": self.code, "severity": self.severity, "title": self.title,
                "evidence": dict(self.evidence), "fix": self.fix}


def from_dict(d: Mapping[str, Any]) -> Verdict:
    """The inverse of :meth:`Verdict.to_dict`."""
    return Verdict(code=str(d["code"]), severity=d["severity"], title=str(d.get("title", d["code"])),
                   evidence=dict(d.get("evidence") or {}), fix=str(d.get("fix", "")))


def worst_severity(verdicts: Iterable[Verdict]) -> str:
    """``"none"``, ``"info"``, ``"warn"`` or ``"bad"``: the worst severity among ``verdicts``."""
    worst = "none"
    for v in verdicts:
        if _ORDER[v.severity] > _ORDER[worst]:
            worst = v.severity
    return worst


def causes(verdicts: Iterable[Verdict]) -> list[str]:
    """The sorted, unique codes of the ``warn`` and ``bad`` verdicts."""
    return sorted({v.code for v in verdicts if v.is_problem})


def verdict_metrics(verdicts: Iterable[Verdict], analyzer: str, *,
                    codes: Sequence[str] = ()) -> dict[str, float]:
    """``trackdiag/<analyzer>/verdict/<code>`` → severity level (0 none or info, 1 warn, 2 bad).

    Every code in ``codes`` gets a value (0 when it did not fire), so that "since when" is one chart.
    """
    out = {f"trackdiag/{analyzer}/verdict/{c}": 0.0 for c in codes}
    for v in verdicts:
        key = f"trackdiag/{analyzer}/verdict/{v.code}"
        out[key] = max(out.get(key, 0.0), float(SEVERITY_LEVEL[v.severity]))
    return out


Rules = Callable[[Mapping[str, Any]], list[Verdict]]
_RULES: dict[str, Rules] = {}


def register_rules(analyzer: str, rules: Rules) -> Rules:
    """Register ``rules(summary) -> list[Verdict]`` as the verdict rules of ``analyzer``."""
    _RULES[analyzer] = rules
    return rules


def rules_for(analyzer: str) -> Rules:
    """The verdict rules registered for ``analyzer`` (importing its module if needed)."""
    if analyzer not in _RULES:
        import importlib

        importlib.import_module(f"trackdiag.analyzers.{analyzer}")
    try:
        return _RULES[analyzer]
    except KeyError:
        raise KeyError(f"no verdict rules registered for analyzer {analyzer!r}; "
                       f"known: {sorted(_RULES)}") from None


def evaluate(analyzer: str, summary: Mapping[str, Any]) -> list[Verdict]:
    """Recompute ``analyzer``'s verdicts from a flat summary (metric key without prefix → value)."""
    return rules_for(analyzer)(summary)
