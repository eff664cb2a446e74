"""The streaming loss detector, :class:`LossDetector`: one :meth:`~LossDetector.update` per training step.

It normalises each batch's loss by its timestep mix (:mod:`trackdiag.functional.loss_buckets`), tests it
for a spike against the rolling local level (:class:`~trackdiag.analyzers.loss_spikes.RollingSpikeDetector`),
then runs the EMA-divergence and plateau tests on the accepted points and keeps per-sample statistics
(:class:`~trackdiag.analyzers.loss_samples.SampleStats`). Its state is plain Python data. ``docs/loss.md``
explains every test; :class:`~trackdiag.analyzers.loss.LossAnalyzer` (in the loop) and
:func:`~trackdiag.analyzers.loss_series.detect_series` (offline) feed it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional.loss_buckets import (
    batch_offset,
    bucket_profile,
    bucket_shares,
    guess_t_max,
    learn_offsets,
    normalize_batch,
    timestep_buckets,
)
from ..functional.loss_level import linear_improvement
from .loss_events import EVENT_KINDS, LossEvent, StepReport
from .loss_params import LossParams
from .loss_ring import PointRing
from .loss_samples import SampleStats, ids_by_excess
from .loss_spikes import COLD_CHECK, RollingSpikeDetector

__all__ = ["LossDetector"]


class LossDetector:
    """Streaming loss diagnostics on the CPU: one :meth:`update` per training step.

    ``update(step, loss, timesteps=None, sample_ids=None)``: ``loss`` is a scalar or per-sample ``(B,)``;
    ``timesteps`` ``(B,)`` (or one per step); ``sample_ids`` B ids. Returns a :class:`StepReport` with the
    step's events. A non-finite loss gives a ``nonfinite`` event and leaves the detectors untouched.
    """

    def __init__(self, params: Optional[LossParams] = None) -> None:
        self.p = params if params is not None else LossParams()
        p = self.p
        self.spikes = RollingSpikeDetector(window=p.window, sigma=p.spike_sigma, robust=p.robust,
                                           detrend=p.detrend, min_history=p.min_history,
                                           max_run=p.spike_max_run)
        self.samples = SampleStats(p.max_tracked_samples, p.suspect_min_spikes, p.suspect_min_share)
        self.t_max = float(p.timestep_max) if p.timestep_max > 0 else 0.0
        k = p.timestep_buckets
        self.offsets = np.zeros(k, dtype=np.float64)
        self.bucket_counts = np.zeros(k, dtype=np.float64)
        self.warm_ref = math.nan    # fast EMA of the transformed loss: the bucket reference while warming up
        self.n_steps = 0            # steps seen (finite or not)
        self.n_finite = 0
        self.n_accepted = 0         # points accepted into the normalised series
        self.n_nonfinite = 0
        self.n_nonpositive = 0
        self.n_spikes = 0
        self.max_spike_z = 0.0  # the largest spike so far (σ of the local level; 0 before the first)
        self.n_events = {kind: 0 for kind in EVENT_KINDS}
        self.ema_raw = 0.0          # EMA of the raw loss (bias-corrected on read)
        self.ema_raw_w = 0.0
        self.slow = math.nan        # EMAs of the normalised series
        self.fast = math.nan
        self.gap_run = 0
        self.above: deque[int] = deque(maxlen=p.divergence_window)
        self.diverging = False
        self.n_above = 0
        self.plateau_ring = PointRing(p.plateau_patience)
        self.flat_run = 0
        self.in_plateau = False
        self.smooth: deque[float] = deque(maxlen=p.smooth_window)
        self.hist: deque[tuple[float, ...]] = deque(maxlen=p.history)
        self.last_step: Optional[int] = None

    # -- helpers ----------------------------------------------------------------------------------
    def _tx(self, v: np.ndarray) -> np.ndarray:
        return np.log(v) if self.p.transform == "log" else v

    def _batch_offset(self, shares: np.ndarray) -> float:
        return batch_offset(shares, self.offsets, log=self.p.transform == "log")

    def _inv(self, v: float) -> float:
        return math.exp(v) if self.p.transform == "log" else v

    def _rescale(self, level: float, n: float, batch_loss: float) -> float:
        """A normalised level in loss units for this step's batch (same timestep mix as ``batch_loss``)."""
        if self.p.transform == "log":
            return batch_loss * math.exp(level - n)
        return batch_loss + level - n

    # -- the update ---------------------------------------------------------------------------------
    def update(self, step: int, loss: Any, timesteps: Any = None,
               sample_ids: Optional[Sequence[str]] = None) -> StepReport:
        """Feed one step. ``loss``: scalar or ``(B,)``; ``timesteps``: ``(B,)``, one value, or None."""
        p = self.p
        values = np.asarray(loss, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ShapeError("loss is empty; pass a scalar or a (B,) tensor of per-sample losses.")
        ts = None if timesteps is None else np.asarray(timesteps, dtype=np.float64).reshape(-1)
        if ts is not None and ts.size == 0:
            ts = None
        if ts is not None and values.size > 1 and ts.size != values.size:
            raise ShapeError(f"timesteps must match the per-sample losses: expected ({values.size},); "
                             f"got ({ts.size},).")
        ids = [str(s) for s in sample_ids] if sample_ids is not None and len(sample_ids) else None
        step = int(step)
        self.n_steps += 1
        self.last_step = step
        finite = np.isfinite(values)
        if not finite.all():
            return self._nonfinite(step, values, finite, ids)
        batch_loss = float(values.sum()) / values.size
        report = StepReport(step=step, value=batch_loss)
        if p.transform == "log" and (values <= 0).any():
            self.n_nonpositive += 1
            report.ema, report.smoothed = self.ema_value, self.smoothed_value
            return report
        self.n_finite += 1
        self.ema_raw = p.ema_decay * self.ema_raw + (1.0 - p.ema_decay) * batch_loss
        self.ema_raw_w = p.ema_decay * self.ema_raw_w + (1.0 - p.ema_decay)
        self.smooth.append(batch_loss)
        report.ema, report.smoothed = self.ema_value, self.smoothed_value

        buckets = shares = None
        if ts is not None and np.isfinite(ts).all():
            if self.t_max <= 0:
                self.t_max = guess_t_max(ts)
            buckets = timestep_buckets(ts, buckets=p.timestep_buckets, t_max=self.t_max)
            shares = bucket_shares(buckets, buckets=p.timestep_buckets)
        by_sample = values.size > 1 and buckets is not None
        x = self._tx(values)
        n, per = normalize_batch(x, self.offsets, buckets, shares, by_sample=by_sample,
                                 log=p.transform == "log")
        report.normalized = n
        if buckets is not None and shares is not None:  # both or neither
            cold = bool((self.bucket_counts[shares > 0] < p.min_bucket_count).any())
        else:
            # once the detector normalises per timestep, a step without timesteps cannot be tested fairly
            cold = bool(self.bucket_counts.any())
        check = COLD_CHECK if cold else self.spikes.check(n, step)
        spike = check.spike
        excess = per - check.expected if check.warm else np.full(per.shape, math.nan)
        if check.warm:
            report.z = check.z
            report.expected = self._inv(check.expected + (self._batch_offset(shares) if shares is not None
                                                          else 0.0))
        if spike:
            self.n_spikes += 1
            self.max_spike_z = max(self.max_spike_z, float(check.z))
            self.n_events["spike"] += 1
            report.spike = True
            report.events.append(LossEvent(
                step, "spike", batch_loss, report.expected, check.z,
                ids_by_excess(ids, excess, p.event_max_samples, p.spike_sigma * check.scale),
                f"{check.z:.1f} sigma above the local level"))
        if ids is not None:
            exc_ids = excess if excess.size == len(ids) else np.full(len(ids), float(excess.mean()))
            loss_ids = values if values.size == len(ids) else np.full(len(ids), batch_loss)
            self.samples.update(ids, loss_ids, exc_ids, spike)

        xm = float(x.sum()) / x.size
        if not spike:
            if buckets is not None and shares is not None:  # both or neither
                ref = check.expected if check.warm else (
                    self.warm_ref if math.isfinite(self.warm_ref) else xm)
                self.offsets, self.bucket_counts = learn_offsets(
                    self.offsets, self.bucket_counts, x, buckets, shares, ref, by_sample=by_sample,
                    rate=p.bucket_rate, log=p.transform == "log")
            self.warm_ref = xm if not math.isfinite(self.warm_ref) else (
                p.fast_decay * self.warm_ref + (1 - p.fast_decay) * xm)
        if not cold:
            accepted = self.spikes.commit(n, step, spike)
            if not spike:
                self._trend_update([(float(step), n)], report, batch_loss, n, check.scale)
            elif accepted:
                self._trend_update(accepted, report, batch_loss, n, math.nan)
        report.diverging, report.plateau = self.diverging, self.in_plateau
        self._record_hist(report)
        return report

    def _nonfinite(self, step: int, values: np.ndarray, finite: np.ndarray, ids: Optional[list[str]]
                   ) -> StepReport:
        p = self.p
        self.n_nonfinite += 1
        self.n_events["nonfinite"] += 1
        if ids is not None and len(ids) == values.size:
            bad = [ids[i] for i in np.flatnonzero(~finite)]
        else:
            bad = ids or []
        value = float(values[~finite][0])
        report = StepReport(step=step, value=value, ema=self.ema_value, smoothed=self.smoothed_value,
                            diverging=self.diverging, plateau=self.in_plateau)
        report.events.append(LossEvent(step, "nonfinite", value, math.nan, math.nan,
                                       ";".join(bad[:p.event_max_samples]),
                                       f"{int((~finite).sum())} of {values.size} loss values are NaN/Inf"))
        self._record_hist(report)
        return report

    def _trend_update(self, points: Sequence[tuple[float, float]], report: StepReport, batch_loss: float,
                      n_now: float, scale: float) -> None:
        """EMAs of the accepted normalised points, then the divergence and plateau tests."""
        p = self.p
        for pos, n in points:
            self.n_accepted += 1
            if not math.isfinite(self.slow):
                self.slow = self.fast = n
            else:
                self.slow = p.ema_decay * self.slow + (1 - p.ema_decay) * n
                self.fast = p.fast_decay * self.fast + (1 - p.fast_decay) * n
            if len(self.above) == self.above.maxlen:
                self.n_above -= self.above[0]
            flag = 1 if n > self.slow else 0
            self.above.append(flag)
            self.n_above += flag
            self.plateau_ring.append(pos, n)
        step = report.step
        if not math.isfinite(scale):
            lv = self.spikes.level(step)
            scale = lv.scale if lv is not None else math.nan
        if not math.isfinite(scale) or self.n_accepted < max(p.min_history, round(1.0 / (1.0 - p.ema_decay))):
            return
        # EMA divergence: a growing gap, or a drift that keeps one sign
        gap = self.fast - self.slow
        self.gap_run = self.gap_run + 1 if gap > p.divergence_sigma * scale else 0
        frac = self.n_above / len(self.above)
        by_gap = self.gap_run >= p.divergence_patience
        by_sign = len(self.above) == p.divergence_window and frac >= p.divergence_fraction
        if (by_gap or by_sign) and not self.diverging:
            self.diverging = True
            self.n_events["ema_divergence"] += 1
            why = (f"fast EMA {gap / scale:.1f} sigma above the slow EMA for {self.gap_run} steps" if by_gap
                   else f"{frac:.0%} of the last {len(self.above)} steps above the EMA")
            report.events.append(LossEvent(step, "ema_divergence", batch_loss,
                                           self._rescale(self.slow, n_now, batch_loss), gap / scale, "", why))
        elif self.diverging and gap <= 0 and frac <= 0.5:
            self.diverging = False
        # plateau: the fitted improvement over the last `plateau_patience` points stays below the minimum
        # (checked every plateau_patience // 50 accepted points; flat_run counts points)
        every = max(1, p.plateau_patience // 50)
        if self.plateau_ring.count < p.plateau_patience or self.n_accepted % every:
            return
        improvement, se = linear_improvement(*self.plateau_ring.view())
        if improvement < p.plateau_min_improvement + se and not self.diverging:
            # not clearly (one standard error) better than the minimum improvement
            self.flat_run += every
        elif improvement - 2.0 * se > p.plateau_min_improvement or self.diverging:
            # a significant improvement (or a divergence) ends the plateau and restarts the count
            self.flat_run = 0
            self.in_plateau = False
        if self.flat_run >= max(1, p.plateau_patience // 4) and not self.in_plateau:
            self.in_plateau = True
            self.n_events["plateau"] += 1
            start, first = self.plateau_ring.oldest()
            report.events.append(LossEvent(
                step, "plateau", batch_loss, self._rescale(first, n_now, batch_loss),
                math.nan, "", f"improvement {improvement:+.3f} ± {se:.3f} "
                f"(minimum {p.plateau_min_improvement:g}) over steps {int(start)}..{step}"))

    def _record_hist(self, report: StepReport) -> None:
        self.hist.append((report.step, report.value, report.ema, report.smoothed, report.expected,
                          1.0 if report.spike else 0.0))

    # -- read-outs ----------------------------------------------------------------------------------
    @property
    def ema_value(self) -> float:
        return self.ema_raw / self.ema_raw_w if self.ema_raw_w > 0 else math.nan

    @property
    def smoothed_value(self) -> float:
        if not self.smooth:
            return math.nan
        vals = sorted(self.smooth)
        mid = len(vals) // 2
        return vals[mid] if len(vals) % 2 else 0.5 * (vals[mid - 1] + vals[mid])

    def bucket_profile(self) -> np.ndarray:
        """Relative loss level per timestep bucket, ``(timestep_buckets,)``: a factor (log transform,
        geometric mean 1 over the visited buckets) or an offset (linear); NaN for buckets never seen."""
        return bucket_profile(self.offsets, self.bucket_counts, log=self.p.transform == "log")

    def history_array(self) -> np.ndarray:
        """Recent history, ``6×N``: step, loss, ema, smoothed, expected, spike flag."""
        if not self.hist:
            return np.zeros((6, 0))
        return np.asarray(self.hist, dtype=np.float64).T

    def metrics(self) -> dict[str, float]:
        """Cumulative metrics (counts and rates)."""
        return {"n_spikes": float(self.n_spikes), "spike_rate": self.n_spikes / max(self.n_finite, 1),
                "nonfinite_count": float(self.n_nonfinite), "nonpositive_count": float(self.n_nonpositive),
                "plateau_count": float(self.n_events["plateau"]),
                "ema_divergence_count": float(self.n_events["ema_divergence"]),
                "max_spike_z": self.max_spike_z,
                "suspect_samples": float(len(self.samples.suspects))}

    # -- state --------------------------------------------------------------------------------------
    _INTS = ("n_steps", "n_finite", "n_accepted", "n_nonfinite", "n_nonpositive", "n_spikes", "gap_run",
             "flat_run")
    _FLOATS = ("ema_raw", "ema_raw_w", "slow", "fast", "warm_ref", "t_max", "max_spike_z")
    _BOOLS = ("diverging", "in_plateau")

    def state_dict(self) -> dict[str, Any]:
        """Plain Python state (lists, floats, str): safe for ``torch.load(weights_only=True)``."""
        state: dict[str, Any] = {"version": 1, "spikes": self.spikes.state_dict(),
                                 "samples": self.samples.state_dict(), "offsets": self.offsets.tolist(),
                                 "bucket_counts": self.bucket_counts.tolist(),
                                 "n_events": dict(self.n_events),
                                 "above": list(self.above), "plateau": self.plateau_ring.state_dict(),
                                 "smooth": list(self.smooth),
                                 "hist": [list(h) for h in self.hist], "last_step": self.last_step}
        for name in self._INTS + self._FLOATS + self._BOOLS:
            state[name] = getattr(self, name)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        k, p = self.p.timestep_buckets, self.p
        offsets = list(state.get("offsets", [0.0] * k))
        if len(offsets) != k:
            raise ConfigError(f"loss state has {len(offsets)} timestep buckets but timestep_buckets={k}; "
                              "resume with the same loss parameters.")
        self.spikes.load_state_dict(state.get("spikes", {}))
        self.samples.load_state_dict(state.get("samples", {}))
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.bucket_counts = np.asarray(state.get("bucket_counts", [0.0] * k), dtype=np.float64)
        self.n_events = {kind: int(state.get("n_events", {}).get(kind, 0)) for kind in EVENT_KINDS}
        for name in self._INTS:
            setattr(self, name, int(state.get(name, 0)))
        for name in self._FLOATS:
            setattr(self, name, float(state.get(name, getattr(self, name))))
        for name in self._BOOLS:
            setattr(self, name, bool(state.get(name, False)))
        self.above = deque((int(v) for v in state.get("above", [])), maxlen=p.divergence_window)
        self.n_above = sum(self.above)
        self.plateau_ring.load_state_dict(state.get("plateau", {}))
        self.smooth = deque((float(v) for v in state.get("smooth", [])), maxlen=p.smooth_window)
        self.hist = deque((tuple(float(x) for x in h) for h in state.get("hist", [])), maxlen=p.history)
        last = state.get("last_step")
        self.last_step = None if last is None else int(last)

