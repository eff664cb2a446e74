"""Which metrics a comparison shows and ranks, and how each is judged (goal, weight, tolerance, limit).

Users name metrics the short way (``band_score``, ``tiling/band_score``) or by their full tracker key
(``trackdiag/tiling/band_score``). :func:`resolve_key` maps a name to exactly one logged key, or raises a
:class:`~trackdiag.compare.data.MissingMetricError` that lists the closest logged keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..core.values import ROOT
from ..errors import ConfigError
from .data import MissingMetricError

__all__ = ["MetricSpec", "resolve_key", "candidates", "default_keys", "build_specs", "goal_of", "label_of",
           "GOALS"]

GOALS = ("min", "max", "none")


@dataclass(frozen=True)
class MetricSpec:
    """One column of the comparison table.

    ``key``: the logged key (samples mode: ``<key>/<aggregate>``); ``base``: the key without the aggregate;
    ``goal``: ``"min"`` (lower is better), ``"max"`` or ``"none"`` (shown, never judged);
    ``goal_assumed``: the goal came from ``default_goal``, not from ``goals``; ``weight``: weight in the
    ranking (0: shown and judged, not ranked); ``tolerance``: absolute worsening against the baseline that
    is still not a regression (None: ``regression.rel`` × |baseline|); ``limit``: a hard bound, flagged when
    the value is on the wrong side of it (None: no limit).
    """

    key: str
    base: str
    goal: str
    goal_assumed: bool
    weight: float
    tolerance: Optional[float]
    limit: Optional[float]

    @property
    def label(self) -> str:
        return label_of(self.key)

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is better, 0 for ``none``."""
        return {"max": 1.0, "min": -1.0}.get(self.goal, 0.0)


def label_of(key: str) -> str:
    """The short label of a key: ``trackdiag/tiling/band_score`` → ``tiling/band_score``."""
    return key[len(ROOT) + 1:] if key.startswith(ROOT + "/") else key


def candidates(name: str, available: Sequence[str]) -> list[str]:
    """The logged keys ``name`` may mean: the exact key, ``trackdiag/<name>``, else every key ending in
    ``/<name>``."""
    if name in available:
        return [name]
    full = f"{ROOT}/{name}"
    if full in available:
        return [full]
    suffix = "/" + name.strip("/")
    return [k for k in available if k.endswith(suffix)]


def resolve_key(name: str, available: Sequence[str], *, where: str = "the compared runs") -> str:
    """The one logged key that ``name`` means. Raises MissingMetricError / ConfigError (ambiguous)."""
    hits = candidates(name, available)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ConfigError(f"metric {name!r} is ambiguous in {where}: it matches {hits}. Give the longer "
                          "name, e.g. one of those keys.")
    close = difflib.get_close_matches(name, [label_of(k) for k in available], n=5, cutoff=0.5)
    shown = sorted(label_of(k) for k in available)
    listing = ", ".join(shown[:30]) + (f", … ({len(shown) - 30} more)" if len(shown) > 30 else "")
    hint = f" Did you mean {close}?" if close else ""
    raise MissingMetricError(f"metric {name!r} was not logged by any of {where}.{hint} Logged metrics: "
                             f"{listing or 'none'}.")


def default_keys(available: Sequence[str]) -> list[str]:
    """The columns when ``metrics`` is empty: every ``trackdiag/*`` key (every key when there is none)."""
    ours = [k for k in available if k.startswith(ROOT + "/")]
    return sorted(ours or available)


def _lookup(table: Mapping[str, Any], key: str, base: str, what: str, available: Sequence[str]) -> Any:
    """The entry of a per-metric setting (``goals``, ``weights`` ...) that names ``key`` or ``base``."""
    found = None
    for name, value in table.items():
        hits = candidates(str(name), available)
        if key in hits or base in hits:
            if found is not None and found[1] != value:
                raise ConfigError(f"{what}: {found[0]!r} and {name!r} both set {label_of(base)!r}.")
            found = (name, value)
    return None if found is None else found[1]


def goal_of(key: str, goals: Mapping[str, str], default_goal: str, available: Sequence[str]
            ) -> tuple[str, bool]:
    """``(goal, assumed)`` of a logged key: its entry in ``goals``, else ``default_goal`` (assumed)."""
    goal = _lookup(goals, key, key, "goals", available)
    if goal is None:
        return default_goal, True
    if str(goal) not in GOALS:
        raise ConfigError(f"goals: {label_of(key)!r} has goal {goal!r}; use one of {GOALS}.")
    return str(goal), False


def check_settings(table: Mapping[str, Any], available: Sequence[str], what: str) -> None:
    """Every name in a per-metric setting must name a logged metric (a typo must not pass silently)."""
    for name in table:
        resolve_key(str(name), available, where=f"the compared runs (named in {what})")


def build_specs(keys: Sequence[str], *, goals: Mapping[str, str], default_goal: str,
                weights: Mapping[str, float], tolerances: Mapping[str, float], limits: Mapping[str, float],
                available: Sequence[str], aggregates: Sequence[str] = (), rank_by: str = "",
                strict_settings: bool = False, defaults: Mapping[str, Sequence[str]] = {}
                ) -> list[MetricSpec]:
    """The table's columns for resolved ``keys``.

    In samples mode ``aggregates`` (e.g. ``["mean", "median", "worst3"]``) expand every key into one column
    per aggregate; only the ``rank_by`` aggregate gets a ranking weight. ``goals`` may name metrics that
    were not selected or not logged (the defaults cover every analyzer); ``weights``, ``tolerances``
    (``regression.abs``) and ``limits`` must name logged metrics when ``strict_settings`` is true, except
    the names in ``defaults[<setting>]`` (the shipped defaults, which cover metrics a run may not log).
    """
    if default_goal not in GOALS:
        raise ConfigError(f"default_goal must be one of {GOALS}; got {default_goal!r}.")
    if strict_settings:
        for table, what in ((weights, "weights"), (tolerances, "regression.abs"), (limits, "limits")):
            shipped = set(defaults.get(what, ()))
            check_settings({k: v for k, v in table.items() if k not in shipped}, available, what)
    specs = []
    for base in keys:
        goal, assumed = goal_of(base, goals, default_goal, available)
        weight = _lookup(weights, base, base, "weights", available)
        weight = 1.0 if weight is None else float(weight)
        if weight < 0:
            raise ConfigError(f"weights: {label_of(base)!r} has a negative weight {weight}.")
        if goal == "none":
            weight = 0.0
        tol = _lookup(tolerances, base, base, "regression.abs", available)
        lim = _lookup(limits, base, base, "limits", available)
        if lim is not None and goal == "none":
            raise ConfigError(f"limits: {label_of(base)!r} has goal 'none', so a limit has no side; set its "
                              "goal to min or max.")
        for agg in (aggregates or [""]):
            key = f"{base}/{agg}" if agg else base
            w = weight if (not agg or agg == rank_by) else 0.0
            specs.append(MetricSpec(key=key, base=base, goal=goal, goal_assumed=assumed, weight=w,
                                    tolerance=None if tol is None else float(tol),
                                    limit=None if lim is None else float(lim)))
    if specs and not any(s.weight > 0 for s in specs):
        raise ConfigError("no metric can rank the checkpoints: every selected metric has goal 'none' or "
                          "weight 0. Set goals.<metric>=min|max.")
    return specs
