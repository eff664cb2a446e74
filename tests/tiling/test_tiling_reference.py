"""The torch tiling metrics against the plain per-image numpy reference
(trackdiag/testing/numpy_reference.py),
which computes them the direct way: full 2-D FFTs, a zero-padded 2-D ACF sampled along f*, a full
periodic-plus-smooth decomposition, ring masks and Python loops over the local windows, tiles, strips,
peaks and lattice hypotheses, in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.tiling import tiling_metrics
from trackdiag.testing import synth as S
from trackdiag.testing.numpy_reference import reference_metrics

#: key → relative tolerance (resize_* use other filters in the reference and are not compared).
KEYS = {"fundamental_period_px": 1e-3, "acf_first_peak_period_px": 0.01, "periodicity_score": 0.03,
        "E2f_over_Ef": 0.05, "axis_ratio_at_f": 0.01, "checkerboard_score": 0.02, "grid_s8": 0.02,
        "grid_s16": 0.02, "border_cross_index": 0.02, "shift_mse_dx1": 1e-3, "shift_mse_dy1": 1e-3,
        "checkerboard_robust": 0.02, "parity_gain_x": 0.02, "parity_gain_xy": 0.02, "checkerboard_dims": 0.0,
        "checkerboard_line_share": 1e-3}


@pytest.mark.parametrize("case", ["brick", "tiles_noise", "deconv", "frame", "masked"])
def test_torch_metrics_match_the_numpy_reference(case):
    g = torch.Generator().manual_seed(50)
    mask = None
    if case == "brick":
        img = S.brick(256, 320, period_px=13.0, angle_deg=1.0, generator=g)
    elif case == "tiles_noise":
        img = S.add_noise(S.tiles(256, 256, period_px=20.0, generator=g), 0.05, generator=g)
    elif case == "deconv":
        img = S.upsample_x2(S.tiles(128, 128, period_px=9.0, generator=g))
    elif case == "frame":
        img = S.nonperiodic_frame(S.grating(256, 256, period_px=16.0), generator=g)
    else:
        mask = S.ellipse_mask(256, 256, radii=(0.4, 0.4))
        img = S.composite(S.tiles(256, 256, period_px=15.0, generator=g), S.plaster(256, 256, generator=g),
                          mask)
    with one_thread():
        out = tiling_metrics(img[None, None], mask=mask, maps=False)
    ref = reference_metrics(img.numpy(), mask=mask.numpy().astype(float) if mask is not None else None,
                            newer=False)
    for key, tol in KEYS.items():
        a, b = float(out[key][0]), ref[key]
        if math.isnan(b):
            assert math.isnan(a), key
            continue
        assert a == pytest.approx(b, rel=tol, abs=1e-4), (key, a, b)


def test_every_key_is_per_sample_with_a_reference_of_one():
    """A batch of three outputs against one reference patch: every metric is a ``(3,)`` tensor, so that
    sample i's summary (``{k: v[i]}``) exists for each key, the reference's own keys included."""
    g = torch.Generator().manual_seed(21)
    walls = torch.stack([S.tiles(192, 192, period_px=16.0, generator=g) for _ in range(3)])[:, None]
    ref = S.tiles(128, 128, period_px=16.0, generator=g)[None]
    out = tiling_metrics(walls, ref=ref, maps=False)
    shapes = {k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)}
    wrong = {k: s for k, s in shapes.items() if s != (3,)}
    assert not wrong


#: The newer estimators' keys → (relative, absolute) tolerance. The torch side runs in float32, the
#: reference in float64: continuous keys agree to ~1e-4 (the pair test's bilinear reads of shifted windows
#: to ~1e-3).
#: Keys that count windows, bins or strips over a threshold (area, zone and fold fractions) jump by one
#: window's (bin's) share when a value within float32 rounding of its threshold lands on the other side:
#: they get 5 % + 0.005. NaN must match NaN.
CONT, PAIR, COUNT = (2e-3, 1e-4), (1e-2, 2e-3), (0.05, 5e-3)
NEW_KEYS = {
    # the lattice and the centre's period (perspective)
    "fundamental_period_px": CONT, "lattice_t1_px": CONT, "lattice_t2_px": CONT, "period_x_px": CONT,
    "period_y_px": CONT, "centre_period_px": CONT, "centre_crop_period_px": CONT,
    "window_vote_period_px": CONT,  # NaN on these cases: test_window_readings_match_the_numpy_reference
    # the local lattice map's per-axis band keys and the half-frequency zone keys
    "band_base_period_px": CONT, "band_base_period_x_px": CONT, "band_base_period_y_px": CONT,
    "band_row_frac_max": COUNT,
    "band_col_frac_max": COUNT, "band_row_max_run": COUNT, "doubled_area_frac": COUNT,
    "doubled_x_frac": COUNT, "doubled_y_frac": COUNT, "doubled_center_y": CONT, "zone_frac": COUNT,
    "zone_row_frac_max": COUNT, "local_period_trend_x": CONT, "local_period_trend_y": CONT,
    # the doubled-zone map and the real-space pair test
    "doubling_excess_max": CONT, "doubling_area_frac": COUNT, "doubling_row_level": CONT,
    "doubling_col_level": CONT, "doubling_plain_corr": CONT, "pair_excess_max": PAIR,
    "pair_area_frac": COUNT, "pair_row_level": PAIR, "pair_col_level": PAIR, "pair_plain_corr": PAIR,
    "doubling_row_full": CONT, "doubling_col_full": CONT, "pair_row_full": PAIR, "pair_col_full": PAIR,
    "pair_row_full_peak": PAIR, "pair_col_full_peak": PAIR,
    # the scale trends (perspective)
    "persp_trend_x": CONT, "persp_trend_y": CONT, "persp_agree_x": CONT, "centroid_trend_x": CONT,
    "persp_sq_trend_x": CONT, "persp_sq_trend_y": CONT, "persp_sq_agree_x": CONT,
    "centroid_trend_y": CONT, "aniso_trend_x": CONT, "aniso_trend_y": CONT, "scale_trend_x": CONT,
    "scale_trend_y": CONT, "scale_corr_x": CONT,
    # strip novelty, the aliasing fold keys, the edge strips
    "strip_novelty_x": CONT, "strip_novelty_all_x": CONT, "strip_extent_x": COUNT,
    "alias_fine_peak_frac": COUNT, "alias_fold_peak_frac": COUNT, "alias_win_fine_frac": COUNT,
    "alias_win_fold_frac": COUNT, "alias_own_fold_frac": COUNT, "edge_left": CONT, "edge_score": CONT,
}
#: Where the region maps were read on the rectified wall, and its tilt (frame units): the tilt is a
#: Theil–Sen median of the local map's log periods (continuous), the flags exact.
RECT_KEYS = {"rect_doubling": (0.0, 0.0), "rect_pair": (0.0, 0.0), "rect_tilt_x": CONT, "rect_tilt_y": CONT,
             "rect_crop_period_px": CONT, "rect_crop_periodicity_score": (0.15, 0.02)}
#: (the rectified central half's score: its ACF at the lattice period differs between the two sides on a
#: weak lattice as periodicity_score's does, 0.294 against 0.262 on the aliased angled tiling; the period
#: it decides, centre_crop_period_px and fundamental_period_px, is compared at CONT)
#: The mask seam (masked case only; its erosions and block sums are exact on both sides).
SEAM_KEYS = {"mask_seam_score": CONT, "mask_seam_t": CONT, "mask_seam_agree": COUNT}
#: With a mask, the keys read through the mask's tapered weights get 5 % + 0.002: torch tapers the mask edge
#: from a coarse box mean upsampled bilinearly (``apodized_weights``), the reference from the exact box mean.
MASKED = (0.05, 2e-3)


def _angled(img: torch.Tensor, strength: float) -> torch.Tensor:
    """``img`` (``H×W``) resampled so that its local scale changes by about ``±strength`` across the frame
    along x (a wall seen at an angle, roughly) and a little along y."""
    h, w = img.shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xx + strength * (xx ** 2 - 1) / 2, yy * (1 + 0.5 * strength * xx)], dim=-1)
    return F.grid_sample(img[None, None], grid[None], align_corners=True, padding_mode="reflection")[0, 0]


AGREEMENT_CASES = ("band_edge", "angled_alias", "masked_halo", "band_cols", "angled_plaster", "angled_band")


@pytest.mark.parametrize("case", AGREEMENT_CASES)
def test_newer_estimators_match_the_numpy_reference(case):
    """The local lattice map's band/zone keys, the doubled-zone map, the pair test, the scale trends, the
    centre's period, strip novelty, the fold fracs and the edge strips of ``tiling_metrics`` against the plain
    numpy versions, on a wall with a full-width band at twice the period and a bright stripe along its left
    edge, on an angled, strided-subsampled (aliased) fine tiling, and on a masked tiling with a bright halo
    inside the mask's contour (the mask seam), on a full-height band at twice the period (the pair test's
    region), on an angled aperiodic plaster wall (the centroid trend) and on an angled wall with a band at
    twice the period (the region maps read on the rectified wall: ``rect_*``). The keys must be non-trivial
    on at least one case (:func:`test_the_agreement_cases_exercise_the_keys`), so that agreement means more
    than 0 = 0."""
    g = torch.Generator().manual_seed({"band_edge": 7, "angled_alias": 8, "masked_halo": 9, "band_cols": 10,
                                       "angled_plaster": 11, "angled_band": 5}[case])
    mask = None
    keys = dict(NEW_KEYS)
    if case == "masked_halo":
        mask = S.ellipse_mask(256, 256, radii=(0.42, 0.4))
        img = S.composite(S.tiles(256, 256, period_px=8.0, generator=g), S.plaster(256, 256, generator=g),
                          mask)
        inner = -F.max_pool2d(-mask.float()[None, None], 7, 1, 3)[0, 0]  # the mask eroded by 3 px
        img = S.add_noise(img + 0.08 * (mask.float() - inner), 0.02, generator=g)
        keys = {**dict.fromkeys(NEW_KEYS, MASKED), **SEAM_KEYS}
    elif case == "band_edge":
        img = S.band_doubled(256, 256, period_px=8.0, band=(0.25, 0.6), axis="rows", kind="tiles",
                             generator=g)
        img = S.add_noise(img, 0.02, generator=g)
        img[:, :6] += 0.15
    elif case == "band_cols":  # a full-height band: the pair test's region (pair_area_frac)
        img = S.band_doubled(256, 256, period_px=12.0, band=(0.25, 0.6), axis="cols", kind="tiles",
                             generator=g)
        img = S.add_noise(img, 0.02, generator=g)
    elif case == "angled_band":  # an angled wall with a band at twice the period: the rectified maps' region
        img = S.band_doubled(320, 320, period_px=10.0, band=(0.3, 0.6), axis="rows", kind="tiles",
                             generator=g)
        img = S.add_noise(_angled(img, 0.5), 0.02, generator=g)
    elif case == "angled_plaster":  # aperiodic: the centroid trend is read there only
        img = S.add_noise(_angled(S.plaster(256, 256, generator=g), 0.6), 0.01, generator=g)
    else:
        img = S.downsample_x2(_angled(S.tiles(512, 512, period_px=5.3, angle_deg=2.0, generator=g), 0.5))
        img = S.add_noise(img, 0.02, generator=g)
    with one_thread():
        out = tiling_metrics(img[None, None], mask=mask, maps=False)
    ref = reference_metrics(img.numpy(), mask=None if mask is None else mask.numpy().astype(float))
    # the region maps of an angled wall are read on its rectified view (functional/rectify.py) on both sides
    keys.update(RECT_KEYS if mask is None else dict.fromkeys(RECT_KEYS, MASKED))
    for key, (rel, ab) in keys.items():
        a, b = float(out[key][0]), ref[key]
        if math.isnan(b):
            assert math.isnan(a), key
            continue
        assert a == pytest.approx(b, rel=rel, abs=ab), (case, key, a, b)
    _EXERCISED[case] = {k for k in keys if math.isfinite(ref[k]) and abs(ref[k]) > 1e-3}


_EXERCISED: dict[str, set[str]] = {}


def test_the_agreement_cases_exercise_the_keys():
    """Run after the agreement cases: every compared key is non-zero and finite on at least one of them."""
    if set(_EXERCISED) != set(AGREEMENT_CASES):  # -k, or pytest-xdist spread them over several workers
        pytest.skip("the agreement cases did not all run in this process")
    seen = set().union(*_EXERCISED.values())
    # the window vote stands aside on these walls (NaN = NaN); its firing is compared on given readings
    # and a zone wall's windows (test_window_vote_rules_…, test_window_readings_…)
    assert (set(NEW_KEYS) | set(SEAM_KEYS)) - seen == {"window_vote_period_px"}


#: The window vote's rule on given readings (the cases of tests/tiling/test_window_vote.py): windows' periods,
#: the reported period, the window side, the central half's period (None: none), the frame lattice's shortest
#: vector (optional; None: NaN).
VOTE_CASES = [
    ([12.0, 12.2, 11.9, 24.0, 12.1, 24.3, 12.0, None, 11.8], 24.1, 170, None),
    ([11.4, 11.3, 11.4, 12.5, 11.4, 11.3, 12.6, 11.3, 11.4], 45.0, 170, 11.4),
    ([11.4, 11.3, 11.4, 12.5, 11.4, 11.3, 12.6, 11.3, 11.4], 45.0, 170, 33.0),
    ([12.0, 12.2, 11.9, 24.0, 24.1, 24.3, 12.0, 24.2], 24.1, 170, None),
    ([14.0, 14.1, 13.9, 14.0, 24.2, 14.1], 24.2, 170, None),
    ([4.0, 4.0, 4.0, 4.0, 8.0, 4.0], 8.0, 85, None),
    ([12.0, 12.1, 11.9, None, None, None], 24.0, 170, None),
    ([37.0, 36.5, 37.4, 36.9, 38.0, 44.0], 40.4, 170, None),
    ([38.8, 38.5, 39.0, 38.9, 38.7], 40.2, 170, None),
    # (ninth sitting) the frame's own lattice holds the windows' period; a contradiction between 5 and 8 %
    ([22.2, 22.2, 22.1, 22.1, 22.2, 22.2], 44.3, 256, 19.8, 22.1),
    ([22.2, 22.2, 22.1, 22.1, 22.2, 22.2], 44.3, 256, 19.8),
    ([26.0, 27.6, 27.7, 24.6], 24.34, 256, None),
]


@pytest.mark.parametrize("case", range(len(VOTE_CASES)))
def test_window_vote_rules_match_the_numpy_reference(case):
    """``_window_vote_period`` and ``_window_confirmed`` against the reference's loops on the same readings
    (every branch: a finer majority, a quarter period held by the crop only, no majority, a non-divisor, the
    search floor, too few windows, an angled wall's reading confirmed or left): equal to float rounding."""
    from trackdiag.analyzers.tiling_summary import _window_confirmed, _window_vote_period
    from trackdiag.testing import numpy_reference as R

    periods, period, side, crop, *t1_ = VOTE_CASES[case]
    t1 = t1_[0] if t1_ else math.nan
    lw = [math.log(p) if p else math.nan for p in periods]
    ok = [p is not None for p in periods]
    lw_t, ok_t = torch.tensor([lw], dtype=torch.float64), torch.tensor([ok])
    crop_t = torch.tensor([math.nan if crop is None else crop], dtype=torch.float64)
    p_t = torch.tensor([period], dtype=torch.float64)
    got = float(_window_vote_period(lw_t, ok_t, side, p_t, crop=crop_t,
                                    crop_score=torch.tensor([0.5], dtype=torch.float64),
                                    lattice_t1=torch.tensor([t1], dtype=torch.float64))[0])
    want = R.window_vote_period(lw, ok, side, period, math.nan if crop is None else crop, 0.5, lattice_t1=t1)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9), (got, want)
    readings = [period, period * 1.1, 37.2, period * 1.01]
    got = float(_window_confirmed(lw_t, ok_t, torch.tensor([period], dtype=torch.float64),
                                  torch.tensor([readings], dtype=torch.float64))[0])
    want = R.window_confirmed(lw, ok, period, readings)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9), (got, want)


@pytest.mark.parametrize("case", range(15))
def test_rectified_base_rule_matches_the_numpy_reference(case):
    """``_rectified_base`` against the reference's loops on the readings of
    ``tests/tiling/test_window_vote.py``'s cases (exact and trend-moved windows): equal to float rounding."""
    from tests.tiling.test_window_vote import RECT_BASE_CASES, TREND_BASE_CASES
    from trackdiag.analyzers.tiling_summary import _rectified_base
    from trackdiag.testing import numpy_reference as R

    exact = case < len(RECT_BASE_CASES)
    windows, period, side, readings, t1, _ = (RECT_BASE_CASES + TREND_BASE_CASES)[case]
    lw = [math.log(p) if p else math.nan for p in windows]
    ok = [p is not None for p in windows]
    got = float(_rectified_base(torch.tensor([lw], dtype=torch.float64), torch.tensor([ok]), side,
                                torch.tensor([period], dtype=torch.float64),
                                torch.tensor([readings], dtype=torch.float64),
                                lattice_t1=torch.tensor([t1], dtype=torch.float64),
                                exact=torch.tensor([exact]))[0])
    want = R.rectified_base(lw, ok, side, period, readings, lattice_t1=t1, exact=exact)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9), (got, want)


def test_window_readings_match_the_numpy_reference():
    """The window vote's readings (each window's lattice period moved to the centre along a trend, and
    whether it votes) on a 384² tile wall of 10 px with a doubled zone (20-px tiles, a disc of 160 px) at its
    centre and a perspective trend: the windows' log periods agree to 2e-3, the same windows vote, some read
    10 px and some 20 px, and the vote against a reported 20 px is the same (10 px)."""
    from trackdiag.analyzers.tiling_summary import TilingParams, _window_readings, _window_vote_period
    from trackdiag.testing import numpy_reference as R

    g = torch.Generator().manual_seed(3)
    base = S.tiles(384, 384, period_px=10.0, generator=g)
    big = S.tiles(384, 384, period_px=20.0, generator=g)
    yy, xx = torch.meshgrid(torch.arange(384.0), torch.arange(384.0), indexing="ij")
    zone = (((yy - 192) / 80) ** 2 + ((xx - 192) / 80) ** 2 <= 1.0).float()
    x = S.add_noise(base * (1 - zone) + big * zone, 0.02, generator=g)
    with one_thread():
        lw, ok, side = _window_readings(x[None], torch.ones_like(x)[None], torch.tensor([0.1]),
                                        torch.tensor([-0.05]), TilingParams(), masked=False)
    rlw, rok, rside = R.window_readings(x.double().numpy(), x.numpy() == x.numpy(), 0.1, -0.05, False)
    assert side == rside
    assert ok[0].tolist() == rok
    assert sum(rok) >= 6
    per = [math.exp(v) for v, o in zip(rlw, rok, strict=True) if o]
    assert min(per) < 11.0 and max(per) > 18.0, per  # both lattices are read
    for a, b, o in zip(lw[0].tolist(), rlw, rok, strict=True):
        if o:
            assert a == pytest.approx(b, abs=2e-3)
    got = float(_window_vote_period(lw, ok, side, torch.tensor([20.0]))[0])
    assert got == pytest.approx(R.window_vote_period(rlw, rok, rside, 20.0, math.nan, 0.0), rel=2e-3)
    assert got == pytest.approx(10.0, rel=0.03)
