"""Toy upsampler: watch trackdiag catch a checkerboard from transposed convolutions in a real training run.

``make demo`` runs this file. It trains on the CPU a small decoder that rebuilds wall textures (running-bond
brick and square tiles with a known period) from a 4× smaller input, twice (a few seconds of training each;
about 1.5 minutes in all on 2 shared cores, most of it analyzers, figures, reports and the ranking):

* ``deconv``: each ×2 upsampling is a ``ConvTranspose2d(kernel_size=3, stride=2)``. The kernel size is not a
  multiple of the stride, so per axis even output pixels get one kernel tap and odd pixels two ("uneven
  overlap", Odena et al. 2016): the output carries a period-2 grid, the checkerboard;
* ``resize``: each ×2 upsampling is a nearest-neighbour resize followed by a 3×3 ``Conv2d``: every output
  pixel gets the same taps, no grid.

Both runs are logged to the embedded MLflow store (``sqlite:///mlruns.db``) with trackdiag's figures: the
loss analyzer on every step, the tiling and pixel analyzers on a fixed evaluation set every ``--eval-every``
steps. Each evaluation also saves a checkpoint. A ``trackdiag.diagnose`` report is written for each run's
final outputs (and uploaded to the run), every checkpoint of both runs is ranked with
``trackdiag.compare_ckpts``, and the verdict is printed in words with the report paths and the command that
opens the MLflow UI.

Nothing is faked: the checkerboard comes from the architecture and is measured on the model's outputs. MSE
training slowly learns to cancel it (about a hundred steps at this learning rate), which is why the default
budget is short; ``docs/examples.md`` has the numbers over checkpoints and seeds.

    python examples/toy_upsampler.py                                      # the demo
    python examples/toy_upsampler.py --steps 40 --size 96 --out /tmp/ci   # CI-sized
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import trackdiag
from trackdiag.testing import synth

VARIANTS = ("deconv", "resize")
EXPERIMENT = "toy_upsampler"
DESCRIPTION = {"deconv": "ConvTranspose2d k3 s2", "resize": "nearest resize → Conv2d k3"}
#: The metrics compare_ckpts ranks the checkpoints by (both: lower is better): the artifact under study and
#: the pixel RMSE against the evaluation targets (without it the untrained, blurry step-0 checkpoint, which
#: has no artifact at all, would rank first). Other tiling metrics are in the MLflow runs and the reports.
RANK_METRICS = ("tiling/checkerboard_score", "pixel/diff_rmse")
CHECKERBOARD = "trackdiag/tiling/checkerboard_score"


# ------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------
@dataclass
class DemoConfig:
    steps: int = 60
    #: Side of the evaluation images (what the diagnostics and the reports see).
    size: int = 128
    #: Side of the training crops (the decoder is fully convolutional; small crops keep training fast).
    train_size: int = 48
    batch: int = 8
    channels: int = 16
    lr: float = 1e-3
    #: Input = the texture area-downsampled by this factor (two ×2 upsampling stages).
    factor: int = 4
    train_textures: int = 256
    eval_textures: int = 8
    eval_every: int = 20
    seed: int = 0
    out: str = "demo_out"
    tracking_uri: str = "sqlite:///mlruns.db"
    experiment: str = EXPERIMENT
    variants: tuple[str, ...] = VARIANTS
    #: Rank the checkpoints with compare_ckpts (off: only the per-run reports).
    compare: bool = True


# ------------------------------------------------------------------------------------------------------
# Data: generated wall textures with a known period
# ------------------------------------------------------------------------------------------------------
#: Periods (px) of the training textures: course height of bricks, side of tiles.
TRAIN_PERIODS = (12.0, 24.0)
#: The evaluation walls all have this period, so one reference tile describes the intended pattern.
EVAL_PERIOD = 20.0


def training_textures(n: int, size: int, *, generator: torch.Generator) -> torch.Tensor:
    """``n×3×size×size`` random brick and tile walls with periods in :data:`TRAIN_PERIODS`, in [0, 1]."""
    lo, hi = TRAIN_PERIODS
    return synth.wall_batch(n, size, generator=generator, min_period_px=lo, max_period_frac=hi / size)


def evaluation_textures(n: int, size: int, *, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed evaluation set and its reference tile.

    Returns ``(walls, ref)``: ``n×3×size×size`` brick and tile walls (alternating), all with period
    :data:`EVAL_PERIOD` and random phase, tint and tone; ``ref`` is a ``3×size×size`` clean brick patch of the
    same period, the "intended" texture for the tiling analyzer's E2f/Ef and Ehalf/Ef.
    """
    walls = []
    for i in range(n):
        make = synth.brick if i % 2 == 0 else synth.tiles
        grey = make(size, size, period_px=EVAL_PERIOD, generator=generator)
        tint = tuple((0.8 + 0.2 * torch.rand(3, generator=generator)).tolist())
        walls.append(synth.add_noise(synth.to_rgb(grey, tint=tint), 0.02, generator=generator))
    ref = synth.to_rgb(synth.brick(size, size, period_px=EVAL_PERIOD, jitter=0.0, offset=(0.0, 0.0)))
    return torch.stack(walls), ref


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The decoder's input: ``B×C×H×W`` → ``B×C×(H/factor)×(W/factor)`` by area averaging (no aliasing)."""
    return F.avg_pool2d(x, factor)


# ------------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------------
class Decoder(nn.Module):
    """Low-resolution RGB → RGB at ``factor``× the size: a 3×3 stem, then ×2 upsampling stages.

    The last stage produces the RGB output directly, as in DCGAN-style generators, so nothing after it can
    smooth what the upsampling does. ``variant``:

    * ``"deconv"``: ``ConvTranspose2d(k=3, s=2, p=1, output_padding=1)`` per stage (uneven overlap);
    * ``"resize"``: nearest ×2 resize, then ``Conv2d(k=3, p=1)`` per stage.

    Weights get He (Kaiming-normal, ReLU gain) initialisation, biases zero; the output is linear (a regression
    head). :meth:`forward` returns the raw output, :meth:`predict` the image clamped to [0, 1].

    Shapes: ``B×3×h×w`` in [0, 1] → ``B×3×(h·factor)×(w·factor)``.
    """

    def __init__(self, variant: str, *, channels: int = 16, factor: int = 4) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
        stages = round(math.log2(factor))
        if 2 ** stages != factor or stages < 1:
            raise ValueError(f"factor must be a power of two >= 2; got {factor}")
        self.variant = variant
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        outs = [channels] * (stages - 1) + [3]
        if variant == "deconv":
            self.ups = nn.ModuleList(nn.ConvTranspose2d(channels, o, 3, stride=2, padding=1, output_padding=1)
                                     for o in outs)
        else:
            self.ups = nn.ModuleList(nn.Conv2d(channels, o, 3, padding=1) for o in outs)
        for layer in (self.stem, *self.ups):
            # A transposed conv's weight is (in, out, k, k): its fan-in per output pixel is taken from dim 0.
            mode = "fan_out" if isinstance(layer, nn.ConvTranspose2d) else "fan_in"
            nn.init.kaiming_normal_(layer.weight, mode=mode, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for i, up in enumerate(self.ups):
            if self.variant == "resize":
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = up(h)
            if i < len(self.ups) - 1:
                h = F.relu(h)
        return h

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The decoded image in [0, 1] (what is logged and reported)."""
        return self.forward(x).clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------------------
# One training run
# ------------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    variant: str
    run_id: str
    train_seconds: float
    final_loss: float
    checkpoints: list[Path] = field(default_factory=list)
    final_pred: torch.Tensor | None = None
    report: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def session_overrides(cfg: DemoConfig) -> list[str]:
    """Which analyzers run and when: loss every step; tiling and pixel whenever predictions are logged.

    The tiling figures (six per call) render at every other evaluation: they cost the background worker
    several seconds of CPU each time, and the MLflow UI's step slider needs only a few steps.
    """
    return ["analyzer=[tiling,loss,pixel]", "analyzer.tiling.schedule.every=1",
            "analyzer.tiling.figures_every=2",
            "analyzer.pixel.schedule.every=1"]


def train_variant(variant: str, cfg: DemoConfig, train_set: torch.Tensor, eval_set: torch.Tensor,
                  ref: torch.Tensor) -> RunResult:
    """Train one decoder, logging to its own MLflow run; write the report of its final outputs into the
    run."""
    torch.manual_seed(cfg.seed)
    model = Decoder(variant, channels=cfg.channels, factor=cfg.factor)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    eval_in = downsample(eval_set, cfg.factor)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints" / variant
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tags = {"demo.variant": variant, "demo.upsampler": DESCRIPTION[variant],
            **{f"demo.{k}": str(v) for k, v in asdict(cfg).items() if k not in ("out", "tracking_uri")}}
    session = trackdiag.init({"run": {"tags": tags}}, overrides=session_overrides(cfg), backend="mlflow",
                             tracking_uri=cfg.tracking_uri, experiment=cfg.experiment,
                             run_name=f"toy-{variant}",
                             out_dir=str(out / "trackdiag_runs"))
    result = RunResult(variant=variant, run_id="", train_seconds=0.0, final_loss=math.nan)
    train_time = 0.0
    with session:
        for step in range(cfg.steps + 1):
            if step % cfg.eval_every == 0 or step == cfg.steps:
                pred = model.predict(eval_in)
                session.log(step, pred, ref=ref, target=eval_set)
                path = ckpt_dir / f"step_{step:05d}.pt"
                torch.save(model.state_dict(), path)
                result.checkpoints.append(path)
                result.final_pred = pred
            if step == cfg.steps:
                break
            t0 = time.perf_counter()
            idx = torch.randint(0, len(train_set), (cfg.batch,), generator=gen)
            target = train_set[idx]
            per_sample = F.mse_loss(model(downsample(target, cfg.factor)), target,
                                    reduction="none").mean(dim=(1, 2, 3))
            loss = per_sample.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train_time += time.perf_counter() - t0
            session.log(step, loss=per_sample.detach(), sample_ids=[f"tex{int(i)}" for i in idx])
            result.final_loss = float(loss.detach())
        session.log_scalars({"demo/train_seconds": train_time}, cfg.steps)
        result.train_seconds = train_time
        write_report(result, cfg, ref, eval_set)
        session.log_artifacts(result.report.parent, "report", step=cfg.steps)
    result.run_id = session.backends[0].run_id
    return result


# ------------------------------------------------------------------------------------------------------
# After training: reports, ranking, verdict
# ------------------------------------------------------------------------------------------------------
def write_report(result: RunResult, cfg: DemoConfig, ref: torch.Tensor, targets: torch.Tensor) -> None:
    """A ``trackdiag.diagnose`` report of the run's final outputs (the evaluation set at the last step), and
    ``samples.png`` in the same folder: targets (top row) over the decoded images (bottom row)."""
    from trackdiag.plots import save_rgb_png

    out = Path(cfg.out) / "reports" / result.variant
    assert result.final_pred is not None
    result.summary = trackdiag.diagnose(result.final_pred, ref=ref, out_dir=out)
    result.report = out / "index.html"
    n = min(4, len(targets))
    grid = torch.cat([torch.cat(list(targets[:n]), dim=2), torch.cat(list(result.final_pred[:n]), dim=2)],
                     dim=1)
    save_rgb_png((grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy(),
                 out / "samples.png")


def rank_checkpoints(cfg: DemoConfig, results: Sequence[RunResult]) -> Any:
    """Rank every checkpoint of every run with ``trackdiag.compare_ckpts`` (tracker mode, read back from
    MLflow)."""
    from trackdiag.compare_ckpts import compare

    runs = ",".join(r.run_id for r in results)
    return compare(overrides=[
        f"mlflow.tracking_uri='{cfg.tracking_uri}'", f"mlflow.experiment={cfg.experiment}", f"runs=[{runs}]",
        "steps=all", f"tolerance={max(1, cfg.eval_every // 2)}", f"metrics=[{','.join(RANK_METRICS)}]",
        f"output.dir='{Path(cfg.out) / 'comparison'}'", "output.formats=[csv,json,md,html]",
        "publish.to=mlflow"])


def checkerboard_history(cfg: DemoConfig, run_id: str) -> dict[int, float]:
    """The run's ``checkerboard_score`` per logged step, read back from the MLflow store."""
    from mlflow import MlflowClient

    return {m.step: m.value for m in MlflowClient(cfg.tracking_uri).get_metric_history(run_id, CHECKERBOARD)}


def verdict_lines(results: Sequence[RunResult], ranking: Any, cfg: DemoConfig) -> list[str]:
    """The demo's conclusion in words: per run the likely causes found in its final outputs, the checkerboard
    score over training, the best checkpoint, the report paths and how to open the MLflow UI."""
    from trackdiag.analyzers.tiling import likely_causes

    lines = ["Verdict"]
    for r in results:
        history = checkerboard_history(cfg, r.run_id)
        trend = " → ".join(f"{history[s]:.3f}" for s in sorted(history))
        causes = [v for v in likely_causes(r.summary) if v.severity != "info"]
        found = "; ".join(v.cause for v in causes) if causes else "no tiling artifact stood out"
        lines.append(f"  {r.variant} ({DESCRIPTION[r.variant]}): {found}.")
        lines.append(f"      checkerboard_score at steps {sorted(history)}: {trend}")
        for v in causes:
            lines.append(f"      fix: {v.fix}")
    if ranking is not None:
        c = ranking.comparison
        lines.append(f"  best checkpoint: {ranking.best} (compare_ckpts ranks {len(c)} checkpoints of "
                     f"{len(results)} runs by {', '.join(RANK_METRICS)})")
        lines += [f"      {v}" for v in c.verdict[:2]]
    lines.append("Reports")
    for r in results:
        lines.append(f"  {r.variant}: {r.report}  (decoded samples: {r.report.parent / 'samples.png'})")
    if ranking is not None and "html" in ranking.files:
        lines.append(f"  checkpoint comparison: {ranking.files['html']}")
    names = ", ".join(f"toy-{r.variant}" for r in results)
    from trackdiag.core.findings import shell_command
    from trackdiag.ui import store_uri

    lines.append(f"Open the MLflow UI (experiment '{cfg.experiment}', runs {names}; works in any shell):")
    lines.append(f"  {shell_command('trackdiag', 'ui', '--store', store_uri(cfg.tracking_uri))}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    d = DemoConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps per run (default {d.steps})")
    p.add_argument("--size", type=int, default=d.size,
                   help=f"side of the evaluation images (default {d.size})")
    p.add_argument("--train-size", type=int, default=d.train_size,
                   help=f"side of the training crops (default {d.train_size})")
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--eval-every", type=int, default=d.eval_every,
                   help="evaluate, log predictions and save a checkpoint every n steps (default "
                        f"{d.eval_every})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help=f"reports, checkpoints, local run files (default {d.out})")
    p.add_argument("--tracking-uri", default=d.tracking_uri, help=f"MLflow store (default {d.tracking_uri})")
    p.add_argument("--experiment", default=d.experiment)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(d.variants))
    p.add_argument("--no-compare", dest="compare", action="store_false", help="skip compare_ckpts")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these convolutions are too small to gain from more, "
                        "and spinning threads hurt on a shared machine)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DemoConfig(steps=args.steps, size=args.size, train_size=args.train_size, batch=args.batch,
                     eval_every=args.eval_every, seed=args.seed, out=args.out, tracking_uri=args.tracking_uri,
                     experiment=args.experiment, variants=tuple(args.variants), compare=args.compare)
    t_start = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    train_set = training_textures(cfg.train_textures, cfg.train_size, generator=g)
    eval_set, ref = evaluation_textures(cfg.eval_textures, cfg.size, generator=g)
    results = []
    for variant in cfg.variants:
        print(f"training {variant} ...", flush=True)
        result = train_variant(variant, cfg, train_set, eval_set, ref)
        results.append(result)
        print(f"  {variant}: {cfg.steps} steps in {result.train_seconds:.1f} s, final loss "
              f"{result.final_loss:.4f}")
    ranking = rank_checkpoints(cfg, results) if cfg.compare and len(results) > 1 else None
    print()
    print("\n".join(verdict_lines(results, ranking, cfg)))
    print(f"(total {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
