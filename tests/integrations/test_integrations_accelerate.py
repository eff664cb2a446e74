"""``Accelerator(log_with="trackdiag")``: a real accelerate training loop on the CPU, read back from
MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.tracking import LOGGER_TYPE_TO_CLASS
from mlflow import MlflowClient

import trackdiag
from tests.support.integration_probes import TinyDecoder, every_step, history
from trackdiag.integrations.accelerate import TrackdiagTracker, register

STEPS = 5


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (creating an MLflow database costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('acc') / 'mlruns.db'}"


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def train(accelerator: Accelerator, steps: int = STEPS, seed: int = 0):
    """A real loop: per-sample loss, accelerator.backward, scalars through accelerator.log, tensors to
    trackdiag."""
    torch.manual_seed(seed)
    model = TinyDecoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model, opt = accelerator.prepare(model, opt)
    gen = torch.Generator().manual_seed(seed)
    seen = []
    for step in range(steps):
        clean = torch.rand(4, 3, 16, 16, generator=gen)
        t = torch.randint(0, 1000, (4,), generator=gen)
        pred = model(clean + 0.2 * torch.randn(4, 3, 16, 16, generator=gen))
        per_sample = F.mse_loss(pred, clean, reduction="none").mean(dim=(1, 2, 3))
        loss = per_sample.mean()
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()
        accelerator.log({"train/loss": loss.item(), "phase": "warmup" if step < 2 else "main"}, step=step)
        trackdiag.log(step, pred, loss=per_sample, timesteps=t)
        seen.append((float(loss.detach()), float(pred.detach().mean()), float(t.float().mean())))
    return seen


def test_register_is_idempotent():
    assert register() is TrackdiagTracker
    assert register() is TrackdiagTracker
    assert LOGGER_TYPE_TO_CLASS["trackdiag"] is TrackdiagTracker


def test_log_with_trackdiag_runs_a_session(store):
    register()
    accelerator = Accelerator(cpu=True, log_with="trackdiag")
    accelerator.init_trackers("walls", config={"lr": 0.01, "arch": "tiny"}, init_kwargs={"trackdiag": {
        "config": every_step("rec", "prec",
                             "loss"), "overrides": ["analyzer=[]"], "allow_external_targets": True,
        "backend": "mlflow", "tracking_uri": store, "run_name": "acc", "on_error": "raise"}})
    session = accelerator.get_tracker("trackdiag", unwrap=True)
    assert session is trackdiag.get_session()
    seen = train(accelerator)
    accelerator.end_training()
    run_id = session.backends[0].run_id

    client = MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "walls"  # project_name → experiment
    assert run.data.params["config.lr"] == "0.01" and run.data.params["config.arch"] == "tiny"
    scalars = history(client, run_id, "train/loss")
    assert [scalars[i] for i in range(STEPS)] == pytest.approx([s[0] for s in seen], rel=1e-6)
    preds = history(client, run_id, "trackdiag/prec/pred_mean")
    assert [preds[i] for i in range(STEPS)] == pytest.approx([s[1] for s in seen], rel=1e-5)
    t_mean = history(client, run_id, "trackdiag/rec/t_mean")
    assert [t_mean[i] for i in range(STEPS)] == pytest.approx([s[2] for s in seen])
    train_loss = history(client, run_id, "trackdiag/loss/train_loss")  # the real loss analyzer
    assert [train_loss[i] for i in range(STEPS)] == pytest.approx([s[0] for s in seen], rel=1e-5)
    # The string value "phase" went to a table, one row per step.
    table = json.loads(Path(client.download_artifacts(run_id, "tables/texts.json")).read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    expected = [(i, "warmup" if i < 2 else "main") for i in range(STEPS)]
    assert [(r["step"], r["phase"]) for r in rows] == expected


def test_shares_the_run_of_accelerates_mlflow_tracker(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    register()
    accelerator = Accelerator(cpu=True, log_with=["mlflow", "trackdiag"])
    accelerator.init_trackers("shared", config={"lr": 0.01}, init_kwargs={"trackdiag": {
        "config": every_step("prec"), "overrides": ["analyzer=[]"], "allow_external_targets": True,
        "on_error": "raise"}})
    tracker = accelerator.get_tracker("trackdiag")
    assert tracker.shared_run_id is not None and not tracker.log_scalars
    seen = train(accelerator)
    accelerator.end_training()

    client = MlflowClient(store)
    exp = client.get_experiment_by_name("shared")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [tracker.shared_run_id]  # one run, not two
    run_id = tracker.shared_run_id
    scalars = client.get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in scalars) == list(range(STEPS))  # logged once per step, not twice
    preds = history(client, run_id, "trackdiag/prec/pred_mean")
    assert [preds[i] for i in range(STEPS)] == pytest.approx([s[1] for s in seen], rel=1e-5)
    assert client.get_run(run_id).info.status == "FINISHED"


def test_bad_init_kwargs_are_a_clear_error(store):
    register()
    accelerator = Accelerator(cpu=True, log_with="trackdiag")
    with pytest.raises(trackdiag.ConfigError, match="init_kwargs"):
        accelerator.init_trackers("bad",
                                  init_kwargs={"trackdiag": {"backend": "local", "tracking_uri": store}})
