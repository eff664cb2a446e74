"""Which stage made the artifact: the VAE, the base model or the LoRA — with the numbers.

Per artifact family (grid at each stride, edges, mask seam) each stage's share is:

* **VAE**: what the VAE adds by itself (:meth:`VaeProbe.added`: its score on flat colours, where any structure
  is its own, else its largest excess over the inputs);
* **base**: the pipeline's score at LoRA scale 0 minus the VAE's share (the VAE decodes every pipeline image);
* **LoRA**: the score at full LoRA scale minus the score at scale 0.

When the family's worst number (the full-scale score, or the VAE's share without a pipeline probe) reaches
its warn limit, the stage with the largest share is named: ``probe_vae_grid``, ``probe_base_grid``,
``probe_lora_grid`` (and ``…_edge``, ``…_seam``). The limits are declared in :data:`LIMITS`.
EQ-T adds ``probe_edit_lattice`` when the edit model is much less equivariant to shifts off its lattice than
to shifts by a multiple of it.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..analyzers.tiling_limits import EDGE_BAD, EDGE_WARN, GRID_BAD, GRID_WARN, SEAM_BAD, SEAM_WARN
from ..metricspec import MetricSpec, register_metrics
from ..verdicts import Verdict
from .equivariance import EqResult
from .pipeline import PipelineProbe
from .scores import GRID_STRIDES
from .vae import VaeProbe

__all__ = ["attribute", "LIMITS", "FAMILIES"]

#: family -> (warn, bad) on the family's score: the tiling analyzer's own limits for the same estimators
#: (:mod:`trackdiag.probe.scores`), so a probe and the tiling diagnosis of an image agree.
LIMITS: dict[str, tuple[float, float]] = {"grid": (GRID_WARN, GRID_BAD), "edge": (EDGE_WARN, EDGE_BAD),
                                          "seam": (SEAM_WARN, SEAM_BAD)}
#: family -> the score keys it covers.
FAMILIES: dict[str, tuple[str, ...]] = {
    "grid": tuple(f"grid_s{k}" for k in GRID_STRIDES),
    "edge": ("edge_left", "edge_right", "edge_top", "edge_bottom"),
    "seam": ("mask_seam_score",),
}
#: EQ-T: a gap (dB) between lattice and off-lattice shifts, and an off-lattice level (dB), that call it
#: pinned.
EQ_GAP_DB, EQ_LOW_DB = 10.0, 35.0

register_metrics(
    "probe",
    [
        *(
            MetricSpec(
                k,
                goal="min",
                unit={"grid": "level", "edge": "z", "seam": "share"}[f],
                warn=LIMITS[f][0],
                bad=LIMITS[f][1],
                doc=f"{f} score of the probe images (see trackdiag.probe.scores)",
            )
            for f, ks in FAMILIES.items()
            for k in ks
        ),
        MetricSpec("eq_t_whole_db", goal="max", unit="dB", doc="EQ-T for whole-pixel shifts off the lattice"),
        MetricSpec("eq_t_subpixel_db", goal="max", unit="dB", doc="EQ-T for sub-pixel shifts"),
        MetricSpec(
            "eq_t_lattice_db", goal="max", unit="dB", doc="EQ-T for shifts by a multiple of the lattice"
        ),
    ],
)

_FIX = {
    "vae": "The VAE makes it by itself: use another VAE (or a fine-tuned decoder), decode without tiling, "
    "or post-filter at the VAE's lattice.",
    "base": "The base model makes it without the LoRA: a different base model or sampler; the LoRA is "
    "not to blame.",
    "lora": "The LoRA adds it: fewer steps or a lower LoRA scale, check the training targets for the "
    "pattern, "
    "lower the rank or learning rate, or train on crops at random offsets.",
}


def _r(v: float) -> float:
    """``v`` to 4 significant digits (the scores span 0.001 (grid levels) to 100 (edge z))."""
    return float(f"{v:.4g}")


def _nan(v: float) -> bool:
    return not math.isfinite(v)


def _shares(key: str, vae: Optional[VaeProbe], pipe: Optional[PipelineProbe]) -> dict[str, float]:
    shares: dict[str, float] = {}
    v = vae.added(key) if vae is not None else float("nan")
    if not _nan(v):
        shares["vae"] = v
    if pipe is not None:
        s0, s1 = pipe.at(pipe.base_scale, key), pipe.at(pipe.full_scale, key)
        if not _nan(s0):
            shares["base"] = s0 - max(0.0, shares.get("vae", 0.0))
        if not (_nan(s0) or _nan(s1)):
            shares["lora"] = s1 - s0
    return shares


def attribute(
    *, vae: Optional[VaeProbe] = None, pipeline: Optional[PipelineProbe] = None, eq: Optional[EqResult] = None
) -> list[Verdict]:
    """Verdicts that name the stage behind each artifact family, from whichever probes were run."""
    out: list[Verdict] = []
    for family, keys in FAMILIES.items():
        warn, bad = LIMITS[family]
        best: Optional[tuple[float, str, str, dict[str, float], float]] = None
        for key in keys:
            shares = _shares(key, vae, pipeline)
            if not shares:
                continue
            if pipeline is not None:
                total = pipeline.at(pipeline.full_scale, key)
                total = (
                    max(total, shares.get("vae", float("-inf")))
                    if not _nan(total)
                    else shares.get("vae", total)
                )
            else:
                total = shares.get("vae", float("nan"))
            if _nan(total) or total < warn:
                continue
            stage = max(shares, key=lambda s: shares[s])
            if best is None or shares[stage] > best[0]:
                best = (shares[stage], stage, key, shares, total)
        if best is None:
            continue
        share, stage, key, shares, total = best
        ev: dict[str, Any] = {
            "metric": key,
            "score": _r(total),
            "warn": warn,
            "bad": bad,
            **{f"{s}_share": _r(v) for s, v in shares.items()},
        }
        if pipeline is not None:
            ev["by_scale"] = {str(s): _r(pipeline.at(s, key)) for s in sorted(pipeline.scores)}
            ev["grows_with_scale"] = pipeline.grows_with_scale(key)
            ev["seeds"] = list(pipeline.seeds)
        if vae is not None:
            ev["vae_constant"] = _r(vae.constant.get(key, float("nan")))
            ev.update({f"vae_excess_{n}": _r(e.get(key, float("nan"))) for n, e in vae.excess.items()})
        what = {
            "grid": f"The {key.removeprefix('grid_s')}-px grid",
            "edge": f"The artifact on the {key[5:]} edge",
            "seam": "The seam at the mask border",
        }[family]
        label = {"vae": "the VAE", "base": "the base model", "lora": "the LoRA"}[stage]
        out.append(
            Verdict(
                code=f"probe_{stage}_{family}",
                severity="bad" if share >= bad else "warn",
                title=f"{what} comes from {label} (its share {share:.3g} of {total:.3g})",
                evidence=ev,
                fix=_FIX[stage],
            )
        )
    if eq is not None:
        lat = eq.by_kind.get("lattice", float("nan"))
        off = min((eq.by_kind[k] for k in ("whole", "subpixel") if k in eq.by_kind), default=float("nan"))
        if not math.isnan(lat) and not math.isnan(off) and off < EQ_LOW_DB and lat - off >= EQ_GAP_DB:
            out.append(
                Verdict(
                    code="probe_edit_lattice",
                    severity="bad" if off < EQ_LOW_DB - 10 else "warn",
                    title=f"The edit model pins its output to a {eq.lattice}-px lattice "
                    f"(EQ-T {off:.1f} dB off the lattice, {lat:.1f} dB on it)",
                    evidence={
                        **{k: round(v, 2) for k, v in eq.metrics().items()},
                        "lattice_px": eq.lattice,
                        "gap_limit_db": EQ_GAP_DB,
                        "low_limit_db": EQ_LOW_DB,
                    },
                    fix="Probe its VAE alone (probe_vae) and its LoRA scales; a VAE/patchify lattice is the "
                    "usual cause.",
                )
            )
    return out
