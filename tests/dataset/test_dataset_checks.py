"""Dataset health checks as pure functions: masks, photometry, duplicates, crop bias, corrupt files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from trackdiag.dataset.crop_bias import crop_bias
from trackdiag.dataset.duplicates import (
    content_hash,
    exact_groups,
    hamming_pairs,
    near_groups,
    perceptual_hash,
)
from trackdiag.dataset.masks import inverted_masks, mask_flags, mask_offset, mask_record, sobel_magnitude
from trackdiag.dataset.photometry import image_stats, luma, photometry_flags, robust_z
from trackdiag.dataset.records import CHECKS, ScanParams
from trackdiag.dataset.worker import Task, analyze_image

S = 96
P = ScanParams()


def _band(top: int, bot: int, s: int = S) -> np.ndarray:
    m = np.zeros((s, s), bool)
    m[top:bot] = True
    return m


def _scene(seed: int, top: int = 24, bot: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """Gray image: flat ceiling/floor, a smooth random wall texture between rows top and bot; its mask."""
    rng = np.random.default_rng(seed)
    img = np.full((S, S), 0.25)
    img[bot:] = 0.75
    tex = ndimage.gaussian_filter(rng.standard_normal((S, S)), 1.5)
    img[top:bot] = (0.5 + 0.1 * tex / tex.std())[top:bot]
    return img, _band(top, bot)


def _checks(mask: np.ndarray, gray=None, size=(S, S)) -> set[str]:
    rec = mask_record(mask.astype(np.float32), gray=gray)
    return {c for c, _ in mask_flags(rec, image_size=size, params=P)}


# -- masks ------------------------------------------------------------------------------------------------
def test_clean_mask_has_no_flag_and_sane_numbers():
    img, m = _scene(0)
    rec = mask_record(m.astype(np.float32), gray=img)
    assert mask_flags(rec, image_size=(S, S), params=P) == []
    assert rec.coverage == pytest.approx(48 / 96) and rec.fragments == 1 and rec.holes == 0
    assert rec.centroid_y == pytest.approx(0.5) and rec.centroid_x == pytest.approx(0.5)
    assert rec.thumb.shape == (16, 16) and rec.thumb.dtype == np.uint8
    assert rec.offset_gain == 1.0  # the border already sits on the strongest edges


@pytest.mark.parametrize("name,make,check", [
    ("empty", lambda m: np.zeros_like(m, np.float32), "mask_empty"),
    ("full", lambda m: np.ones_like(m, np.float32), "mask_full"),
    ("soft", lambda m: ndimage.gaussian_filter(m.astype(np.float32), 4), "mask_not_binary"),
    ("specks", lambda m: _with(m, np.s_[2:20:3, 2:90:5], True), "mask_fragmented"),
    ("pinholes", lambda m: _with(m, np.s_[30:66:4, 4:90:9], False), "mask_holes"),
])
def test_each_broken_mask_gets_its_check(name, make, check):
    img, m = _scene(1)
    assert _checks(make(m), gray=img) == {check}, name


def _with(m: np.ndarray, where, value: bool) -> np.ndarray:
    out = m.copy()
    out[where] = value
    return out


def test_mask_saved_as_zero_one_is_empty_with_the_fix_in_the_reason():
    rec = mask_record(_band(20, 70).astype(np.float32) / 255.0)
    flags = mask_flags(rec, image_size=(S, S), params=P)
    assert [c for c, _ in flags] == ["mask_empty"] and "0/1 instead of 0/255" in flags[0][1]


def test_mask_numbers_match_full_image_references_on_random_masks():
    """Fragments and holes come from one labelling of the wall's bounding box and the Euler number; the
    offset search computes Sobel only around the border; 8-bit masks are read without a float copy. Each
    must give what the plain full-image computation gives."""
    rng = np.random.default_rng(11)
    for t in range(60):
        h, w = (int(v) for v in rng.integers(24, 120, 2))
        if t % 4 == 0:  # blobs with holes and islands
            b = ndimage.gaussian_filter(rng.standard_normal((h, w)), 2.0) > rng.uniform(-0.3, 0.3)
        elif t % 4 == 1:  # a wall band with pinholes
            b = _band(h // 4, 3 * h // 4, s=max(h, w))[:h, :w] & (rng.random((h, w)) > 0.01)
        elif t % 4 == 2:  # an upright band
            b = _band(w // 3, 2 * w // 3, s=max(h, w)).T[:h, :w].copy()
        else:  # touching the frame on two sides
            b = np.zeros((h, w), bool)
            b[h // 5:, w // 3:] = True
        u8 = b.astype(np.uint8) * 255
        u8[rng.integers(h), rng.integers(w)] = 100  # one grey pixel (background)
        b = u8 > 127
        holes = int(ndimage.label(ndimage.binary_fill_holes(b) & ~b)[1])
        fragments = int(ndimage.label(b, structure=np.ones((3, 3), bool))[1])
        ref = mask_record(u8.astype(np.float32) / 255.0)
        rec = mask_record(u8)
        assert (rec.fragments, rec.holes) == (ref.fragments, ref.holes) == (fragments, holes)
        assert (rec.coverage, rec.nonbinary_frac) == (ref.coverage, ref.nonbinary_frac)
        assert rec.max_value == pytest.approx(ref.max_value) and np.array_equal(rec.thumb, ref.thumb)
        shift = int(rng.integers(-4, 5))
        gray = ndimage.gaussian_filter(rng.random((h, w)), 1.0) + 0.3 * np.roll(b, shift, 0)
        full = mask_offset(b, sobel_magnitude(gray))
        local = mask_offset(b, gray=gray)
        assert full[:2] == local[:2]
        assert local[2] == pytest.approx(full[2], rel=1e-5, nan_ok=True)


def test_small_boxes_are_labelled_without_scipy_and_agree_with_it():
    """Squeezed boxes up to SMALL_BOX_PX pixels are counted by a flood fill (no scipy import); on random
    speckle, blobs and rings of both sizes around the limit, fragments and holes equal scipy's."""
    from trackdiag.dataset.masks import SMALL_BOX_PX, _components

    rng = np.random.default_rng(7)
    side = int(np.sqrt(SMALL_BOX_PX))
    for t in range(400):
        h, w = (int(v) for v in rng.integers(1, side + 3, 2))  # some boxes above the limit (scipy path)
        b = rng.random((h, w)) < rng.uniform(0.1, 0.9)
        if t % 3 == 0:  # rings: one hole each
            b = np.zeros((h + 2, w + 2), bool)
            b[0, :] = b[-1, :] = b[:, 0] = b[:, -1] = True
        holes = int(ndimage.label(ndimage.binary_fill_holes(b) & ~b)[1])
        fragments = int(ndimage.label(b, structure=np.ones((3, 3), bool))[1])
        assert _components(b) == (fragments, holes), (t, b.shape)


def test_size_mismatch():
    assert _checks(_band(20, 70, s=80)[:, :80], size=(S, S)) == {"mask_size_mismatch"}


def test_shifted_mask_is_found_with_its_shift():
    img, m = _scene(2)
    shifted = np.roll(m, 3, axis=0)  # 3 px too low
    dx, dy, gain = mask_offset(shifted, sobel_magnitude(img), max_shift=4)
    assert dy == -3 and abs(dx) <= 1 and gain > 2
    assert _checks(shifted, gray=img) == {"mask_offset"}
    # One pixel of shift along a straight border is within Sobel's reach: the clean mask stays unflagged.
    assert "mask_offset" not in _checks(np.roll(m, 1, axis=0), gray=img)


def test_inverted_mask_against_the_dataset_prior():
    rng = np.random.default_rng(3)
    masks = [_band(int(rng.integers(15, 30)), int(rng.integers(66, 80))) for _ in range(12)]
    masks.append(~_band(22, 74))
    recs = [mask_record(m.astype(np.float32)) for m in masks]
    flagged, corr, prior = inverted_masks([r.thumb for r in recs], [r.coverage for r in recs])
    assert flagged.tolist() == [False] * 12 + [True]
    assert corr[-1] < -0.9 and np.all(corr[:12] > 0.5)
    assert prior.shape == (16, 16)
    # Too few masks: no prior, nothing flagged.
    few, _, none = inverted_masks([r.thumb for r in recs[-3:]], [r.coverage for r in recs[-3:]])
    assert not few.any() and none is None


# -- photometry --------------------------------------------------------------------------------------------
def test_luma_and_stats():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255
    assert np.allclose(luma(rgb), 0.587, atol=1e-6)
    b, c, hist = image_stats(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10))
    assert b == pytest.approx(0.5) and c == pytest.approx(np.linspace(0, 1, 100).std(), rel=1e-5)
    assert hist.sum() == 100 and hist.shape == (64,)


def test_robust_z_ignores_the_outlier_and_has_a_floor():
    z, st = robust_z([0.5, 0.52, 0.48, 0.51, 0.49, 0.1], floor=0.001)
    assert st.median == pytest.approx(0.495) and z[-1] < -10 and np.all(np.abs(z[:5]) < 2)
    z2, st2 = robust_z([0.5] * 10, floor=0.02)
    assert st2.scale == 0.02 and np.all(z2 == 0)


def test_photometry_flags_outliers_only():
    rng = np.random.default_rng(4)
    b = list(0.5 + 0.03 * rng.standard_normal(20))
    c = list(0.15 + 0.01 * rng.standard_normal(20))
    b += [0.2, 0.85, 0.5]
    c += [0.15, 0.15, 0.03]
    flags, stats = photometry_flags(b, c, params=P)
    got = [{k for k, _ in f} for f in flags]
    assert got[:20] == [set()] * 20
    assert got[20] == {"dark"} and got[21] == {"bright"} and got[22] == {"low_contrast"}
    assert stats["brightness"].median == pytest.approx(np.median(b))


def test_photometry_absolute_limits_without_enough_images():
    flags, _ = photometry_flags([0.03, 0.5, 0.97], [0.2, 0.005, 0.2], params=P)
    assert [{k for k, _ in f} for f in flags] == [{"dark"}, {"low_contrast"}, {"bright"}]
    flags, _ = photometry_flags([0.2, 0.5, 0.8], [0.2, 0.2, 0.2], params=P)  # no z-scores with 3 images
    assert all(f == [] for f in flags)


# -- duplicates ----------------------------------------------------------------------------------------------
def test_hamming_pairs_match_brute_force():
    rng = np.random.default_rng(5)
    hashes = [int(x) for x in rng.integers(0, 2**63, 300, dtype=np.int64)]
    hashes[17] = hashes[3] ^ 0b101  # 2 bits apart
    hashes[250] = hashes[100] ^ (1 << 63) ^ 1  # 2 bits apart, top bit included
    got = sorted(hamming_pairs(hashes, max_bits=4, chunk=64))
    want = sorted((i, j, bin(hashes[i] ^ hashes[j]).count("1")) for i in range(300) for j in range(i + 1, 300)
                  if bin(hashes[i] ^ hashes[j]).count("1") <= 4)
    assert got == want and (3, 17, 2) in got and (100, 250, 2) in got


def test_exact_and_near_groups():
    digests = ["a", "b", "a", "c", "", "d"]
    assert exact_groups(digests) == [[0, 2]]
    hashes = [0b0, 0b11111 << 20, 0b0, 0b1, 0b1, 2**40 - 1]
    groups, dist = near_groups(hashes, digests, max_bits=4)
    # 0~3 (1 bit), 2~3 (1 bit): one transitive group; 0~2 are exact duplicates (left out); 4 has no digest.
    assert groups == [[0, 2, 3]] and dist == {(0, 3): 1, (2, 3): 1}


def test_content_and_perceptual_hash(tmp_path):
    img, _ = _scene(6)
    rgb = (np.stack([img] * 3, -1) * 255).round().astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    decoded = [np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "a.bmp")]
    assert content_hash(decoded[0]) == content_hash(decoded[1])
    near = np.clip(rgb.astype(int) + np.random.default_rng(7).integers(-3, 4, rgb.shape), 0,
                   255).astype(np.uint8)
    assert content_hash(near) != content_hash(rgb)
    other = (np.stack([_scene(8)[0]] * 3, -1) * 255).astype(np.uint8)
    h = [perceptual_hash(Image.fromarray(x)) for x in (rgb, near, other)]
    assert bin(h[0] ^ h[1]).count("1") <= P.near_duplicate_bits < bin(h[0] ^ h[2]).count("1")


def test_perceptual_hash_is_imagehash_phash():
    """Only phash's 8×8 DCT coefficients are computed, by two matrix products: the same 64 bits."""
    import imagehash

    rng = np.random.default_rng(12)
    for i in range(20):
        sigma = (1.0 + i, 1.0 + i, 0.0)
        rgb = (ndimage.gaussian_filter(rng.random((96 + i, 128, 3)), sigma) * 255).astype(np.uint8)
        im = Image.fromarray(rgb)
        assert perceptual_hash(im) == int(str(imagehash.phash(im)), 16)


# -- crop bias -----------------------------------------------------------------------------------------------
def test_crop_bias_direction_and_no_false_alarm():
    rng = np.random.default_rng(9)
    cx, cov = 0.5 + 0.05 * rng.standard_normal(30), np.full(30, 0.4)
    centred = crop_bias(cx, 0.5 + 0.05 * rng.standard_normal(30), cov)
    assert not centred.biased and centred.offset < 0.05
    top = crop_bias(cx, 0.25 + 0.05 * rng.standard_normal(30), cov)
    assert top.biased and "top" in top.reason and top.mean_y == pytest.approx(0.25, abs=0.03)
    few = crop_bias(cx[:3], [0.1] * 3, cov[:3])
    assert not few.biased and few.n == 3
    # Empty and full masks do not take part (their centroid says nothing about the crop).
    full = crop_bias(cx, np.full(30, 0.1), np.ones(30))
    assert full.n == 0 and not full.biased


# -- the per-image worker ------------------------------------------------------------------------------------
def test_worker_reports_corrupt_files_and_sends_small_records(tmp_path):
    img, m = _scene(10)
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "ok_mask.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    bad = analyze_image(Task(str(tmp_path / "half.png"), None, False, P))
    assert [c for c, _ in bad.flags] == ["corrupt"] and bad.error
    missing = analyze_image(Task(str(tmp_path / "nope.png"), None, False, P))
    assert [c for c, _ in missing.flags] == ["corrupt"]
    ok = analyze_image(Task(str(tmp_path / "ok.png"), str(tmp_path / "ok_mask.png"), True, P))
    assert ok.error is None and ok.mask is not None and not [c for c, _ in ok.flags if c.startswith("mask")]
    ok.luma_hist = None  # the scan drops it on arrival
    assert len(pickle.dumps(ok)) < 2000
    no_mask = analyze_image(Task(str(tmp_path / "ok.png"), None, True, P))
    assert ("mask_missing" in [c for c, _ in no_mask.flags])


def test_check_names_are_snake_case_and_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "dataset.md").read_text()
    for name in CHECKS:
        assert name.replace("_", "").isalpha() and name.islower()
        assert f"`{name}`" in doc


def test_worker_scales_16_bit_images_and_rejects_tiny_ones(tmp_path):
    img, _ = _scene(11)
    Image.fromarray((img * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "flat.png")
    deep = analyze_image(Task(str(tmp_path / "deep.png"), None, False, P))
    flat = analyze_image(Task(str(tmp_path / "flat.png"), None, False, P))
    assert deep.error is None and deep.brightness == pytest.approx(flat.brightness, abs=0.01)
    Image.fromarray(np.zeros((4, 50), np.uint8)).save(tmp_path / "tiny.png")
    tiny = analyze_image(Task(str(tmp_path / "tiny.png"), None, False, P))
    assert [c for c, _ in tiny.flags] == ["corrupt"] and "too small" in tiny.error


def test_a_failing_check_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    import trackdiag.dataset.tiling as tiling

    def boom(*a, **k):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(tiling, "_estimate_batch", boom)  # the period estimate of the batch and of each image
    img, m = _scene(12)
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "a_mask.png")
    rec = analyze_image(Task(str(tmp_path / "a.png"), str(tmp_path / "a_mask.png"), True, P))
    assert [(c, r) for c, r in rec.flags] == [("check_error", "periodicity: RuntimeError: synthetic failure")]
    assert rec.mask is not None and np.isfinite(rec.brightness) and rec.phash != 0
