"""Probes that attribute an artifact to a stage: the VAE, the base model or the LoRA.

Run on callables you hand over (contracts in :mod:`trackdiag.probe.types`)::

    from trackdiag import probe
    vae = probe.probe_vae(encode, decode, reference=ref, targets=targets)    # the VAE alone
    pipe = probe.probe_lora_scales(generate, seeds=(0, 1, 2))                # LoRA scale 0, 0.5, 1
    eq = probe.eq_t(edit, images, mask=wall)                                 # EQ-T of an edit model
    for v in probe.attribute(vae=vae, pipeline=pipe, eq=eq):
        print(v.code, v.title, v.evidence)

The scores come from one adapter, :func:`trackdiag.probe.scores.artifact_scores`.
"""

from __future__ import annotations

from .attribute import FAMILIES, LIMITS, attribute
from .equivariance import DEFAULT_SHIFTS, EqResult, eq_t, masked_psnr, translate
from .pipeline import PipelineProbe, probe_lora_scales
from .scores import artifact_scores
from .types import Decode, Edit, Encode, Generate
from .vae import DEFAULT_COLOURS, VaeProbe, probe_vae

__all__ = [
    "probe_vae",
    "VaeProbe",
    "probe_lora_scales",
    "PipelineProbe",
    "eq_t",
    "EqResult",
    "translate",
    "masked_psnr",
    "attribute",
    "artifact_scores",
    "Encode",
    "Decode",
    "Generate",
    "Edit",
    "LIMITS",
    "FAMILIES",
    "DEFAULT_SHIFTS",
    "DEFAULT_COLOURS",
]
