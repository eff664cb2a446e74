"""The half-frequency map (trackdiag.analyzers.bands / functional.localmap) against generated ground truth:
zones and bands at twice the period are found, clean walls of the same materials are not flagged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
from trackdiag.functional.localmap import half_frequency_ratio
from trackdiag.testing.walls import make_scene


def test_half_frequency_ratio_sees_the_half_peak() -> None:
    prof = torch.full((3, 33), 1e-3)
    prof[:, 16] = 1.0  # the base fundamental in every profile
    prof[1, 8] = 2.0  # a doubled window: its own fundamental at half the base
    prof[2, 9] = 0.5  # within ±1 bin counts
    r = half_frequency_ratio(prof, torch.tensor([16.0, 16.0, 16.0]))
    assert r[0] < -5 and r[1] > 0.5 and r[2] > -1.0
    assert torch.isnan(half_frequency_ratio(prof, torch.tensor(float("nan")))).all()


def _diagnose(kind: str, cause: str | None, seed: int) -> tuple[dict[str, float], set[str]]:
    sc = make_scene(kind=kind, cause=cause, seed=seed, size=(512, 512), angled=False, with_ref=False)
    img = torch.from_numpy(np.array(sc.pred)).float().permute(2, 0, 1)[None] / 255.0
    mask = torch.from_numpy(np.array(sc.mask))[None]
    out = tiling_metrics(img, mask=mask)
    summ = {k: float(v[0]) for k, v in out.items() if v.ndim == 1}
    return summ, {v.code for v in likely_causes(summ) if v.severity in ("warn", "bad")}


@pytest.mark.slow
def test_zones_found_clean_quiet() -> None:
    """Recall of doubled zones on fronto-parallel 512² walls of 2-D lattices (tiles, penny, hex; two seeds
    each) and band/zone false alarms on their clean twins. Measured when written: 3 of 6 zones found (tiles at
    512² are missed: the zone covers few 128-px windows), 0 of 6 clean alarms; 2 of 6 after the integration of
    the seam and render work (penny seed 1, hex seed 0). The floor below is that measurement, a guard against
    losing what works; the issue's target (F1 ≥ 0.9) is not met yet (see test_tiling_truth)."""
    cases = [(k, s) for k in ("tiles", "penny", "hex") for s in (0, 1)]
    zone_hits = sum("doubled_zone" in _diagnose(k, "doubled_zone", s)[1] for k, s in cases)
    clean_alarms = sum(bool({"doubled_zone", "bands_rows", "bands_cols"} & _diagnose(k, None, s)[1])
                       for k, s in cases)
    assert zone_hits >= 2, zone_hits
    assert clean_alarms <= 1, clean_alarms


@pytest.mark.slow
def test_regions_the_spectral_map_missed_are_found_by_the_pair_test() -> None:
    """A fronto-parallel brick wall of calibration seed 2 (768×512) whose zone the spectral region map
    missed (``doubling_excess_max`` 0.128; 0.146 since generator v6 redrew its period, 29.8 px: the doubled
    course is half of a 128-px window) and that the real-space pair test finds as a ``doubled_zone`` (pair
    excess 7.4 on the wall's edges); before the pair test it read
    no zone/band verdict at all. (One scene: generating it is most of the cost; the synthetic planks/tiles
    regions of test_doubling_map cover bands and clean walls.)"""
    from trackdiag.testing.walls.evaluate import SceneSpec, get_scene

    for cause, seed in (("doubled_zone", 200012),):
        sc = get_scene(SceneSpec(cause=cause, seed=seed, angled=False))
        img = torch.from_numpy(np.array(sc.pred)).float().permute(2, 0, 1)[None] / 255.0
        mask = torch.from_numpy(np.array(sc.mask))[None]
        out = tiling_metrics(img, mask=mask, maps=False)
        summ = {k: float(v[0]) for k, v in out.items() if v.ndim == 1}
        codes = {v.code for v in likely_causes(summ) if v.severity in ("warn", "bad")}
        found = codes & {"doubled_zone", "bands_rows", "bands_cols"}
        assert found == {cause}, (cause, summ["pair_excess_max"], summ["pair_col_level"], codes)


# ---------------------------------------------------------------------------------------------------------
# Ninth sitting: the region rules' precision (a band or zone named as another code, or on a scene of another
# cause). Rule-level checks on summaries, then a measurement on generated fronto-parallel scenes.
# ---------------------------------------------------------------------------------------------------------
_DOUBLED_WALL = {"periodicity_score": 0.8, "ref_periodicity_score": 0.8, "ref_period_px": 20.0,
                 "period_ratio_to_ref": 2.0, "Ehalf_over_Ef": 2.0, "E2f_over_Ef": 0.2,
                 "fundamental_period_px": 40.0, "lattice_t1_px": 40.0, "lattice_t2_px": 40.0}
_PAIR_SILENT = {"pair_excess_max": 0.5, "pair_area_frac": 0.0, "pair_row_level": -0.05,
                "pair_col_level": -0.04, "pair_row_even": -0.1, "pair_col_even": -0.2,
                "pair_row_end": 0.0, "pair_col_end": 0.0,
                "pair_plain_corr": 0.94}
_MAP_ZONE = {"doubling_excess_max": 0.2, "doubling_area_frac": 0.24, "doubling_row_level": -0.06,
             "doubling_col_level": -0.04, "doubling_row_even": -0.3, "doubling_col_even": -0.2,
             "doubling_row_end": 1.0, "doubling_col_end": 1.0, "doubling_plain_corr": 0.85,
             "periodicity_score": 0.8, "lattice_t1_px": 35.0, "lattice_t2_px": 35.0}
_REGION = {"doubled_zone", "bands_rows", "bands_cols"}


def _codes(summary: dict[str, float]) -> set[str]:
    return {v.code for v in likely_causes(summary) if v.severity in ("warn", "bad")}


def test_a_strong_pair_region_is_a_zone_not_a_doubled_wall() -> None:
    """A wall whose lattice reads twice the reference's is ``period_doubled`` only where the pair test sees no
    part of it repeating differently from the rest: a strong pair region (a zone that pulled the frame's
    lattice) is named as the region instead."""
    assert _codes(_DOUBLED_WALL) == {"period_doubled"}
    assert _codes({**_DOUBLED_WALL, **_PAIR_SILENT, "pair_excess_max": 1.3}) == {"period_doubled"}
    zone = {**_DOUBLED_WALL, **_PAIR_SILENT, "pair_excess_max": 7.0, "pair_area_frac": 0.45,
            "pair_col_level": 0.41, "pair_col_even": 0.48}
    assert _codes(zone) == {"doubled_zone"}
    band = {**zone, "pair_col_level": 4.4, "pair_col_even": 0.95}
    assert _codes(band) == {"bands_cols"}


def test_a_map_only_zone_needs_the_pair_test_on_a_flat_wall() -> None:
    """The spectral region map's zone (no line, no pair-test region) is not named where the pair test read
    the wall without a perspective trend; on a wall seen at an angle (where the pair test is weaker) it is."""
    flat = {**_MAP_ZONE, **_PAIR_SILENT, "persp_trend_x": 0.0, "persp_trend_y": 0.0}
    assert not _codes(flat) & _REGION
    angled = {**flat, "persp_trend_x": 0.6, "rect_doubling": 1.0}
    assert _codes(angled) & _REGION == {"doubled_zone"}
    # a strong pair region on the flat wall is named (by the pair test)
    assert _codes({**flat, "pair_excess_max": 6.0, "pair_area_frac": 0.2}) & _REGION == {"doubled_zone"}


def test_the_map_band_overrides_a_pair_zone_by_evenness_only_on_a_wall_with_a_trend() -> None:
    """A pair-test zone whose column the region map reads as a band at 0.34 with evenness 0.75 (the
    override's evenness branch): a band on a wall with a perspective trend, the pair test's zone on a flat
    wall (where its own column reading holds); a map line ≥ 0.4 overrides on both."""
    base = {**_MAP_ZONE, **_PAIR_SILENT, "pair_excess_max": 12.0, "pair_area_frac": 0.35,
            "pair_col_level": 0.12, "pair_col_even": 0.03, "doubling_excess_max": 0.44,
            "doubling_area_frac": 0.43, "doubling_col_level": 0.34, "doubling_col_even": 0.75,
            "doubling_col_end": 0.0}
    flat = {**base, "persp_trend_x": 0.0, "persp_trend_y": 0.0}
    assert _codes(flat) & _REGION == {"doubled_zone"}
    assert _codes({**base, "persp_trend_x": 0.1, "persp_trend_y": 0.05}) & _REGION == {"bands_cols"}
    assert _codes({**flat, "doubling_col_level": 0.45}) & _REGION == {"bands_cols"}


def test_a_line_cut_short_by_a_mask_hole_is_a_zone_where_the_region_reaches_a_long_line() -> None:
    """A strong pair region whose most doubled column is filled only because the furniture ends it (the
    values of v8 seed 22's hex zone read as ``bands_cols``: level 4.66, the long columns' level −0.16 with a
    peak of 5.34 on them) is a zone; a band above a row of furniture (its every column cut short: the long
    columns peak at 0.14, outside it) stays a band, and so does a band whose long columns it fills. The
    region map's band line does not override such a zone (v8 seed 22's wallpaper zone, map column 0.61)."""
    zone = {**_MAP_ZONE, **_PAIR_SILENT, "persp_trend_x": 0.0, "persp_trend_y": 0.0,
            "pair_excess_max": 7.0, "pair_area_frac": 0.39, "pair_col_level": 4.66, "pair_col_even": 0.88,
            "pair_col_full": -0.16, "pair_col_full_peak": 5.34}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    assert _codes({**zone, "pair_col_full_peak": 0.14}) & _REGION == {"bands_cols"}  # above furniture
    assert _codes({**zone, "pair_col_full": 4.5, "pair_col_full_peak": 5.34}) & _REGION == {"bands_cols"}
    # stored runs without the long-line keys read as before
    assert _codes({k: v for k, v in zone.items() if "full" not in k}) & _REGION == {"bands_cols"}
    over = {**zone, "doubling_excess_max": 0.67, "doubling_area_frac": 0.35, "doubling_col_level": 0.61,
            "doubling_col_even": 0.9, "doubling_col_end": 0.0, "doubling_col_full": 0.02,
            "doubling_col_full_peak": 0.2}
    assert _codes(over) & _REGION == {"doubled_zone"}
    assert _codes({**over, "pair_col_full": 4.5}) & _REGION == {"bands_cols"}
    # a pair column below its line limit is no line to cut: the map's band still overrides that zone where
    # the map's long column bears it out (a band whose line the half-size windows broke up); with the long
    # columns unfilled (0.02, as above) it does not (twelfth sitting, _long_line_holds)
    broken = {**over, "pair_col_level": 0.12, "pair_col_even": 0.03, "pair_col_full": 0.1,
              "doubling_col_full": 0.55}
    assert _codes(broken) & _REGION == {"bands_cols"}
    assert _codes({**broken, "doubling_col_full": 0.02}) & _REGION == {"doubled_zone"}


@pytest.mark.slow
def test_region_codes_precision_recall_and_confusions_on_fronto_parallel_walls(wall_records) -> None:
    """Precision, recall and the confusions between the region codes and ``period_doubled`` on generated
    fronto-parallel walls (seed 26, drawn sizes, 4 scenes of each of doubled_zone / bands_rows / bands_cols /
    period_doubled, 4 clean walls and the 2 clean twins of the doubled walls; a seed no threshold was
    calibrated on). The confusion table (truth → named region/doubling codes) is printed. Measured when
    written (ninth sitting, 22 scenes): 15 of 16 found, the one miss a zone named ``bands_rows`` (the one
    false code), nothing named on the 6 clean walls and twins. Tenth sitting (the long lines, ``_cut_short``;
    seed 26 still not calibrated on): 16 of 16 found, no false or confused code, nothing on the clean walls.
    The floors are that measurement less one true find (a guard against losing what works; the issue's
    target is F1 ≥ 0.9 on the full samples, docs/tiling.md §8)."""
    from collections import Counter

    from trackdiag.testing.walls.evaluate import SceneSpec

    causes = ("doubled_zone", "bands_rows", "bands_cols", "period_doubled")
    specs = []
    for c in ("clean", *causes):
        for i in range(4):
            specs.append(SceneSpec(cause=c, seed=26 * 100_003 + 2 * i, angled=False))
            if c == "period_doubled" and i % 2 == 0:
                specs.append(SceneSpec(cause=c, seed=26 * 100_003 + 2 * i, angled=False, twin=True))
    recs = wall_records(specs)
    codes = {*_REGION, "period_doubled"}
    table: Counter[tuple[str, str]] = Counter()
    tp = dict.fromkeys(codes, 0)
    fp = dict.fromkeys(codes, 0)
    for r in recs:
        assert "error" not in r, r.get("error")
        truth = set(r["truth"]["causes"]) & codes
        named = {v["code"] for v in r["verdicts"] if v["severity"] in ("warn", "bad")} & codes
        table[(",".join(sorted(truth)) or "clean", ",".join(sorted(named)) or "-")] += 1
        for c in named:
            if c in truth:
                tp[c] += 1
            else:
                fp[c] += 1
    print("\n" + "\n".join(f"{t:15s} -> {n:28s} {k}" for (t, n), k in sorted(table.items())))
    confused = sum(k for (t, n), k in table.items() if t != "clean" and n not in ("-", t))
    on_clean = sum(k for (t, n), k in table.items() if t == "clean" and n != "-")
    print(f"tp {tp}  fp {fp}  confused {confused}  on clean {on_clean}")
    assert sum(tp[c] for c in causes) >= 15, tp
    assert sum(fp.values()) == 0, fp
    assert confused == 0 and on_clean == 0, (confused, on_clean)


def test_a_weak_map_line_is_a_band_only_on_a_wall_that_was_fronto_parallel() -> None:
    """The region map's weak-line path (no strong region, a whole column evenly at 2×) names a band on a
    fronto-parallel wall, not on a wall brought fronto-parallel by the rectification (``rect_doubling`` = 1:
    the tilt's error leaves a scale ramp of that size)."""
    weak = {**_MAP_ZONE, **_PAIR_SILENT, "doubling_excess_max": 0.1, "doubling_area_frac": 0.05,
            "doubling_col_level": 0.07, "doubling_col_even": 0.7, "doubling_col_end": 0.0,
            "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_doubling": 0.0}
    assert _codes(weak) & _REGION == {"bands_cols"}
    assert not _codes({**weak, "persp_trend_x": 0.6, "rect_doubling": 1.0}) & _REGION


def test_a_weak_map_line_is_a_band_only_where_the_long_lines_bear_it_out() -> None:
    """The weak-line path names a band only where one of the region map's long lines is filled at the weak
    limit (thirteenth sitting, ``_long_line_holds``): a band spans the wall. The keys of v8 seed 33's
    fronto-parallel checkerboard twin (tiles, 512²) that read ``bands_cols`` on a short column (0.109 at
    evenness 0.76; the long columns filled -0.057, their best window 0.079), and the same wall with a long
    column filled at 0.06 (the true weak-path bands of seeds 25, 28, 31-33 fill theirs 0.061 and up)."""
    twin = {**_MAP_ZONE, **_PAIR_SILENT, "doubling_excess_max": 0.14, "doubling_area_frac": 0.29,
            "doubling_col_level": 0.109, "doubling_col_even": 0.76, "doubling_col_end": 0.0,
            "doubling_col_full": -0.057, "doubling_col_full_peak": 0.079, "doubling_plain_corr": 0.67,
            "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_doubling": 0.0, "periodicity_score": 0.58}
    assert not _codes(twin) & _REGION
    assert _codes({**twin, "doubling_col_full": 0.06}) & _REGION == {"bands_cols"}
    # a stored summary without the long-line keys: the line alone, as before
    old = {k: v for k, v in twin.items() if k not in ("doubling_col_full", "doubling_col_full_peak")}
    assert _codes(old) & _REGION == {"bands_cols"}


def test_the_map_band_does_not_override_a_pair_zone_where_its_own_line_is_cut_short() -> None:
    """The region map's band overrides the pair test's zone only where its line holds at the override's
    own limit over the long lines: v8 seed 31's angled zone (map column 0.48 at evenness 0.45, its long
    columns filled at 0.15 with a peak of 0.94 on them; the pair test's zone strong, its column 0.12) stays
    a zone; the same line filling its long columns (a band) overrides as before."""
    zone = {**_MAP_ZONE, **_PAIR_SILENT, "persp_trend_x": 0.43, "persp_trend_y": 0.0, "rect_doubling": 1.0,
            "rect_pair": 1.0, "pair_excess_max": 9.8, "pair_area_frac": 0.31, "pair_col_level": 0.12,
            "pair_col_even": 0.81, "pair_col_full": 0.10, "pair_col_full_peak": 0.14,
            "doubling_excess_max": 1.05, "doubling_area_frac": 0.51, "doubling_col_level": 0.48,
            "doubling_col_even": 0.45, "doubling_col_end": 0.0, "doubling_col_full": 0.15,
            "doubling_col_full_peak": 0.94}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    assert _codes({**zone, "doubling_col_full": 0.45}) & _REGION == {"bands_cols"}
    # the evenness branch (0.3 at evenness >= 0.6) is read against its own limit too
    even = {**zone, "doubling_col_level": 0.34, "doubling_col_even": 0.75}
    assert _codes({**even, "doubling_col_full": 0.2, "doubling_col_full_peak": 0.5}) & _REGION == {
        "doubled_zone"}
    assert _codes({**even, "doubling_col_full": 0.32}) & _REGION == {"bands_cols"}


# v8 seed 31's angled 8-px grid wall read rectified (grid_s8_random_ang_3100096): the pair test's column line
# alone (0.73 at evenness 0.71, no strong window), an 8-px grid at the frame's origin
_GRID_LINE = {**_MAP_ZONE, **_PAIR_SILENT, "doubling_excess_max": 0.05, "doubling_area_frac": 0.0,
              "periodicity_score": 0.95, "lattice_t1_px": 13.6, "lattice_t2_px": float("nan"),
              "pair_excess_max": 1.04, "pair_area_frac": 0.0, "pair_col_level": 0.73, "pair_col_even": 0.71,
              "pair_col_full": 0.69, "pair_col_full_peak": 1.06, "pair_plain_corr": 0.97,
              "persp_trend_x": 0.65, "persp_trend_y": 0.0, "rect_pair": 1.0, "rect_doubling": 1.0,
              "grid_s8": 0.05, "grid_phase_s8": 0.0, "grid_agree_s8": 1.0}


def test_a_pair_line_beside_a_fine_lattice_is_no_band() -> None:
    """A band of the pair test's line alone is not named beside a fine artifact lattice whose phase drifts
    against the pair's shift: a grid on a wall read at a changing scale (rectified), a checkerboard or
    aliasing on any wall. The grid is still named; a grid on a wall read at one scale keeps the band (v8
    seed 29's fronto-parallel band beside a false 8-px grid); a strong pair region is named beside it."""
    got = _codes(_GRID_LINE)
    assert "grid_s8" in got and not got & _REGION
    flat = {**_GRID_LINE, "persp_trend_x": 0.0, "rect_pair": 0.0, "rect_doubling": 0.0}
    assert _codes(flat) & _REGION == {"bands_cols"}
    cb = _codes({**flat, "checkerboard_s2": 0.5, "checkerboard_dims": 2.0, "checkerboard_line_share": 0.2})
    assert "checkerboard" in cb and not cb & _REGION
    strong = {**_GRID_LINE, "pair_excess_max": 3.5, "pair_area_frac": 0.2, "pair_col_level": 2.0}
    assert _codes(strong) & _REGION == {"bands_cols"}
    # without the grid the line is a band
    assert _codes({**_GRID_LINE, "grid_s8": 0.0}) & _REGION == {"bands_cols"}


# v8 seed 32's fronto-parallel hex zone (doubled_zone_random_fro_3200132): the pair test's strong zone, no
# pair line; the region map's column 0.46 at evenness 0.69, its long columns filled to 0.00 (peak 0.39)
_MAP_SHORT_COLUMN = {**_MAP_ZONE, "doubling_excess_max": 0.667, "doubling_area_frac": 0.315,
                     "doubling_col_level": 0.458, "doubling_col_even": 0.688, "doubling_col_end": 0.0,
                     "doubling_row_end": 0.0, "doubling_col_full": 0.001, "doubling_col_full_peak": 0.391,
                     "doubling_row_full": -0.019, "doubling_row_full_peak": 0.817,
                     "doubling_plain_corr": 0.923,
                     "pair_excess_max": 9.34, "pair_area_frac": 0.133, "pair_row_level": -0.07,
                     "pair_col_level": 0.018, "pair_row_even": -0.29, "pair_col_even": 0.002,
                     "pair_row_end": 0.0,
                     "pair_col_end": 0.0, "pair_row_full": -0.07, "pair_col_full": 0.018,
                     "pair_row_full_peak": 0.271, "pair_col_full_peak": 8.84, "pair_plain_corr": 0.887,
                     "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_pair": 0.0, "rect_doubling": 0.0,
                     "periodicity_score": 0.225, "lattice_t1_px": 27.5, "lattice_t2_px": 47.7}


def test_the_map_band_overrides_a_pair_zone_only_where_the_long_lines_bear_it_out() -> None:
    """A band fills every long line it crosses. The region map's column overrules the pair test's zone only
    where one of the map's long columns is filled at the override's limit, or, where the map has no long
    column, where the pair test's long columns do not cross the region without filling (twelfth sitting):
    v8 seed 32's two hex zones named ``bands_cols`` stay zones; the same column borne out by a filled long
    column (v8 seed 31's overriding row band filled its long row at 0.87), or with no long line in either
    map (stored runs, v8 seed 29's overriding band), overrides."""
    assert _codes(_MAP_SHORT_COLUMN) & _REGION == {"doubled_zone"}
    assert _codes({**_MAP_SHORT_COLUMN, "doubling_col_full": 0.45}) & _REGION == {"bands_cols"}
    # no long map column (v8 seed 32's angled hex zone, column 0.64): the pair test's long columns cross
    # the zone at 8.8 and fill 0.02, it stays a zone; where they fill nothing of it (peak below PAIR_EXCESS)
    # or are not read, the band overrides
    no_long = {k: v for k, v in _MAP_SHORT_COLUMN.items() if k not in ("doubling_col_full",
                                                                       "doubling_col_full_peak")}
    assert _codes(no_long) & _REGION == {"doubled_zone"}
    assert _codes({**no_long, "pair_col_full_peak": 0.3}) & _REGION == {"bands_cols"}
    stored = {k: v for k, v in no_long.items() if "full" not in k}
    assert _codes(stored) & _REGION == {"bands_cols"}


def test_an_end_line_of_a_strong_pair_region_needs_evenness() -> None:
    """The first or last map line is a band only where it keeps its strength along itself (evenness ≥
    ``PAIR_END_EVEN``), whether or not the region is strong: v8 seed 32's fronto penny zone at the frame's
    side (end column 0.53 at evenness 0.14, a strong region 5.8 over 30 % of the windows) is a zone; the same
    column at seed 31's true band's evenness 0.64 (its end column 2.37) is a band, and so is the same
    column inside the frame."""
    zone = {**_MAP_ZONE, **_PAIR_SILENT, "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_pair": 0.0,
            "pair_excess_max": 5.81, "pair_area_frac": 0.303, "pair_row_level": 0.248, "pair_row_even": 0.113,
            "pair_col_level": 0.526, "pair_col_even": 0.138, "pair_col_end": 1.0, "pair_col_full": 0.526,
            "pair_col_full_peak": 3.81, "doubling_excess_max": 0.978, "doubling_area_frac": 0.486}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    band = {**zone, "pair_col_level": 2.37, "pair_col_full": 2.37}  # seed 31's band: above the line limit
    assert _codes({**band, "pair_col_even": 0.64}) & _REGION == {"bands_cols"}
    assert _codes({**band, "pair_col_end": 0.0}) & _REGION == {"bands_cols"}
    assert _codes(band) & _REGION == {"doubled_zone"}


def test_a_pair_band_the_region_maps_long_lines_deny_is_a_zone() -> None:
    """A band fills every long line it crosses: where the region map's long columns cross the region at a
    map line's overriding strength (``DOUBLING_LINE_OVER``) and none is filled to the line limit, the pair
    test's column is a zone (twelfth sitting, ``_long_lines_deny``). v8 seed 32's fronto penny zone over 70 %
    of the wall's height (pair test: strong region, long column 1.13; region map: long columns peak 0.73, fill
    −0.08) is a zone; the true column bands whose map long columns are unfilled cross the region at ≤ 0.37
    (0.32 kept here), and a long column the map fills keeps the band."""
    zone = {**_MAP_ZONE, "doubling_excess_max": 0.694, "doubling_area_frac": 0.63,
            "doubling_row_level": -0.045, "doubling_col_level": -0.079,
            "doubling_row_end": 0.0, "doubling_col_end": 0.0,
            "doubling_row_full": -0.108, "doubling_col_full": -0.079, "doubling_row_full_peak": 0.677,
            "doubling_col_full_peak": 0.732, "doubling_plain_corr": 0.695, "pair_excess_max": 7.36,
            "pair_area_frac": 0.464, "pair_row_level": 2.654, "pair_col_level": 1.135, "pair_row_even": 0.354,
            "pair_col_even": 0.428, "pair_row_end": 0.0, "pair_col_end": 0.0, "pair_row_full": -0.135,
            "pair_col_full": 1.135, "pair_row_full_peak": 7.534, "pair_col_full_peak": 2.763,
            "pair_plain_corr": 0.704, "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_pair": 0.0,
            "rect_doubling": 0.0, "periodicity_score": 0.462, "lattice_t1_px": 104.6, "lattice_t2_px": 106.1}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    # (the pair column raised to 2.5, above the line limit of the region's strength, _pair_line_limit)
    zone = {**zone, "pair_col_level": 2.5, "pair_col_full": 2.5}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    assert _codes({**zone, "doubling_col_full_peak": 0.32}) & _REGION == {"bands_cols"}
    assert _codes({**zone, "doubling_col_full": 0.2}) & _REGION == {"bands_cols"}
    # a line-only pair band (no strong region) so denied names nothing of its own
    weak = {**zone, "pair_excess_max": 1.4, "pair_area_frac": 0.0, "pair_row_level": 0.1,
            "doubling_excess_max": 0.1}
    assert not _codes(weak) & _REGION
    assert _codes({**weak, "doubling_col_full_peak": 0.3}) & _REGION == {"bands_cols"}


def test_a_region_map_band_beside_a_fine_lattice_is_no_band() -> None:
    """A band of the region map alone (the pair test names no region) is withdrawn beside a fine artifact
    lattice as the pair test's line alone is (twelfth sitting): the lattice puts its own peaks into the
    windows' spectra, and on a wall read at a changing scale (rectified) they drift against the wall's
    lattice along one axis (v8 seed 19's 8-px grid read rectified: map column band, 0.24 over 28 % of the
    windows). The grid is still named; without it, or with the grid on a wall read at one scale, the band
    stands."""
    band = {**_GRID_LINE, "pair_col_level": 0.1, "pair_col_full": 0.1, "doubling_excess_max": 0.24,
            "doubling_area_frac": 0.28, "doubling_col_level": 0.2, "doubling_col_even": 0.7,
            "doubling_col_end": 0.0, "doubling_col_full": 0.2, "doubling_col_full_peak": 0.25}
    got = _codes(band)
    assert "grid_s8" in got and not got & _REGION
    assert _codes({**band, "grid_s8": 0.0}) & _REGION == {"bands_cols"}
    flat = {**band, "persp_trend_x": 0.0, "rect_pair": 0.0, "rect_doubling": 0.0}
    assert _codes(flat) & _REGION == {"bands_cols"}


def test_a_pair_line_needs_its_share_of_a_strong_region() -> None:
    """The pair test's line limit grows with its region as ``PAIR_LINE`` stands to ``PAIR_EXCESS``
    (``_pair_line_limit``): v8 seed 30's angled tile zone, a column of 0.61 at evenness 0.71 beside a region
    of 6.97 over 20 % of the windows, is a zone; the same column beside a region at the limit (3.0), or a
    column at a sixth of the region's strength (1.16), is a band; a line without a strong region keeps
    ``PAIR_LINE``."""
    zone = {**_MAP_ZONE, **_PAIR_SILENT, "persp_trend_x": 0.69, "persp_trend_y": 0.09, "rect_pair": 1.0,
            "rect_doubling": 1.0, "pair_excess_max": 6.97, "pair_area_frac": 0.199, "pair_col_level": 0.609,
            "pair_col_even": 0.71, "pair_col_end": 0.0, "pair_col_full": 0.609, "pair_col_full_peak": 1.1,
            "pair_row_level": 0.161, "doubling_excess_max": 0.163, "doubling_area_frac": 0.071,
            "doubling_col_level": -0.012, "doubling_col_full": -0.012, "doubling_col_full_peak": 0.2,
            "periodicity_score": 0.73, "lattice_t1_px": 10.9, "lattice_t2_px": float("nan")}
    assert _codes(zone) & _REGION == {"doubled_zone"}
    assert _codes({**zone, "pair_excess_max": 3.0}) & _REGION == {"bands_cols"}
    assert _codes({**zone, "pair_col_level": 1.17, "pair_col_full": 1.17}) & _REGION == {"bands_cols"}
    assert _codes({**zone, "pair_excess_max": 1.2, "pair_area_frac": 0.0}) & _REGION == {"bands_cols"}
