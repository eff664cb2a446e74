"""Tiny real diffusers models built in code (nothing downloaded) for tests and examples.

* :func:`tiny_vae` — a diffusers ``AutoencoderKL`` with designed weights and three 2× levels (8× down, like
  Stable Diffusion's VAE) whose decoder upsamples either by resize→conv or by transposed convolutions with
  uneven overlap (``upsample="transpose"``: three levels stamp an 8-px grid).
* :func:`vae_codec` — ``encode(images)->latents`` / ``decode(latents)->images`` callables (images in [0, 1]).
* :func:`grid_texture` — a wall-like texture batch, optionally carrying a k-px grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

__all__ = ["tiny_vae", "vae_codec", "grid_texture", "add_grid", "TinyLoraPipeline"]


class _ResizeConv(torch.nn.Module):
    """Bilinear 2× resize, then a 3×3 convolution (the checkerboard-free upsampler of Odena et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.conv(
            torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        )


def _identity_conv_(conv: Any) -> None:
    """Make ``conv`` copy channel i to channel i (centre tap; extra outputs 0)."""
    with torch.no_grad():
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
        kh, kw = conv.weight.shape[-2:]
        for i in range(min(conv.in_channels, conv.out_channels)):
            conv.weight[i, i, kh // 2, kw // 2] = 1.0


def _identity_resnets_(module: torch.nn.Module) -> None:
    """Every diffusers ``ResnetBlock2D`` in ``module`` passes its input through (its last conv is zeroed)."""
    from diffusers.models.resnet import ResnetBlock2D

    for m in module.modules():
        if isinstance(m, ResnetBlock2D):
            _zero_(m.conv2)


def _zero_(conv: Any) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()


def tiny_vae(
    *,
    levels: int = 3,
    upsample: Literal["resize", "transpose"] = "resize",
    imbalance: float = 0.15,
    latent_channels: int = 4,
) -> Any:
    """A real ``diffusers.AutoencoderKL`` with ``levels`` 2× levels and designed (not trained) weights.

    Nothing is random: the encoder averages 2×2 blocks at each level, the decoder's resnets pass through and
    each level upsamples 2×, either by a bilinear resize followed by a 3×3 convolution (``"resize"``: smooth,
    no lattice) or by a stride-2 ``ConvTranspose2d`` with a 4-tap kernel whose two output phases get the gains
    ``1 − imbalance`` and ``1 + imbalance`` (``"transpose"``: the uneven overlap of Odena et al. 2016, which
    stamps a ``2**levels``-px grid). Images are ``2·x − 1`` for x in [0, 1], as for Stable Diffusion's VAE.
    """
    from diffusers import AutoencoderKL
    from diffusers.models.upsampling import Upsample2D

    c = latent_channels
    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * (levels + 1),
        up_block_types=("UpDecoderBlock2D",) * (levels + 1),
        block_out_channels=(c,) * (levels + 1),
        layers_per_block=1,
        latent_channels=c,
        norm_num_groups=c,
        sample_size=64,
        mid_block_add_attention=False,
        scaling_factor=1.0,
    )
    enc, dec = vae.encoder, vae.decoder
    _identity_resnets_(vae)
    for conv in (enc.conv_in, dec.conv_in, dec.conv_out, vae.quant_conv, vae.post_quant_conv):
        _identity_conv_(conv)
    _identity_conv_(enc.conv_out)  # mean = features; log-variance: very small
    with torch.no_grad():
        enc.conv_out.bias[c:] = -20.0
    for module in (enc, dec):
        module.conv_norm_out = torch.nn.Identity()
        module.conv_act = torch.nn.Identity()
    for block in enc.down_blocks:
        if block.downsamplers is not None:
            conv = block.downsamplers[0].conv  # 3×3, stride 2, input padded (0, 1, 0, 1): taps 2i, 2i+1, 2i+2
            with torch.no_grad():
                conv.weight.zero_()
                conv.bias.zero_()
                for i in range(c):
                    conv.weight[i, i, :2, :2] = 0.25
    taps = torch.tensor(
        [0.25 * (1 - imbalance), 0.75 * (1 + imbalance), 0.75 * (1 - imbalance), 0.25 * (1 + imbalance)]
    )
    for block in dec.up_blocks:
        if block.upsamplers is None:
            continue
        if upsample == "transpose":
            up: Any = Upsample2D(c, use_conv_transpose=True, out_channels=c, padding=1)
            with torch.no_grad():
                up.conv.weight.zero_()
                up.conv.bias.zero_()
                for i in range(c):
                    up.conv.weight[i, i] = taps[:, None] * taps[None, :]
        else:
            up = _ResizeConv(c)
            _identity_conv_(up.conv)
        block.upsamplers[0] = up
    return vae.eval()


def vae_codec(
    vae: Any,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """``(encode, decode)`` over a diffusers VAE: images B×3×H×W in [0, 1] ↔ latents (the posterior mean)."""

    @torch.no_grad()
    def encode(images: torch.Tensor) -> torch.Tensor:
        return vae.encode(images * 2 - 1).latent_dist.mean

    @torch.no_grad()
    def decode(latents: torch.Tensor) -> torch.Tensor:
        return ((vae.decode(latents).sample + 1) / 2).clamp(0, 1)

    return encode, decode


def add_grid(images: torch.Tensor, k: int, amplitude: float, *, phase: int = 0) -> torch.Tensor:
    """``images`` with dark lines on the k-px lattice (rows and columns ``≡ phase mod k``)."""
    out = images.clone()
    out[..., phase::k, :] -= amplitude
    out[..., :, phase::k] -= amplitude
    return out.clamp(0, 1)


def grid_texture(
    batch: int, size: int = 64, *, k: int = 0, amplitude: float = 0.15, seed: int = 0
) -> torch.Tensor:
    """A batch of smooth, wall-like colour textures ``B×3×size×size`` in [0, 1] (a k-px grid when ``k``)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    out = []
    for _ in range(batch):
        base = torch.rand(3, 1, 1, generator=g) * 0.5 + 0.25
        img = base.expand(3, size, size).clone()
        for _ in range(3):
            f = torch.rand(2, generator=g) * 0.25 + 0.03
            ph = torch.rand(1, generator=g) * 6.283
            a = torch.rand(3, 1, 1, generator=g) * 0.08
            img = img + a * torch.sin(f[0] * 6.283 * yy / 8 + f[1] * 6.283 * xx / 8 + ph)
        out.append(img)
    x = torch.stack(out).clamp(0, 1)
    return add_grid(x, k, amplitude) if k else x


class TinyLoraPipeline:
    """A one-step latent generator: a tiny diffusers ``UNet2DModel`` (+ a peft LoRA) and a VAE decoder.

    ``generate(seed, lora_scale)`` draws seeded latent noise, lets the UNet predict the clean latent (it also
    sees sin/cos position channels of period ``period_px`` — like a DiT's positional embedding — which the
    base
    model ignores: their input weights are zero) and decodes it with ``decode``. :meth:`train_lora` fits the
    LoRA for a few steps toward the latents of ``targets``; a grid in the targets is then the LoRA's.
    """

    def __init__(
        self,
        decode: Callable[[torch.Tensor], torch.Tensor],
        *,
        latent_channels: int = 4,
        latent_size: int = 24,
        period_px: int = 4,
        rank: int = 8,
        seed: int = 0,
    ) -> None:
        from diffusers import UNet2DModel
        from peft import LoraConfig, inject_adapter_in_model

        self.decode, self.c, self.h = decode, latent_channels, latent_size
        torch.manual_seed(seed)
        unet: Any = UNet2DModel(
            sample_size=latent_size,
            in_channels=latent_channels + 6,
            out_channels=latent_channels,
            block_out_channels=(8,),
            layers_per_block=1,
            down_block_types=("DownBlock2D",),
            up_block_types=("UpBlock2D",),
            norm_num_groups=4,
        )
        with torch.no_grad():
            unet.conv_in.weight[:, latent_channels:] = 0  # the base model ignores position
        cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=["conv_in", "conv1", "conv2", "conv_out"])
        self.unet = inject_adapter_in_model(cfg, unet).eval()
        yy, xx = torch.meshgrid(
            torch.arange(latent_size, dtype=torch.float32),
            torch.arange(latent_size, dtype=torch.float32),
            indexing="ij",
        )
        w = 2 * torch.pi / period_px
        self.pos = torch.stack(
            [
                torch.sin(w * xx),
                torch.cos(w * xx),
                torch.cos(torch.pi * xx),
                torch.sin(w * yy),
                torch.cos(w * yy),
                torch.cos(torch.pi * yy),
            ]
        )[None]

    def set_scale(self, scale: float) -> None:
        from peft.tuners.lora import LoraLayer

        for m in self.unet.modules():
            if isinstance(m, LoraLayer):
                m.set_scale("default", float(scale))

    def noise(self, seeds: Any) -> torch.Tensor:
        return torch.cat(
            [
                torch.randn(1, self.c, self.h, self.h, generator=torch.Generator().manual_seed(int(s)))
                for s in seeds
            ]
        )

    def latents(self, seeds: Any, scale: float) -> torch.Tensor:
        self.set_scale(scale)
        z = self.noise(seeds)
        return self.unet(torch.cat([z, self.pos.expand(z.shape[0], -1, -1, -1)], 1), 0).sample

    @torch.no_grad()
    def generate(self, seed: int, lora_scale: float) -> torch.Tensor:
        return self.decode(self.latents([seed], lora_scale))

    def train_lora(self, target_latents: torch.Tensor, *, steps: int = 30, lr: float = 1e-2) -> list[float]:
        """Fit the LoRA (only) so that seed ``i`` gives ``target_latents[i]``; returns the losses."""
        params = []
        for name, p in self.unet.named_parameters():
            p.requires_grad_("lora_" in name)
            if "lora_" in name:
                params.append(p)
        opt = torch.optim.Adam(params, lr=lr)
        seeds = list(range(target_latents.shape[0]))
        losses = []
        self.unet.train()
        for _ in range(steps):
            loss = torch.nn.functional.mse_loss(self.latents(seeds, 1.0), target_latents)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        self.unet.eval()
        return losses
