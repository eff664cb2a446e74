"""The verdict flow of a training run, between the analyzers and the worker (the session calls it).

At each analysis step: the verdicts of every analyzer with registered rules are recomputed from its Result
(:class:`trackdiag.core.findings.RunFindings`), their ``trackdiag/<analyzer>/verdict/<code>`` metrics go into
the
step's record, the samples figure (:mod:`trackdiag.plots.samples`) is added, and the record carries the run's
current findings for the backends to publish. At ``finish()``: every analyzer whose last Result was not
drawn (``figures_every``) gets its figures at its last step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from ..plots.samples import KEY as SAMPLES_KEY
from ..plots.samples import SAMPLES, samples_figure, thumbnails
from .findings import RunFindings
from .render import RenderJob
from .worker import Record

__all__ = ["VerdictFlow"]

log = logging.getLogger("trackdiag")


class VerdictFlow:
    """Per-run state: the findings, the analyzers' last undrawn results, the samples settings."""

    def __init__(self, *, samples: int = 4, max_side: int = 256) -> None:
        self.findings = RunFindings()
        self.samples = samples
        self.max_side = max_side
        self._undrawn: dict[str, tuple[int, Any, Any]] = {}
        self._last: dict[str, tuple[int, Any]] = {}
        self._step_verdicts: list[Any] = []
        self._tiling_maps: dict[str, np.ndarray] = {}
        self._judged_now = False

    # -- training thread ------------------------------------------------------------------------------------
    def thumbnails(self, inputs: Any, due: Sequence[Any]) -> dict[str, dict[str, torch.Tensor]]:
        """The samples' thumbnails when an analyzer of ``pred`` is due (to travel in the one transfer)."""
        if self.samples <= 0 or inputs is None or inputs.pred is None:
            return {}
        if not any("pred" in getattr(a, "requires", ()) and _has_rules(a.name) for a in due):
            return {}  # only the predictions an analyzer with verdicts diagnoses
        try:
            return {SAMPLES: thumbnails(inputs.pred, inputs.mask, max_n=self.samples, max_side=self.max_side)}
        except Exception as exc:  # a figure must not cost the step
            log.warning("trackdiag: no samples figure at step %d: %s", inputs.step, exc)
            return {}

    def observe(self, analyzer: Any, step: int, result: Any, *, drawn: bool) -> dict[str, float]:
        """After ``analyzer.summarize``: the verdict metrics (full keys) to add to the step's record."""
        self._last[analyzer.name] = (step, analyzer)
        if result.maps:
            if drawn:
                self._undrawn.pop(analyzer.name, None)
            else:
                self._undrawn[analyzer.name] = (step, analyzer, result)
        if analyzer.name == "tiling":
            self._tiling_maps = dict(result.maps)
        before = self.findings._judged.get(analyzer.name)
        metrics = self.findings.observe(analyzer, step, result)
        if self.findings._judged.get(analyzer.name) != before or metrics:
            self._judged_now = True
            self._step_verdicts += [f.verdict for f in self.findings.current() if f.analyzer == analyzer.name]
        return metrics

    def complete(self, record: Record, host: Mapping[str, Mapping[str, np.ndarray]],
                 ids: Optional[Sequence[str]]) -> None:
        """Add the samples figure and the current findings to the step's record."""
        thumbs = host.get(SAMPLES)
        if thumbs is not None and "map/images" in thumbs:
            record.figures.append(_samples_renderer(thumbs, self._tiling_maps, list(self._step_verdicts),
                                                    record.step, list(ids) if ids is not None else None))
        if self._judged_now:
            record.findings = self.findings.payload()
        self._judged_now = False
        self._step_verdicts = []
        self._tiling_maps = {}

    def final_records(self) -> list[Record]:
        """Records with the figures of every analyzer's last undrawn Result (at its own step)."""
        out = []
        for name, (step, analyzer) in self._last.items():
            undrawn = self._undrawn.get(name)
            result = undrawn[2] if undrawn is not None and undrawn[0] == step else None
            if result is None and hasattr(analyzer, "final_result"):
                try:  # an analyzer that attaches its figure maps only on drawing steps (loss)
                    result = analyzer.final_result()
                except Exception as exc:
                    log.warning("trackdiag: no last figure for %s: %s", name, exc)
            if result is not None and result.maps:
                out.append(Record(step=step, figures=[_renderer(analyzer, result)]))
        self._undrawn.clear()
        self._last.clear()
        return out


def _has_rules(name: str) -> bool:
    from ..verdicts import rules_for

    try:
        rules_for(name)
    except (KeyError, ImportError):
        return False
    return True


def _renderer(analyzer: Any, result: Any) -> RenderJob:
    return RenderJob(analyzer, result)


@dataclass
class SamplesJob(RenderJob):
    """The samples figure of one step (picklable, so it is drawn in the render process like the rest)."""

    thumbs: Mapping[str, np.ndarray] = field(default_factory=dict)
    maps: Mapping[str, np.ndarray] = field(default_factory=dict)
    verdicts: list[Any] = field(default_factory=list)
    step: int = 0
    ids: Optional[list[str]] = None

    def __call__(self) -> dict[str, np.ndarray]:
        size = [int(v) for v in np.asarray(self.thumbs.get("map/size", [])).reshape(-1)]
        image = samples_figure(self.thumbs["map/images"], masks=self.thumbs.get("map/masks"), size=size,
                               tiling_maps=self.maps, verdicts=self.verdicts, step=self.step,
                               sample_ids=self.ids)
        return {SAMPLES_KEY: image} if image is not None else {}


def _samples_renderer(thumbs: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray], verdicts: list[Any],
                      step: int, ids: Optional[list[str]]) -> SamplesJob:
    return SamplesJob(None, None, dict(thumbs), dict(maps), verdicts, step, ids)
