"""How long ``trackdiag.log()`` blocks the training loop, and what a tracker's health changes about it.

Rows (``benchmark = "log"``):

* Figure 1, the training thread's bill: ``log()`` on a 4×3×256×256 batch with the pixel and loss analyzers
  due at every step (figures every step), local backend. ``analyzer_compute_ms`` is the analyzers' own
  ``compute()`` time inside those calls (timed in place), ``log_block_ms`` the whole call,
  ``log_overhead_ms`` the rest: input checks, scheduling, the one device→host copy, ``summarize()`` and
  queueing.
* Figure 2, per backend and state: ``<backend>_<state>_log_p50_ms`` / ``_log_max_ms`` is the time one
  ``log()`` call blocks (the cheap loss analyzer, B=8, with its figure and table every step, so that the
  backend is what varies), and ``_finish_s`` the time
  ``finish()`` takes to drain, deliver or spool, and close. Backends: ``local``, ``mlflow_sqlite`` (embedded
  store), ``mlflow_http`` (a real ``mlflow server`` on 127.0.0.1). States: ``healthy``; ``down`` (local: the
  folder cannot be created; sqlite: the database path cannot be created; HTTP: nothing listens on the port);
  ``hung`` (HTTP only: a socket that accepts connections and never answers; ``http_timeout_s=2``).
  ``_spooled`` counts what went to the spool instead (replayable with ``python -m trackdiag.sync``).

* Figure 3, ``finish()`` against the training loop (issue 15's targets, ratios in one run): a small CPU
  training loop (a conv net, one torch thread) logging to the embedded MLflow store, (a) 10,000 steps of two
  scalars each (``log_scalars``), (b) 100 steps at the defaults with the tiling analyzer every 10 steps
  (figures included; ``_nofloor``: without the 10 s minimum drawing time). ``<case>_finish_ratio`` =
  ``finish()`` time / loop time (target ≤ 0.05); ``<case>_undelivered`` counts what is left in the spool
  (``_deferred_figures``: figures whose inputs wait there for ``sync`` to draw them; nothing is lost).

* Figure 4, the worker's share of the training process: ``worker_cpu_ms_per_step`` (CPU of every thread but
  the training thread, per 30 ms step, loss analyzer, embedded MLflow store) and
  ``metrics_writes_per_100_steps`` (store writes of metrics): both independent of the machine's load.

``--quick`` uses fewer steps and skips the HTTP server (its start-up alone takes 10-60 s).
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import row

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the test suite's helpers: one way to start an mlflow server


def _session(tmp: Path, backend: dict[str, Any], analyzers: dict[str, Any], name: str):
    import trackdiag

    return trackdiag.init(config={"analyzer": analyzers, "backend": backend}, overrides=["analyzer=[]"],
                          run_name=name, experiment="bench_log", out_dir=str(tmp / "out" / name),
                          on_error="warn")


def _batch(step: int, b: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    target = torch.rand(b, 3, size, size, generator=g)
    pred = (target + 0.05 * torch.randn(b, 3, size, size, generator=g)).clamp(0, 1)
    return pred, target


EVERY_STEP = {"schedule": {"every": 1}, "figures_every": 1}


def figure1(tmp: Path, steps: int) -> list[dict]:
    """log()'s blocking time against the analyzers' own compute time."""
    analyzers = {"pixel": EVERY_STEP, "loss": EVERY_STEP}
    s = _session(tmp, {"local": {}}, analyzers, "figure1")
    spent: list[float] = []
    for analyzer in s.analyzers:
        original = analyzer.compute

        def timed(inputs, _f=original):
            t0 = time.perf_counter()
            try:
                return _f(inputs)
            finally:
                spent.append(time.perf_counter() - t0)

        analyzer.compute = timed  # type: ignore[method-assign]
    blocks, computes = [], []
    for step in range(steps + 2):
        pred, target = _batch(step, 4, 256)
        loss = torch.rand(4) + 0.5
        spent.clear()
        t0 = time.perf_counter()
        s.log(step, pred, target=target, loss=loss, timesteps=torch.randint(0, 1000, (4,)))
        t = time.perf_counter() - t0
        if step >= 2:  # warm-up
            blocks.append(t)
            computes.append(sum(spent))
    t0 = time.perf_counter()
    s.finish()
    drain = time.perf_counter() - t0
    block, compute = statistics.median(blocks), statistics.median(computes)
    note = "4x3x256x256, pixel+loss due every step, local backend; median over steps"
    return [row("log", "log_block_ms", block * 1e3, "ms", note),
            row("log", "analyzer_compute_ms", compute * 1e3, "ms", note),
            row("log", "log_overhead_ms", (block - compute) * 1e3, "ms", "log_block - analyzer_compute"),
            row("log", "log_overhead_frac", (block - compute) / block, "ratio",
                "share of log() that is not math"),
            row("log", "figure1_finish_s", drain, "s", "worker drains figures/tables after the loop")]


def _measure(tmp: Path, label: str, backend: dict[str, Any], steps: int) -> list[dict]:
    """log() of a cheap analyzer (loss, figure + table every step), so the backend is what varies."""
    s = _session(tmp, backend, {"loss": EVERY_STEP}, label)
    times = []
    for step in range(steps):
        g = torch.Generator().manual_seed(step)
        loss, t = torch.rand(8, generator=g) + 0.5, torch.randint(0, 1000, (8,), generator=g)
        t0 = time.perf_counter()
        s.log(step, loss=loss, timesteps=t)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    summary = s.finish()
    finish = time.perf_counter() - t0
    times = times[1:]  # the first call includes one-off set-up
    spooled = sum(s.worker.stats.spooled.values())
    note = f"{steps} steps, loss analyzer (B=8) with its figure and table every step"
    return [row("log", f"{label}_log_p50_ms", statistics.median(times) * 1e3, "ms", note),
            row("log", f"{label}_log_max_ms", max(times) * 1e3, "ms", note),
            row("log", f"{label}_finish_s", finish, "s", f"undelivered at finish: {summary.undelivered}"),
            row("log", f"{label}_spooled", spooled, "items", "kept in the spool for replay")]


def figure2(tmp: Path, steps: int, quick: bool) -> list[dict]:
    from tests.support.servers import MlflowServer, free_port, sqlite_store

    blocker = tmp / "a_file"
    blocker.write_text("")
    rows: list[dict] = []
    rows += _measure(tmp, "local_healthy", {"local": {"root": str(tmp / "local")}}, steps)
    rows += _measure(tmp, "local_down", {"local": {"root": str(blocker / "local")}}, steps)
    rows += _measure(tmp, "mlflow_sqlite_healthy",
                     {"mlflow": {"tracking_uri": sqlite_store(tmp / "store.db")}}, steps)
    rows += _measure(tmp, "mlflow_sqlite_down",
                     {"mlflow": {"tracking_uri": f"sqlite:///{blocker / 'x.db'}"}}, steps)
    if quick:
        return rows
    server = MlflowServer(tmp / "server").start()
    try:
        rows += _measure(tmp, "mlflow_http_healthy", {"mlflow": {"tracking_uri": server.url}}, steps)
    finally:
        server.stop()
    rows += _measure(tmp, "mlflow_http_down",
                     {"mlflow": {"tracking_uri": f"http://127.0.0.1:{free_port()}", "http_timeout_s": 2.0}},
                     steps)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:  # accepts TCP, never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(1024)
        rows += _measure(tmp, "mlflow_http_hung", {"mlflow": {
            "tracking_uri": f"http://127.0.0.1:{hole.getsockname()[1]}", "http_timeout_s": 2.0}}, steps)
    return rows


class _Net(torch.nn.Module):
    """A small conv net: one training step is a few ms of real CPU work on a 4×3×64×64 batch."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(16, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _loop(s: Any, steps: int, *, pred_every: int, size: int) -> float:
    """Train ``steps`` steps and log to ``s``; returns the loop's wall time (finish() excluded)."""
    torch.manual_seed(0)
    net = _Net()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    x = torch.rand(4, 3, size, size)
    t0 = time.perf_counter()
    for step in range(steps):
        out = net(x).sigmoid()
        loss = torch.nn.functional.mse_loss(out, x, reduction="none").mean(dim=(1, 2, 3))
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
        if pred_every:
            s.log(step, out.detach() if step % pred_every == 0 else None, loss=loss.detach())
        else:
            s.log_scalars({"train/loss": float(loss.detach().mean()), "train/lr": 1e-3}, step=step)
    return time.perf_counter() - t0


def figure3(tmp: Path, quick: bool) -> list[dict]:
    import trackdiag
    from tests.support.servers import sqlite_store

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict] = []
    try:
        tiling = ["analyzer=[tiling,loss]", "analyzer.tiling.schedule.every=10"]
        cases = [("scalars_10k", 1000 if quick else 10_000, 0, 32, []),
                 ("tiling_every_10", 20 if quick else 100, 10, 128, tiling),
                 # the drawing budget alone (5 % of the run), without the 10 s floor for short runs
                 ("tiling_every_10_nofloor", 20 if quick else 100, 10, 128,
                  [*tiling, "worker.figure_wait_min_s=0", "worker.upload_wait_min_s=0"])]
        for label, steps, pred_every, size, overrides in cases:
            uri = sqlite_store(tmp / f"{label}.db")
            s = trackdiag.init(overrides=["backend=[mlflow]", *(overrides or ["analyzer=[loss]"])],
                               tracking_uri=uri, experiment="bench_finish", run_name=label,
                               out_dir=str(tmp / "out" / label), on_error="warn")
            loop = _loop(s, steps, pred_every=pred_every, size=size)
            t0 = time.perf_counter()
            summary = s.finish()
            finish = time.perf_counter() - t0
            note = f"{steps} steps, loop {loop:.1f} s, finish {finish:.2f} s, 1 torch thread, mlflow sqlite"
            rows += [row("log", f"{label}_finish_ratio", finish / loop, "ratio", note),
                     row("log", f"{label}_finish_s", finish, "s", note),
                     row("log", f"{label}_loop_s", loop, "s", note),
                     row("log", f"{label}_undelivered", summary.undelivered, "items", str(summary.failed)),
                     row("log", f"{label}_deferred_figures", summary.deferred, "figures",
                         "left to draw: their inputs are in the spool, sync draws and delivers them")]
    finally:
        torch.set_num_threads(threads)
    return rows


def figure4(tmp: Path, quick: bool) -> list[dict]:
    """What the background worker takes from the training process per step (CPU seconds of every thread
    but the training thread, while a loop of 30 ms steps logs the loss analyzer to the embedded MLflow store
    at the defaults), and how many metrics writes reach the store: both independent of the machine's load."""
    import trackdiag
    from tests.support.servers import sqlite_store
    from trackdiag.backends.mlflow import MlflowBackend

    calls = [0]
    original = MlflowBackend.log_metrics_many

    def counted(self: Any, batches: Any) -> None:
        calls[0] += 1
        original(self, batches)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    MlflowBackend.log_metrics_many = counted  # type: ignore[method-assign]
    try:
        s = trackdiag.init(overrides=["backend=[mlflow]", "analyzer=[loss]"], experiment="bench_worker",
                           tracking_uri=sqlite_store(tmp / "worker.db"), run_name="worker",
                           out_dir=str(tmp / "out" / "worker"), on_error="warn")
        s.log(0, loss=torch.rand(4) + 0.5, timesteps=torch.randint(0, 1000, (4,)))
        s.flush(timeout=120)  # the store is open: the steady state from here
        steps = 50 if quick else 200
        calls[0] = 0
        cpu0, main0 = time.process_time(), time.thread_time()
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            t = time.perf_counter()
            while time.perf_counter() - t < 0.03:  # a training step's compute (torch releases the GIL)
                torch.mm(torch.rand(96, 96), torch.rand(96, 96))
            s.log(step, loss=torch.rand(4) + 0.5, timesteps=torch.randint(0, 1000, (4,)))
        loop = time.perf_counter() - t0
        worker = (time.process_time() - cpu0) - (time.thread_time() - main0)
        s.finish()
    finally:
        MlflowBackend.log_metrics_many = original  # type: ignore[method-assign]
        torch.set_num_threads(threads)
    note = f"{steps} steps of 30 ms, loss analyzer, mlflow sqlite; loop {loop:.1f} s"
    return [row("log", "worker_cpu_ms_per_step", worker / steps * 1e3, "ms", note),
            row("log", "metrics_writes_per_100_steps", calls[0] * 100 / steps, "calls", note)]


def run(quick: bool = False) -> list[dict]:
    import logging

    logging.getLogger("trackdiag").setLevel(logging.ERROR)  # the "down" cases warn on purpose
    with tempfile.TemporaryDirectory(prefix="trackdiag_bench_log_") as d:
        tmp = Path(d)
        _measure(tmp, "warmup", {"local": {}}, 3)  # imports and first-call costs out of the figures
        rows = figure1(tmp, 5 if quick else 20)
        rows += figure2(tmp, 10 if quick else 30, quick)
        rows += figure3(tmp, quick)
        rows += figure4(tmp, quick)
    return rows


if __name__ == "__main__":
    alone = {"--worker": figure4, "--finish": figure3}  # one figure alone
    for flag, figure in alone.items():
        if flag in sys.argv:
            import logging

            logging.getLogger("trackdiag").setLevel(logging.ERROR)
            with tempfile.TemporaryDirectory(prefix="trackdiag_bench_log_") as d:
                for r in figure(Path(d), "--quick" in sys.argv):
                    print(f"{r['metric']:<34} {r['value']:>10.3f} {r['unit']:<6} {r['note']}")
            sys.exit(0)
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['metric']:<34} {r['value']:>10.3f} {r['unit']:<6} {r['note']}")
