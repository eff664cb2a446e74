"""The tiling diagnosis against ground truth (issue 11's targets), through the evaluation harness.

* ``test_targets_on_generated_scenes``: a CI-sized generated sample (8 scenes per cause and 8 clean walls plus
  the clean twins of checkerboard, aliasing and period scenes; 512×512, half of them angled), scored by
  :func:`trackdiag.testing.walls.evaluate.metrics` and held to the issue's targets. The full calibration runs
  ``benchmarks/eval_tiling.py`` with ≥ 50 scenes per cause.
* ``test_harness_on_real_dev``: the harness runs on ``../shared/bench/real-dev`` (the development sample) when
  that folder exists (or where ``TRACKDIAG_REAL_DEV`` points), maps its truth names to verdict codes, and
  reports the numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trackdiag.testing.walls.evaluate import TARGETS, format_table, metrics, run_real_dev, sample_specs
from trackdiag.testing.walls.truth import REAL_DEV_NAMES, TARGET_CAUSES

ROOT = Path(__file__).resolve().parents[2]
# ../shared/bench/real-dev from the repository root; TRACKDIAG_REAL_DEV names another place (a git worktree)
REAL_DEV = Path(os.environ.get("TRACKDIAG_REAL_DEV", ROOT.parent / "shared" / "bench" / "real-dev"))


@pytest.mark.targets  # a measurement of open targets (non-strict xfail): `make targets`, not `make test`
@pytest.mark.slow
@pytest.mark.xfail(strict=False,
                   reason="issue 11 targets not met yet (2026-12-06, commit 0ae236f): on this sample "
                   "doubled_zone, bands_rows/cols and aliasing F1 0-0.22, period_doubled 0.78, clean false "
                   "alarms "
                   "8 %, exact set 60 %, period within 5 % 83 % (angled 65 %), perspective 86 % / 13 %. "
                   "Third round (2026-12-06, eval_tiling --n-per-cause 12 --seed 0, 156 scenes): F1 "
                   "bands_rows 0.29 -> 0.70, aliasing 0.50 -> 0.80, doubled_zone 0.44, bands_cols 0.59, "
                   "period_doubled 0.81, period_halved 0.70; clean alarms 8 % -> 8 %; period within 5 % "
                   "angled 49 % -> 76 % (fronto 95 %); perspective angled 74 % / fronto 12 % -> 74 % / 9 %. "
                   "Fourth round, zones and bands (2x-period region map, eval_tiling --causes doubled_zone,"
                   "bands_rows,bands_cols --n-per-cause 20, calibrated on seed 0, held out seed 1): F1 "
                   "doubled_zone 0.50 -> 0.62 / 0.32 -> 0.67, bands_rows 0.69 -> 0.79 / 0.46 -> 0.65, "
                   "bands_cols 0.53 -> 0.72 / 0.32 -> 0.59; clean alarms 1 of 20 / 1 of 20. "
                   "Fourth round, reference causes (eval_tiling --causes "
                   "period_doubled,period_halved,aliasing --n-per-cause 20 --seed 0): F1 period_doubled "
                   "0.82 -> 0.93, period_halved 0.73 -> 0.89, "
                   "aliasing 0.76 -> 0.80; reference period within 5 % 77 % -> 92 %. "
                   "Fifth round, all three parts (held-out seed 11, 10 per cause, 110 scenes): F1 "
                   "doubled_zone 0.78, bands_rows 0.67, bands_cols 0.75, aliasing 0.57, period_doubled 1.00, "
                   "period_halved 0.95; clean alarms 0 of 30; exact set 78 %; base period 94 % (fronto 92 "
                   "%); perspective 84 % / 15 %")
def test_targets_on_generated_scenes(tmp_path, wall_records):
    specs = sample_specs(n_per_cause=8, seed=7, size=(512, 512))
    records = wall_records(specs)
    m = metrics(records)
    print("\n" + format_table(m))
    (tmp_path / "metrics.json").write_text(json.dumps(m, default=str))
    assert not m["errors"], m["errors"]
    for cause in TARGET_CAUSES:
        assert m["per_cause"][cause]["n_true"] == 8
    failed = [k for k, ok in m["targets"].items() if ok is False and k != "all_met"]
    assert not failed, f"targets missed: {failed}\n" + format_table(m, max_misses=15)
    assert m["clean"]["false_alarm_rate"] <= TARGETS["clean_false_alarm_max"]


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_DEV / "cases.json").exists(), reason=f"no development sample at {REAL_DEV}")
def test_harness_on_real_dev():
    cases = json.loads((REAL_DEV / "cases.json").read_text())
    records = run_real_dev(REAL_DEV)
    assert len(records) == len(cases)
    assert not [r for r in records if r.get("error")], [r["error"] for r in records if r.get("error")]
    m = metrics(records)
    print("\nreal-dev:\n" + format_table(m))
    # every truth name is mapped to its verdict code, and every case is counted once
    for name, code in REAL_DEV_NAMES.items():
        n = sum(1 for c in cases if name in c["causes"])
        if n:
            assert m["per_cause"][code]["n_true"] == n
    assert m["clean"]["n"] == sum(1 for c in cases if c["causes"] == ["clean"])
    assert m["n"] == len(cases)
    for key in ("exact_set_rate",):
        assert 0.0 <= m[key] <= 1.0
    assert m["period"]["n"] + m["period"]["n_approx"] == sum(1 for c in cases if c["period_px"] is not None)


@pytest.mark.slow
def test_row_bands_and_aliasing_floor_on_generated_scenes(wall_records):
    """Recall floors for the causes whose estimators were rebuilt in the third round (strip novelty for
    full-width bands along x, fine-peak share and moiré for aliasing, the scale trend for perspective) on a
    sample none of them was calibrated on (seed 7, 512×512, 8 per cause, 8 clean walls plus 4 clean twins).
    Measured when written (2026-12-06): bands_rows 2 of 8 (main before: see the report), aliasing 4 of 8,
    clean walls with an alarm 0 of 12, perspective on 6 % of fronto-parallel walls. Fifth sitting
    (2026-12-07, the aliasing tile keys): aliasing 5 of 8 (an angled wall the frame's fine key missed),
    perspective 12 of 12 angled, 0 of 16 fronto-parallel. Sixth sitting (the central half's lattice score in
    ``periodicity_score``, the brick photograph's own perspective in the truth): perspective 12 of 12 / 0 of
    16, no ``aperiodic`` verdict on the 13 periodic walls. The floors are those measurements less one (a
    guard against losing what works); the issue's targets are those of test_targets_on_generated_scenes.
    """
    specs = sample_specs(causes=("bands_rows", "aliasing"), n_per_cause=8, seed=7, size=(512, 512))
    m = metrics(wall_records(specs))
    print("\n" + format_table(m))
    assert not m["errors"], m["errors"]
    assert m["per_cause"]["bands_rows"]["tp"] >= 2
    assert m["per_cause"]["aliasing"]["tp"] >= 4
    assert m["per_cause"]["bands_rows"]["fp"] == 0 and m["per_cause"]["aliasing"]["fp"] == 0
    assert m["clean"]["n"] == 12 and m["clean"]["false_alarm_rate"] <= 1 / 12
    assert m["perspective"]["rate_fronto"] <= 0.1
    assert m["perspective"]["n_angled"] >= 10 and m["perspective"]["rate_angled"] >= 0.9
    # periodic walls (their angled ones too) are not called aperiodic; the stucco/gravel/grass walls are
    aper = m["aperiodic"]
    assert aper["rate_periodic"] is not None and aper["rate_periodic"] <= 1 / 13
    assert aper["n"] == 0 or aper["rate_aperiodic"] == 1.0


@pytest.mark.targets  # a measurement of open targets (non-strict xfail): `make targets`, not `make test`
@pytest.mark.slow
@pytest.mark.xfail(strict=False,
                   reason="issue 11 F1 >= 0.9 not met for zones and bands yet (2026-12-06, 2x-period "
                   "region map; eval_tiling --n-per-cause 20, calibrated on seed 0 / held out seed 1): "
                   "doubled_zone F1 0.62 / 0.67, bands_rows 0.79 / 0.65, bands_cols 0.72 / 0.59, clean "
                   "walls with an alarm 5 % / 5 %. Misses: 1-D planks (the 2-D spectrum match is too "
                   "weak), angled walls whose perspective trend is off, zones as tall as the wall read as "
                   "full-height bands. This sample (seed 7, 512x512, 8 per cause) read doubled_zone F1 0.36 "
                   "(2 zones taken as period_doubled), bands_rows 0.55, bands_cols 0.55, clean 0 of 8. "
                   "Sixth sitting (generator v6: periods to 64 px, bands to 45 % of the wall; the pair test "
                   "on the wall's edges, read first; eval_tiling --n-per-cause 15, seeds 1-3 pooled): "
                   "doubled_zone 0.86, bands_rows 0.78, bands_cols 0.77, clean walls 0 of 45; still missed: "
                   "bricks doubled along one axis, angled bands at low periodicity_score")
def test_zone_and_band_targets_on_generated_scenes(wall_records):
    """Issue 11's targets for the three region causes on a sample none of the thresholds was calibrated on
    (seed 7, 512×512, 8 scenes per cause and 8 clean walls)."""
    specs = sample_specs(causes=("doubled_zone", "bands_rows", "bands_cols"), n_per_cause=8, seed=7,
                         size=(512, 512))
    m = metrics(wall_records(specs))
    print("\n" + format_table(m))
    assert not m["errors"], m["errors"]
    for cause in ("doubled_zone", "bands_rows", "bands_cols"):
        assert m["per_cause"][cause]["f1"] >= TARGETS["f1_min"], (cause, m["per_cause"][cause])
    assert m["clean"]["false_alarm_rate"] <= TARGETS["clean_false_alarm_max"]


REF_CAUSES = ("period_doubled", "period_halved", "aliasing")
#: measured when written (2026-12-06, seed 7, 512×512, 8 per cause + 8 clean + 12 clean twins): see the xfail
#: reasons; the issue's target is F1 ≥ 0.9 for each.
_REF_XFAIL = {
    "aliasing": "aliasing F1 0.77 on this sample (P 1.00, R 0.62; 0.67 / R 0.50 before the 64-px tile "
                "fold keys, which find angled strided walls; seed 0, 20 per cause: 0.80 before): the "
                "stride-then-bilinear walls fold into a clean lattice of 5-10 px whose wrapped harmonics "
                "land below the fine band, which nothing tells from a real one without a reference",
}


@pytest.fixture(scope="module")
def ref_cause_metrics(wall_records):
    specs = sample_specs(causes=REF_CAUSES, n_per_cause=8, seed=7, size=(512, 512))
    m = metrics(wall_records(specs))
    print("\n" + format_table(m))
    return m


@pytest.mark.slow
@pytest.mark.parametrize("cause", [
    pytest.param(c, marks=pytest.mark.xfail(strict=False, reason=_REF_XFAIL[c])) if c in _REF_XFAIL else c
    for c in REF_CAUSES])
def test_reference_causes_on_generated_scenes(ref_cause_metrics, cause):
    """period_doubled, period_halved (against the reference patch) and aliasing on a sample none of their
    rules was calibrated on (calibration: eval_tiling --causes period_doubled,period_halved,aliasing
    --n-per-cause 20 --seed 0): F1 ≥ 0.9 (issue 11), and the clean walls and twins of the sample (≤ 1 of 20
    with any alarm)."""
    m = ref_cause_metrics
    assert not m["errors"], m["errors"]
    assert m["per_cause"][cause]["n_true"] == 8
    assert m["clean"]["n"] == 20 and m["clean"]["false_alarm_rate"] <= 1 / 20
    assert m["per_cause"][cause]["f1"] >= TARGETS["f1_min"], format_table(m, max_misses=15)
