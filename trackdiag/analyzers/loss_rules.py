"""The loss verdict rules, :func:`loss_rules` on a flat summary (registered as the ``"loss"`` rules of
:mod:`trackdiag.verdicts`), and :func:`event_evidence`, the events' steps for their evidence."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..verdicts import Verdict, register_rules
from .loss_events import EVENT_KINDS, LossEvent
from .loss_params import LossParams

__all__ = ["VERDICT_CODES", "NOMINAL_FALSE_ALARM", "event_evidence", "loss_rules"]

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
