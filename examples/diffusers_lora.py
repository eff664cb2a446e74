"""A LoRA on a real diffusers ``UNet2DModel``, trained with accelerate on the CPU, with trackdiag watching.

What a user's diffusers + peft + accelerate LoRA script looks like, shrunk to run in seconds:

* the UNet is a real ``diffusers.UNet2DModel`` with a tiny configuration built in code (two resolution levels,
  self-attention at the lower one); nothing is downloaded, so the base weights are random;
* the LoRA is a real ``peft`` adapter (``LoraConfig`` + ``inject_adapter_in_model``, which is what diffusers'
  own ``add_adapter`` calls) on the attention projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and the
  ResNet 3×3 convolutions (``conv1``, ``conv2``); only the adapter weights train;
* the steps are DDPM noise prediction on generated wall textures (pixel space: the "latents" are the images
  scaled to [-1, 1]), run by ``accelerate`` with ``Accelerator(log_with="trackdiag")``.

trackdiag receives, at each logged step, through ``trackdiag.log``:

* ``pred``: the x0 estimate ``(x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)``, clamped to [-1, 1] and mapped to [0, 1];
* ``latents``: ``{"in": x_t, "out": ε̂}``, the UNet's input and output;
* ``loss`` and ``timesteps``: the per-sample MSE ``(B,)`` before the batch mean, with each sample's timestep;

and the scalars of ``accelerator.log`` (loss, learning rate) through the accelerate tracker.

    python examples/diffusers_lora.py                     # 20 steps, 32×32
    python examples/diffusers_lora.py --steps 4 --out /tmp/lora
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import trackdiag

#: The modules the LoRA adapts (names inside diffusers' UNet2DModel blocks).
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2")


def build_unet(size: int) -> Any:
    """A tiny ``UNet2DModel`` (≈0.18 M parameters): 16/32 channels, attention at the 2nd level."""
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=size, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(16, 32), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8, attention_head_dim=8)


def add_lora(unet: Any, *, rank: int, alpha: float | None = None) -> Any:
    """Inject a peft LoRA adapter into ``unet`` (in place); only the adapter's weights stay trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank,
                        target_modules=list(LORA_TARGETS),
                        init_lora_weights="gaussian")
    return inject_adapter_in_model(config, unet)


def x0_estimate(x_t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor
                ) -> torch.Tensor:
    """DDPM x0 estimate from an epsilon prediction, mapped to [0, 1].

    Shapes: ``x_t``, ``eps`` ``B×C×H×W`` in latent units ([-1, 1] images); ``t`` ``(B,)`` int; returns
    ``B×C×H×W`` in [0, 1].
    """
    ab = alphas_cumprod.to(device=x_t.device, dtype=x_t.dtype)[t].view(-1, 1, 1, 1)
    x0 = (x_t - (1.0 - ab).sqrt() * eps) / ab.sqrt()
    return (x0.clamp(-1.0, 1.0) + 1.0) / 2.0


@dataclass
class LoraResult:
    run_id: str
    losses: list[float] = field(default_factory=list)
    timesteps: list[list[int]] = field(default_factory=list)
    trainable: list[str] = field(default_factory=list)
    #: Channel-0 mean of the UNet input x_t and of its output at each logged step (what trackdiag should
    #: show).
    latent_c0_means: dict[str, list[float]] = field(default_factory=lambda: {"in": [], "out": []})
    lora_changed: bool = False
    base_unchanged: bool = False
    summary: Any = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="optimizer steps (default 20)")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--log-every", type=int, default=1, help="feed trackdiag's tensor analyzers every n steps")
    p.add_argument("--figures-every", type=int, default=10,
                   help="render the tiling/latent figures on every n-th analysis (they cost seconds each)")
    p.add_argument("--analyzers", default="tiling,loss,latent",
                   help="trackdiag analyzers, comma-separated (default tiling,loss,latent)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/diffusers_lora",
                   help="folder for trackdiag's local files (default outputs/diffusers_lora)")
    p.add_argument("--tracking-uri", default="sqlite:///mlruns.db", help="MLflow store (default sqlite:///mlruns.db)")
    return p


def analyzer_overrides(names: Sequence[str], every: int, figures_every: int) -> list[str]:
    """Select ``names``; the image and latent analyzers run whenever predictions are logged (every ``every``
    steps) and render their figures on every ``figures_every``-th of those runs."""
    out = [f"analyzer=[{','.join(names)}]"]
    for n in names:
        if n in ("tiling", "latent", "pixel"):
            out += [f"analyzer.{n}.schedule.every={every}", f"analyzer.{n}.figures_every={figures_every}"]
    return out


def train(args: argparse.Namespace) -> LoraResult:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler

    from trackdiag.integrations.accelerate import register
    from trackdiag.testing.synth import wall_batch

    set_seed(args.seed)
    register()
    accelerator = Accelerator(cpu=True, log_with="trackdiag")
    accelerator.init_trackers("diffusers_lora", config=vars(args), init_kwargs={"trackdiag": {
        "overrides": analyzer_overrides(args.analyzers.split(","), args.log_every, args.figures_every),
        "backend": "mlflow", "tracking_uri": args.tracking_uri, "run_name": f"lora-r{args.rank}",
        "out_dir": str(Path(args.out) / "trackdiag_runs")}})

    unet = add_lora(build_unet(args.size), rank=args.rank)
    result = LoraResult(run_id="", trainable=[n for n, p in unet.named_parameters() if p.requires_grad])
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=args.lr)
    unet, opt = accelerator.prepare(unet, opt)

    gen = torch.Generator().manual_seed(args.seed)
    images = wall_batch(64, args.size, generator=gen)  # B×3×H×W in [0, 1], bricks and tiles
    for step in range(args.steps):
        idx = torch.randint(0, len(images), (args.batch,), generator=gen)
        x0 = images[idx].to(accelerator.device) * 2.0 - 1.0
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=gen).to(x0.device)
        x_t = scheduler.add_noise(x0, noise, t)
        eps = unet(x_t, t).sample
        per_sample = F.mse_loss(eps.float(), noise.float(), reduction="none").mean(dim=(1, 2, 3))
        loss = per_sample.mean()
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)

        accelerator.log({"train/loss": loss.item(), "train/lr": opt.param_groups[0]["lr"]}, step=step)
        if step % args.log_every == 0:
            pred = x0_estimate(x_t.detach(), eps.detach(), scheduler.alphas_cumprod, t)
            latents = {"in": x_t.detach(), "out": eps.detach()}
            trackdiag.log(step, pred, latents=latents, loss=per_sample.detach(), timesteps=t,
                          sample_ids=[f"wall{int(i)}" for i in idx])
            for name, z in latents.items():
                result.latent_c0_means[name].append(float(z[:, 0].mean()))
        else:
            trackdiag.log(step, loss=per_sample.detach(), timesteps=t)
        result.losses.append(float(loss.detach()))
        result.timesteps.append([int(v) for v in t])

    session = accelerator.get_tracker("trackdiag", unwrap=True)
    accelerator.end_training()
    result.summary = session.finish()
    result.run_id = session.backends[0].run_id
    after = dict(accelerator.unwrap_model(unet).named_parameters())
    result.lora_changed = any(not torch.equal(before[n], after[n].detach()) for n in result.trainable)
    result.base_unchanged = all(torch.equal(before[n],
                                            after[n].detach()) for n in before if n not in result.trainable)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = train(args)
    print(f"LoRA rank {args.rank}: {len(result.trainable)} adapter tensors trained, base weights "
          f"{'unchanged' if result.base_unchanged else 'CHANGED'}; loss {result.losses[0]:.4f} → "
          f"{result.losses[-1]:.4f} over {args.steps} steps")
    print(result.summary)
    from trackdiag.core.findings import shell_command
    from trackdiag.ui import store_uri

    print(f"open: {shell_command('trackdiag', 'ui', '--store', store_uri(args.tracking_uri))}  (run "
          f"{result.run_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
