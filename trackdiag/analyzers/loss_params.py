"""The loss analyzer's parameters, :class:`LossParams` (every default with its meaning; ``docs/loss.md``
says how each one was chosen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.schedule import Schedule
from ..errors import ConfigError
from .base import AnalyzerParams

__all__ = ["LossParams"]


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
