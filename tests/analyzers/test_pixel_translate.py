"""The lattice-translate residual of a texture's edge image (trackdiag/functional/pixel_translate.py)."""

from __future__ import annotations

import numpy as np
import torch

from trackdiag.functional.pixel_texture import lattice_vectors
from trackdiag.functional.pixel_translate import edge_magnitude, translate_residual_z, translate_support


def _bricks(rng: np.random.Generator, size: int = 160, course: int = 20, brick: int = 40) -> np.ndarray:
    """``H×W`` running-bond bricks in [0, 1]: faces 0.4 ± noise, mortar lines 0.8 (3 px)."""
    y, x = np.mgrid[:size, :size]
    shift = (y // course) % 2 * (brick // 2)
    mortar = ((y % course) < 3) | (((x + shift) % brick) < 3)
    img = np.where(mortar, 0.8, 0.4) + rng.normal(0, 0.01, (size, size))
    return img.astype(np.float32)


def test_edge_magnitude_of_a_step_is_half_its_height():
    x = torch.zeros(1, 16, 16)
    x[:, :, 8:] = 1.0
    e = edge_magnitude(x)
    assert abs(float(e[0, 8, 8]) - 0.5) < 1e-5 and float(e[0, 8, 2]) == 0.0


def test_a_shifted_patch_breaks_the_lattice_and_the_clean_wall_does_not():
    rng = np.random.default_rng(3)
    img = _bricks(rng)
    region = torch.ones(1, *img.shape, dtype=torch.bool)
    clean = torch.from_numpy(img)[None]
    vec = lattice_vectors(clean, region)
    z_clean = translate_residual_z(clean, region, vec)
    out = img.copy()
    y0, x0, h, w = 60, 60, 40, 40
    out[y0:y0 + h, x0:x0 + w] = np.roll(img[y0:y0 + h, x0:x0 + w], (7, 13), axis=(0, 1))  # half a course off
    shifted = torch.from_numpy(out)[None]
    z = translate_residual_z(shifted, region, vec)
    box = torch.zeros_like(region)
    box[0, y0:y0 + h, x0:x0 + w] = True
    other = torch.zeros_like(region)
    other[0, 10:50, 100:140] = True  # a clean part of the same wall
    both = box | other
    support = translate_support(z, region, both)
    assert float(support[0, y0 + 5, x0 + 5]) >= 1.5, float(support[0, y0 + 5, x0 + 5])
    assert float(support[0, 20, 110]) < 1.0, float(support[0, 20, 110])
    # on the clean wall no place stands out: the box's support is about the wall's mean
    clean_support = translate_support(z_clean, region, box)
    assert float(clean_support[0, y0 + 5, x0 + 5]) < 1.5, float(clean_support[0, y0 + 5, x0 + 5])
    assert float(translate_support(z, region, torch.zeros_like(region)).abs().sum()) == 0.0
