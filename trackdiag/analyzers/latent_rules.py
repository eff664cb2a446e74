"""The latent verdict rules, :func:`latent_rules` on the flat metrics (``<name>/<key>`` → value), registered
as ``"latent"``: the training loop, ``python -m trackdiag.diagnose --latents`` and ``compare_ckpts`` give the
same verdicts. :func:`verdict_flags` turns a batch's verdicts into the analyzer's flags, events and
``verdict/<code>`` metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..verdicts import Verdict, register_rules
from .latent_limits import (
    LATENT_CODES,
    PERIODIC_SHARE_BAD,
    STRIPE_EXCESS_BAD,
    STRIPE_EXCESS_WARN,
    STRIPE_Z_WARN,
)

__all__ = ["latent_rules", "verdict_flags"]


def _names(summary: Mapping[str, Any]) -> list[str]:
    return sorted({k.split("/", 1)[0] for k in summary
                   if k.endswith("/periodic_excess") and k.count("/") == 1})


def latent_rules(summary: Mapping[str, Any]) -> list[Verdict]:
    """Verdicts of the latent analyzer from its flat metrics (``<name>/<key>`` → value), per latent name."""
    out: list[Verdict] = []

    def g(key: str) -> float:
        v = summary.get(key, math.nan)
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    for n in _names(summary):
        nf = g(f"{n}/nonfinite_share")
        if math.isfinite(nf) and nf > 0:
            out.append(Verdict(code="latent_nonfinite", severity="bad", title=f"NaN/Inf in latents[{n!r}]",
                               evidence={"latent": n, "nonfinite_share": nf},
                               fix="fp16 overflow in the VAE encoder or the UNet: run the VAE in fp32/bf16, "
                                   "clip gradients, lower the learning rate."))
        pe = g(f"{n}/periodic_excess")
        if math.isfinite(pe) and pe >= 1.0:
            ch = int(g(f"{n}/periodic_channel"))
            where = "the first principal component of the channels" if ch < 0 else f"channel {ch}"
            share, period = g(f"{n}/periodic_share"), g(f"{n}/period_px")
            kind = summary.get(f"{n}/periodic_kind", "")
            out.append(Verdict(
                code="latent_periodic", severity="bad" if share >= PERIODIC_SHARE_BAD else "warn",
                title=f"Periodic structure in latents[{n!r}]: period {period:.2f} latent px in {where}",
                evidence={"latent": n, "channel": "pc1" if ch < 0 else ch, "period_px": round(period, 3),
                          "kind": kind, "share": round(share, 4), "periodic_excess": round(pe, 3),
                          "periodic_channels": g(f"{n}/periodic_channels")},
                fix="A period in the UNet output that the target does not have is the tiling artifact in "
                    "latent space (a lattice of period p latent px is 8p image px with an SD VAE); check the "
                    "dataset for tiled sources and the tiling section for doubling/halving."))
        se, sz = g(f"{n}/stripe_excess"), g(f"{n}/stripe_z")
        if math.isfinite(se) and math.isfinite(sz) and se >= STRIPE_EXCESS_WARN and sz >= STRIPE_Z_WARN:
            ch = int(g(f"{n}/stripe_channel"))
            axis = "rows (horizontal stripes)" if g(f"{n}/stripe_axis") == 0 else "columns (vertical stripes)"
            out.append(Verdict(
                code="latent_stripes", severity="bad" if se >= STRIPE_EXCESS_BAD else "warn",
                title=f"Stripes in latents[{n!r}]: channel {ch}, {axis}",
                evidence={"latent": n, "channel": ch, "axis": axis.split()[0], "stripe_excess": round(se, 4),
                          "stripe_z": round(sz, 2), "limits": [STRIPE_EXCESS_WARN, STRIPE_Z_WARN]},
                fix="Batch-norm imbalance, periodicity in the latents, or augmentations that create a "
                    "regular pattern. Compare 'in' and 'out': stripes only after the UNet point at the "
                    "model."))
        de = g(f"{n}/drift_excess")
        if math.isfinite(de) and de >= 1.0:
            ch = int(g(f"{n}/drift_channel"))
            stat = "mean" if g(f"{n}/drift_stat") == 0 else "std"
            delta = g(f"{n}/drift_delta")
            what = f"mean shifted by {delta:+.2f} σ" if stat == "mean" else f"spread × {delta:.2f}"
            out.append(Verdict(
                code="latent_drift", severity="warn",
                title=f"Latent distribution drifts in latents[{n!r}]: channel {ch} {what}",
                evidence={"latent": n, "channel": ch, "statistic": stat, "delta": round(delta, 3),
                          "batches_since_change": int(g(f"{n}/drift_lag")), "drift_excess": round(de, 3),
                          "p": g(f"{n}/drift_p")},
                fix="A change of per-channel mean/std between batches: a wrong VAE scaling factor on some "
                    "data, mixed precision, or a data subset with different statistics."))
    return out


register_rules("latent", latent_rules)


def verdict_flags(verdicts: Sequence[Verdict], names: Sequence[str], step: int
                  ) -> tuple[dict[str, str], dict[str, float], list[dict[str, Any]]]:
    """A batch's verdicts as the analyzer reports them: ``<name>/flags`` texts (comma-separated flags, or
    ``none``), the ``verdict/<code>`` metrics (0 none, 1 warn, 2 bad) with ``flag_count``, and one events
    row per verdict."""
    texts: dict[str, str] = {}
    events: list[dict[str, Any]] = []
    for name in names:
        mine = [v for v in verdicts if v.evidence.get("latent") == name]
        flags = [v.code.removeprefix("latent_") for v in mine]
        texts[f"{name}/flags"] = ",".join(flags) if flags else "none"
        for v in mine:
            events.append({"step": step, "latent": name, "kind": v.code.removeprefix("latent_"),
                           "code": v.code, "severity": v.severity,
                           "channel": v.evidence.get("channel", ""), "detail": v.title})
    metrics: dict[str, float] = {}
    for code in LATENT_CODES:
        metrics[f"verdict/{code}"] = max((2.0 if v.severity == "bad" else 1.0 for v in verdicts
                                          if v.code == code), default=0.0)
    metrics["flag_count"] = float(len(verdicts))
    return texts, metrics, events
