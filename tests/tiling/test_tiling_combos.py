"""Two-cause scenes (issue 11, thirteenth sitting): a band beside a fine artifact lattice (checkerboard,
8-px grid) is named with it where the pair test's line is no phase drift of that lattice; one generated
checkerboard + column band scene is scored against its ground truth."""

from __future__ import annotations

import pytest

from trackdiag.analyzers.tiling import likely_causes

_REGION = {"doubled_zone", "bands_rows", "bands_cols"}


def _codes(summary: dict[str, float]) -> set[str]:
    return {v.code for v in likely_causes(summary) if v.severity in ("warn", "bad")}


# a pair-test column alone (no strong region) beside a checkerboard, on a wall read at one scale
_CB_LINE = {"periodicity_score": 0.87, "lattice_t1_px": 30.0, "lattice_t2_px": 30.0,
            "pair_excess_max": 1.67, "pair_area_frac": 0.0, "pair_row_level": -0.03, "pair_col_level": 1.5,
            "pair_row_even": -0.3, "pair_col_even": 0.9, "pair_row_end": 0.0, "pair_col_end": 0.0,
            "pair_plain_corr": 0.95,
            "doubling_excess_max": 0.12, "doubling_area_frac": 0.0, "doubling_row_level": -0.02,
            "doubling_col_level": 0.07, "doubling_row_even": -0.6, "doubling_col_even": 0.64,
            "doubling_row_end": 0.0, "doubling_col_end": 0.0, "doubling_plain_corr": 0.9,
            "persp_trend_x": 0.0, "persp_trend_y": 0.0, "rect_pair": 0.0, "rect_doubling": 0.0,
            "checkerboard_s2": 0.5, "checkerboard_dims": 2.0, "checkerboard_line_share": 0.3}


def test_a_pair_line_with_a_region_of_its_own_at_one_scale_stands_beside_a_checkerboard() -> None:
    """No region (pair_area_frac 0): the line is withdrawn as before; a region of the pair test's own over
    PAIR_AREA of the windows on a wall read at one scale: the band stands beside the checkerboard; the same
    on a rectified wall (the phase drifts): withdrawn, unless the region map reads the whole column too."""
    assert "checkerboard" in _codes(_CB_LINE) and not _codes(_CB_LINE) & _REGION
    own = {**_CB_LINE, "pair_area_frac": 0.08}
    assert _codes(own) >= {"checkerboard", "bands_cols"}
    rect = {**own, "rect_pair": 1.0, "persp_trend_x": 0.5}
    assert not _codes(rect) & _REGION
    assert _codes({**rect, "doubling_col_level": 0.5, "doubling_col_even": 0.92}) & _REGION == {"bands_cols"}


def test_a_row_band_stands_beside_a_grid_where_the_scale_changes_along_x_alone() -> None:
    """A grid's phase drifts along the axis the scale changes along: a trend along x makes whole columns,
    so a pair-test row stands beside the grid there, and a column is still withdrawn."""
    row = {**_CB_LINE, "checkerboard_s2": 0.0, "grid_s8": 0.05, "grid_phase_s8": 0.0, "grid_agree_s8": 1.0,
           "pair_col_level": -0.05, "pair_col_even": -0.5, "pair_row_level": 1.3, "pair_row_even": 0.9,
           "rect_pair": 1.0, "persp_trend_x": -0.43, "persp_trend_y": 0.0}
    assert _codes(row) >= {"grid_s8", "bands_rows"}
    col = {**row, "pair_row_level": -0.05, "pair_row_even": -0.5, "pair_col_level": 1.3, "pair_col_even": 0.9}
    assert "grid_s8" in _codes(col) and not _codes(col) & _REGION


@pytest.mark.slow
def test_a_generated_checkerboard_and_column_band_scene_reads_both() -> None:
    """v8 two-cause seed 28, a fronto-parallel checkerboard + column band (512-1024 px): both verdicts, no
    other cause (before: the checkerboard alone, its band withdrawn as the checkerboard's phase drift)."""
    from trackdiag.testing.walls.evaluate import SceneSpec, diagnose_scene, get_scene

    sc = get_scene(SceneSpec(cause="checkerboard+bands_cols", seed=28 * 100_003 + 50_000 + 6, angled=False))
    assert sorted(sc.truth.causes) == ["bands_cols", "checkerboard"]
    _, summ, _ = diagnose_scene(sc.pred, sc.mask, sc.ref)
    causes = _codes(summ) - {"perspective", "aperiodic", "edge_artifact", "mask_seam", "border_cross"}
    assert causes == {"checkerboard", "bands_cols"}, (causes, summ["pair_col_level"], summ["pair_area_frac"])
