"""False alarms of the grid and checkerboard verdicts that issue 11 measured, each against its counterpart
that must still be found: noise and aperiodic walls (the best-of-k phase bias), smooth upsampled content (the
demo's resize→conv model read as a 16-px grid), pixel-locked 1-D gratings (read as a checkerboard) and a
pixel-locked wall (whose Nyquist harmonic is a parity "gain")."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.support.tiling_cases import one_thread
from trackdiag.analyzers.tiling import likely_causes, tiling_metrics
from trackdiag.analyzers.tiling_limits import CHECKERBOARD_WARN, GRID_AGREE, GRID_WARN
from trackdiag.testing import synth as S

ARTIFACTS = {"checkerboard", "grid_s8", "grid_s16"}


def _codes(out: dict, i: int) -> set[str]:
    s = {k: float(v[i]) for k, v in out.items() if not k.startswith("map/")}
    return {v.code for v in likely_causes(s) if v.severity in ("warn", "bad")}


def _metrics(x: torch.Tensor) -> dict:
    with one_thread():
        return tiling_metrics(x[:, None] if x.dim() == 3 else x, maps=False)


def _parity(img: torch.Tensor, a: float) -> torch.Tensor:
    """A separable ×2 transposed convolution's gain pattern (both axes, as with a 3×3 kernel)."""
    h, w = img.shape
    cy = 1.0 - 2.0 * (torch.arange(h) % 2).float()
    cx = 1.0 - 2.0 * (torch.arange(w) % 2).float()
    return (img * (1 + a * cy[:, None]) * (1 + a * cx[None, :])).clamp(0, 1)


def test_noise_and_aperiodic_walls_score_no_grid_and_no_checkerboard():
    g = torch.Generator().manual_seed(21)
    noise = [torch.rand(64, 64, generator=g) for _ in range(6)]
    # stucco-like aperiodic walls (5 % rms texture, grain, JPEG 85)
    walls = [S.jpeg(S.add_noise(S.plaster(384, 384, contrast=0.05, generator=g), 0.01, generator=g), 85)
             for _ in range(4)]
    # the counterpart: the same walls with an 8-px block grid of 1.5 % rms
    grids = []
    for w in walls:
        off = torch.randn(384 // 8, 384 // 8, generator=g) * 0.015
        grids.append(S.jpeg((w + off.repeat_interleave(8, 0).repeat_interleave(8, 1)).clamp(0, 1), 85))
    out = _metrics(torch.stack(noise))
    assert all(not (_codes(out, i) & ARTIFACTS) for i in range(6)), [_codes(out, i) for i in range(6)]
    assert max(out["checkerboard_s2"].tolist()) < CHECKERBOARD_WARN / 2
    assert sum(v >= GRID_WARN for v in out["grid_s8"].tolist()) <= 1  # was 6 of 6 (best-of-8 phases)
    out = _metrics(torch.stack(walls + grids))
    n = len(walls)
    assert all(not (_codes(out, i) & ARTIFACTS) for i in range(n))
    assert max(out["grid_s8"][:n].tolist()) < GRID_WARN / 2
    assert all("grid_s8" in _codes(out, n + i) for i in range(n)), [_codes(out, n + i) for i in range(n)]


def test_smooth_upsampled_content_is_not_a_16_px_grid():
    """The demo's resize→conv outputs (128 px, period 20 walls decoded from 32 px) were flagged grid_s16:
    a bilinear ×4 upsampling of a 32-px wall makes every 16-px block a smooth ramp."""
    g = torch.Generator().manual_seed(22)
    imgs = []
    for i in range(6):
        make = S.brick if i % 2 == 0 else S.tiles
        small = F.avg_pool2d(make(128, 128, period_px=20.0, generator=g)[None, None], 4)
        up = F.interpolate(small, scale_factor=4, mode="bilinear", align_corners=False)[0, 0]
        imgs.append(S.add_noise(up, 0.005, generator=g).clamp(0, 1))
    out = _metrics(torch.stack(imgs))
    assert all(not (_codes(out, i) & ARTIFACTS) for i in range(6)), [_codes(out, i) for i in range(6)]
    assert max(out["grid_s16"].tolist()) < GRID_WARN


def test_pixel_locked_gratings_are_not_a_checkerboard_but_a_deconvolution_on_them_is():
    g = torch.Generator().manual_seed(23)
    clean, art = [], []
    for period in (2.0, 4.0, 6.0, 8.0, 12.0, 16.0):
        for angle, profile in ((0.0, "lines"), (90.0, "square")):
            x = S.grating(256, 256, period_px=period, angle_deg=angle, profile=profile, phase=0.3,
                          contrast=0.5)
            clean.append(S.jpeg(S.add_noise(x, 0.01, generator=g), 90))
    for period in (12.0, 20.0):  # pixel-locked 2-D walls (even periods, unrotated) with a 2 % deconvolution
        for make in (S.tiles, S.brick):
            base = make(256, 256, period_px=period, generator=g)
            clean.append(S.jpeg(S.add_noise(base, 0.01, generator=g), 90))
            art.append(S.jpeg(S.add_noise(_parity(base, 0.02), 0.01, generator=g), 90))
    out = _metrics(torch.stack(clean + art))
    n = len(clean)
    fired = [("checkerboard" in _codes(out, i)) for i in range(len(clean) + len(art))]
    assert not any(fired[:n]), [i for i in range(n) if fired[i]]
    assert all(fired[n:]), fired[n:]


def test_pixel_locked_running_bond_is_not_a_grid_but_a_grid_on_a_free_wall_is():
    """Running bond with bricks twice as long as high, unrotated, at a pitch that is a multiple of 8 px: its
    lattice's reduced basis is oblique ((H, ±H)), so the rows along the basis vectors are not the mortar rows
    and head joints that fall on every 8- or 16-px line; 3 of these 4 read grid_s8/grid_s16 before the lock
    looked along every short lattice vector. The counterpart: walls at other pitches with an 8-px block grid
    of 1.5 % rms are still named."""
    g = torch.Generator().manual_seed(24)
    side = 768
    clean = [S.jpeg(S.add_noise(S.brick(side, side, period_px=p, generator=g), 0.01, generator=g), 90)
             for p in (16.0, 24.0, 32.0, 40.0)]
    grids = []
    for p in (22.7, 26.3):
        off = torch.randn(side // 8, side // 8, generator=g) * 0.015
        blocks = off.repeat_interleave(8, 0).repeat_interleave(8, 1)
        grids.append(S.jpeg((S.brick(side, side, period_px=p, generator=g) + blocks).clamp(0, 1), 90))
    out = _metrics(torch.stack(clean + grids))
    n = len(clean)
    assert all(not (_codes(out, i) & ARTIFACTS) for i in range(n)), [_codes(out, i) for i in range(n)]
    named = [_codes(out, n + i) for i in range(len(grids))]
    assert all("grid_s8" in c for c in named), named


def test_noise_and_an_untrained_network_are_not_aliasing_but_a_strided_mosaic_is():
    """Pixel-scale noise is not a fold: white noise and the outputs of a randomly initialised resize→conv
    decoder (what a training loop logs at step 0) read much energy near Nyquist and were called aliasing
    (8 of 8) until the Nyquist branch of the rule was gated on a confident lattice. The counterpart: a
    2.6-px mosaic subsampled by striding (folded fine peaks) is still aliasing."""
    g = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    decoder = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2.0), torch.nn.Conv2d(8, 16, 3, padding=1),
                                  torch.nn.SiLU(), torch.nn.Upsample(scale_factor=2.0),
                                  torch.nn.Conv2d(16, 3, 3, padding=1))
    with torch.no_grad():
        untrained = torch.sigmoid(decoder(torch.randn(4, 8, 16, 16, generator=g)))
    noise = torch.rand(4, 3, 64, 64, generator=g)
    fine = S.tiles(3 * 128, 3 * 128, period_px=2.6 * 3, generator=g)
    strided = S.jpeg(fine[::3, ::3], 90)
    out = _metrics(torch.cat([noise, untrained]))
    codes = [_codes(out, i) for i in range(8)]
    assert all("aliasing" not in c for c in codes), codes  # was 8 of 8
    assert "aliasing" in _codes(_metrics(S.to_rgb(strided)[None]), 0)


def test_small_clean_crops_have_no_region_and_a_band_is_still_found():
    """Clean tile crops with four periods across (64 px of 16-px tiles, 128 px of 32-px tiles: what a
    training loop logs) read a doubled zone or a band from the region maps, whose windows then hold one
    period: the pair test's correlations over flat windows were rounding residue (``pair_excess_max`` read
    2·10⁶-2·10⁷). The region keys now need five lattice periods across the frame and a flat window has no
    correlation. Counterpart: a full-width band at twice the period on 256-px walls is still a band."""
    g = torch.Generator().manual_seed(8)
    small = [S.to_rgb(S.tiles(64, 64, period_px=16, generator=g)) for _ in range(3)]
    mid = [S.to_rgb(S.tiles(128, 128, period_px=32, generator=g)) for _ in range(3)]
    regions = {"doubled_zone", "bands_rows", "bands_cols"}
    for batch in (small, mid):
        out = _metrics(torch.stack(batch))
        codes = [_codes(out, i) for i in range(len(batch))]
        assert all(not (c & regions) for c in codes), codes  # was 6 of 6
    walls = [S.to_rgb(S.tiles(256, 256, period_px=p, generator=g)) for p in (11.3, 13.7)]
    bands = [S.to_rgb(S.band_doubled(256, 256, period_px=p, generator=g)) for p in (12.7, 14.1)]
    out = _metrics(torch.stack(walls + bands))
    assert max(out["pair_excess_max"].tolist()) < 50  # robust z units, not rounding residue
    assert all(not (_codes(out, i) & regions) for i in range(2)), [_codes(out, i) for i in range(2)]
    assert all("bands_rows" in _codes(out, 2 + i) for i in range(2)), [_codes(out, 2 + i) for i in range(2)]


def test_a_checkerboard_is_not_also_aliasing_but_a_checkerboard_on_a_fold_is_both():
    """A ×2 deconvolution's parity gain puts its energy near Nyquist, where the aliasing rule's resize and
    shift losses read it too: the demo's deconvolution decoder printed ``aliasing`` beside ``checkerboard``
    from step 0 to step 40. Without folded fine peaks or a moiré, the checkerboard explains it. A strided
    (folded) mosaic with the same gain is both."""
    g = torch.Generator().manual_seed(3)
    walls = [S.tiles(128, 128, period_px=p, generator=g) for p in (9.3, 11.7, 14.2)]
    out = _metrics(torch.stack([S.to_rgb(_parity(w, 0.2)) for w in walls]))
    codes = [_codes(out, i) for i in range(3)]
    assert all("checkerboard" in c and "aliasing" not in c for c in codes), codes  # was aliasing on 3 of 3
    folded = S.tiles(3 * 128, 3 * 128, period_px=2.6 * 3, generator=g)[::3, ::3]
    both = _codes(_metrics(S.to_rgb(_parity(folded, 0.2))[None]), 0)
    assert {"checkerboard", "aliasing"} <= both, both


@pytest.mark.slow
def test_tiles_near_a_multiple_of_16_px_are_not_a_grid_but_a_grid_on_them_is():
    """Square tiles whose pitch is close to, not at, a multiple of 16 px (16.2, 33.0, 48.5 px, unrotated, on
    768 px): their joints fall near every 16th line and drift through the phases across the frame. The
    lattice lock (half a cycle of detuning over the frame) does not hold, and the joints' jumps read grid_s16
    0.008-0.023 with the lock off; the phase agreement (grid_agree_s16, the share of the image's parts whose
    strongest phase is the image's) is 0.25-0.5 there, 1.0 for a grid. The counterpart: tiles of other
    pitches with a 16-px block grid of 2 % rms are still named. (A grid on the drifting walls themselves
    reads 0.5 too: their joints' jumps outweigh it part by part, and it is lost: docs/tiling.md.)"""
    g = torch.Generator().manual_seed(3)
    side = 768
    periods = (16.2, 33.0, 48.5)
    walls = [S.add_noise(S.tiles(side, side, period_px=p, generator=g), 0.01, generator=g) for p in periods]
    grids = []
    for p in (22.7, 41.3):
        w = S.add_noise(S.tiles(side, side, period_px=p, generator=g), 0.01, generator=g)
        off = torch.randn(side // 16, side // 16, generator=g) * 0.02
        grids.append(S.jpeg((w + off.repeat_interleave(16, 0).repeat_interleave(16, 1)).clamp(0, 1), 90))
    out = _metrics(torch.stack([S.jpeg(w, 90) for w in walls] + grids))
    n = len(walls)
    assert sum(v >= GRID_WARN for v in out["grid_s16"][:n].tolist()) >= 2, out["grid_s16"].tolist()
    assert all(not (_codes(out, i) & ARTIFACTS) for i in range(n)), [_codes(out, i) for i in range(n)]
    assert max(out["grid_agree_s16"][:n].tolist()) < GRID_AGREE <= min(out["grid_agree_s16"][n:].tolist())
    assert all("grid_s16" in _codes(out, n + i) for i in range(len(grids))), [_codes(out, n + i)
                                                                              for i in range(len(grids))]


def test_harmonic_confusion_not_named_where_the_reported_period_is_the_frames_half():
    """A band or zone at 2× pulls the frame's lattice to twice the period; the wall's period is then read at
    the centre or from the local map (``fundamental_period_px`` = ``frame_period_px`` / 2) and the energy at
    the frame's 2f* is that period's: no ``harmonic_confusion`` beside the band (readings of a generated v8
    angled tile wall with a row band, seed 5). The same energy with the frame's period reported, or with the
    energy at f*/2, is still named."""
    base = {"periodicity_score": 0.93, "frame_periodicity_score": 0.85, "E2f_over_Ef": 3.14,
            "Ehalf_over_Ef": 0.06, "frame_period_px": 37.4}
    assert "harmonic_confusion" not in _summary_codes({**base, "fundamental_period_px": 18.9})
    assert "harmonic_confusion" in _summary_codes({**base, "fundamental_period_px": 37.4})
    flipped = {**base, "E2f_over_Ef": 0.06, "Ehalf_over_Ef": 3.14, "fundamental_period_px": 18.9}
    assert "harmonic_confusion" in _summary_codes(flipped)


def _summary_codes(s: dict) -> set[str]:
    return {v.code for v in likely_causes(s) if v.severity in ("warn", "bad")}
