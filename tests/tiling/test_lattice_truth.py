"""The 2-D lattice estimator and the perspective verdict against the generator's truth (issue 11).

* The reference patch's period (``ref_period_px``) on the generator's own 256-px reference patches of every
  periodic material (hex and penny mosaics whose low shells are faint, planks whose fundamental sits on the
  hump of per-plank colour, tiles, running bond, wallpaper), periods log-uniform over 12–80 px.
* The base period (``fundamental_period_px``, at the frame centre on an angled wall) and the perspective
  verdict's firing rate on whole generated scenes, fronto-parallel and angled.
* The base period by material and angle on walls with a band of doubled rows (every periodic material).

The shares are measured and compared with the issue's targets less a margin for the small samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trackdiag.analyzers.tiling import tiling_metrics
from trackdiag.testing.walls.materials import make_material
from trackdiag.testing.walls.scene import _ref_patch, make_scene

pytestmark = pytest.mark.slow

REF_MATERIALS = ("hex", "penny", "planks", "tiles", "brick", "wallpaper")


def _within(got: float, truth: float, rel: float = 0.05) -> bool:
    return math.isfinite(got) and abs(got / truth - 1.0) <= rel


def test_reference_period_within_5_percent_on_every_periodic_material():
    rng = np.random.default_rng(20261206)
    pred = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    rows = []
    for name in REF_MATERIALS:
        for _ in range(5):
            period = float(math.exp(rng.uniform(math.log(12.0), math.log(80.0))))
            mat = make_material(name, rng, period)
            patch = _ref_patch(mat, rng)  # the generator's reference: 256² uint8
            ref = torch.from_numpy(patch.copy()).permute(2, 0, 1).float() / 255.0
            got = float(tiling_metrics(pred, ref=ref, maps=False)["ref_period_px"][0])
            rows.append((name, float(mat.period), got))
    bad = [r for r in rows if not _within(r[2], r[1])]
    share = 1 - len(bad) / len(rows)
    assert share >= 0.9, f"reference period within 5 % on {share:.0%} of {len(rows)}; misses: {bad}"
    # no material fails systematically
    for name in REF_MATERIALS:
        assert sum(r[0] == name for r in bad) <= 1, f"{name}: {[r for r in bad if r[0] == name]}"


@pytest.fixture(scope="module")
def scenes():
    from trackdiag.testing.walls.evaluate import diagnose_scene

    out = []
    for i in range(20):
        sc = make_scene(kind="random", cause=None, seed=7100 + i, angled=bool(i % 2))
        verdicts, summary, _ = diagnose_scene(sc.pred, sc.mask.astype(np.float32), sc.ref)
        out.append((sc.truth, {v["code"] for v in verdicts}, summary))
    return out


def test_base_period_within_5_percent_fronto_and_angled(scenes):
    for angled in (False, True):
        rows = [(t.texture, t.period_px, s.get("fundamental_period_px")) for t, _, s in scenes
                if t.angled == angled and t.period_px is not None and not t.period_approx]
        if len(rows) < 3:
            continue
        bad = [r for r in rows if r[2] is None or not _within(r[2], r[1])]
        share = 1 - len(bad) / len(rows)
        assert share >= 0.8, f"angled={angled}: base period within 5 % on {share:.0%} of {len(rows)}: {bad}"


def test_perspective_fires_on_angled_walls_and_not_on_fronto_parallel_ones(scenes):
    pos = [codes for t, codes, _ in scenes if t.perspective_label is True]
    neg = [codes for t, codes, _ in scenes if t.perspective_label is False]
    assert len(pos) >= 5 and len(neg) >= 5
    rate_pos = sum("perspective" in c for c in pos) / len(pos)
    rate_neg = sum("perspective" in c for c in neg) / len(neg)
    assert rate_pos >= 0.75, f"perspective fires on {rate_pos:.0%} of {len(pos)} angled walls"
    assert rate_neg <= 0.2, f"perspective fires on {rate_neg:.0%} of {len(neg)} fronto-parallel walls"


def _blob_wall(n: int, stretch: float, seed: int) -> np.ndarray:
    """An aperiodic surface (band-pass noise: blobs of ~3 px and their grain) on a wall whose scale shrinks
    by ``exp(-stretch)`` from the left edge to the right one (``stretch`` 0: fronto-parallel); ``n × n``."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    rng = np.random.default_rng(seed)
    src = rng.normal(size=(3 * n, 3 * n))
    tex = gaussian_filter(src, 3.0) - gaussian_filter(src, 9.0)
    t = np.arange(n, dtype=np.float64)
    x, y = np.meshgrid(t, t)
    k = np.exp(stretch * x / n)  # texture units per pixel: grows to the right (the wall recedes)
    u = n / stretch * (np.exp(stretch * x / n) - 1) if stretch else x
    v = n + (y - n / 2) * k
    img = map_coordinates(tex, [v, u + n / 2], order=1, mode="mirror")
    return (0.5 + 0.15 * img / img.std() + rng.normal(0, 0.01, (n, n))).astype(np.float32)


def test_centroid_trend_sees_perspective_on_an_aperiodic_wall():
    """The spectral-centroid trend (``localmap.centroid_scale_trend``) on band-pass noise: a scale change of
    exp(0.9) across the frame (true trend -0.9 log period per frame) reads beyond the -0.4 limit
    (``CENTROID_TREND``) on each of 3 seeds, the fronto-parallel walls stay within ±0.2, and the y trend
    (no change along y) within ±0.25 on all. Generated photographed grass and gravel walls read the
    whitened-profile trend (``persp_trend_*``) 0.00 at true trends of 0.5–0.75: no peaks to match."""
    from trackdiag.analyzers.tiling_limits import CENTROID_TREND
    from trackdiag.functional.localmap import centroid_scale_trend

    rows = []
    for seed in range(3):
        for stretch in (0.0, 0.9):
            x = torch.from_numpy(_blob_wall(320, stretch, seed))[None]
            out = centroid_scale_trend(x, torch.ones_like(x))
            rows.append((stretch, round(float(out["centroid_trend_x"][0]), 3),
                         round(float(out["centroid_trend_y"][0]), 3)))
    print(rows)
    assert all(r[1] <= -CENTROID_TREND for r in rows if r[0] > 0), rows
    assert all(abs(r[1]) <= 0.2 for r in rows if r[0] == 0), rows
    assert all(abs(r[2]) <= 0.25 for r in rows), rows


def test_anisotropy_trend_sees_perspective_on_aperiodic_walls():
    """The windows' anisotropy trend (``localmap.centroid_scale_trend``'s ``aniso_trend_*``: a homography
    stretches the wall more along its tilt than across it, whatever the spectrum's shape) on generated
    stucco, gravel and photographed gravel walls (512×768, seeds 8900+, under the generator's lighting,
    vignette, shadows and furniture). A weak, noisy reading (measured: the sign right on 7 of the 9 angled
    walls, the rule's test, ``|aniso_trend_x| >= ANISO_TREND`` with the centroid's trend of its sign, passing
    on 3 of 9 angled and 1 of 9 fronto-parallel walls; on eval seeds 31-32 it adds 11 angled walls and 1
    fronto-parallel one to the perspective verdict): the sign is right on at least 7 of 9 angled walls and
    the rule's test passes on more angled than fronto-parallel walls."""
    from trackdiag.analyzers.tiling_limits import ANISO_TREND
    from trackdiag.functional.localmap import centroid_scale_trend
    from trackdiag.functional.spectral import apodized_weights

    rows = []
    for kind in ("stucco", "gravel", "photo_gravel"):
        for i in range(3):
            for angled in (False, True):
                sc = make_scene(kind=kind, seed=8900 + i, angled=angled, size=(512, 768))
                x = torch.from_numpy(sc.pred.astype(np.float32) / 255.0).permute(2, 0, 1)
                x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
                sw = apodized_weights(torch.from_numpy(sc.mask)[None]).to(x.dtype)
                out = centroid_scale_trend(x, sw)
                a, c = float(out["aniso_trend_x"][0]), float(out["centroid_trend_x"][0])
                rows.append((kind, angled, round(sc.truth.true_trend_x, 2), round(a, 2), round(c, 2),
                             abs(a) >= ANISO_TREND and a * c > 0))
    print(rows)
    ang = [r for r in rows if r[1]]
    fro = [r for r in rows if not r[1]]
    assert sum(r[3] * r[2] > 0 for r in ang) >= 7, ang
    assert sum(r[5] for r in ang) > sum(r[5] for r in fro), rows


def test_square_window_transforms_see_perspective_on_brick_and_plank_walls():
    """The window grid's trend on square (zero-padded) transforms (``persp_sq_trend_x``) on three angled
    walls of generated v8 seed 32 (a photographed brick wall doubled, two plank walls with a band of doubled
    columns; true trends -0.31, -0.30, +0.53) whose non-square windows' profiles matched best at shift 0 (the
    rings alternately hold an axis bin or none: the same comb in every window): the non-square transforms
    read under ``PERSP_TREND`` (or no correlated pair) on all three, the square ones the true sign and at
    least ``PERSP_TREND`` on each. (Most angled brick and plank walls read alike either way: generated seeds
    8900+ at 512×768.)"""
    from trackdiag.analyzers.tiling_limits import PERSP_TREND
    from trackdiag.functional.localmap import window_scale_trend
    from trackdiag.functional.spectral import apodized_weights

    rows = []
    for cause, seed in (("period_doubled", 3200105), ("bands_cols", 3200123), ("bands_cols", 3200125)):
        sc = make_scene(kind="random", cause=cause, seed=seed, angled=True)
        x = torch.from_numpy(sc.pred.astype(np.float32) / 255.0).permute(2, 0, 1)
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        sw = apodized_weights(torch.from_numpy(sc.mask)[None]).to(x.dtype)
        old = float(window_scale_trend(x, sw)["persp_trend_x"][0])
        new = float(window_scale_trend(x, sw, square=True)["persp_trend_x"][0])
        rows.append((sc.truth.texture, round(sc.truth.true_trend_x, 2), round(old, 2), round(new, 2)))
    print(rows)
    assert not any(abs(r[2]) >= PERSP_TREND for r in rows), rows  # (NaN: no pair correlated)
    assert all(r[3] * r[1] > 0 and abs(r[3]) >= PERSP_TREND for r in rows), rows


BASE_MATERIALS = ("tiles", "brick", "hex", "penny", "planks", "wallpaper")


@pytest.fixture(scope="module")
def material_walls():
    """A wall with a band of doubled rows per periodic material (the band's 2× is what pulls the reported
    period: 20 of the 26 base-period misses of eval seeds 20-22 had a zone or band), fronto-parallel and
    angled (512², seeds 8800+): ``(material, angled, truth period, reported period)``."""
    from trackdiag.testing.walls.evaluate import diagnose_scene

    out = []
    for i, name in enumerate(BASE_MATERIALS):
        for angled in (False, True):
            sc = make_scene(kind=name, cause="bands_rows", seed=8800 + 2 * i + int(angled), angled=angled,
                            size=(512, 512))
            _, summary, _ = diagnose_scene(sc.pred, sc.mask.astype(np.float32), sc.ref)
            t = sc.truth
            got = summary.get("fundamental_period_px")
            out.append((name, angled, t.period_px, math.nan if got is None else float(got)))
    return out


def test_base_period_by_material_and_angle(material_walls):
    """The base period (``fundamental_period_px``, the densest rows' spacing at the frame centre) within 5 %
    by material and angle on walls with a band of doubled rows: the band's 2× must not pull the reported
    period. Measured (2026-12-07, ninth sitting): fronto-parallel 6 of 6; angled 4 of 6 (hex 1.12×, penny
    1.60×: the angled hex / penny walls with a band are the weak spot left, docs/tiling.md §3). Floors: 5 of 6
    fronto-parallel, 4 of 6 angled, and no material misses on both of its walls."""
    print("\n".join(f"{r[0]:10s} angled={r[1]!s:5s} truth {r[2]:.1f} got {r[3]:.1f}" for r in material_walls))
    assert all(r[2] is not None for r in material_walls)
    bad = [r for r in material_walls if not _within(r[3], r[2])]
    for angled, most in ((False, 1), (True, 2)):
        miss = [r for r in bad if r[1] == angled]
        assert len(miss) <= most, f"angled={angled}: {len(miss)} of {len(BASE_MATERIALS)} off: {miss}"
    for name in BASE_MATERIALS:
        assert sum(r[0] == name for r in bad) <= 1, f"{name}: {[r for r in bad if r[0] == name]}"
