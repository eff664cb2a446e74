"""Figures on their way to the trackers: encoded once (the spool's PNG is what the tracker gets), sent in
batches under the names the tracker's own call would give them, and bounded at ``finish()``: what was drawn
but not uploaded within the budget waits in the spool, and ``trackdiag.sync`` uploads it."""

from __future__ import annotations

import re
import tempfile

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image, PngImagePlugin

import trackdiag
from tests.support.probes import batch, mean_config
from trackdiag.backends.base import ImageItem
from trackdiag.backends.local import read_metrics
from trackdiag.backends.spool import Spool
from trackdiag.sync import sync

KEY = "trackdiag/mean/mean"
FIGURE = "trackdiag/mean/img"


def expected_figure(step: int) -> np.ndarray:
    """What probes.MeanAnalyzer draws for ``batch(seed=step)``."""
    img = (np.clip(batch(seed=step)[0, 0, :8, :8].numpy(), 0, 1) * 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def _template(name: str) -> str:
    """A file name with its numbers and unique id replaced: the naming scheme alone."""
    name = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", name)
    return re.sub(r"\d+", "<n>", name)


def test_mlflow_gets_each_figure_encoded_once_under_its_own_names(in_tmp, monkeypatch):
    encodes = []
    original = PngImagePlugin._save

    def counting(im, fp, filename, *args, **kwargs):
        encodes.append(im.size)
        return original(im, fp, filename, *args, **kwargs)

    monkeypatch.setattr(PngImagePlugin, "_save", counting)
    Image.SAVE["PNG"] = counting  # Image.save looks the encoder up here
    try:
        s = trackdiag.init(config=mean_config(), overrides=["analyzer=[]", "worker.upload_wait_min_s=60"],
                           allow_external_targets=True, backend="mlflow", on_error="raise", run_name="once")
        steps = 6
        for step in range(steps):
            s.log(step, batch(seed=step))
        summary = trackdiag.finish()
    finally:
        Image.SAVE["PNG"] = original
    assert summary.clean, str(summary)
    client = MlflowClient("sqlite:///" + str(in_tmp / "mlruns.db"))
    run_id = s.backends[0].run_id
    names = [a.path for a in client.list_artifacts(run_id, "images")]
    pngs = sorted(n for n in names if n.endswith(".png"))
    webps = [n for n in names if n.endswith(".webp")]
    assert len(pngs) == steps and len(webps) == steps
    assert len(encodes) == steps  # one PNG encode per figure (the spool's), none in the upload
    # the names MLflow's own log_image gives (its UI's image grid and step slider parse them)
    client.log_image(run_id, expected_figure(0), key=FIGURE, step=99)
    theirs = [a.path for a in client.list_artifacts(run_id, "images") if a.path not in names]
    assert {_template(n) for n in theirs} == {_template(pngs[0]), _template(webps[0])}
    assert client.get_run(run_id).data.tags.get("mlflow.loggedImages") == "True"
    with tempfile.TemporaryDirectory() as tmp:
        for name in pngs:
            step = int(re.search(r"step\D(\d+)", name).group(1))
            with Image.open(client.download_artifacts(run_id, name, tmp)) as im:
                np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected_figure(step))


def test_a_resent_batch_replaces_its_files_instead_of_adding_copies(in_tmp):
    from trackdiag.backends.mlflow import MlflowBackend, MlflowParams

    backend = MlflowBackend(MlflowParams(tracking_uri="sqlite:///" + str(in_tmp / "m.db")))
    backend.open()
    items = [ImageItem(FIGURE, step, 1_700_000_000_000 + step, image=expected_figure(step))
             for step in range(3)]
    backend.log_images(items)
    first = sorted(a.path for a in backend.client.list_artifacts(backend.run_id, "images"))
    backend.log_images(items)  # a retry after a partial failure, or sync after a crash
    assert sorted(a.path for a in backend.client.list_artifacts(backend.run_id, "images")) == first
    assert len(first) == 6
    with pytest.raises(ValueError):  # a key MLflow refuses is refused here too (the worker then finds it)
        backend.log_images([ImageItem("bad:key", 0, 1, image=expected_figure(0))])
    backend.close()


def test_finish_leaves_figures_it_could_not_upload_in_the_spool_and_sync_uploads_them(tmp_path):
    config = mean_config()
    config["backend"] = {"flaky": {"_target_": "tests.support.flaky.FlakyBackend",
                                   "root": str(tmp_path / "flaky"), "image_sleep_s": 0.25}}
    # drawing is not bounded here (60 s); uploading gets no time once the scalars are delivered
    s = trackdiag.init(config=config, overrides=["analyzer=[]", "worker.figure_wait_min_s=60",
                                                 "worker.upload_wait_min_s=0", "worker.figure_wait_frac=0"],
                       allow_external_targets=True, run_name="r", on_error="warn",
                       out_dir=str(tmp_path / "out"))
    steps = 12
    for step in range(steps):
        s.log(step, batch(seed=step))
    summary = trackdiag.finish()
    run = tmp_path / "flaky" / "r"
    assert sorted(read_metrics(run)[KEY]) == list(range(steps))  # scalars are always waited for
    held = summary.held.get("flaky", 0)
    uploaded = {int(p.stem.split("_")[-1]) for p in (run / "images").rglob("*.png")}
    assert held >= 1 and len(uploaded) + held == steps
    assert summary.lost == 0 and summary.kept == held and summary.spool
    assert "not uploaded within finish()'s figure budget" in str(summary)
    result = sync(summary.spool, allow_external=True)
    assert result.remaining == 0, result
    files = sorted((run / "images").rglob("*.png"))
    assert sorted(int(p.stem.split("_")[-1]) for p in files) == list(range(steps))
    for path in files:  # the spool's PNG, pixel for pixel
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")),
                                          expected_figure(int(path.stem.split("_")[-1])))
    assert Spool.open(summary.spool).undelivered() == 0
