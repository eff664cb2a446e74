"""Defects inside an intended edit, judged against the edited texture's own local statistics.

A re-textured wall differs from the old wall everywhere, so inside an edit the pixel difference to the
input says nothing; the output is judged against *itself*. What is measured here:

* :func:`sharpness_deficit` (smears, lost detail): the finest scale of the texture's local spectrum — the
  local RMS of the 3×3 high-pass (:func:`~trackdiag.functional.pixel_change.texture_activity`), which on a
  textured output is its grain and its sharp edges. A smeared patch has lost both, so its fine-scale energy
  falls far below even the smoothest parts of the texture. The score is the region's ``quantile`` level of
  that energy (the smoothest faces of the texture, grain included) over the local level: ≈ 1 or below on
  the texture, ≫ 1 on a smear (the grain under a σ = 3 px blur keeps about a tenth of its amplitude).

Row/column bands inside an edit are judged by :func:`~trackdiag.functional.pixel_texture.band_profile` on
the texture's own lattice residual (see :mod:`trackdiag.functional.pixel_judge`).
"""

from __future__ import annotations

import torch

from .pixel_change import QUANT_FLOOR, texture_activity

__all__ = ["sharpness_deficit"]


def sharpness_deficit(signal: torch.Tensor, region: torch.Tensor, *, window: int = 7,
                      quantile: float = 0.1) -> torch.Tensor:
    """``B×H×W``: the region's ``quantile`` of the local fine-scale RMS over the local fine-scale RMS
    (``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool; 0 outside the region and for samples whose region
    has fewer than 64 pixels). Both levels are floored at half an 8-bit step, so an image without grain
    scores ≈ 1, not ∞."""
    act = texture_activity(signal, window=window)
    b = signal.shape[0]
    out = torch.zeros_like(signal)
    ok = region & torch.isfinite(act)
    for i in range(b):
        if int(ok[i].sum()) < 64:
            continue
        ref = torch.quantile(act[i][ok[i]].float(), float(quantile)).clamp_min(QUANT_FLOOR)
        out[i] = torch.where(ok[i], ref / act[i].clamp_min(QUANT_FLOOR / 2), torch.zeros_like(act[i]))
    return out
