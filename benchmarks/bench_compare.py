"""compare_ckpts at scale: 100 runs × 20 metrics × 50 checkpoints in an MLflow sqlite store.

The store (100 000 metric rows) is made once with ``log_batch`` (one call of 1000 metrics per run) and
cached under the system temp dir (``trackdiag_bench/compare_<version>.db``); later runs reuse it.

Rows:
* ``read_batched_100runs``: reading every history of the 100 runs, one SQL query per run (the default);
* ``read_per_key_20runs`` / ``read_batched_20runs``: the per-key ``get_metric_history`` fallback against the
  batched read on the same 20 runs (the ratio is the point);
* ``table_rank_5000rows``: build + judge + rank the table for ``steps=all`` (5000 rows × 20 metrics);
* ``compare_no_outputs``: ``compare()`` end to end, reading included, CSV only;
* ``compare_full_report``: ``compare()`` with every format (CSV, JSON, Markdown, HTML, PDF) and 20 trend
  plots (100 lines each);
* ``compare_publish_mlflow``: the same plus the "comparison" run in MLflow (table, 20 images, artifacts).
* ``calibration_loop_10M``: how fast this machine is right now (a shared machine under load is slower).
All in one process after a warm-up (imports excluded); ``cli_cold_start`` is one ``python -m
trackdiag.compare_ckpts`` process (CSV only), imports included. Every timing has a wall row and a ``_cpu``
row (CPU seconds of the process): on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import row

N_RUNS, N_METRICS, N_STEPS = 100, 20, 50
NAMES = [
    "E2f_over_Ef",
    "Ehalf_over_Ef",
    "axis_ratio_at_f",
    "shift_mse_dx1",
    "shift_mse_dy1",
    "resize_mse_downUp",
    "band_row_frac_max",
    "band_col_frac_max",
    "band_row_max_run",
    "band_col_max_run",
    "band_score",
    "band_max_run",
    "fundamental_radius_bin",
    "acf_first_peak_radius_bin",
    "fundamental_period_px",
    "band_base_period_px",
    "resize_delta_r",
    "checker_score",
    "moire_score",
    "cross_score",
]
KEYS = [f"trackdiag/tiling/{n}" for n in NAMES[:N_METRICS]]
EXPERIMENT = "bench_compare"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _store_path() -> Path:
    import mlflow

    folder = Path(tempfile.gettempdir()) / "trackdiag_bench"
    folder.mkdir(exist_ok=True)
    return folder / f"compare_v2_{N_RUNS}x{N_METRICS}x{N_STEPS}_mlflow{mlflow.__version__}.db"


def make_store(path: Path) -> float:
    """Create the store with log_batch; returns the seconds it took (0 when the cached one is used)."""
    marker = path.with_suffix(".json")
    if path.is_file() and marker.is_file():
        return 0.0
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    client = MlflowClient(f"sqlite:///{path}")
    # An artifact location of its own (never ./mlruns of whatever folder the benchmark runs in).
    exp = client.create_experiment(EXPERIMENT, artifact_location=str(path.with_suffix("")) + "_artifacts")
    rng = np.random.default_rng(0)
    steps = np.arange(1, N_STEPS + 1) * 100
    for r in range(N_RUNS):
        run = client.create_run(exp, run_name=f"run-{r:03d}", tags={"lr": f"{1e-4 * (1 + r % 5):.0e}"})
        walk = np.abs(0.5 + np.cumsum(rng.normal(0, 0.02, (N_STEPS, N_METRICS)), axis=0))
        ts = int(time.time() * 1000)
        metrics = [
            Metric(key, float(walk[i, j]), ts + i, int(steps[i]))
            for j, key in enumerate(KEYS)
            for i in range(N_STEPS)
        ]
        for start in range(0, len(metrics), 1000):
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000], synchronous=True)
        client.set_terminated(run.info.run_id)
    marker.write_text(json.dumps({"runs": N_RUNS, "metrics": N_METRICS, "steps": N_STEPS}))
    return time.perf_counter() - t0


def measure(fn, *, repeat: int = 3, warmup: int = 1) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()``. On a shared machine the CPU time is the steadier figure."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def run(quick: bool = False) -> list[dict]:
    from trackdiag.compare.metrics import build_specs
    from trackdiag.compare.ranking import rank
    from trackdiag.compare.sources import read_mlflow
    from trackdiag.compare.table import build_table
    from trackdiag.compare_ckpts import compare

    path = _store_path()
    made = make_store(path)
    uri = f"sqlite:///{path}"
    repeat = 1 if quick else 3
    out = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    note = f"{N_RUNS} runs x {N_METRICS} metrics x {N_STEPS} steps, sqlite"
    rows = []

    def add(metric: str, timing: tuple[float, float], what: str) -> None:
        rows.append(row("compare", metric, timing[0], "s", what + " (wall)"))
        rows.append(row("compare", metric + "_cpu", timing[1], "s", what + " (CPU of this process)"))

    def loop() -> None:
        total = 0
        for i in range(10_000_000):
            total += i

    add("calibration_loop_10M", measure(loop, repeat=1, warmup=0),
        "a plain Python loop of 10M additions, ~0.5 s on an idle desktop core: scale the rest by it")
    if made:
        rows.append(row("compare", "make_store_log_batch", made, "s", note + " (one log_batch per run)"))

    def read(batched: bool, max_runs: int):
        return read_mlflow(tracking_uri=uri, experiment=EXPERIMENT, max_runs=max_runs,
                           select=lambda per_run: KEYS, batched=batched)

    points = sum(len(s.steps) for r in read(True, N_RUNS) for s in r.metrics.values())
    assert points == N_RUNS * N_METRICS * N_STEPS, points
    add("read_batched_100runs", measure(lambda: read(True, N_RUNS), repeat=repeat),
        note + "; one SQL query per run")
    fast20 = measure(lambda: read(True, 20), repeat=repeat)
    slow20 = measure(lambda: read(False, 20), repeat=1, warmup=0)
    add("read_batched_20runs", fast20, "20 runs x 20 metrics, one query per run")
    add("read_per_key_20runs", slow20, "20 runs x 20 metrics, get_metric_history per key: 400 calls")
    rows.append(row("compare", "per_key_over_batched", slow20[0] / fast20[0], "x", "same 20 runs, wall"))

    runs = read(True, N_RUNS)
    specs = build_specs(KEYS, goals={}, default_goal="min", weights={}, tolerances={}, limits={},
                        available=KEYS)
    add("table_rank_5000rows", measure(lambda: rank(build_table(runs, specs, steps="all", tolerance=50)),
                                       repeat=repeat), "build + judge + rank + reasons, steps=all")

    base = [f"mlflow.tracking_uri={uri}", f"mlflow.experiment={EXPERIMENT}", "steps=all",
            f"output.dir={out / 'r'}", "baseline=run-000@100", f"metrics=[{','.join(NAMES)}]"]
    fast = base + ["output.formats=[csv]", "output.plots=false", "publish.to=none"]
    add("compare_no_outputs", measure(lambda: compare(overrides=fast), repeat=repeat),
        "compare() end to end, steps=all (5000 rows), CSV only")
    full = base + ["publish.to=none"]
    add("compare_full_report", measure(lambda: compare(overrides=full), repeat=1 if quick else 2),
        "compare() with CSV+JSON+MD+HTML+PDF and 20 trend plots of 100 runs")
    if not quick:
        copy = out / "copy.db"
        shutil.copy(path, copy)
        with sqlite3.connect(copy) as db:  # this copy's comparison run keeps its artifacts in `out` (removed)
            db.execute("UPDATE experiments SET artifact_location = ?", (str(out / "artifacts"),))
        pub = [f"mlflow.tracking_uri=sqlite:///{copy}", *base[1:], "publish.to=mlflow"]
        add("compare_publish_mlflow", measure(lambda: compare(overrides=pub), repeat=1, warmup=0),
            "full report + the comparison run in MLflow (table, 20 images, artifacts)")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trackdiag.compare_ckpts", *fast], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    add("cli_cold_start", (time.perf_counter() - w0, cpu),
        "python -m trackdiag.compare_ckpts, imports included, CSV only")
    shutil.rmtree(out, ignore_errors=True)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['metric']:<32} {r['value']:>10.3f} {r['unit']:<3} {r['note']}")
