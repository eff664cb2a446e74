"""W&B specifics: attach to the user's ``wandb.run``, share the trainer's step through ``define_metric``,
never write a row W&B would drop; read back from the offline run folder with wandb's own protobuf classes."""

from __future__ import annotations

import pytest

import trackdiag
from tests.support.probes import batch, mean_config
from tests.support.readback import read_wandb, wandb_run_dir

KEY = "trackdiag/mean/mean"


@pytest.fixture
def env(wandb_env):
    return wandb_env


def test_attach_to_users_run_on_the_trainers_step(env):
    import wandb

    user = wandb.init(project="walls", mode="offline", dir=str(env / "wb"))
    try:
        user.log({"train/loss": 1.0}, step=100)  # the user's run is already at W&B step 100
        s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                           backend="wandb", on_error="raise", run_name="ignored-when-attached")
        preds = {step: batch(seed=step) for step in (90, 95, 100)}  # trainer steps below W&B's own step
        for step, pred in preds.items():
            s.log(step, pred)
        s.log_scalars({"verdict": "stripes", "score": 0.25}, step=100, prefix="trackdiag/user/")
        summary = s.finish()
        assert summary.clean, str(summary)
        assert wandb.run is user and user.id == s.backends[0].wb.id  # attached, not finished by us
        user.log({"train/loss": 0.5}, step=200)
    finally:
        user.finish()

    back = read_wandb(wandb_run_dir(env / "wb"))
    history = back.extra["run"].history
    expected = {step: float(p.mean(dim=(1, 2, 3)).mean()) for step, p in preds.items()}
    assert back.metrics.get(KEY) == pytest.approx(expected), history  # no row dropped, on the trainer's steps
    assert back.metrics["trackdiag/user/score"] == {100: 0.25}
    assert back.tables["trackdiag/user/texts"] == [{"step": 100, "trackdiag/user/verdict": "stripes"}]
    assert set(back.images["trackdiag/mean/img"]) == {90, 95, 100}
    losses = [(r["_step"], r["train/loss"]) for r in history if "train/loss" in r]
    assert losses == [(100, 1.0), (200, 0.5)]  # the user's own rows are untouched
    w_steps = [r["_step"] for r in history]
    assert w_steps == sorted(w_steps)  # W&B's own step never went down
    metrics = {(m.name or m.glob_name): m.step_metric for m in back.extra["define_metric"]}
    assert metrics["trackdiag/*"] == "trackdiag/step"
    assert back.status == "FINISHED"  # finished by the user, once


def test_own_run_gets_project_name_and_config(env):
    backend = {"wandb": {"mode": "offline", "dir": str(env / "wb"), "project": "walls"}}
    s = trackdiag.init(config={**mean_config(), "backend": backend}, overrides=["analyzer=[]"],
                       allow_external_targets=True, run_name="lora-7", on_error="raise")
    s.log(0, batch())
    assert s.finish().clean
    back = read_wandb(wandb_run_dir(env / "wb"))
    run = back.extra["run"]
    assert run.project == "walls" and back.status == "FINISHED"
    assert back.params["analyzer.mean.schedule"] == "every step"
    assert back.params["analyzer.mean._target_"] == "tests.support.probes.MeanAnalyzer"
    assert "offline" in s.finish().locations["wandb"] and "wandb sync" in s.finish().locations["wandb"]
