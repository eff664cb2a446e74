"""TilingAnalyzer: the analyzer contract (shapes, no host sync in compute, bad input), summarize/render, the
verdict rules and the Hydra config file."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.base import StepInputs
from trackdiag.analyzers.tiling import SEED_KEYS, TilingAnalyzer, TilingParams, likely_causes, tiling_metrics
from trackdiag.core.transfer import to_host
from trackdiag.errors import InputValueError, ShapeError
from trackdiag.functional import order
from trackdiag.testing import synth as S

OURS = ("fundamental_period_px", "acf_first_peak_period_px", "ref_period_px", "periodicity_score",
        "checkerboard_score", "border_cross_index", "nonfinite_frac", "valid_px_frac")


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(30)
    return torch.stack([S.to_rgb(S.tiles(160, 224, period_px=14.0, generator=g)),
                        S.to_rgb(S.brick(160, 224, period_px=9.0, generator=g), tint=(1.0, 0.8, 0.6)),
                        S.to_rgb(S.plaster(160, 224, generator=g))])


def test_compute_returns_per_sample_values_and_small_maps(batch):
    out = TilingAnalyzer().compute(StepInputs(step=0, pred=batch))
    numeric = [k for k in out if not k.startswith("map/")]
    for key in [k for k in SEED_KEYS if k != "band_axis_hint"] + list(OURS) + ["band_axis_is_cols"]:
        assert key in out, key
    for key in numeric:
        assert out[key].shape == (3,), (key, out[key].shape)
        assert out[key].dtype == torch.float32
    maps = {k: v for k, v in out.items() if k.startswith("map/")}
    for name in ("map/local_period_px", "map/fft_log_hann", "map/fft_log_nohann", "map/radial_profile",
                 "map/acf"):
        assert maps[name].ndim == 2 and max(maps[name].shape) <= 256, (name, maps[name].shape)
    assert max(maps["map/fft_log_hann"].shape) <= TilingParams().map_max_side
    assert float(out["fundamental_period_px"][0]) == pytest.approx(14.0, rel=0.03)
    assert float(out["fundamental_period_px"][1]) == pytest.approx(9.0, rel=0.03)


def test_compute_never_synchronises_with_the_device(batch, monkeypatch):
    """Any .item()/.tolist()/.cpu()/.numpy()/bool()/float()/int() on a tensor inside compute would stall a
    CUDA training step; here every one of them raises."""
    def boom(*_a, **_k):
        raise AssertionError("host synchronisation inside compute")

    mask = torch.zeros(3, 1, 160, 224, dtype=torch.bool)
    mask[:, :, 20:150, 10:200] = True
    ref = S.to_rgb(S.tiles(96, 96, period_px=14.0))[None]
    analyzer = TilingAnalyzer()
    # functional.order sorts CPU tensors through numpy views (zero-copy: no device to wait for); a CUDA batch
    # takes its torch path, which is the one checked here
    monkeypatch.setattr(order, "host_ok", lambda _t: False)
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    out = analyzer.compute(StepInputs(step=0, pred=batch, mask=mask, ref=ref))
    monkeypatch.undo()
    assert float(out["ref_period_px"][0]) == pytest.approx(14.0, rel=0.03)


def test_non_finite_pixels_are_invalid_and_never_crash():
    g = torch.Generator().manual_seed(31)
    x = S.to_rgb(S.tiles(128, 128, period_px=12.0, generator=g))[None].repeat(3, 1, 1, 1)
    x[0, :, 10:30, :] = float("nan")
    x[1, 1, 60, 60] = float("inf")
    x[2] = float("nan")  # nothing left at all
    out = tiling_metrics(x)
    nf = out["nonfinite_frac"].tolist()
    assert nf[0] == pytest.approx(20 / 128) and nf[1] == pytest.approx(1 / 128 ** 2) and nf[2] == 1.0
    assert out["valid_px_frac"].tolist() == pytest.approx([1 - nf[0], 1 - nf[1], 0.0])
    assert float(out["fundamental_period_px"][0]) == pytest.approx(12.0, rel=0.03)
    assert float(out["fundamental_period_px"][1]) == pytest.approx(12.0, rel=0.03)
    assert np.isnan(float(out["fundamental_period_px"][2])) and float(out["periodicity_score"][2]) == 0.0
    for k, v in out.items():
        if not k.startswith("map/") and k not in ("nonfinite_frac", "valid_px_frac", "fft_side_px"):
            assert not torch.isinf(v).any(), k


def test_masks_of_any_accepted_shape_and_the_empty_mask():
    inside = S.grating(128, 160, period_px=10.0)
    outside = S.grating(128, 160, period_px=23.0, angle_deg=70)
    m = S.ellipse_mask(128, 160, radii=(0.35, 0.35))
    x = S.to_rgb(S.composite(inside, outside, m))[None]
    for mask in (m, m[None], m[None, None].float(), m.numpy()):
        out = tiling_metrics(x, mask=mask, maps=False)
        assert float(out["fundamental_period_px"][0]) == pytest.approx(10.0, rel=0.03)
        assert float(out["valid_px_frac"][0]) == pytest.approx(float(m.float().mean()), rel=1e-4)
    empty = tiling_metrics(x, mask=torch.zeros(128, 160), maps=False)
    assert float(empty["valid_px_frac"][0]) == 0.0 and np.isnan(float(empty["fundamental_period_px"][0]))
    with pytest.raises(ShapeError, match="expected|must have shape"):
        tiling_metrics(x, mask=torch.ones(64, 64))
    with pytest.raises(ShapeError):
        tiling_metrics(torch.rand(3, 32, 32))
    with pytest.raises(ShapeError):
        tiling_metrics(x, ref=torch.rand(2, 3, 32, 32))


def test_summarize_and_render(batch):
    analyzer = TilingAnalyzer()
    host = to_host({"tiling": analyzer.compute(StepInputs(step=0, pred=batch))})["tiling"]
    result = analyzer.summarize(0, host)
    assert result.texts["band_axis_hint"] in ("rows", "cols") and result.texts["fstar_source"] == "pred"
    assert set(result.metrics) >= set(OURS)
    assert result.metrics["fundamental_period_px"] == pytest.approx(np.nanmean(host["fundamental_period_px"]))
    figs = analyzer.render(result)
    assert set(figs) == {"radial_profile", "fft_log_hann", "fft_log_nohann", "acf", "local_period_px",
                         "local_period_bands"}
    assert all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in figs.values())


def test_tiny_and_non_square_inputs_do_not_crash():
    for h, w in ((24, 24), (40, 200), (200, 40)):
        out = tiling_metrics(torch.rand(2, 1, h, w), maps=True)
        assert out["fundamental_period_px"].shape == (2,)


def test_verdict_rules_name_the_cause_with_numbers_and_a_fix():
    clean = {"periodicity_score": 0.9, "E2f_over_Ef": 0.5, "Ehalf_over_Ef": 0.05, "band_score": 0.1,
             "checkerboard_score": 0.005, "border_cross_index": 0.0, "nonfinite_frac": 0.0,
             "local_period_trend_y": 0.02, "local_period_trend_x": -0.01}
    assert likely_causes(clean) == []
    assert not any(v.cause.startswith("Aliasing") for v in likely_causes({**clean,
                                                                          "resize_nmse_downUp": 0.6}))
    cases = {
        "Halved period": {"period_ratio_to_ref": 0.5, "ref_period_px": 16.0, "ref_periodicity_score": 0.9,
                          "E2f_over_Ef": 3.0},
        "Doubled period": {"period_ratio_to_ref": 2.0, "ref_period_px": 16.0, "ref_periodicity_score": 0.9,
                           "Ehalf_over_Ef": 1.2},
        "Harmonic confusion": {"E2f_over_Ef": 3.0},
        "A full-height band at twice the period": {"band_col_frac_max": 0.9, "band_row_frac_max": 0.3},
        "A zone at twice the period": {"band_doubled_frac": 0.3, "band_col_frac_max": 0.5},
        "Checkerboard": {"checkerboard_score": 0.2},
        "Aliasing": {"resize_nmse_downUp": 0.6, "shift_nmse_dx1": 0.55},  # both needed
        "FFT border cross": {"border_cross_index": 0.9, "axis_energy_frac_nohann": 0.6},
        "Perspective": {"local_period_trend_y": 0.3},
        "No dominant period": {"periodicity_score": 0.1},
        "Non-finite": {"nonfinite_frac": 0.01},
    }
    for cause, change in cases.items():
        verdicts = likely_causes({**clean, **change})
        hit = [v for v in verdicts if v.cause.startswith(cause)]
        assert hit, (cause, [v.cause for v in verdicts])
        assert hit[0].fix and hit[0].evidence
        assert all(k in hit[0].evidence for k in change if k != "band_axis_hint")


def test_params_validation_and_conf_yaml_lists_every_param():

    from trackdiag.config import build_component
    from trackdiag.confstore import group_node

    with pytest.raises(InputValueError, match="band_doubled_low"):
        TilingAnalyzer(TilingParams(band_doubled_low=3.0))
    path = Path(__file__).resolve().parents[2] / "conf" / "analyzer" / "tiling.yaml"
    assert path.read_text().splitlines()[0] == "# @package analyzer.tiling"
    node = group_node("analyzer", "tiling")  # the file selects the Params defaults (trackdiag.confstore)
    assert set(node) - {"_target_"} == {f.name for f in fields(TilingParams)}
    analyzer = build_component(node, allow_external=False, what="analyzer.tiling")
    assert isinstance(analyzer, TilingAnalyzer) and analyzer.params == TilingParams()
    assert analyzer.name == "tiling" and analyzer.requires == ("pred",)
