"""The loss verdict rules live next to the loss math and are registered as the ``loss`` rules: the training
loop (the analyzer's running counts, through the findings) and ``diagnose --logdir`` (the whole series) give
the same verdicts on the same curve."""

from __future__ import annotations

import numpy as np
import pytest

from tests.analyzers.test_loss_detection import make_curve
from trackdiag.analyzers.loss import VERDICT_CODES, LossAnalyzer, LossParams, detect_series, loss_rules
from trackdiag.core.findings import RunFindings
from trackdiag.report.sections.loss import loss_verdicts
from trackdiag.verdicts import evaluate, rules_for

#: Planted event kind → the code that must name it.
CODE = {"nonfinite": "loss_nonfinite", "ema_divergence": "loss_divergence", "spike": "loss_spike",
        "plateau": "loss_plateau"}


def _in_loop(steps, loss, t, params=None):
    """The curve through the analyzer as the training loop runs it; the findings' verdicts at the end."""
    analyzer = LossAnalyzer(params)
    findings = RunFindings()
    metrics: dict[str, float] = {}
    for s, v, tt in zip(steps, loss, t, strict=True):
        result = analyzer.summarize(int(s), {"loss": np.asarray(v), "timesteps": np.asarray([tt])})
        metrics = findings.observe(analyzer, int(s), result)
    return findings.verdicts(), metrics


def test_registered_under_the_analyzer_name():
    assert rules_for("loss") is loss_rules
    assert evaluate("loss", {"n_spikes": 0.0, "nonfinite_count": 0.0}) == []


# (seed, planted kinds): each curve plants some kinds, the rest must not be named (false alarms)
CASES = [(11, ("spike",)), (12, ("nonfinite",)), (13, ("ema_divergence",)), (14, ("plateau",)),
         (15, ()), (16, ("spike", "nonfinite", "plateau", "ema_divergence"))]


def _curve(seed, kinds):
    return make_curve(seed, n=2400, spikes=30 if "spike" in kinds else 0,
                      plateaus=((900, 1500),) if "plateau" in kinds else (),
                      divergence=1900 if "ema_divergence" in kinds else None,
                      nonfinite=(700, 1300) if "nonfinite" in kinds else ())


@pytest.mark.slow
def test_training_loop_and_offline_log_give_the_same_verdicts():
    hits = planted = false_alarms = judged = 0
    for seed, kinds in CASES:
        steps, loss, t, _ = _curve(seed, kinds)
        offline = loss_verdicts(detect_series(steps, loss, timesteps=t), LossParams())
        online, metrics = _in_loop(steps, loss, t)
        problems_off = {v.code: v.severity for v in offline if v.is_problem}
        problems_on = {v.code: v.severity for v in online if v.is_problem}
        assert problems_on == problems_off, (seed, problems_on, problems_off)
        assert set(problems_off) <= set(VERDICT_CODES)
        # the verdict metrics the loop logs: one per known code, 0 none / 1 warn / 2 bad
        assert {f"trackdiag/loss/verdict/{c}" for c in VERDICT_CODES} <= set(metrics)
        for code in VERDICT_CODES:
            planted_here = any(CODE[k] == code for k in kinds)
            named = code in problems_off
            judged += 1
            planted += planted_here
            hits += planted_here and named
            false_alarms += named and not planted_here
        if not kinds:  # a clean curve: at most noise-like spikes (info), never a problem
            assert not problems_off and all(v.severity == "info" for v in offline), offline
    assert planted == 8 and hits == planted, (hits, planted)       # recall 1.0 over the planted kinds
    assert judged - planted == 16 and false_alarms == 0, false_alarms  # none over the 16 codes not planted


def test_evidence_carries_the_events_steps_offline():
    steps, loss, t, _ = _curve(16, ("spike", "nonfinite", "plateau", "ema_divergence"))
    det = detect_series(steps, loss, timesteps=t)
    by = {v.code: v for v in loss_verdicts(det, LossParams())}
    assert by["loss_nonfinite"].evidence == {"nonfinite_count": 2, "first_step": 700}
    assert by["loss_divergence"].evidence["first_step"] >= 1900
    assert f"before step {by['loss_divergence'].evidence['first_step']}" in by["loss_divergence"].fix
    spikes = [e for e in det.events if e.kind == "spike"]
    worst = sorted(spikes, key=lambda e: -e.z)[:5]
    assert by["loss_spike"].evidence["worst_steps"] == ", ".join(str(e.step) for e in worst)
    assert by["loss_spike"].evidence["largest_z"] == pytest.approx(worst[0].z, abs=0.01)
    assert by["loss_plateau"].evidence["first_step"] >= 900
    assert [v.severity for v in by.values()][:2] == ["bad", "bad"]  # most severe first
