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
trackdiag.compare_ckpts`` process (CSV only), imports included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import row, time_call

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
    return folder / f"compare_{N_RUNS}x{N_METRICS}x{N_STEPS}_mlflow{mlflow.__version__}.db"


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
    exp = client.create_experiment(EXPERIMENT)
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


def run(quick: bool = False) -> list[dict]:
    from trackdiag.compare.sources import read_mlflow
    from trackdiag.compare_ckpts import compare

    path = _store_path()
    made = make_store(path)
    uri = f"sqlite:///{path}"
    repeat = 1 if quick else 3
    out = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    rows = []
    note = f"{N_RUNS} runs x {N_METRICS} metrics x {N_STEPS} steps, sqlite"
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    rows.append(
        row(
            "compare",
            "calibration_loop_10M",
            time.perf_counter() - t0,
            "s",
            "a plain Python loop of 10M additions (about 0.5 s on an idle desktop core): scale the rest",
        )
    )
    if made:
        rows.append(row("compare", "make_store_log_batch", made, "s", note + " (one log_batch per run)"))

    def read(batched: bool, max_runs: int):
        return read_mlflow(
            tracking_uri=uri,
            experiment=EXPERIMENT,
            max_runs=max_runs,
            select=lambda per_run: KEYS,
            batched=batched,
        )

    assert (
        sum(len(s.steps) for r in read(True, N_RUNS) for s in r.metrics.values())
        == N_RUNS * N_METRICS * N_STEPS
    )
    t_batched = time_call(lambda: read(True, N_RUNS), repeat=repeat)
    rows.append(row("compare", "read_batched_100runs", t_batched, "s", note + "; one SQL query per run"))
    t_fast20 = time_call(lambda: read(True, 20), repeat=repeat)
    t_slow20 = time_call(lambda: read(False, 20), repeat=1, warmup=0)
    rows.append(row("compare", "read_batched_20runs", t_fast20, "s", "20 runs x 20 metrics"))
    rows.append(row("compare", "read_per_key_20runs", t_slow20, "s", "get_metric_history per key: 400 calls"))
    rows.append(row("compare", "per_key_over_batched", t_slow20 / t_fast20, "x", "same 20 runs"))

    from trackdiag.compare.metrics import build_specs
    from trackdiag.compare.ranking import rank
    from trackdiag.compare.table import build_table

    runs = read(True, N_RUNS)
    specs = build_specs(
        KEYS, goals={}, default_goal="min", weights={}, tolerances={}, limits={}, available=KEYS
    )
    t_table = time_call(lambda: rank(build_table(runs, specs, steps="all", tolerance=50)), repeat=repeat)
    rows.append(row("compare", "table_rank_5000rows", t_table, "s", "build + judge + rank, steps=all"))

    base = [
        f"mlflow.tracking_uri={uri}",
        f"mlflow.experiment={EXPERIMENT}",
        "steps=all",
        f"output.dir={out / 'r'}",
        "baseline=run-000@100",
    ]
    fast = base + ["output.formats=[csv]", "output.plots=false", "publish.to=none"]
    t_none = time_call(lambda: compare(overrides=fast), repeat=repeat)
    rows.append(row("compare", "compare_no_outputs", t_none, "s", note + "; steps=all (5000 rows), CSV only"))
    full = base + ["publish.to=none"]
    t_full = time_call(lambda: compare(overrides=full), repeat=repeat, warmup=1)
    rows.append(
        row("compare", "compare_full_report", t_full, "s", "CSV+JSON+MD+HTML+PDF, 20 trend plots x 100 runs")
    )
    if not quick:
        copy = out / "copy.db"
        shutil.copy(path, copy)
        pub = [f"mlflow.tracking_uri=sqlite:///{copy}", *base[1:], "publish.to=mlflow"]
        t_pub = time_call(lambda: compare(overrides=pub), repeat=1, warmup=0)
        rows.append(
            row("compare", "compare_publish_mlflow", t_pub, "s", "full report + comparison run in MLflow")
        )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trackdiag.compare_ckpts", *fast],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    rows.append(
        row(
            "compare",
            "cli_cold_start",
            time.perf_counter() - t0,
            "s",
            "python -m, imports included, CSV only",
        )
    )
    shutil.rmtree(out, ignore_errors=True)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['metric']:<28} {r['value']:>10.3f} {r['unit']:<3} {r['note']}")
