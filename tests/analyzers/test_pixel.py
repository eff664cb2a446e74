"""Pixel analyzer: planted defects with known boxes, row/column stripes, mask leakage, shapes and errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from trackdiag.analyzers.base import StepInputs
from trackdiag.analyzers.pixel import (
    Component,
    PixelAnalyzer,
    PixelParams,
    aligned_energy_fractions,
    anomaly_grid,
    anomaly_threshold,
    component_axis,
    difference_map,
    gradient_difference,
    label_components,
    mask_border,
    mask_energy,
    sobel,
)
from trackdiag.errors import InputValueError, ShapeError

H = W = 128


def _texture(seed: int, b: int = 1, c: int = 3, h: int = H, w: int = W) -> torch.Tensor:
    """Smooth random texture in [0.2, 0.8] (no structure along rows or columns)."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((b, c, h, w)), (0, 0, 2, 2))
    x = 0.5 + 0.1 * x / x.std()
    return torch.from_numpy(np.clip(x, 0.2, 0.8)).float()


def _noisy(x: torch.Tensor, seed: int, sigma: float = 0.01) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g)


def _run(pred, target, mask=None, **params) -> tuple[PixelAnalyzer, object]:
    a = PixelAnalyzer(PixelParams(**params))
    out = a.compute(StepInputs(step=0, pred=pred, target=target, mask=mask))
    host = {k: v.cpu().numpy() for k, v in out.items()}
    return a, a.summarize(0, host, sample_ids=[f"s{i}" for i in range(pred.shape[0])])


# -- pure functions --------------------------------------------------------------------------------------
def test_sobel_matches_scipy_reference():
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    g = sobel(x).numpy()
    # scipy smooths along every other axis, so apply it image by image.
    ref_x = np.stack([[ndimage.sobel(im, axis=1, mode="nearest") / 8 for im in b] for b in x.numpy()])
    ref_y = np.stack([[ndimage.sobel(im, axis=0, mode="nearest") / 8 for im in b] for b in x.numpy()])
    np.testing.assert_allclose(g[:, :, 0], ref_x, atol=1e-6)
    np.testing.assert_allclose(g[:, :, 1], ref_y, atol=1e-6)


def test_gradient_difference_of_a_step_is_half_the_step_on_both_sides():
    t = torch.zeros(1, 1, 8, 16)
    p = t.clone()
    p[..., 8:] = 0.4  # vertical step between columns 7 and 8
    gd = gradient_difference(p, t)[0]
    assert torch.allclose(gd[:, 7], torch.full((8,), 0.2)) and torch.allclose(gd[:, 8], torch.full((8,), 0.2))
    assert float(gd[:, :7].abs().max()) < 1e-6 and float(gd[:, 9:].abs().max()) < 1e-6
    assert torch.allclose(difference_map(p, t)[0, :, 8:], torch.full((8, 8), 0.4))


def test_difference_map_broadcasts_a_gray_target_and_rejects_bad_shapes():
    p = torch.full((2, 3, 4, 5), 0.5)
    assert difference_map(p, torch.zeros(2, 1, 4, 5)).shape == (2, 4, 5)
    with pytest.raises(ShapeError, match=r"expected \(B, \*, H, W\) = \(2, \*, 4, 5\); got \(2, 3, 4, 6\)"):
        difference_map(p, torch.zeros(2, 3, 4, 6))
    with pytest.raises(ShapeError, match="1 or 3 channels"):
        difference_map(p, torch.zeros(2, 2, 4, 5))
    with pytest.raises(ShapeError, match="B×C×H×W"):
        difference_map(torch.zeros(3, 4, 5), torch.zeros(3, 4, 5))


def test_threshold_is_robust_to_the_defect_and_respects_the_floor():
    g = torch.Generator().manual_seed(1)
    s = 0.1 + 0.01 * torch.randn(1, 64, 64, generator=g)
    s[:, :10, :10] = 5.0  # a big defect must not inflate the threshold (median/MAD, not mean/std)
    thr = float(anomaly_threshold(s, sigma=4.0, min_score=0.0)[0])
    assert 0.13 < thr < 0.16  # 0.1 + 4 * 0.01
    assert float(anomaly_threshold(torch.zeros(1, 8, 8), min_score=0.05)[0]) == pytest.approx(0.05)
    # Large images use a strided subsample for the statistics: same answer as the exact median/MAD.
    big = 0.1 + 0.01 * torch.randn(2, 600, 600, generator=g)
    flat = big.reshape(2, -1)
    med = flat.median(dim=1).values
    exact = med + 4.0 * 1.4826 * (flat - med[:, None]).abs().median(dim=1).values
    region = torch.zeros(2, 600, 600, dtype=torch.bool)
    region[:, :300] = True
    for reg in (None, region):
        approx = anomaly_threshold(big, region=reg, sigma=4.0, min_score=0.0)
        assert torch.allclose(approx, exact, rtol=5e-3)


def test_mask_border_is_one_pixel_each_side():
    m = torch.zeros(1, 6, 6, dtype=torch.bool)
    m[0, :3] = True
    b = mask_border(m)[0]
    assert b[2].all() and b[3].all() and int(b.sum()) == 12


def test_mask_energy_inside_outside_and_share():
    d2 = torch.zeros(1, 4, 4)
    d2[0, :2] = 1.0  # energy in the top half
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 2:] = True  # the wall is the bottom half: all energy is outside
    e = mask_energy(d2, mask)
    assert float(e["energy_out_frac"][0]) == pytest.approx(1.0)
    assert float(e["energy_in_mask"][0]) == 0 and float(e["energy_out_mask"][0]) == pytest.approx(1.0)
    assert torch.isnan(mask_energy(d2, None)["energy_out_frac"]).all()


def test_components_from_a_pooled_grid_keep_area_and_box():
    score = torch.zeros(1, 40, 60)
    score[0, 10:13, 5:55] = 1.0  # a 50×3 horizontal streak
    score[0, 30:36, 20:24] = 2.0  # a 4×6 blob
    for stride in (1, 2, 3):
        grid = anomaly_grid(score, torch.tensor([0.5]), stride=stride)[0].numpy()
        comps = label_components(grid, stride=stride, height=40, width=60, min_area_px=1)
        assert len(comps) == 2
        streak = next(c for c in comps if c.axis == "rows")
        assert streak.area_px == 150 and streak.mean_score == pytest.approx(1.0)
        assert abs(streak.x0 - 5) < stride and abs(streak.x1 - 55) < stride
        blob = next(c for c in comps if c.axis == "none")
        assert blob.area_px == 24 and blob.peak_score == pytest.approx(2.0)
        rows, cols = aligned_energy_fractions(comps)
        assert rows == pytest.approx(150 / (150 + 48)) and cols == 0


# -- the analyzer --------------------------------------------------------------------------------------
def test_planted_rectangle_is_found_with_its_box():
    target = _texture(0)
    clean = _noisy(target, 1)
    defect = clean.clone()
    defect[:, :, 40:70, 30:90] += 0.3  # rows 40..69, columns 30..89
    _, clean_res = _run(clean, target)
    assert clean_res.metrics["anomaly_count"] == 0 and clean_res.metrics["anomaly_area_frac"] < 1e-3
    _, res = _run(defect, target)
    rows = res.tables["anomalies"]
    assert res.metrics["anomaly_count"] == 1 and len(rows) == 1
    box = rows[0]
    # Exact up to the one-pixel Sobel halo that straddles a sharp edge.
    assert abs(box["x0"] - 30) <= 1 and abs(box["x1"] - 90) <= 1
    assert abs(box["y0"] - 40) <= 1 and abs(box["y1"] - 70) <= 1
    assert 30 * 60 <= box["area_px"] <= 32 * 62
    assert box["axis"] == "none" and 0.25 < box["mean_score"] < 0.6 and box["peak_score"] >= box["mean_score"]
    assert res.metrics["anomaly_area_frac"] == pytest.approx(box["area_px"] / (H * W), rel=1e-6)
    assert res.metrics["diff_mae"] > clean_res.metrics["diff_mae"]


def test_box_precision_with_a_coarse_grid():
    target = _texture(2)
    defect = _noisy(target, 3)
    defect[:, :, 40:70, 30:90] += 0.3
    _, res = _run(defect, target, map_max_side=32)  # stride 4
    box = res.tables["anomalies"][0]
    for got, want in ((box["x0"], 30), (box["x1"], 90), (box["y0"], 40), (box["y1"], 70)):
        assert abs(got - want) <= 4 + 1


@pytest.mark.parametrize("axis", ["rows", "cols"])
def test_stripes_are_reported_as_aligned(axis):
    target = _texture(4)
    pred = _noisy(target, 5)
    for k in range(10, H - 10, 16):  # 2-px stripes every 16 px, the whole width (or height)
        if axis == "rows":
            pred[:, :, k:k + 2, :] += 0.25
        else:
            pred[:, :, :, k:k + 2] += 0.25
    _, res = _run(pred, target)
    m = res.metrics
    key, other = ("anomaly_row_energy_frac", "anomaly_col_energy_frac") if axis == "rows" else (
        "anomaly_col_energy_frac", "anomaly_row_energy_frac")
    assert m[key] > 0.95 and m[other] < 0.05
    assert res.texts["anomaly_axis_hint"] == axis
    assert m["anomaly_count"] == len(range(10, H - 10, 16))
    assert all(r["axis"] == axis for r in res.tables["anomalies"])
    # A compact defect is not aligned.
    blob = _noisy(target, 6)
    blob[:, :, 50:80, 50:80] += 0.25
    _, res2 = _run(blob, target)
    assert res2.metrics["anomaly_aligned_energy_frac"] == 0 and res2.texts["anomaly_axis_hint"] == "none"


def test_leak_outside_the_mask_raises_out_energy():
    target = _texture(7)
    mask = torch.zeros(1, 1, H, W, dtype=torch.bool)
    mask[..., 20:100, 16:112] = True
    new_material = _texture(8)
    clean_edit = torch.where(mask, new_material, _noisy(target, 9, 0.005))
    leaky = clean_edit.clone()
    leaky[..., 100:120, 40:70] = new_material[..., 100:120, 40:70]  # spills 20 rows below the wall
    _, clean_res = _run(clean_edit, target, mask)
    _, leak_res = _run(leaky, target, mask)
    assert clean_res.metrics["energy_out_frac"] < 0.01
    assert leak_res.metrics["energy_out_frac"] > 10 * clean_res.metrics["energy_out_frac"]
    assert leak_res.metrics["energy_out_frac"] > 0.05
    assert leak_res.metrics["energy_out_mask"] > clean_res.metrics["energy_out_mask"]
    assert leak_res.metrics["energy_in_mask"] == pytest.approx(clean_res.metrics["energy_in_mask"], rel=1e-5)


def test_threshold_inside_the_mask_finds_the_leak_not_the_edit():
    """With a mask, the edit itself sets the threshold, so the whole wall is not one giant anomaly."""
    target = _texture(10)
    mask = torch.zeros(1, 1, H, W, dtype=torch.bool)
    mask[..., :96, :] = True
    edited = torch.where(mask, target + 0.15, _noisy(target, 11, 0.003))  # a uniform in-wall change
    edited[..., 110:120, 10:40] += 0.4  # the leak
    _, res = _run(edited, target, mask)
    rows = res.tables["anomalies"]
    assert len(rows) == 1
    assert rows[0]["y0"] >= 96 and abs(rows[0]["x0"] - 10) <= 1 and abs(rows[0]["x1"] - 40) <= 1


def test_batch_per_sample_values_and_bounded_maps():
    target = _texture(12, b=4)
    pred = _noisy(target, 13)
    pred[1, :, 10:20, 10:20] += 0.5
    a = PixelAnalyzer(PixelParams(component_samples=2, map_max_side=64, render_max_side=32))
    out = a.compute(StepInputs(step=0, pred=pred, target=target))
    assert out["diff_mae"].shape == (4,) and out["energy_out_frac"].shape == (4,)
    assert out["map/anomaly_grid"].shape == (2, 3, 64, 64)
    assert out["map/image_out"].dtype == torch.uint8 and out["map/image_out"].shape == (3, 32, 32)
    assert float(out["anomaly_area_frac"][1]) > 0 and float(out["anomaly_area_frac"][0]) == 0
    host = {k: v.numpy() for k, v in out.items()}
    res = a.summarize(5, host, sample_ids=["a", "b", "c", "d"])
    assert {r["sample"] for r in res.tables["anomalies"]} == {"b"}
    assert res.metrics["anomaly_count"] == 0.5  # one component over the two labelled samples


def test_render_through_the_session_transfer_draws_the_image():
    from trackdiag.core.transfer import to_host

    target = _texture(14)
    pred = _noisy(target, 15)
    pred[:, :, 40:70, 30:90] += 0.3
    a = PixelAnalyzer()
    device = a.compute(StepInputs(step=0, pred=pred, target=target))
    host = to_host({"pixel": device})["pixel"]
    for key, t in device.items():  # uint8 images stay uint8 (a quarter of the bytes), the rest is float32
        assert host[key].dtype == (np.uint8 if t.dtype == torch.uint8 else np.float32), key
        np.testing.assert_array_equal(host[key],
                                      t.to(torch.float32 if t.dtype != torch.uint8 else t.dtype).numpy())
    assert host["map/image_out"].dtype == np.uint8
    res = a.summarize(0, host)
    assert len(res.tables["anomalies"]) == 1
    img = a.render(res)["pixel_overlay"]
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 200
    # The output panel shows the texture (mid-grey), not a clipped white square.
    h, w = img.shape[:2]
    panel = img[h // 8: h // 2 - h // 8, w // 2 + w // 8: w - w // 8]
    assert 60 < panel.mean() < 200 and panel.std() > 5


def test_heatmap_scale_only_changes_the_figure_map():
    target = _texture(16)
    pred = _noisy(target, 17, 0.02)
    _, r1 = _run(pred, target, heatmap_scale=1.0)
    _, r8 = _run(pred, target, heatmap_scale=8.0)
    assert r8.maps["heatmap"].mean() > 4 * r1.maps["heatmap"].mean()
    assert r1.metrics["diff_mae"] == r8.metrics["diff_mae"]


def test_requires_target_and_validates_params():
    a = PixelAnalyzer()
    assert a.requires == ("pred", "target") and a.name == "pixel"
    assert not a.due(StepInputs(step=0, pred=torch.zeros(1, 3, 8, 8)))
    assert a.due(StepInputs(step=0, pred=torch.zeros(1, 3, 8, 8), target=torch.zeros(1, 3, 8, 8)))
    with pytest.raises(InputValueError, match="heatmap_scale > 0"):
        PixelAnalyzer(PixelParams(heatmap_scale=0))


def test_config_file_lists_every_param_and_builds_the_analyzer():
    from pathlib import Path

    from trackdiag.config import build_component
    from trackdiag.confstore import group_node

    path = Path(__file__).resolve().parents[2] / "conf" / "analyzer" / "pixel.yaml"
    assert path.read_text().splitlines()[0] == "# @package analyzer.pixel"
    node = group_node("analyzer", "pixel")  # the file selects the Params defaults (trackdiag.confstore)
    names = {f.name for f in dataclasses.fields(PixelParams)}
    assert names == set(node) - {"_target_"}
    a = build_component(node, allow_external=False, what="analyzer.pixel")
    assert isinstance(a, PixelAnalyzer) and a.params == PixelParams()


def test_border_streaks_and_short_joints_are_not_stripes():
    """A convolution's zero padding errs along the frame border, an unsharp mortar joint along a short
    streak: neither is a row or column stripe (the demo's resize model read ``pixel_rows`` from its bottom
    border); a stripe across the wall still is."""
    h, w = 128, 128
    assert component_axis(0, 124, 128, 128, height=h, width=w) == "edge"  # bottom border
    assert component_axis(125, 0, 128, 21, height=h, width=w) == "edge"   # right border
    assert component_axis(31, 30, 33, 46, height=h, width=w) == "none"    # a 16-px head joint
    assert component_axis(5, 40, 120, 45, height=h, width=w) == "rows"    # a stripe across the wall
    assert component_axis(40, 3, 45, 125, height=h, width=w) == "cols"
    comps = [Component(0, 124, 128, 128, 512.0, 60.0, 0.1, 0.2, "edge"),
             Component(5, 40, 120, 45, 575.0, 20.0, 0.1, 0.2, "rows"),
             Component(31, 30, 33, 46, 32.0, 20.0, 0.1, 0.2, "none")]
    assert aligned_energy_fractions(comps) == (pytest.approx(0.5), 0.0)
