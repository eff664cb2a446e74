"""Artifacts made by their mechanism, acting on rendered ``H×W×3`` float32 images in [0, 1].

* :func:`deconv_upsample`: a real ``nn.ConvTranspose2d(k=3, s=2)`` whose taps give the odd output parities a
  gain ``1 + delta`` against the even ones (a checkerboard); :func:`bilinear_upsample` is its clean twin.
* :func:`block_grid`: VAE-style block offsets on a ``k``-px lattice aligned to the frame, optionally with 1-px
  seam lines, scaled to a given rms.
* :func:`edge_stripe`: a stripe on one edge of the image.
* :func:`mask_seam`: a halo along the inside of the wall mask's contour.
* :func:`stride`, :func:`antialiased_down`: strided subsampling (aliasing) and its antialiased twin.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "add_grain",
    "antialiased_down",
    "area_down",
    "bilinear_upsample",
    "block_grid",
    "deconv_upsample",
    "edge_stripe",
    "jpeg",
    "mask_seam",
    "stride",
]


def _to_t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float()


def _to_np(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)


def deconv_upsample(img: np.ndarray, delta: float) -> np.ndarray:
    """×2 upsampling by ``nn.ConvTranspose2d(3, 3, kernel_size=3, stride=2, groups=3)``.

    Separable taps ``[a, 1, a]`` with ``2a = 1 + delta``: an even output row/column gets gain 1, an odd one
    ``1 + delta`` (the parity gain imbalance), renormalised so that the mean gain is 1. ``h×w×3`` →
    ``2h×2w×3``.
    """
    a = (1.0 + delta) / 2.0
    k1 = torch.tensor([a, 1.0, a])
    norm = ((1.0 + (1.0 + delta)) / 2.0) ** 2
    w = (torch.outer(k1, k1) / norm).expand(3, 1, 3, 3).clone()
    conv = torch.nn.ConvTranspose2d(3, 3, kernel_size=3, stride=2, padding=1, output_padding=1, groups=3,
                                    bias=False)
    with torch.no_grad():
        conv.weight.copy_(w)
        x = F.pad(_to_t(img), (0, 1, 0, 1), mode="replicate")
        y = conv(x)
    h, w_ = img.shape[:2]
    return _to_np(y[..., :2 * h, :2 * w_])


def bilinear_upsample(img: np.ndarray) -> np.ndarray:
    """×2 bilinear upsampling (the checkerboard's clean twin). ``h×w×3`` → ``2h×2w×3``."""
    with torch.no_grad():
        y = F.interpolate(_to_t(img), scale_factor=2, mode="bilinear", align_corners=False)
    return _to_np(y)


def block_grid(shape: tuple[int, int], rng: np.random.Generator, *, stride: int, rms: float,
               seams: bool) -> np.ndarray:
    """Additive ``H×W×3`` field: per-block offsets on a ``stride``-px lattice from the frame origin
    (mostly luminance, some chroma) plus, when ``seams``, 1-px lines on the lattice; total rms ``rms``."""
    h, w = shape
    bh, bw = -(-h // stride), -(-w // stride)
    lum = rng.normal(size=(bh, bw, 1))
    chroma = rng.normal(size=(bh, bw, 3)) * 0.35
    blocks = (lum + chroma).astype(np.float32)
    field = np.repeat(np.repeat(blocks, stride, axis=0), stride, axis=1)[:h, :w]
    if seams:
        line = np.zeros((h, w, 1), np.float32)
        rows = rng.normal(1.0, 0.5, size=bh).astype(np.float32) * rng.choice([-1.0, 1.0])
        cols = rng.normal(1.0, 0.5, size=bw).astype(np.float32) * rng.choice([-1.0, 1.0])
        line[::stride, :, 0] += rows[:, None] * 2.0
        line[:, ::stride, 0] += cols[None, :] * 2.0
        field = field + line
    field -= field.mean(axis=(0, 1), keepdims=True)
    return (field * (rms / float(np.sqrt((field ** 2).mean())))).astype(np.float32)


def edge_stripe(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, object]]:
    """A stripe 3–12 px wide on one side: a colour offset, a smear of one line, or fine stripes."""
    out = img.copy()
    side = str(rng.choice(["left", "right", "top", "bottom"]))
    width = int(rng.integers(3, 13))
    kind = str(rng.choice(["offset", "smear", "stripes"]))
    view = {"left": (slice(None), slice(0, width)), "right": (slice(None), slice(-width, None)),
            "top": (slice(0, width), slice(None)), "bottom": (slice(-width, None), slice(None))}[side]
    strip = out[view]
    if kind == "offset":
        strip = strip * float(rng.uniform(0.85, 0.93) if rng.random() < 0.5 else rng.uniform(1.07, 1.15))
        strip = strip + rng.uniform(-0.04, 0.04, 3).astype(np.float32)
    elif kind == "smear":
        if side in ("left", "right"):
            src = out[:, width:width + 1] if side == "left" else out[:, -width - 1:-width]
            strip = np.repeat(src, width, axis=1)
        else:
            src = out[width:width + 1] if side == "top" else out[-width - 1:-width]
            strip = np.repeat(src, width, axis=0)
    else:
        amp = float(rng.uniform(0.05, 0.12))
        n = strip.shape[0] if side in ("left", "right") else strip.shape[1]
        pat = (np.arange(n) % 2 * 2 - 1).astype(np.float32) * amp
        strip = strip + (pat[:, None, None] if side in ("left", "right") else pat[None, :, None])
    out[view] = strip
    return np.clip(out, 0, 1), {"side": side, "width": width, "kind": kind}


def mask_seam(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, dict[str, object]]:
    """A halo 2–5 px wide along the inside of the mask contour: a brightness and colour offset of 6–15 %."""
    from scipy.ndimage import distance_transform_edt

    width = float(rng.uniform(2, 5))
    dist = distance_transform_edt(mask)
    # the frame border is not a contour: measure the distance with the mask padded by wall
    pad = np.pad(mask, 1, mode="edge")
    dist = distance_transform_edt(pad)[1:-1, 1:-1]
    ring = np.clip((width + 0.5 - dist) / 1.0, 0, 1) * mask
    amp = float(rng.uniform(0.06, 0.15)) * (1 if rng.random() < 0.5 else -1)
    tint = rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    out = img * (1 + amp * ring[..., None]) + tint * ring[..., None]
    return np.clip(out, 0, 1).astype(np.float32), {"width": width, "amp": amp}


def stride(img: np.ndarray, k: int) -> np.ndarray:
    """Keep every ``k``-th pixel (no antialiasing)."""
    return np.ascontiguousarray(img[::k, ::k])


def area_down(img: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``k×k`` blocks (antialiased decimation). ``H×W×3`` with ``H``, ``W`` multiples of ``k``."""
    h, w, c = img.shape
    return img[:h - h % k, :w - w % k].reshape(h // k, k, w // k, k, c).mean(axis=(1, 3)).astype(np.float32)


def antialiased_down(img: np.ndarray, k: int) -> np.ndarray:
    """Decimation by ``k`` with an antialiasing filter: a Gaussian of ``0.6 k`` px, then ``k×k`` means
    (together about 0.1 of the amplitude left at the new Nyquist frequency)."""
    from scipy.ndimage import gaussian_filter

    return area_down(gaussian_filter(img, sigma=(0.6 * k, 0.6 * k, 0)).astype(np.float32), k)


def add_grain(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Photographic grain: luminance noise (stronger in the darks) plus a little chroma noise."""
    h, w = img.shape[:2]
    lum = rng.normal(size=(h, w, 1)).astype(np.float32)
    chroma = rng.normal(size=(h, w, 3)).astype(np.float32) * 0.3
    scale = sigma * (1.3 - 0.6 * img.mean(axis=-1, keepdims=True))
    return np.clip(img + scale * (lum + chroma), 0, 1).astype(np.float32)


def jpeg(img: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """JPEG round trip through PIL at ``quality``: returns (decoded ``H×W×3`` uint8, the file bytes)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.round(img * 255), 0, 255).astype(np.uint8)).save(buf, format="JPEG",
                                                                                quality=int(quality))
    data = buf.getvalue()
    dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return dec, data
