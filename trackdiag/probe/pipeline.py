"""The pipeline at LoRA scale 0, 0.5 and 1 with fixed seeds: the base model against the LoRA."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch

from ..core.checks import check_image_batch
from .scores import artifact_scores
from .types import Generate

__all__ = ["PipelineProbe", "probe_lora_scales"]


@dataclass
class PipelineProbe:
    """Scores of the generated images at each LoRA scale (all seeds together), and the seeds used."""

    scores: dict[float, dict[str, float]]
    seeds: tuple[int, ...]

    def at(self, scale: float, key: str) -> float:
        return self.scores[scale].get(key, float("nan"))

    @property
    def base_scale(self) -> float:
        return min(self.scores)

    @property
    def full_scale(self) -> float:
        return max(self.scores)

    def grows_with_scale(self, key: str) -> bool:
        """True when ``key`` does not decrease from one scale to the next (10 % of the largest allowed: the
        share-based scores saturate)."""
        vals = [self.scores[s][key] for s in sorted(self.scores)]
        tol = 0.1 * max(abs(v) for v in vals) if vals else 0.0
        return all(b >= a - tol for a, b in zip(vals[:-1], vals[1:], strict=True))


@torch.no_grad()
def probe_lora_scales(
    generate: Generate,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    scales: Sequence[float] = (0.0, 0.5, 1.0),
    mask: Optional[torch.Tensor] = None,
) -> PipelineProbe:
    """Run ``generate(seed, scale)`` for every seed and scale; score each scale's images together."""
    scores: dict[float, dict[str, float]] = {}
    for s in scales:
        imgs = [
            check_image_batch(generate(int(seed), float(s)), name=f"generate({seed}, {s})") for seed in seeds
        ]
        batch = torch.cat(imgs)
        m = None
        if mask is not None:
            m = mask if mask.ndim < 4 or mask.shape[0] == batch.shape[0] else mask.repeat(len(seeds), 1, 1, 1)
        scores[float(s)] = artifact_scores(batch, m, checkerboard=False)
    return PipelineProbe(scores=scores, seeds=tuple(int(s) for s in seeds))
