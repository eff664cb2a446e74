"""The latent verdicts' stable codes and thresholds (read by :mod:`trackdiag.analyzers.latent_rules`, the
analyzer's stripe choice and the metric specs of :mod:`trackdiag.analyzers.latent_specs`; ``docs/latent.md``
says what they were calibrated on)."""

from __future__ import annotations

__all__ = ["LATENT_FLAGS", "LATENT_CODES", "STRIPE_EXCESS_WARN", "STRIPE_EXCESS_BAD", "STRIPE_Z_WARN",
           "PERIODIC_SHARE_BAD"]

#: Flags a latent batch can raise (the verdict code without ``latent_``).
LATENT_FLAGS = ("nonfinite", "stripes", "periodic", "drift")
LATENT_CODES = tuple(f"latent_{f}" for f in LATENT_FLAGS)

#: Stripes: share of a channel's variance on an axis line beyond its isotropic expectation ...
STRIPE_EXCESS_WARN = 0.025
STRIPE_EXCESS_BAD = 0.10
#: ... and the whitened significance of that excess (about N(0, 1) per image without stripes).
STRIPE_Z_WARN = 12.0
#: A periodic pattern carrying at least this share of a channel's variance is ``bad``.
PERIODIC_SHARE_BAD = 0.10
