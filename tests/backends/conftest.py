"""Fixtures shared by the backend tests."""

from __future__ import annotations

import mlflow
import pytest

from tests.support.servers import sqlite_store


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An embedded MLflow sqlite store in ``tmp_path`` (also the working directory), set as the tracking
    URI for the test and reset afterwards; yields its URI."""
    monkeypatch.chdir(tmp_path)
    uri = sqlite_store(tmp_path / "mlruns.db")
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
