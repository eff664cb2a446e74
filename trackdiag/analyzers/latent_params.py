"""The latent analyzer's parameters, :class:`LatentParams` (``docs/latent.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.schedule import Schedule
from ..errors import ConfigError
from .base import AnalyzerParams

__all__ = ["LatentParams"]


@dataclass
class LatentParams(AnalyzerParams):
    """Parameters of :class:`LatentAnalyzer` (see ``docs/latent.md``)."""

    schedule: Schedule = field(default_factory=lambda: Schedule(kind="every", every=100))
    #: Render the channel figure every n-th run.
    figures_every: int = 5
    #: Per-channel metrics for at most this many channels (aggregates always use all of them).
    max_channels: int = 16
    #: Periodic peaks: false-alarm probability of one spectral bin (the threshold adapts to the batch size).
    periodic_p_bin: float = 1e-8
    #: Periodic peaks: the pattern repeats at least this many times across the image (shortest period: 2 px).
    periodic_min_cycles: float = 6.0
    #: Also search the first principal component of the channels (a pattern shared by all channels).
    periodic_pc1: bool = True
    #: Drift: nominal false-alarm probability per batch (measured: see docs/latent.md; at B = 4 the 1 %
    #: budget is what finds a 0.5 σ mean shift within 5 batches in >= 90 %).
    drift_false_alarm: float = 0.01
    #: Drift: a change is looked for in the last 1 … drift_max_lag batches.
    drift_max_lag: int = 5
    #: Drift: no decision before this many earlier batches.
    drift_min_history: int = 8
    #: Drift: batches kept as the reference (oldest dropped).
    drift_history: int = 64
    #: Sample-0 channel maps for the figure are downsampled to at most this side.
    figure_side: int = 64

    def __post_init__(self) -> None:
        for name in ("max_channels", "figure_side", "figures_every", "drift_max_lag"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"latent {name} must be >= 1; got {getattr(self, name)}.")
        if self.drift_min_history < 3 or self.drift_history < self.drift_min_history + self.drift_max_lag:
            raise ConfigError("latent drift_min_history must be >= 3 and drift_history >= "
                              f"drift_min_history + drift_max_lag; got {self.drift_min_history}, "
                              f"{self.drift_history}.")
        if not (0 < self.drift_false_alarm < 1 and 0 < self.periodic_p_bin < 1):
            raise ConfigError("latent drift_false_alarm and periodic_p_bin must be in (0, 1).")
        if self.periodic_min_cycles < 1:
            raise ConfigError(f"latent periodic_min_cycles must be >= 1; got {self.periodic_min_cycles}.")
