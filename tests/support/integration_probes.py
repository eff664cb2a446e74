"""Shared pieces of the integration tests: a recording analyzer, a tiny texture decoder, store read-back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trackdiag.analyzers.base import Analyzer, AnalyzerParams


@dataclass
class RecorderParams(AnalyzerParams):
    pass


class LossRecorder(Analyzer):
    """Logs exactly what it received: the mean per-sample loss, the mean timestep and the batch size."""

    name = "rec"
    Params = RecorderParams
    requires = ("loss",)

    def compute(self, inputs):
        out = {"loss_mean": inputs.loss.float().mean(), "n": torch.tensor(float(inputs.loss.numel()))}
        if inputs.timesteps is not None:
            out["t_mean"] = inputs.timesteps.float().mean()
        return out


class PredRecorder(Analyzer):
    """Logs the mean of ``pred`` (and of ``mask`` when given): proves which tensors reached the session."""

    name = "prec"
    Params = RecorderParams
    requires = ("pred",)

    def compute(self, inputs):
        out = {"pred_mean": inputs.pred.mean()}
        if inputs.mask is not None:
            out["mask_mean"] = inputs.mask.float().mean()
        return out


def every_step(*names: str) -> dict:
    """A session config with the named recorders (``rec``, ``prec``) and the real loss analyzer, every
    step."""
    targets = {"rec": "tests.support.integration_probes.LossRecorder",
               "prec": "tests.support.integration_probes.PredRecorder",
               "loss": "trackdiag.analyzers.loss.LossAnalyzer"}
    return {"analyzer": {n: {"_target_": targets[n], "schedule": {"every": 1}} for n in names}}


class TinyDecoder(nn.Module):
    """3→8→3 channels: a model small enough for a few real optimizer steps in a test."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def history(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}
