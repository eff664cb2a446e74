"""The estimators behind the period-dependent verdicts, each against a texture whose truth is constructed:
strip novelty (full-width bands and zones at twice the period along x), the scale change between opposite
thirds (perspective), the period at the frame centre, and the fine-peak share (aliasing by strided
subsampling against its antialiased twin)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trackdiag.analyzers.bands import scale_trend, strip_band_keys
from trackdiag.analyzers.tiling import tiling_metrics
from trackdiag.functional.localmap import strip_novelty
from trackdiag.functional.spectral import fine_peak_frac, spectrum


def _tiles(h: int, w: int, px: np.ndarray, py: float | np.ndarray, seed: int = 0) -> np.ndarray:
    """Tiles with grout: ``px`` the x period per pixel (``H×W`` or broadcastable), ``py`` the y period (a
    number, or per pixel: rows then fan out from the frame's middle row, as under a perspective); per tile
    brightness jitter, grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = np.cumsum(1.0 / np.broadcast_to(px, (h, w)), axis=1)  # phase along x (in tiles)
    v = (yy - h / 2) / np.broadcast_to(py, (h, w)) + 1000.0
    gu = np.abs(u - np.round(u)) < 0.1
    gv = np.abs(v - np.round(v)) < 0.1
    jitter = rng.normal(0, 0.03, size=(int(v.max()) + 2, int(u.max()) + 2))
    tone = 0.6 + jitter[np.floor(v).astype(int), np.floor(u).astype(int)]
    img = np.where(gu | gv, 0.35, tone) + rng.normal(0, 0.01, size=(h, w))
    return img.astype(np.float32)


def _band_image(kind: str) -> torch.Tensor:
    h, w = 384, 512
    px = np.full((h, w), 12.0)
    if kind == "band":
        px[150:230, :] = 24.0  # a full-width band at twice the period along x
    elif kind == "zone":
        px[150:230, 180:330] = 24.0  # the same, over part of the width
    return torch.from_numpy(_tiles(h, w, px, 12.0))[None]


def test_strip_novelty_band_zone_clean() -> None:
    ones = torch.ones(1, 384, 512)
    res = {k: strip_novelty(_band_image(k), ones, strip_px=32) for k in ("clean", "band", "zone")}
    assert float(res["clean"]["novelty_max"][0]) < 0.05
    band, zone = res["band"], res["zone"]
    assert float(band["novelty_max"][0]) >= 0.2 and float(band["extent"][0]) >= 0.8
    assert float(zone["novelty_max"][0]) >= 0.1 and float(zone["extent"][0]) < 0.8
    # the most novel strip lies on the band (rows 150–230)
    at = float(band["argmax"][0] * band["strip_stride_px"][0] + band["strip_px"][0] / 2)
    assert 140 <= at <= 240, at
    keys = strip_band_keys(_band_image("band"), ones)
    assert float(keys["strip_novelty_x"][0]) >= 0.2 and float(keys["strip_novelty_y"][0]) < 0.1


def test_scale_trend_reads_a_perspective_change() -> None:
    h, w = 384, 768
    x = np.linspace(0.0, 1.0, w)[None, :]
    ones = torch.ones(1, h, w)
    # the x and y periods grow together from left to right by 50 % (log slope ln 1.5 ≈ 0.405 per width)
    for growth in (1.0, 1.5):
        pxx = np.broadcast_to(10.0 * growth ** x, (h, w))
        img = _tiles(h, w, pxx, pxx)
        out = scale_trend(torch.from_numpy(img)[None], ones, ds=1)
        tx, ty = float(out["scale_trend_x"][0]), float(out["scale_trend_y"][0])
        if growth == 1.0:
            assert abs(tx) < 0.1 and abs(ty) < 0.1, (tx, ty)
        else:
            assert 0.25 <= tx <= 0.6, tx
            assert abs(ty) < 0.15, ty
            assert float(out["scale_corr_x"][0]) > 0.3


def test_fine_peak_frac_strided_against_antialiased() -> None:
    from scipy.ndimage import gaussian_filter

    h = w = 3 * 256
    fine = _tiles(h, w, np.full((h, w), 2.6 * 3), 2.6 * 3, seed=1)  # 2.6-px tiles once subsampled by 3
    strided = fine[::3, ::3]
    smooth = gaussian_filter(fine, 1.8)[::3, ::3]  # the antialiased twin
    coarse = _tiles(256, 256, np.full((256, 256), 16.0), 16.0, seed=2)  # a real 16-px lattice, sharp grout

    def frac(img: np.ndarray) -> float:
        t = torch.from_numpy(np.ascontiguousarray(img))[None].float()
        out = tiling_metrics(t[:, None].expand(1, 3, -1, -1), maps=False)
        return float(out["alias_fine_peak_frac"][0])

    assert frac(strided) >= 0.1
    assert frac(smooth) < 0.1
    assert frac(coarse) < 0.1  # its harmonics at periods <= 5 px are on its own lattice


def test_fine_peak_frac_without_lattice_counts_every_fine_peak() -> None:
    img = torch.from_numpy(_tiles(256, 256, np.full((256, 256), 4.4), 4.4))[None]  # off the 8-px grid
    spec = spectrum(img - img.mean())
    assert float(fine_peak_frac(spec)[0]) > 0.1


@pytest.mark.parametrize("growth", [1.0, 1.6])
def test_centre_period_on_an_angled_wall(growth: float) -> None:
    """The reported period is the one at the frame centre, also when the period drifts across the wall."""
    h, w = 512, 768
    x = np.linspace(0.0, 1.0, w)[None, :]
    p0 = 14.0 / math.sqrt(growth)  # the period at the left edge; at the centre: 14 px
    pxx = np.broadcast_to(p0 * growth ** x, (h, w))
    img = _tiles(h, w, pxx, pxx, seed=3)
    t = torch.from_numpy(img)[None, None].expand(1, 3, h, w)
    out = tiling_metrics(t, maps=False)
    assert float(out["fundamental_period_px"][0]) == pytest.approx(14.0, rel=0.05)


def test_frame_doubled_period_reports_the_centre_on_a_frame_pulled_to_twice_the_period() -> None:
    """Fronto-parallel walls whose frame lattice reads 2× (a zone or band at twice the period, a 1-D
    texture's second harmonic) report the local map's period; a frame lattice the map reads at P/√3 (a clean
    penny wall), a period the map's windows cannot hold, or a crop that agrees with neither keep the frame's.
    Readings
    (frame, map centre, central half) of generated v8 walls of seeds 5-7 (``_frame_doubled_period``)."""
    from trackdiag.analyzers.tiling_summary import _frame_doubled_period

    cases = [  # (frame, map centre, crop, window px, expected: NaN = the frame's lattice stands)
        (31.5, 15.8, 31.7, 192, 15.8),  # running bond with a doubled zone: the map's
        (21.5, 10.8, 10.8, 192, 10.8),  # tiles with a band: the crop agrees with the map: the crop's
        (55.1, 27.1, 55.3, 128, 27.1),  # planks read at their second harmonic
        (43.7, 18.9, 43.6, 192, 18.9),  # hex with a full-width band (2.31×)
        (49.3, 28.5, 49.2, 192, math.nan),  # a clean penny wall: the map at P/√3 (1.73×)
        (118.2, 56.7, 13.0, 128, math.nan),  # a photographed brick wall: beyond the windows' reach
        (80.8, 35.8, 14.3, 160, math.nan),  # herringbone: the crop agrees with neither
        (30.0, 30.2, 30.1, 192, math.nan),  # frame and map agree
        (29.1, 12.6, 25.3, 128, 12.6),  # hex with a band of doubled columns: the crop at 2× the map too
    ]
    for gl, cen, cc, win, want in cases:
        got = float(_frame_doubled_period(torch.tensor([gl]), torch.tensor([cen]), torch.tensor([cc]),
                                          window_px=win, crop_score=torch.tensor([0.5]))[0])
        if math.isnan(want):
            assert math.isnan(got), (gl, cen, cc, got)
        else:
            assert got == pytest.approx(want, rel=1e-3), (gl, cen, cc, got)
    # a crop without a lattice (scoring 0: a wallpaper wall with a zone) does not contradict the map ...
    got = _frame_doubled_period(torch.tensor([61.4]), torch.tensor([30.8]), torch.tensor([13.8]),
                                window_px=192, crop_score=torch.tensor([0.0]))
    assert float(got[0]) == pytest.approx(30.8, rel=1e-3)
    # ... while the same crop with a lattice does
    got = _frame_doubled_period(torch.tensor([61.4]), torch.tensor([30.8]), torch.tensor([13.8]),
                                window_px=192, crop_score=torch.tensor([0.5]))
    assert math.isnan(float(got[0]))
    # NaN inputs (no map period, no crop lattice): the frame's lattice stands
    nan = torch.tensor([math.nan])
    assert math.isnan(float(_frame_doubled_period(torch.tensor([30.0]), nan, nan, window_px=128)[0]))
