"""Faults from the caller's side: bad inputs, a continued run, a flood of figures, a bad scalar key.

Each test counts what was logged against what arrived in a real store (embedded MLflow sqlite, local files).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

import trackdiag
from tests.support.probes import batch, mean_config
from trackdiag.backends.local import read_metrics
from trackdiag.core.policy import TrackdiagWarning

KEY = "trackdiag/mean/mean"

# inputs that used to escape as TypeError / ValueError / IndexError
HOSTILE = [
    ("sample_ids_int", dict(pred=batch(), sample_ids=5)),
    ("timesteps_text", dict(pred=batch(), loss=torch.ones(2), timesteps=["a", "b"])),
    ("image_1x1", dict(pred=torch.rand(2, 3, 1, 1))),
    ("sample_ids_none_items", dict(pred=batch(), sample_ids=object())),
]


@pytest.mark.parametrize("name,kwargs", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_raise_typed_errors(in_tmp, name, kwargs):
    trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                   backend="local", on_error="raise", run_name="h")
    with pytest.raises(trackdiag.TrackdiagError):
        trackdiag.log(0, **kwargs)
    trackdiag.finish()


def test_hostile_inputs_under_warn_never_raise_and_the_good_steps_all_arrive(in_tmp):
    trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                   backend="local", on_error="warn", run_name="w")
    good = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step = 0
        for _, kwargs in HOSTILE * 3:
            trackdiag.log(step, **kwargs)
            trackdiag.log(step + 1, batch(seed=step))
            good.append(step + 1)
            step += 2
    assert all(issubclass(w.category, TrackdiagWarning) for w in caught)
    summary = trackdiag.finish()
    assert sum(summary.skipped.values()) == len(HOSTILE) * 3  # every bad call counted once
    assert sorted(read_metrics(in_tmp / "trackdiag_runs" / "w")[KEY]) == good


def test_an_analyzer_crash_is_typed_under_raise(in_tmp):
    trackdiag.init(config=mean_config(fail_on_step=3), overrides=["analyzer=[]"],
                   allow_external_targets=True, backend="local", on_error="raise", run_name="a")
    with pytest.raises(trackdiag.TrackdiagError, match="planted failure"):
        trackdiag.log(3, batch())
    trackdiag.finish()


def test_log_scalars_one_bad_key_does_not_refuse_the_batch(in_tmp):
    s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                       backend="mlflow", on_error="warn", run_name="k")
    good = {"train/loss": 0.5, "lr": 1e-4, "odd key!": 2.0, "grad:norm": 3.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackdiagWarning)
        for step in range(5):
            s.log_scalars({**good, 7: 1.0, "": 2.0, "/": 3.0}, step=step)
    summary = trackdiag.finish()
    client = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))
    run = client.get_run(s.backends[0].run_id)
    # characters MLflow refuses become "_": the value arrives instead of failing the batch
    assert set(run.data.metrics) == {"train/loss", "lr", "odd key_", "grad_norm"}
    for key in run.data.metrics:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == list(range(5))
    assert summary.skipped["value"] == 15 and summary.undelivered == 0 and not summary.refused


def _mlflow_steps(run_id: str, key: str = KEY) -> list[int]:
    client = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.mark.parametrize("on_resume", ["skip", "log"])
def test_resume_skips_steps_the_run_already_holds_and_warns_once(in_tmp, caplog, on_resume):
    s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                       backend="mlflow", on_error="raise", run_name="r")
    for step in range(50):  # the first job: crashed after step 49, its checkpoint is from step 29
        s.log(step, batch(seed=step))
        if step == 29:
            state = s.state_dict()
    trackdiag.finish()
    run_id = s.backends[0].run_id

    s2 = trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                        backend="mlflow", on_error="raise", run_id=run_id, on_resume=on_resume)
    s2.load_state_dict(state)
    caplog.clear()
    for step in range(30, 60):  # the resumed job repeats 30-49 (different data), then goes on
        s2.log(step, batch(seed=1000 + step))
    summary = trackdiag.finish()
    steps = _mlflow_steps(run_id)
    images = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db")).list_artifacts(run_id, "images")
    n_images = sum(1 for a in images if a.path.endswith(".png"))
    warned = [r for r in caplog.records if "already holds steps up to 49" in r.getMessage()]
    if on_resume == "skip":
        assert steps == list(range(60))  # every step once
        assert n_images == 60
        assert summary.skipped["resume:mlflow"] == 20 * 2  # 20 steps: their metrics and their figures
        assert len(warned) == 1
    else:
        assert len(steps) == 80 and len(set(steps)) == 60  # asked for: 30-49 twice
        assert not warned


def test_a_flood_of_figures_keeps_the_latest_and_the_last_step(in_tmp):
    s = trackdiag.init(config=mean_config(render_sleep_s=0.01), overrides=["analyzer=[]",
                                                                           "worker.queue_size=8"],
                       allow_external_targets=True, backend="local", on_error="raise", run_name="f")
    n = 300
    for step in range(n):
        s.log(step, batch(seed=step % 7))
    summary = trackdiag.finish()
    run = in_tmp / "trackdiag_runs" / "f"
    assert sorted(read_metrics(run)[KEY]) == list(range(n))  # scalars never dropped
    drawn = sorted(int(p.stem.split("_")[-1]) for p in (run / "images").rglob("*.png"))
    assert drawn[-1] == n - 1  # the last step's figure is always there
    assert len(drawn) + summary.dropped_media == n  # every figure drawn or counted as dropped
    if summary.dropped_media:  # what was dropped is older than what was kept at the end
        missing = sorted(set(range(n)) - set(drawn))
        assert max(missing) < drawn[-1]
        assert np.all(np.diff(drawn[-8:]) > 0)


@pytest.mark.slow  # a session, then sync: 26 s on a loaded 2-core box
def test_figures_not_drawn_within_finish_budget_are_kept_and_drawn_by_sync(in_tmp, monkeypatch):
    import time

    from trackdiag.plots import tiling as tiling_plots
    from trackdiag.sync import main as sync_main

    # Figures are drawn in milliseconds now: make drawing slow (on the worker thread, where the patch applies)
    # so that some are still waiting when finish() starts, whatever the machine's speed.
    fast = tiling_plots.render_all

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return fast(*args, **kwargs)

    monkeypatch.setattr(tiling_plots, "render_all", slow)
    s = trackdiag.init(overrides=["backend=[mlflow]", "analyzer=[tiling]", "analyzer.tiling.schedule.every=1",
                                  "worker.figure_wait_min_s=0", "worker.figure_wait_frac=0",
                                  "worker.render=thread"], run_name="fig")
    n = 4
    for step in range(n):
        s.log(step, torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(step)))
    summary = trackdiag.finish()
    run_id = s.backends[0].run_id
    client = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))

    before = len(client.list_artifacts(run_id, "images"))
    assert summary.deferred >= 1 and summary.kept == summary.deferred and summary.lost == 0
    assert client.get_run(run_id).info.status == "FINISHED"  # the run is finished; its figures come later
    assert sync_main([summary.spool]) == 0
    after = {a.path for a in client.list_artifacts(run_id, "images")}
    assert len(after) > before
    assert sync_main([summary.spool]) == 0  # nothing drawn twice
    assert {a.path for a in client.list_artifacts(run_id, "images")} == after
