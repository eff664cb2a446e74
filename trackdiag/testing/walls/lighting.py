"""Room lighting as a multiplicative gain field over image coordinates (evaluated on any sample grid).

Gradient, hot spot, vignetting and one soft shadow; parameters are drawn once (:func:`draw_lighting`) and the
field is evaluated at output-pixel coordinates (:func:`gain`), so a half-resolution or supersampled render is
lit the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Lighting", "draw_lighting", "gain"]


@dataclass(frozen=True)
class Lighting:
    grad: float
    grad_angle: float
    hot: float
    hot_xy: tuple[float, float]
    hot_r: float
    vignette: float
    shadow: float
    shadow_c: tuple[float, float]
    shadow_r: tuple[float, float]
    shadow_soft: float
    warmth: tuple[float, float, float]


def draw_lighting(rng: np.random.Generator) -> Lighting:
    return Lighting(
        grad=float(rng.uniform(0.08, 0.35)), grad_angle=float(rng.uniform(0, 2 * math.pi)),
        hot=float(rng.uniform(0.05, 0.3)), hot_xy=(float(rng.uniform(0.15, 0.85)),
                                                   float(rng.uniform(0.1, 0.6))),
        hot_r=float(rng.uniform(0.12, 0.4)), vignette=float(rng.uniform(0.08, 0.35)),
        shadow=float(rng.uniform(0.1, 0.35)) if rng.random() < 0.8 else 0.0,
        shadow_c=(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.2, 0.9))),
        shadow_r=(float(rng.uniform(0.1, 0.35)), float(rng.uniform(0.1, 0.4))),
        shadow_soft=float(rng.uniform(0.03, 0.1)),
        warmth=(float(rng.uniform(0.97, 1.04)), 1.0, float(rng.uniform(0.92, 1.02))),
    )


def gain(light: Lighting, x: np.ndarray, y: np.ndarray, height: int, width: int) -> np.ndarray:
    """Gain ``S×3`` at image points ``x``, ``y`` (output pixels) of an ``height×width`` frame."""
    X = x / width
    Y = y / height
    g = 1 + light.grad * ((X - 0.5) * math.cos(light.grad_angle) + (Y - 0.5) * math.sin(light.grad_angle))
    g = g + light.hot * np.exp(-((X - light.hot_xy[0]) ** 2 + (Y - light.hot_xy[1]) ** 2)
                               / (2 * light.hot_r ** 2))
    r2 = ((X - 0.5) ** 2 + (Y - 0.5) ** 2) / 0.5
    g = g * (1 - light.vignette * r2)
    if light.shadow > 0:
        d = np.sqrt(((X - light.shadow_c[0]) / light.shadow_r[0]) ** 2
                    + ((Y - light.shadow_c[1]) / light.shadow_r[1]) ** 2)
        inside = 1 / (1 + np.exp((d - 1) * min(light.shadow_r) / light.shadow_soft))
        g = g * (1 - light.shadow * inside)
    return (g[..., None] * np.asarray(light.warmth, np.float32)).astype(np.float32)
