"""Two ``period_doubled`` misses of the tenth sitting (issue 11), replayed on the flat summaries the rules
read (the keys copied, rounded, from generated v8 walls; every other key absent as in older summaries).

* A doubled hex mosaic whose reference's raw ring at f/2 holds its tile colours' broad energy
  (``ref_Ehalf_over_Ef`` 1.20) but whose lattice peaks there are weaker than at f* (``ref_peak_Ehalf_over_Ef``
  0.99): the guard for a reference read at half its period does not apply; a peak at f/2 keeps it.
* A doubled photographed brick wall whose own lattice was read at its second harmonic (ratio 1.02 to the
  reference) while both scale tests, read at the reference's f*, place its energy at f/2: named where the
  region tests read no region, the region's verdict otherwise.

And five of the eleventh sitting (docs/tiling.md §7, ``period_doubled``): a wall whose doubled period lies
beyond the local map's reach, the exact ratio with both scale tests sure standing for the area condition and
for the lattice score, a doubled planks wall whose scale test is undefined, and a column band whose
E(f/2)/E(f) lies far beyond the doubled prediction.
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


# seed 31, period_doubled_random_fro_3100101 (photographed brick, 78.9 -> 157.7 px, fronto-parallel): the
# output's period beyond the local map's reach (76.8 px), the reference read 12 % long (ratio 1.79)
BEYOND = {"E2f_over_Ef": 0.3313, "Ehalf_over_Ef": 1.2915, "fundamental_period_px": 157.9391,
          "periodicity_score": 0.707, "ref_period_px": 88.3664, "ref_periodicity_score": 0.4017,
          "period_ratio_to_ref": 1.7873, "ref_E2f_over_Ef": 0.9203, "ref_Ehalf_over_Ef": 0.7989,
          "ref_peak_E2f_over_Ef": 0.8537, "ref_peak_Ehalf_over_Ef": 0.8491, "peak_E2f_over_Ef": 0.3217,
          "peak_Ehalf_over_Ef": 1.4257, "ref_lattice_acf_half": 0.6397, "ref_acf_period_px": 85.9077,
          "lattice_t1_px": 157.9391, "lattice_t1_angle_deg": 178.0504, "alias_fine_peak_frac": 0.0023,
          "alias_fold_peak_frac": 0.0022, "alias_win_fine_frac": 0.0194, "alias_win_fold_frac": 0.0089,
          "persp_trend_x": 0.0, "persp_trend_y": 0.0, "ref_doubled_frac": 0.0078, "ref_halved_frac": 0.1318,
          "ref_same_frac": 0.6977, "ref_measured_frac": 0.9214, "ref_local_max_period_px": 76.8,
          "ref_local_min_period_px": 8.0}

# seed 19, period_doubled_random_fro_1900073 (wallpaper, 20.3 -> 40.6 px): half the map's windows read the
# reference's period (the wall's second harmonic as strong as its fundamental)
HARMONIC_WINDOWS = {"E2f_over_Ef": 0.8031, "Ehalf_over_Ef": 1.1255, "fundamental_period_px": 40.5527,
                    "periodicity_score": 0.9451, "ref_period_px": 20.3266, "ref_periodicity_score": 0.9619,
                    "period_ratio_to_ref": 1.9951, "ref_E2f_over_Ef": 0.8775, "ref_Ehalf_over_Ef": 0.059,
                    "ref_peak_E2f_over_Ef": 0.8661, "ref_peak_Ehalf_over_Ef": 0.0231,
                    "peak_E2f_over_Ef": 0.7703, "peak_Ehalf_over_Ef": 1.157, "ref_lattice_acf_half": 0.829,
                    "ref_lattice_acf_same": 0.741, "ref_lattice_acf_double": 0.8937,
                    "ref_acf_period_px": 20.2677, "lattice_t1_px": 40.5527, "lattice_t2_px": 40.5597,
                    "lattice_t1_angle_deg": 88.1036, "lattice_t2_angle_deg": 178.1918,
                    "alias_fine_peak_frac": 0.0003, "alias_fold_peak_frac": 0.0002,
                    "alias_win_fine_frac": 0.0, "alias_win_fold_frac": 0.0, "persp_trend_x": 0.0,
                    "persp_trend_y": 0.0, "doubling_excess_max": 0.0484, "doubling_area_frac": 0.0,
                    "doubling_row_level": -0.0186, "doubling_col_level": 0.0228,
                    "doubling_row_even": -0.3292, "doubling_col_even": 0.3322, "doubling_plain_corr": 0.808,
                    "ref_doubled_frac": 0.451, "ref_halved_frac": 0.0588, "ref_same_frac": 0.4902,
                    "ref_measured_frac": 0.7286, "ref_local_max_period_px": 76.8,
                    "ref_local_min_period_px": 8.0, "pair_excess_max": 0.6663, "pair_area_frac": 0.0,
                    "pair_row_level": -0.0195, "pair_col_level": 0.0624}

# seed 31, period_doubled_random_ang_3100094 (tiles, 11.8 -> 23.6 px, seen at an angle): periodicity 0.04
LOW_SCORE = {"E2f_over_Ef": 0.7524, "Ehalf_over_Ef": 1.4205, "fundamental_period_px": 23.2851,
             "periodicity_score": 0.0436, "ref_period_px": 11.8461, "ref_periodicity_score": 0.3997,
             "period_ratio_to_ref": 1.9656, "ref_E2f_over_Ef": 0.6871, "ref_Ehalf_over_Ef": 0.6851,
             "ref_peak_E2f_over_Ef": 0.9947, "ref_peak_Ehalf_over_Ef": 0.1088, "peak_E2f_over_Ef": 0.0362,
             "peak_Ehalf_over_Ef": 0.6472, "ref_lattice_acf_half": 0.3844, "ref_lattice_acf_same": 0.3561,
             "ref_lattice_acf_double": 0.2773, "ref_acf_period_px": 11.8282, "lattice_t1_px": 11.3939,
             "alias_fine_peak_frac": 0.0028, "alias_fold_peak_frac": 0.0023, "alias_win_fine_frac": 0.0628,
             "alias_win_fold_frac": 0.0011, "persp_trend_x": -0.7365, "persp_agree_x": 1.0,
             "persp_trend_y": -0.0866, "persp_agree_y": 1.0, "persp_pairs_y": 2.0,
             "ref_doubled_frac": 0.1809, "ref_halved_frac": 0.0, "ref_same_frac": 0.0319,
             "ref_measured_frac": 0.6714, "ref_local_max_period_px": 76.8, "ref_local_min_period_px": 8.0,
             "pair_excess_max": 1.111}

# seed 31, period_doubled_random_fro_3100139 (planks, 28.8 -> 57.5 px): E(f/2)/E(f) 0.99, scale test undefined
FLAT = {"E2f_over_Ef": 0.8282, "Ehalf_over_Ef": 0.9914, "fundamental_period_px": 57.4234,
        "periodicity_score": 0.8706, "ref_period_px": 28.7272, "ref_periodicity_score": 0.8391,
        "period_ratio_to_ref": 1.9989, "ref_E2f_over_Ef": 0.8591, "ref_Ehalf_over_Ef": 0.9645,
        "ref_peak_E2f_over_Ef": 0.9041, "ref_peak_Ehalf_over_Ef": 0.9204, "peak_E2f_over_Ef": 0.8116,
        "peak_Ehalf_over_Ef": 0.9831, "ref_lattice_acf_half": 0.6093, "ref_lattice_acf_same": 0.598,
        "ref_acf_period_px": 28.7499, "lattice_t1_px": 57.4234, "lattice_t1_angle_deg": 1.7948,
        "alias_fine_peak_frac": 0.0013, "alias_fold_peak_frac": 0.001, "alias_win_fine_frac": 0.0007,
        "alias_win_fold_frac": 0.0003, "persp_trend_x": 0.0, "persp_trend_y": 0.0,
        "doubling_excess_max": 0.034, "doubling_plain_corr": 0.8501, "ref_doubled_frac": 0.72,
        "ref_halved_frac": 0.04, "ref_same_frac": 0.2133, "ref_measured_frac": 0.75,
        "ref_local_max_period_px": 76.8, "ref_local_min_period_px": 8.0, "pair_excess_max": 0.4941}

# seed 31, bands_cols_random_ang_3100106 (planks, 29.6 px, a column band at 2x): the frame's lattice read at
# 2x, z_doubled 3.1 (far less energy at f/2 than the reference, whose f/2 holds its plank tones)
OVERSHOOT = {"E2f_over_Ef": 0.6756, "Ehalf_over_Ef": 0.3821, "fundamental_period_px": 61.2945,
             "periodicity_score": 0.4143, "ref_period_px": 29.4381, "ref_periodicity_score": 0.3942,
             "period_ratio_to_ref": 2.0821, "ref_E2f_over_Ef": 0.7743, "ref_Ehalf_over_Ef": 2.2996,
             "ref_peak_E2f_over_Ef": 0.9202, "ref_peak_Ehalf_over_Ef": 2.205, "peak_E2f_over_Ef": 0.657,
             "peak_Ehalf_over_Ef": 0.2314, "ref_lattice_acf_half": -0.1065, "ref_acf_period_px": 29.656,
             "lattice_t1_px": 135.9999, "lattice_t1_angle_deg": 1.3907, "alias_fine_peak_frac": 0.0008,
             "alias_fold_peak_frac": 0.0005, "alias_win_fine_frac": 0.0012, "alias_win_fold_frac": 0.0002,
             "persp_trend_x": 0.0, "persp_trend_y": 0.0, "doubling_excess_max": 0.0675,
             "doubling_area_frac": 0.0, "doubling_row_level": -0.0041, "doubling_col_level": 0.0267,
             "doubling_row_even": -0.0546, "doubling_col_even": 0.3637, "doubling_plain_corr": 0.8851,
             "ref_doubled_frac": 0.2571, "ref_halved_frac": 0.0, "ref_same_frac": 0.3429,
             "ref_measured_frac": 0.75, "ref_local_max_period_px": 76.8, "ref_local_min_period_px": 8.0,
             "pair_excess_max": 0.4866, "pair_area_frac": 0.0, "pair_row_level": -0.1557,
             "pair_col_level": 0.4457}


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


def test_a_doubled_wall_beyond_the_maps_reach_is_named_on_its_global_energy():
    assert "period_doubled" in tiling_codes(BEYOND)
    # the lattice peaks keep more energy at f* than at f/2: no doubling
    assert "period_doubled" not in tiling_codes({**BEYOND, "peak_Ehalf_over_Ef": 0.9})
    # a ratio nearer 1 than 2
    assert "period_doubled" not in tiling_codes({**BEYOND, "period_ratio_to_ref": 1.3})
    # a period the map can read: its windows (70 % at the reference's period) decide
    assert "period_doubled" not in tiling_codes({**BEYOND, "ref_local_max_period_px": 204.8})


def test_the_exact_ratio_with_both_scale_tests_sure_stands_for_the_area_condition():
    assert "period_doubled" in tiling_codes(HARMONIC_WINDOWS)
    # the lattice peaks not sure of the doubling: the area condition stands
    assert "period_doubled" not in tiling_codes({**HARMONIC_WINDOWS, "peak_Ehalf_over_Ef": 0.1})
    # a strong region of the pair test: a zone at 2x, named as such
    zone = {**HARMONIC_WINDOWS, "pair_area_frac": 0.2, "pair_excess_max": 5.0, "pair_row_level": 0.1,
            "pair_col_level": 0.1, "pair_row_even": 0.2, "pair_col_even": 0.2, "pair_row_end": 0.0,
            "pair_col_end": 0.0, "pair_plain_corr": 0.9}
    codes = tiling_codes(zone)
    assert "period_doubled" not in codes and "doubled_zone" in codes


def test_the_exact_ratio_with_both_scale_tests_sure_stands_for_the_lattice_score():
    assert "period_doubled" in tiling_codes(LOW_SCORE)
    # the map reads no more of the wall at twice the reference's period than at it
    assert "period_doubled" not in tiling_codes({**LOW_SCORE, "ref_doubled_frac": 0.0})
    # the ratio 1.8 (not the exact ratio) on so weak a lattice
    assert "period_doubled" not in tiling_codes({**LOW_SCORE, "period_ratio_to_ref": 1.8})


def test_a_doubled_planks_wall_with_an_undefined_scale_test_is_named_at_the_exact_ratio():
    assert "period_doubled" in tiling_codes(FLAT)
    assert "period_doubled" not in tiling_codes({**FLAT, "Ehalf_over_Ef": 0.7})
    assert "period_doubled" not in tiling_codes({**FLAT, "peak_Ehalf_over_Ef": 0.5})
    assert "period_doubled" not in tiling_codes({**FLAT, "period_ratio_to_ref": 1.7})


def test_an_output_far_beyond_the_doubled_prediction_is_no_doubled_wall():
    assert "period_doubled" not in tiling_codes(OVERSHOOT)
    # the energy at f/2 of a doubled planks wall (z_doubled 1.4): named
    assert "period_doubled" in tiling_codes({**OVERSHOOT, "Ehalf_over_Ef": 1.0, "peak_Ehalf_over_Ef": 1.0})
