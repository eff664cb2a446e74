"""diffusers' ``log_validation`` return value and OneTrainer's sample callback, read back from MLflow."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PIL import Image

import trackdiag
from trackdiag.integrations.onetrainer import OneTrainerSampleLogger
from trackdiag.integrations.validation import diffusers_log_validation, to_image_tensor


def _pil(seed: int, grid: bool = True) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = (rng.random((64, 64, 3)) * 60 + 100).astype(np.uint8)
    if grid:
        a[::8] -= 30
        a[:, ::8] -= 30
    return Image.fromarray(a)


class FileType(enum.Enum):  # OneTrainer's modules.util.enum.FileType
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"


@dataclass
class ModelSamplerOutput:  # OneTrainer's sampler output: file_type and data
    file_type: FileType
    data: Any


def _client(tmp):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlruns.db'}")


@pytest.mark.slow
def test_diffusers_and_onetrainer_helpers_log_at_the_global_step(in_tmp):
    s = trackdiag.init(
        tracking_uri=f"sqlite:///{in_tmp / 'mlruns.db'}",
        run_name="helpers",
        overrides=["analyzer=[tiling]", "analyzer.tiling.schedule.every=1"],
    )
    # diffusers: log_validation returns PIL images; the scripts' trackers would get the epoch (3) as the step
    n = diffusers_log_validation([_pil(i) for i in range(4)], global_step=1200, prompts=["brick", "plaster"])
    assert n == 4
    # OneTrainer: one callback per sample, no step in it
    step = {"now": 1300}
    ot = OneTrainerSampleLogger(lambda: step["now"])
    for i in range(3):
        ot(ModelSamplerOutput(FileType.IMAGE, _pil(10 + i)))
    ot(ModelSamplerOutput(FileType.VIDEO, b"not an image"))  # ignored
    step["now"] = 1400
    ot(ModelSamplerOutput(FileType.IMAGE, _pil(20)))  # a new step: the 1300 group is logged
    ot(ModelSamplerOutput(FileType.IMAGE, "garbage"))  # never raises into the trainer
    assert ot.flush() == 1 and ot.logged == 4
    s.flush(60)
    run_id = s.backends[0].run_id
    trackdiag.finish()
    c = _client(in_tmp)
    keys = {k for k in c.get_run(run_id).data.metrics if k.startswith("trackdiag/watch/logged/")}
    assert keys == {
        f"trackdiag/watch/logged/{k}" for k in ("p00_00", "p00_01", "p01_00", "p01_01", "00", "01", "02")
    }
    assert [m.step for m in c.get_metric_history(run_id, "trackdiag/watch/logged/p01_01")] == [1200]
    assert sorted(m.step for m in c.get_metric_history(run_id, "trackdiag/watch/logged/00")) == [1300, 1400]
    counts = {m.step: m.value for m in c.get_metric_history(run_id, "trackdiag/watch/images")}
    assert counts == {1200: 4.0, 1300: 3.0, 1400: 1.0}
    fp = {m.step: m.value for m in c.get_metric_history(run_id, "trackdiag/fingerprint/grid_s8")}
    assert set(fp) == {1200, 1300, 1400} and fp[1200] > 0.5
    assert any(k.startswith("trackdiag/tiling/") for k in c.get_run(run_id).data.metrics)


def test_to_image_tensor_accepts_the_usual_forms():
    pil = _pil(0)
    a = to_image_tensor(pil)
    assert a.shape == (3, 64, 64) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert (to_image_tensor(np.asarray(pil)) - a).abs().max() == 0
    assert (to_image_tensor(a[None]) - a).abs().max() == 0
    assert to_image_tensor(np.zeros((8, 8), np.uint8)).shape == (3, 8, 8)
    with pytest.raises(trackdiag.TrackdiagError):
        to_image_tensor("nope")
