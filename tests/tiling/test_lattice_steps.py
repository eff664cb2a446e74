"""The lattice estimator's reduction steps on hand-made peak sets (``trackdiag.functional.lattice``): the
coarsest lattice that explains the strong peaks, the fundamental implied by its comb, and the comb checks
that keep colour humps out. Every case is built from the geometry of a real texture's spectrum."""

from __future__ import annotations

import math

import torch

from trackdiag.functional.lattice import PromPeaks, pick_lattice


def _peaks(rows: list[tuple[float, float, float, float]]) -> PromPeaks:
    """``rows``: (ky, kx, power, prominence) → a one-image :class:`PromPeaks` (kx ≥ 0 half plane)."""
    t = torch.tensor(rows, dtype=torch.float32)
    ky, kx = t[:, 0], t[:, 1]
    flip = (kx < 0) | ((kx == 0) & (ky < 0))
    ky, kx = torch.where(flip, -ky, ky), torch.where(flip, -kx, kx)
    return PromPeaks(ky[None], kx[None], torch.sqrt(ky.square() + kx.square())[None], t[None, :, 2],
                     t[None, :, 3], torch.ones(1, len(rows), dtype=torch.bool),
                     torch.zeros(1, len(rows), dtype=torch.long), torch.zeros(1, len(rows), dtype=torch.long))


def _hex_points(a: float, shells: set[int], angle: float = 0.0) -> list[tuple[float, float]]:
    """Reciprocal points of a hexagonal lattice with fundamental length ``a`` whose squared norm (in units
    of a²) is in ``shells`` (1, 3, 4, 7, 12, ...), half plane only."""
    b1 = (a * math.cos(angle), a * math.sin(angle))
    b2 = (a * math.cos(angle + math.pi / 3), a * math.sin(angle + math.pi / 3))
    out = []
    for i in range(-6, 7):
        for j in range(-6, 7):
            n2 = i * i + j * j + i * j
            if n2 in shells:
                ky, kx = i * b1[0] + j * b2[0], i * b1[1] + j * b2[1]
                if kx > 1e-6 or (abs(kx) <= 1e-6 and ky > 0):
                    out.append((ky, kx))
    return out


def test_hexagonal_mosaic_whose_low_shells_are_faint_reads_its_row_spacing():
    # a 256-px reference of a hex mosaic with 64-px rows: the fundamental (4 bins) and sqrt3 shells sit on the
    # hump of per-tile colour; only the sqrt7, sqrt12, sqrt13, sqrt19 shells are prominent
    a = 4.0
    for angle in (0.0, 0.2):
        pts = _hex_points(a, {7, 12, 13, 19}, angle)
        rows = [(ky, kx, 2e4 * (1.0 - 0.02 * k), 80.0) for k, (ky, kx) in enumerate(pts)]
        lat = pick_lattice(_peaks(rows), min_radius=2.9)
        assert abs(float(lat.radius[0]) / a - 1) < 0.03, (angle, float(lat.radius[0]))


def test_hexagonal_mosaic_read_from_its_sqrt3_and_2_shells():
    a = 7.4
    pts = _hex_points(a, {3, 4, 7}, 0.1)
    rows = [(ky, kx, 1e4 * (1.0 - 0.03 * k), 100.0) for k, (ky, kx) in enumerate(pts)]
    lat = pick_lattice(_peaks(rows), min_radius=2.9)
    assert abs(float(lat.radius[0]) / a - 1) < 0.03, float(lat.radius[0])


def test_a_square_tile_lattice_is_left_alone():
    f = 12.0
    rows = [(i * f, j * f, 1e5 / (i * i + j * j), 500.0) for i in range(-3, 4) for j in range(0, 4)
            if (j > 0 or i > 0)]
    lat = pick_lattice(_peaks(rows), min_radius=2.0)
    assert abs(float(lat.radius[0]) / f - 1) < 0.01


def test_planks_fundamental_implied_by_its_comb_not_a_colour_bump_beside_it():
    # planks of 40.7 px on a 256-px reference: harmonics 2f..11f stand 10^3 above their neighbourhood; the
    # fundamental (6.29 bins) is not a peak (a colour bump at 5.6 bins is the local maximum there)
    f = 256 / 40.7
    rows = [(0.0, 5.59, 4.2e4, 128.0)]
    rows += [(0.0, m * f, 3e4 * (1 - 0.05 * m), 500.0 + 100 * m) for m in range(2, 12)]
    rows += [(18.0, 0.0, 480.0, 12.0), (31.8, 1.9, 300.0, 12.0)]  # faint bumps of plank ends
    lat = pick_lattice(_peaks(rows), min_radius=2.9)
    assert abs(float(lat.radius[0]) / f - 1) < 0.02, float(lat.radius[0])


def test_a_colour_bump_near_a_fifth_of_the_strongest_line_is_not_its_divisor():
    # planks of 23.5 px on a 1024 grid: lines at 43.6·m; a colour bump at 17 bins (2.5 % off 87.1/5), no comb
    f = 1024 / 23.5
    rows = [(0.0, m * f, 3.4e6 * (1 - 0.1 * m), 1.4e3) for m in (2, 1, 3, 4, 5, 6)]
    rows += [(-0.4, 16.98, 1.8e6, 58.6), (-0.5, 26.65, 8.9e5, 64.4), (-1.5, 70.15, 1.0e5, 38.8)]
    lat = pick_lattice(_peaks(rows), min_radius=4.0)
    assert abs(float(lat.radius[0]) / f - 1) < 0.02, float(lat.radius[0])


def _scaled_tiles(trend: float, size: int = 512, p0: float = 20.0, seed: int = 0) -> torch.Tensor:
    """``1×H×W`` square tiles whose local scale grows as ``exp(trend · x / W)`` along x (both axes scale, as
    on a wall turned about a vertical axis), with grout lines and noise."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    s = torch.exp(trend * (x / size - 0.5))
    u = (size / trend) * (1 - torch.exp(-trend * (x / size - 0.5))) if trend else x - size / 2
    v = (y - size / 2) / s
    grout = ((torch.cos(2 * math.pi * u / p0) > 0.9) | (torch.cos(2 * math.pi * v / p0) > 0.9)).double()
    img = 0.6 - 0.3 * grout + 0.03 * torch.randn(size, size, generator=g, dtype=torch.float64)
    return img[None].float()


def test_window_scale_trend_reads_a_perspective_and_nothing_on_a_flat_wall():
    from trackdiag.functional.localmap import window_scale_trend

    ones = torch.ones(1, 512, 512)
    for trend in (0.5, -0.4):
        out = window_scale_trend(_scaled_tiles(trend), ones)
        assert abs(float(out["persp_trend_x"][0]) - trend) <= 0.15, (trend, out)
        assert abs(float(out["persp_trend_y"][0])) <= 0.12, (trend, out)
    flat = window_scale_trend(_scaled_tiles(0.0), ones)
    assert abs(float(flat["persp_trend_x"][0])) <= 0.1 and abs(float(flat["persp_trend_y"][0])) <= 0.1, flat


def test_weak_perspective_trend_on_an_aperiodic_wall_needs_its_pairs_consensus():
    """``PERSP_WEAK``: a window-grid trend one profile bin above the limit (0.26) on a wall scored aperiodic
    fires only where its pairs agree (fronto-parallel stucco read -0.26 on 2 pairs agreeing 0.5, v8 seed 5;
    angled gravel 0.26 on 4 pairs agreeing 0.75, seed 6); stronger trends and periodic walls are unchanged."""
    from trackdiag.analyzers.tiling import likely_causes

    def fires(**kw: float) -> bool:
        s = {"periodicity_score": 0.0, "persp_trend_y": -0.26, "persp_agree_y": 0.5, "persp_pairs_y": 2.0,
             "persp_trend_x": 0.0, "persp_agree_x": 0.5, "persp_pairs_x": 4.0, **kw}
        return any(v.code == "perspective" for v in likely_causes(s))

    assert not fires()                                            # stucco, fronto-parallel
    assert not fires(persp_agree_y=1.0, persp_pairs_y=1.0)         # one pair is no consensus
    assert fires(persp_agree_y=0.75, persp_pairs_y=4.0)            # the pairs agree
    assert fires(persp_trend_y=-0.35)                              # beyond the weak band
    assert fires(periodicity_score=0.6)                            # a periodic wall: the peaks moved
    assert not fires(persp_trend_y=-0.22, persp_agree_y=1.0, persp_pairs_y=6.0)  # under PERSP_TREND


def test_one_pick_over_several_spectra_equals_each_own_pick():
    # the summary picks the frame's, the central half's and the windows' lattices in one call
    # (lattice.pick_lattices): each image's lattice must be the one its own pick gives, bit for bit, with
    # each set's own lowest searched frequency (min_radius)
    from trackdiag.functional.lattice import pick_lattices
    from trackdiag.functional.spectral import lattice_input
    from trackdiag.testing.synth import wall_batch

    x = wall_batch(3, 192, generator=torch.Generator().manual_seed(5)).mean(dim=1)
    ins = [lattice_input(x, max_period_frac=0.5, clean=True),
           lattice_input(x[:, 48:144, 48:144], max_period_frac=0.25, clean=True),
           lattice_input(x[:, :64, :64], max_period_frac=0.34, clean=True, keep_log_power=False)]
    assert len({i.r_min for i in ins}) == 3
    together = pick_lattices([i.peaks for i in ins], min_radius=[i.r_min for i in ins])
    found = 0
    for inp, lat in zip(ins, together, strict=True):
        own = pick_lattice(inp.peaks, min_radius=inp.r_min)
        found += int(own.found.sum())
        for a, b in zip(lat, own, strict=True):
            assert torch.equal(torch.nan_to_num(a, nan=-1.0), torch.nan_to_num(b, nan=-1.0))
    assert found >= 6  # most of these walls have a lattice: the comparison is not of empty picks
