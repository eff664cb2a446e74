"""compare_ckpts at scale: 1,000 runs × 20 metrics × 50 checkpoints in an MLflow sqlite store, and the same
runs on an ``mlflow server`` backed by PostgreSQL (started here on 127.0.0.1, when PostgreSQL and psycopg2
are installed). ``--quick`` is the tests' smoke form: 20 runs, the sqlite reading rows, the table and
``compare_no_outputs`` only (the server, the report formats and the CLI have their own tests).

Reading rows (the point of the issue): ``read_bulk_sqlite`` / ``read_bulk_server`` (one bulk read per key
and 100 runs) against ``read_naive_sqlite`` / ``read_naive_server``: the script a user would write, one
``get_metric_history`` per run and key; ``naive_over_bulk_*`` and ``server_over_sqlite`` are the ratios.
``read_digest_server``: the same runs from their history digests (the server's store is written with them,
by the MLflow backend's own writer), with ``naive_over_digest_server`` and ``digest_server_over_sqlite``.
``--runs N`` another store size, ``--read-only`` only these rows, ``--naive-runs K`` the naive script timed on
K runs and scaled to the store (it costs the same per run).
The server runs with MLflow's default 4 workers. Its processes' CPU seconds are reported too
(``*_server_cpu``, and the ratios of client + server CPU, ``*_cpu``): MLflow's store spends ~20-40 µs of
CPU per point returned, so on a shared machine the wall time of a server read is mostly waiting for cores.

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

N_RUNS, N_METRICS, N_STEPS = 1000, 20, 50
QUICK_RUNS = 20  # the quick form (tests/test_benchmarks.py) stays short; the docs table used 40
SERVER_WORKERS = 4  # MLflow's default for `mlflow server`
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


def _store_path(n_runs: int = N_RUNS) -> Path:
    import mlflow

    folder = Path(tempfile.gettempdir()) / "trackdiag_bench"
    folder.mkdir(exist_ok=True)
    return folder / f"compare_v3_{n_runs}x{N_METRICS}x{N_STEPS}_mlflow{mlflow.__version__}.db"


def make_store(path: Path, n_runs: int = N_RUNS, uri: str = "") -> float:
    """Create the store with log_batch; returns the seconds it took (0 when the cached one is used).
    ``uri``: fill that store (a server) instead of the sqlite file at ``path``."""
    marker = path.with_suffix(".json")
    if not uri and path.is_file() and marker.is_file():
        return 0.0
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from trackdiag.backends.mlflow_digest import DigestRecorder, log_digest

    t0 = time.perf_counter()
    if not uri:
        path.unlink(missing_ok=True)
    client = MlflowClient(uri or f"sqlite:///{path}")
    # An artifact location of its own (never ./mlruns of whatever folder the benchmark runs in); a server
    # keeps the artifacts it serves (its default, how a team server runs).
    exp = client.create_experiment(EXPERIMENT, artifact_location=None if uri else
                                   str(path.with_suffix("")) + "_artifacts")
    rng = np.random.default_rng(0)
    steps = np.arange(1, N_STEPS + 1) * 100
    walks = [np.abs(0.5 + np.cumsum(rng.normal(0, 0.02, (N_STEPS, N_METRICS)), axis=0))
             for _ in range(n_runs)]

    def one(r: int) -> None:
        run = client.create_run(exp, run_name=f"run-{r:03d}", tags={"lr": f"{1e-4 * (1 + r % 5):.0e}"})
        walk = walks[r]
        ts = int(time.time() * 1000)
        metrics = [
            Metric(key, float(walk[i, j]), ts + i, int(steps[i]))
            for j, key in enumerate(KEYS)
            for i in range(N_STEPS)
        ]
        for start in range(0, len(metrics), 1000):
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000], synchronous=True)
        if uri:  # the history digest, written by the MLflow backend's own writer from what was delivered
            recorder = DigestRecorder()
            recorder.add((m.key, m.step, m.timestamp, m.value) for m in metrics)
            log_digest(client, run.info.run_id, recorder, tracking_uri=uri)
        client.set_terminated(run.info.run_id)

    if uri:  # a server: four writers at once (its four workers), as a team's trainings write
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=SERVER_WORKERS) as pool:
            list(pool.map(one, range(n_runs)))
    else:
        for r in range(n_runs):
            one(r)
    if not uri:
        marker.write_text(json.dumps({"runs": n_runs, "metrics": N_METRICS, "steps": N_STEPS}))
    return time.perf_counter() - t0


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``pgid`` (Linux ``/proc``; 0
    elsewhere or for ``pgid`` 0)."""
    import os

    if not pgid or not Path("/proc").is_dir():
        return 0.0
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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


def run(quick: bool = False, *, runs: int | None = None, read_only: bool = False,
        naive_runs: int | None = None) -> list[dict]:
    """``runs``: another store size; ``read_only``: only the reading rows; ``naive_runs``: time the naive
    script on that many runs and scale it linearly to the store (its calls are per run: 20 per run)."""
    from trackdiag.compare.metrics import build_specs
    from trackdiag.compare.ranking import rank
    from trackdiag.compare.sources import read_mlflow
    from trackdiag.compare.table import build_table
    from trackdiag.compare_ckpts import compare

    n_runs = runs or (QUICK_RUNS if quick else N_RUNS)
    n_naive = min(n_runs, naive_runs or n_runs)
    scale = n_runs / n_naive
    path = _store_path(n_runs)
    made = make_store(path, n_runs)
    uri = f"sqlite:///{path}"
    repeat = 1 if quick else 3
    out = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    note = f"{n_runs} runs x {N_METRICS} metrics x {N_STEPS} steps"
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

    def read(store: str, batched: bool = True, digests: bool = False, stats: dict | None = None):
        return read_mlflow(tracking_uri=store, experiment=EXPERIMENT, max_runs=n_runs,
                           select=lambda per_run: KEYS, batched=batched, digests=digests, stats=stats)

    def naive(store: str) -> int:
        """The script a user would write: every run, every key, get_metric_history."""
        from mlflow import MlflowClient

        client = MlflowClient(store)
        exp = client.get_experiment_by_name(EXPERIMENT)
        points = 0
        for r in client.search_runs([exp.experiment_id], max_results=n_naive):
            for key in KEYS:
                points += len(client.get_metric_history(r.info.run_id, key))
        return points

    def reading(kind: str, store: str, server_pid: int = 0) -> tuple[float, float]:
        """Bulk and naive reads of ``store``; returns the bulk read's (wall, CPU) seconds, CPU counting the
        server's processes (``server_pid``'s process group) too: on a shared machine the wall time of a
        server read is mostly waiting for a core."""
        points = sum(len(s.steps) for r in read(store) for s in r.metrics.values())
        assert points == n_runs * N_METRICS * N_STEPS, points
        how = "one SELECT per 500 runs" if kind == "sqlite" else "bulk requests, one per key and 100 runs"
        s0 = _group_cpu(server_pid)
        bulk = measure(lambda: read(store), repeat=repeat)
        srv_bulk = (_group_cpu(server_pid) - s0) / (repeat + 1)  # the warm-up read included
        add(f"read_bulk_{kind}", bulk, note + f", {kind}; {how}")
        s0 = _group_cpu(server_pid)
        slow = measure(lambda: naive(store), repeat=1, warmup=0)
        srv_slow = (_group_cpu(server_pid) - s0) * scale
        slow = (slow[0] * scale, slow[1] * scale)
        how_naive = f"; measured on {n_naive} runs, scaled x{scale:g}" if scale != 1 else ""
        add(f"read_naive_{kind}", slow, note + f", {kind}; get_metric_history per run and key{how_naive}")
        rows.append(row("compare", f"naive_over_bulk_{kind}", slow[0] / bulk[0], "x", "wall, target >= 10"))
        if server_pid:
            stats: dict = {}
            got = read(store, digests=True, stats=stats)
            assert sum(len(s.steps) for r in got for s in r.metrics.values()) == n_runs * N_METRICS * N_STEPS
            assert stats["digest_runs"] == n_runs and stats["bulk_calls"] == 0, stats
            s0 = _group_cpu(server_pid)
            dig = measure(lambda: read(store, digests=True), repeat=repeat)
            srv_dig = (_group_cpu(server_pid) - s0) / (repeat + 1)
            add(f"read_digest_{kind}", dig, note + f", {kind}; run search + one history digest per run")
            rows.append(row("compare", f"read_digest_{kind}_server_cpu", srv_dig, "s",
                            "CPU seconds of the server's processes per digest read"))
            rows.append(row("compare", f"naive_over_digest_{kind}", slow[0] / dig[0], "x",
                            "wall, target >= 10"))
            rows.append(row("compare", f"naive_over_digest_{kind}_cpu",
                            (slow[1] + srv_slow) / (dig[1] + srv_dig), "x", "CPU: client + server"))

            rows.append(row("compare", f"read_bulk_{kind}_server_cpu", srv_bulk, "s",
                            "CPU seconds of the server's processes per bulk read"))
            rows.append(row("compare", f"read_naive_{kind}_server_cpu", srv_slow, "s",
                            "CPU seconds of the server's processes for the naive read"))
            cpu_ratio = (slow[1] + srv_slow) / (bulk[1] + srv_bulk)
            rows.append(row("compare", f"naive_over_bulk_{kind}_cpu", cpu_ratio, "x", "CPU: client + server"))
            return bulk[0], bulk[1] + srv_bulk, dig[0], dig[1] + srv_dig
        return bulk[0], bulk[1] + srv_bulk, bulk[0], bulk[1] + srv_bulk

    t_sqlite, c_sqlite, _, _ = reading("sqlite", uri)
    from trackdiag.testing import postgres

    if not quick and postgres.available() is None:  # the smoke form (tests) skips the server's start-up
        with postgres.Postgres() as pg:
            # MLflow's default worker count: how a team runs its server (the bulk read keeps them busy)
            with postgres.MlflowOnPostgres(pg.create_db("mlflow"), workers=SERVER_WORKERS) as server:
                filled = make_store(path, n_runs, uri=server.url)
                rows.append(row("compare", "make_server_store", filled, "s", note + " into the server"))
                pid = server.proc.pid if server.proc is not None else 0
                t_server, c_server, t_dig, c_dig = reading("server", server.url, pid)
        rows.append(row("compare", "server_over_sqlite", t_server / t_sqlite, "x",
                        f"bulk read, wall, {SERVER_WORKERS} server workers"))
        rows.append(row("compare", "server_over_sqlite_cpu", c_server / c_sqlite, "x",
                        "bulk read, CPU of client + server (what the server's cores must absorb)"))
        rows.append(row("compare", "digest_server_over_sqlite", t_dig / t_sqlite, "x",
                        f"digest read, wall, {SERVER_WORKERS} server workers; target <= 3"))
        rows.append(row("compare", "digest_server_over_sqlite_cpu", c_dig / c_sqlite, "x",
                        "digest read, CPU of client + server"))
    if read_only:
        return rows

    runs = read(uri)
    specs = build_specs(KEYS, goals={}, default_goal="min", weights={}, tolerances={}, limits={},
                        available=KEYS)
    add("table_rank_5000rows", measure(lambda: rank(build_table(runs, specs, steps="all", tolerance=50)),
                                       repeat=repeat),
                                       f"build + judge + rank + reasons, steps=all ({n_runs * N_STEPS} rows)")

    base = [f"mlflow.tracking_uri={uri}", f"mlflow.experiment={EXPERIMENT}", "steps=all",
            f"output.dir={out / 'r'}", "baseline=run-000@100", f"metrics=[{','.join(NAMES)}]",
            f"mlflow.max_runs={n_runs}"]
    fast = base + ["output.formats=[csv]", "output.plots=false", "publish.to=none"]
    add("compare_no_outputs", measure(lambda: compare(overrides=fast), repeat=repeat),
        "compare() end to end (tiered ranking, since when), steps=all, CSV only")
    if quick:  # the smoke form stops here: the full report, the publishing and the CLI have their own tests
        shutil.rmtree(out, ignore_errors=True)
        return rows
    full = base + ["publish.to=none"]
    add("compare_full_report", measure(lambda: compare(overrides=full), repeat=2),
        "compare() with CSV+JSON+MD+HTML+PDF and 20 trend plots of 100 runs")
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
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None, help="store size (runs); default 1000, quick 20")
    parser.add_argument("--read-only", action="store_true", help="only the reading rows")
    parser.add_argument("--naive-runs", type=int, default=None,
                        help="time the naive script on this many runs and scale it to the store")
    args = parser.parse_args()
    for r in run(quick=args.quick, runs=args.runs, read_only=args.read_only, naive_runs=args.naive_runs):
        print(f"{r['metric']:<32} {r['value']:>10.3f} {r['unit']:<3} {r['note']}")
