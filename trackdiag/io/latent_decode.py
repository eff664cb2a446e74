"""Latent models: turn a latent-diffusion training step into a pixel prediction, cheaply.

At a training step the model sees ``x_t = sqrt(ᾱ_t)·x0 + sqrt(1−ᾱ_t)·ε`` and predicts ε (``epsilon``), the
velocity ``v = sqrt(ᾱ_t)·ε − sqrt(1−ᾱ_t)·x0`` (``v_prediction``) or x0 itself (``sample``); flow-matching
models predict ``v = ε − x0`` at ``x_t = (1−σ)·x0 + σ·ε`` (``flow``). :func:`predicted_x0` inverts these with
the scheduler's ``alphas_cumprod`` (or ``sigmas``); :class:`LatentDecoder` decodes the predicted x0 of a few
samples with the VAE every ``every`` steps and reports what that cost, so the pixel analyzers
(tiling, fingerprint) see what the model would draw at this step.

>>> dec = LatentDecoder(vae, scheduler, every=200, max_samples=2)            # doctest: +SKIP
>>> out = dec(step, noisy_latents, model_pred, timesteps)                     # doctest: +SKIP
>>> if out is not None: trackdiag.log(step, out.images); print(out.cost_ms)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Optional

import torch

from ..errors import InputValueError, ShapeError

__all__ = ["PredictionType", "predicted_x0", "DecodeResult", "LatentDecoder"]

PredictionType = Literal["epsilon", "v_prediction", "sample", "flow"]


def _per_sample(values: torch.Tensor, timesteps: torch.Tensor, ndim: int) -> torch.Tensor:
    """``values[timesteps]`` shaped ``B×1×…×1`` for broadcasting over ``ndim``-d latents."""
    t = timesteps.to(values.device).long()
    return values[t].reshape(-1, *([1] * (ndim - 1)))


def predicted_x0(
    sample: torch.Tensor,
    model_output: torch.Tensor,
    timesteps: torch.Tensor,
    *,
    prediction_type: PredictionType,
    alphas_cumprod: Optional[torch.Tensor] = None,
    sigmas: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The model's clean-latent estimate x0 at a training step.

    Args:
        sample: the noisy latents ``x_t``, ``B×C×h×w``.
        model_output: the model's prediction, ``B×C×h×w``.
        timesteps: ``(B,)`` integer indices into ``alphas_cumprod`` (DDPM-style) — or, for ``"flow"``,
            indices into ``sigmas``.
        prediction_type: ``"epsilon"``, ``"v_prediction"``, ``"sample"`` or ``"flow"``.
        alphas_cumprod: ``(T,)`` ᾱ of the scheduler (``scheduler.alphas_cumprod``).
        sigmas: ``(T,)`` σ of a flow-matching scheduler (``scheduler.sigmas``), for ``"flow"``.

    Returns:
        x0, ``B×C×h×w``, in ``sample``'s dtype.
    """
    if sample.shape != model_output.shape:
        raise ShapeError(
            f"sample and model_output must have the same shape; got {tuple(sample.shape)} and "
            f"{tuple(model_output.shape)}"
        )
    timesteps = torch.as_tensor(timesteps).reshape(-1)
    if timesteps.numel() == 1 and sample.shape[0] > 1:
        timesteps = timesteps.expand(sample.shape[0])
    if timesteps.numel() != sample.shape[0]:
        raise ShapeError(
            f"timesteps must have one entry per sample ({sample.shape[0]}); got {timesteps.numel()}"
        )
    x, y = sample.double(), model_output.double()
    if prediction_type == "sample":
        return model_output
    if prediction_type == "flow":
        if sigmas is None:
            raise InputValueError("prediction_type='flow' needs sigmas (scheduler.sigmas).")
        s = _per_sample(sigmas.double(), timesteps, x.ndim)
        return (x - s * y).to(sample.dtype)
    if alphas_cumprod is None:
        raise InputValueError(
            f"prediction_type={prediction_type!r} needs alphas_cumprod (scheduler.alphas_cumprod)."
        )
    a = _per_sample(alphas_cumprod.double(), timesteps, x.ndim)
    sa, s1 = a.sqrt(), (1 - a).sqrt()
    if prediction_type == "epsilon":
        x0 = (x - s1 * y) / sa
    elif prediction_type == "v_prediction":
        x0 = sa * x - s1 * y
    else:
        raise InputValueError(
            f"prediction_type must be 'epsilon', 'v_prediction', 'sample' or 'flow'; got {prediction_type!r}"
        )
    return x0.to(sample.dtype)


@dataclass
class DecodeResult:
    """One decoded step: ``images`` B×C×H×W in [0, 1] (on the CPU), ``x0`` the latents decoded, the cost."""

    step: int
    images: torch.Tensor
    x0: torch.Tensor
    cost_ms: float
    total_cost_ms: float
    decodes: int

    def metrics(self) -> dict[str, float]:
        """``trackdiag/latent_decode/{cost_ms,total_cost_ms,decodes}`` for a tracker."""
        return {
            "trackdiag/latent_decode/cost_ms": self.cost_ms,
            "trackdiag/latent_decode/total_cost_ms": self.total_cost_ms,
            "trackdiag/latent_decode/decodes": float(self.decodes),
        }


class LatentDecoder:
    """Decode the predicted x0 of a few samples every ``every`` steps.

    Args:
        vae: a diffusers ``AutoencoderKL`` (anything with ``decode(z).sample`` and a ``config`` with
            ``scaling_factor`` / ``shift_factor``), or a callable ``decode(latents) -> images`` in [−1, 1].
        scheduler: a diffusers scheduler (``alphas_cumprod`` or ``sigmas``, ``config.prediction_type``), or
            None with ``alphas_cumprod`` / ``sigmas`` given.
        every: decode at steps that are multiples of ``every``.
        max_samples: decode at most this many samples of the batch.
        prediction_type: overrides ``scheduler.config.prediction_type``.
        scaling_factor, shift_factor: latent scaling (default: the VAE's config, else 1 and 0).
    """

    def __init__(
        self,
        vae: Any,
        scheduler: Any = None,
        *,
        every: int = 100,
        max_samples: int = 2,
        prediction_type: Optional[PredictionType] = None,
        alphas_cumprod: Optional[torch.Tensor] = None,
        sigmas: Optional[torch.Tensor] = None,
        scaling_factor: Optional[float] = None,
        shift_factor: Optional[float] = None,
    ) -> None:
        if every < 1 or max_samples < 1:
            raise InputValueError(f"every and max_samples must be >= 1; got {every}, {max_samples}")
        self.vae, self.every, self.max_samples = vae, int(every), int(max_samples)
        cfg = getattr(scheduler, "config", None)
        self.prediction_type: PredictionType = prediction_type or (
            getattr(cfg, "prediction_type", None) or "epsilon"
        )  # type: ignore[assignment]
        self.alphas_cumprod = (
            alphas_cumprod if alphas_cumprod is not None else getattr(scheduler, "alphas_cumprod", None)
        )
        self.sigmas = sigmas if sigmas is not None else getattr(scheduler, "sigmas", None)
        vcfg = getattr(vae, "config", None)
        sf = scaling_factor if scaling_factor is not None else getattr(vcfg, "scaling_factor", None)
        sh = shift_factor if shift_factor is not None else getattr(vcfg, "shift_factor", None)
        self.scaling_factor = float(sf) if sf is not None else 1.0
        self.shift_factor = float(sh) if sh is not None else 0.0
        self.total_cost_ms = 0.0
        self.decodes = 0

    def due(self, step: int) -> bool:
        return int(step) % self.every == 0

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        dec: Callable[[torch.Tensor], Any] = getattr(self.vae, "decode", self.vae)
        out = dec(z)
        return out.sample if hasattr(out, "sample") else out

    @torch.no_grad()
    def __call__(
        self, step: int, noisy_latents: torch.Tensor, model_pred: torch.Tensor, timesteps: torch.Tensor
    ) -> Optional[DecodeResult]:
        """Decode at a due step (else None). Latents ``B×C×h×w`` in the model's (scaled) latent space."""
        if not self.due(step):
            return None
        t0 = time.perf_counter()
        n = min(self.max_samples, noisy_latents.shape[0])
        ts = torch.as_tensor(timesteps).reshape(-1)
        ts = ts[:n] if ts.numel() > 1 else ts
        x0 = predicted_x0(
            noisy_latents[:n].detach(),
            model_pred[:n].detach(),
            ts,
            prediction_type=self.prediction_type,
            alphas_cumprod=self.alphas_cumprod,
            sigmas=self.sigmas,
        )
        z = x0 / self.scaling_factor + self.shift_factor
        dtype = next(iter(self.vae.parameters())).dtype if hasattr(self.vae, "parameters") else z.dtype
        img = self._decode(z.to(dtype))
        images = ((img.float() + 1) / 2).clamp(0, 1).cpu()
        cost = (time.perf_counter() - t0) * 1000.0
        self.total_cost_ms += cost
        self.decodes += 1
        return DecodeResult(
            step=int(step),
            images=images,
            x0=x0,
            cost_ms=cost,
            total_cost_ms=self.total_cost_ms,
            decodes=self.decodes,
        )
