"""The realistic wall-scene generator tells the truth: periods, planted artifacts, masks, determinism.

Each check measures the rendered JPEG (not the generator's own numbers) with a plain estimator written here,
independent of trackdiag's analyzers: a zero-padded 2-D spectrum for periods, parity means for the
transposed-conv gain, and scene-minus-twin differences for where an artifact was planted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from trackdiag.testing.walls import CAUSES, MATERIALS, make_scene
from trackdiag.testing.walls.camera import angled, fronto, local_period

SMALL = (256, 320)


def _grey(scene) -> np.ndarray:
    return scene.pred.astype(np.float64).mean(axis=-1) / 255.0


def _spectral_period(img: np.ndarray, mask: np.ndarray, normal: tuple[float, float], guess: float,
                     *, pad: int = 2048) -> tuple[float, float]:
    """Period (px) of the strongest spectral peak with radius in [0.75, 1.33] / guess and direction within
    ±10° of ``normal``; also the ratio of the strongest power near half that frequency to the peak's (a
    fundamental there, i.e. a truth that is half the real period, gives a ratio ≳ 1; per-tile colour
    variation gives a smooth hump well below the peak)."""
    x = np.where(mask, img - img[mask].mean(), 0.0)
    h, w = x.shape
    x = x * np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.fft2(x, s=(pad, pad))) ** 2
    f = np.fft.fftfreq(pad)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    nx, ny = normal
    cosang = np.abs(fx * nx + fy * ny) / np.maximum(r, 1e-12)
    sector = cosang > math.cos(math.radians(10))
    ring = sector & (r > 0.75 / guess) & (r < 1.33 / guess)
    k = int(np.argmax(np.where(ring, p, 0.0)))
    iy, ix = divmod(k, pad)

    def refine(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return 0.5 * (a - c) / den if den != 0 else 0.0

    dy = refine(p[iy - 1, ix], p[iy, ix], p[(iy + 1) % pad, ix])
    dx = refine(p[iy, ix - 1], p[iy, ix], p[iy, (ix + 1) % pad])
    fpk = math.hypot(f[ix] + dx / pad, f[iy] + dy / pad)
    half = sector & (r > 0.45 / guess) & (r < 0.55 / guess)
    return 1.0 / fpk, float(p[half].max() / p[iy, ix])


# --------------------------------------------------------------------------------------------------------
# shapes, dtypes, determinism
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cause", [None, "checkerboard", "period_halved"])
def test_shapes_dtypes_and_truth_fields(cause):
    s = make_scene(kind="tiles", cause=cause, seed=3, size=SMALL)
    assert s.pred.shape == (*SMALL, 3) and s.pred.dtype == np.uint8
    assert s.mask.shape == SMALL and s.mask.dtype == bool
    assert 0.2 < s.mask.mean() < 0.98
    assert s.pred_float().dtype == np.float32 and 0.0 <= s.pred_float().min() <= s.pred_float().max() <= 1.0
    t = s.truth
    assert t.causes == ([] if cause is None else [cause])
    assert t.size == list(SMALL) and 75 <= t.jpeg_q <= 95
    assert s.jpeg_bytes[:2] == b"\xff\xd8"
    if cause == "period_halved":  # a period cause always has its reference
        assert s.ref is not None and s.ref.shape == (256, 256, 3) and s.ref.dtype == np.uint8
        assert t.period_px == pytest.approx(t.ref_period_px / 2)


def test_deterministic_by_seed_and_twin_shares_draws():
    a = make_scene(kind="brick", cause="checkerboard", seed=11, size=SMALL)
    b = make_scene(kind="brick", cause="checkerboard", seed=11, size=SMALL)
    c = make_scene(kind="brick", cause="checkerboard", seed=12, size=SMALL)
    assert np.array_equal(a.pred, b.pred) and np.array_equal(a.mask, b.mask) and a.truth == b.truth
    assert not np.array_equal(a.pred, c.pred)
    t = make_scene(kind="brick", cause="checkerboard", seed=11, size=SMALL, twin=True)
    assert t.truth.causes == [] and t.truth.twin_of == a.truth.id
    assert np.array_equal(t.mask, a.mask) and t.truth.period_px == a.truth.period_px
    # the same picture apart from the upsampler
    assert np.abs(t.pred.astype(float) - a.pred.astype(float)).mean() < 8


def test_random_kind_follows_the_cause_and_rejects_unknowns():
    for seed in range(4):
        s = make_scene(cause="aliasing", seed=seed, size=SMALL)
        assert s.truth.texture in ("tiles", "hex", "penny", "wallpaper") and s.truth.period_px is None
    with pytest.raises(ValueError):
        make_scene(cause="nonsense", size=SMALL)
    with pytest.raises(ValueError):
        make_scene(kind="marble", size=SMALL)
    assert set(CAUSES) >= {"checkerboard", "grid_s8", "doubled_zone", "period_doubled", "period_halved",
                           "bands_rows", "bands_cols", "aliasing"}


# --------------------------------------------------------------------------------------------------------
# periods and perspective
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tiles", "brick", "hex", "penny", "planks", "wallpaper"])
def test_fronto_period_matches_the_truth(kind):
    for seed in (1, 2):
        s = make_scene(kind=kind, cause=None, seed=seed, size=(384, 384), angled=False)
        t = s.truth
        normal = tuple(t.params["normal"])
        est, half = _spectral_period(_grey(s), s.mask, normal, t.period_px)
        assert est == pytest.approx(t.period_px, rel=0.03), (kind, seed, est, t.period_px)
        if kind != "planks":  # strong plank-to-plank colour makes a broadband hump there (the trap)
            assert half < 0.65, (f"{kind}: a peak at twice the period (ratio {half:.2f}): the truth "
                                 "would be half")


@pytest.mark.parametrize("cause,factor", [("period_doubled", 2.0), ("period_halved", 0.5)])
def test_period_causes_render_the_wall_at_their_factor(cause, factor):
    s = make_scene(kind="tiles", cause=cause, seed=5, size=(384, 384), angled=False)
    t = s.truth
    assert t.period_px == pytest.approx(factor * t.ref_period_px)
    est, _ = _spectral_period(_grey(s), s.mask, (0.0, 1.0), t.period_px)
    assert est == pytest.approx(t.period_px, rel=0.03)
    ref_est, _ = _spectral_period(s.ref.astype(float).mean(-1) / 255, np.ones((256, 256), bool), (0.0, 1.0),
                                  t.ref_period_px)
    assert ref_est == pytest.approx(t.ref_period_px, rel=0.03)
    twin = make_scene(kind="tiles", cause=cause, seed=5, size=(384, 384), angled=False, twin=True)
    assert twin.truth.causes == [] and twin.truth.period_px == pytest.approx(t.ref_period_px)


def test_view_has_unit_scale_at_the_centre_and_the_angled_change_is_as_drawn():
    rng = np.random.default_rng(0)
    for normal in ((0.0, 1.0), (1.0, 0.0)):
        v = fronto(600, 800, rng)
        j = v.jacobian(np.array([400.0]), np.array([300.0]))[0]
        assert np.allclose(j @ j.T, np.eye(2), atol=1e-9)  # a rotation
        a = angled(600, 800, rng, normal=normal, change=0.5)
        p = local_period(a, np.array([0.5, 400.0, 799.5]), np.array([300.0, 300.0, 300.0]), 10.0, normal)
        assert p[1] == pytest.approx(10.0, rel=1e-6)
        assert max(p[0], p[2]) / min(p[0], p[2]) == pytest.approx(1.5, rel=1e-3)
        # the analytic Jacobian agrees with finite differences
        x, y, e = np.array([123.0]), np.array([456.0]), 0.25
        ua, va = a.to_texture(x - e, y)
        ub, vb = a.to_texture(x + e, y)
        uc, vc = a.to_texture(x, y - e)
        ud, vd = a.to_texture(x, y + e)
        num = np.array([[ub - ua, ud - uc], [vb - va, vd - vc]], np.float64)[..., 0] / (2 * e)
        assert np.allclose(num, a.jacobian(x, y)[0], atol=2e-3)


def test_perspective_labels():
    fro = make_scene(kind="brick", seed=4, size=SMALL, angled=False)
    ang = make_scene(kind="brick", seed=4, size=SMALL, angled=True)
    assert fro.truth.perspective_label is False and fro.truth.period_change < 0.01
    assert "perspective" not in fro.truth.context
    assert ang.truth.perspective_label is True and ang.truth.period_change >= 0.2
    assert "perspective" in ang.truth.context and ang.truth.angled
    stucco = make_scene(kind="stucco", seed=4, size=SMALL)
    assert "aperiodic" in stucco.truth.context and stucco.truth.period_px is None



def test_brick_photograph_perspective_is_in_the_truth():
    """The brick photograph is taken from below (column spacing 30 → 41 px from its top to its bottom row):
    a fronto-parallel view of it has that trend along y in its truth and is labelled neither way (None: the
    view is fronto-parallel, the photograph is not)."""
    from trackdiag.testing.walls.materials import photo_scale_slope

    assert 0.25 <= photo_scale_slope() * 512 <= 0.45  # log change over the photograph's 512 rows
    s = make_scene(kind="photo_brick", seed=4, size=SMALL, angled=False)
    expect = photo_scale_slope() * SMALL[0] / s.truth.params["material"]["scale"]
    assert abs(s.truth.true_trend_y - expect) <= 0.03 and abs(s.truth.true_trend_x) <= 0.03
    assert s.truth.perspective_label is None and s.truth.period_change >= 0.1
    plain = make_scene(kind="brick", seed=4, size=SMALL, angled=False)  # a drawn texture has none
    assert abs(plain.truth.true_trend_y) <= 0.01

# --------------------------------------------------------------------------------------------------------
# artifacts by their mechanism
# --------------------------------------------------------------------------------------------------------
def _parity_gain(img: np.ndarray) -> tuple[float, float]:
    return img[:, 1::2].mean() / img[:, 0::2].mean() - 1, img[1::2].mean() / img[0::2].mean() - 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_checkerboard_parity_gain_is_planted_and_its_twin_has_none(seed):
    s = make_scene(kind="brick", cause="checkerboard", seed=seed, size=SMALL)
    delta = s.truth.params["cb_delta"]
    assert 0.02 <= abs(delta) <= 0.06
    gx, gy = _parity_gain(_grey(s))
    assert gx == pytest.approx(delta, abs=0.012) and gy == pytest.approx(delta, abs=0.012)
    t = make_scene(kind="brick", cause="checkerboard", seed=seed, size=SMALL, twin=True)
    tx, ty = _parity_gain(_grey(t))
    assert abs(tx) < 0.008 and abs(ty) < 0.008


@pytest.mark.parametrize("seed", [1, 2])
def test_grid_offsets_sit_on_the_8px_lattice(seed):
    s = make_scene(kind="penny", cause="grid_s8", seed=seed, size=SMALL)
    t = make_scene(kind="penny", cause="grid_s8", seed=seed, size=SMALL, twin=True)
    d = _grey(s) - _grey(t)
    assert 0.006 < d.std() < 0.04 and 0.01 <= s.truth.params["vae_amp"] <= 0.03
    jx = np.abs(np.diff(d, axis=1)).mean(axis=0)  # jump between columns c and c+1
    jy = np.abs(np.diff(d, axis=0)).mean(axis=1)
    for j in (jx, jy):
        by_phase = np.array([j[p::8].mean() for p in range(8)])  # phase 7: jump from x = 8k-1 to 8k
        assert int(np.argmax(by_phase)) == 7
        assert by_phase[7] > 2 * np.median(by_phase[:7])

    def explained(dd: np.ndarray, phase: int) -> float:
        """Share of the difference's variance explained by 8×8 block means on a lattice shifted by phase."""
        x = dd[phase:, phase:]
        h, w = (x.shape[0] // 8) * 8, (x.shape[1] // 8) * 8
        x = x[:h, :w] - x[:h, :w].mean()
        means = x.reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
        return float((means ** 2).mean() / (x ** 2).mean())

    shares = [explained(d, p) for p in range(8)]  # JPEG noise and the 1-px seams are not block means
    assert int(np.argmax(shares)) == 0 and shares[0] > 0.3 and shares[0] > shares[4] + 0.2


def test_mask_excludes_furniture_frames_floor_and_ceiling():
    seen = 0
    for seed in range(6):
        s = make_scene(kind="tiles", seed=seed, size=SMALL, angled=False)  # floor and ceiling lines ±2°
        p = s.truth.params
        for x0, y0, x1, y1 in p["furniture_boxes"] + p["frame_boxes"]:
            cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
            if 0 <= cy < SMALL[0] and 0 <= cx < SMALL[1]:
                # the box's middle row and column bands (its corners are rounded)
                across = s.mask[max(cy - 2, 0):cy + 3, int(max(x0, 0)) + 3:int(min(x1, SMALL[1])) - 3]
                down = s.mask[int(max(y0, 0)) + 3:int(min(y1, SMALL[0])) - 3, max(cx - 2, 0):cx + 3]
                assert not across.any() and not down.any()
                seen += 1
        assert not s.mask[int(p["floor_y"]) + 8:].any() and s.mask[int(p["floor_y"]) - 12].mean() > 0.3
        if p["ceil_y"]:
            assert not s.mask[:max(int(p["ceil_y"]) - 8, 0)].any()
    assert seen >= 3


def _diff_vs_twin(cause: str, seed: int, kind: str = "tiles", size=SMALL):
    s = make_scene(kind=kind, cause=cause, seed=seed, size=size, angled=False)
    t = make_scene(kind=kind, cause=cause, seed=seed, size=size, angled=False, twin=True)
    return s, np.abs(_grey(s) - _grey(t))


def test_doubled_zone_and_bands_change_only_their_region():
    s, d = _diff_vs_twin("doubled_zone", 7, size=(384, 384))
    z = s.truth.params["zone"]
    yy, xx = np.mgrid[0:384, 0:384]
    near = ((xx - z["cx"]) / (z["rx"] * 1.25 + z["feather"])) ** 2 + \
        ((yy - z["cy"]) / (z["ry"] * 1.25 + z["feather"])) ** 2 <= 1
    assert d[near].sum() > 0.95 * d.sum() and d[near].mean() > 0.02
    for cause in ("bands_rows", "bands_cols"):
        s, d = _diff_vs_twin(cause, 7, size=(384, 384))
        b = s.truth.params["band"]
        assert s.truth.band_axis == b["axis"] == cause.split("_")[1]
        lo, hi = b["start"] - b["feather"] - 2, b["start"] + b["width"] + b["feather"] + 2
        prof = d.mean(axis=1) if b["axis"] == "rows" else d.mean(axis=0)
        c = np.arange(len(prof)) + 0.5
        inside = (c > lo) & (c < hi)
        assert prof[inside].sum() > 0.97 * prof.sum()
        # the band spans the whole wall across: every column (row) of the band changes
        from scipy.ndimage import uniform_filter1d

        span = d[inside] if b["axis"] == "rows" else d[:, inside].T
        along = uniform_filter1d(span.mean(axis=0), 32)  # a texture line that did not move changes nothing
        wall = (s.mask[inside] if b["axis"] == "rows" else s.mask[:, inside].T).mean(axis=0) > 0.5
        assert (along[wall] > 0.005).mean() > 0.9  # across the whole wall (furniture hides the rest)


def test_edge_stripe_and_mask_seam_are_where_the_truth_says():
    s, d = _diff_vs_twin("edge_artifact", 3)
    e = s.truth.params["edge"]
    prof = {"left": d.mean(axis=0), "right": d.mean(axis=0)[::-1], "top": d.mean(axis=1),
            "bottom": d.mean(axis=1)[::-1]}[e["side"]]
    edge = -(-e["width"] // 16) * 16  # JPEG spreads a change over its 16×16 (chroma) blocks
    assert prof[:edge].sum() > 0.9 * prof.sum() and prof[:e["width"]].mean() > 5 * prof[edge + 8:].mean()
    from scipy.ndimage import distance_transform_edt

    s, d = _diff_vs_twin("mask_seam", 3)
    dist = distance_transform_edt(np.pad(s.mask, 1, mode="edge"))[1:-1, 1:-1]
    w = s.truth.params["seam"]["width"]
    ring = s.mask & (dist <= w + 2)
    assert d[ring].mean() > 5 * d[s.mask & (dist > w + 6)].mean()


def _band_energy(scene, lo: float, hi: float) -> float:
    g = np.where(scene.mask, _grey(scene) - _grey(scene)[scene.mask].mean(), 0)
    p = np.abs(np.fft.fft2(g)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(g.shape[0]), np.fft.fftfreq(g.shape[1]), indexing="ij"))
    return float(p[(f > lo) & (f < hi)].sum() / max(scene.mask.sum(), 1))


@pytest.mark.parametrize("kind", ["penny", "tiles", "hex", "wallpaper"])
def test_aliasing_folds_fine_texture_down_and_its_twin_does_not(kind):
    for seed in (1, 2, 3):
        s = make_scene(kind=kind, cause="aliasing", seed=seed, size=SMALL, angled=False)
        t = make_scene(kind=kind, cause="aliasing", seed=seed, size=SMALL, angled=False, twin=True)
        # strided subsampling folds the fine mosaic into visible frequencies; the antialiased twin is smooth
        ratio = _band_energy(s, 0.05, 0.5) / _band_energy(t, 0.05, 0.5)
        assert ratio > 1.5, (kind, seed, s.truth.params["alias_variant"], ratio)


def test_every_material_renders_in_range():
    y, x = np.mgrid[0:64, 0:64].astype(np.float32) + 0.5
    for name, factory in MATERIALS.items():
        m = factory(np.random.default_rng(0), 12.0)
        img = m.render(x, y)
        assert img.shape == (64, 64, 3) and img.dtype == np.float32
        assert np.isfinite(img).all() and 0 <= img.min() and img.max() <= 1 and img.std() > 0.01, name
