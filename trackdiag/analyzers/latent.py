"""Latent diagnostics before and after the UNet (seed sections 3.2, 7.1).

For each named latent batch (``{"in": z_t, "out": unet_out}``, each ``B×C×h×w``):

* per-channel mean, std, skew and excess kurtosis, pooled over the batch from per-sample central moments
  (:func:`channel_moments` on the device, :func:`pool_moments` on the CPU, exact under a DDP gather);
* the share of non-finite values (:func:`nonfinite_share`; every other statistic uses the finite values);
* periodic structure (2-D lattices, grids, tiled motifs, from a period of 2 latent px) per channel and on
  the first principal component of the channels: prominent peaks of the whitened spectrum
  (:mod:`trackdiag.functional.latent_periodic`), with the period and the channel named;
* stripes judged against what the channel's own isotropic spectrum explains
  (:func:`~trackdiag.functional.latent_periodic.stripe_excess`), after a degree-2 detrend so that a smooth
  gradient is not a stripe; the raw stripe energy (:func:`stripe_energy`) is still reported;
* drift between batches: a change-point scan of the per-image channel means and log-stds against the
  earlier batches (:mod:`trackdiag.functional.latent_drift`, Student-t, false-alarm rate set per batch);
  :func:`channel_drift` (distance from the previous batches' mean moments) is reported for charts.

The verdict rules (:func:`latent_rules`, registered as ``"latent"``) read only the flat metrics, so the
training loop, ``python -m trackdiag.diagnose --latents`` and ``compare_ckpts`` give the same verdicts.

:class:`LatentAnalyzer` wraps them; ``python -m trackdiag.diagnose --latents DIR`` runs the same analyzer
over saved latent files (see :mod:`trackdiag.report.sections.latent`).

The thin :class:`LatentAnalyzer` around modules with one job each (the public names re-exported here):

* :mod:`trackdiag.functional.latent_moments`, :mod:`~trackdiag.functional.latent_periodic`,
  :mod:`~trackdiag.functional.latent_drift`: the pure math (moments, spectra, drift);
* :mod:`~trackdiag.analyzers.latent_params`: :class:`LatentParams`;
* :mod:`~trackdiag.analyzers.latent_summary`: one batch's flat metrics from the per-sample arrays;
* :mod:`~trackdiag.analyzers.latent_drift_state`: the drift reference kept between batches;
* :mod:`~trackdiag.analyzers.latent_rules`: :func:`latent_rules` (registered as ``"latent"``), with the
  codes and thresholds of :mod:`~trackdiag.analyzers.latent_limits` and the metric specs of
  :mod:`~trackdiag.analyzers.latent_specs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..core.checks import check_image_batch
from ..errors import InputValueError
from ..functional.latent_drift import channel_drift
from ..functional.latent_moments import (
    ChannelStats,
    channel_moments,
    finite_filled,
    nonfinite_share,
    pool_moments,
    stripe_energy,
)
from ..functional.latent_periodic import latent_spectral
from . import latent_specs  # noqa: F401  (registers the latent metrics' specs)
from .base import MAP_PREFIX, Analyzer, Result, StepInputs
from .latent_drift_state import DriftState
from .latent_limits import (
    LATENT_CODES,
    LATENT_FLAGS,
    PERIODIC_SHARE_BAD,
    STRIPE_EXCESS_BAD,
    STRIPE_EXCESS_WARN,
    STRIPE_Z_WARN,
)
from .latent_params import LatentParams
from .latent_rules import latent_rules, verdict_flags
from .latent_summary import drift_metrics, latent_batch

__all__ = [
    "LatentParams", "LatentAnalyzer", "ChannelStats", "channel_moments", "pool_moments", "nonfinite_share",
    "stripe_energy", "channel_drift", "latent_rules", "LATENT_FLAGS", "LATENT_CODES",
    "latent_spectral", "STRIPE_EXCESS_WARN", "STRIPE_EXCESS_BAD", "STRIPE_Z_WARN", "PERIODIC_SHARE_BAD",
]


class LatentAnalyzer(Analyzer[LatentParams]):
    """Latent statistics before/after the UNet, periodicity, stripes and batch-to-batch drift."""

    name = "latent"
    Params = LatentParams
    requires = ("latents",)

    def __init__(self, params: Optional[LatentParams] = None) -> None:
        super().__init__(params if params is not None else LatentParams())
        self.drift: dict[str, DriftState] = {}

    # -- device side ------------------------------------------------------------------------------
    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        if not inputs.latents:
            raise InputValueError("the latent analyzer needs latents={'in': z_t, 'out': unet_out}.")
        p = self.params
        out: dict[str, torch.Tensor] = {}
        for name, x in inputs.latents.items():
            x = check_image_batch(x, name=f"latents[{name!r}]")
            if min(x.shape[-2:]) < 8:
                raise InputValueError(f"latents[{name!r}] is {tuple(x.shape)}; the latent analyzer needs at "
                                      "least 8×8 latent px.")
            key = _safe(name)
            for k, v in channel_moments(x).items():
                out[f"{key}/{k}"] = v
            out[f"{key}/nonfinite"] = nonfinite_share(x)
            out[f"{key}/stripe_rows"], out[f"{key}/stripe_cols"] = stripe_energy(x)
            for k, v in latent_spectral(x, pc1=p.periodic_pc1).items():
                out[f"{key}/{k}"] = v
            side = p.figure_side
            s0 = finite_filled(x[:1])
            if max(s0.shape[-2:]) > side:
                s0 = F.adaptive_avg_pool2d(s0, (min(side, s0.shape[-2]), min(side, s0.shape[-1])))
            out[f"{MAP_PREFIX}{key}"] = s0[0]
        return out

    # -- CPU side -----------------------------------------------------------------------------------
    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Optional[Sequence[str]] = None) -> Result:
        res = Result()
        names = sorted({k.split("/", 1)[0] for k in host if not k.startswith(MAP_PREFIX)})
        m = res.metrics
        for name in names:
            batch = latent_batch(name, host, params=self.params)
            state = self.drift.setdefault(name, DriftState(self.params))
            dist, scan = state.update(batch.per_image, batch.stats.mean, batch.stats.std)
            m.update(batch.metrics)
            res.texts[f"{name}/periodic_kind"] = batch.periodic_kind
            m.update(drift_metrics(name, dist, scan))
            mp = host.get(f"{MAP_PREFIX}{name}")
            if mp is not None:
                res.maps[name] = np.asarray(mp)
                res.maps[f"{name}/channel_stats"] = batch.channel_stats
        verdicts = latent_rules({**m, **res.texts})
        texts, flags, events = verdict_flags(verdicts, names, step)
        res.texts.update(texts)
        m.update(flags)
        if events:
            res.tables["events"] = events
        return res

    def render(self, result: Result) -> dict[str, np.ndarray]:
        from ..plots.latent import channel_montage, channel_stats_figure

        figs: dict[str, np.ndarray] = {}
        for key, value in result.maps.items():
            if "/" in key:
                continue
            figs[f"{key}/channels"] = channel_montage(value, title=f"latents[{key!r}], sample 0")
            stats = result.maps.get(f"{key}/channel_stats")
            if stats is not None:
                figs[f"{key}/channel_stats"] = channel_stats_figure({key: stats})
        return figs

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "drift": {k: v.state_dict() for k, v in self.drift.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.drift = {}
        for name, sub in state.get("drift", {}).items():
            st = DriftState(self.params)
            st.load_state_dict(sub)
            self.drift[str(name)] = st


def _safe(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in str(name))
    return out or "latents"
