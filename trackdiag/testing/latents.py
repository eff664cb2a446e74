"""VAE-like latent batches with known planted structure (stripes, lattices, grids, motifs, drift).

The clean latents look like SD-VAE latents after scaling: ``B×4×64×64``, per-channel means about
``(0.85, 0.55, 0.05, -0.40)`` and standard deviations about ``(0.85, 0.95, 0.75, 0.65)``. Content is made of
natural-image-like Gaussian fields (amplitude spectrum ``∝ 1/f^α``) and soft-edged objects, shared across
channels with per-image offsets and gains; the UNet output is the input plus about 15 % noise
(:func:`unet_like_output`).

Planting functions add a pattern whose variance is a given *share* of the planted channel's total variance
afterwards (``var(pattern) / var(channel + pattern) = share``), per image:

* :func:`plant_stripes`: row or column offsets (a random profile, white to lightly smoothed);
* :func:`plant_periodic`: ``"lattice"`` (two plane waves, axis-aligned or oblique), ``"grid"`` (thin lines
  every ``period`` px along both axes, like grout), ``"motif"`` (a random motif tiled with period ``period``);
* :func:`plant_drift`: a mean shift in channel σ or a spread factor, from a given batch on.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import numpy as np

__all__ = ["CHANNEL_MEANS", "CHANNEL_STDS", "vae_like_latents", "unet_like_output", "plant_stripes",
           "plant_periodic", "plant_gradient", "drift_stream", "PeriodicKind"]

CHANNEL_MEANS = np.array([0.85, 0.55, 0.05, -0.40])
CHANNEL_STDS = np.array([0.85, 0.95, 0.75, 0.65])
PeriodicKind = Literal["lattice", "grid", "motif"]


def _power_field(rng: np.random.Generator, n: int, size: int, alpha: float) -> np.ndarray:
    """``n×size×size`` Gaussian fields with amplitude spectrum ``∝ 1/f^alpha``, unit std each."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    amp = f ** (-alpha)
    amp[0, 0] = 0.0
    spec = (rng.standard_normal((n, size, size)) + 1j * rng.standard_normal((n, size, size))) * amp
    x = np.fft.ifft2(spec).real
    x -= x.mean(axis=(-2, -1), keepdims=True)
    return x / x.std(axis=(-2, -1), keepdims=True)


def _soft_objects(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """One ``size×size`` map of ``count`` soft-edged ellipses with random signed heights."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size))
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(size * 0.06, size * 0.3, 2)
        th = rng.uniform(0, math.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * math.cos(th) + dy * math.sin(th)) / rx
        v = (-dx * math.sin(th) + dy * math.cos(th)) / ry
        edge = rng.uniform(0.05, 0.3)
        out += rng.normal(0, 1.0) / (1.0 + np.exp((np.sqrt(u * u + v * v) - 1.0) / edge))
    return out


def vae_like_latents(rng: np.random.Generator, batch: int = 4, *, size: int = 64,
                     alpha: Optional[float] = None, objects: Optional[int] = None,
                     channels: int = 4) -> np.ndarray:
    """Clean VAE-like latents, ``batch×channels×size×size`` float32.

    Each image has a few shared content components (1/f^α fields with α drawn from [0.8, 1.6] unless given,
    and ``objects`` soft objects), mixed into the channels with random per-image gains, plus a small private
    field per channel; each channel then gets a per-image offset and gain around the SD-VAE statistics.
    """
    means = np.resize(CHANNEL_MEANS, channels)
    stds = np.resize(CHANNEL_STDS, channels)
    out = np.empty((batch, channels, size, size), dtype=np.float32)
    for b in range(batch):
        a = float(alpha) if alpha is not None else float(rng.uniform(0.8, 1.6))
        shared = _power_field(rng, 3, size, a)
        nobj = int(objects) if objects is not None else int(rng.integers(2, 9))
        obj = _soft_objects(rng, size, nobj)
        if obj.std() > 0:
            obj = (obj - obj.mean()) / obj.std()
        private = _power_field(rng, channels, size, a)
        for c in range(channels):
            g = rng.normal(0, 1.0, 3)
            x = (g[0] * shared[0] + 0.6 * g[1] * shared[1] + 0.4 * g[2] * shared[2]
                 + rng.uniform(0.3, 1.2) * obj + 0.35 * private[c])
            x = (x - x.mean()) / max(x.std(), 1e-6)
            offset = rng.normal(0, 0.35) * stds[c]
            gain = stds[c] * math.exp(rng.normal(0, 0.15))
            out[b, c] = (means[c] + offset + gain * math.sqrt(1 - 0.35 ** 2) * x).astype(np.float32)
    return out


def unet_like_output(rng: np.random.Generator, z: np.ndarray, *, noise: float = 0.15) -> np.ndarray:
    """``z`` plus white noise of ``noise`` × each channel's std (the UNet output of a clean step)."""
    s = z.std(axis=(-2, -1), keepdims=True)
    return (z + noise * s * rng.standard_normal(z.shape)).astype(np.float32)


def _scale_to_share(base: np.ndarray, pattern: np.ndarray, share: float) -> np.ndarray:
    """``pattern`` scaled so that ``var(p) / (var(base) + var(p)) = share`` (both ``h×w``)."""
    pattern = pattern - pattern.mean()
    vp = float(pattern.var())
    if vp <= 0:
        return pattern
    target = float(base.var()) * share / (1.0 - share)
    return pattern * math.sqrt(target / vp)


def plant_stripes(rng: np.random.Generator, z: np.ndarray, *, channel: int, share: float,
                  axis: Literal["rows", "cols"] = "rows", smooth_px: float = 0.0) -> np.ndarray:
    """Copy of ``z`` (B×C×h×w) with row (``"rows"``: horizontal stripes) or column offsets in ``channel``.

    The profile is white noise, optionally Gaussian-smoothed over ``smooth_px``; a new profile per image.
    """
    out = z.copy()
    b, _, h, w = z.shape
    n = h if axis == "rows" else w
    for i in range(b):
        prof: np.ndarray = rng.standard_normal(size=(n,))
        if smooth_px > 0:
            k = np.exp(-0.5 * (np.arange(-8, 9) / smooth_px) ** 2)
            prof = np.convolve(np.pad(prof, 8, mode="wrap"), k / k.sum(), mode="same")[8:-8]
        pat = np.repeat(prof[:, None], w, axis=1) if axis == "rows" else np.repeat(prof[None, :], h, axis=0)
        out[i, channel] += _scale_to_share(z[i, channel], pat, share).astype(z.dtype)
    return out


def plant_gradient(rng: np.random.Generator, z: np.ndarray, *, channel: int, share: float,
                   axis: Literal["rows", "cols"] = "rows") -> np.ndarray:
    """A smooth one-directional gradient (a ramp from top to bottom or left to right): not stripes."""
    out = z.copy()
    b, _, h, w = z.shape
    for i in range(b):
        t = np.linspace(-1, 1, h if axis == "rows" else w) * rng.choice([-1, 1])
        t = t + rng.uniform(-0.3, 0.3) * t ** 2
        pat = np.repeat(t[:, None], w, 1) if axis == "rows" else np.repeat(t[None, :], h, 0)
        out[i, channel] += _scale_to_share(z[i, channel], pat, share).astype(z.dtype)
    return out


def periodic_pattern(rng: np.random.Generator, kind: PeriodicKind, period: float, h: int, w: int, *,
                     oblique: bool = False) -> np.ndarray:
    """One ``h×w`` zero-mean periodic pattern of ``kind`` with cell period ``period`` px (random phase)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "lattice":
        th = rng.uniform(0, math.pi / 2) if oblique else 0.0
        ph = rng.uniform(0, 2 * math.pi, 2)
        u = xx * math.cos(th) + yy * math.sin(th)
        v = -xx * math.sin(th) + yy * math.cos(th)
        return np.cos(2 * math.pi * u / period + ph[0]) + np.cos(2 * math.pi * v / period + ph[1])
    if kind == "grid":
        oy, ox = rng.uniform(0, period, 2)
        width = rng.uniform(0.8, 1.4)
        dy = np.abs(((yy - oy) % period) - period / 2)  # distance to the line centre is period/2 - dy
        dx = np.abs(((xx - ox) % period) - period / 2)
        return (np.exp(-0.5 * ((period / 2 - dy) / (width / 2)) ** 2)
                + np.exp(-0.5 * ((period / 2 - dx) / (width / 2)) ** 2))
    if kind == "motif":
        p = int(round(period))
        tile = rng.standard_normal((p, p))
        tile = tile + 0.5 * np.roll(tile, 1, 0) + 0.5 * np.roll(tile, 1, 1)
        oy, ox = rng.integers(0, p, 2)
        return tile[(yy.astype(int) + oy) % p, (xx.astype(int) + ox) % p]
    raise ValueError(f"unknown periodic kind {kind!r}")


def plant_periodic(rng: np.random.Generator, z: np.ndarray, *, kind: PeriodicKind, period: float,
                   share: float, channels: tuple[int, ...] = (0,), oblique: bool = False) -> np.ndarray:
    """Copy of ``z`` with a periodic pattern (same period in every image, own phase) in ``channels``."""
    out = z.copy()
    b, _, h, w = z.shape
    for i in range(b):
        pat = periodic_pattern(rng, kind, period, h, w, oblique=oblique)
        for c in channels:
            out[i, c] += _scale_to_share(z[i, c], pat, share).astype(z.dtype)
    return out


def drift_stream(rng: np.random.Generator, n_batches: int, *, change_at: Optional[int] = None,
                 channel: int = 0, mean_shift_sigma: float = 0.0, std_factor: float = 1.0,
                 batch: int = 4, size: int = 64) -> list[np.ndarray]:
    """``n_batches`` latent batches; from ``change_at`` on, ``channel`` is shifted by ``mean_shift_sigma`` ×
    the channel's pixel std (``CHANNEL_STDS``) and its spread around the channel mean scaled by
    ``std_factor``."""
    out = []
    for t in range(n_batches):
        z = vae_like_latents(rng, batch, size=size)
        if change_at is not None and t >= change_at:
            mu = CHANNEL_MEANS[channel]
            x = z[:, channel]
            z[:, channel] = (mu + (x - mu) * std_factor
                             + mean_shift_sigma * CHANNEL_STDS[channel]).astype(z.dtype)
        out.append(z)
    return out
