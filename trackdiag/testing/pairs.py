"""Wall-scene image pairs with a mask and known truth (pixel diagnostics).

A scene is 256² RGB in [0, 1]: a wall (a crop of ``skimage.data.brick``, tinted like brick) inside a
mask (a rectangle-ish region), gravel/grass around it. The output of a pair is either

* **unedited**: the input plus noise, JPEG q85, an exposure change, or a 1-px re-render (shift); or
* **edited**: the wall re-textured (another brick crop, other scale and tint) inside the mask;

and may carry planted faults with their truth: **boxes** (``offset``: content shifted by half a brick,
``smear``: blurred, ``misplaced``: a patch copied from elsewhere), **stripes** (a band of rows or columns
offset by an amplitude 0.04–0.16), and **spills** (the edit extended 4–24 px beyond the mask on one side).

A misplaced patch is a pixel-exact copy by default (``copy_style="exact"``, the noise included). The way an
inpainting model would produce one (:data:`COPY_STYLES`): ``resampled`` (the source warped by a sub-pixel
shift, a scale of 1 ± ≤ 5 % and a rotation of ≤ ±4°, cubic spline), ``blended`` (pasted with a linear
alpha ramp of 3–8 px inside its border), ``inpainted`` (both, plus fresh noise of σ 0.003–0.01 over the
patch). ``jpeg_quality`` re-compresses the whole output at the end (any pair, clean ones too).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

__all__ = ["Pair", "wall_scene", "make_pair", "UNEDITED_KINDS", "COPY_STYLES"]

UNEDITED_KINDS = ("noise", "jpeg", "exposure", "rerender")
#: How a misplaced patch is copied (:func:`make_pair`'s ``copy_style``).
COPY_STYLES = ("exact", "resampled", "blended", "inpainted")


@dataclass
class Pair:
    """``inp``/``out``: ``H×W×3`` float32 in [0, 1]; ``mask``: ``H×W`` bool (True = wall); truth fields."""

    inp: np.ndarray
    out: np.ndarray
    mask: np.ndarray
    kind: str
    edited: bool
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (x0, y0, x1, y1)
    box_kinds: list[str] = field(default_factory=list)
    #: per box, where a ``misplaced`` patch was copied from (``(x0, y0, x1, y1)``, before its flip and warp)
    #: and how it was flipped (``rot180`` / ``flip_y``); None for other kinds
    box_sources: list[Optional[tuple[tuple[int, int, int, int], str]]] = field(default_factory=list)
    stripe_axis: Optional[str] = None  # "rows" / "cols"
    stripe_band: Optional[tuple[int, int]] = None
    spill_px: int = 0


def _texture(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)().astype(np.float32) / 255.0


def _crop_scaled(rng: np.random.Generator, img: np.ndarray, size: int, scale: float) -> np.ndarray:
    from scipy.ndimage import zoom

    src = min(int(np.ceil(size / scale)) + 2, min(img.shape[:2]))  # never larger than the photograph
    y0 = int(rng.integers(0, img.shape[0] - src + 1))
    x0 = int(rng.integers(0, img.shape[1] - src + 1))
    crop = zoom(img[y0:y0 + src, x0:x0 + src], max(scale, size / src), order=1)
    return crop[:size, :size]


def _tint(gray: np.ndarray, color: np.ndarray, contrast: float = 1.0) -> np.ndarray:
    g = (gray - gray.mean()) * contrast + 0.5
    return np.clip(g[..., None] * color[None, None, :] * 1.6, 0, 1).astype(np.float32)


def _wall(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    color = np.array([0.75, 0.42, 0.32]) * rng.uniform(0.8, 1.2, 3)
    return _tint(_crop_scaled(rng, _texture("brick"), size, scale), color, rng.uniform(0.9, 1.4))


def wall_scene(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(image ``H×W×3``, mask ``H×W`` bool): a brick wall in a random rectangle, gravel/grass around it."""
    bg = _tint(_crop_scaled(rng, _texture(str(rng.choice(["gravel", "grass"]))), size, 0.7),
               np.array([0.5, 0.55, 0.45]) * rng.uniform(0.8, 1.2, 3), 0.8)
    wall = _wall(rng, size, rng.uniform(0.5, 0.6))
    mask = np.zeros((size, size), bool)
    y0, x0 = rng.integers(size // 10, size // 4, 2)
    y1, x1 = size - rng.integers(size // 10, size // 4, 2)
    mask[y0:y1, x0:x1] = True
    return np.where(mask[..., None], wall, bg).astype(np.float32), mask


def _jpeg(img: np.ndarray, quality: int = 85) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf), dtype=np.float32) / 255.0


def _unedited(rng: np.random.Generator, img: np.ndarray, kind: str) -> np.ndarray:
    if kind == "noise":
        return np.clip(img + rng.normal(0, rng.uniform(0.005, 0.02), img.shape), 0, 1).astype(np.float32)
    if kind == "jpeg":
        return _jpeg(img, 85)
    if kind == "exposure":
        return np.clip(img * rng.uniform(0.85, 1.15) + rng.uniform(-0.03, 0.03), 0, 1).astype(np.float32)
    if kind == "rerender":  # a 1-px re-render: the scene moved by one pixel, plus slight noise
        dy, dx = [(0, 1), (1, 0), (1, 1), (0, -1)][int(rng.integers(4))]
        moved = np.roll(img, (dy, dx), axis=(0, 1))
        return np.clip(moved + rng.normal(0, 0.004, img.shape), 0, 1).astype(np.float32)
    raise ValueError(kind)


def _resampled(rng: np.random.Generator, img: np.ndarray, sy: int, sx: int, bh: int, bw: int) -> np.ndarray:
    """``bh×bw×3``: the source box of ``img`` at ``(sy, sx)`` warped about its centre by a sub-pixel shift
    (±0.5 px), a scale of 1 ± ≤ 5 % and a rotation of ≤ ±4° (cubic spline; beyond the frame: nearest)."""
    from scipy.ndimage import affine_transform

    ang = np.deg2rad(rng.uniform(-4, 4))
    scale = 1.0 + rng.uniform(-0.05, 0.05)
    shift = rng.uniform(-0.5, 0.5, 2)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]]) / scale
    centre = np.array([(bh - 1) / 2.0, (bw - 1) / 2.0])
    src_centre = np.array([sy, sx]) + centre + shift
    offset = src_centre - rot @ centre
    return np.stack([affine_transform(img[..., c], rot, offset=offset, output_shape=(bh, bw), order=3,
                                      mode="nearest") for c in range(img.shape[2])], axis=-1)


def _plant_box(rng: np.random.Generator, out: np.ndarray, mask: np.ndarray, kind: str,
               copy_style: str = "exact"
               ) -> tuple[tuple[int, int, int, int], Optional[tuple[tuple[int, int, int, int], str]]]:
    from scipy.ndimage import gaussian_filter

    ys, xs = np.nonzero(mask)
    bh, bw = (int(v) for v in rng.integers(28, 56, 2))
    y0 = int(rng.integers(ys.min() + 4, max(ys.min() + 5, ys.max() - bh - 4)))
    x0 = int(rng.integers(xs.min() + 4, max(xs.min() + 5, xs.max() - bw - 4)))
    y1, x1 = y0 + bh, x0 + bw
    region = out[y0:y1, x0:x1].copy()
    source = None
    if kind == "offset":
        dy, dx = int(rng.integers(5, 10)), int(rng.integers(7, 14))
        out[y0:y1, x0:x1] = np.roll(region, (dy, dx), axis=(0, 1))
    elif kind == "smear":
        out[y0:y1, x0:x1] = gaussian_filter(region, sigma=(3.0, 3.0, 0))
    elif kind == "misplaced":
        sy = int(rng.integers(ys.min(), ys.max() - bh))
        sx = int(rng.integers(xs.min(), xs.max() - bw))
        flip_both = rng.random() < 0.5
        if copy_style == "exact":
            patch = out[sy:sy + bh, sx:sx + bw].copy()
        else:
            patch = _resampled(rng, out, sy, sx, bh, bw) if copy_style != "blended" else \
                out[sy:sy + bh, sx:sx + bw].copy()
        patch = np.rot90(patch, 2) if flip_both else patch[::-1]
        if copy_style in ("blended", "inpainted"):
            ramp = float(rng.uniform(3, 8))
            ry = np.minimum(np.arange(bh), np.arange(bh)[::-1]) + 0.5
            rx = np.minimum(np.arange(bw), np.arange(bw)[::-1]) + 0.5
            alpha = np.clip(np.minimum(ry[:, None], rx[None, :]) / ramp, 0, 1)[..., None]
            patch = alpha * patch + (1 - alpha) * region
        if copy_style == "inpainted":
            patch = patch + rng.normal(0, rng.uniform(0.003, 0.01), patch.shape)
        out[y0:y1, x0:x1] = np.clip(patch, 0, 1)
        source = ((sx, sy, sx + bw, sy + bh), "rot180" if flip_both else "flip_y")
    else:
        raise ValueError(kind)
    return (x0, y0, x1, y1), source


def make_pair(rng: np.random.Generator, *, edited: bool = False, kind: Optional[str] = None,
              box: Optional[str] = None, stripe: Optional[tuple[Literal["rows", "cols"], float]] = None,
              spill_px: int = 0, size: int = 256, copy_style: str = "exact",
              jpeg_quality: Optional[int] = None) -> Pair:
    """One pair with known truth.

    Args:
        edited: the wall is re-textured in the output (else the output is an unedited ``kind`` copy).
        kind: the unedited change (``noise``, ``jpeg``, ``exposure``, ``rerender``); random when None.
        box: plant a defect box (``offset``, ``smear``, ``misplaced``) inside the wall of the output.
        stripe: ``(axis, amplitude)``: a band of 3–8 rows (or columns) across the wall offset by
            ``±amplitude``.
        spill_px: the edit (or, unedited, a re-textured strip) spills this many px beyond the mask on one
            side.
        copy_style: how a ``misplaced`` box is copied (:data:`COPY_STYLES`; ``exact``: pixel-exact, the
            draws of earlier versions for the same seed).
        jpeg_quality: re-compress the output as JPEG at this quality at the end (None: not).
    """
    if copy_style not in COPY_STYLES:
        raise ValueError(f"copy_style must be one of {COPY_STYLES}; got {copy_style!r}")
    img, mask = wall_scene(rng, size)
    kind = kind or str(rng.choice(UNEDITED_KINDS))
    if edited:
        new = _wall(rng, size, rng.uniform(0.65, 0.9))
        out = np.where(mask[..., None], new, img)
        out = _unedited(rng, out, "noise")
        kind = "edited"
    else:
        out = _unedited(rng, img, kind)
        new = _wall(rng, size, rng.uniform(0.65, 0.9))
    pair = Pair(img, out.astype(np.float32), mask, kind, edited)
    if box:
        planted, source = _plant_box(rng, pair.out, mask, box, copy_style)
        pair.boxes.append(planted)
        pair.box_sources.append(source)
        pair.box_kinds.append(box)
    if stripe:
        axis, amp = stripe
        ys, xs = np.nonzero(mask)
        lo, hi = (ys.min(), ys.max()) if axis == "rows" else (xs.min(), xs.max())
        width = int(rng.integers(3, 9))
        a = int(rng.integers(lo + 8, hi - 8 - width))
        sign = rng.choice([-1.0, 1.0])
        if axis == "rows":
            sl = (slice(a, a + width), slice(xs.min(), xs.max() + 1))
        else:
            sl = (slice(ys.min(), ys.max() + 1), slice(a, a + width))
        pair.out[sl] = np.clip(pair.out[sl] + sign * amp, 0, 1)
        pair.stripe_axis, pair.stripe_band = axis, (a, a + width)
    if spill_px:
        ys, xs = np.nonzero(mask)
        side = int(rng.integers(4))
        spill = np.zeros_like(mask)
        if side == 0:
            spill[max(0, ys.min() - spill_px):ys.min(), xs.min():xs.max() + 1] = True
        elif side == 1:
            spill[ys.max() + 1:ys.max() + 1 + spill_px, xs.min():xs.max() + 1] = True
        elif side == 2:
            spill[ys.min():ys.max() + 1, max(0, xs.min() - spill_px):xs.min()] = True
        else:
            spill[ys.min():ys.max() + 1, xs.max() + 1:xs.max() + 1 + spill_px] = True
        pair.out = np.where(spill[..., None], new, pair.out).astype(np.float32)
        pair.spill_px = spill_px
    if jpeg_quality is not None:
        pair.out = _jpeg(pair.out, int(jpeg_quality))
    return pair
