"""Misplaced patches found by their repeated grain (trackdiag/functional/pixel_copy.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from trackdiag.functional.pixel_copy import copy_boxes, copy_pairs
from trackdiag.functional.pixel_phase import phase_departure
from trackdiag.testing.pairs import make_pair

SRC = (20, 90, 56, 130)  # y0, x0, y1, x1
DST = (96, 30, 132, 70)


def _bricks(rng: np.random.Generator, size: int = 160, course: int = 20, brick: int = 40) -> np.ndarray:
    """``H×W`` running-bond bricks in [0, 1]: faces 0.4 ± 0.05 per brick, mortar 0.8 (3 px), grain σ 0.02."""
    y, x = np.mgrid[:size, :size]
    shift = (y // course) % 2 * (brick // 2)
    mortar = ((y % course) < 3) | (((x + shift) % brick) < 3)
    face = 0.4 + rng.uniform(-0.05, 0.05, (size // course + 1, size // brick + 2))
    img = np.where(mortar, 0.8, face[y // course, (x + shift) // brick]) + rng.normal(0, 0.02, (size, size))
    return img.astype(np.float32)


def _with_copy(img: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[DST[0]:DST[2], DST[1]:DST[3]] = np.rot90(img[SRC[0]:SRC[2], SRC[1]:SRC[3]], 2)
    return out


def _box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    iy = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ix = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_flipped_copy_is_found_with_its_source_and_a_clean_wall_has_none():
    rng = np.random.default_rng(5)
    img = _bricks(rng)
    region = torch.ones(2, *img.shape, dtype=torch.bool)
    batch = torch.from_numpy(np.stack([img, _with_copy(img)]))
    pairs = copy_pairs(batch, region)
    assert pairs[0] == [], "a clean wall repeats its bricks, never its grain"
    assert len(pairs[1]) == 1, len(pairs[1])
    a, b = (_box(m) for m in pairs[1][0])
    got = sorted([a, b])
    want = sorted([DST, SRC])
    # the 9-px window reads the copy ~2 px inside its border
    assert all(_iou(g, w) >= 0.7 for g, w in zip(got, want, strict=True)), (got, want)


def test_a_straight_line_that_a_flip_maps_onto_itself_is_no_copy():
    """Columns constant along y (straight vertical mortar lines) match themselves under a top-down flip;
    the grain differs, and the neighbour baseline (2 px along the line) keeps them at ≈ 1."""
    rng = np.random.default_rng(6)
    x = np.arange(128)
    profile = np.where((x % 24) < 4, 0.8, 0.4)
    img = (np.tile(profile, (128, 1)) + rng.normal(0, 0.01, (128, 128))).astype(np.float32)
    pairs = copy_pairs(torch.from_numpy(img)[None], torch.ones(1, 128, 128, dtype=torch.bool))
    assert pairs[0] == []


def test_the_copy_is_the_member_whose_phase_departs_more():
    rng = np.random.default_rng(7)
    out = torch.from_numpy(_with_copy(_bricks(rng)))[None]
    region = torch.ones_like(out, dtype=torch.bool)
    for chosen, other in ((DST, SRC), (SRC, DST)):
        dep = torch.full_like(out, 5.0)
        dep[0, chosen[0]:chosen[2], chosen[1]:chosen[3]] = 20.0  # within the wall's irregularity
        boxes = copy_boxes(out, region, dep)
        assert _iou(_box(boxes[0]), chosen) >= 0.8, (_box(boxes[0]), chosen)
        assert not bool(boxes[0, other[0] + 4:other[2] - 4, other[1] + 4:other[3] - 4].any())


def test_a_copy_with_fresh_noise_on_top_is_still_found():
    """The grain repeats, not the exact pixels: fresh noise of a quarter of the grain (σ 0.005) over the
    whole output keeps the copy below the level (a re-encoded copy is not bit-exact)."""
    rng = np.random.default_rng(8)
    out = _with_copy(_bricks(rng)) + rng.normal(0, 0.005, (160, 160)).astype(np.float32)
    pairs = copy_pairs(torch.from_numpy(out)[None], torch.ones(1, 160, 160, dtype=torch.bool))
    assert len(pairs[0]) == 1 and max(_iou(_box(m), DST) for m in pairs[0][0]) >= 0.6, len(pairs[0])


def _boxes_of(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    lab, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    return [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(lab) if s]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_copied_grain_finds_misplaced_boxes_inside_an_edit_and_no_box_on_clean_edits():
    """The copy step alone on generated edited pairs (``trackdiag.testing.pairs``, seed 9520, never used to
    set a level; the floors were set before it was run, below the calibration figure of the copy step
    alone, 17/24 on seeds 201-202): misplaced boxes found with IoU >= 0.5 and clean edits with a copy box.
    Measured here: 9/10 found (1 pair with a stray box), clean edits with a copy box 0/10. The misses
    elsewhere are copies that overlapped their source (only the part of each that was not overwritten
    repeats), a source taken for the copy and copies with no repeat found (docs/pixel.md, ninth
    sitting)."""
    rng = np.random.default_rng(9520)
    found = n = false = clean_boxes = 0
    for _ in range(10):
        for box in ("misplaced", None):
            p = make_pair(rng, edited=True, box=box)
            out = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
            unclipped = ((out > 0.01) & (out < 0.99)).all(dim=1)
            own, mask = out.mean(dim=1), torch.from_numpy(p.mask)[None]
            dep = phase_departure(own, mask, coherent=6.0)
            boxes = _boxes_of((copy_boxes(own, mask & unclipped, dep) & mask)[0].numpy())
            if box is None:
                clean_boxes += bool(boxes)
                continue
            x0, y0, x1, y1 = p.boxes[0]
            ious = [_iou((b[1], b[0], b[3], b[2]), (y0, x0, y1, x1)) for b in boxes]
            n += 1
            found += any(v >= 0.5 for v in ious)
            false += any(v < 0.5 for v in ious)
    print("copy step, seed 9520: found, n, pairs with a stray box, clean edits with a box:", found, n, false,
          clean_boxes)
    assert found >= 0.6 * n and clean_boxes <= 1, (found, n, false, clean_boxes)
