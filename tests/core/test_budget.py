"""The per-call pixel budget (native crops keeping edge strips, mask contour, centre) and the thread scope."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import trackdiag
from trackdiag.analyzers.base import Analyzer, AnalyzerParams
from trackdiag.backends.local import read_metrics
from trackdiag.core.budget import (
    PixelBudget,
    apply_plan,
    contour_profile,
    edge_strip_px,
    plan_axis,
    plan_budget,
)
from trackdiag.core.threads import intra_op_threads
from trackdiag.functional.spectral import dominant_period
from trackdiag.testing import synth


def _wall(h: int, w: int, period: float, *, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    gray = synth.brick(h, w, period_px=period, jitter=0.0, generator=g)
    return synth.to_rgb(gray)[None] if synth.to_rgb(gray).ndim == 3 else synth.to_rgb(gray)


def test_composite_keeps_native_pixels_edge_strips_and_the_budget():
    x = torch.rand(2, 3, 1500, 1100, generator=torch.Generator().manual_seed(1))
    plan = plan_budget(x, max_pixels=600_000)
    y = apply_plan(x, plan)
    assert y.shape[0] * y.shape[-2] * y.shape[-1] <= 600_000
    assert y.shape[-2] < 1500 and y.shape[-1] < 1100
    # Native resolution: every kept pixel is an input pixel at the kept rows × columns (no resampling).
    rows, cols = plan.rows.index(), plan.cols.index()
    assert torch.equal(y, x[:, :, rows][:, :, :, cols])
    # The four edge strips are the composite's own borders.
    e = edge_strip_px(plan.rows.kept)
    assert torch.equal(y[:, :, :e, :], x[:, :, :e, cols])
    assert torch.equal(y[:, :, -e:, :], x[:, :, -e:, cols])
    ec = edge_strip_px(plan.cols.kept)
    assert torch.equal(y[:, :, :, :ec], x[:, :, rows, :ec])
    assert torch.equal(y[:, :, :, -ec:], x[:, :, rows, -ec:])
    # A large contiguous centre block (zones, perspective): at least 60 % of the kept rows/columns.
    for ax in (plan.rows, plan.cols):
        assert max(b - a for a, b in ax.blocks) >= 0.6 * ax.kept


def test_small_calls_are_untouched():
    x = torch.rand(4, 3, 256, 256)
    plan = plan_budget(x, max_pixels=1_000_000)
    assert plan.identity and apply_plan(x, plan) is x


@pytest.mark.parametrize("where", [0.12, 0.88])
def test_contour_block_samples_the_mask_contour_away_from_the_centre(where):
    h = w = 2000
    mask = torch.zeros(1, 1, h, w, dtype=torch.bool)
    edge_row = int(where * h)
    if where < 0.5:
        mask[..., edge_row:, :] = True  # wall below a ceiling line near the top
    else:
        mask[..., :edge_row, :] = True  # wall above a floor line near the bottom
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(2))
    with_contour = plan_budget(x, max_pixels=1_000_000, mask=mask)
    rows = with_contour.rows.index()
    assert any(abs(int(r) - edge_row) <= 2 for r in rows), "the contour line is not among the kept rows"
    m = apply_plan(mask, with_contour)
    rc, _ = contour_profile(m)
    assert float(rc.sum()) >= 0.9 * w * with_contour.cols.kept / w  # the line crosses the composite
    # The same frame without a mask keeps only strips + centre, which miss that line.
    plain = plan_budget(x, max_pixels=1_000_000)
    assert not any(abs(int(r) - edge_row) <= 2 for r in plain.rows.index())


def test_junctions_fall_on_the_texture_period_and_keep_it():
    period = 24.0
    x = _wall(2400, 2400, period)
    plan = plan_budget(x, max_pixels=1_000_000)
    assert not plan.identity
    # Running bond: rows repeat every 2 courses; columns every brick length (2 periods).
    for ax, lattice in ((plan.rows, 2 * period), (plan.cols, 2 * period)):
        for (_, a), (b, _) in zip(ax.blocks[:-1], ax.blocks[1:], strict=True):
            gap = (b - a) / lattice
            assert abs(gap - round(gap)) * lattice <= 1.5, (ax.blocks, gap)
    assert plan.seam_nmse < 0.05
    y = apply_plan(x, plan)
    full = float(dominant_period(x[:, 0]).period_px[0])
    comp = float(dominant_period(y[:, 0]).period_px[0])
    assert comp == pytest.approx(full, rel=0.02)
    # Without matching the junctions land anywhere and the seams show.
    blind = plan_axis(2400, plan.rows.kept, profile=None)
    pairs = zip(blind.blocks[:-1], blind.blocks[1:], strict=True)
    gaps = [(b - a) % (2 * period) for (_, a), (b, _) in pairs]
    assert any(1.5 < g < 2 * period - 1.5 for g in gaps)


def test_budget_object_reports_and_disables():
    got = []
    b = PixelBudget(0.25, report=lambda m, s: got.append((s, dict(m))))
    x = torch.rand(1, 3, 1024, 1024)
    from trackdiag.analyzers.base import StepInputs

    out = b(StepInputs(step=7, pred=x, target=x.clone()))
    assert out.pred.shape[-1] * out.pred.shape[-2] <= 250_000
    assert out.target.shape == out.pred.shape and torch.equal(out.target, out.pred)
    assert got and got[0][0] == 7 and 0 < got[0][1]["kept_px_frac"] <= 0.25
    off = PixelBudget(0)(StepInputs(step=1, pred=x))
    assert off.pred is x
    with pytest.raises(trackdiag.errors.InputValueError):
        PixelBudget(-1)


# -- the thread scope -------------------------------------------------------------------------------------
def test_thread_scope_sets_and_restores_even_on_exceptions():
    saved = torch.get_num_threads()
    target = 1 if saved != 1 else 2
    try:
        with intra_op_threads(target) as n:
            assert n == target and torch.get_num_threads() == target
        assert torch.get_num_threads() == saved
        with pytest.raises(RuntimeError, match="boom"):
            with intra_op_threads(target):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == saved
        with intra_op_threads(0) as n:  # 0 leaves the setting alone
            assert n == saved == torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)


@dataclass
class ProbeParams(AnalyzerParams):
    fail: bool = False


class SizeProbe(Analyzer):
    """Reports the size it was given and the thread count in effect; can fail."""

    name = "probe"
    Params = ProbeParams

    def compute(self, inputs):
        if self.params.fail:
            raise RuntimeError("planted failure")
        n = inputs.pred.shape[-2] * inputs.pred.shape[-1] * inputs.pred.shape[0]
        return {"px": torch.tensor(float(n)), "threads": torch.tensor(float(torch.get_num_threads()))}


def _probe_session(**params):
    cfg = {"analyzer": {"probe": {"_target_": "tests.core.test_budget.SizeProbe", "schedule": {"every": 1},
                                  **params}}}
    return trackdiag.init(config=cfg, overrides=["analyzer=[]", "budget.max_megapixels=0.5"],
                          allow_external_targets=True, backend=["local"], run_name="b", on_error="raise")


def test_session_analyses_the_composite_reports_the_budget_and_restores_threads(in_tmp):
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        s = _probe_session()
        mask = torch.zeros(1, 1, 1200, 1200)
        mask[..., 200:, :] = 1
        trackdiag.log(0, torch.rand(1, 3, 1200, 1200), mask=mask)
        trackdiag.log(1, torch.rand(1, 3, 256, 256))
        assert torch.get_num_threads() == 2  # the user's setting, untouched for training
        trackdiag.finish()
        m = read_metrics(in_tmp / "trackdiag_runs" / "b")
        assert m["trackdiag/probe/px"][0] <= 500_000 and m["trackdiag/probe/px"][1] == 256 * 256
        assert m["trackdiag/probe/threads"][0] == 1  # default budget.intra_op_threads
        assert 0 < m["trackdiag/budget/kept_px_frac"][0] <= 500_000 / 1200**2
        assert 1 not in m["trackdiag/budget/kept_px_frac"]  # under budget: nothing cropped, nothing reported
        assert s.cfg.budget.max_megapixels == 0.5
        # An analyzer that raises still gets the user's setting back.
        _probe_session(fail=True)
        with pytest.raises(RuntimeError, match="planted"):
            trackdiag.log(0, torch.rand(1, 3, 64, 64))
        assert torch.get_num_threads() == 2
        trackdiag.finish()
    finally:
        torch.set_num_threads(saved)


# -- the host transfer on the CPU ---------------------------------------------------------------------------
def test_cpu_results_are_copied_not_shared_with_the_users_tensors():
    from trackdiag.core.transfer import to_host

    user = torch.rand(2, 3, 8, 8)
    outputs = {"a": {"view": user[0, 0, :4, :4], "f64": torch.ones(2, dtype=torch.float64),
                     "flag": torch.tensor([True, False]), "img": torch.full((2, 2, 3), 7, dtype=torch.uint8)}}
    host = to_host(outputs)["a"]
    before = host["view"].copy()
    user.zero_()  # the training loop reuses its buffers; the worker renders later
    assert host["view"].dtype.name == "float32" and host["f64"].dtype.name == "float32"
    assert host["flag"].tolist() == [1.0, 0.0] and host["img"].dtype.name == "uint8"
    assert (host["view"] == before).all()
