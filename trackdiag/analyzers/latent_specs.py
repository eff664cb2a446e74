"""Every latent metric's goal, unit, doc and warn/bad limits, registered as ``"latent"``."""

from __future__ import annotations

from ..metricspec import MetricSpec, register_metrics
from .latent_limits import PERIODIC_SHARE_BAD, STRIPE_EXCESS_BAD, STRIPE_EXCESS_WARN, STRIPE_Z_WARN

register_metrics("latent", [
    MetricSpec("stripe_excess", goal="min", unit="share",
               doc="stripe share of the most striped channel beyond what its isotropic spectrum explains",
               warn=STRIPE_EXCESS_WARN, bad=STRIPE_EXCESS_BAD),
    MetricSpec("stripe_z", goal="min", unit="z", doc="whitened significance of that stripe excess",
               warn=STRIPE_Z_WARN),
    MetricSpec("periodic_excess", goal="min", unit="ratio",
               doc="strongest whitened spectral peak over the threshold for this batch size (>= 1: periodic)",
               warn=1.0),
    MetricSpec("periodic_share", goal="min", unit="share", doc="variance share of the periodic peaks",
               bad=PERIODIC_SHARE_BAD),
    MetricSpec("period_px", goal="none", unit="px", doc="period of the periodic pattern (latent px)"),
    MetricSpec("drift_excess", goal="min", unit="ratio",
               doc="-log10 p of the drift scan over -log10 of its per-batch limit (>= 1: drift)", warn=1.0),
    MetricSpec("drift_delta", goal="none", unit="σ or ×",
               doc="size of the change: mean shift in pixel σ, or std factor"),
    MetricSpec("drift", goal="min", unit="σ",
               doc="distance of the batch's (mean, std) from the earlier ones"),
    MetricSpec("nonfinite_share", goal="min", unit="share", doc="share of NaN/Inf values", warn=1e-12,
               bad=1e-3),
    MetricSpec("std_mean", goal="none", unit="", doc="mean of the per-channel std"),
])
