"""Misplaced patches processed after the copy, found by a block search (functional/pixel_blocks.py)."""

from __future__ import annotations

import numpy as np
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
