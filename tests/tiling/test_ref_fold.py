"""The reference's fold key of the aliasing verdict (``alias_ref_fold_gain``, ``functional.ref_fold``): the
output's power where a stride of 2 folds the reference's fine peaks, over the reference's power at those
peaks. A stride then a ×2 bilinear upsampling leaves the fold as a clean coarse lattice (no test on the
output alone tells it from a real wall); its antialiased twin shows the same lattice ~100× weaker in power;
a faithful render of the fine texture has nothing at the folded positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from tests.support.tiling_cases import fine_mosaic
from trackdiag.analyzers.tiling_limits import ALIAS_REF_FINE_PX, ALIAS_REF_FOLD
from trackdiag.functional.ref_fold import ref_fold_gain
from trackdiag.functional.spectral import Spectrum, prepare, spectrum


def _spec(*imgs: np.ndarray) -> Spectrum:
    t = torch.stack([torch.from_numpy(np.ascontiguousarray(i, dtype=np.float64)) for i in imgs])
    return spectrum(prepare(t)[0])


def _up2(a: np.ndarray) -> np.ndarray:
    """×2 bilinear upsampling (``align_corners=False``) of an ``H×W`` array."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]
    up = torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
    return up[0, 0].numpy()


def _grain(a: np.ndarray, seed: int, sigma: float = 0.01) -> np.ndarray:
    """The generator's photographic grain (added after every resampling): white noise of ``sigma``."""
    return a + np.random.default_rng(seed).normal(0.0, sigma, a.shape)


@pytest.mark.slow
def test_stride_then_upsample_folds_the_references_fine_peaks_and_its_twin_does_not():
    """Fine mosaics of 2.4–3.3 px (the generator's ``stride_up`` textures), the output 256² and the reference
    a 256² patch of the same texture elsewhere, grain of 0.01 on each: the strided-then-upsampled output
    reads the gain over ``ALIAS_REF_FOLD`` on every mosaic (measured when written: 1.9–2.8), its
    antialiased twin (Gaussian of 1.2 px, 2×2 means, the same upsampling) under it (0.002–0.074: the
    filter is soft near the new Nyquist frequency, so a 3.3-px texture's twin keeps the most) and the
    faithful render (the texture itself, lens blur of 0.5 px) under half of it (≤ 0.0001)."""
    rows = []
    for i, (period, angle) in enumerate(((2.4, 0.1), (2.7, 0.35), (3.0, 0.6), (3.3, 0.2))):
        hi = fine_mosaic(256, period, angle, seed=30 + i)[::3, ::3]  # 256², one sample per pixel
        full = gaussian_filter(hi, 0.5)
        ref = gaussian_filter(fine_mosaic(256, period, angle, seed=30 + i)[1::3, 2::3], 0.5)
        strided = _grain(_up2(full[::2, ::2]), i)
        twin = _grain(_up2(gaussian_filter(full, 1.2).reshape(128, 2, 128, 2).mean(axis=(1, 3))), 10 + i)
        gain, _, used = ref_fold_gain(_spec(strided, twin, _grain(full, 20 + i)), _spec(_grain(ref, 30 + i)))
        rows.append((period, [round(float(v), 4) for v in gain], round(float(used[0]), 3)))
    print(rows)
    assert all(r[1][0] >= ALIAS_REF_FOLD for r in rows), rows
    assert all(r[1][1] < ALIAS_REF_FOLD and r[1][2] < ALIAS_REF_FOLD / 2 for r in rows), rows


def test_a_coarse_reference_has_no_fine_shell_to_fold():
    """A sharp 10-px tile wall and its reference (the rule reads the key only where ``ref_period_px`` ≤
    ``ALIAS_REF_FINE_PX``; the key itself reads a faithful render of it at most a fifth of the limit: its fine
    peaks are weak harmonics whose folds land on the lattice or nowhere the output has power)."""
    assert ALIAS_REF_FINE_PX < 8.0  # the generator's coarsest non-aliased textures start at 8 px
    yy, xx = np.meshgrid(np.arange(300.0), np.arange(300.0), indexing="ij")
    tile = ((np.mod(xx, 10.0) > 1.2) & (np.mod(yy, 10.0) > 1.2)).astype(np.float64) * 0.5 + 0.25
    out = gaussian_filter(tile[:256, :256], 0.5)
    ref = gaussian_filter(tile[37:293, 11:267], 0.5)
    gain = ref_fold_gain(_spec(out), _spec(ref)).gain
    assert not float(gain[0]) >= ALIAS_REF_FOLD / 5, float(gain[0])


def test_the_key_is_batched_and_device_free():
    """Each output of a batch reads the key it reads alone (one reference for the batch)."""
    mosaic = fine_mosaic(96, 2.7, 0.3, seed=3)
    hi = mosaic[::3, ::3]
    a, b = _up2(hi[::2, ::2]), gaussian_filter(hi, 0.5)
    ref = _spec(mosaic[1::3, 1::3])
    both = ref_fold_gain(_spec(a, b), ref).gain
    one = torch.cat([ref_fold_gain(_spec(a), ref).gain, ref_fold_gain(_spec(b), ref).gain])
    torch.testing.assert_close(both, one, equal_nan=True)


def test_the_rule_reads_the_fold_of_a_fine_reference_on_the_frame_or_an_angled_walls_centre():
    """The aliasing rule on summaries that hold only the reference's fold keys: both the gain and the power
    over ``ALIAS_REF_FOLD`` name ``aliasing`` where ``ref_period_px`` ≤ ``ALIAS_REF_FINE_PX``; one under it
    (an antialiased twin: faint in variance units, or in shares) or a coarse reference does not; the central
    half's pair counts only on a wall read at an angle."""
    from trackdiag.analyzers.tiling import likely_causes

    hi, lo = 3 * ALIAS_REF_FOLD, ALIAS_REF_FOLD / 3

    def named(**keys: float) -> bool:
        summary = {"ref_period_px": 3.2, "periodicity_score": 0.5, **keys}
        return any(v.code == "aliasing" for v in likely_causes(summary))

    assert named(alias_ref_fold_gain=hi, alias_ref_fold_power=hi)
    assert not named(alias_ref_fold_gain=hi, alias_ref_fold_power=lo)
    assert not named(alias_ref_fold_gain=lo, alias_ref_fold_power=hi)
    assert not named(alias_ref_fold_gain=hi, alias_ref_fold_power=hi, ref_period_px=2 * ALIAS_REF_FINE_PX)
    centre = {"alias_ref_fold_gain": lo, "alias_ref_fold_power": hi, "alias_ref_fold_gain_centre": hi,
              "alias_ref_fold_power_centre": hi}
    assert named(**centre, persp_trend_x=0.6)
    assert not named(**centre, persp_trend_x=0.0)


def _band_noise(n: int, lo: float, hi: float, rms: float, seed: int) -> np.ndarray:
    """``n×n`` isotropic noise of ``rms`` whose power fills the ring ``lo``–``hi`` cycles/px evenly."""
    w = np.random.default_rng(seed).normal(size=(n, n))
    f = np.fft.fftfreq(n)
    r = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    b = np.real(np.fft.ifft2(np.fft.fft2(w) * ((r >= lo) & (r <= hi))))
    return b * rms / b.std()


@pytest.mark.slow
def test_broad_power_at_the_folds_radius_is_not_a_fold():
    """The ring control (thirteenth sitting): an output with no texture, only broad isotropic power over the
    folded positions' radii (an antialiased twin's tile colours, light and furniture; 0.03–0.25 cycles/px
    here), holds an excess over the geometric mean at the folded positions as anywhere in its speckled
    spectrum; summed over the tolerance's bins that read a gain (measured when written: 0.016–0.048 without
    the control, 0–0.015 with it, on 4 mosaics × 3 noise draws; a twin on seed 33 read 0.14 → 0.03). The
    excess at the same radii in other directions takes it out; a strided output's fold is not touched."""
    with_c, without = [], []
    for i, (period, angle) in enumerate(((2.4, 0.1), (2.7, 0.35), (3.0, 0.6), (3.3, 0.2))):
        ref_img = gaussian_filter(fine_mosaic(256, period, angle, seed=30 + i)[1::3, 2::3], 0.5)
        ref = _spec(_grain(ref_img, 30 + i))
        outs = _spec(*(0.5 + _band_noise(256, 0.03, 0.25, 0.05, 70 + i + 10 * j) for j in range(3)))
        with_c += ref_fold_gain(outs, ref).gain.tolist()
        without += ref_fold_gain(outs, ref, control_deg=()).gain.tolist()
        full = gaussian_filter(fine_mosaic(256, period, angle, seed=30 + i)[::3, ::3], 0.5)
        strided = _spec(_grain(_up2(full[::2, ::2]), i))
        a, b = ref_fold_gain(strided, ref).gain, ref_fold_gain(strided, ref, control_deg=()).gain
        assert float(a[0]) >= 0.97 * float(b[0]) and float(a[0]) >= ALIAS_REF_FOLD, (float(a[0]), float(b[0]))
    print([round(v, 3) for v in with_c], [round(v, 3) for v in without])
    assert max(with_c) < ALIAS_REF_FOLD / 5, with_c
    assert np.mean(without) >= 2.5 * np.mean(with_c) and np.mean(without) > 0.015, (with_c, without)
