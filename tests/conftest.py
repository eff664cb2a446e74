"""Shared fixtures. Tests use real components: a real sqlite MLflow store, real files, real subprocesses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


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
