"""The callables the probes run, with their exact contracts.

Every image tensor is ``B×3×H×W``, float, in [0, 1]; latents are ``B×C×h×w`` in the model's latent space.
The probes call them under ``torch.no_grad()`` and never modify their inputs.

* :class:`Encode` — ``encode(images) -> latents``: the VAE encoder (posterior mean, scaled as the model sees
  it or not — it only has to match ``decode``).
* :class:`Decode` — ``decode(latents) -> images``: the VAE decoder, output mapped to [0, 1].
* :class:`Generate` — ``generate(seed, lora_scale) -> images``: the whole text-to-image pipeline with its
  fixed
  validation prompts; the same ``seed`` must give the same initial noise at every ``lora_scale``
  (``lora_scale`` 0 = the base model, 1 = the LoRA as trained; with diffusers:
  ``pipe(prompts, generator=torch.Generator().manual_seed(seed), cross_attention_kwargs={"scale": s})``).
* :class:`Edit` — ``edit(images) -> images``: an image-to-image model (e.g. wall replacement) with its seed
  fixed inside, output the same size as its input.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["Encode", "Decode", "Generate", "Edit"]


class Encode(Protocol):
    def __call__(self, images: torch.Tensor, /) -> torch.Tensor: ...


class Decode(Protocol):
    def __call__(self, latents: torch.Tensor, /) -> torch.Tensor: ...


class Generate(Protocol):
    def __call__(self, seed: int, lora_scale: float, /) -> torch.Tensor: ...


class Edit(Protocol):
    def __call__(self, images: torch.Tensor, /) -> torch.Tensor: ...
