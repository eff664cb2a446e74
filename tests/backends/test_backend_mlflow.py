"""MLflow specifics: attach to the user's active run or to a run id (never a second run), bounded HTTP, error
classification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.servers import sqlite_store
from trackdiag.backends.mlflow import MlflowBackend, MlflowParams

KEY = "trackdiag/mean/mean"


def session(**kw):
    return trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                          backend="mlflow", on_error="raise", **kw)


def test_attaches_to_the_users_active_run_and_leaves_it_running(store):
    with mlflow.start_run(run_name="users") as active:
        mlflow.log_metric("train/loss", 0.5, step=0)
        s = session()  # trackdiag.init() inside the user's run, default tracking_uri: the user's store wins
        s.log(0, batch(seed=0))
        s.log(1, batch(seed=1))
        s.finish()
        client = MlflowClient(store)
        run = client.get_run(active.info.run_id)
        assert run.info.status == "RUNNING"  # not ours to end
        assert [m.step for m in client.get_metric_history(active.info.run_id, KEY)] == [0, 1]
        assert run.data.tags["trackdiag.analyzers"] == "mean"
    exp = client.get_experiment(active.info.experiment_id)
    assert len(client.search_runs([exp.experiment_id])) == 1  # no second run


def test_attaches_to_a_given_run_id(store):
    client = MlflowClient(store)
    exp = client.create_experiment("given")
    run_id = client.create_run(exp).info.run_id
    s = session(run_id=run_id, tracking_uri=store)
    s.log(3, batch())
    s.finish()
    assert [m.step for m in client.get_metric_history(run_id, KEY)] == [3]
    assert client.get_run(run_id).info.status == "RUNNING"
    assert len(client.search_runs([exp])) == 1


def test_a_run_id_that_does_not_exist_is_kept_in_the_spool(store):
    s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                       backend="mlflow", run_id="0" * 32, tracking_uri=store)
    s.log(0, batch())
    summary = s.finish()
    assert summary.failed == {"mlflow:open": 1}  # RESOURCE_DOES_NOT_EXIST: permanent, not retried in a loop
    assert summary.undelivered == 5 and summary.spool  # params, config.yaml, metrics, image, close


def test_http_limits_apply_only_around_our_calls_and_respect_the_users_values(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")
    backend = MlflowBackend(MlflowParams(tracking_uri="http://127.0.0.1:9", http_timeout_s=3))
    with backend._bounded():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"  # the user's own setting stays
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_open_against_a_dead_server_fails_fast_and_is_transient():
    import time

    backend = MlflowBackend(MlflowParams(tracking_uri="http://127.0.0.1:9", http_timeout_s=2))  # discard port
    t0 = time.perf_counter()
    with pytest.raises(MlflowException) as info:
        backend.open()
    assert time.perf_counter() - t0 < 10  # no minutes of client-side retries
    assert backend.is_transient(info.value)


def test_error_classification():
    backend = MlflowBackend(MlflowParams())
    assert backend.is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert not backend.is_transient(MlflowException("bad", error_code=INVALID_PARAMETER_VALUE))
    assert not backend.is_transient(ValueError("The `key` parameter may only contain ..."))


def test_table_appends_match_mlflows_own_log_table_and_survive_a_resume(store, tmp_path):
    """Appends after the first are written by the backend itself (no download per append): the file must be
    what MLflow's own ``log_table`` would have made, readable by ``load_table``, and a second backend on the
    same run (a resume) must append to it."""
    from trackdiag.backends.base import RunInfo

    chunks = [[{"step": s, "event": "spike", "z": 1.5 * s}] for s in range(4)]
    chunks[2] = [{"step": 2, "event": "drop"}, {"step": 2, "event": "drop", "z": -1.0, "note": "n"}]
    client = MlflowClient(store)
    control = client.create_run(client.create_experiment("control")).info.run_id
    for rows in chunks:
        client.log_table(control, data={k: [r.get(k) for r in rows] for k in dict.fromkeys(c for r in rows
                                                                                          for c in r)},
                         artifact_file="tables/t/events.json")

    def backend(run_id=None):
        b = MlflowBackend(MlflowParams(tracking_uri=store, run_id=run_id, attach_active=False),
                          run=RunInfo(experiment="tables", run_name="t", out_dir=tmp_path))
        b.open()
        return b

    first = backend()
    calls = []
    for name in ("download_artifacts", "list_artifacts", "get_run"):
        real = getattr(first.client, name)
        setattr(first.client, name,
                lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    first.log_table("t/events", chunks[0], 0)
    calls.clear()
    for s, rows in enumerate(chunks[1:3], start=1):
        first.log_table("t/events", rows, s)
    assert calls == []  # later appends: one upload each, nothing read back
    first.close("FINISHED")
    resumed = backend(first.run_id)
    resumed.log_table("t/events", chunks[3], 3)
    resumed.close("FINISHED")

    def read(run_id):
        return json.loads(Path(client.download_artifacts(run_id, "tables/t/events.json", str(tmp_path))
                               ).read_text())

    assert read(first.run_id) == read(control)  # same columns, rows, order and nulls
    exp = client.get_experiment_by_name("tables").experiment_id
    loaded = client.load_table(exp, "tables/t/events.json", run_ids=[first.run_id])
    assert loaded["event"].tolist() == ["spike", "spike", "drop", "drop", "spike"]
    logged = json.loads(client.get_run(first.run_id).data.tags["mlflow.loggedArtifacts"])
    assert {"path": "tables/t/events.json", "type": "table"} in logged  # the UI's table view lists it


def test_an_embedded_store_keeps_its_artifacts_next_to_its_database(tmp_path, monkeypatch):
    """MLflow's default artifact root is ./mlruns under the working directory of the moment; trackdiag puts
    a new experiment's artifacts next to the sqlite file instead, wherever the training was started."""
    import numpy as np

    from trackdiag.backends.base import RunInfo

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    uri = sqlite_store(tmp_path / "store" / "runs.db")
    b = MlflowBackend(MlflowParams(tracking_uri=uri, attach_active=False),
                      run=RunInfo(experiment="beside", run_name="r", out_dir=tmp_path))
    b.open()
    b.log_image("trackdiag/probe/img", np.zeros((8, 8, 3), np.uint8), 0)
    b.close("FINISHED")
    assert list((tmp_path / "store" / "mlruns").rglob("*.png"))
    assert not (tmp_path / "cwd" / "mlruns").exists()
    client = MlflowClient(uri)
    assert [a.path for a in client.list_artifacts(b.run_id)]  # MLflow finds them there
