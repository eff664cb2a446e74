"""Walls seen at an angle brought back fronto-parallel (trackdiag.functional.rectify) against a known tilt.

Synthetic tiles drawn through a pure-projective homography of known tilt check the tilt estimate from the
per-axis local periods, that the rectified wall has one period everywhere, and that a window map read back
on the image grid keeps its geometry; the generated wall scenes check the verdicts (angled zones and bands
found, clean angled walls quiet) on the sample the zone/band floor test already diagnoses.
"""

from __future__ import annotations

import math

import pytest
import torch

from trackdiag.analyzers.bands import local_period_map
from trackdiag.functional.rectify import (
    checked_tilt,
    map_to_image_grid,
    rectify,
    tilt_from_axis_periods,
    to_rectified,
)


def _tiles(h: int, w: int, g: tuple[float, float], period: float) -> torch.Tensor:
    """``1×H×W`` square tiles with thin grout lines of ``period`` px seen through ``q = p / (1 + g·p)``
    (``g`` (g_y, g_x) 1/px, ``p`` centred)."""
    y = torch.arange(h, dtype=torch.float64)[:, None] + 0.5 - h / 2
    x = torch.arange(w, dtype=torch.float64)[None, :] + 0.5 - w / 2
    den = 1.0 + g[0] * y + g[1] * x
    u, v = x / den, y / den
    gu = torch.cos(2 * math.pi * u / period).clamp_min(0.0) ** 8
    gv = torch.cos(2 * math.pi * v / period).clamp_min(0.0) ** 8
    return (0.5 + 0.3 * torch.maximum(gu, gv)).to(torch.float32)[None]


@pytest.mark.parametrize("gx_frame", [-0.45, 0.3, 0.5])
def test_tilt_from_axis_periods_and_rectified_period(gx_frame: float) -> None:
    """The tilt read from the per-axis local periods is the drawn one within 0.08 (frame units; the
    isotropic trend of the same wall is 1.5× off), and on the rectified wall the local period is the
    same everywhere (its spread across the frame shrinks at least 3×)."""
    h = w = 512
    g = (0.02 / h, gx_frame / w)
    img = _tiles(h, w, g, 16.0)
    lp = local_period_map(img, None, clean=True)
    est, spread = tilt_from_axis_periods(lp.period_x_px, lp.period_y_px, lp.center_y, lp.center_x,
                                         height=h, width=w)
    assert abs(float(est[0, 1]) * w - gx_frame) < 0.08, (est * torch.tensor([h, w]), spread)
    assert abs(float(est[0, 0]) * h) < 0.1
    xr, vr = rectify(img, torch.ones_like(img), est)
    assert 0.6 < float(vr.mean()) <= 1.0
    lr = local_period_map(xr, vr > 0.5, clean=True)

    def spread_of(m: torch.Tensor) -> float:
        lg = torch.log(m[torch.isfinite(m)])
        return float(lg.quantile(0.9) - lg.quantile(0.1))

    assert spread_of(lr.period_x_px) < spread_of(lp.period_x_px) / 3


def test_checked_tilt_falls_back_on_the_isotropic_trend() -> None:
    """An axis estimate with the trend's sign and size is kept; one of the wrong sign, or none, is replaced
    by the trend over 1.4 (2 on a 1-D texture); a flat wall with a flat estimate keeps it."""
    tilt = torch.tensor([[0.02, 0.35], [0.0, -0.3], [float("nan"), float("nan")], [0.05, 0.1]])
    trend = torch.tensor([[0.0, 0.5], [0.0, 0.42], [0.0, 0.6], [0.0, 0.0]])
    one_d = torch.tensor([False, False, True, False])
    got = checked_tilt(tilt, trend, one_d)
    assert torch.allclose(got[0], torch.tensor([0.02, 0.35]))
    assert torch.allclose(got[1], torch.tensor([0.0, 0.3]))
    assert torch.allclose(got[2], torch.tensor([0.0, 0.3]))
    assert torch.allclose(got[3], torch.tensor([0.05, 0.1]))


def test_rectify_identity_and_map_read_back() -> None:
    """No tilt: the rectified wall is the image and a window map reads back unchanged; a tilt moves the
    image's window centres to their rectified places (the frame centre stays)."""
    torch.manual_seed(0)
    x = torch.rand(2, 64, 96)
    v = torch.ones_like(x)
    v[1, :, :10] = 0
    xr, vr = rectify(x, v, torch.zeros(2, 2))
    inner = (slice(None), slice(1, -1), slice(11, -1))
    assert torch.allclose(xr[inner], (x * v)[inner], atol=1e-5)
    assert torch.equal(vr[1, :, :9], torch.zeros(64, 9))
    m = torch.rand(2, 5, 7)
    cy = torch.arange(5, dtype=torch.float32) * 12 + 8
    cx = torch.arange(7, dtype=torch.float32) * 12 + 12
    assert torch.allclose(map_to_image_grid(m, cy, cx, torch.zeros(2, 2), height=64, width=96), m)
    g = torch.tensor([[0.0, 0.4 / 96], [0.001, -0.3 / 96]])
    ry, rx = to_rectified(g, torch.tensor([32.0, 32.0]), torch.tensor([48.0, 90.0]), height=64, width=96)
    assert torch.allclose(ry[:, 0], torch.tensor([32.0, 32.0])) and torch.allclose(rx[:, 0], torch.tensor(
        [48.0, 48.0]))
    assert float(rx[0, 1]) < 90.0 < float(rx[1, 1])  # receding to the right (g_x > 0) shrinks, else grows


@pytest.mark.slow
def test_angled_zones_and_bands_found_clean_angled_quiet(wall_records) -> None:
    """On the walls seen at an angle of the zone/band floor sample (seed 5, 512², 6 per cause: 9 angled
    region walls, 3 angled clean walls — the same records as ``test_zone_and_band_precision_recall_floor``)
    the periodic walls are rectified with a tilt near the generator's (within 0.2 in frame units on all but
    one), the region codes are found on at least 7 of 9 with no wrong code, and no clean angled wall gets a
    zone or band. Measured when written (2026-12-07): rectified 12 of 12 (tilt errors ≤ 0.2, 10 of 12
    within 0.1); found 8 of 9 (7 of 9 before: the angled wallpaper band of columns is new), no false code,
    clean 0 of 3."""
    from trackdiag.testing.walls.evaluate import sample_specs

    codes = ("doubled_zone", "bands_rows", "bands_cols")
    specs = [s for s in sample_specs(causes=codes, n_per_cause=6, seed=5, size=(512, 512)) if s.angled]
    recs = wall_records(specs)
    found = wrong = near = measured = 0
    for r in recs:
        t, s = r["truth"], r["summary"]
        got = {v["code"] for v in r["verdicts"] if v["severity"] in ("warn", "bad")} & set(codes)
        truth = set(t["causes"]) & set(codes)
        if truth:
            found += bool(got & truth)
        wrong += len(got - truth)
        tilt = s.get("rect_tilt_x")
        if tilt is not None and math.isfinite(tilt):
            measured += 1
            near += abs(tilt - t["params"]["view"]["gx"] * t["size"][1]) <= 0.2
    assert measured >= 9 and near >= measured - 1, (measured, near)
    assert found >= 7, found
    assert wrong == 0, wrong


def test_checked_tilt_keeps_a_2d_reading_of_a_wall_read_as_1d_and_offers_the_estimate() -> None:
    """A wall whose lattice was read 1-D (no second vector) but whose axis estimate agrees with the trend as a
    2-D wall's does (a running bond: estimate ≈ trend) keeps the estimate instead of trend / 2; an estimate
    the check replaces (here the trend itself has the wrong sign) is offered as the second candidate, one
    the check keeps is not."""
    from trackdiag.functional.rectify import alternative_tilt

    tilt = torch.tensor([[0.0, -0.43], [0.02, 0.49], [0.0, 0.3]])
    trend = torch.tensor([[0.0, -0.43], [0.0, -1.99], [0.0, 0.6]])
    one_d = torch.tensor([True, False, True])
    got = checked_tilt(tilt, trend, one_d)
    assert torch.allclose(got[0], torch.tensor([0.0, -0.43]))  # before: -0.43 / 2
    assert torch.allclose(got[1], torch.tensor([0.02, -1.99 / 1.4]))
    assert torch.allclose(got[2], torch.tensor([0.0, 0.3]))  # a plank wall's 0.5 × trend: kept
    alt = alternative_tilt(tilt, got, trend, min_diff=0.1)
    assert torch.isnan(alt[0]).all() and torch.isnan(alt[2]).all()
    assert torch.allclose(alt[1], torch.tensor([0.02, 0.49]))  # (y: the trend is flat, checked's)


def test_best_rectified_candidate_is_the_tilt_under_which_the_wall_repeats() -> None:
    """Of two candidate tilts of a tiled wall seen at an angle — the drawn one and one of the wrong sign (a
    misread trend's stand-in) — the rectified region keys keep the drawn one, whichever comes first."""
    from trackdiag.analyzers.rectified import best_rectified_region_keys

    h = w = 384
    img = _tiles(h, w, (0.0, 0.45 / w), 16.0)
    img = img + 0.02 * torch.randn(img.shape, generator=torch.Generator().manual_seed(3))
    t1 = torch.tensor([[0.0, 16.0]])
    t2 = torch.tensor([[16.0, 0.0]])
    right, wrong = torch.tensor([0.0, 0.45]), torch.tensor([0.0, -0.45 / 1.4])
    for first, second in ((right, wrong), (wrong, right)):
        got = best_rectified_region_keys(img, torch.ones_like(img), torch.stack([first, second])[None], t1=t1,
                                         t2=t2)
        assert abs(float(got["rect_tilt_x"][0]) - 0.45) < 1e-6, got["rect_tilt_x"]
        assert float(got["pair_plain_corr"][0]) > 0.5


@pytest.mark.slow
def test_angled_tilt_near_the_generators_and_angled_regions_found(wall_records) -> None:
    """Walls seen at an angle (generated v8, seed 3, 512², 8 per cause: 12 angled zone/band walls and 4
    clean angled walls): the tilt used for the rectification is within 0.1 (frame units) of the generator's
    on all but two of the rectified walls, zones and bands are found on at least 7 of 12 (the right code),
    and no clean angled wall gets a zone or band. Measured when written (ninth sitting, 2026-12-07): tilt
    within 0.1 on 12 of 14 rectified walls (10 of 14 before the tilt candidates and the 1-D reading: a
    running bond read 1-D got half its tilt), found 8 of 12 (8 before; one row band on brick now read as a
    zone), clean 0 of 4."""
    from trackdiag.testing.walls.evaluate import sample_specs

    codes = ("doubled_zone", "bands_rows", "bands_cols")
    specs = [s for s in sample_specs(causes=codes, n_per_cause=8, seed=3, size=(512, 512)) if s.angled]
    recs = wall_records(specs)
    found = regions = clean_hits = near = measured = 0
    for r in recs:
        t, s = r["truth"], r["summary"]
        got = {v["code"] for v in r["verdicts"] if v["severity"] in ("warn", "bad")} & set(codes)
        truth = set(t["causes"]) & set(codes)
        if truth:
            regions += 1
            found += bool(got & truth)
        else:
            clean_hits += bool(got)
        tilt = s.get("rect_tilt_x")
        if tilt is not None and math.isfinite(tilt):
            measured += 1
            near += abs(tilt - t["params"]["view"]["gx"] * t["size"][1]) <= 0.1
    assert regions == 12 and measured >= 12, (regions, measured)
    assert near >= measured - 2, (near, measured)
    assert found >= 7, found
    assert clean_hits == 0, clean_hits


def test_refined_tilt_corrects_an_off_estimate_and_keeps_the_trend_check() -> None:
    """A tilt off by 0.15 (frame units: the size of the errors left on angled walls) is brought back to the
    drawn one within 0.03 by one correction on the wall it rectifies, from either side; a right tilt stays
    within 0.03; a correction that would leave the isotropic trend's range (0.4–1.35 × it on a 2-D
    lattice) is not taken, nor one larger than ``max_step``; and a second candidate brought within
    ``min_diff`` of the first is dropped."""
    from trackdiag.analyzers.rectified import refine_tilts
    from trackdiag.functional.rectify import refined_tilt

    h = w = 384
    gx = 0.45
    img = _tiles(h, w, (0.0, gx / w), 16.0)
    img = img + 0.02 * torch.randn(img.shape, generator=torch.Generator().manual_seed(5))
    x = img.expand(3, h, w).contiguous()
    start = torch.tensor([[[0.0, gx - 0.15]], [[0.0, gx + 0.15]], [[0.0, gx]]])  # N×C×2, one candidate each
    trend = torch.tensor([[0.0, 0.6]]).expand(3, 2)
    one_d = torch.zeros(3, dtype=torch.bool)
    got = refine_tilts(x, torch.ones_like(x), start, trend, one_d)
    assert (got[:, 0, 1] - gx).abs().max() < 0.03, got
    assert got[:, 0, 0].abs().max() < 0.05, got
    # the same residual, checked: a step out of the trend's range (0.6 × 1.35 = 0.81) or beyond max_step
    tilt = torch.tensor([[0.0, 0.75], [0.0, 0.3]])
    res = torch.tensor([[0.0, 0.1], [0.0, 0.3]])
    new = refined_tilt(tilt, res, torch.zeros(2, 2), torch.tensor([[0.0, 0.6], [0.0, 0.6]]),
                       torch.zeros(2, dtype=torch.bool), max_step=0.2)
    assert torch.allclose(new, torch.tensor([[0.0, 0.75], [0.0, 0.5]]))
    # (axes that disagree: no step)
    new = refined_tilt(tilt, res, torch.tensor([[0.0, 0.3], [0.0, 0.3]]), torch.tensor([[0.0, 0.6]] * 2),
                       torch.zeros(2, dtype=torch.bool), max_spread=0.1)
    assert torch.equal(new, tilt)
    both = torch.tensor([[[0.0, gx - 0.15], [0.0, gx + 0.12]]])
    got = refine_tilts(img, torch.ones_like(img), both, trend[:1], one_d[:1])
    assert torch.isnan(got[0, 1]).all() and abs(float(got[0, 0, 1]) - gx) < 0.03, got


def test_period_coherence_tells_one_period_from_multiples() -> None:
    """A map reading one period (± a few %) everywhere is coherent (1); one whose windows read the period, its
    double and its half by turns is not (≤ 0.6, under ``RECT_REFINE_COHERENT``), and the correction is not
    taken there; an empty map is NaN."""
    from trackdiag.analyzers.tiling_limits import RECT_REFINE_COHERENT
    from trackdiag.functional.rectify import period_coherence, refined_tilt

    one = 20.0 * (1.0 + 0.03 * torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(1)))
    mixed = torch.tensor([20.0, 40.0, 10.0, 20.0, 40.0]).repeat(10)[:48].reshape(1, 6, 8)
    empty = torch.full((1, 6, 8), float("nan"))
    got = period_coherence(torch.cat([one, mixed, empty]))
    assert float(got[0]) == 1.0 and float(got[1]) <= 0.6 < RECT_REFINE_COHERENT + 1e-9 and torch.isnan(got[2])
    tilt = torch.tensor([[0.0, 0.4]] * 2)
    step, trend = torch.tensor([[0.0, 0.1]] * 2), torch.tensor([[0.0, 0.6]] * 2)
    new = refined_tilt(tilt, step, torch.zeros(2, 2), trend, torch.zeros(2, dtype=torch.bool),
                       coherence=got[:2], min_coherence=RECT_REFINE_COHERENT)
    assert torch.allclose(new, torch.tensor([[0.0, 0.5], [0.0, 0.4]]))


def _tiles_band(h: int, w: int, gx: float, period: float, band: tuple[float, float]) -> torch.Tensor:
    """``1×H×W`` tiles as :func:`_tiles` (tilt along x only) whose wall columns ``band`` (wall px from the
    centre, ``u``) are tiles twice as wide: a full-height column band at twice the period."""
    y = torch.arange(h, dtype=torch.float64)[:, None] + 0.5 - h / 2
    x = torch.arange(w, dtype=torch.float64)[None, :] + 0.5 - w / 2
    den = 1.0 + gx * x
    u, v = (x / den).expand(h, w), y / den
    inside = (u >= band[0]) & (u < band[1])
    gu = torch.cos(2 * math.pi * u / torch.where(inside, 2 * period, period)).clamp_min(0.0) ** 8
    gv = torch.cos(2 * math.pi * v / period).clamp_min(0.0) ** 8
    return (0.5 + 0.3 * torch.maximum(gu, gv)).to(torch.float32)[None]


def test_fronto_pair_reading_on_the_rectified_wall() -> None:
    """The pair test's fronto-parallel reading on a rectified wall (``rectified.fronto_pair_keys``): without
    a tilt it is the pair test's own reading of a wall without a trend; on a tiled wall seen at an angle
    (G_x = 0.45) it reads a full-height column band of double-width tiles as a whole inner map column at
    ``PAIR_LINE`` and a long line, and the same wall without the band reads no line and no strong region."""
    from trackdiag.analyzers.bands import pair_doubling_keys
    from trackdiag.analyzers.rectified import fronto_pair_keys
    from trackdiag.analyzers.tiling_limits import PAIR_AREA, PAIR_EXCESS, PAIR_LINE

    h = w = 256
    t1, t2 = torch.tensor([[0.0, 16.0]]), torch.tensor([[16.0, 0.0]])
    noise = 0.02 * torch.randn(1, h, w, generator=torch.Generator().manual_seed(5))
    flat = _tiles_band(h, w, 0.0, 16.0, (-40.0, 24.0)) + noise
    zero = torch.zeros(1)
    want = pair_doubling_keys(flat, torch.ones_like(flat), t1=t1, t2=t2, trend_x=zero, trend_y=zero)
    got = fronto_pair_keys(flat, torch.ones_like(flat), torch.zeros(1, 2), t1=t1, t2=t2)
    for k, v in want.items():
        assert torch.allclose(got[k], v, rtol=1e-3, atol=1e-3, equal_nan=True), (k, got[k], v)
    g = torch.tensor([[0.0, 0.45 / w]])
    band = _tiles_band(h, w, 0.45 / w, 16.0, (-40.0, 24.0)) + noise
    clean = _tiles(h, w, (0.0, 0.45 / w), 16.0) + noise
    kb = fronto_pair_keys(band, torch.ones_like(band), g, t1=t1, t2=t2)
    kc = fronto_pair_keys(clean, torch.ones_like(clean), g, t1=t1, t2=t2)
    assert float(kb["pair_col_level"][0]) >= PAIR_LINE and float(kb["pair_col_end"][0]) == 0.0, kb
    assert float(kb["pair_col_full"][0]) >= PAIR_LINE, kb
    assert float(kb["pair_row_level"][0]) < PAIR_LINE, kb
    assert max(float(kc["pair_col_level"][0]), float(kc["pair_row_level"][0])) < PAIR_LINE, kc
    strong = float(kc["pair_excess_max"][0]) >= PAIR_EXCESS and float(kc["pair_area_frac"][0]) >= PAIR_AREA
    assert not strong, kc
