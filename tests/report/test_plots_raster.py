"""The Pillow renderers of the in-loop figures: documented sizes, marks where the data puts them (checked by
moving the data and finding the mark move by the axis scale), no figure for empty data, and matplotlib's
figure machinery never imported by them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from trackdiag.plots import latent as L
from trackdiag.plots import loss as LO
from trackdiag.plots import pixel as P
from trackdiag.plots import raster as R
from trackdiag.plots import tiling as T
from trackdiag.plots.samples import samples_figure


def _columns(img: np.ndarray, rgb: tuple[int, int, int], rows: slice, tol: int = 40, min_count: int = 20
             ) -> list[int]:
    """Columns where at least ``min_count`` pixels of ``rows`` have colour ``rgb`` (± tol per channel)."""
    band = img[rows].astype(int)
    hit = (np.abs(band - np.array(rgb)) <= tol).all(axis=2)
    return [int(c) for c in np.nonzero(hit.sum(axis=0) >= min_count)[0]]


def _groups(cols: list[int]) -> list[float]:
    """Centres of runs of adjacent columns."""
    out: list[list[int]] = []
    for c in cols:
        if out and c - out[-1][-1] <= 1:
            out[-1].append(c)
        else:
            out.append([c])
    return [float(np.mean(g)) for g in out]


def _profile(n: int = 128) -> np.ndarray:
    r = np.arange(n, dtype=np.float64)
    return np.stack([r, 1.0 / (1.0 + r) + 0.01 * (1 + np.cos(r))])


@pytest.mark.parametrize("fstar", [12.0, 20.0, 31.0])
def test_radial_profile_marks_fstar_and_its_harmonics_on_a_linear_radius_axis(fstar):
    img = T.radial_profile(_profile(), np.array([[fstar, fstar, np.nan, np.nan, 256.0]]))
    assert img.shape == (*T.SIZES["radial_profile"], 3) and img.dtype == np.uint8
    # Below the legend: the solid red f* line and the dashed 0.5·f* and 2·f* lines are the only red columns.
    band = img[200:340].astype(int)
    # anti-aliased
    reddish = (band[..., 0] > 200) & (band[..., 0] - np.maximum(band[..., 1], band[..., 2]) > 60)
    xs = _groups([int(c) for c in np.nonzero(reddish.sum(axis=0) >= 30)[0]])
    assert len(xs) == 3, xs
    half, one, two = xs
    assert abs((two - one) - 2 * (one - half)) <= 2.0  # x is linear in the radius: f*/2, f*, 2f*
    # The radius axis spans the measured radii 1..127 with 3 % margins over the plot box (62..586 px).
    lo, hi = 1 - 0.03 * 126, 127 + 0.03 * 126
    expect = 62 + (fstar - lo) / (hi - lo) * (586 - 62)
    assert abs(one - expect) <= 1.5, (one, expect)


def test_threshold_lines_of_the_band_panels_sit_at_the_threshold():
    d = np.zeros((6, 6))
    d[2:4] = 1.0
    ys = {}
    for thr in (0.25, 0.5, 0.75):
        img = T.local_period_bands(d, np.array([0, 0, 1, 1, 0, 0.0]), np.full(6, 1 / 3), np.array(
            [[64, 32, 256, 256, thr]]), base=8.0)
        assert img.shape == (*T.SIZES["local_period_bands"], 3)
        # The bottom panel (columns share): the grey dashed threshold is the greyest row there.
        panel = img[440:520, 80:300].astype(int)
        grey = ((np.abs(panel - 128) <= 30).all(axis=2)).sum(axis=1)
        ys[thr] = 440 + int(np.argmax(grey))
    assert ys[0.25] > ys[0.5] > ys[0.75]  # higher share, higher on the page
    assert abs((ys[0.25] - ys[0.5]) - (ys[0.5] - ys[0.75])) <= 1  # linear in the share


def test_heat_maps_use_the_colour_map_and_show_nan_as_background():
    a = np.array([[0.0, 1.0], [np.nan, 0.5]])
    rgb = R.colorize(a, "viridis", 0.0, 1.0)
    lut = R.lut("viridis")
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == lut[0]).all() and (rgb[0, 1] == lut[255]).all() and (rgb[1, 0] == 255).all()
    assert (rgb[1, 1] == lut[128]).all()


def test_fft_figure_puts_the_bright_cell_where_the_spectrum_has_it():
    logp = np.zeros((64, 64))
    logp[10, 50] = 7.0  # one bright cell, upper right of the centre
    img = T.fft_log(logp, title="t", side=64.0)
    assert img.shape == (*T.SIZES["fft_log"], 3)
    # magma's top
    bright = (img[..., 0] > 235) & (img[..., 1] > 235) & (img[..., 2] > 150) & (img[..., 2] < 225)
    ys, xs = np.nonzero(bright[:, :420])  # left of the colour bar
    side = min(500 - 150, 440 - 80)
    assert abs(xs.mean() - (70 + (50 + 0.5) / 64 * side)) <= 3
    assert abs(ys.mean() - (34 + (10 + 0.5) / 64 * side)) <= 3


def test_loss_curve_marks_the_spike_at_its_step():
    steps = np.arange(200.0)
    cols = []
    for at in (40, 100):
        h = np.stack([steps, np.full(200, 0.5), np.full(200, 0.5), np.full(200, 0.5), np.full(200, 0.5),
                      np.zeros(200)])
        h[1, at] = 2.0
        h[5, at] = 1.0
        img = LO.loss_history_figure(h)
        assert img.shape == (400, 800, 3)
        cols.append(_groups(_columns(img[:, :600], (0xD6, 0x27, 0x28), slice(30, 350), tol=30, min_count=3)))
    (a,), (b,) = cols
    box = (72.0, 786.0)
    scale = (box[1] - box[0]) / (199 * 1.04)
    assert abs((b - a) - 60 * scale) <= 2.5


def test_pixel_boxes_land_on_the_anomaly():
    img = (np.full((3, 64, 96), 90)).astype(np.uint8)
    heat = np.zeros((64, 96), np.uint8)
    xs = []
    for x0 in (40, 200):
        box = {"x0": x0, "y0": 100, "x1": x0 + 20, "y1": 120, "axis": "rows"}
        out = P.pixel_overlay(image_in=img, image_out=img, heatmap=heat, grad_heatmap=None, boxes=[box],
                              full_size=(256, 384))
        assert out.shape[1] == 900 and out.dtype == np.uint8
        xs.append(_groups(_columns(out[:, 450:], (0xFF, 0x30, 0x30), slice(0, 300), tol=40, min_count=8)))
    (a0, a1), (b0, b1) = xs
    assert abs((b0 - a0) - 160 * 350 / 384) <= 2 and abs((a1 - a0) - 20 * 350 / 384) <= 2


def test_samples_figure_tints_the_doubled_zone_only_and_is_none_without_images():
    assert samples_figure(np.zeros((0, 8, 8, 3), np.uint8)) is None
    imgs = np.full((1, 128, 128, 3), 128, np.uint8)
    doubled = np.zeros((4, 4))
    doubled[:2] = 1.0  # the top half
    fig = samples_figure(imgs, size=(128, 128), tiling_maps={"local_doubled": doubled,
                                                            "local_geometry": np.array([[32, 32, 128, 128]])})
    assert fig is not None and fig.dtype == np.uint8
    red = (fig[..., 0].astype(int) - fig[..., 1]) > 30
    rows = np.nonzero(red.sum(axis=1) > 100)[0]
    panel = np.nonzero((fig[..., 0] == 128).sum(axis=1) > 100)[0]  # untinted grey rows of the panel
    assert rows.size and panel.size and rows.max() < panel.min()  # the tint sits above the untinted half


def test_empty_data_gives_no_figure():
    nan = np.full((8, 8), np.nan)
    maps = {"fft_log_hann": nan, "local_period_px": nan, "local_geometry": np.array([[8, 4, 8, 8]]),
            "radial_profile": np.full((2, 5), np.nan), "radial_marks": np.ones((1, 5))}
    assert T.render_all(maps, {}, {}) == {}


def test_montage_and_stats_sizes():
    m = L.channel_montage(np.random.default_rng(0).standard_normal((6, 16, 32)), title="x")
    assert m.dtype == np.uint8 and m.shape[1] == 4 * 240 + 10
    s = L.channel_stats_figure({"a": np.ones((7, 4)), "b": np.zeros((7, 4))})
    assert s.shape == (520, 1000, 3)


def test_in_loop_renderers_do_not_build_matplotlib_figures():
    code = ("import sys, numpy as np\n"
            "from trackdiag.plots import tiling as T, loss as LO\n"
            "from trackdiag.plots.samples import samples_figure\n"
            "T.fft_log(np.zeros((8, 8)), title='t')\n"
            "LO.loss_history_figure(np.stack([np.arange(5.0)] + [np.ones(5)] * 4 + [np.zeros(5)]))\n"
            "samples_figure(np.zeros((1, 8, 8, 3), np.uint8))\n"
            "print(sorted(m for m in sys.modules if m in ('matplotlib.figure', 'matplotlib.pyplot')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
