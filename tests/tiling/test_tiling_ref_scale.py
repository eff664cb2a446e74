"""The scale test of ``period_doubled`` / ``period_halved`` against the reference's own energy ratios
(:func:`~trackdiag.analyzers.tiling.ref_scale_test`), and the local map's period range.

A wall at the reference's scale reads the reference's own ``E(f/2)/E(f)`` and ``E(2f)/E(f)`` at the
reference's f*, whatever period the reference was read at; a doubled wall reads ``1 / ref_E2f_over_Ef`` at f/2
and a halved one ``1 / ref_Ehalf_over_Ef`` at 2f. The unit tests check that arithmetic and the rules built on
it; the slow test measures precision, recall and the clean false alarms of the two verdicts on generated walls
with their clean twins (a sample none of the limits was calibrated on: seed 5, 512²).
"""

from __future__ import annotations

import math

import pytest

from tests.support.tiling_cases import doubled_wall_summary, tiling_codes
from trackdiag.analyzers.tiling import ref_scale_test
from trackdiag.analyzers.tiling_limits import REF_SCALE_Z


def _summary(**kw: float) -> dict[str, float]:
    """A doubled wall against a right reference (period 20 → 40 px), with the reference's own ratios."""
    return doubled_wall_summary(**{"E2f_over_Ef": 0.4, "Ehalf_over_Ef": 2.5, "ref_E2f_over_Ef": 0.4,
                                   "ref_Ehalf_over_Ef": 0.02, "ref_local_min_period_px": 8.0, **kw})


_codes = tiling_codes


def test_scale_test_positions_between_the_two_predictions():
    # doubled: the output's Ehalf is the reference's f over its 2f (1 / 0.4 = 2.5) -> z = 1
    zd, zh = ref_scale_test(_summary())
    assert zd == pytest.approx(1.0)
    # same scale: the output reads the reference's own ratios -> z = 0 on both
    zd, zh = ref_scale_test(_summary(Ehalf_over_Ef=0.02, E2f_over_Ef=0.4))
    assert zd == pytest.approx(0.0, abs=1e-9) and zh == pytest.approx(0.0, abs=1e-9)
    # halved: E2f reads 1 / ref_Ehalf (50) -> z_halved = 1
    _, zh = ref_scale_test(_summary(E2f_over_Ef=50.0))
    assert zh == pytest.approx(1.0)
    # predictions closer than REF_SCALE_SEP (log): no verdict from the test
    zd, _ = ref_scale_test(_summary(ref_Ehalf_over_Ef=1.5, ref_E2f_over_Ef=0.5))
    assert math.isnan(zd)
    # stored summaries without the reference's own ratios: no test
    old = _summary()
    del old["ref_E2f_over_Ef"], old["ref_Ehalf_over_Ef"]
    assert all(math.isnan(z) for z in ref_scale_test(old))


def test_a_reference_read_at_half_its_period_does_not_make_a_clean_wall_doubled():
    """The reference (true period 34 px) read at 17 px: the clean wall's ratio is 2 and its energy at the
    reference's f/2 is high, but it is the reference's own fundamental (ref_Ehalf_over_Ef as high): no
    period_doubled. With the same ratio and a reference whose f/2 is empty, the doubling is named."""
    misread = _summary(ref_period_px=17.0, fundamental_period_px=34.0, Ehalf_over_Ef=1.6,
                       ref_Ehalf_over_Ef=1.2, ref_E2f_over_Ef=0.15, ref_doubled_frac=0.0,
                       ref_same_frac=0.0, ref_measured_frac=0.5)
    assert "period_doubled" not in _codes(misread)
    assert "period_doubled" in _codes({**misread, "ref_Ehalf_over_Ef": 0.05})


def test_a_reference_with_its_energy_at_half_its_f_is_never_doubled():
    """A reference whose own E(f/2) is at least its E(f) may be read at half its period (a planks reference
    of 47 px read at 23.6 px: its clean twin read the ratio 1.99); the scale test cannot tell (its two
    predictions cross), so no period_doubled."""
    crossed = _summary(ref_Ehalf_over_Ef=1.5, ref_E2f_over_Ef=0.88, Ehalf_over_Ef=1.18, ref_same_frac=0.06,
                       ref_doubled_frac=0.21)
    assert math.isnan(ref_scale_test(crossed)[0])
    assert "period_doubled" not in _codes(crossed)
    assert "period_doubled" in _codes({**crossed, "ref_Ehalf_over_Ef": 0.3, "ref_E2f_over_Ef": 0.5,
                                       "Ehalf_over_Ef": 2.0, "ref_doubled_frac": 0.8})


def test_no_period_change_against_a_reference_finer_than_the_camera_keeps():
    """A 4.8-px reference (a fine mosaic) against a clean 9.6-px wall read as its 2x: the wall's blur took
    the reference's f (E(f/2)/E(f) = 80 against the reference's 0.34), so even the scale test says
    "doubled"; below REF_MIN_PERIOD_PX no period change is named. At 9.6 px the same numbers are a
    doubling."""
    fine = _summary(ref_period_px=4.84, fundamental_period_px=9.59, period_ratio_to_ref=1.98,
                    Ehalf_over_Ef=80.0, E2f_over_Ef=0.33, ref_Ehalf_over_Ef=0.34, ref_E2f_over_Ef=0.18,
                    ref_local_min_period_px=8.0)
    assert "period_doubled" not in _codes(fine)
    assert "period_doubled" in _codes({**fine, "ref_period_px": 9.6, "fundamental_period_px": 19.2})


def test_the_scale_test_stands_for_a_ratio_read_a_little_off():
    """A reference read 9 % long (ratio 1.83, outside the 6 % of 2) with the doubling's spectral signature is
    named; with the clean wall's signature it is not; a ratio nearer 1 than 2 is never named by the test."""
    off = _summary(period_ratio_to_ref=1.83, ref_doubled_frac=0.0, ref_same_frac=0.5,
                   ref_local_max_period_px=30.0, Ehalf_over_Ef=1.1, ref_E2f_over_Ef=0.8)
    assert ref_scale_test(off)[0] >= REF_SCALE_Z
    assert "period_doubled" in _codes(off)
    assert "period_doubled" not in _codes({**off, "Ehalf_over_Ef": 0.05})
    assert "period_doubled" not in _codes({**off, "period_ratio_to_ref": 1.3})
    halved = _summary(period_ratio_to_ref=0.46, fundamental_period_px=9.2, ref_doubled_frac=0.0,
                      ref_halved_frac=0.3, ref_same_frac=0.5, ref_local_max_period_px=8.0,
                      E2f_over_Ef=20.0, Ehalf_over_Ef=0.5, ref_Ehalf_over_Ef=0.05)
    assert "period_halved" in _codes(halved) and "period_doubled" not in _codes(halved)
    assert "period_halved" not in _codes({**halved, "E2f_over_Ef": 0.5})


def test_the_local_map_is_read_only_where_it_measures_both_periods():
    """An 8.2-px halved wall against a 16.3-px reference: the map (periods from 8 px) reads the wall's
    16-px stagger as the reference's period on 60 % of it; that must not veto the halving."""
    halved = _summary(ref_period_px=16.3, fundamental_period_px=8.2, period_ratio_to_ref=0.503,
                      E2f_over_Ef=40.0, Ehalf_over_Ef=2.0, ref_E2f_over_Ef=0.9, ref_Ehalf_over_Ef=0.14,
                      ref_same_frac=0.6, ref_halved_frac=0.02, ref_doubled_frac=0.17,
                      ref_local_max_period_px=76.8, ref_local_min_period_px=8.0)
    assert "period_halved" in _codes(halved)
    # a map that searches from 4 px measures both: its 60 % at the reference's period vetoes
    assert "period_halved" not in _codes({**halved, "ref_local_min_period_px": 4.0})


@pytest.mark.slow
def test_period_verdicts_precision_recall_and_clean_alarms_on_generated_walls(wall_records):
    """period_doubled and period_halved on generated walls with a reference (seed 5, 512², 6 per cause, with
    the clean twin of every second one: the same wall at the reference's scale) and clean walls: recall
    ≥ 5 of 6 per cause, no period verdict on the wrong cause, and none on a clean wall or twin (measured
    when written: recall 6/6 and 6/6, no false period verdict, 0 of 12 clean alarms)."""
    from trackdiag.testing.walls.evaluate import sample_specs

    specs = sample_specs(causes=("period_doubled", "period_halved"), n_per_cause=6, seed=5, size=(512, 512))
    recs = wall_records(specs)
    codes = ("period_doubled", "period_halved")
    found = {c: {"tp": 0, "fn": 0, "fp": 0} for c in codes}
    clean_alarms, n_clean = [], 0
    for r in recs:
        assert "error" not in r, r["error"]
        got = {v["code"] for v in r["verdicts"] if v["severity"] in ("warn", "bad")} & set(codes)
        truth = set(r["truth"]["causes"]) & set(codes)
        if not r["truth"]["causes"]:
            n_clean += 1
            if got:
                clean_alarms.append((r["id"], sorted(got)))
        for c in codes:
            found[c]["tp"] += c in truth and c in got
            found[c]["fn"] += c in truth and c not in got
            found[c]["fp"] += c not in truth and c in got
    assert n_clean == 12
    assert not clean_alarms, clean_alarms
    for c in codes:
        assert found[c]["fp"] == 0, (c, found)
        assert found[c]["tp"] >= 5, (c, found)


def test_scale_test_reads_a_reference_whose_half_frequency_is_stronger():
    """A running bond's reference puts more energy at its f/2 (the stagger, 3.5x) than a doubled wall
    would (1/E2f = 1.13): the two predictions swap sides, and the test still tells them apart (seed-7 truth
    sample; it read NaN, and the reference's own-half guard vetoed the doubling)."""
    from trackdiag.analyzers.tiling import likely_causes, ref_scale_test

    s = {"Ehalf_over_Ef": 1.153, "E2f_over_Ef": 0.76, "ref_Ehalf_over_Ef": 3.485, "ref_E2f_over_Ef": 0.887}
    zd, zh = ref_scale_test(s)
    assert zd > 0.9 and zh < 0.5
    same = {**s, "Ehalf_over_Ef": 3.3}  # a wall at the reference's scale reads the reference's own ratio
    assert ref_scale_test(same)[0] < 0.1
    full = {**s, "fundamental_period_px": 28.626, "periodicity_score": 0.529, "ref_periodicity_score": 0.616,
            "ref_period_px": 14.236, "period_ratio_to_ref": 2.011, "ref_same_frac": 0.173,
            "ref_doubled_frac": 0.481, "ref_halved_frac": 0.0, "ref_measured_frac": 0.81,
            "ref_local_max_period_px": 51.2, "ref_local_min_period_px": 8.0, "lattice_t1_px": 28.6,
            "alias_fine_peak_frac": 0.001, "alias_fold_peak_frac": 0.001}
    assert "period_doubled" in {v.code for v in likely_causes(full)}
    assert "period_doubled" not in {v.code for v in likely_causes({**full, "Ehalf_over_Ef": 3.3})}


def test_scale_test_says_nothing_where_the_output_fits_neither_prediction():
    """A halved planks wall (seed-9 sample): the reference's f/2 energy is its random plank tones (2.1x its
    f*), which the halved wall does not keep, so its E(2f) (3.45) lies far beyond both predictions (same
    scale 0.87, halved 1 / 2.1 = 0.48): the test reads NaN instead of vetoing the exact ratio ½."""
    from trackdiag.analyzers.tiling import likely_causes
    from trackdiag.analyzers.tiling_limits import REF_SCALE_FAR

    s = {"fundamental_period_px": 19.06, "periodicity_score": 0.748, "ref_periodicity_score": 0.848,
         "ref_period_px": 38.49, "period_ratio_to_ref": 0.495, "E2f_over_Ef": 3.454, "Ehalf_over_Ef": 1.328,
         "ref_E2f_over_Ef": 0.874, "ref_Ehalf_over_Ef": 2.103, "ref_same_frac": 0.18,
         "ref_doubled_frac": 0.325, "ref_halved_frac": 0.453, "ref_measured_frac": 0.836,
         "ref_local_max_period_px": 76.8, "ref_local_min_period_px": 8.0, "lattice_t1_px": 19.06,
         "alias_fine_peak_frac": 0.0055, "alias_fold_peak_frac": 0.004}
    assert math.isnan(ref_scale_test(s)[1])
    assert "period_halved" in {v.code for v in likely_causes(s)}
    # between the predictions, or a little beyond "same scale", the test still vetoes
    same = {**s, "E2f_over_Ef": 0.874 * 1.2}
    assert REF_SCALE_FAR < ref_scale_test(same)[1] < 0
    assert "period_halved" not in {v.code for v in likely_causes(same)}


def test_a_reference_confirmed_by_its_autocorrelation_lifts_the_own_half_guard():
    """A doubled planks wall (seed-8 sample, 19.6 → 39.4 px): the reference holds 1.7x its f*'s energy at
    f/2 (its random plank tones), the scale test cannot tell the predictions apart (NaN), and the guard for
    a reference read at half its period vetoed the doubling; the reference's autocorrelation confirms its
    period (19.7 px), so the guard does not apply. A reference whose autocorrelation reads twice the period
    (a planks reference read at half its period, as the clean twin of seed 3) keeps the guard."""
    from trackdiag.analyzers.tiling import likely_causes

    s = {"fundamental_period_px": 39.43, "periodicity_score": 0.701, "ref_periodicity_score": 0.701,
         "ref_period_px": 19.59, "period_ratio_to_ref": 2.013, "E2f_over_Ef": 0.792, "Ehalf_over_Ef": 1.131,
         "ref_E2f_over_Ef": 0.878, "ref_Ehalf_over_Ef": 1.705, "ref_acf_period_px": 19.70,
         "ref_same_frac": 0.0, "ref_doubled_frac": 0.553, "ref_halved_frac": 0.0, "ref_measured_frac": 0.85,
         "ref_local_max_period_px": 102.4, "ref_local_min_period_px": 8.0, "lattice_t1_px": 39.43,
         "alias_fine_peak_frac": 0.0013, "alias_fold_peak_frac": 0.001}
    assert all(math.isnan(z) for z in ref_scale_test(s))
    assert "period_doubled" in {v.code for v in likely_causes(s)}
    for acf in (39.4, float("nan")):
        assert "period_doubled" not in {v.code for v in likely_causes({**s, "ref_acf_period_px": acf})}
