"""The current findings of a run: each analyzer's verdicts, since when each holds, in words and Markdown.

During training the session hands every analyzer's :class:`~trackdiag.analyzers.base.Result` to
:meth:`RunFindings.observe`, which recomputes the verdicts with the analyzer's registered rules
(:func:`trackdiag.verdicts.evaluate`), returns the ``trackdiag/<analyzer>/verdict/<code>`` metrics (every
known code, 0 when it does not hold, so that "since when" is one chart) and keeps, per code, the step since
which it holds. :meth:`RunFindings.payload` is what the backends publish (a JSON-able dict: MLflow's run
description and tags, W&B's summary and notes, TensorBoard's text); :func:`console_text` is what
``finish()``, ``diagnose``, ``dataset``, ``compare`` and the integrations print.

>>> from trackdiag.verdicts import Verdict
>>> f = RunFindings()
>>> v = Verdict(code="checkerboard", severity="bad", title="Checkerboard", evidence={"checkerboard_s2": 0.3},
...             fix="Use resize then conv.")
>>> _ = f.record("tiling", 100, [v], {"checkerboard_s2": 0.3})
>>> _ = f.record("tiling", 200, [v], {"checkerboard_s2": 0.4})
>>> f.worst(), f.causes(), f.current()[0].since
('bad', ['checkerboard'], 100)
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..verdicts import SEVERITY_LEVEL, Verdict, causes, evaluate, verdict_metrics, worst_severity

__all__ = ["Finding", "RunFindings", "known_codes", "console_text", "markdown", "verdicts_of",
           "threshold_text", "shell_command", "python_command", "print_findings", "add_verdict"]

log = logging.getLogger("trackdiag")

#: The stable codes of each analyzer (trackdiag's RULES): logged as 0 until they fire, so that the
#: verdict chart of a code starts at step 0. An analyzer module may extend its list with ``VERDICT_CODES``.
_KNOWN: dict[str, tuple[str, ...]] = {
    "tiling": ("nonfinite", "aperiodic", "perspective", "period_doubled", "period_halved",
               "harmonic_confusion", "doubled_zone", "bands_rows", "bands_cols", "checkerboard", "aliasing",
               "border_cross", "edge_artifact", "mask_seam"),
    "loss": ("loss_spike", "loss_plateau", "loss_divergence", "loss_nonfinite"),
    "latent": ("latent_stripes", "latent_periodic", "latent_drift", "latent_nonfinite"),
    "pixel": ("pixel_leak", "pixel_rows", "pixel_cols", "pixel_defect"),
}

_SEVERITY_WORDS = {"bad": "BAD", "warn": "WARN", "info": "info"}
_ICON = {"bad": "BAD", "warn": "WARN", "info": "info", "none": "OK"}


def known_codes(analyzer: str, *, module: Any = None) -> tuple[str, ...]:
    """The verdict codes ``analyzer`` can produce (its module's ``VERDICT_CODES`` when it declares them)."""
    extra: Sequence[str] = ()
    if module is not None:
        extra = tuple(getattr(module, "VERDICT_CODES", ()) or ())
    return tuple(dict.fromkeys([*_KNOWN.get(analyzer, ()), *extra]))


def verdicts_of(analyzer: str, summary: Mapping[str, Any]) -> Optional[list[Verdict]]:
    """The verdicts of ``analyzer``'s registered rules on a flat summary; None when it registered none."""
    try:
        return evaluate(analyzer, summary)
    except (KeyError, ImportError, ModuleNotFoundError):
        return None


@dataclass
class Finding:
    """One verdict that holds now, with the step since which it holds (without a break)."""

    analyzer: str
    verdict: Verdict
    since: int
    step: int
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, **self.verdict.to_dict(), "since_step": self.since,
                "last_step": self.step}


@dataclass
class _Resolved:
    analyzer: str
    code: str
    title: str
    since: int
    until: int


class RunFindings:
    """Per-run verdict state: what holds now, since when, and what held once and went away."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], Finding] = {}
        self._resolved: dict[tuple[str, str], _Resolved] = {}
        self._codes: dict[str, list[str]] = {}
        self._judged: dict[str, int] = {}  # analyzer -> last step its rules ran
        self._summaries: dict[str, dict[str, Any]] = {}
        self.step: Optional[int] = None
        self.links: dict[str, str] = {}

    # -- input ------------------------------------------------------------------------------------------
    def observe(self, analyzer: Any, step: int, result: Any) -> dict[str, float]:
        """Recompute ``analyzer``'s verdicts from its Result; returns the verdict metrics to log.

        Never raises: a rule that fails is logged once and the analyzer is left without verdicts.
        """
        name = str(getattr(analyzer, "name", analyzer))
        summary: dict[str, Any] = {**getattr(result, "metrics", {}), **getattr(result, "texts", {})}
        try:
            verdicts = verdicts_of(name, summary)
        except Exception as exc:  # a rule must never cost the run
            log.warning("trackdiag: the verdict rules of %s failed at step %d: %s", name, step, exc)
            return {}
        if verdicts is None:
            return {}
        module = sys.modules.get(type(analyzer).__module__) if not isinstance(analyzer, str) else None
        return self.record(name, step, verdicts, summary, module=module)

    def record(self, analyzer: str, step: int, verdicts: Sequence[Verdict], summary: Mapping[str, Any], *,
               module: Any = None) -> dict[str, float]:
        """Record ``analyzer``'s verdicts at ``step``; returns the ``…/verdict/<code>`` metrics."""
        codes = self._codes.setdefault(analyzer, list(known_codes(analyzer, module=module)))
        for v in verdicts:
            if v.code not in codes:
                codes.append(v.code)
        self.step = step if self.step is None else max(self.step, step)
        self._judged[analyzer] = step
        self._summaries[analyzer] = {k: v for k, v in summary.items()}
        now = {v.code: v for v in verdicts}
        for key in [k for k in self._current if k[0] == analyzer and k[1] not in now]:
            gone = self._current.pop(key)
            self._resolved[key] = _Resolved(analyzer, gone.verdict.code, gone.verdict.title, gone.since, step)
        for code, v in now.items():
            key = (analyzer, code)
            prev = self._current.get(key)
            since = prev.since if prev is not None else step
            values = {k: float(x) for k, x in v.evidence.items() if isinstance(x, (int, float))}
            self._current[key] = Finding(analyzer, v, since, step, values)
            self._resolved.pop(key, None)
        return verdict_metrics(verdicts, analyzer, codes=codes)

    # -- state ------------------------------------------------------------------------------------------
    def current(self) -> list[Finding]:
        """The findings that hold now, worst first, then by the step since which they hold."""
        return sorted(self._current.values(),
                      key=lambda f: (-SEVERITY_LEVEL[f.verdict.severity], f.verdict.severity != "warn",
                                     f.since, f.verdict.code))

    def verdicts(self) -> list[Verdict]:
        return [f.verdict for f in self.current()]

    def worst(self) -> str:
        """``none``, ``info``, ``warn`` or ``bad``."""
        return worst_severity(self.verdicts())

    def causes(self) -> list[str]:
        return causes(self.verdicts())

    @property
    def judged(self) -> bool:
        """Whether any analyzer's rules ran at all."""
        return bool(self._judged)

    def payload(self) -> dict[str, Any]:
        """What the backends publish: JSON-able, self-contained (it may wait in the spool)."""
        return {"step": self.step, "verdict": self.worst(), "causes": self.causes(),
                "findings": [f.to_dict() for f in self.current()],
                "resolved": [vars(r) for r in self._resolved.values()],
                "analyzers": dict(self._judged),
                "markdown": markdown(self), "text": console_text(self)}


# -- words ------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def threshold_text(analyzer: str, key: str) -> str:
    """``"warn ≥ 0.1, bad ≥ 0.3"`` from the metric's spec (:mod:`trackdiag.metricspec`), or ``""``."""
    try:
        from ..metricspec import spec

        s = spec(analyzer, key)
    except Exception:
        return ""
    if s is None or (s.warn is None and s.bad is None) or s.goal == "none":
        return ""
    op = "≥" if s.goal == "min" else "≤"
    parts = [f"{name} {op} {_fmt(lim)}" for name, lim in (("warn", s.warn),
                                                          ("bad", s.bad)) if lim is not None]
    return ", ".join(parts)


def evidence_text(analyzer: str, evidence: Mapping[str, Any], *, limit: int = 4) -> str:
    """``key = value (warn ≥ x)`` for the first ``limit`` evidence items."""
    parts = []
    for key, value in list(evidence.items())[:limit]:
        lim = threshold_text(analyzer, key)
        parts.append(f"{key} = {_fmt(value)}" + (f" ({lim})" if lim else ""))
    return "; ".join(parts)


def _where(analyzer: str) -> str:
    return f"charts trackdiag/{analyzer}/… and the figures trackdiag/{analyzer}/*"


def console_text(findings: RunFindings | Iterable[Verdict], *, title: str = "trackdiag findings",
                 where: str = "") -> str:
    """The findings in words, one block per verdict: cause, severity, since when, evidence, fix, where.

    ``findings`` is a run's :class:`RunFindings` or plain verdicts (an offline diagnosis).
    """
    items: list[tuple[Verdict, str, Optional[int]]]
    if isinstance(findings, RunFindings):
        items = [(f.verdict, f.analyzer, f.since) for f in findings.current()]
        step = findings.step
        judged = findings.judged
    else:
        items = [(v, "", None) for v in findings]
        step, judged = None, True
    worst = worst_severity(v for v, _, _ in items)
    head = f"{title}: " + {"none": "no problem found", "info": "no problem found (notes only)",
                           "warn": "a likely problem", "bad": "a problem"}[worst]
    if step is not None:
        head += f" (as of step {step})"
    if not judged:
        head = f"{title}: no analyzer with verdict rules ran"
    lines = [head]
    for v, analyzer, since in items:
        when = f", since step {since}" if since is not None else ""
        lines.append(f"  [{_SEVERITY_WORDS[v.severity]}] {v.title} ({v.code}{when})")
        ev = evidence_text(analyzer, v.evidence) if v.evidence else ""
        if ev:
            lines.append(f"      evidence: {ev}")
        if v.fix:
            lines.append(f"      fix: {v.fix}")
        if analyzer:
            lines.append(f"      look at: {_where(analyzer)}")
    if isinstance(findings, RunFindings):
        for r in findings._resolved.values():
            lines.append(f"  [gone] {r.title} ({r.code}): held from step {r.since}, gone at step {r.until}")
    if where:
        lines.append(f"  {where}")
    return "\n".join(lines)


def _md_escape(text: Any) -> str:
    s = str(text)
    for ch in ("\\", "|", "*", "_", "`", "<", ">", "[", "]"):
        s = s.replace(ch, "\\" + ch)
    return s


def markdown(findings: RunFindings) -> str:
    """The run description: the verdict, each finding with severity, since when, key numbers and limits."""
    worst = findings.worst()
    step = findings.step
    head = {"none": "No problem found", "info": "No problem found (notes only)", "warn": "Likely problem",
            "bad": "Problem found"}[worst]
    lines = [f"## trackdiag: {head}" + (f" (step {step})" if step is not None else ""), ""]
    current = findings.current()
    problems = [f for f in current if f.verdict.is_problem]
    if problems:  # the answer in one line, before anything that may be folded away
        lines += ["; ".join(f"**{_ICON[f.verdict.severity]}: {_md_escape(f.verdict.title)}** since step "
                            f"{f.since}"
                            for f in problems[:3]), ""]
    if current:
        lines += ["| severity | finding | code | since step | evidence (limits) |",
                  "|---|---|---|---|---|"]
        for f in current:
            v = f.verdict
            lines.append(f"| {_ICON[v.severity]} | {_md_escape(v.title)} | `{v.code}` | {f.since} | "
                         f"{_md_escape(evidence_text(f.analyzer, v.evidence))} |")
        lines.append("")
        fixes = [f for f in current if f.verdict.fix and f.verdict.is_problem]
        if fixes:
            lines.append("**What usually fixes it**")
            lines.append("")
            lines += [f"- **{_md_escape(f.verdict.title)}**: {_md_escape(f.verdict.fix)}" for f in fixes]
            lines.append("")
    else:
        lines += ["No verdict holds at the last analysis step.", ""]
    resolved = list(findings._resolved.values())
    if resolved:
        lines.append("**Gone**: " + "; ".join(f"{_md_escape(r.title)} (`{r.code}`, steps {r.since}–{r.until})"
                                            for r in resolved))
        lines.append("")
    analyzers = sorted(findings._judged)
    if analyzers:
        charts = ", ".join(f"`trackdiag/{a}/verdict/*`" for a in analyzers)
        lines.append(f"Where to look: the charts {charts} (0 = fine, 1 = warn, 2 = bad) show since when each "
                     "verdict holds; the image `trackdiag/samples` marks the zones in the diagnosed outputs.")
    for name, target in findings.links.items():
        lines.append(f"- {_md_escape(name)}: {target}")
    return "\n".join(lines).rstrip() + "\n"


def add_verdict(path: Path, verdicts: Sequence[Verdict]) -> None:
    """Add ``verdict`` (worst severity), ``causes`` and ``verdicts`` (when absent) to a summary.json."""
    import json

    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return
    data["verdict"] = worst_severity(verdicts)
    data["causes"] = causes(verdicts)
    data.setdefault("verdicts", [v.to_dict() for v in verdicts])
    from ..report.folder import write_json

    write_json(data, path)


# -- commands a user can paste ----------------------------------------------------------------------------
def python_command() -> str:
    """The absolute path of the running interpreter (works in a shell where the venv is not active)."""
    return sys.executable or "python3"


def shell_command(script: str, *args: str, module: Optional[str] = None) -> str:
    """A command line that works when pasted into a fresh shell where the venv is not active: the venv's own
    console script by its absolute path (``/path/venv/bin/trackdiag ui``) when it is there, else
    ``/abs/python -m <module> …`` (``module`` defaults to ``trackdiag.cli <script>`` for ``trackdiag``)."""
    exe = python_command()
    candidate = Path(exe).with_name(script)
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return shlex.join([str(candidate), *args])
    if module is None:
        if script != "trackdiag":
            return shlex.join([script, *args])
        return shlex.join([exe, "-m", "trackdiag.cli", *args])
    return shlex.join([exe, "-m", module, *args])


def print_findings(text: str, *, file: Any = None) -> None:
    """Print findings unless ``TRACKDIAG_QUIET`` is set (to stderr by default, away from piped stdout)."""
    if os.environ.get("TRACKDIAG_QUIET", "").lower() in ("1", "true", "yes"):
        return
    print(text, file=file if file is not None else sys.stderr, flush=True)
