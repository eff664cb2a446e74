"""The render process: figures are drawn outside the training process, and an analyzer whose render job does
not pickle is drawn on the worker thread without sending every other analyzer's figures there too."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from trackdiag.analyzers.base import Analyzer, Result
from trackdiag.core import render


class PidAnalyzer(Analyzer):
    """Draws one 1×1 'figure' holding the id of the process that drew it."""

    name = "pid_probe"

    def compute(self, inputs: object) -> dict[str, torch.Tensor]:
        return {}

    def render(self, result: Result) -> dict[str, np.ndarray]:
        return {"pid": np.full((1, 1, 3), os.getpid() % 251, np.uint8)}


class HookedPidAnalyzer(PidAnalyzer):
    """The same, holding a lambda (as a custom analyzer or a patched instance may): its jobs do not pickle."""

    name = "pid_probe_hooked"

    def __init__(self) -> None:
        super().__init__()
        self.hook = lambda x: x


def _drawn_here(figures: dict[str, np.ndarray]) -> bool:
    (fig,) = figures.values()
    return int(fig[0, 0, 0]) == os.getpid() % 251


@pytest.fixture()
def fresh_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_UNPICKLABLE", set())
    monkeypatch.setattr(render, "_NO_PROCESS", None)


def test_an_unpicklable_analyzer_is_drawn_on_the_thread_and_the_others_stay_in_the_process(
        fresh_render: None, caplog: pytest.LogCaptureFixture) -> None:
    renderer = render.ProcessRenderer(timeout_s=60)
    result = Result(metrics={}, maps={})
    if os.getpid() % 251 == render._server().proc.pid % 251:
        pytest.skip("this process and the render process share an id modulo 251")
    with caplog.at_level(logging.WARNING, logger="trackdiag"):
        assert not _drawn_here(dict(renderer(render.RenderJob(PidAnalyzer(), result))))
        hooked = dict(renderer(render.RenderJob(HookedPidAnalyzer(), result)))
        assert _drawn_here(hooked) and set(hooked) == {"trackdiag/pid_probe_hooked/pid"}
        assert not _drawn_here(dict(renderer(render.RenderJob(PidAnalyzer(), result))))
        assert _drawn_here(dict(renderer(render.RenderJob(HookedPidAnalyzer(), result))))
    warnings = [r.getMessage() for r in caplog.records if "worker thread" in r.getMessage()]
    assert len(warnings) == 1 and "pid_probe_hooked" in warnings[0]


def test_without_a_process_every_figure_is_drawn_on_the_thread(
        fresh_render: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process() -> render._Server:
        raise OSError("no processes on this platform")

    monkeypatch.setattr(render, "_server", no_process)
    figures = dict(render.ProcessRenderer()(render.RenderJob(PidAnalyzer(), Result(metrics={}, maps={}))))
    assert _drawn_here(figures) and render._NO_PROCESS is not None
