"""The region maps' tiering (docs/tiling.md §9): ``tiling_metrics`` skips a 2×-period region map where no
region rule can read it, and the rules read the skipped maps as read.

The tiering rests on two premises of the rules (``tiling_rules._doubled_region`` / ``_pair_region``): a wall
whose longest lattice vector is under ``STRIP_MIN_LATTICE_PX`` gets no region verdict from either map, and a
wall with ``periodicity_score < WEAK_SCORE`` none from the spectral map (``doubling_*``). These tests fail
when a rule change breaks a premise (the tiering must then change with it)."""

from __future__ import annotations

import math

import torch

from trackdiag.analyzers.bands import region_key_names
from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
from trackdiag.analyzers.tiling_limits import STRIP_MIN_LATTICE_PX, WEAK_SCORE

NAN = float("nan")

# a summary whose two maps each read a strong full-width band (rows) on a confident fronto-parallel wall
_STRONG = {"periodicity_score": 0.8, "frame_periodicity_score": 0.8, "lattice_t1_px": 30.0,
           "lattice_t2_px": 31.0, "persp_trend_x": 0.0, "persp_trend_y": 0.0,
           "doubling_excess_max": 0.5, "doubling_area_frac": 0.3, "doubling_plain_corr": 0.8,
           "doubling_row_level": 0.4, "doubling_row_even": 0.9, "doubling_col_level": -0.05,
           "doubling_col_even": -0.3, "doubling_row_end": 0.0, "doubling_col_end": 0.0,
           "pair_excess_max": 8.0, "pair_area_frac": 0.3, "pair_row_level": 2.0, "pair_col_level": -0.2,
           "pair_row_even": 0.9, "pair_col_even": -0.1, "pair_row_end": 0.0, "pair_col_end": 0.0,
           "pair_plain_corr": 0.7}


def _regions(summary: dict[str, float]) -> set[str]:
    return {v.code for v in likely_causes(summary) if v.severity in ("warn", "bad")
            and v.code in ("doubled_zone", "bands_rows", "bands_cols")}


def _screened(summary: dict[str, float], *, doubling: bool, pair: bool) -> dict[str, float]:
    out = dict(summary)
    for pre, on in (("doubling", doubling), ("pair", pair)):
        if on:
            out.update(dict.fromkeys(region_key_names(pre), NAN))
    out["region_screened"] = 1.0
    return out


def test_region_rules_cannot_fire_where_the_tiering_skips_the_maps() -> None:
    """Strong regions in both maps name a band; under a lattice of fewer than ``STRIP_MIN_LATTICE_PX`` px
    neither map names anything, and on a weak wall the spectral map names nothing (only the pair test's
    strong region, which the tiering keeps)."""
    assert _regions(_STRONG) == {"bands_rows"}
    fine = {**_STRONG, "lattice_t1_px": 0.8 * STRIP_MIN_LATTICE_PX, "lattice_t2_px": NAN}
    assert _regions(fine) == set()
    assert _regions(_screened(fine, doubling=True, pair=True)) == set()
    no_pair = {**_STRONG, **dict.fromkeys(region_key_names("pair"), NAN)}
    assert _regions(no_pair) == {"bands_rows"}  # the spectral map alone names the band ...
    weak = {**no_pair, "periodicity_score": 0.5 * WEAK_SCORE}
    assert _regions(weak) == set()  # ... but not on a weak wall
    assert _regions(_screened(weak, doubling=True, pair=False)) == set()
    # the pair test still reads its strong region on a weak wall: it is not skipped there
    assert _regions({**_STRONG, "periodicity_score": 0.5 * WEAK_SCORE}) == {"bands_rows"}


def test_skipped_maps_read_as_read_by_the_older_band_maps() -> None:
    """Where no region map is measured the older per-axis band map speaks; where the tiering skipped them
    (``region_screened`` 1) it stays silent, as it would beside the maps that would have been read."""
    old = {"periodicity_score": 0.9, "frame_periodicity_score": 0.9, "fundamental_peak_ratio": 1e4,
           "lattice_t1_px": 0.8 * STRIP_MIN_LATTICE_PX, "band_row_frac_max": 1.0, "band_col_frac_max": 0.0,
           "band_doubled_frac": 0.5, "doubled_area_frac": 0.5, "band_base_period_px": 6.0,
           **dict.fromkeys((*region_key_names("doubling"), *region_key_names("pair")), NAN)}
    unread = _regions(old)
    assert unread == {"bands_rows"}
    skipped = _regions({**old, "region_screened": 1.0})
    measured = _regions({**old, "doubling_excess_max": 0.0, "pair_excess_max": 0.0})
    assert skipped == measured == set()
    assert _regions({**old, "region_screened": 0.0}) == unread


def _lattice(period: float, size: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    img = 0.5 + 0.2 * (torch.cos(2 * math.pi * x / period) + torch.cos(2 * math.pi * y / period))
    img = img + 0.02 * torch.randn(img.shape, generator=g)
    return img[None, None].expand(1, 3, -1, -1).contiguous()


def test_the_summary_skips_the_maps_of_a_fine_lattice_only() -> None:
    """A 5-px lattice (a fine mosaic) has room for the maps but nothing of real size to double: both maps
    are skipped (NaN, ``region_screened`` 1); a 24-px lattice reads both (``region_screened`` 0)."""
    batch = torch.cat([_lattice(5.0), _lattice(24.0, seed=1)])
    out = tiling_metrics(batch, maps=False)
    assert float(out["lattice_t1_px"][0]) < STRIP_MIN_LATTICE_PX <= float(out["lattice_t1_px"][1])
    assert out["region_screened"].tolist() == [1.0, 0.0]
    for pre in ("doubling", "pair"):
        for k in region_key_names(pre):
            assert math.isnan(float(out[k][0])), k
        assert math.isfinite(float(out[f"{pre}_excess_max"][1]))
