"""Train a tiny LoRA that learns a grid, watch its validation images, and let the probes name the culprit.

What it really trains (CPU, a minute): a tiny diffusers ``UNet2DModel`` with a peft LoRA, toward wall textures
whose targets carry an 8-px grid (a bad training set), decoded by a clean ``AutoencoderKL`` (built in code,
nothing downloaded). Every ``--every`` steps the validation images (fixed seeds) go to MLflow at their
global step with :func:`trackdiag.integrations.validation.log_validation_images`: the diagnosis, the images,
and the fingerprint with its "since when". At the end the probes run on the callables — the VAE alone and the
pipeline at LoRA scale 0, 0.5 and 1 — and the verdict names the stage that made the grid (the LoRA).
``--grid-vae`` decodes with a VAE whose transposed convolutions stamp the grid instead (and the training
targets are clean): the verdict then names the VAE.

    python examples/lora_grid_probe.py --steps 30 --every 10 --out lora_probe
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--lr", type=float, default=2e-2)
    p.add_argument(
        "--grid-vae", action="store_true", help="a VAE with transposed-conv upsampling, clean targets"
    )
    p.add_argument("--out", type=Path, default=Path("lora_probe"))
    args = p.parse_args(argv)

    import trackdiag
    from trackdiag.integrations.validation import log_validation_images
    from trackdiag.probe import attribute, probe_lora_scales, probe_vae
    from trackdiag.testing.tiny_models import TinyLoraPipeline, grid_texture, tiny_vae, vae_codec

    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if args.grid_vae:  # 8× VAE whose decoder stamps an 8-px grid; 64-px images, clean targets
        enc, dec = vae_codec(tiny_vae(levels=3, upsample="transpose"))
        size, latent, k = 64, 8, 0
    else:  # clean 2× VAE; 48-px images; the targets carry the grid
        enc, dec = vae_codec(tiny_vae(levels=1, upsample="resize"))
        size, latent, k = 48, 24, 8
    pipe = TinyLoraPipeline(dec, latent_size=latent)
    with torch.no_grad():
        targets = enc(grid_texture(4, size, k=k, amplitude=0.2, seed=5))
    session = trackdiag.init(
        tracking_uri=f"sqlite:///{(args.out / 'mlruns.db').resolve()}",
        run_name="lora_grid_probe",
        out_dir=str(args.out / "trackdiag_runs"),
        overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=1"],
    )
    val_seeds = (100, 101, 102, 103)
    for step in range(0, args.steps + 1, args.every):
        if step:
            losses = pipe.train_lora(targets, steps=args.every, lr=args.lr)
            session.log_scalars({"train/loss": losses[-1]}, step)
        with torch.no_grad():
            images = [pipe.generate(s, 1.0)[0] for s in val_seeds]
        log_validation_images(images, step, session=session, keys=[f"seed{s}" for s in val_seeds])
    session.flush(120)
    run_id = session.backends[0].run_id

    vae = probe_vae(enc, dec, size=size, targets=grid_texture(3, size, seed=9))
    pp = probe_lora_scales(pipe.generate, seeds=(200, 201, 202))
    verdicts = attribute(vae=vae, pipeline=pp)
    for v in verdicts:
        print(f"[{v.severity}] {v.code}: {v.title}\n    evidence: {dict(v.evidence)}\n    fix: {v.fix}")
    if not verdicts:
        print("no artifact attributed")
    session.log_params({"probe.verdicts": ",".join(v.code for v in verdicts) or "none"})
    summary = trackdiag.finish()
    (args.out / "verdicts.json").write_text(
        json.dumps({"run_id": run_id, "verdicts": [v.to_dict() for v in verdicts]}, indent=1)
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
