"""Small analyzers and backends for tests of the session machinery (selected with allow_external_targets)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from trackdiag.analyzers.base import Analyzer, AnalyzerParams, Result
from trackdiag.backends.local import LocalBackend, LocalParams


@dataclass
class MeanParams(AnalyzerParams):
    scale: float = 1.0
    render_sleep_s: float = 0.0
    fail_on_step: int = -1


class MeanAnalyzer(Analyzer):
    """Per-sample mean of pred × scale, a tiny map for a figure; can sleep in render or fail on a step."""

    name = "mean"
    Params = MeanParams

    def compute(self, inputs):
        if inputs.step == self.params.fail_on_step:
            raise RuntimeError("planted failure")
        return {"mean": inputs.pred.mean(dim=(1, 2, 3)) * self.params.scale,
                "map/img": inputs.pred[0, 0, :8, :8]}

    def render(self, result: Result):
        time.sleep(self.params.render_sleep_s)
        img = (np.clip(result.maps["img"], 0, 1) * 255).astype(np.uint8)
        return {"img": np.repeat(img[..., None], 3, axis=2)}


@dataclass
class BlockingParams(LocalParams):
    pass


class BlockingBackend(LocalBackend):
    """A local backend whose metric writes wait until ``release`` is set (a hung tracker)."""

    name = "blocking"
    Params = BlockingParams
    release = threading.Event()
    entered = threading.Event()

    def log_metrics(self, metrics, step, *, timestamp_ms):
        BlockingBackend.entered.set()
        BlockingBackend.release.wait(60)
        super().log_metrics(metrics, step, timestamp_ms=timestamp_ms)


def mean_config(**params) -> dict:
    return {"analyzer": {"mean": {"_target_": "tests.support.probes.MeanAnalyzer", "schedule": {"every": 1},
                                  **params}}}


def batch(b: int = 2, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)
