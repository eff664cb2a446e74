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
in the training loop and by :func:`detect_series` offline (logs). Its state is plain Python data
(:meth:`LossDetector.state_dict`), so detection survives a resume and the state loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from ..core.schedule import Schedule
from ..errors import ConfigError, InputValueError, ShapeError
from ..verdicts import Verdict, register_rules
from .base import Analyzer, AnalyzerParams, Result, StepInputs

__all__ = [
    "EVENT_KINDS", "EVENT_COLUMNS", "LossParams", "LossEvent", "StepReport", "SpikeCheck", "LocalLevel",
    "local_level", "t_to_z",
    "timestep_buckets", "bucket_shares", "linear_improvement", "RollingSpikeDetector", "LossDetector",
    "SeriesDetection",
    "detect_series", "LossAnalyzer", "event_evidence", "loss_rules", "VERDICT_CODES",
]

EVENT_KINDS = ("spike", "plateau", "ema_divergence", "nonfinite")
EVENT_COLUMNS = ("step", "kind", "value", "expected", "z", "samples", "detail")


# ------------------------------------------------------------------------------------------------------
# Parameters and records
# ------------------------------------------------------------------------------------------------------
@dataclass
class LossParams(AnalyzerParams):
    """Parameters of the loss detectors (see ``docs/loss.md`` for how each one was chosen)."""

    #: Every step: the detectors need every point of the curve.
    schedule: Schedule = field(default_factory=lambda: Schedule(kind="every", every=1))
    #: Attach the recent history (for the loss figure) and the sample table every n-th step.
    figures_every: int = 500
    #: A spike is more than ``spike_sigma`` σ above the local level (one-sided: dips are not spikes).
    spike_sigma: float = 3.0
    #: Median/MAD (and a two-halves median slope) instead of mean/std (and OLS) for the local level.
    robust: bool = False
    #: Fit a local linear trend over the window (the expected value follows the training trend).
    detrend: bool = True
    #: Accepted points in the rolling window of the spike detector.
    window: int = 100
    #: Accepted points needed before anything is flagged.
    min_history: int = 20
    #: After this many consecutive spike steps the new level is accepted (a level shift, not a spike).
    spike_max_run: int = 5
    #: ``log`` (losses > 0, multiplicative noise) or ``linear`` (losses that can be <= 0).
    transform: str = "log"
    #: Decay of ``ema_loss`` and of the slow EMA of the normalised loss.
    ema_decay: float = 0.99
    #: Decay of the fast EMA used by the divergence test.
    fast_decay: float = 0.9
    #: Rolling median length of ``smoothed_loss``.
    smooth_window: int = 25
    #: Gap test: fast EMA − slow EMA above ``divergence_sigma`` σ for ``divergence_patience`` steps.
    divergence_sigma: float = 1.5
    divergence_patience: int = 10
    #: Sign test: share of the last ``divergence_window`` steps above the slow EMA.
    divergence_window: int = 50
    divergence_fraction: float = 0.8
    #: Plateau: the linear fit over the last ``plateau_patience`` accepted steps improves the loss by less
    #: than ``plateau_min_improvement`` (relative, log units) plus one standard error of the fit, on
    #: ``plateau_patience // 4`` steps before a significant improvement (fit minus 2 standard errors above
    #: the minimum) resets the count.
    plateau_patience: int = 400
    plateau_min_improvement: float = 0.02
    #: Timestep buckets for the per-bucket normalisation.
    timestep_buckets: int = 10
    #: Largest timestep; 0 = guess from the first timesteps (<= 1 → 1.0, else 1000).
    timestep_max: float = 0.0
    #: Learning rate of the bucket offsets once a bucket has ``1 / bucket_rate`` observations.
    bucket_rate: float = 0.02
    #: Observations a bucket needs before batches that touch it are tested.
    min_bucket_count: int = 3
    #: Sample ids kept for per-sample statistics (new ids beyond this are counted, not tracked).
    max_tracked_samples: int = 100_000
    #: Sample ids listed per event (largest excess first).
    event_max_samples: int = 8
    #: A sample is a suspect when it is in at least this many spikes ...
    suspect_min_spikes: int = 2
    #: ... and at least this share of the batches it was in spiked.
    suspect_min_share: float = 0.25
    #: Rows of the suspect-sample table.
    max_sample_rows: int = 50
    #: Points of recent history kept for the in-loop figure.
    history: int = 2000

    def __post_init__(self) -> None:
        if self.transform not in ("log", "linear"):
            raise ConfigError(f"loss transform must be 'log' or 'linear'; got {self.transform!r}.")
        for name in ("window", "min_history", "spike_max_run", "smooth_window", "divergence_patience",
                     "divergence_window", "plateau_patience", "timestep_buckets", "history", "figures_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"loss {name} must be >= 1; got {getattr(self, name)}.")
        if self.min_history < 3:
            raise ConfigError(f"loss min_history must be >= 3; got {self.min_history}.")
        for name in ("ema_decay", "fast_decay"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                raise ConfigError(f"loss {name} must be in (0, 1); got {getattr(self, name)}.")
        if not 0.0 < self.bucket_rate <= 1.0:
            raise ConfigError(f"loss bucket_rate must be in (0, 1]; got {self.bucket_rate}.")
        if self.spike_sigma <= 0:
            raise ConfigError(f"loss spike_sigma must be > 0; got {self.spike_sigma}.")


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
    """What :meth:`LossDetector.update` found at one step (NaN: not measurable yet)."""

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


# ------------------------------------------------------------------------------------------------------
# Pure functions
# ------------------------------------------------------------------------------------------------------
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class LocalLevel:
    """Expected value at one position, the σ of a new point around it, and the degrees of freedom of σ."""

    expected: float
    scale: float
    dof: int


def local_level(pos: np.ndarray, x: np.ndarray, at: float, *, robust: bool = False, detrend: bool = True
                ) -> LocalLevel:
    """Expected value at ``at`` of a window of points ``(pos[i], x[i])`` (shapes ``(N,)``, any order).

    ``detrend``: a local linear trend (OLS, or the two-halves median slope when ``robust``) extrapolated to
    ``at`` (at most half the window's span beyond its last point); else the mean (median). ``scale`` is the
    σ of a *new* point around that expectation: the residual σ (``1.4826 · MAD`` when ``robust``) times the
    prediction-interval factor ``sqrt(1 + 1/N + (at - mean(pos))² / Sxx)``. Needs ``N >= 3``.

    >>> lv = local_level(np.arange(10.0), 2.0 * np.arange(10.0), 10.0)
    >>> round(lv.expected, 6), round(lv.scale, 6), lv.dof
    (20.0, 0.0, 8)
    """
    pos = np.asarray(pos, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n < 3:
        raise InputValueError(f"local_level needs at least 3 points; got {n}.")
    lo, hi = float(pos.min()), float(pos.max())
    span = hi - lo
    trend = detrend and span > 0
    pm = float(pos.sum()) / n
    pc = pos - pm
    slope = 0.0
    if trend:
        at = min(float(at), hi + 0.5 * span)
        if robust:
            split = float(np.median(pos))
            first, second = pos <= split, pos > split
            if first.any() and second.any():
                dp = float(np.median(pos[second]) - np.median(pos[first]))
                slope = float(np.median(x[second]) - np.median(x[first])) / dp if dp > 0 else 0.0
        else:
            sxx0 = float(pc @ pc)
            slope = float(pc @ x) / sxx0 if sxx0 > 0 else 0.0
    resid = x - slope * pc
    if robust:
        base = float(np.median(resid))
        scale = _MAD_TO_SIGMA * float(np.median(np.abs(resid - base)))
    else:
        base = float(resid.sum()) / n
        d = resid - base
        scale = math.sqrt(float(d @ d) / max(1, n - (2 if trend else 1)))
    factor = 1.0 + 1.0 / n
    if trend:
        sxx = float(pc @ pc)
        factor += (float(at) - pm) ** 2 / sxx if sxx > 0 else 0.0
    expected = base + slope * (float(at) - pm)
    return LocalLevel(expected, scale * math.sqrt(factor), max(1, n - (2 if trend else 1)))


def t_to_z(t: float, dof: int) -> float:
    """The standard-normal score with the same upper-tail probability as Student's ``t`` with ``dof``.

    >>> round(t_to_z(3.0, 10 ** 6), 3)
    3.0
    >>> t_to_z(3.0, 10) < 3.0
    True
    """
    from scipy.special import ndtri, stdtr  # imported once, then cached by Python

    if not math.isfinite(t):
        return t
    if t >= 0:
        return float(-ndtri(stdtr(dof, -t)))
    return float(ndtri(stdtr(dof, t)))


def timestep_buckets(t: np.ndarray, *, buckets: int, t_max: float) -> np.ndarray:
    """Bucket index in ``[0, buckets)`` of each timestep, shape ``(B,)`` → ``(B,)`` int64."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if not np.isfinite(t).all():
        raise InputValueError("timesteps contain NaN or Inf.")
    idx = (t * (buckets / float(t_max))).astype(np.int64)
    return np.minimum(np.maximum(idx, 0), buckets - 1)


def bucket_shares(idx: np.ndarray, *, buckets: int) -> np.ndarray:
    """Share of the batch in each bucket, ``(buckets,)`` float64 summing to 1."""
    counts = np.bincount(np.asarray(idx, dtype=np.int64), minlength=buckets).astype(np.float64)
    return counts / max(1.0, float(counts.sum()))


def _guess_t_max(t: np.ndarray) -> float:
    hi = float(np.max(t)) if t.size else 1.0
    if hi <= 1.0:
        return 1.0
    return float(max(1000.0, 1000.0 * math.ceil(hi / 1000.0)))


class _Ring:
    """Fixed-capacity ring of ``(pos, x)`` pairs in numpy arrays (content order is not chronological)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.pos = np.zeros(self.capacity)
        self.x = np.zeros(self.capacity)
        self.head = 0
        self.count = 0

    def append(self, pos: float, x: float) -> None:
        self.pos[self.head] = pos
        self.x[self.head] = x
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def clear(self) -> None:
        self.head = self.count = 0

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pos[:self.count], self.x[:self.count]

    def oldest(self) -> tuple[float, float]:
        i = self.head if self.count == self.capacity else 0
        return float(self.pos[i]), float(self.x[i])

    def state_dict(self) -> dict[str, Any]:
        return {"pos": self.pos[:self.count].tolist(), "x": self.x[:self.count].tolist(), "head": self.head}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pos, x = list(state.get("pos", [])), list(state.get("x", []))
        if len(pos) != len(x) or len(pos) > self.capacity:
            raise ConfigError(f"rolling window state holds {len(pos)} points but the window is "
                              f"{self.capacity}; resume with the same parameters.")
        self.clear()
        self.count = len(pos)
        self.pos[:self.count] = pos
        self.x[:self.count] = x
        self.head = int(state.get("head", self.count % self.capacity)) % self.capacity


# ------------------------------------------------------------------------------------------------------
# Rolling spike detector (shared with the latent drift detector)
# ------------------------------------------------------------------------------------------------------
@dataclass
class SpikeCheck:
    """Outcome of one :meth:`RollingSpikeDetector.check` (``warm`` False: not enough history).

    ``z`` is the normal-equivalent score of the point against the local level (see :func:`t_to_z`).
    """

    z: float
    expected: float
    scale: float
    spike: bool
    warm: bool


_COLD = SpikeCheck(math.nan, math.nan, math.nan, False, False)


class RollingSpikeDetector:
    """Upward outliers of a scalar series against a rolling local level.

    ``check(x, pos)`` compares ``x`` with :func:`local_level` of the last ``window`` accepted points; the
    t-score is mapped to a normal-equivalent ``z`` (:func:`t_to_z`) so that ``sigma = 3`` keeps the
    Gaussian false-alarm rate (0.135 % of the points) whatever the window length.
    ``commit`` accepts a normal point into the window and holds spikes out of it, so that a spike does not
    inflate σ. After ``max_run`` consecutive spikes the run is taken as a new level: the window restarts
    from the run's points (and :meth:`commit` returns them).
    """

    def __init__(self, *, window: int = 100, sigma: float = 3.0, robust: bool = False, detrend: bool = True,
                 min_history: int = 20, max_run: int = 5, min_scale: float = 1e-3) -> None:
        self.window, self.sigma = int(window), float(sigma)
        self.robust, self.detrend = bool(robust), bool(detrend)
        self.min_history, self.max_run = max(3, int(min_history)), int(max_run)
        self.min_scale = float(min_scale)
        self._ring = _Ring(self.window)
        self._run: list[tuple[float, float]] = []

    @property
    def count(self) -> int:
        return self._ring.count

    def level(self, at: float) -> Optional[LocalLevel]:
        """The local level at ``at`` from the current window; None while the window is too short."""
        if self._ring.count < self.min_history:
            return None
        pos, x = self._ring.view()
        lv = local_level(pos, x, at, robust=self.robust, detrend=self.detrend)
        return LocalLevel(lv.expected, max(lv.scale, self.min_scale), lv.dof)

    def recent_level(self, at: float) -> Optional[LocalLevel]:
        """The local level at ``at`` from the newest half of the window (at least ``min_history`` points);
        None while the window is too short or when it is the whole window anyway."""
        n = self._ring.count
        k = max(self.min_history, n // 2)
        if n < self.min_history or k >= n or not self.detrend:
            return None
        pos, x = self._ring.view()
        newest = np.argsort(pos, kind="stable")[-k:]
        lv = local_level(pos[newest], x[newest], at, robust=self.robust, detrend=True)
        return LocalLevel(lv.expected, max(lv.scale, self.min_scale), lv.dof)

    def check(self, x: float, pos: float) -> SpikeCheck:
        """A spike must stand out against the trend of the whole window AND against the trend of its newest
        half: a curve whose descent slows down (every converging loss) sits above the straight line
        extrapolated from its steeper past, but not above its own recent trend. When the newest half's
        extrapolation lies above the whole window's by more than one σ of a new point (a bend, not noise),
        it is the expected value; σ stays the whole window's (more points, a steadier estimate)."""
        lv = self.level(pos)
        if lv is None:
            return _COLD
        near = self.recent_level(pos)
        if near is not None and near.expected > lv.expected:
            lv = LocalLevel(near.expected, lv.scale, lv.dof)
        z = t_to_z((float(x) - lv.expected) / lv.scale, lv.dof)
        return SpikeCheck(z, lv.expected, lv.scale, z > self.sigma, True)

    def commit(self, x: float, pos: float, spike: bool) -> list[tuple[float, float]]:
        """Record the point. Returns the points of a spike run accepted as a new level (else ``[]``)."""
        if not spike:
            self._run.clear()
            self._ring.append(float(pos), float(x))
            return []
        self._run.append((float(pos), float(x)))
        if len(self._run) < self.max_run:
            return []
        accepted, self._run = self._run, []
        self._ring.clear()
        for p, v in accepted:
            self._ring.append(p, v)
        return accepted

    def observe(self, x: float, pos: float) -> SpikeCheck:
        """:meth:`check` then :meth:`commit`."""
        res = self.check(x, pos)
        self.commit(x, pos, res.spike)
        return res

    def state_dict(self) -> dict[str, Any]:
        return {"ring": self._ring.state_dict(), "run": [list(r) for r in self._run]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._ring.load_state_dict(state.get("ring", {}))
        self._run = [(float(p), float(v)) for p, v in state.get("run", [])]


# ------------------------------------------------------------------------------------------------------
# Per-sample statistics
# ------------------------------------------------------------------------------------------------------
class _SampleStats:
    """Per-sample counters: seen, in spikes, loss sum, excess (log loss / expected) sum and square sum."""

    def __init__(self, max_tracked: int, min_spikes: int, min_share: float) -> None:
        self.max_tracked, self.min_spikes, self.min_share = max_tracked, min_spikes, min_share
        self.stats: dict[str, list[float]] = {}
        self.untracked = 0
        self.suspects: set[str] = set()

    def update(self, ids: Sequence[str], losses: np.ndarray, excess: np.ndarray, spike: bool) -> None:
        for sid, loss, exc in zip(ids, losses, excess, strict=True):
            rec = self.stats.get(sid)
            if rec is None:
                if len(self.stats) >= self.max_tracked:
                    self.untracked += 1
                    continue
                rec = self.stats[sid] = [0.0, 0.0, 0.0, 0.0, 0.0]
            rec[0] += 1
            rec[1] += 1.0 if spike else 0.0
            rec[2] += float(loss)
            if math.isfinite(float(exc)):
                rec[3] += float(exc)
                rec[4] += float(exc) ** 2
            if spike and rec[1] >= self.min_spikes and rec[1] / rec[0] >= self.min_share:
                self.suspects.add(sid)
            elif sid in self.suspects and rec[1] / rec[0] < self.min_share:
                self.suspects.discard(sid)

    def rows(self, limit: int) -> list[dict[str, Any]]:
        """Suspects first (most spikes), then the samples with the largest mean excess."""
        def row(sid: str, r: list[float]) -> dict[str, Any]:
            n = max(r[0], 1.0)
            mean_exc = r[3] / n
            return {"sample_id": sid, "seen": int(r[0]), "in_spikes": int(r[1]), "spike_share": r[1] / n,
                    "mean_loss": r[2] / n, "mean_excess": mean_exc,
                    "std_excess": math.sqrt(max(0.0, r[4] / n - mean_exc ** 2)),
                    "suspect": sid in self.suspects}

        sus = sorted(self.suspects, key=lambda s: (-self.stats[s][1], s))
        rows = [row(s, self.stats[s]) for s in sus[:limit]]
        if len(rows) < limit:
            rest = [s for s in self.stats if s not in self.suspects]
            rest.sort(key=lambda s: -(self.stats[s][3] / max(self.stats[s][0], 1.0)))
            rows += [row(s, self.stats[s]) for s in rest[:limit - len(rows)]]
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {"stats": {k: list(v) for k, v in self.stats.items()}, "untracked": self.untracked,
                "suspects": sorted(self.suspects)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.stats = {str(k): [float(x) for x in v] for k, v in state.get("stats", {}).items()}
        self.untracked = int(state.get("untracked", 0))
        self.suspects = {str(s) for s in state.get("suspects", [])}


# ------------------------------------------------------------------------------------------------------
# The streaming detector
# ------------------------------------------------------------------------------------------------------
def linear_improvement(pos: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Decrease of an OLS line over a window, and its standard error; ``pos``/``x`` shapes ``(N,)``, N >= 3.

    Returns ``(I, se)`` with ``I = -slope · (max(pos) - min(pos))`` (in ``x`` units: a relative improvement
    when ``x`` is a log-loss) and ``se`` the standard error of ``I`` from the fit's residuals. The points
    may come in any order.

    >>> [round(v, 6) for v in linear_improvement(np.arange(5.0), -np.arange(5.0))]
    [4.0, 0.0]
    """
    pos = np.asarray(pos, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        raise InputValueError(f"linear_improvement needs at least 3 points; got {x.size}.")
    pc = pos - float(pos.sum()) / pos.size
    sxx = float(pc @ pc)
    if sxx <= 0:
        return 0.0, math.inf
    xc = x - float(x.sum()) / x.size
    slope = float(pc @ xc) / sxx
    span = float(pos.max() - pos.min())
    resid = xc - slope * pc
    s2 = float(resid @ resid) / max(1, x.size - 2)
    return -slope * span, math.sqrt(s2 / sxx) * span


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
        self.samples = _SampleStats(p.max_tracked_samples, p.suspect_min_spikes, p.suspect_min_share)
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
        self.plateau_ring = _Ring(p.plateau_patience)
        self.flat_run = 0
        self.in_plateau = False
        self.smooth: deque[float] = deque(maxlen=p.smooth_window)
        self.hist: deque[tuple[float, ...]] = deque(maxlen=p.history)
        self.last_step: Optional[int] = None

    # -- helpers ----------------------------------------------------------------------------------
    def _tx(self, v: np.ndarray) -> np.ndarray:
        return np.log(v) if self.p.transform == "log" else v

    def _batch_offset(self, shares: np.ndarray) -> float:
        """Offset of a batch with bucket shares ``s``: ``log Σ s_b e^{o_b}`` (log) or ``Σ s_b o_b``."""
        if self.p.transform == "log":
            return math.log(float(shares @ np.exp(self.offsets)))
        return float(shares @ self.offsets)

    def _normalize(self, x: np.ndarray, buckets: Optional[np.ndarray], by_sample: bool,
                   shares: Optional[np.ndarray]) -> tuple[float, np.ndarray]:
        """Normalised batch value ``n`` and per-sample normalised values (``(B,)``, or ``(1,)``)."""
        if buckets is None:
            per = x
        elif by_sample:
            per = x - self.offsets[buckets]
        else:
            assert shares is not None, "bucket shares come with the buckets"
            per = x - self._batch_offset(shares)
        if per.size == 1:
            return float(per[0]), per
        if self.p.transform == "log":
            m = float(per.max())
            return m + math.log(float(np.mean(np.exp(per - m)))), per
        return float(per.sum()) / per.size, per

    def _learn_buckets(self, x: np.ndarray, buckets: np.ndarray, by_sample: bool, shares: np.ndarray,
                       ref: float) -> None:
        """Move the bucket offsets towards the residuals ``x - ref`` (a running mean at first, then an EMA
        with rate ``bucket_rate``), then centre them over the visited buckets."""
        k = self.p.timestep_buckets
        if by_sample:
            cnt = np.bincount(buckets, minlength=k).astype(np.float64)
            resid_sum = np.bincount(buckets, weights=x - ref - self.offsets[buckets], minlength=k)
            present = cnt > 0
            self.bucket_counts += cnt
            rate = np.maximum(self.p.bucket_rate, cnt / np.maximum(self.bucket_counts, 1.0))
            self.offsets[present] += rate[present] * resid_sum[present] / cnt[present]
        else:
            resid = float(x.sum()) / x.size - ref - self._batch_offset(shares)
            present = shares > 0
            self.bucket_counts += shares
            rate = np.maximum(self.p.bucket_rate, shares / np.maximum(self.bucket_counts, 1e-12))
            self.offsets[present] += rate[present] * resid * shares[present] / float(shares @ shares)
        seen = self.bucket_counts > 0
        self.offsets[seen] -= float(self.offsets[seen].sum()) / int(seen.sum())

    def _inv(self, v: float) -> float:
        return math.exp(v) if self.p.transform == "log" else v

    def _rescale(self, level: float, n: float, batch_loss: float) -> float:
        """A normalised level in loss units for this step's batch (same timestep mix as ``batch_loss``)."""
        if self.p.transform == "log":
            return batch_loss * math.exp(level - n)
        return batch_loss + level - n

    @staticmethod
    def _ids_by_excess(ids: Optional[Sequence[str]], excess: np.ndarray, limit: int, threshold: float) -> str:
        if not ids:
            return ""
        if excess.size != len(ids):
            return ";".join(ids[:limit])
        order = np.argsort(-excess, kind="stable")
        picked = [ids[i] for i in order if excess[i] > threshold] or [ids[i] for i in order]
        return ";".join(picked[:limit])

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
                self.t_max = _guess_t_max(ts)
            buckets = timestep_buckets(ts, buckets=p.timestep_buckets, t_max=self.t_max)
            shares = bucket_shares(buckets, buckets=p.timestep_buckets)
        by_sample = values.size > 1 and buckets is not None
        x = self._tx(values)
        n, per = self._normalize(x, buckets, by_sample, shares)
        report.normalized = n
        if buckets is not None and shares is not None:  # both or neither
            cold = bool((self.bucket_counts[shares > 0] < p.min_bucket_count).any())
        else:
            # once the detector normalises per timestep, a step without timesteps cannot be tested fairly
            cold = bool(self.bucket_counts.any())
        check = _COLD if cold else self.spikes.check(n, step)
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
                self._ids_by_excess(ids, excess, p.event_max_samples, p.spike_sigma * check.scale),
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
                self._learn_buckets(x, buckets, by_sample, shares, ref)
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
        seen = self.bucket_counts > 0
        out = np.full(self.p.timestep_buckets, np.nan)
        out[seen] = np.exp(self.offsets[seen]) if self.p.transform == "log" else self.offsets[seen]
        return out

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


# ------------------------------------------------------------------------------------------------------
# Offline: the same detector over a whole series
# ------------------------------------------------------------------------------------------------------
@dataclass
class SeriesDetection:
    """Per-step arrays ``(N,)`` and the events of :func:`detect_series`."""

    steps: np.ndarray
    loss: np.ndarray
    ema: np.ndarray
    smoothed: np.ndarray
    expected: np.ndarray
    z: np.ndarray
    normalized: np.ndarray
    events: list[LossEvent]
    metrics: dict[str, float]
    bucket_profile: np.ndarray
    sample_rows: list[dict[str, Any]] = field(default_factory=list)

    def event_rows(self) -> list[dict[str, Any]]:
        return [e.row() for e in self.events]


def detect_series(steps: Any, loss: Any, *, timesteps: Any = None, params: Optional[LossParams] = None,
                  sample_ids: Optional[Sequence[Optional[Sequence[str]]]] = None,
                  detector: Optional[LossDetector] = None, progress: bool = False) -> SeriesDetection:
    """Feed a whole loss series through :class:`LossDetector` (the in-loop detector), step by step.

    ``steps``/``loss``: ``(N,)``; ``loss`` may also be ``N×B`` per-sample; ``timesteps``: ``(N,)`` (one per
    step, NaN = unknown) or ``N×B``; ``sample_ids``: N sequences of ids (or None). Steps are processed in
    the given order (sort them first). ``progress``: a tqdm bar.
    """
    det = detector if detector is not None else LossDetector(params)
    steps_arr = np.asarray(steps).reshape(-1)
    loss_arr = np.asarray(loss, dtype=np.float64)
    n = steps_arr.size
    if loss_arr.shape[0] != n:
        raise ShapeError(f"loss must have one entry per step: expected ({n}, ...); got {loss_arr.shape}.")
    t_arr = None if timesteps is None else np.asarray(timesteps, dtype=np.float64)
    if t_arr is not None and t_arr.shape[0] != n:
        raise ShapeError(f"timesteps must have one entry per step: expected ({n}, ...); got {t_arr.shape}.")
    cols = {k: np.full(n, np.nan) for k in ("loss", "ema", "smoothed", "expected", "z", "normalized")}
    events: list[LossEvent] = []
    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, total=n, desc="loss steps", unit="step", leave=False)
    for i in indices:
        t_i = None
        if t_arr is not None:
            t_i = t_arr[i]
            if np.ndim(t_i) == 0 and not math.isfinite(float(t_i)):
                t_i = None
        ids = sample_ids[i] if sample_ids is not None else None
        rep = det.update(int(steps_arr[i]), loss_arr[i], t_i, ids)
        cols["loss"][i], cols["ema"][i], cols["smoothed"][i] = rep.value, rep.ema, rep.smoothed
        cols["expected"][i], cols["z"][i], cols["normalized"][i] = rep.expected, rep.z, rep.normalized
        events.extend(rep.events)
    return SeriesDetection(steps=steps_arr.astype(np.int64), events=events, metrics=det.metrics(),
                           bucket_profile=det.bucket_profile(),
                           sample_rows=det.samples.rows(det.p.max_sample_rows), **cols)


# ------------------------------------------------------------------------------------------------------
# The analyzer
# ------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------
# Verdict rules (registered as the "loss" rules of trackdiag.verdicts)
# ------------------------------------------------------------------------------------------------------
#: The codes :func:`loss_rules` can give.
VERDICT_CODES = ("loss_nonfinite", "loss_divergence", "loss_spike", "loss_plateau")
#: Gaussian one-sided false-alarm rate of a 3 sigma test; spike rates near it are noise.
NOMINAL_FALSE_ALARM = 0.00135


def event_evidence(events: Sequence[LossEvent]) -> dict[str, Any]:
    """The events' details for the rules' evidence: ``<kind>_first_step`` (and ``_detail``) of the first
    event of each kind, ``spike_worst_steps`` (the five largest spikes, comma-separated)."""
    out: dict[str, Any] = {}
    for kind in EVENT_KINDS:
        first = next((e for e in events if e.kind == kind), None)
        if first is not None:
            out[f"{kind}_first_step"] = first.step
            out[f"{kind}_detail"] = first.detail
    spikes = sorted((e for e in events if e.kind == "spike"), key=lambda e: -e.z)[:5]
    if spikes:
        out["spike_worst_steps"] = ", ".join(str(e.step) for e in spikes)
    return out


def _count(summary: Mapping[str, Any], key: str) -> int:
    try:
        v = float(summary.get(key, 0.0))
    except (TypeError, ValueError):
        return 0
    return int(v) if math.isfinite(v) else 0


def _known(evidence: dict[str, Any], summary: Mapping[str, Any], **keys: str) -> dict[str, Any]:
    """``evidence`` plus ``name: summary[key]`` for the keys the summary holds."""
    return {**evidence, **{name: summary[key] for name, key in keys.items() if key in summary}}


def loss_rules(summary: Mapping[str, Any]) -> list[Verdict]:
    """The loss verdicts from a flat summary, most severe first (seed section 7.3).

    Reads the running counts the detector reports (``nonfinite_count``, ``ema_divergence_count``,
    ``n_spikes``, ``spike_rate``, ``max_spike_z``, ``plateau_count``), so the same rules judge a training
    step and a whole log (``trackdiag.diagnose --logdir``); the offline summary adds the events' steps
    (:func:`event_evidence`) and ``spike_sigma``. No anomaly: no verdict.
    """
    out: list[Verdict] = []
    n_bad = _count(summary, "nonfinite_count")
    if n_bad:
        out.append(Verdict(
            code="loss_nonfinite", severity="bad", title="NaN/Inf loss",
            evidence=_known({"nonfinite_count": n_bad}, summary, first_step="nonfinite_first_step"),
            fix="Look at the steps listed in events.csv: fp16 overflow (use bf16 or a GradScaler), a "
                "learning rate that is too high (lower it, clip gradients), or a corrupt sample (log "
                "sample_ids to find it)."))
    n_div = _count(summary, "ema_divergence_count")
    if n_div:
        first = summary.get("ema_divergence_first_step")
        before = f"step {first}" if first is not None else "the divergence"
        out.append(Verdict(
            code="loss_divergence", severity="bad",
            title="Loss diverges from its EMA (the run is becoming unstable)",
            evidence=_known({"ema_divergence_count": n_div}, summary, first_step="ema_divergence_first_step",
                            how="ema_divergence_detail"),
            fix="Lower the learning rate or lengthen the warm-up, clip gradients, and resume from a "
                f"checkpoint before {before}. A break of the EMA after a resume also shows here."))
    n_spikes = _count(summary, "n_spikes")
    if n_spikes:
        rate = float(summary.get("spike_rate", 0.0))
        largest = float(summary.get("max_spike_z", math.nan))
        sigma = float(summary.get("spike_sigma", LossParams.spike_sigma))
        noise_like = (rate <= 2 * NOMINAL_FALSE_ALARM * (3.0 / sigma) ** 2
                      and not largest >= 5.0)
        evidence: dict[str, Any] = {"n_spikes": n_spikes, "spike_rate": round(rate, 5)}
        if math.isfinite(largest):
            evidence["largest_z"] = round(largest, 2)
        out.append(Verdict(
            code="loss_spike", severity="info" if noise_like else ("bad" if rate > 0.01 else "warn"),
            title="Loss spikes" + (" (no more than noise would give)" if noise_like else ""),
            evidence=_known(evidence, summary, worst_steps="spike_worst_steps"),
            fix="A corrupt batch, a learning rate that is too high, or an EMA break. Inspect the batches at "
                "the worst steps (pass sample_ids to trackdiag.log to see which samples recur in spikes); if "
                "spikes are frequent, lower the learning rate or add gradient clipping."))
    n_plateau = _count(summary, "plateau_count")
    if n_plateau:
        out.append(Verdict(
            code="loss_plateau", severity="warn",
            title="Loss plateau (no improvement over the patience window)",
            evidence=_known({"plateau_count": n_plateau}, summary, first_step="plateau_first_step",
                            detail="plateau_detail"),
            fix="Late in training a flat diffusion loss is normal (judge the samples, not the loss). Early "
                "on: check that the LoRA parameters train (requires_grad, optimizer param groups), that the "
                "learning rate is not too small, and that the data loader is not repeating the same "
                "batches."))
    return out


register_rules("loss", loss_rules)
