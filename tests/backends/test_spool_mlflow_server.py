"""Integration: a real ``mlflow server`` on 127.0.0.1 dies in the middle of a run and comes back on the same
port and store. Training never waits; at the end every step's metrics are on the server exactly once."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.servers import prestart, shared_mlflow

prestart()  # boot the shared server while the other tests run
KEY = "trackdiag/mean/mean"


@pytest.mark.slow  # an MLflow server killed and restarted: 34 s on a loaded box
def test_server_killed_and_restarted_every_step_once(request, tmp_path):
    server = shared_mlflow(request)
    config = {**mean_config(), "backend": {"mlflow": {"tracking_uri": server.url, "retry_s": 0.5,
                                                      "http_timeout_s": 5.0}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True,
                       experiment="outage", run_name=f"outage-{tmp_path.name}", out_dir=str(tmp_path / "out"))
    preds = {step: batch(seed=step) for step in range(15)}
    for step in range(5):
        s.log(step, preds[step])
    assert s.flush(120)
    run_id = s.backends[0].run_id

    server.stop()  # SIGKILL: the tracker is gone
    for step in range(5, 10):
        s.log(step, preds[step])  # never waits on the tracker (tests/test_spool.py proves it with a hung one)
    assert s.flush(60)  # the worker is not stuck either: everything went to the spool
    assert s.worker.undelivered() >= 5

    server.start()  # same port, same store
    for step in range(10, 15):
        s.log(step, preds[step])
    summary = s.finish()
    assert summary.undelivered == 0, str(summary)
    assert s.worker.stats.replayed["mlflow"] >= 5

    client = MlflowClient(server.url)
    history = client.get_metric_history(run_id, KEY)
    assert sorted(m.step for m in history) == list(range(15))  # every step, exactly once
    expected = {step: float(p.mean(dim=(1, 2, 3)).mean()) for step, p in preds.items()}
    assert {m.step: m.value for m in history} == pytest.approx(expected)
    images = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    assert len(images) == 15
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["analyzer.mean.schedule"] == "every step"
    assert summary.locations["mlflow"] == f"{server.url}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
