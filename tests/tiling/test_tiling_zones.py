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
