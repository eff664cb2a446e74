"""One contract, every backend (Lightning-style test_all): drive each backend through the whole contract and
read the result back from the tracker's own storage (MLflow store, W&B offline run, TensorBoard events)."""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.readback import read_local, read_mlflow, read_tensorboard, read_wandb, wandb_run_dir
from tests.support.servers import sqlite_store
from trackdiag.backends.base import RunInfo
from trackdiag.errors import MissingDependencyError

BACKENDS = ["local", "mlflow", "wandb", "tensorboard"]
KEY = "trackdiag/probe"
STEPS = (0, 5, 10)


@pytest.fixture
def env(wandb_env):
    return wandb_env


def make(name: str, tmp: Path, run: RunInfo):
    if name == "local":
        from trackdiag.backends.local import LocalBackend

        return LocalBackend(run=run)
    if name == "mlflow":
        from trackdiag.backends.mlflow import MlflowBackend, MlflowParams

        return MlflowBackend(MlflowParams(tracking_uri=sqlite_store(tmp / "mlruns.db")), run=run)
    if name == "wandb":
        from trackdiag.backends.wandb import WandbBackend, WandbParams

        return WandbBackend(WandbParams(mode="offline", dir=str(tmp / "wb")), run=run)
    from trackdiag.backends.tensorboard import TensorboardBackend

    return TensorboardBackend(run=run)


def read(name: str, backend, tmp: Path):
    if name == "local":
        return read_local(backend.dir)
    if name == "mlflow":
        return read_mlflow(backend.tracking_uri, backend.run_id, tmp=tmp / "dl")
    if name == "wandb":
        return read_wandb(wandb_run_dir(tmp / "wb"))
    return read_tensorboard(backend.log_dir)


def image(step: int) -> np.ndarray:
    """A 12×20 image that differs per step (gradient + step-coloured block), so a mix-up would show."""
    img = np.zeros((12, 20, 3), np.uint8)
    img[..., 0] = np.arange(20, dtype=np.uint8)[None, :] * 12
    img[..., 1] = np.arange(12, dtype=np.uint8)[:, None] * 20
    img[2:6, 3:9, 2] = 50 + step * 10
    return img


METRICS = {s: {f"{KEY}/E2f_over_Ef": 0.25 * s + 0.125,
               f"{KEY}/nan_when_5": float("nan") if s == 5 else float(s),
               f"{KEY}/count": float(3 * s)} for s in STEPS}
TABLE = {5: [{"step": 5, "event": "spike", "z": 3.5}], 10: [{"step": 10, "event": "drop", "z": None}]}
PARAMS = {"analyzer.tiling.schedule.every": "50", "backend.mlflow.tracking_uri": "sqlite:///x.db",
          "on_error": "warn"}


@pytest.mark.parametrize("name", BACKENDS)
def test_contract(env, name):
    run = RunInfo(experiment="contract", run_name=f"run-{name}", out_dir=env / "out",
                  tags={"trackdiag.version": "0.1.0", "trackdiag.analyzers": "probe"})
    report = env / "report"
    (report / "figures").mkdir(parents=True)
    (report / "summary.json").write_text('{"ok": true}')
    (report / "figures" / "a.png").write_bytes(b"png")
    backend = make(name, env, run)

    def drive():  # backends are driven from a worker thread in real use: do the same here
        backend.open()
        backend.log_params(PARAMS)
        for s in STEPS:
            backend.log_metrics(METRICS[s], s, timestamp_ms=int(time.time() * 1000))
            if s in (0, 10):
                backend.log_image(f"{KEY}/spectrum", image(s), s)
            if s in TABLE:
                backend.log_table(f"{KEY}/events", TABLE[s], s)
        backend.log_artifacts(report, "report")
        backend.close("FINISHED")

    t = threading.Thread(target=drive)
    t.start()
    t.join(120)
    back = read(name, backend, env)

    # metrics: every step, every value (NaN kept, not dropped)
    assert set(back.metrics) >= set(METRICS[0])
    for s in STEPS:
        for key, value in METRICS[s].items():
            got = back.metrics[key][s]
            assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value, rel=1e-6), (key, s)
    assert all(set(back.metrics[k]) == set(STEPS) for k in METRICS[0])
    # images: at their steps, pixel-exact
    assert set(back.images[f"{KEY}/spectrum"]) == {0, 10}
    for s in (0, 10):
        np.testing.assert_array_equal(back.images[f"{KEY}/spectrum"][s], image(s))
    # tables: the rows of both calls, in order (TensorBoard renders them as Markdown text)
    rows = back.tables[f"{KEY}/events"]
    assert [r["event"] for r in rows] == ["spike", "drop"]
    if name == "tensorboard":
        assert rows[0] == {"step": "5", "event": "spike", "z": "3.5"} and rows[1]["z"] == ""
    else:
        assert rows == [TABLE[5][0], TABLE[10][0]]
    # config as params
    for k, v in PARAMS.items():
        assert str(back.params[k]) == v
    # the report folder
    assert back.artifacts["report"] == {"summary.json", "figures/a.png"}
    # close
    assert back.status == "FINISHED"
    assert backend.location()


def test_mlflow_tags_and_image_grid_files(env):
    run = RunInfo(experiment="tags", run_name="t", out_dir=env, tags={"trackdiag.version": "9.9",
                                                                       "trackdiag.analyzers": "tiling,loss"})
    backend = make("mlflow", env, run)
    backend.open()
    backend.log_image("trackdiag/tiling/spectrum", image(3), 3)
    backend.close()
    back = read_mlflow(backend.tracking_uri, backend.run_id, tmp=env / "dl")
    assert back.extra["tags"]["trackdiag.version"] == "9.9"
    assert back.extra["tags"]["trackdiag.analyzers"] == "tiling,loss"
    # log_image(key=, step=) feeds the UI's image grid: full image + compressed thumbnail, and the tag.
    assert any(f.endswith("+compressed.webp") for f in back.extra["files"])
    assert back.extra["tags"].get("mlflow.loggedImages") == "True"


def test_tensorboard_custom_scalars_layout_groups_by_analyzer(env):
    run = RunInfo(run_name="layout", out_dir=env)
    backend = make("tensorboard", env, run)
    backend.open()
    backend.log_metrics({"trackdiag/tiling/E2f_over_Ef": 1.0, "trackdiag/loss/spike_z": 2.0}, 0,
                        timestamp_ms=0)
    backend.log_metrics({"trackdiag/tiling/fundamental_period_px": 32.0}, 1, timestamp_ms=0)  # a new key
    backend.close()
    layout = read_tensorboard(backend.log_dir).extra["layout"]
    charts = {c.title: {ch.title: list(ch.multiline.tag) for ch in c.chart} for c in layout.category}
    assert charts == {
        "trackdiag/loss": {"spike_z": ["^trackdiag/loss/spike_z$"]},
        "trackdiag/tiling": {"E2f_over_Ef": ["^trackdiag/tiling/E2f_over_Ef$"],
                             "fundamental_period_px": ["^trackdiag/tiling/fundamental_period_px$"]},
    }


@pytest.mark.parametrize("module,cls,extra", [("wandb", "WandbBackend", "wandb"),
                                              ("tensorboard", "TensorboardBackend", "tensorboard")])
def test_missing_optional_dependency_fails_at_construction_with_a_hint(monkeypatch, module, cls, extra):
    import importlib

    mod = importlib.import_module(f"trackdiag.backends.{module}")
    blocked = "wandb" if module == "wandb" else "torch.utils.tensorboard"
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'trackdiag\[{extra}\]'"):
        getattr(mod, cls)()


def test_one_session_every_backend_and_a_broken_one_does_not_stop_the_others(env):
    import trackdiag
    from tests.support.probes import batch, mean_config

    (env / "not_a_dir").write_text("")
    config = {**mean_config(), "backend": {
        "mlflow": {"tracking_uri": f"sqlite:///{env / 'not_a_dir' / 'x.db'}"},  # cannot be created
        "local": {}, "wandb": {"mode": "offline", "dir": str(env / "wb")}, "tensorboard": {}}}
    s = trackdiag.init(config=config, overrides=["analyzer=[]"], allow_external_targets=True, run_name="all",
                       out_dir=str(env / "out"))
    preds = {step: batch(seed=step) for step in range(3)}
    for step, pred in preds.items():
        s.log(step, pred)
    summary = s.finish()
    expected = {step: float(p.mean(dim=(1, 2, 3)).mean()) for step, p in preds.items()}
    for back in (read_local(env / "out" / "all"), read_wandb(wandb_run_dir(env / "wb")),
                 read_tensorboard(env / "out" / "tensorboard" / "all")):
        assert back.metrics["trackdiag/mean/mean"] == pytest.approx(expected)
        assert set(back.images["trackdiag/mean/img"]) == {0, 1, 2}
        assert back.params["analyzer.mean.schedule"] == "every step" and back.status == "FINISHED"
    assert set(summary.failed) == {"mlflow:open"}
    # all of MLflow's share is kept (params, config.yaml)
    assert summary.undelivered == 2 + 3 * 2 + 1 and summary.spool
