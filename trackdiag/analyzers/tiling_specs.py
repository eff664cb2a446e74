"""Every tiling metric's goal, unit, doc and the warn/bad limits the rules use, registered as ``"tiling"``."""

from __future__ import annotations

from ..functional.detail import DETAIL_SPECS
from ..functional.seams import SIDES
from ..metricspec import MetricSpec, register_metrics
from .tiling_limits import (
    ALIAS_FINE_MSE,
    ALIAS_FINE_PEAKS,
    ALIAS_FOLD_PEAKS,
    ALIAS_OWN_FOLD,
    ALIAS_REF_FINE_PX,
    ALIAS_REF_FOLD,
    ALIAS_RESIZE_NMSE,
    ALIAS_SHIFT_NMSE,
    ALIAS_WIN_FOLD,
    ANISO_TREND,
    APERIODIC_SCORE,
    BAND_EXTENT,
    BAND_FRAC,
    BORDER_CROSS,
    CENTROID_TREND,
    CHECKERBOARD_BAD,
    CHECKERBOARD_WARN_LINES,
    DOUBLED_EHALF,
    DOUBLING_AREA,
    DOUBLING_COL,
    DOUBLING_EXCESS,
    DOUBLING_ROW,
    EDGE_BAD,
    EDGE_WARN,
    GRID_BAD,
    GRID_WARN,
    HALVED_E2F,
    PAIR_AREA,
    PAIR_EXCESS,
    PAIR_LINE,
    SEAM_BAD,
    SEAM_T_BAD,
    SEAM_T_WARN,
    SEAM_WARN,
    STRIP_NOVELTY,
    ZONE_FRAC,
    ZONE_HALF_FRAC,
)


def _specs() -> list[MetricSpec]:
    """Every tiling metric's goal, unit, doc and the limits :func:`likely_causes` uses."""
    m = MetricSpec
    out = [
        m("periodicity_score", "max", "", "confidence that the wall has a lattice (0..1); below "
          f"{APERIODIC_SCORE} the wall is aperiodic and period verdicts are not given"),
        m("fundamental_period_px", "none", "px", "f*: spacing of the lattice's densest rows"),
        m("fundamental_radius_bin", "none", "bin", "f* in bins of the square FFT grid"),
        m("acf_first_peak_period_px", "none", "px", "the lattice period confirmed in the autocorrelation"),
        m("acf_first_peak_radius_bin", "none", "bin", "the ACF period in bins"),
        m("lattice_t1_px", "none", "px", "shortest real-space lattice vector"),
        m("lattice_t2_px", "none", "px", "second lattice vector (NaN on 1-D textures)"),
        m("lattice_t1_angle_deg", "none", "deg", "angle of t1 from +x (y down), [0, 180)"),
        m("lattice_t2_angle_deg", "none", "deg", "angle of t2 from +x (y down), [0, 180)"),
        m("period_x_px", "none", "px", "shortest lattice repeat within 30° of the x axis"),
        m("period_y_px", "none", "px", "shortest lattice repeat within 30° of the y axis"),
        m("lattice_prominence", "max", "ratio", "f*'s peak over its whitened spectral neighbourhood"),
        m("ref_period_px", "none", "px", "the reference's f* period"),
        m("period_ratio_to_ref", "none", "ratio", "output period (at the centre) / reference period"),
        m("ref_doubled_frac", "min", "ratio", "share of the local map's measured windows whose period is "
          "nearer 2× the reference's than 1×"),
        m("ref_halved_frac", "min", "ratio", "share of the measured windows nearer ½× the reference's "
          "period"),
        m("ref_same_frac", "max", "ratio", "share of the measured windows nearer the reference's period than "
          "½× or 2× (period_doubled/halved need it below 1 − REF_DEPART_AREA where the map measures)"),
        m("ref_measured_frac", "none", "ratio", "share of the local map's windows with a period"),
        m("ref_local_max_period_px", "none", "px", "longest period the local map measures (window / 2.5)"),
        m("ref_local_min_period_px", "none", "px", "shortest period the local map searches (4 px after its "
          "downsampling)"),
        m("ref_E2f_over_Ef", "none", "ratio", "the reference's own E(2f)/E(f) at its f* (what the output "
          "reads at the reference's f* when it keeps the reference's scale)"),
        m("ref_Ehalf_over_Ef", "none", "ratio", "the reference's own E(f/2)/E(f) at its f*"),
        m("ref_acf_period_px", "none", "px", "the reference's period confirmed in its autocorrelation"),
        m("ref_peak_E2f_over_Ef", "none", "ratio", "the reference's own E(2f)/E(f) at its f* on the "
          "spectrum's prominent bins only (its lattice peaks)"),
        m("ref_peak_Ehalf_over_Ef", "none", "ratio", "the reference's own E(f/2)/E(f) at its f*, prominent "
          "bins only"),
        m("ref_lattice_acf_half", "none", "ratio", "the reference's 2-D autocorrelation at half the output's "
          "lattice vectors (high: the output repeats at twice the reference's period)"),
        m("ref_lattice_acf_same", "none", "ratio", "the reference's 2-D autocorrelation at the output's "
          "lattice vectors (high: the reference repeats at the output's scale)"),
        m("ref_lattice_acf_double", "none", "ratio", "the reference's 2-D autocorrelation at twice the "
          "output's lattice vectors (high with _same low: the output is halved)"),
        m("peak_E2f_over_Ef", "none", "ratio", "the output's E(2f)/E(f) at the reference's f* on its "
          "prominent bins only (no broad tile-colour or shading energy)"),
        m("peak_Ehalf_over_Ef", "none", "ratio", "the output's E(f/2)/E(f) at the reference's f*, prominent "
          "bins only"),
        m("ref_spectrum_distance", "min", "octave", "earth mover's distance between the output's and the "
          "reference's radial power spectra over log2(period); 1 = all energy one octave off"),
        *DETAIL_SPECS,
        m("E2f_over_Ef", "min", "ratio", "energy at 2f* over energy at f* (f* the reference's when given)",
          warn=HALVED_E2F),
        m("Ehalf_over_Ef", "min", "ratio", "energy at f*/2 over energy at f*", warn=DOUBLED_EHALF),
        # The metric's own limit is the one that holds without checkerboard_line_share (the rule's lower
        # CHECKERBOARD_WARN needs the gain spread over the pixel pairs): compare_ckpts and the charts judge
        # the value alone, and a texture locked to the pixel lattice reads 0.002-0.006.
        m("checkerboard_s2", "min", "ratio", "relative gain imbalance of the pixel parities (demodulated)",
          warn=CHECKERBOARD_WARN_LINES, bad=CHECKERBOARD_BAD),
        m("checkerboard_robust", "none", "ratio", "interquartile mean of the 2×2-quad parity contrasts "
          "(a gain is everywhere; a pixel-locked texture's Nyquist harmonic only on its edges)"),
        m("checkerboard_dims", "none", "", "2: the parity imbalance is two-dimensional (a checkerboard); 1: "
          "one axis only (a 1-D period-2 pattern); 0: none above the noise floor"),
        m("checkerboard_line_share", "none", "ratio", "share of the axis parity gains on the strongest of "
          "the 4 pixel-pair classes mod 8: ≈ 0.25–0.55 for a gain on every pair (deconvolution), → 1 "
          "for 1-px grid seams or a texture locked to the 8-px block lattice (not a checkerboard at ≥ "
          "CB_LINE_SHARE)"),
        m("checkerboard_score", "min", "ratio", "= checkerboard_s2 (since issue 11)",
          warn=CHECKERBOARD_WARN_LINES, bad=CHECKERBOARD_BAD),
        m("checkerboard_s8", "min", "level", "= grid_s8 (since issue 11)", warn=GRID_WARN, bad=GRID_BAD),
        m("band_score", "min", "ratio", "largest doubled share of a map row/column on the hinted axis",
          warn=BAND_FRAC),
        m("band_row_frac_max", "min", "ratio", "largest doubled share of a map row", warn=BAND_FRAC),
        m("band_col_frac_max", "min", "ratio", "largest doubled share of a map column", warn=BAND_FRAC),
        m("band_doubled_frac", "min", "ratio", "share of measured windows at twice the period",
          warn=ZONE_FRAC),
        m("doubled_area_frac", "min", "ratio", "= band_doubled_frac (share of the valid area doubled)",
          warn=ZONE_FRAC),
        m("zone_frac", "min", "ratio", "share of the windows with a half-frequency excess (2×-period region)",
          warn=ZONE_HALF_FRAC),
        m("zone_x_extent", "min", "ratio", "share of map columns holding a 2×-period window (1: full width)",
          warn=BAND_EXTENT),
        m("zone_y_extent", "min", "ratio", "share of map rows holding a 2×-period window (1: full height)",
          warn=BAND_EXTENT),
        m("doubling_excess_max", "min", "corr", "largest excess (over the wall's median) of a window's match "
          "with the wall's 2x-rescaled spectrum over its match with the spectrum itself",
          warn=DOUBLING_EXCESS, bad=2 * DOUBLING_EXCESS),
        m("doubling_area_frac", "min", "frac", "share of the windows at twice the period (2×-period region)",
          warn=DOUBLING_AREA),
        m("doubling_row_level", "min", "corr", "smallest excess along the most doubled map row (a whole row "
          "at 2x: a full-width band)", warn=DOUBLING_ROW),
        m("doubling_col_level", "min", "corr", "smallest excess along the most doubled map column (a whole "
          "column at 2x: a full-height band)", warn=DOUBLING_COL),
        m("doubling_row_even", "none", "ratio", "that row's level over its own largest excess (near 1: the "
          "region keeps its strength to the row's ends, as a band does)"),
        m("doubling_col_even", "none", "ratio", "that column's level over its own largest excess (near 1: a "
          "band; a tall zone fades towards an end)"),
        m("doubling_row_end", "none", "flag", "1 where that row is the first or last measured map row (on an "
          "angled wall: the perspective fit's residue, not a band)"),
        m("doubling_col_end", "none", "flag", "1 where that column is the first or last measured map column"),
        m("doubling_row_full", "min", "corr", "that level over the map rows spanning most of the measured "
          "width only (a band's rows reach across; a zone fills only rows a mask hole cuts short)"),
        m("doubling_col_full", "min", "corr", "that level over the map columns spanning most of the measured "
          "height only"),
        m("doubling_row_full_peak", "none", "corr", "the largest excess on those long rows (the region "
          "reaches one)"),
        m("doubling_col_full_peak", "none", "corr", "the largest excess on those long columns"),
        m("doubling_plain_corr", "max", "corr", "median correlation of the windows' spectra with the wall's "
          "(lattice confidence of the doubling map)"),
        m("pair_excess_max", "min", "z", "largest robust z (over the wall's windows) of a window that "
          "repeats at twice a lattice vector and lost the repeat at the vector (real-space pair test)",
          warn=PAIR_EXCESS),
        m("pair_area_frac", "min", "frac", "share of the windows whose pair-test z is above 1.5",
          warn=PAIR_AREA),
        m("pair_row_level", "min", "z", "smallest pair-test z along the most doubled map row (a full-width "
          "band)", warn=PAIR_LINE),
        m("pair_col_level", "min", "z", "smallest pair-test z along the most doubled map column (a "
          "full-height band)", warn=PAIR_LINE),
        m("pair_row_even", "none", "ratio", "that row's level over its own largest z"),
        m("pair_col_even", "none", "ratio", "that column's level over its own largest z"),
        m("pair_row_end", "none", "flag", "1 where that row is the first or last measured map row"),
        m("pair_col_end", "none", "flag", "1 where that column is the first or last measured map column"),
        m("pair_row_full", "min", "z", "that level over the map rows spanning most of the measured "
          "width only (a band's rows reach across; a zone fills only rows a mask hole cuts short)"),
        m("pair_col_full", "min", "z", "that level over the map columns spanning most of the measured "
          "height only"),
        m("pair_row_full_peak", "none", "z", "the largest excess on those long rows (the region reaches "
          "one)"),
        m("pair_col_full_peak", "none", "z", "the largest excess on those long columns"),
        m("pair_plain_corr", "max", "corr", "median over the windows of the best pair correlation at a "
          "lattice vector (how well the wall repeats its lattice)"),
        m("rect_tilt_x", "none", "log/frame", "the wall's tilt along x where the region maps were read on "
          "the rectified wall (G = g·W; NaN elsewhere; docs/tiling.md §6)"),
        m("rect_tilt_y", "none", "log/frame", "the wall's tilt along y (G = g·H; NaN where not rectified)"),
        m("rect_doubling", "none", "flag", "1 where the doubling_* keys come from the rectified wall"),
        m("rect_pair", "none", "flag", "1 where the pair_* keys come from the rectified wall"),
        m("region_screened", "none", "flag", "1 where a region map was skipped because no region rule can "
          "read it (its keys NaN, not measured; docs/tiling.md §9)"),
        m("zone_row_frac_max", "min", "ratio", "largest share of a map row with a half-frequency excess"),
        m("zone_col_frac_max", "min", "ratio", "largest share of a map column with a half-frequency excess"),
        m("alias_win_fine_frac", "min", "frac", "median over the valid 64-px tiles of the tile's share of AC "
          "power in prominent peaks at periods <= 10 px"),
        m("alias_win_fold_frac", "min", "frac", "median over the valid 64-px tiles of the fine peaks off the "
          "tile's own lattice (its two strongest peaks and the first one's line): the fold on angled walls; "
          f"aliasing when >= {ALIAS_WIN_FOLD} with alias_win_fine_frac >= {ALIAS_FINE_PEAKS}"),
        m("alias_fold_peak_frac", "min", "frac", "alias_fine_peak_frac less the peaks on the lattice of the "
          "two strongest fine peaks (a real 2-3 px texture's own first shell); aliasing needs it >= "
          f"{ALIAS_FOLD_PEAKS}"),
        m("alias_own_fold_frac", "min", "frac", "alias_fine_peak_frac less the peaks on the lattice of the "
          "frame's two strongest peaks at any scale (a misread wall lattice's own harmonics); NaN without a "
          f"wall lattice of >= 6 px; the frame's fold branch needs it >= {ALIAS_OWN_FOLD}"),
        m("alias_ref_fold_gain", "min", "ratio", "the output's excess power at the positions where a stride "
          "of 2 folds the reference's fine peaks, over the reference's power at those peaks (NaN without a "
          f"reference or a fine peak that folds); aliasing when >= {ALIAS_REF_FOLD} with ref_period_px <= "
          f"{ALIAS_REF_FINE_PX} and alias_ref_fold_power too"),
        m("alias_ref_fold_power", "min", "ratio", "alias_ref_fold_gain in variance units: the output's power "
          "at the folded positions over the reference's power at its fine peaks (NaN where the gain is)"),
        m("alias_ref_fold_gain_centre", "min", "ratio", "alias_ref_fold_gain on the central half of the "
          "frame (read on walls seen at an angle, whose fold drifts across the frame)"),
        m("alias_ref_fold_power_centre", "min", "ratio", "alias_ref_fold_power on the central half"),
        m("alias_fine_peak_frac", "min", "frac", "share of the AC power in prominent peaks at periods <= 5 "
          "px "
          "off the wall's lattice and off the 8-px grid (folded by a subsampling without low-pass)",
          warn=ALIAS_FINE_PEAKS, bad=2 * ALIAS_FINE_PEAKS),
        m("strip_novelty_x", "min", "frac", "largest share of a horizontal strip's x-spectrum that the wall "
          "around it lacks (2x band or zone along x)", warn=STRIP_NOVELTY),
        m("strip_extent_x", "none", "frac", "share of that strip's width with the novel content (1: band)"),
        m("strip_novelty_y", "min", "frac", "the same for vertical strips along y"),
        m("strip_novelty_all_x", "none", "frac", "strip_novelty_x over every frequency (moiré)"),
        m("strip_novelty_all_y", "none", "frac", "strip_novelty_y over every frequency (moiré)"),
        m("strip_extent_y", "none", "frac", "share of that strip's height carrying the novel content"),
        m("strip_novelty_at_y", "none", "frac", "centre of the most novel horizontal strip (0: top)"),
        m("strip_novelty_at_x", "none", "frac", "centre of the most novel vertical strip (0: left)"),
        m("resize_nmse_downUp", "min", "ratio", "down→up resize error / variance", warn=ALIAS_RESIZE_NMSE),
        m("resize_mse_downUp", "min", "", "down→up (0.5×) resize MSE in full-scale units (the energy above "
          f"half Nyquist); the folded-peak aliasing branches need >= {ALIAS_FINE_MSE} (a visible fold)"),
        m("shift_nmse_dx1", "min", "ratio", "1-px x-shift error / (2·variance)", warn=ALIAS_SHIFT_NMSE),
        m("shift_nmse_dy1", "min", "ratio", "1-px y-shift error / (2·variance)", warn=ALIAS_SHIFT_NMSE),
        m("border_cross_index", "min", "ratio", "median share of axis energy from the frame borders",
          warn=BORDER_CROSS),
        m("edge_score", "min", "z", "largest per-side edge-strip anomaly (robust z)", warn=EDGE_WARN,
          bad=EDGE_BAD),
        m("mask_seam_score", "min", "ratio", "relative brightness offset of the band along the mask contour",
          warn=SEAM_WARN, bad=SEAM_BAD),
        m("mask_seam_t", "min", "ratio", "contour offset over its spread across contour blocks (consistency)",
          warn=SEAM_T_WARN, bad=SEAM_T_BAD),
        m("mask_seam_agree", "none", "frac", "share of contour blocks with the median offset's sign"),
        m("centre_period_px", "none", "px", "period at the frame centre (local map, trend-corrected)"),
        m("centre_crop_period_px", "none", "px", "lattice period of the frame's central half (angled walls; "
          "of the rectified wall's where that scores at least as well)"),
        m("rect_crop_period_px", "none", "px", "lattice period of the central half of the wall rectified by "
          "its tilt (angled walls with a measured tilt; NaN elsewhere)"),
        m("rect_crop_periodicity_score", "none", "", "periodicity_score of that rectified central half"),
        m("window_vote_period_px", "none", "px", "the finer period most local windows read where the "
          "reported one is its multiple (a zone or band at 2x pulled the frame); NaN where the reported one "
          "stands"),
        m("frame_period_px", "none", "px", "the whole frame's lattice period (f*'s; fundamental_period_px "
          "may report the centre's instead)"),
        m("centre_periodicity_score", "none", "", "periodicity_score of the frame's central half"),
        m("frame_periodicity_score", "none", "", "the whole frame's lattice score (periodicity_score is the "
          "larger of it and centre_periodicity_score)"),
        m("scale_trend_x", "none", "log/frame", "ln(period right / left third) / (2/3): perspective along x"),
        m("scale_trend_y", "none", "log/frame", "ln(period bottom / top third) / (2/3): perspective along y"),
        m("scale_corr_x", "none", "corr", "correlation of the left and right thirds' log-radial spectra"),
        m("scale_corr_y", "none", "corr", "correlation of the top and bottom thirds' log-radial spectra"),
        m("persp_trend_x", "none", "log/frame", "median slope of log scale vs x/W over pairs of a 3×3 window "
          "grid in the same row (perspective)"),
        m("persp_trend_y", "none", "log/frame", "median slope of log scale vs y/H over pairs of a 3×3 window "
          "grid in the same column (perspective)"),
        m("centroid_trend_x", "none", "log/frame", "median over the rows of a 3×3 window grid of the "
          "change of ln(period) from the left to the right window, from their spectral centroids "
          f"(perspective on aperiodic walls: >= {CENTROID_TREND} in size; NaN where periodicity_score >= "
          f"{APERIODIC_SCORE}, where it is not used)"),
        m("centroid_trend_y", "none", "log/frame", "the same from the top to the bottom window of each "
          "column"),
        m("aniso_trend_x", "none", "log/frame", "Theil–Sen slope against x/W of the 3×3 window grid's "
          "anisotropy ln(scale_x / scale_y) (x- against y-cone log-radial spectra), pairs in the same row "
          f"(perspective on aperiodic walls: >= {ANISO_TREND} in size with centroid_trend_x of its sign; NaN "
          f"where periodicity_score >= {APERIODIC_SCORE})"),
        m("aniso_trend_y", "none", "log/frame", "the same against y/H, pairs in the same column"),
        m("persp_agree_x", "none", "frac", "share of the row pairs' slopes agreeing with persp_trend_x"),
        m("persp_agree_y", "none", "frac", "share of the column pairs' slopes agreeing with persp_trend_y"),
        m("persp_pairs_x", "none", "count", "window pairs behind persp_trend_x (valid, correlated)"),
        m("persp_pairs_y", "none", "count", "window pairs behind persp_trend_y (valid, correlated)"),
        m("persp_sq_trend_x", "none", "log/frame", "persp_trend_x on square (zero-padded) window transforms: "
          "the perspective verdict's (a non-square window's rings lock bricks and planks at shift 0)"),
        m("persp_sq_trend_y", "none", "log/frame", "persp_trend_y on square window transforms"),
        m("persp_sq_agree_x", "none", "frac", "persp_agree_x on square window transforms"),
        m("persp_sq_agree_y", "none", "frac", "persp_agree_y on square window transforms"),
        m("persp_sq_pairs_x", "none", "count", "persp_pairs_x on square window transforms"),
        m("persp_sq_pairs_y", "none", "count", "persp_pairs_y on square window transforms"),
        m("local_period_trend_y", "none", "log/frame", "Theil–Sen slope of log local period vs y/H"),
        m("local_period_trend_x", "none", "log/frame", "Theil–Sen slope of log local period vs x/W"),
        m("nonfinite_frac", "min", "ratio", "share of NaN/Inf pixels", bad=1e-9),
        m("valid_px_frac", "none", "ratio", "share of pixels used (mask and finite)"),
    ]
    out += [m(f"edge_{sd}", "min", "z", f"{sd} edge strip against the interior", warn=EDGE_WARN, bad=EDGE_BAD)
            for sd in SIDES]
    out += [m(f"grid_s{k}", "min", "level", f"extra |jump| on the {k}-px lattice lines over the lines around "
              "them, less 3.5 standard errors (image units)",
              warn=GRID_WARN, bad=GRID_BAD) for k in (4, 8, 16, 32, 64)]
    out += [m(f"grid_agree_s{k}", "none", "frac", f"share of the image's parts whose strongest {k}-px line "
              "phase is the whole image's (±1 px): 1 for a grid, lower where a wall's joints drift through "
              "the phases") for k in (4, 8, 16, 32, 64)]
    return out


register_metrics("tiling", _specs())
