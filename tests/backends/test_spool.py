"""Faults: a tracker that is down, slow, refusing or hung never blocks or breaks the training loop, and
nothing is lost: what was not delivered waits in the append-only spool and is replayed automatically or with
``python -m trackdiag.sync``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import trackdiag
from tests.support.probes import BlockingBackend, batch, mean_config
from trackdiag.backends.local import read_metrics
from trackdiag.backends.spool import Spool, find_spools, iter_lines
from trackdiag.sync import sync

KEY = "trackdiag/mean/mean"
CHECKOUT = Path(__file__).resolve().parents[2]


def start(tmp: Path, switch: Path, *, backends=("flaky", "local"), on_error="warn", overrides=(), **flaky):
    config = mean_config()
    config["backend"] = {}
    for name in backends:
        if name == "flaky":
            config["backend"]["flaky"] = {"_target_": "tests.support.flaky.FlakyBackend",
                                          "root": str(tmp / "flaky"), "switch": str(switch), **flaky}
        else:
            config["backend"][name] = {}
    return trackdiag.init(config=config, overrides=["analyzer=[]", *overrides], allow_external_targets=True,
                          run_name="r", on_error=on_error, out_dir=str(tmp / "out"))


def metric_lines(run_dir: Path) -> list[int]:
    """Steps in the order the backend received them."""
    return [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


# -- the spool itself ---------------------------------------------------------------------------------------
def test_spool_round_trip_ack_reject_and_reload(tmp_path):
    spool = Spool.for_run(tmp_path)
    assert not spool.exists and spool.undelivered() == 0  # nothing written before the first commit
    spool.describe("mlflow", target="trackdiag.backends.mlflow.MlflowBackend", params={"run_id": "abc"},
                   run={"experiment": "e"})
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    a = spool.put("mlflow", "metrics",
                  {"step": 3, "timestamp_ms": 7, "metrics": {"x": float("nan"), "y": 1.5}})
    b = spool.put("mlflow", "image", {"step": 3, "key": "trackdiag/a/img", "image": img}, error="down")
    c = spool.put("wandb", "table", {"step": 4, "key": "t", "rows": [{"a": 1, "b": None}]}, rejected="400")
    assert (a, b, c) == (1, 2, 3) and spool.undelivered() == 3
    assert [e.id for e in spool.pending("mlflow")] == [1, 2]
    assert [e.id for e in spool.pending(include_rejected=False)] == [1, 2]
    assert spool.not_durable() == 3 and not spool.exists  # buffered until the commit (write + fsync)
    assert spool.commit() and spool.not_durable() == 0
    spool.ack(a)
    spool.close()

    again = Spool.open(spool.path / "spool.jsonl")
    assert again.undelivered() == 2 and again.backends() == ["mlflow", "wandb"]
    entry = again.pending("mlflow")[0]
    np.testing.assert_array_equal(again.load(entry)["image"], img)
    assert again.pending("wandb")[0].rejected == "400"
    assert again.meta("mlflow")["params"] == {"run_id": "abc"}
    # ids keep increasing after a reload; a torn last line (crash while writing) is skipped
    with open(again.path / "spool.jsonl", "a") as fh:
        fh.write('{"op": "put", "id": 9')
    third = Spool(again.path)
    assert third.put("mlflow", "metrics", {"step": 5, "timestamp_ms": 1, "metrics": {"x": 2.0}}) == 4
    third.close()
    assert find_spools(tmp_path) == [spool.path]
    ops = [line["op"] for line in iter_lines(spool.path)]
    assert ops[0] == "meta" and ops.count("put") == 4 and ops.count("ack") == 1  # append-only journal
    nan_line = next(line for line in iter_lines(spool.path) if line.get("id") == 1)
    assert math.isnan(nan_line["payload"]["metrics"]["x"])


# -- the worker and the session ----------------------------------------------------------------------------
def test_outage_is_spooled_and_replayed_in_order_once(tmp_path):
    switch = tmp_path / "down"
    s = start(tmp_path, switch)
    preds = {step: batch(seed=step) for step in range(15)}
    for step in range(5):
        s.log(step, preds[step])
    s.flush(30)
    switch.touch()  # the tracker goes down
    for step in range(5, 10):
        s.log(step, preds[step])
    s.flush(30)
    assert s.worker.undelivered() >= 5  # waiting in the spool, not lost
    switch.unlink()  # back
    time.sleep(0.3)  # past retry_s
    for step in range(10, 15):
        s.log(step, preds[step])
    summary = s.finish()
    expected = {step: float(p.mean(dim=(1, 2, 3)).mean()) for step, p in preds.items()}
    flaky = read_metrics(tmp_path / "flaky" / "r")[KEY]
    assert flaky == pytest.approx(expected)
    # every step exactly once, and in order: the spool was replayed before anything newer was sent
    assert metric_lines(tmp_path / "flaky" / "r") == list(range(15))
    assert len(list((tmp_path / "flaky" / "r" / "images").rglob("*.png"))) == 15
    assert read_metrics(tmp_path / "out" / "r")[KEY] == pytest.approx(expected)  # the healthy one: unaffected
    assert summary.undelivered == 0 and s.worker.stats.replayed["flaky"] >= 10
    assert summary.failed  # the outage is reported...
    assert "undelivered" not in str(summary)  # ...but nothing is left undelivered


def test_down_at_start_then_back(tmp_path):
    switch = tmp_path / "down"
    switch.touch()
    s = start(tmp_path, switch)
    for step in range(3):
        s.log(step, batch(seed=step))
    s.flush(30)
    switch.unlink()
    summary = s.finish()  # the last replay attempt at close delivers everything
    assert summary.undelivered == 0
    assert metric_lines(tmp_path / "flaky" / "r") == [0, 1, 2]
    params = json.loads((tmp_path / "flaky" / "r" / "params.json").read_text())
    assert params["analyzer.mean.schedule"] == "every step"


def test_still_down_at_finish_is_reported_and_sync_delivers_it_later(tmp_path):
    switch = tmp_path / "down"
    s = start(tmp_path, switch)
    s.log(0, batch(seed=0))
    s.flush(30)
    switch.touch()
    for step in range(1, 4):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert summary.undelivered == 3 * 2 + 1  # metrics + image per step, and the close
    assert summary.spool and Path(summary.spool).is_dir()
    text = str(summary)
    assert f"python -m trackdiag.sync {summary.spool}" in text and "undelivered" in text
    assert metric_lines(tmp_path / "flaky" / "r") == [0]
    assert not (tmp_path / "flaky" / "r" / "status.json").exists()

    # still down: sync keeps everything and says so
    assert not sync(summary.spool, allow_external=True).ok
    switch.unlink()
    # The documented command, in a fresh process (the backend class is rebuilt from the spool's description).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHECKOUT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "trackdiag.sync", summary.spool, "--allow-external-targets"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "flaky: 7 items delivered" in proc.stdout
    assert metric_lines(tmp_path / "flaky" / "r") == [0, 1, 2, 3]
    assert json.loads((tmp_path / "flaky" / "r" / "status.json").read_text()) == {"status": "FINISHED"}
    assert Spool.open(summary.spool).undelivered() == 0
    assert sync(summary.spool, allow_external=True).delivered == {}  # a second sync sends nothing twice


def test_refused_items_do_not_stop_the_rest_and_are_kept(tmp_path):
    switch = tmp_path / "refuse"
    switch.touch()
    s = start(tmp_path, switch, failure="permanent", kinds=["image"])
    for step in range(3):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert metric_lines(tmp_path / "flaky" / "r") == [0, 1, 2]  # metrics went through
    assert summary.undelivered == 3 and summary.failed == {"flaky:image": 3}
    spool = Spool.open(summary.spool)
    assert [e.kind for e in spool.pending()] == ["image"] * 3
    assert all(e.rejected and "planted refusal" in e.rejected for e in spool.pending())
    spool.close()
    switch.unlink()  # the cause is fixed: sync retries refused items too
    assert sync(summary.spool, allow_external=True).ok
    assert len(list((tmp_path / "flaky" / "r" / "images").rglob("*.png"))) == 3


def test_a_backend_that_cannot_be_configured_is_disabled_and_everything_is_kept(tmp_path):
    switch = tmp_path / "bad"
    switch.touch()
    s = start(tmp_path, switch, failure="permanent", kinds=["open"])
    for step in range(3):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert summary.failed == {"flaky:open": 1}  # tried once, not hammered
    assert summary.undelivered == 2 + 3 * 2 + 1  # params, config.yaml, 3 × (metrics, image), close
    assert read_metrics(tmp_path / "out" / "r")[KEY].keys() == {0, 1, 2}  # the other backend is unaffected
    switch.unlink()
    assert sync(summary.spool, allow_external=True).ok
    assert metric_lines(tmp_path / "flaky" / "r") == [0, 1, 2]


def test_log_never_waits_for_a_hung_tracker(tmp_path):
    """Every log() returns while the tracker is still stuck in its first call: a log() that waited for it
    could not return before ``release`` is set (no timing involved)."""
    import threading

    BlockingBackend.release.clear()
    BlockingBackend.entered.clear()
    config = {**mean_config(), "backend": {"blocking": {"_target_": "tests.support.probes.BlockingBackend",
                                                         "root": str(tmp_path / "blocking")}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True, run_name="w",
                       out_dir=str(tmp_path / "out"))
    try:
        s.log(0, batch(seed=0))
        assert BlockingBackend.entered.wait(30)  # the worker is now stuck inside the tracker
        loop = threading.Thread(target=lambda: [s.log(step, batch(seed=step)) for step in range(1, 20)])
        loop.start()
        loop.join(50)  # the tracker holds for up to 60 s
        assert not loop.is_alive() and not BlockingBackend.release.is_set()
    finally:
        BlockingBackend.release.set()
    summary = s.finish()
    assert summary.undelivered == 0 and summary.flushed
    assert read_metrics(tmp_path / "blocking" / "w")[KEY].keys() == set(range(20))


def test_a_hung_tracker_costs_finish_only_its_flush_timeout_and_the_rest_is_spooled(tmp_path):
    BlockingBackend.release.clear()
    BlockingBackend.entered.clear()
    config = {**mean_config(), "backend": {"blocking": {"_target_": "tests.support.probes.BlockingBackend",
                                                         "root": str(tmp_path / "blocking")}, "local": {}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]", "worker.flush_timeout_s=1.0"],
                       allow_external_targets=True, run_name="h", out_dir=str(tmp_path / "out"))
    try:
        for step in range(5):
            s.log(step, batch(seed=step))
        assert BlockingBackend.entered.wait(30)
        t0 = time.perf_counter()
        summary = s.finish()
        took = time.perf_counter() - t0
    finally:
        BlockingBackend.release.set()
    assert took < 15, took
    assert not summary.flushed
    assert read_metrics(tmp_path / "out" / "h")[KEY].keys() == set(range(5))  # the healthy backend got all
    # Write-ahead: nothing was given up. Each step is in the spool, or (the hung call came back after
    # finish() and was acknowledged then) at the tracker: exactly one of the two.
    for _ in range(100):
        if not any(t.name.startswith("trackdiag-blocking") and t.is_alive() for t in threading.enumerate()):
            break
        time.sleep(0.1)
    pending = Spool.open(summary.spool).pending("blocking")
    spooled = [e.payload["step"] for e in pending if e.kind == "metrics"]
    arrived = list(read_metrics(tmp_path / "blocking" / "h").get(KEY, {}))
    assert sorted(spooled + arrived) == list(range(5))


def test_sync_finds_the_run_created_just_before_the_process_died(tmp_path):
    """The process created its MLflow run, then died before the run's id reached the spool: the spool only
    has the description written before the run existed. sync attaches to that run (found by the run key
    chosen before creating it) instead of creating a second one."""
    from mlflow import MlflowClient

    from trackdiag.backends.base import RunInfo
    from trackdiag.backends.mlflow import MlflowBackend, MlflowParams

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run = RunInfo(experiment="died", run_name="child", out_dir=tmp_path)
    backend = MlflowBackend(MlflowParams(tracking_uri=uri), run=run)
    before_open = backend.resume_params()
    assert before_open["run_id"] is None and before_open["run_key"]
    backend.open()  # the run exists now; the process dies before describing it again

    spool = Spool(tmp_path / "spool")
    spool.describe("mlflow", target="trackdiag.backends.mlflow.MlflowBackend", params=before_open,
                   run={"experiment": "died", "run_name": "child", "out_dir": str(tmp_path)})
    for step in range(3):
        spool.put("mlflow", "metrics", {"step": step, "timestamp_ms": 1, "metrics": {"trackdiag/x": step}})
    spool.close()

    assert sync(tmp_path / "spool").ok
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("died").experiment_id])
    assert [r.info.run_id for r in runs] == [backend.run_id]
    assert sorted(m.step for m in client.get_metric_history(backend.run_id, "trackdiag/x")) == [0, 1, 2]
