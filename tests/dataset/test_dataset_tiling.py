"""Tiled source textures: exact repetitions are found, natural periodic walls are periodic but not tiled."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy import ndimage

from trackdiag.dataset.records import ScanParams
from trackdiag.dataset.tiling import Periodicity, period_flags, periodicities, periodicity, shift_similarity
from trackdiag.testing import synth

P = ScanParams()
N = 192


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _checks(per: Periodicity, size=(N, N), **params) -> set[str]:
    return {c for c, _ in period_flags(per, image_size=size, params=ScanParams(**params))}


def test_shift_similarity_is_one_for_an_exact_repeat_and_respects_the_mask():
    rng = np.random.default_rng(0)
    tile = rng.random((16, 16)).astype(np.float32)
    img = np.tile(tile, (8, 8))
    assert shift_similarity(img, 16, 0) == pytest.approx(1.0) and shift_similarity(img, 0,
                                                                                   32) == pytest.approx(1.0)
    assert abs(shift_similarity(img, 7, 0)) < 0.2
    valid = np.zeros_like(img, bool)
    valid[:, :40] = True
    img2 = img.copy()
    img2[:, 40:] = rng.random((128, 88))  # noise outside the wall does not count
    assert shift_similarity(img2, 16, 0, valid=valid) == pytest.approx(1.0)
    assert shift_similarity(img2, 16, 0) < 0.6
    assert np.isnan(shift_similarity(img, 100, 0))  # more than half the width


def test_exactly_repeated_tiles_are_tiled():
    img = synth.tiles(N, N, period_px=24, jitter=0.0, generator=_g(1)).numpy()
    per = periodicity(img)
    assert per.period_px == pytest.approx(24, abs=1) and per.score >= P.periodic_score
    assert per.similarity > 0.99 and max(per.shift) % 24 == 0
    assert _checks(per) == {"tiled_texture"}


def test_a_random_tile_repeated_is_tiled_even_when_f_star_is_a_diagonal_harmonic():
    rng = np.random.default_rng(2)
    tile = ndimage.gaussian_filter(rng.standard_normal((32, 32)), 1.5, mode="wrap")
    img = (0.5 + 0.1 * np.tile(tile / tile.std(), (6, 6))).astype(np.float32)
    per = periodicity(img)
    assert per.similarity > 0.99 and max(per.shift) in (32, 64)
    assert "tiled_texture" in _checks(per)


@pytest.mark.parametrize("make,period", [
    (lambda g: synth.tiles(N, N, period_px=24, jitter=0.12, generator=g), 24),
    (lambda g: synth.brick(N, N, period_px=16, jitter=0.12, generator=g), 16),
])
def test_natural_periodic_walls_are_periodic_but_not_tiled(make, period):
    img = synth.add_noise(synth.illumination_gradient(make(_g(3)), 0.3), 0.03, generator=_g(4)).numpy()
    per = periodicity(img)
    assert per.period_px == pytest.approx(period, rel=0.06) and per.score >= P.periodic_score
    assert per.similarity < P.tiled_similarity
    assert _checks(per) == set()


def test_plaster_is_neither_periodic_nor_tiled():
    per = periodicity(synth.plaster(N, N, generator=_g(5)).numpy())
    assert per.score < P.periodic_score and not per.similarity >= P.tiled_similarity
    assert _checks(per) == set()


def test_a_region_constant_along_an_axis_is_not_a_repetition():
    ramp = np.repeat(np.linspace(0.2, 0.8, N, dtype=np.float32)[:, None], N, axis=1)  # varies along y only
    ramp += np.random.default_rng(6).normal(0, 1e-3, ramp.shape).astype(np.float32)
    per = periodicity(ramp)
    assert "tiled_texture" not in _checks(per)
    stripes = synth.grating(N, N, period_px=12, angle_deg=90.0).numpy()  # exact horizontal stripes
    per = periodicity(stripes)
    assert "tiled_texture" in _checks(per) and per.shift[0] == 0 and per.shift[1] % 12 == 0


def test_the_wall_mask_restricts_the_measurement():
    img = synth.plaster(N, N, generator=_g(7)).numpy()
    wall = np.zeros((N, N), bool)
    wall[40:150] = True
    img[wall] = synth.tiles(N, N, period_px=20, jitter=0.0, generator=_g(8)).numpy()[wall]
    with_mask = periodicity(img, valid=wall)
    assert with_mask.period_px == pytest.approx(20, abs=1) and "tiled_texture" in _checks(with_mask)


def test_period_limits_depend_on_crop_and_training_size():
    periodic = Periodicity(period_px=40.0, score=0.9, similarity=0.5, shift=(40, 0))
    assert _checks(periodic, size=(512, 512)) == set()
    assert _checks(periodic, size=(512, 512), crop_size=64) == {"period_too_large"}  # 1.6 repeats
    # Downscaled 8× for training: 40 px become 5 px < min_period_px.
    assert _checks(periodic, size=(512, 512), crop_size=512, train_size=64) == {"period_too_small"}
    small = Periodicity(period_px=5.0, score=0.9, similarity=0.5, shift=(5, 0))
    assert _checks(small, size=(256, 256)) == {"period_too_small"}
    assert _checks(small, size=(256, 256), crop_size=128, train_size=256) == set()  # upscaled to 10 px
    aperiodic = Periodicity(period_px=5.0, score=0.1, similarity=0.2, shift=(5, 0))
    assert _checks(aperiodic, size=(256, 256)) == set()  # limits apply to periodic textures only
    reasons = dict(period_flags(small, image_size=(256, 256), params=P))
    assert "5.0 px" in reasons["period_too_small"]


@pytest.mark.slow
def test_the_coarse_period_estimate_agrees_with_full_resolution():
    """The scan's default (2×2-averaged first, full resolution below ``coarse_period_min_px``) against the
    full-resolution estimate and the known period, over textures, periods and masks: same period within 3 %,
    same periodic/tiled verdicts."""
    side = 512
    makers = {"brick": lambda p, g: synth.brick(side, side, period_px=p, jitter=0.12, generator=g),
              "tiles": lambda p, g: synth.tiles(side, side, period_px=p, jitter=0.12, generator=g),
              "exact": lambda p, g: synth.tiles(side, side, period_px=p, jitter=0.0, generator=g)}
    wall = np.zeros((side, side), bool)
    wall[90:430, :] = True  # a wall band between a ceiling and a floor
    cases = compared = disagree = 0
    for seed, make in enumerate(makers.values()):
        for period in (8, 14, 24, 32, 48, 64):
            img = make(period, _g(100 + 7 * seed + period)).numpy().astype(np.float32)
            for valid in (None, wall):
                full = periodicity(img, valid=valid)
                coarse = periodicity(img, valid=valid, fine_below_px=P.coarse_period_min_px)
                cases += 1
                if not full.period_px == pytest.approx(period, rel=0.06):
                    continue  # the full-resolution estimate itself misses: not what is compared here
                compared += 1
                tiled = P.tiled_similarity
                same = (coarse.period_px == pytest.approx(full.period_px, rel=0.03)
                        and (coarse.score >= P.periodic_score) == (full.score >= P.periodic_score)
                        and (coarse.similarity >= tiled) == (full.similarity >= tiled))
                disagree += not same
    assert cases == 36 and compared >= 30 and disagree == 0


@functools.lru_cache(maxsize=1)
def _eight_bit_walls() -> tuple[list[np.ndarray], np.ndarray]:
    """8-bit luma of a jittered brick wall, an exact tile repetition and plaster (``N×N``); a band wall."""
    walls = [synth.brick(N, N, period_px=21.0, jitter=0.12, generator=_g(5)),
             synth.tiles(N, N, period_px=16.0, jitter=0.0, generator=_g(6)),
             synth.plaster(N, N, generator=_g(7))]
    lums = [(np.clip(w.numpy().reshape(N, N), 0, 1) * 255).round().astype(np.uint8) for w in walls]
    band = np.zeros((N, N), bool)
    band[30:160] = True
    return lums, band


def test_8bit_luma_gives_what_its_float_image_gives():
    """A scan passes its 8-bit luma (only the pixels each step reads become float): the repetition test gives
    the same similarity and shift as on the float image ``v / 255``, the period and score agree to float32
    rounding (the 2×2 means are summed in integers), at full resolution and coarse-first, with and without
    the wall."""
    lums, band = _eight_bit_walls()
    for fine in (0.0, P.coarse_period_min_px):
        for valid in (None, band):
            ours = periodicities(lums, valids=[valid] * 3, fine_below_px=fine)
            ref = periodicities([lum * np.float32(1 / 255) for lum in lums], valids=[valid] * 3,
                                fine_below_px=fine)
            for a, b in zip(ours, ref, strict=True):
                assert a.period_px == pytest.approx(b.period_px, rel=1e-5)
                assert a.score == pytest.approx(b.score, abs=1e-4)
                assert a.shift == b.shift
                assert a.similarity == b.similarity or (np.isnan(a.similarity) and np.isnan(b.similarity))
    tiled = periodicities(lums, valids=[band] * 3)[1]
    assert tiled.similarity >= P.tiled_similarity  # the exact repetition is still found on 8-bit luma


def test_an_image_without_a_wall_joins_the_batch_of_walled_images():
    """Images with and without a wall are estimated in one batched call (no wall: every pixel valid); each
    gets what it gets alone."""
    lums, band = _eight_bit_walls()
    walls = [band, None, band]
    batched = periodicities(lums, valids=walls, fine_below_px=P.coarse_period_min_px)
    for lum, wall, got in zip(lums, walls, batched, strict=True):
        alone = periodicity(lum, valid=wall, fine_below_px=P.coarse_period_min_px)
        assert got.period_px == pytest.approx(alone.period_px, rel=1e-5, nan_ok=True)
        assert got.score == pytest.approx(alone.score, abs=1e-4)
        assert got.shift == alone.shift
