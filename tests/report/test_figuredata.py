"""Named fields between analyzers and figures: what the tiling and pixel analyzers send decodes, by name, to
the values their metrics report; arrays from older spools (fewer fields) still draw."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trackdiag.analyzers.bands import band_metrics
from trackdiag.analyzers.base import StepInputs
from trackdiag.analyzers.pixel import PixelAnalyzer, PixelParams
from trackdiag.analyzers.tiling import TilingAnalyzer, TilingParams
from trackdiag.core.transfer import to_host
from trackdiag.plots.figuredata import (
    BAND_FRAC_THRESHOLD,
    AcfMarks,
    LocalGeometry,
    PixelGeometry,
    RadialMarks,
)
from trackdiag.plots.tiling import local_period_bands
from trackdiag.testing import synth as S


def test_one_home_for_the_band_run_threshold():
    import inspect

    assert TilingParams().band_frac_threshold == BAND_FRAC_THRESHOLD
    assert inspect.signature(band_metrics).parameters["frac_threshold"].default == BAND_FRAC_THRESHOLD
    assert LocalGeometry(1.0, 1.0, 1.0, 1.0).band_frac_threshold == BAND_FRAC_THRESHOLD


@pytest.mark.parametrize("cls", [RadialMarks, AcfMarks, LocalGeometry])
def test_round_trip_and_short_arrays(cls):
    n = len(cls._fields)
    t = cls(*[float(i) + 0.5 for i in range(n)])
    assert cls.from_array(t.to_array()) == t and t.to_array().shape == (1, n)
    short = cls.from_array(np.arange(n - 1, dtype=np.float64))
    last = cls._fields[-1]
    expected = cls._field_defaults.get(last, math.nan)
    got = getattr(short, last)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_tiling_maps_decode_by_name_to_the_metrics():
    g = torch.Generator().manual_seed(3)
    pred = S.to_rgb(S.tiles(128, 160, period_px=12.0, generator=g))[None]
    ref = S.to_rgb(S.tiles(96, 96, period_px=12.0))[None]
    params = TilingParams(band_frac_threshold=0.4)
    analyzer = TilingAnalyzer(params)
    host = to_host({"t": analyzer.compute(StepInputs(step=0, pred=pred, ref=ref))})["t"]
    radial = RadialMarks.from_array(host["map/radial_marks"])
    assert radial.fstar_bin == pytest.approx(float(host["fstar_radius_bin"][0]))
    assert radial.fundamental_bin == pytest.approx(float(host["fundamental_radius_bin"][0]))
    assert radial.ref_bin == pytest.approx(float(host["ref_radius_bin"][0]))
    assert radial.side_px / radial.fundamental_bin == pytest.approx(float(host["fundamental_period_px"][0]))
    marks = AcfMarks.from_array(host["map/acf_marks"])
    assert marks.acf_period_px == pytest.approx(float(host["acf_first_peak_period_px"][0]))
    assert marks.fundamental_period_px == pytest.approx(float(host["fundamental_period_px"][0]))
    assert marks.ref_period_px == pytest.approx(float(host["ref_period_px"][0]))
    geo = LocalGeometry.from_array(host["map/local_geometry"])
    assert (geo.height, geo.width, geo.band_frac_threshold) == (128.0, 160.0, pytest.approx(0.4))
    rows, cols = np.asarray(host["map/local_period_px"]).shape
    # the map's windows cover the image: the last window starts within one stride of the far edge
    assert (rows - 1) * geo.stride_px + geo.window_px <= geo.height + geo.stride_px
    assert (cols - 1) * geo.stride_px + geo.window_px <= geo.width + geo.stride_px


def test_pixel_geometry_names_the_grid():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 96, 200, generator=g)
    pred = target.clone()
    pred[:, :, 40:50, 20:120] += 0.5
    analyzer = PixelAnalyzer(PixelParams(map_max_side=50))
    host = to_host({"p": analyzer.compute(StepInputs(step=0, pred=pred, target=target))})["p"]
    geo = PixelGeometry.from_array(host["map/geometry"])
    grid = np.asarray(host["map/anomaly_grid"])
    assert (geo.height, geo.width) == (96, 200)
    assert grid.shape[-1] == math.ceil(200 / geo.stride) and grid.shape[-2] == math.ceil(96 / geo.stride)
    result = analyzer.summarize(0, host)
    assert PixelGeometry.from_array(result.maps["geometry"]) == geo
    assert result.tables["anomalies"] and all(r["x1"] <= geo.width and r["y1"] <= geo.height
                                              for r in result.tables["anomalies"])


def test_a_geometry_from_an_older_spool_still_draws_its_threshold():
    doubled = np.zeros((4, 6))
    old = np.array([[32.0, 16.0, 64.0, 96.0]])  # before the threshold travelled with the geometry
    new = LocalGeometry(32.0, 16.0, 64.0, 96.0, band_frac_threshold=BAND_FRAC_THRESHOLD).to_array()
    a = local_period_bands(doubled, np.zeros(4), np.zeros(6), old)
    b = local_period_bands(doubled, np.zeros(4), np.zeros(6), new)
    assert a.shape == b.shape and np.array_equal(a, b)
