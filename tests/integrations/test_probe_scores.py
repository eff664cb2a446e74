"""The probe's score adapter and EQ-T, against ground truth (fast, pure torch).

The scores are the tiling diagnosis's estimators (issue 17), with its limits: ``grid_s16`` needs 32 valid
16-px blocks (images of 128 px and more), an edge artifact is a stripe 3–12 px wide along a whole side,
and a mask seam is a halo just inside the mask contour.
"""

from __future__ import annotations

import math

import pytest
import torch

from trackdiag.probe import LIMITS, eq_t, masked_psnr, translate
from trackdiag.probe.attribute import attribute
from trackdiag.probe.scores import artifact_scores
from trackdiag.testing.tiny_models import add_grid, grid_texture

WARN = LIMITS["grid"][0]


def _textures(n: int, size: int = 128, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = grid_texture(1, size, seed=seed * 100 + i)
        out.append((x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1))
    return out


def test_grid_scores_detect_lattices_by_stride_with_few_false_alarms():
    """12 textures per case, grid phase varies: recall per amplitude and false alarms on clean textures."""
    clean = _textures(12)
    fa8 = sum(artifact_scores(x, checkerboard=False)["grid_s8"] >= WARN for x in clean)
    fa16 = sum(artifact_scores(x, checkerboard=False)["grid_s16"] >= WARN for x in clean)
    assert fa8 == 0 and fa16 <= 1, (fa8, fa16)
    for k in (8, 16):
        strong = [
            artifact_scores(add_grid(x, k, 0.04, phase=i % k), checkerboard=False)
            for i, x in enumerate(clean)
        ]
        recall = sum(s[f"grid_s{k}"] >= WARN for s in strong) / len(strong)
        assert recall == 1.0, (k, recall)
        # the right stride is the strongest: a 16-px grid half-shows at 8 px, an 8-px grid not at 16 px
        other = 16 if k == 8 else 8
        assert all(s[f"grid_s{k}"] > s[f"grid_s{other}"] for s in strong)
    weak = [
        artifact_scores(add_grid(x, 8, 0.02, phase=i % 8), checkerboard=False)["grid_s8"]
        for i, x in enumerate(clean)
    ]
    assert sum(w >= WARN for w in weak) >= 9  # 2 % lines on 3 % noise: most are found


def test_checkerboard_period_does_not_count_as_grid():
    x = _textures(1)[0]
    cb = ((torch.arange(128)[:, None] + torch.arange(128)[None, :]) % 2).float()
    s = artifact_scores((x + 0.05 * cb).clamp(0, 1), checkerboard=False)
    assert s["grid_s8"] < WARN and s["grid_s16"] < WARN


def test_edge_and_seam_scores():
    """A stripe along one side is found on that side only; a halo inside the mask contour is a seam, a
    wall without one is not (the wall being brighter than its surroundings is content, not a seam)."""
    x = _textures(1)[0]
    striped = x.clone()
    striped[..., :, :4] = (striped[..., :, :4] + 0.15).clamp(0, 1)  # a 4-px bright stripe at the left
    s = artifact_scores(striped, checkerboard=False)
    assert s["edge_left"] > LIMITS["edge"][0], s
    assert max(s["edge_right"], s["edge_top"], s["edge_bottom"]) < LIMITS["edge"][0], s
    assert max(artifact_scores(x, checkerboard=False)[f"edge_{sd}"]
               for sd in ("left", "right", "top", "bottom")) < LIMITS["edge"][0]
    mask = torch.zeros(128, 128)
    mask[20:108, 30:100] = 1
    brighter = x.clone()
    brighter[..., 20:108, 30:100] = (brighter[..., 20:108, 30:100] + 0.2).clamp(0, 1)
    halo = brighter.clone()
    inner = -torch.nn.functional.max_pool2d(-mask[None, None], 7, stride=1, padding=3)[0, 0]
    ring = mask.bool() & ~inner.bool()
    halo[..., ring] = (halo[..., ring] + 0.2).clamp(0, 1)  # the 3 px inside the contour are brighter
    assert artifact_scores(halo, mask, checkerboard=False)["mask_seam_score"] > LIMITS["seam"][1]
    assert artifact_scores(brighter, mask, checkerboard=False)["mask_seam_score"] < LIMITS["seam"][0]
    assert artifact_scores(x, mask, checkerboard=False)["mask_seam_score"] < LIMITS["seam"][0]


def test_translate_is_an_ideal_shift():
    n = 64
    xs = torch.arange(n, dtype=torch.float64)
    f = 5 / n
    x = torch.cos(2 * math.pi * f * xs)[None, None, None, :].expand(1, 1, 4, n)
    y = translate(x, 0.0, 0.5)
    want = torch.cos(2 * math.pi * f * (xs - 0.5))
    assert torch.allclose(y[0, 0, 0], want, atol=1e-9)
    assert torch.equal(translate(x, 0, 3), torch.roll(x, 3, dims=-1))


def test_masked_psnr_uses_only_valid_pixels():
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    b[..., :, :4] = 1.0  # wrong everywhere outside the valid half
    b[..., :, 4:] = 0.1
    valid = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    valid[..., :, 4:] = True
    psnr, mse = masked_psnr(b, a, valid)
    assert mse == pytest.approx(0.01) and psnr == pytest.approx(20.0)


def test_eq_t_equivariant_edit_versus_a_lattice_pinned_edit():
    x = _textures(2, size=64, seed=3)
    x = torch.cat(x)

    def blur(im):  # circular 3×3 blur: exactly shift-equivariant
        k = torch.ones(3, 1, 3, 3) / 9
        return torch.nn.functional.conv2d(
            torch.nn.functional.pad(im, (1, 1, 1, 1), mode="circular"), k, groups=3
        )

    def pinned(im):  # 2×2 block average, then nearest upsampling: pinned to the 2-px lattice
        return torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(im, 2), scale_factor=2)

    good = eq_t(blur, x, lattice=2)
    assert min(good.by_kind.values()) > 50
    bad = eq_t(pinned, x, lattice=2, shifts=((0, 1), (1, 0), (1, 3), (0, 2), (2, 4)))
    assert bad.by_kind["lattice"] > 60 and bad.by_kind["whole"] < 40
    assert [v.code for v in attribute(eq=bad)] == ["probe_edit_lattice"]
    assert attribute(eq=good) == []
