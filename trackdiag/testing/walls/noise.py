"""Deterministic per-cell random values and value noise in texture coordinates (pure numpy).

Everything random inside a material is a function of integer cell indices and a ``salt``, so a texture can be
evaluated at any set of points (supersampled, half resolution, a doubled zone) and stays the same texture.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_hash", "fbm", "value_noise"]

_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)


def cell_hash(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """Uniform values in [0, 1) (float32) from integer arrays ``i``, ``j`` (any equal shapes) and ``salt``."""
    with np.errstate(over="ignore"):
        h = (np.asarray(i).astype(np.int64).astype(np.uint32) * np.uint32(73856093)) ^ \
            (np.asarray(j).astype(np.int64).astype(np.uint32) * np.uint32(19349663)) ^ \
            np.uint32(salt & 0xFFFFFFFF)
        h ^= h >> np.uint32(16)
        h *= _M1
        h ^= h >> np.uint32(13)
        h *= _M2
        h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)


def value_noise(u: np.ndarray, v: np.ndarray, scale: float, salt: int) -> np.ndarray:
    """Smooth value noise in [-1, 1] with features of about ``scale`` texture units at points ``(u, v)``."""
    x = u / scale
    y = v / scale
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    i0 = x0.astype(np.int64)
    j0 = y0.astype(np.int64)
    a = cell_hash(i0, j0, salt)
    b = cell_hash(i0 + 1, j0, salt)
    c = cell_hash(i0, j0 + 1, salt)
    d = cell_hash(i0 + 1, j0 + 1, salt)
    top = a + (b - a) * fx
    bot = c + (d - c) * fx
    return ((top + (bot - top) * fy) * 2 - 1).astype(np.float32)


def fbm(u: np.ndarray, v: np.ndarray, scale: float, salt: int, *, octaves: int = 3,
        gain: float = 0.5) -> np.ndarray:
    """Fractal sum of :func:`value_noise` octaves (largest features ``scale``), roughly in [-1, 1]."""
    out = np.zeros(np.shape(u), np.float32)
    amp = 1.0
    total = 0.0
    s = scale
    for k in range(octaves):
        out += amp * value_noise(u, v, s, salt + 7919 * k)
        total += amp
        amp *= gain
        s *= 0.5
    return out / total
