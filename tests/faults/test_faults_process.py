"""Faults of the training process itself, produced for real in a child process: SIGKILL in the middle of a
run, an exit without ``finish()``, an uncaught exception, ``sys.exit(3)``. Each test counts the (key, step)
points that were logged against what arrived in the MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support.servers import sqlite_store
from trackdiag.backends.spool import iter_lines
from trackdiag.sync import main as sync_main

CHECKOUT = Path(__file__).resolve().parents[2]
KEY = "trackdiag/mean/mean"

CHILD = """
import sys, time, torch
sys.path.insert(0, {tests!r})
import trackdiag
from tests.support.probes import mean_config
s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]", "worker.spool_batch=4",
                   "worker.spool_batch_ms=50"], allow_external_targets=True, backend="mlflow",
                   tracking_uri={uri!r}, run_name="child", experiment="faults", out_dir={out!r})
log = open({progress!r}, "a", buffering=1)
for step in range({steps}):
    s.log(step, torch.rand(2, 3, 16, 16))
    s.log_scalars({{"note": f"step {{step}}"}}, step=step)  # a text value: a table append per step
    log.write(f"{{step}}\\n")
    time.sleep({sleep})
{ending}
"""


def run_child(tmp: Path, *, steps: int, ending: str, sleep: float = 0.0, wait: bool = True):
    uri = sqlite_store(tmp / "mlruns.db")
    progress = tmp / "progress.txt"
    script = CHILD.format(tests=str(CHECKOUT), uri=uri, out=str(tmp / "out"), progress=str(progress),
                          steps=steps, sleep=sleep, ending=textwrap.dedent(ending))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if wait:
        out, _ = proc.communicate(timeout=300)
        return uri, proc.returncode, out, progress
    return uri, proc, None, progress


def the_run(uri: str):
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("faults").experiment_id])
    return client, run


def points(client, run_id: str, key: str = KEY) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def table_steps(client, run_id: str) -> list[int]:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "tables/texts.json", tmp)
        except Exception:
            return []
        data = json.loads(Path(path).read_text())
    col = data["columns"].index("step")
    return sorted(int(row[col]) for row in data["data"])


@pytest.mark.slow
def test_sigkill_mid_run_then_sync_delivers_every_step_once(tmp_path):
    uri, proc, _, progress = run_child(tmp_path, steps=100_000, ending="", sleep=0.01, wait=False)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        logged = progress.read_text().split() if progress.exists() else []
        if len(logged) >= 60:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no finish(), no atexit, no flush: the process is gone
    proc.wait(30)
    logged = [int(x) for x in progress.read_text().split()]

    spools = list((tmp_path / "out" / "spool").iterdir())
    assert len(spools) == 1
    # what the journal had committed when the process died (how far it got depends on the machine's load,
    # so the test reads it instead of assuming a lag)
    committed = sorted({int(line["payload"]["step"]) for line in iter_lines(spools[0])
                        if line.get("op") == "put" and line.get("kind") == "metrics"
                        and KEY in line["payload"].get("metrics", {})})
    assert sync_main([str(spools[0])]) == 0  # everything in the spool was delivered
    assert sync_main([str(spools[0])]) == 0  # a second sync sends nothing twice

    client, run = the_run(uri)
    arrived = points(client, run.info.run_id)
    assert len(arrived) == len(set(arrived))  # exactly once
    assert arrived == committed  # every committed step arrived, nothing else
    missing = sorted(set(logged) - set(arrived))
    # only the newest steps, those after the last committed batch, are lost: no hole
    assert not missing or min(missing) > max(arrived), (missing, arrived[-5:])
    assert len(arrived) >= len(logged) // 2, (len(arrived), len(logged))  # the journal kept up, roughly
    tables = table_steps(client, run.info.run_id)
    assert len(tables) == len(set(tables))  # table rows once each as well
    assert set(tables) >= {s for s in arrived if s < arrived[-1]}


@pytest.mark.slow  # a training subprocess: 29 s on a loaded 2-core box
def test_exit_without_finish_flushes_before_mlflow_teardown(tmp_path):
    uri, code, out, progress = run_child(tmp_path, steps=6, ending="# no finish()")
    assert code == 0, out
    client, run = the_run(uri)
    assert points(client, run.info.run_id) == list(range(6))
    assert table_steps(client, run.info.run_id) == list(range(6))  # 6 of 6 table appends arrived
    assert run.info.status == "FINISHED"
    assert not (tmp_path / "out" / "spool").exists()  # nothing left behind


@pytest.mark.slow  # a training subprocess per case: 25 s each on a loaded box
@pytest.mark.parametrize("ending,code", [("raise RuntimeError('boom')", 1), ("sys.exit(3)", 3)],
                         ids=["exception", "sys_exit_3"])
def test_a_failed_run_is_marked_failed_and_keeps_every_step(tmp_path, ending, code):
    uri, rc, out, _ = run_child(tmp_path, steps=6, ending=ending)
    assert rc == code, out
    client, run = the_run(uri)
    assert run.info.status == "FAILED"
    assert points(client, run.info.run_id) == list(range(6))
    assert table_steps(client, run.info.run_id) == list(range(6))
