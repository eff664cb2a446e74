"""A realistic training step with and without trackdiag, the training thread's view of ``log()``, big images.

The model is a small diffusers ``UNet2DModel`` (64×64, two levels, one attention level), trained with the
DDPM noise-prediction loss on batches of 4 RGB images, on the CPU with one torch thread (as a data-parallel
worker would run). trackdiag runs at its defaults (MLflow embedded store; loss analyzer every step; tiling,
pixel and latent analyzers every 100 steps) and gets what a user would pass: the x0 estimate, the clean
target, per-sample losses, timesteps and the model's input/output.

Rows (ratios measured in this one run):

* ``step_ms_without`` / ``step_ms_with`` / ``added_pct``: mean step time; blocks of steps with and without
  trackdiag alternate so that machine load drifts affect both alike (target: ≤ 5 % added);
* ``log_p99_ms``, ``compute_p99_ms`` and ``log_p99_over_compute_p99``: p99 of ``log()`` on the training
  thread against the p99 of the analyzers' own ``compute`` in those calls, while the worker delivers
  (target ≤ 1.1);
* ``log_ms_1024``, ``log_ms_4096`` and ``log_4096_over_1024``: a due tiling ``log()`` of one 1024² and one
  4096² image, under the default pixel budget (target ≤ 2);
* ``tiling_log_ms_threads1`` / ``tiling_log_ms_threads2``: a due tiling call with ``budget.intra_op_threads``
  1 and 2 (the measurement behind the default of 1; not in the ``--quick`` smoke form).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import row


def _model() -> Any:
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=64, layers_per_block=1, block_out_channels=(32, 64),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)


def _data(n: int) -> torch.Tensor:
    """``n`` 3×64×64 wall-like images in [0, 1] (brick crops with a tint)."""
    from trackdiag.testing import synth

    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        gray = synth.brick(64, 64, period_px=8 + (i % 5), generator=g)
        out.append(synth.to_rgb(gray, tint=(1.0, 0.9 + 0.02 * (i % 5), 0.85)))
    return torch.stack(out)


class _Timed:
    """Wraps each analyzer class's compute to record how long the analyzers' own math took per log() call.

    The classes are patched, not the instances: an instance holding a local function would not pickle, and
    its figures would then be drawn on the worker thread instead of the render process (not the defaults)."""

    def __init__(self, session: Any) -> None:
        self.current = 0.0
        self._patched: list[tuple[Any, Any]] = []
        for cls in {type(a) for a in session.analyzers}:
            orig = cls.compute

            def timed(analyzer: Any, inputs: Any, _orig: Any = orig) -> Any:
                t0 = time.perf_counter()
                try:
                    return _orig(analyzer, inputs)
                finally:
                    self.current += time.perf_counter() - t0

            cls.compute = timed
            self._patched.append((cls, orig))

    def close(self) -> None:
        for cls, orig in self._patched:
            cls.compute = orig


@contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _p99(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 99)) if values else float("nan")


def _train(quick: bool) -> list[dict]:
    import trackdiag

    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = _data(64)
    betas = torch.linspace(1e-4, 0.02, 1000)
    alphas = torch.cumprod(1 - betas, 0)
    block = 2 if quick else 10
    blocks = 1 if quick else 6  # the smoke form (tests): 2 + 2 steps after one warm-up step
    g = torch.Generator().manual_seed(2)

    def step(i: int) -> dict[str, torch.Tensor]:
        x0 = data[(torch.arange(4) + 4 * i) % data.shape[0]] * 2 - 1
        t = torch.randint(0, 1000, (4,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        out = model(xt, t).sample
        per = (out - noise).square().mean(dim=(1, 2, 3))
        loss = per.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x0_hat = ((xt - (1 - a).sqrt() * out) / a.sqrt()).clamp(-1, 1) * 0.5 + 0.5
        return {"pred": x0_hat.detach(), "target": x0 * 0.5 + 0.5, "loss": per.detach(), "timesteps": t,
                "latents": {"in": xt.detach(), "out": out.detach()}}

    for i in range(1 if quick else 2):  # warm-up (allocator, kernels)
        step(i)
    without: list[float] = []
    with_: list[float] = []
    logs: list[float] = []
    computes: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, _chdir(Path(tmp)):
        session = trackdiag.init(run_name="bench_step")
        timer = _Timed(session)
        log_step = 0
        for _block_no in range(blocks):
            for _ in range(block):
                t0 = time.perf_counter()
                step(log_step)
                without.append(time.perf_counter() - t0)
            for _ in range(block):
                t0 = time.perf_counter()
                out = step(log_step)
                timer.current = 0.0
                t1 = time.perf_counter()
                trackdiag.log(log_step, out["pred"], target=out["target"], loss=out["loss"],
                              timesteps=out["timesteps"], latents=out["latents"])
                t2 = time.perf_counter()
                with_.append(t2 - t0)
                logs.append(t2 - t1)
                computes.append(timer.current)
                log_step += 1
        t0 = time.perf_counter()
        summary = trackdiag.finish()
        t_finish = time.perf_counter() - t0
        timer.close()
    mw, mo = statistics.fmean(with_), statistics.fmean(without)
    n = len(with_)
    return [
        row("step", "step_ms_without", mo * 1e3, "ms", f"UNet2DModel 64², batch 4, CPU, 1 thread; {n} steps"),
        row("step", "step_ms_with", mw * 1e3, "ms",
            "trackdiag at defaults (mlflow; tiling/pixel/latent every 100)"),
        row("step", "added_pct", (mw / mo - 1) * 100, "%", "target <= 5"),
        row("step", "log_mean_ms", statistics.fmean(logs) * 1e3, "ms", "log() on the training thread"),
        row("step", "log_p99_ms", _p99(logs) * 1e3, "ms", "log() on the training thread"),
        row("step", "compute_p99_ms", _p99(computes) * 1e3, "ms",
            "the analyzers' own compute in those calls"),
        row("step", "log_p99_over_compute_p99", _p99(logs) / max(_p99(computes), 1e-9), "x", "target <= 1.1"),
        row("step", "finish_s", t_finish, "s", f"clean={summary.clean}"),
    ]


def _big_images(quick: bool) -> list[dict]:
    import trackdiag

    reps = 1 if quick else 3
    rows = []
    g = torch.Generator().manual_seed(3)
    from trackdiag.testing import synth

    def image(side: int) -> torch.Tensor:
        return synth.to_rgb(synth.brick(side, side, period_px=24.0, generator=g))[None]

    imgs = {1024: image(1024), 4096: image(4096)}
    with tempfile.TemporaryDirectory() as tmp, _chdir(Path(tmp)):
        trackdiag.init(run_name="big", backend=["local"],
                       overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=1"])
        step = 0
        times: dict[int, list[float]] = {1024: [], 4096: []}
        for r in range(reps + 1):
            for side in (1024, 4096):
                t0 = time.perf_counter()
                trackdiag.log(step, imgs[side])
                if r > 0:  # the first round warms up
                    times[side].append(time.perf_counter() - t0)
                step += 1
        trackdiag.finish()
        t1024, t4096 = statistics.median(times[1024]), statistics.median(times[4096])
        rows += [row("step", "log_ms_1024", t1024 * 1e3, "ms", "due tiling log(), 1×3×1024²"),
                 row("step", "log_ms_4096", t4096 * 1e3, "ms",
                     "due tiling log(), 1×3×4096² (pixel budget 1 MP)"),
                 row("step", "log_4096_over_1024", t4096 / t1024, "x", "target <= 2")]
        if quick:  # the smoke form skips the thread-count comparison (eight due 4×3×512² summaries)
            return rows
        saved = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            for threads in (1, 2):
                trackdiag.init(run_name=f"threads{threads}", backend=["local"],
                               overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=1",
                                          f"budget.intra_op_threads={threads}"])
                x = image(512).expand(4, 3, 512, 512).contiguous()
                trackdiag.log(0, x)
                ts = []
                for s in range(1, reps + 2):
                    t0 = time.perf_counter()
                    trackdiag.log(s, x)
                    ts.append(time.perf_counter() - t0)
                trackdiag.finish()
                rows.append(row("step", f"tiling_log_ms_threads{threads}", statistics.median(ts) * 1e3,
                                "ms",
                                f"due tiling log() 4×3×512², budget.intra_op_threads={threads}; "
                                f"{os.cpu_count()} CPUs"))
        finally:
            torch.set_num_threads(saved)
    return rows


def run(quick: bool) -> list[dict]:
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = _train(quick)
    finally:
        torch.set_num_threads(saved)
    return rows + _big_images(quick)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for r in run(quick="--quick" in sys.argv):
        print(r)
