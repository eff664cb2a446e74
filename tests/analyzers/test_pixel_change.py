"""Change against the change the local texture explains: unit truths of trackdiag.functional.pixel_change."""

from __future__ import annotations

import numpy as np
import torch

from trackdiag.analyzers.pixel import label_components
from trackdiag.functional.pixel_change import QUANT_FLOOR, close_hot, expected_change, relative_change


def _texture(seed: int, n: int = 96) -> torch.Tensor:
    """Half flat, half busy (checker of random cells): texture-dependent error is larger on the busy half."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, n, n), 0.5)
    cells = torch.rand(1, n // 4, n // 8, generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    x[:, :, n // 2:] = 0.2 + 0.6 * cells
    return x


def test_texture_dependent_error_is_explained_and_a_patch_is_not():
    x = _texture(0)
    g = torch.Generator().manual_seed(1)
    busy = (x - torch.nn.functional.avg_pool2d(x[:, None], 3, 1, 1, count_include_pad=False)[:, 0]).abs()
    err = (0.002 + 0.2 * busy) * torch.randn(x.shape, generator=g)  # compression-like: at the edges
    region = torch.ones_like(x, dtype=torch.bool)
    clean = relative_change(err, x, region)
    assert float(clean[:, 8:-8, 8:-8].amax()) < 3.0  # the busy half is explained by its own bin
    raw = err.abs()[:, :, 48:].mean() / err.abs()[:, :, :48].mean()
    assert raw > 5  # while the raw change is many times larger there
    bad = err.clone()
    bad[:, 30:60, 10:40] += 0.05 * torch.randn(1, 30, 30, generator=g)  # a patch on the flat half
    rel = relative_change(bad, x, region)
    assert float(rel[:, 35:55, 15:35].amin()) > 6.0
    assert float(torch.cat([rel[:, 8:22, 8:-8], rel[:, 70:-8, 8:-8]], 1).amax()) < 3.0


def test_expected_change_has_the_quantisation_floor_and_bins_by_activity():
    change = torch.zeros(1, 32, 32)
    act = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    region = torch.ones(1, 32, 32, dtype=torch.bool)
    assert torch.all(expected_change(change, act, region) == QUANT_FLOOR)
    change = act * 10  # the change rises with activity: each bin's median follows it
    exp = expected_change(change, act, region, bins=16)
    assert float((exp / change.clamp_min(1e-3) - 1).abs()[act > 0.2].max()) < 0.35


def test_closing_joins_a_broken_defect_and_boxes_shrink_by_the_margin():
    score = torch.zeros(1, 64, 64)
    score[0, 10:40, 10:22] = 8.0
    score[0, 10:40, 25:40] = 8.0  # the same defect, broken by a 3-px flat strip
    closed = close_hot(score, torch.tensor([3.0]), close_px=5)
    assert float(closed[0, 20, 23]) > 3.0 and float(closed[0, 50, 50]) == 0.0
    hot = (closed > 3.0).float()
    grid = np.stack([hot[0].numpy(), (closed * hot)[0].numpy(), (closed * hot)[0].numpy()])
    comps = label_components(grid, stride=1, height=64, width=64, margin=2)
    assert [(c.x0, c.y0, c.x1, c.y1) for c in comps] == [(12, 12, 38, 38)]
    assert label_components(grid, stride=1, height=64, width=64, min_peak=9.0) == []
