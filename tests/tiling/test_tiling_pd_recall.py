"""Two ``period_doubled`` misses of the tenth sitting (issue 11), replayed on the flat summaries the rules
read (the keys copied, rounded, from generated v8 walls; every other key absent as in older summaries).

* A doubled hex mosaic whose reference's raw ring at f/2 holds its tile colours' broad energy
  (``ref_Ehalf_over_Ef`` 1.20) but whose lattice peaks there are weaker than at f* (``ref_peak_Ehalf_over_Ef``
  0.99): the guard for a reference read at half its period does not apply; a peak at f/2 keeps it.
* A doubled photographed brick wall whose own lattice was read at its second harmonic (ratio 1.02 to the
  reference) while both scale tests, read at the reference's f*, place its energy at f/2: named where the
  region tests read no region, the region's verdict otherwise.
"""

from __future__ import annotations

from tests.support.tiling_cases import tiling_codes

# seed 22, period_doubled_random_fro_2200084 (hex, 30.6 -> 61.2 px, fronto-parallel)
HEX = {"E2f_over_Ef": 0.1567, "Ehalf_over_Ef": 2.9025, "fundamental_period_px": 61.1145,
       "periodicity_score": 0.7755, "ref_period_px": 30.9464, "ref_periodicity_score": 0.456,
       "period_ratio_to_ref": 1.9749, "ref_E2f_over_Ef": 0.5832, "ref_Ehalf_over_Ef": 1.1976,
       "ref_peak_E2f_over_Ef": 0.6532, "ref_peak_Ehalf_over_Ef": 0.9929, "peak_E2f_over_Ef": 0.1419,
       "peak_Ehalf_over_Ef": 2.8328, "ref_lattice_acf_half": 0.5881, "ref_lattice_acf_same": 0.6814,
       "ref_acf_period_px": 61.2194, "lattice_t1_px": 70.4989, "lattice_t2_px": 70.6529,
       "alias_fine_peak_frac": 0.0, "alias_fold_peak_frac": 0.0, "doubling_excess_max": 0.0505,
       "doubling_area_frac": 0.0, "doubling_plain_corr": 0.8638, "persp_trend_x": 0.0, "persp_trend_y": 0.0,
       "frame_periodicity_score": 0.7755, "ref_doubled_frac": 0.5104, "ref_halved_frac": 0.0,
       "ref_same_frac": 0.0, "ref_measured_frac": 0.96, "ref_local_max_period_px": 102.4,
       "ref_local_min_period_px": 8.0, "pair_excess_max": 1.075, "pair_area_frac": 0.0,
       "pair_row_level": -0.0996, "pair_col_level": -0.027, "pair_row_even": -0.2983,
       "pair_col_even": -0.0485, "pair_row_end": 0.0, "pair_col_end": 1.0, "pair_plain_corr": 0.9467}

# seed 22, period_doubled_random_ang_2200067 (photographed brick, 78.9 -> 157.7 px, seen at an angle)
BRICK = {"E2f_over_Ef": 0.3196, "Ehalf_over_Ef": 1.2073, "fundamental_period_px": 78.3597,
         "periodicity_score": 0.4334, "ref_period_px": 76.8516, "ref_periodicity_score": 0.3294,
         "period_ratio_to_ref": 1.0196, "ref_E2f_over_Ef": 0.786, "ref_Ehalf_over_Ef": 0.6202,
         "ref_peak_E2f_over_Ef": 0.7741, "ref_peak_Ehalf_over_Ef": 0.6052, "peak_E2f_over_Ef": 0.352,
         "peak_Ehalf_over_Ef": 1.137, "ref_lattice_acf_half": 0.64, "ref_acf_period_px": 80.3375,
         "lattice_t1_px": 157.978, "alias_fine_peak_frac": 0.0002, "alias_fold_peak_frac": 0.0002,
         "persp_trend_x": 0.2599, "persp_trend_y": 0.0866, "frame_periodicity_score": 0.4334,
         "ref_doubled_frac": 0.0413, "ref_halved_frac": 0.124, "ref_same_frac": 0.7107,
         "ref_measured_frac": 0.8643, "ref_local_max_period_px": 76.8, "ref_local_min_period_px": 8.0}


def test_broad_ring_energy_at_the_references_half_frequency_does_not_veto_a_doubling():
    assert "period_doubled" in tiling_codes(HEX)
    # a lattice peak at the reference's f/2 (a planks or running-bond reference): the guard holds
    assert "period_doubled" not in tiling_codes({**HEX, "ref_peak_Ehalf_over_Ef": 1.5})
    # a summary without the peak keys keeps the guard too
    old = {k: v for k, v in HEX.items() if not k.startswith(("peak_", "ref_peak_"))}
    assert "period_doubled" not in tiling_codes(old)


def test_a_doubled_wall_read_at_its_harmonic_is_named_where_no_region_is_read():
    assert "period_doubled" in tiling_codes(BRICK)
    # the output's energy at the reference's f/2 as at the reference's own scale: no doubling
    assert "period_doubled" not in tiling_codes({**BRICK, "Ehalf_over_Ef": 0.65, "peak_Ehalf_over_Ef": 0.62})
    # the peaks alone not sure of the doubling: not named on the raw test alone
    assert "period_doubled" not in tiling_codes({**BRICK, "peak_Ehalf_over_Ef": 0.62})
    # a strong region of the pair test: a zone at 2x, named as such, not as a doubled wall
    zone = {**BRICK, "pair_excess_max": 5.0, "pair_area_frac": 0.2, "pair_row_level": 0.1,
            "pair_col_level": 0.1, "pair_row_even": 0.2, "pair_col_even": 0.2, "pair_row_end": 0.0,
            "pair_col_end": 0.0, "pair_plain_corr": 0.9}
    codes = tiling_codes(zone)
    assert "period_doubled" not in codes and "doubled_zone" in codes
