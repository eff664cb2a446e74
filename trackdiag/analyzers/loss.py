"""Loss-curve diagnostics: spikes, plateaus, divergence from the EMA and non-finite losses.

Seed section 3.1 (and 7.3): plot ``train_loss``, ``ema_loss`` and a per-step smoothing, find spikes
(more than ``spike_sigma`` σ over a rolling level) and correlate the loss with batches and samples.

A diffusion loss is noisy by nature and its level depends strongly on the sampled timestep, so the
detectors work on a *timestep-normalised* series (see ``docs/loss.md``):

* every loss goes through ``transform`` (``log`` by default: multiplicative noise becomes additive);
* with timesteps, each timestep bucket ``b`` has a learned offset ``o_b`` (its level relative to the
  others); a batch's normalised value is ``n = log(L) - log(Σ_b s_b · exp(o_b))`` with ``s_b`` the share of
  the batch in bucket ``b`` (per-sample losses are normalised sample by sample first);
* :class:`RollingSpikeDetector` compares ``n`` with a local linear trend fitted over the last ``window``
  accepted points (OLS and residual σ, or two-halves median slope and MAD σ when ``robust``);
* plateau = a linear fit over the last ``plateau_patience`` steps improves ``n`` by less than
  ``plateau_min_improvement`` (for a quarter of that window in a row); EMA divergence = the fast EMA stays
  above the slow one by more than
  ``divergence_sigma`` σ for ``divergence_patience`` steps, or ``n`` sits above the slow EMA in at least
  ``divergence_fraction`` of the last ``divergence_window`` steps (a drift that keeps one sign).

One implementation serves both uses: :class:`LossDetector` is fed step by step by :class:`LossAnalyzer`
in the loop and by :func:`detect_series` offline (logs). Its state is plain Python data
(:meth:`LossDetector.state_dict`), so detection survives a resume and the state loads with
``torch.load(weights_only=True)``.

The thin :class:`LossAnalyzer` around modules with one job each (all re-exported here):

* :mod:`trackdiag.functional.loss_level`: the local level, its t → z map and the fitted improvement;
* :mod:`trackdiag.functional.loss_buckets`: timestep buckets and the per-bucket offsets (pure math);
* :mod:`~trackdiag.analyzers.loss_params`: :class:`LossParams`;
  :mod:`~trackdiag.analyzers.loss_events`: the event and step records;
* :mod:`~trackdiag.analyzers.loss_spikes`: :class:`RollingSpikeDetector` (over
  :mod:`~trackdiag.analyzers.loss_ring`, its window); :mod:`~trackdiag.analyzers.loss_samples`: per-sample
  statistics;
* :mod:`~trackdiag.analyzers.loss_detector`: :class:`LossDetector`, the streaming detector;
  :mod:`~trackdiag.analyzers.loss_series`: :func:`detect_series`, the same detector over a whole series;
* :mod:`~trackdiag.analyzers.loss_rules`: :func:`loss_rules`, the verdict rules (registered as ``"loss"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch

from ..errors import InputValueError
from ..functional.loss_buckets import bucket_shares, timestep_buckets
from ..functional.loss_level import LocalLevel, linear_improvement, local_level, t_to_z
from .base import Analyzer, Result, StepInputs
from .loss_detector import LossDetector
from .loss_events import EVENT_COLUMNS, EVENT_KINDS, LossEvent, StepReport
from .loss_params import LossParams
from .loss_rules import NOMINAL_FALSE_ALARM, VERDICT_CODES, event_evidence, loss_rules
from .loss_series import SeriesDetection, detect_series
from .loss_spikes import RollingSpikeDetector, SpikeCheck

__all__ = [
    "EVENT_KINDS", "EVENT_COLUMNS", "LossParams", "LossEvent", "StepReport", "SpikeCheck", "LocalLevel",
    "local_level", "t_to_z",
    "timestep_buckets", "bucket_shares", "linear_improvement", "RollingSpikeDetector", "LossDetector",
    "SeriesDetection",
    "detect_series", "LossAnalyzer", "event_evidence", "loss_rules", "VERDICT_CODES", "NOMINAL_FALSE_ALARM",
]


class LossAnalyzer(Analyzer[LossParams]):
    """Loss spikes, plateaus, EMA divergence and non-finite losses, per timestep bucket, in the loop.

    ``compute`` hands the loss (``()`` or ``(B,)``) and the timesteps over without a device sync;
    ``summarize`` runs :class:`LossDetector` on the CPU.
    """

    name = "loss"
    Params = LossParams
    requires = ("loss",)

    def __init__(self, params: Optional[LossParams] = None) -> None:
        super().__init__(params if params is not None else LossParams())
        self.detector = LossDetector(self.params)
        self.last_report: Optional[StepReport] = None
        self._summaries = 0

    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        loss = inputs.loss
        if loss is None:
            raise InputValueError("the loss analyzer needs loss=... in trackdiag.log().")
        out = {"loss": loss.detach().float()}
        if inputs.timesteps is not None:
            out["timesteps"] = inputs.timesteps.detach().float()
        return out

    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Optional[Sequence[str]] = None) -> Result:
        rep = self.detector.update(step, host["loss"], host.get("timesteps"), sample_ids)
        self.last_report = rep  # the latest step's report (read by the seed API)
        self._summaries += 1
        metrics = {"train_loss": rep.value, "ema_loss": rep.ema, "smoothed_loss": rep.smoothed,
                   "expected_loss": rep.expected,
                   "loss_ratio": rep.value / rep.expected if rep.expected and math.isfinite(rep.expected)
                   else math.nan,
                   "loss_z": rep.z, "spike": 1.0 if rep.spike else 0.0,
                   "plateau": 1.0 if rep.plateau else 0.0,
                   "diverging": 1.0 if rep.diverging else 0.0}
        metrics.update(self.detector.metrics())
        result = Result(metrics=metrics)
        if rep.events:
            result.tables["events"] = [e.row() for e in rep.events]
        self._drawn = (self._summaries - 1) % max(1, self.params.figures_every) == 0
        if self._drawn:
            result.maps["history"] = self.detector.history_array()
            result.maps["bucket_profile"] = self.detector.bucket_profile()
            if self.detector.samples.stats:
                result.tables["samples"] = self.detector.samples.rows(self.params.max_sample_rows)
        return result

    def want_figures(self) -> bool:
        # summarize() already attaches the history map only every figures_every-th step
        self._runs += 1
        return True

    def final_result(self) -> Optional[Result]:
        """The history at the last step, when that step's Result had none (the session draws it at finish)."""
        if self._summaries == 0 or getattr(self, "_drawn", True):
            return None
        return Result(maps={"history": self.detector.history_array(),
                            "bucket_profile": self.detector.bucket_profile()})

    def render(self, result: Result) -> dict[str, np.ndarray]:
        from ..plots.loss import loss_history_figure

        hist = result.maps.get("history")
        if hist is None or hist.ndim != 2 or hist.shape[1] < 2:  # one point is an empty chart: no figure
            return {}
        return {"loss_curves": loss_history_figure(hist, spike_sigma=self.params.spike_sigma)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "summaries": self._summaries, "detector": self.detector.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._summaries = int(state.get("summaries", 0))
        if "detector" in state:
            self.detector.load_state_dict(state["detector"])
