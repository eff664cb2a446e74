"""Misplaced patches processed after the copy, found by a block search (functional/pixel_blocks.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.eval_pixel_edit import _iou, _out_region, realistic_cohort
from trackdiag.functional.pixel_blocks import block_copy_pairs
from trackdiag.functional.pixel_copy import copy_pairs


def _boxes(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[int, int, int, int]]:
    out = []
    for pair in pairs:
        for m in pair:
            ys, xs = torch.nonzero(m, as_tuple=True)
            if len(ys):
                out.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return out


def test_processed_copies_are_found_by_their_blocks_and_clean_edits_give_none():
    """The first iterations of the realistic cohort of calibration seed 201 (``benchmarks/eval_pixel_edit.py
    --cohort realistic``): an inpainted copy (resampled, blended, fresh noise), which the copied grain does
    not find (no pair), is found by the block search (a member of a pair with IoU >= 0.5 with the planted
    box; measured 0.62), and a clean edit re-compressed as JPEG gives no pair. The rates over cohorts are in
    docs/pixel.md (eleventh sitting)."""
    torch.set_num_threads(1)
    pairs = realistic_cohort(201, 3, None)
    for p in pairs["misplaced"][2:3]:
        out = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
        own, region = out.mean(dim=1), _out_region(p)
        assert copy_pairs(own, region)[0] == [], p.kind
        boxes = _boxes(block_copy_pairs(own, region)[0])
        assert max((_iou(b, p.boxes[0]) for b in boxes), default=0.0) >= 0.5, (p.kind, boxes, p.boxes)
    for p in pairs["clean"][1:2]:
        out = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
        assert block_copy_pairs(out.mean(dim=1), _out_region(p)) == [[]]


def _direct_matches(g: np.ndarray, inner: np.ndarray, faces: np.ndarray, *, block: int, stride: int,
                    exclude: int, sup: int) -> list[tuple[float, ...]]:
    """The block matches by direct sums (no FFT): every block of the grid (the same admission as ``_matches``)
    against every window of each transformed image, the normalised correlation, the identity's own place
    left out, the best and the best more than ``sup`` px from it."""
    h, w = g.shape
    k = block
    rows = []
    imgs = {"identity": g, "flip_y": g[::-1], "flip_x": g[:, ::-1], "rot180": g[::-1, ::-1]}
    for t, img in enumerate(imgs.values()):
        wins = np.lib.stride_tricks.sliding_window_view(img.astype(np.float64), (k, k)).reshape(-1, k * k)
        e = (wins ** 2).sum(axis=1).reshape(h - k + 1, w - k + 1)
        for by in range(0, h - k + 1, stride):
            for bx in range(0, w - k + 1, stride):
                if inner[by:by + k, bx:bx + k].mean() < 0.75 or faces[by:by + k, bx:bx + k].mean() < 0.4:
                    continue
                b = g[by:by + k, bx:bx + k].astype(np.float64)
                b = b / max(np.linalg.norm(b), 1e-12)
                c = (wins @ b.ravel()).reshape(e.shape)
                ncc = np.where(e > 1e-10, c / np.sqrt(np.maximum(e, 1e-12)), -1.0)
                if t == 0:
                    ncc[max(0, by - exclude):by + exclude + 1, max(0, bx - exclude):bx + exclude + 1] = -1.0
                qy, qx = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
                best = ncc[qy, qx]
                ncc[max(0, qy - sup):qy + sup + 1, max(0, qx - sup):qx + sup + 1] = -1.0
                rows.append((float(t), by, bx, qy - by, qx - bx, best, ncc.max()))
    return rows


def test_the_batched_block_correlation_equals_direct_sums():
    """``_matches`` correlates all blocks with the four transformed images in one batched FFT, on the faces'
    bounding box and without wrap-around (twelfth sitting): on a random image whose faces leave a margin
    (so the crop, the FFT length and the frame's edge all matter), every block's best match, its
    displacement and the second best equal the direct sums."""
    from trackdiag.functional.pixel_blocks import _matches

    torch.set_num_threads(1)  # as the other tests of this module: tiny FFTs, a loaded machine
    rng = np.random.default_rng(3)
    h, w = 40, 52
    g = rng.normal(size=(h, w)).astype(np.float32)
    inner = np.zeros((h, w), bool)
    inner[3:37, 6:49] = True
    faces = inner & (rng.random((h, w)) < 0.8)
    g = np.where(faces, g, 0.0).astype(np.float32)
    g[10:18, 20:28] = g[30:22:-1, 12:20]  # a flipped repeat: a clear best match under flip_y
    want = np.array(_direct_matches(g, inner, faces, block=8, stride=4, exclude=4, sup=2))
    got = _matches(torch.from_numpy(g), torch.from_numpy(faces), torch.from_numpy(inner), block=8, stride=4,
                   min_face=0.4, exclude=4, sup=2, chunk_elements=1 << 14).double().numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got[:, :5], want[:, :5])
    np.testing.assert_allclose(got[:, 5:], want[:, 5:], atol=1e-5)


def test_box_sums_from_cumulative_sums_equal_explicit_sums():
    from trackdiag.functional.pixel_edit import box_mean, box_sum

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 23, 31)).astype(np.float32)
    x[0, 0, :, :12] = 0.0  # a box over zeros reads exactly 0
    for k in (1, 5, 9, 13):
        r = k // 2
        pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (r, r), (r, r)))
        want = np.zeros_like(pad[..., r:-r or None, r:-r or None]) if r else x.astype(np.float64)
        if r:
            for dy in range(k):
                for dx in range(k):
                    want = want + pad[..., dy:dy + 23, dx:dx + 31]
        got = box_sum(torch.from_numpy(x), k).double().numpy()
        np.testing.assert_allclose(got, want, atol=1e-4)
        mean = box_mean(torch.from_numpy(x), k).double().numpy()
        np.testing.assert_allclose(mean, want / k ** 2, atol=1e-5)
    assert float(box_sum(torch.from_numpy(x), 9)[0, 0, :, :8].abs().max()) == 0.0


@pytest.fixture(scope="module")
def realistic_9821() -> dict[str, int]:
    """The judge's box step (phase boxes, copied grain and the block search, on by default since the twelfth
    sitting) on the realistic cohort of seed 9821 (``benchmarks/eval_pixel_edit.py --cohort realistic``:
    resampled, blended, inpainted and re-compressed copies; clean edits, half re-compressed), a seed never
    used for a level: misplaced boxes found with IoU >= 0.5, pairs with a box matching nothing, clean edits
    with any box."""
    from benchmarks.eval_pixel_edit import _defaults, score_boxes

    torch.set_num_threads(1)
    pairs = realistic_cohort(9821, 8, None)
    d = _defaults()
    assert d["copy_blocks"], "the block search is on in the judge"
    found = stray = 0
    for p in pairs["misplaced"]:
        ious = [_iou(b, p.boxes[0]) for b in score_boxes(p, d)]
        found += any(v >= 0.5 for v in ious)
        stray += any(v < 0.5 for v in ious)
    clean = sum(bool(score_boxes(p, d)) for p in pairs["clean"])
    print("realistic 9821: found, n, pairs with a stray box, clean edits with a box:", found, 8, stray, clean)
    return {"found": found, "n": 8, "stray": stray, "clean": clean}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_processed_copies_inside_an_edit_are_boxed_and_clean_edits_are_not(realistic_9821):
    """Recall and clean edits on seed 9821 (fixture above). The floors were set before the seed was run,
    below the calibration rates (realistic 201-204: 38/48 found, clean edits with a box 0/48); measured 5/8
    found, clean 0/8. docs/pixel.md (twelfth sitting) has the rates over more pairs."""
    r = realistic_9821
    assert r["found"] >= 5 and r["clean"] <= 1, r


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.xfail(strict=True, reason="measured 4 of 8 pairs with a stray box on seed 9821 (calibration "
                   "5/48, fresh 9811-9812 5/24): sources taken for the copy, partial and displaced boxes")
def test_processed_copies_inside_an_edit_leave_few_stray_boxes(realistic_9821):
    """Pairs with a box matching nothing on seed 9821: at most 3 of 8 was set before the seed was run (it
    failed: 4 of 8); a strict expected failure until the stray boxes are fewer."""
    assert realistic_9821["stray"] <= 3, realistic_9821


def test_a_phase_box_touching_a_copy_box_is_cut_to_the_copy_box_reach():
    """The thirteenth sitting's rule (``judge_against_input(copy_reach=8)``): a copy's lattice phase departs
    beyond the copy by the demodulation window's reach, so a phase component touching a copy box is cut to
    within ``copy_reach`` px of it; a phase component apart from every copy box is left as it is."""
    from trackdiag.functional.pixel_judge import _clip_touching

    phase = torch.zeros(1, 64, 96, dtype=torch.bool)
    phase[0, 10:40, 10:60] = True  # runs on 30 px beyond the copy box on its right
    phase[0, 50:60, 80:90] = True  # apart
    copy = torch.zeros_like(phase)
    copy[0, 12:38, 12:30] = True
    out = _clip_touching(phase, copy, 8)
    ys, xs = torch.nonzero(out[0, :45], as_tuple=True)
    assert (int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())) == (10, 39, 10, 37)
    assert bool(out[0, 50:60, 80:90].all())
    assert int(out.sum()) == 30 * 28 + 100


def test_a_resampled_copy_whose_phase_box_runs_on_is_boxed_at_the_copy():
    """Calibration seed 203, realistic cohort, iteration 4 (a resampled copy): its phase box runs on 30 px
    beyond the copy and, merged with the copy box, was drawn too large (IoU 0.42, ``copy_reach=0``); cut to
    the copy box's reach it is found (IoU >= 0.5; docs/pixel.md, thirteenth sitting)."""
    from benchmarks.eval_pixel_edit import _defaults, score_boxes

    torch.set_num_threads(1)
    p = realistic_cohort(203, 5, None)["misplaced"][4]
    d = _defaults()
    assert max((_iou(b, p.boxes[0]) for b in score_boxes(p, d)), default=0.0) >= 0.5


def test_pieces_the_cut_leaves_apart_from_the_copy_box_are_dropped():
    """A phase component that reaches the copy box's reach only through a corner: the pieces the cut leaves
    apart from the copy box are dropped, not drawn as boxes of their own."""
    from trackdiag.functional.pixel_judge import _clip_touching

    phase = torch.zeros(1, 40, 60, dtype=torch.bool)
    phase[0, 10:20, 10:20] = True  # touches the copy box
    phase[0, 20:32, 10:12] = True  # an arm leaving the reach (rows >= 26) ...
    phase[0, 30:32, 10:26] = True
    phase[0, 22:32, 24:26] = True  # ... and coming back into it, apart from the copy box once cut
    copy = torch.zeros_like(phase)
    copy[0, 12:18, 12:20] = True
    out = _clip_touching(phase, copy, 8)
    assert bool(out[0, 10:26, 10:12].all()) and bool(out[0, 10:20, 10:20].all())
    assert not bool(out[0, 22:26, 24:26].any())
    assert not bool(out[0, 26:].any())
