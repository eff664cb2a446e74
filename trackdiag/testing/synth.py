"""Generated wall textures with a known truth, for tests, benchmarks, demos and examples.

Every generator returns a float32 tensor in [0, 1] on the CPU (or on ``device``), ``H×W`` for one grey
texture unless said otherwise, and takes a ``torch.Generator`` for anything random, so that a case is
reproducible from its seed. Geometry is computed analytically on rotated coordinates (no resampling), and
edges are antialiased over about one pixel, so a texture of period ``p`` has its fundamental at exactly
``1/p`` cycles per pixel.

Truth conventions (what an estimator should return as *the* period):

* :func:`grating`: ``period_px``, measured across the stripes.
* :func:`tiles`: ``period_px``, the side of a square tile (the grout lines repeat every ``period_px`` along
  both axes).
* :func:`brick`: ``period_px`` is the course height (the bed-joint spacing, the strongest line of a brick
  wall's spectrum); the brick length is ``aspect · period_px`` and the horizontal period of the head joints
  is that length.

Degradations (:func:`add_noise`, :func:`jpeg`, :func:`illumination_gradient`, :func:`vignette`) and the
artifact makers (:func:`upsample_x2`, :func:`downsample_x2`, :func:`band_doubled`, :func:`nonperiodic_frame`)
act on ``H×W``, ``C×H×W`` or ``B×C×H×W`` tensors and keep the shape.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "add_noise",
    "band_doubled",
    "brick",
    "composite",
    "downsample_x2",
    "ellipse_mask",
    "grating",
    "illumination_gradient",
    "jpeg",
    "nonperiodic_frame",
    "plaster",
    "rotated_coords",
    "smooth_field",
    "tiles",
    "to_rgb",
    "upsample_x2",
    "vignette",
    "wall_batch",
]


def _rand(generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=generator)


def rotated_coords(height: int, width: int, *, angle_deg: float = 0.0,
                   offset: tuple[float, float] = (0.0, 0.0),
                   device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates rotated by ``angle_deg`` about the image centre: ``(u, v)``, each ``H×W`` float32.

    ``u`` runs along the (rotated) x axis, ``v`` along the (rotated) y axis; ``offset`` = ``(du, dv)`` shifts
    the pattern's phase.
    """
    y = torch.arange(height, device=device, dtype=torch.float32)[:, None] - (height - 1) / 2.0
    x = torch.arange(width, device=device, dtype=torch.float32)[None, :] - (width - 1) / 2.0
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    u = ca * x + sa * y + offset[0]
    v = -sa * x + ca * y + offset[1]
    return u.expand(height, width), v.expand(height, width)


def _line_profile(coord: torch.Tensor, period: float, width_px: float) -> torch.Tensor:
    """1 on lines of ``width_px`` every ``period`` px along ``coord``, 0 between, ~1 px antialiased edges."""
    t = torch.remainder(coord, period)
    d = torch.minimum(t, period - t)  # distance to the nearest line centre, px
    return (width_px / 2.0 + 0.5 - d).clamp(0.0, 1.0)


def grating(height: int, width: int, *, period_px: float, angle_deg: float = 0.0, phase: float = 0.0,
            profile: str = "sine", line_frac: float = 0.2, contrast: float = 0.8, mean: float = 0.5,
            device: torch.device | None = None) -> torch.Tensor:
    """Straight stripes of period ``period_px`` (measured across the stripes), rotated by ``angle_deg``.

    The wave vector points along the rotated x axis (``angle_deg = 0``: vertical stripes, period along x).

    Args:
        profile: ``"sine"`` (one spectral line), ``"square"`` (odd harmonics, 50 % duty) or ``"lines"`` (thin
            lines of ``line_frac · period`` px: slowly decaying harmonics, like grout).
        contrast: peak-to-peak amplitude; ``mean``: average level.

    Returns:
        ``H×W`` float32 in [0, 1].
    """
    u, _ = rotated_coords(height, width, angle_deg=angle_deg, offset=(phase * period_px, 0.0), device=device)
    if profile == "sine":
        s = 0.5 + 0.5 * torch.cos(2 * math.pi * u / period_px)
    elif profile == "square":
        s = _line_profile(u, period_px, period_px / 2.0)
    elif profile == "lines":
        s = _line_profile(u, period_px, max(1.0, line_frac * period_px))
    else:
        raise ValueError(f"profile must be 'sine', 'square' or 'lines'; got {profile!r}")
    return (mean + contrast * (s - 0.5)).clamp(0.0, 1.0)


def _cell_values(row: torch.Tensor, col: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """A pseudo-random value per (row, col) cell, looked up in ``table`` by a hash of the indices."""
    idx = torch.remainder(row.long() * 7919 + col.long() * 104729, table.numel())
    return table[idx]


def tiles(height: int, width: int, *, period_px: float, angle_deg: float = 0.0, grout_frac: float = 0.12,
          tile_level: float = 0.6, grout_level: float = 0.25, jitter: float = 0.08,
          offset: tuple[float, float] | None = None, generator: torch.Generator | None = None,
          device: torch.device | None = None) -> torch.Tensor:
    """Square tiles of side ``period_px`` separated by grout lines (``grout_frac · period_px`` wide, ≥ 1 px).

    Each tile gets a random brightness offset of ±``jitter`` (so the texture is not a pure line grid).
    ``offset`` (px) shifts the grid; random when None. Returns ``H×W`` float32 in [0, 1].
    """
    if offset is None:
        offset = tuple((_rand(generator, 2) * period_px).tolist())  # type: ignore[assignment]
    u, v = rotated_coords(height, width, angle_deg=angle_deg, offset=offset, device=device)
    gw = max(1.0, grout_frac * period_px)
    grout = torch.maximum(_line_profile(u, period_px, gw), _line_profile(v, period_px, gw))
    table = (_rand(generator, 4096) * 2 - 1).to(u.device) * jitter
    tone = tile_level + _cell_values(torch.floor(v / period_px), torch.floor(u / period_px), table)
    return (tone * (1 - grout) + grout_level * grout).clamp(0.0, 1.0)


def brick(height: int, width: int, *, period_px: float, aspect: float = 2.0, stagger: float = 0.5,
          angle_deg: float = 0.0, mortar_frac: float = 0.12, brick_level: float = 0.55,
          mortar_level: float = 0.85, jitter: float = 0.1, offset: tuple[float, float] | None = None,
          generator: torch.Generator | None = None, device: torch.device | None = None) -> torch.Tensor:
    """A running-bond brick wall: courses of height ``period_px``, bricks ``aspect · period_px`` long.

    Every other course is shifted by ``stagger`` of a brick length. The truth period of this texture is the
    course height ``period_px`` (the bed joints are the strongest spectral line); the horizontal period of
    the head joints is ``aspect · period_px``. Each brick gets a random tone of ±``jitter``.

    Returns:
        ``H×W`` float32 in [0, 1].
    """
    length = aspect * period_px
    if offset is None:
        offset = tuple((_rand(generator, 2) * torch.tensor([length, period_px])).tolist())  # type: ignore[assignment]
    u, v = rotated_coords(height, width, angle_deg=angle_deg, offset=offset, device=device)
    row = torch.floor(v / period_px)
    us = u + torch.remainder(row, 2.0) * stagger * length
    mw = max(1.0, mortar_frac * period_px)
    bed = _line_profile(v, period_px, mw)
    head = _line_profile(us, length, mw)
    mortar = torch.maximum(bed, head)
    table = (_rand(generator, 4096) * 2 - 1).to(u.device) * jitter
    tone = brick_level + _cell_values(row, torch.floor(us / length), table)
    return (tone * (1 - mortar) + mortar_level * mortar).clamp(0.0, 1.0)


def smooth_field(height: int, width: int, *, scale_px: float, generator: torch.Generator | None = None,
                 device: torch.device | None = None, periodic: bool = False) -> torch.Tensor:
    """Gaussian random field smoothed at ``scale_px`` (no period), normalised to zero mean and unit std.

    FFT filtering makes a field that wraps around; unless ``periodic=True`` it is generated on a canvas
    twice as large and cropped, so that opposite borders do *not* match (like a real photo).
    """
    ch, cw = (height, width) if periodic else (2 * height, 2 * width)
    noise = torch.randn(1, 1, ch, cw, generator=generator)
    fy = torch.fft.fftfreq(ch)[:, None]
    fx = torch.fft.rfftfreq(cw)[None, :]
    g = torch.exp(-2 * (math.pi * scale_px) ** 2 * (fy ** 2 + fx ** 2))
    f = torch.fft.irfft2(torch.fft.rfft2(noise) * g, s=(ch, cw))[0, 0, :height, :width]
    f = (f - f.mean()) / f.std().clamp_min(1e-12)
    return f.to(device) if device is not None else f


def plaster(height: int, width: int, *, beta: float = 1.6, contrast: float = 0.15,
            generator: torch.Generator | None = None, device: torch.device | None = None) -> torch.Tensor:
    """Aperiodic plaster / stucco: isotropic ``1/f^beta`` noise (no dominant period), ``H×W`` in [0, 1].

    Generated on a twice larger canvas and cropped, so the frame is not periodic either.
    """
    ch, cw = 2 * height, 2 * width
    noise = torch.randn(ch, cw, generator=generator)
    fy = torch.fft.fftfreq(ch)[:, None]
    fx = torch.fft.rfftfreq(cw)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2).clamp_min(1.0 / max(ch, cw))
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * f.pow(-beta / 2), s=(ch, cw))[:height, :width]
    field = (field - field.mean()) / field.std().clamp_min(1e-12)
    out = (0.55 + contrast * field).clamp(0.0, 1.0)
    return out.to(device) if device is not None else out


def ellipse_mask(height: int, width: int, *, center: tuple[float, float] = (0.5, 0.5),
                 radii: tuple[float, float] = (0.35,
                                               0.4), device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``H×W`` ellipse (centre and radii as fractions of ``(H, W)``): a non-rectangular wall mask."""
    y = (torch.arange(height, device=device, dtype=torch.float32)[:, None] + 0.5) / height
    x = (torch.arange(width, device=device, dtype=torch.float32)[None, :] + 0.5) / width
    return (((y - center[0]) / radii[0]) ** 2 + ((x - center[1]) / radii[1]) ** 2) <= 1.0


def composite(inside: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``inside`` where ``mask`` is true, ``outside`` elsewhere (shapes broadcast)."""
    return torch.where(mask, inside, outside)


def add_noise(x: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive white Gaussian noise of std ``sigma``, clipped to [0, 1]."""
    n = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return (x + sigma * n).clamp(0.0, 1.0)


def jpeg(x: torch.Tensor, quality: int = 50) -> torch.Tensor:
    """Round-trip through JPEG at ``quality`` (Pillow). ``H×W``, ``C×H×W`` (C = 1 or 3) or ``B×C×H×W``."""
    import numpy as np
    from PIL import Image

    if x.ndim == 4:
        return torch.stack([jpeg(xi, quality) for xi in x])
    chw = x[None] if x.ndim == 2 else x
    arr = (chw.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    back = np.asarray(Image.open(buf).convert("L" if arr.shape[-1] == 1 else "RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(back.copy())
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return (t[0] if x.ndim == 2 else t).to(x.device, x.dtype)


def illumination_gradient(x: torch.Tensor, strength: float = 0.5, *, angle_deg: float = 30.0) -> torch.Tensor:
    """Multiply by a linear light ramp from ``1 − strength/2`` to ``1 + strength/2`` across the image."""
    h, w = x.shape[-2:]
    u, _ = rotated_coords(h, w, angle_deg=angle_deg, device=x.device)
    ramp = 1.0 + strength * u / (u.abs().amax().clamp_min(1.0) * 2.0)
    return (x * ramp.to(x.dtype)).clamp(0.0, 1.0)


def vignette(x: torch.Tensor, strength: float = 0.5) -> torch.Tensor:
    """Darken the corners: multiply by ``1 − strength · (r / r_corner)²`` (radial fall-off, lens-like)."""
    h, w = x.shape[-2:]
    u, v = rotated_coords(h, w, device=x.device)
    r2 = (u ** 2 + v ** 2) / (u[0, 0] ** 2 + v[0, 0] ** 2)
    return (x * (1.0 - strength * r2).to(x.dtype)).clamp(0.0, 1.0)


def band_doubled(height: int, width: int, *, period_px: float, band: tuple[float, float] = (0.4, 0.65),
                 axis: str = "rows", kind: str = "tiles", generator: torch.Generator | None = None,
                 **kwargs: float) -> torch.Tensor:
    """A texture of period ``period_px`` with one band at twice the period (the "doubled zone" artifact).

    ``axis="rows"``: the band is the horizontal strip of rows ``[band[0]·H, band[1]·H)``; ``"cols"``: the
    vertical strip of columns ``[band[0]·W, band[1]·W)``. ``kind`` is ``"tiles"``, ``"brick"`` or
    ``"grating"``; extra keyword arguments go to that generator. Returns ``H×W`` float32 in [0, 1].
    """
    makers: dict[str, Callable[..., torch.Tensor]] = {"tiles": tiles, "brick": brick, "grating": grating}
    make = makers[kind]
    extra: dict[str, Any] = dict(kwargs)
    if kind != "grating":
        extra["generator"] = generator
    base = make(height, width, period_px=period_px, **extra)
    doubled = make(height, width, period_px=2 * period_px, **extra)
    if axis == "rows":
        idx = torch.arange(height)[:, None].expand(height, width)
        lo, hi = band[0] * height, band[1] * height
    elif axis == "cols":
        idx = torch.arange(width)[None, :].expand(height, width)
        lo, hi = band[0] * width, band[1] * width
    else:
        raise ValueError(f"axis must be 'rows' or 'cols'; got {axis!r}")
    inside = (idx >= lo) & (idx < hi)
    return torch.where(inside.to(base.device), doubled, base)


def _as4d(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    nd = x.ndim
    if nd == 2:
        return x[None, None], nd
    if nd == 3:
        return x[None], nd
    return x, nd


def _back(y: torch.Tensor, nd: int) -> torch.Tensor:
    return y[0, 0] if nd == 2 else (y[0] if nd == 3 else y)


def upsample_x2(x: torch.Tensor, *, mode: str = "deconv", side_tap: float = 0.35) -> torch.Tensor:
    """×2 upsampling as a decoder does it. ``H×W``, ``C×H×W`` or ``B×C×H×W`` → twice the size.

    * ``"bilinear"``: ``F.interpolate(..., mode="bilinear")`` — every output phase gets the same total
      weight, no stride grid.
    * ``"deconv"``: a stride-2 transposed convolution with the separable 3-tap kernel
      ``[side_tap, 1, side_tap]`` normalised so the mean gain is 1. Its polyphase sums are ``1`` (even
      outputs, one tap) and ``2·side_tap`` (odd outputs, two taps): unequal unless ``side_tap = 0.5``
      (which *is* bilinear), so the output carries a period-2 checkerboard.
    """
    x4, nd = _as4d(x)
    if mode == "bilinear":
        y = F.interpolate(x4, scale_factor=2, mode="bilinear", align_corners=False)
    elif mode == "deconv":
        c = x4.shape[1]
        k1 = torch.tensor([side_tap, 1.0, side_tap], dtype=x4.dtype, device=x4.device)
        k1 = k1 / ((1.0 + 2 * side_tap) / 2.0)  # mean polyphase gain 1 per axis
        k2 = (k1[:, None] * k1[None, :])[None, None].expand(c, 1, 3, 3).contiguous()
        xp = F.pad(x4, (1, 1, 1, 1), mode="replicate")
        y = F.conv_transpose2d(xp, k2, stride=2, padding=1, groups=c)
        y = y[..., 2:2 + 2 * x4.shape[-2], 2:2 + 2 * x4.shape[-1]]
    else:
        raise ValueError(f"mode must be 'deconv' or 'bilinear'; got {mode!r}")
    return _back(y.clamp(0.0, 1.0), nd)


def downsample_x2(x: torch.Tensor, *, mode: str = "strided") -> torch.Tensor:
    """×2 downsampling. ``"strided"``: keep every other pixel (aliases); ``"antialiased"``: low-pass first
    (``F.interpolate(..., antialias=True)``, as BlurPool / PIL would). Shapes as :func:`upsample_x2`."""
    x4, nd = _as4d(x)
    if mode == "strided":
        y = x4[..., ::2, ::2]
    elif mode == "antialiased":
        y = F.interpolate(x4, size=(x4.shape[-2] // 2, x4.shape[-1] // 2), mode="bilinear",
                          antialias=True, align_corners=False)
    else:
        raise ValueError(f"mode must be 'strided' or 'antialiased'; got {mode!r}")
    return _back(y.contiguous(), nd)


def nonperiodic_frame(x: torch.Tensor, *, strength: float = 0.35, scale_frac: float = 0.25,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Add a smooth, large-scale random field so that opposite frame borders no longer match.

    The field (``scale_frac`` of the shorter side, ±``strength``) lives at low frequencies, but the jumps it
    creates between the left and right (top and bottom) borders spread energy along the FFT axes: a raw
    FFT of the result shows the border "cross". ``H×W`` → ``H×W``.
    """
    h, w = x.shape[-2:]
    field = smooth_field(h, w, scale_px=scale_frac * min(h, w), generator=generator).to(x.device, x.dtype)
    return (x + strength * field / 2.0).clamp(0.0, 1.0)


def to_rgb(gray: torch.Tensor, *, tint: tuple[float, float, float] | None = None) -> torch.Tensor:
    """``H×W`` grey → ``3×H×W`` RGB with an optional colour tint (a multiplier per channel)."""
    t = torch.tensor(tint if tint is not None else (1.0, 1.0, 1.0), dtype=gray.dtype, device=gray.device)
    return (gray[None] * t[:, None, None]).clamp(0.0, 1.0)


def wall_batch(n: int, size: int, *, generator: torch.Generator | None = None,
               min_period_px: float = 8.0, max_period_frac: float = 1.0 / 6.0,
               noise: float = 0.02) -> torch.Tensor:
    """``n`` random brick and tile walls, ``n×3×size×size`` in [0, 1], for training demos and examples.

    Kinds alternate brick / tiles; periods are drawn log-uniformly in
    ``[min_period_px, max_period_frac·size]`` (course height for bricks), rotations within ±3°, colours as
    random warm tints, plus white noise.
    """
    out = []
    hi = max(min_period_px, max_period_frac * size)
    for i in range(n):
        p = float(math.exp(math.log(min_period_px) + (math.log(hi) - math.log(min_period_px))
                           * float(_rand(generator, 1))))
        ang = float(_rand(generator, 1) * 6 - 3)
        if i % 2 == 0:
            g = brick(size, size, period_px=p, angle_deg=ang, generator=generator)
        else:
            g = tiles(size, size, period_px=p, angle_deg=ang, generator=generator)
        tint = (0.8 + 0.2 * _rand(generator, 3)).tolist()
        rgb = to_rgb(g, tint=tuple(tint))  # type: ignore[arg-type]
        out.append(add_noise(rgb, noise, generator=generator) if noise > 0 else rgb)
    return torch.stack(out)
