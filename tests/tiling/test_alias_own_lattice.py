"""The aliasing rule's eleventh-sitting gates, by mechanism (docs/tiling.md §6, *the frame's own lattice*).

* ``alias_own_fold_frac`` (``fine_peak_fracs(own_lattice=True)``): a square tile wall whose lattice was
  read with a skew second vector shows its own fine harmonics off that lattice (the frame's fine and fold
  keys fire), but they are on the lattice of the frame's two strongest peaks; a strided fine mosaic's folds
  are not.
* the rule: the frame's fold branch needs the own-lattice share where it is defined; the moiré needs a wall
  read with a perspective trend; the tiles' fold is not read on an angled wall with a confident lattice of
  real size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from tests.support.tiling_cases import fine_mosaic
from trackdiag.analyzers.tiling_limits import ALIAS_FINE_PEAKS, ALIAS_FOLD_PEAKS, ALIAS_OWN_FOLD
from trackdiag.analyzers.tiling_rules import likely_causes
from trackdiag.functional.spectral import fine_peak_fracs, prepare, spectrum

N = 256


def _tiles(period: float) -> np.ndarray:
    """Square tiles of ``period`` px with sharp joints, point-sampled then blurred by σ 0.5 px (the
    generator's optics): rich harmonics up to Nyquist."""
    t = np.arange(N) + 0.5
    x, y = np.meshgrid(t, t)
    joint = (np.abs((x / period) % 1 - 0.5) > 0.42) | (np.abs((y / period) % 1 - 0.5) > 0.42)
    return gaussian_filter(np.where(joint, 0.25, 0.75), 0.5)


def _fracs(img: np.ndarray, f: tuple[float, float] | None, g: tuple[float, float] | None,
           **kw: bool) -> tuple[float, float]:
    sig, _ = prepare(torch.from_numpy(img[None].astype(np.float32)), clean=True)
    sp = spectrum(sig)
    if f is None or g is None:
        nan = torch.full((1, 2), float("nan"))
        a, b = fine_peak_fracs(sp, f=nan, g=nan.clone(), lattice_ok=torch.zeros(1, dtype=torch.bool), **kw)
    else:
        a, b = fine_peak_fracs(sp, f=torch.tensor([f]), g=torch.tensor([g]), **kw)
    return float(a[0]), float(b[0])


@pytest.mark.parametrize("period", [9.3, 10.4, 11.7])
def test_a_misread_tile_lattice_is_explained_by_the_frames_own_lattice(period):
    s = N  # the spectrum's side for a 256² image
    f, skew = (0.0, s / period), (0.4 * s / period, 0.55 * s / period)
    fine, fold = _fracs(_tiles(period), f, skew)
    assert fine >= ALIAS_FINE_PEAKS and fold >= ALIAS_FOLD_PEAKS, (fine, fold)  # the old rule fired
    _, own = _fracs(_tiles(period), f, skew, own_lattice=True)
    assert own < ALIAS_OWN_FOLD, own


@pytest.mark.parametrize("period,angle", [(2.2, 0.1), (2.6, 0.6), (2.8, 0.2)])
def test_a_strided_mosaics_folds_are_off_the_frames_own_lattice(period, angle):
    fine, own = _fracs(fine_mosaic(N, period, angle, seed=1)[::3, ::3], None, None, own_lattice=True)
    assert fine >= ALIAS_FINE_PEAKS and own >= 3 * ALIAS_OWN_FOLD, (fine, own)


BASE = {"periodicity_score": 0.9, "fundamental_period_px": 9.4, "lattice_t1_px": 9.3, "lattice_t2_px": 9.4,
        "alias_fine_peak_frac": 0.24, "alias_fold_peak_frac": 0.17, "alias_win_fine_frac": 0.04,
        "alias_win_fold_frac": 0.002, "resize_mse_downUp": 0.004, "resize_nmse_downUp": 0.3,
        "shift_nmse_dx1": 0.2, "shift_nmse_dy1": 0.2, "persp_trend_x": 0.0, "persp_trend_y": 0.0,
        "strip_novelty_all_x": 0.0, "strip_novelty_all_y": 0.0, "valid_px_frac": 1.0, "nonfinite_frac": 0.0}


def _aliasing(**over: float) -> bool:
    return "aliasing" in {v.code for v in likely_causes({**BASE, **over})}


def test_the_frame_fold_needs_the_own_lattice_share_where_it_is_defined():
    assert _aliasing()  # summaries without the key: as before
    assert not _aliasing(alias_own_fold_frac=0.037)
    assert _aliasing(alias_own_fold_frac=0.14)


def test_the_moire_needs_a_perspective_trend():
    moire = {"periodicity_score": 0.26, "alias_fine_peak_frac": 0.01, "alias_fold_peak_frac": 0.005,
             "strip_novelty_all_x": 0.3, "strip_novelty_all_y": 0.5}
    assert not _aliasing(**moire)  # fronto-parallel reading: the texture's own novel strips
    assert _aliasing(**moire, persp_trend_x=0.6)


def test_the_tile_fold_is_not_read_on_an_angled_wall_with_a_confident_lattice():
    tiles = {"alias_fine_peak_frac": 0.03, "alias_fold_peak_frac": 0.01, "alias_win_fine_frac": 0.3,
             "alias_win_fold_frac": 0.08, "persp_trend_x": 0.6}
    assert not _aliasing(**tiles)
    assert _aliasing(**tiles, periodicity_score=0.05)  # an aliased angled wall: no confident lattice
    assert _aliasing(**tiles, lattice_t1_px=3.1)  # ... or a lattice finer than a real wall's
    assert _aliasing(**{**tiles, "persp_trend_x": 0.0})  # fronto-parallel: as before
