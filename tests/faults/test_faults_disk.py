"""Disk full, for real: a few-hundred-KB tmpfs under the spool and under the MLflow store (skipped with the
reason where this process may not mount), and always also a real ``OSError(ENOSPC)`` raised at the spool's
and the store's write calls. ``finish()`` never raises, reports exactly what was lost and what is kept, and a
store that was full is retried once it has room again."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

import trackdiag
import trackdiag.backends.spool as spool_mod
from tests.support.probes import batch, mean_config
from tests.support.servers import sqlite_store
from trackdiag.backends.local import read_metrics
from trackdiag.backends.spool import Spool
from trackdiag.sync import sync

KEY = "trackdiag/mean/mean"


def _mount(where: Path, size: str) -> Path:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    return where


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of 384 KiB, or a skip that says why it could not be mounted."""
    yield _mount(tmp_path / "small", "384k")
    subprocess.run(["umount", "-l", str(tmp_path / "small")], check=False)


@pytest.fixture
def store_fs(tmp_path):
    """A tmpfs of 8 MiB for an MLflow sqlite store (its schema alone takes a few MB)."""
    yield _mount(tmp_path / "store", "8m")
    subprocess.run(["umount", "-l", str(tmp_path / "store")], check=False)


def start(tmp: Path, out: Path, switch: Path, **kw):
    config = {**mean_config(),
              "backend": {"flaky": {"_target_": "tests.support.flaky.FlakyBackend", "root": str(tmp / "fl"),
                                                     "switch": str(switch)}}}
    return trackdiag.init(config=config, overrides=["analyzer=[]", "worker.flush_timeout_s=20"],
                          allow_external_targets=True, run_name="d", out_dir=str(out), on_error="raise", **kw)


def delivered_steps(tmp: Path) -> list[int]:
    metrics = read_metrics(tmp / "fl" / "d")
    return sorted(metrics.get(KEY, {}))


def test_spool_on_a_full_filesystem_reports_exactly_what_was_lost(tmp_path, small_fs):
    switch = tmp_path / "down"
    switch.touch()  # the tracker is down: everything has to go to the spool, which fills the disk
    s = start(tmp_path, small_fs, switch)
    n = 200
    for step in range(n):
        s.log(step, batch(b=2, h=64, w=64, seed=step))
    summary = s.finish()  # must not raise
    assert summary.lost > 0, str(summary)
    assert "LOST" in str(summary) and "No space left" in summary.spool_error
    on_disk = Spool.open(summary.spool)
    assert on_disk.undelivered() == summary.kept  # "kept" is exactly what the spool holds
    switch.unlink()  # the tracker is back
    result = sync(summary.spool, allow_external=True)
    assert result.ok
    arrived = delivered_steps(tmp_path)
    assert len(arrived) == len(set(arrived))
    kinds = {"metrics": n, "image": n, "params": 1, "artifacts": 1, "close": 1}  # artifacts: config.yaml
    assert sum(result.delivered.values()) + summary.lost == sum(kinds.values())  # every item accounted


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_enospc_at_the_spools_write_is_retried_and_nothing_is_lost_once_space_returns(tmp_path, monkeypatch):
    switch = tmp_path / "down"
    switch.touch()
    s = start(tmp_path, tmp_path / "out", switch)
    real_fsync = spool_mod.os.fsync
    monkeypatch.setattr(spool_mod.os, "fsync", _enospc)  # the journal's write calls fail: disk full
    for step in range(10):
        s.log(step, batch(seed=step))
    assert s.flush(20)
    assert s.worker.not_durable() > 0 and s.worker.spool.write_errors > 0
    monkeypatch.setattr(spool_mod.os, "fsync", real_fsync)  # room again: the next commit writes them
    for step in range(10, 20):
        s.log(step, batch(seed=step))
    summary = s.finish()
    # metrics and images, plus params, the config.yaml artifact and close
    assert summary.lost == 0 and summary.kept == summary.undelivered == 2 * 20 + 3
    switch.unlink()
    assert sync(summary.spool, allow_external=True).ok
    assert delivered_steps(tmp_path) == list(range(20))


def test_enospc_that_lasts_through_finish_is_reported_as_lost_never_raised(tmp_path, monkeypatch):
    switch = tmp_path / "down"
    switch.touch()
    s = start(tmp_path, tmp_path / "out", switch)
    monkeypatch.setattr(spool_mod.os, "fsync", _enospc)
    for step in range(7):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert summary.lost == summary.undelivered == 2 * 7 + 3 and summary.kept == 0
    assert "LOST: 17 items" in str(summary)


def test_a_store_that_was_full_is_retried_when_it_has_room(tmp_path, monkeypatch):
    """ENOSPC raised at the MLflow store's write call: the worker retries, nothing is disabled or lost."""
    from trackdiag.backends.mlflow import MlflowBackend

    uri = sqlite_store(tmp_path / "mlruns.db")
    full = {"on": True}
    real = MlflowBackend.log_metrics_many

    def log_metrics_many(self, batches):
        if full["on"]:
            _enospc()
        return real(self, batches)

    monkeypatch.setattr(MlflowBackend, "log_metrics_many", log_metrics_many)
    real_one = MlflowBackend.log_metrics
    monkeypatch.setattr(MlflowBackend, "log_metrics", lambda self, m, step, *, timestamp_ms: (
        _enospc() if full["on"] else real_one(self, m, step, timestamp_ms=timestamp_ms)))
    config = {**mean_config(), "backend": {"mlflow": {"tracking_uri": uri, "retry_s": 0.2}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True, run_name="f",
                       experiment="full", out_dir=str(tmp_path / "out"), on_error="raise")
    for step in range(10):
        s.log(step, batch(seed=step))
    assert s.flush(30)
    assert s.worker.stats.failed["mlflow:metrics"] >= 1
    full["on"] = False  # room again
    for step in range(10, 20):
        s.log(step, batch(seed=step))
    summary = s.finish()
    assert summary.undelivered == 0, str(summary)
    client = MlflowClient(uri)
    assert sorted(m.step for m in client.get_metric_history(s.backends[0].run_id, KEY)) == list(range(20))


@pytest.mark.slow
def test_a_real_full_sqlite_store_is_retried_when_space_returns(tmp_path, store_fs):
    db = store_fs / "mlruns.db"
    uri = sqlite_store(db)
    filler = store_fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # take every byte that is left
    try:
        while True:
            os.write(fd, b"\1" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    config = {**mean_config(), "backend": {"mlflow": {"tracking_uri": uri, "retry_s": 0.2}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]", "worker.flush_timeout_s=60"],
                       allow_external_targets=True, run_name=f"f{uuid.uuid4().hex[:6]}", experiment="full",
                       out_dir=str(tmp_path / "out"), on_error="raise")
    for step in range(30):
        s.log(step, batch(seed=step))
    s.flush(30)
    assert any(k.startswith("mlflow:") for k in s.worker.stats.failed)  # the store was full for real
    filler.unlink()  # room again
    for step in range(30, 40):
        s.log(step, batch(seed=step))
    summary = s.finish()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("full").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, KEY))
    assert steps == list(range(40)), str(summary)  # the full store was retried, nothing disabled or lost
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
