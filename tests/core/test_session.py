"""Session API against the real embedded MLflow store and the local backend (read back, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient

import trackdiag
from tests.support.probes import BlockingBackend, batch, mean_config
from trackdiag.backends.local import read_metrics
from trackdiag.core.policy import TrackdiagWarning

KEY = "trackdiag/mean/mean"


def start(**kw):
    kw.setdefault("backend", ["mlflow", "local"])
    kw.setdefault("on_error", "raise")
    kw.setdefault("run_name", "t")
    config = kw.pop("config", mean_config())
    return trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True, **kw)


def history(session, key=KEY):
    run_id = session.backends[0].run_id
    client = MlflowClient("sqlite:///" + os.path.abspath("mlruns.db"))
    return client, run_id, {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_log_before_init_is_a_clear_error():
    with pytest.raises(trackdiag.NotInitializedError, match="before trackdiag.init"):
        trackdiag.log(0, batch())


def test_metrics_images_params_land_in_the_embedded_store(in_tmp):
    s = start()
    preds = [batch(seed=i) for i in range(4)]
    for step, pred in enumerate(preds):
        trackdiag.log(step * 10, pred)
    summary = trackdiag.finish()
    assert summary.clean, str(summary)
    client, run_id, hist = history(s)
    expected = {i * 10: float(p.mean(dim=(1, 2, 3)).mean()) for i, p in enumerate(preds)}
    assert hist.keys() == expected.keys()
    for step, value in expected.items():
        assert hist[step] == pytest.approx(value, rel=1e-6)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["analyzer.mean.schedule"] == "every step"  # the few params that matter
    config = yaml.safe_load(Path(client.download_artifacts(run_id, "config/config.yaml",
                                                           str(in_tmp))).read_text())
    assert config["analyzer"]["mean"]["scale"] == 1.0  # validated defaults: in config.yaml
    assert run.data.tags["trackdiag.analyzers"] == "mean"
    images = [a.path for a in client.list_artifacts(run_id, "images")]
    assert len(images) >= 4  # one image per step (plus MLflow's compressed thumbnails)
    # The local backend got the same metrics.
    local = read_metrics(in_tmp / "trackdiag_runs" / "t")
    assert local[KEY] == pytest.approx(hist)
    assert len(list((in_tmp / "trackdiag_runs" / "t" / "images").rglob("*.png"))) == 4


def test_context_manager_marks_failed_run(in_tmp):
    with pytest.raises(ZeroDivisionError):
        with start() as s:
            s.log(0, batch())
            _ = 1 / 0
    client, run_id, hist = history(s)
    assert client.get_run(run_id).info.status == "FAILED"
    assert list(hist) == [0]


@pytest.mark.parametrize("bad_step", [-1, 1.5, "3", True])
def test_bad_steps(in_tmp, bad_step):
    start(backend="local")
    with pytest.raises(trackdiag.StepOrderError):
        trackdiag.log(bad_step, batch())


def test_step_must_not_go_down(in_tmp):
    start(backend="local")
    trackdiag.log(5, batch())
    trackdiag.log(5, batch())  # the same step again is fine
    with pytest.raises(trackdiag.StepOrderError, match="went down: 4 after 5"):
        trackdiag.log(4, batch())


def test_allow_earlier_step_admits_one_late_step_and_the_order_is_checked_from_it(in_tmp):
    s = start(backend="local")
    s.log(5, batch())
    s.allow_earlier_step(7)  # not earlier: changes nothing
    with pytest.raises(trackdiag.StepOrderError, match="went down: 3 after 5"):
        s.log(3, batch())
    s.allow_earlier_step(3)  # a late validation image of step 3
    s.log(3, batch())
    with pytest.raises(trackdiag.StepOrderError, match="went down: 2 after 3"):
        s.log(2, batch())
    s.finish()
    assert sorted(read_metrics(s.backends[0].dir)[KEY]) == [3, 5]


BAD_INPUTS = [
    ("pred_3d", dict(pred=torch.rand(3, 16, 16)), trackdiag.ShapeError, r"B×C×H×W.*\(3, 16, 16\)"),
    ("pred_empty", dict(pred=torch.rand(0, 3, 16, 16)), trackdiag.ShapeError, r"\(0, 3, 16, 16\)"),
    ("mask_wrong_size", dict(pred=batch(), mask=torch.ones(2, 1, 8, 8)), trackdiag.ShapeError,
     r"expected|must have shape \(2, 1, 16, 16\).*got \(2, 1, 8, 8\)"),
    ("mask_two_channels", dict(pred=batch(), mask=torch.ones(2, 2, 16, 16)), trackdiag.ShapeError,
     r"got \(2, 2, 16, 16\)"),
    ("mask_batch_mismatch", dict(pred=batch(), mask=torch.ones(3, 1, 16, 16)), trackdiag.ShapeError,
     r"got \(3, 1, 16, 16\)"),
    ("mask_empty", dict(pred=batch(), mask=torch.zeros(16, 16)), trackdiag.MaskError, "empty"),
    ("mask_nan", dict(pred=batch(), mask=torch.full((16, 16), float("nan"))), trackdiag.MaskError, "NaN"),
    ("target_mismatch", dict(pred=batch(), target=torch.rand(2, 3, 8, 8)), trackdiag.ShapeError, "target"),
    ("loss_2d", dict(loss=torch.ones(2, 2)), trackdiag.ShapeError, "loss"),
    ("timesteps_len", dict(pred=batch(), loss=torch.ones(2), timesteps=torch.ones(3)), trackdiag.ShapeError,
     "timesteps"),
    ("ids_len", dict(pred=batch(), sample_ids=["a"]), trackdiag.ShapeError, "sample_ids"),
    ("pred_type", dict(pred=[1, 2, 3]), trackdiag.InputValueError, "torch.Tensor or numpy"),
    ("mask_without_pred", dict(mask=torch.ones(16, 16)), trackdiag.ShapeError, "need pred"),
]


@pytest.mark.parametrize("name,kwargs,exc,match", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_typed_errors(in_tmp, name, kwargs, exc, match):
    start(backend="local")
    with pytest.raises(exc, match=match):
        trackdiag.log(0, **kwargs)


def test_bad_inputs_under_warn_never_raise_warn_once_and_are_counted(in_tmp):
    start(backend="local", on_error="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, (_, kwargs, _, _) in enumerate(BAD_INPUTS):
            trackdiag.log(i, **kwargs)
        trackdiag.log(len(BAD_INPUTS), torch.rand(3, 16, 16))  # a second shape problem: counted, not warned
        trackdiag.log(len(BAD_INPUTS) + 1, batch())  # a good step still works afterwards
    ours = [w for w in caught if issubclass(w.category, TrackdiagWarning)]
    kinds = {"shape", "mask", "value"}
    assert len(ours) == len(kinds)  # once per kind
    summary = trackdiag.finish()
    expected_shape = sum(1 for b in BAD_INPUTS if b[2] is trackdiag.ShapeError) + 1
    assert summary.skipped["shape"] == expected_shape
    assert summary.skipped["mask"] == 2 and summary.skipped["value"] == 1
    assert read_metrics(in_tmp / "trackdiag_runs" / "t")[KEY].keys() == {len(BAD_INPUTS) + 1}


def test_mask_shapes_accepted(in_tmp):
    start(backend="local")
    for step, mask in enumerate([torch.ones(2, 1, 16, 16), torch.ones(1, 16, 16), np.ones((16, 16))]):
        trackdiag.log(step, batch(), mask)
    assert trackdiag.finish().clean


def test_analyzer_failure_under_warn_keeps_the_run_going(in_tmp):
    start(backend="local", on_error="warn", config=mean_config(fail_on_step=1))
    with pytest.warns(TrackdiagWarning, match="planted failure"):
        for step in range(3):
            trackdiag.log(step, batch())
    summary = trackdiag.finish()
    assert summary.skipped == {"mean:RuntimeError": 1}
    assert set(read_metrics(in_tmp / "trackdiag_runs" / "t")[KEY]) == {0, 2}


def test_analyzer_failure_under_raise_raises(in_tmp):
    start(backend="local", config=mean_config(fail_on_step=0))
    with pytest.raises(RuntimeError, match="planted failure"):
        trackdiag.log(0, batch())


def test_full_queue_drops_media_never_scalars(in_tmp):
    s = trackdiag.init(config=mean_config(render_sleep_s=0.05),
                       overrides=["analyzer=[]", "worker.queue_size=2"],
                       allow_external_targets=True, backend="local", run_name="q", on_error="raise")
    for step in range(30):
        s.log(step, batch())
    summary = s.finish()
    assert summary.dropped_media > 0
    assert "dropped" in str(summary)
    assert set(read_metrics(in_tmp / "trackdiag_runs" / "q")[KEY]) == set(range(30))
    pngs = list((in_tmp / "trackdiag_runs" / "q" / "images").rglob("*.png"))
    assert len(pngs) == 30 - summary.dropped_media


def test_log_does_not_wait_for_a_hung_backend(in_tmp):
    BlockingBackend.release.clear()
    BlockingBackend.entered.clear()
    config = {**mean_config(), "backend": {"blocking": {"_target_": "tests.support.probes.BlockingBackend"}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True, run_name="h",
                       on_error="raise")
    done = threading.Event()

    def train():
        for step in range(20):
            s.log(step, batch())
        done.set()

    thread = threading.Thread(target=train)
    thread.start()
    assert BlockingBackend.entered.wait(30)
    # The backend is stuck inside its first write; all 20 training steps still complete.
    assert done.wait(30), "log() blocked on a hung backend"
    BlockingBackend.release.set()
    thread.join()
    summary = s.finish()
    assert set(read_metrics(in_tmp / "trackdiag_runs" / "h")[KEY]) == set(range(20))
    assert summary.clean


@pytest.mark.slow  # a training subprocess: 40 s on a loaded 2-core box
def test_process_exit_without_finish_keeps_every_step(in_tmp):
    script = textwrap.dedent("""
        import sys, torch, trackdiag
        sys.path.insert(0, {tests!r})
        from tests.support.probes import mean_config
        trackdiag.init(config=mean_config(), overrides=["analyzer=[]"], allow_external_targets=True,
                       run_name="noexit")
        for step in range(25):
            trackdiag.log(step, torch.rand(2, 3, 16, 16))
        # no finish(): interpreter exit must flush the queue
    """).format(tests=str(__import__("pathlib").Path(__file__).parent))
    subprocess.run([sys.executable, "-c", script], check=True, cwd=in_tmp, timeout=240)
    client = MlflowClient(f"sqlite:///{in_tmp / 'mlruns.db'}")
    exp = client.get_experiment_by_name("trackdiag")
    (run,) = client.search_runs([exp.experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, KEY))
    assert steps == list(range(25))
    assert run.info.status == "FINISHED"


def test_state_dict_round_trip(in_tmp):
    s = start(backend="local")
    s.log(3, batch())
    state = json.loads(json.dumps(s.state_dict()))
    s.finish()
    s2 = start(backend="local")
    s2.load_state_dict(state)
    with pytest.raises(trackdiag.StepOrderError):
        s2.log(2, batch())
