"""Shared fixtures. Tests use real components: a real sqlite MLflow store, real files, real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

if "PYTEST_XDIST_WORKER" in os.environ:
    # ``make test`` runs two worker processes on a 2-core machine: one intra-op thread each (and in the
    # subprocesses they start), or torch's spinning threads oversubscribe the cores. Tests that need another
    # count set it themselves and restore it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


#: Test files that use the one shared MLflow server / TensorBoard of a pytest process
#: (:mod:`tests.support.servers`): under pytest-xdist they run on one worker, so one server boots per run.
_SHARED_SERVER_FILES = frozenset({
    "tests/backends/test_spool_mlflow_server.py", "tests/faults/test_faults_server.py",
    "tests/report/test_browser.py", "tests/report/test_browser_findings.py",
})

#: Test files whose tests read the session's demo run (:func:`toy_run`): one worker trains it once.
_TOY_RUN_FILES = frozenset({"tests/test_examples.py", "tests/compare/test_compare_demo.py"})


def _worker_group(nodeid: str) -> str:
    """The pytest-xdist work unit of a test: its file, the shared servers' files together, the demo run's
    readers together. (A ``@group`` suffix, which xdist's own marks add under older pytest, is ignored.)"""
    path = nodeid.split("::", 1)[0].split("@", 1)[0]
    if path in _SHARED_SERVER_FILES:
        return "shared_servers"
    if path in _TOY_RUN_FILES:
        return "toy_run"
    return path


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``make test`` (``-n 2 --dist loadgroup``) schedules whole work units (:func:`_worker_group`), so module
    fixtures, servers and the demo run are made once. xdist's own ``xdist_group`` marks cannot do it under
    pytest >= 9.2: its workers rename ``item._nodeid``, which pytest no longer reads."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _worker_group(nodeid)

    return _WorkUnits(config, log)


def pytest_itemcollected(item):
    """A test that reads the demo run must sit in a file of :data:`_TOY_RUN_FILES`, or its worker trains the
    demo again."""
    path = item.nodeid.split("::", 1)[0]
    if "toy_run" in getattr(item, "fixturenames", ()) and path not in _TOY_RUN_FILES:
        raise pytest.UsageError(f"{item.nodeid} uses toy_run: add {path} to tests/conftest.py _TOY_RUN_FILES")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test inside a fresh working directory (so ./mlruns.db and ./trackdiag_runs land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def wandb_env(in_tmp, monkeypatch):
    """A fresh working directory with W&B's caches and staging (artifacts) inside it too."""
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(in_tmp / "wandb_home"))
    return in_tmp


@pytest.fixture(autouse=True)
def _no_leftover_session():
    """Each test starts and ends without a current trackdiag session."""
    from trackdiag.core import session as _session

    yield
    current = _session._current_session()
    if current is not None:
        current.finish()


#: The CI-sized demo: ``examples/toy_upsampler.py --steps 40 --size 96 --eval-every 20``.
TOY_STEPS, TOY_EVERY, TOY_SIZE = 40, 20, 96
TOY_CHECKPOINTS = [0, 20, 40]


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """One CI-sized run of the demo as a user runs it (a subprocess, in its own working directory), shared
    by the example's tests and compare_ckpts' defaults test: ``(work dir, stdout)``. Read it, don't write
    to its store."""
    work = tmp_path_factory.mktemp("toy")
    cmd = [sys.executable, str(ROOT / "examples" / "toy_upsampler.py"), "--steps", str(TOY_STEPS),
           "--size", str(TOY_SIZE), "--eval-every", str(TOY_EVERY), "--out", "out"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc.stdout
