"""The wall seen through a homography: image pixels (x, y) → texture coordinates (u, v).

Image coordinates are output pixels with pixel centres at ``i + 0.5``. The view is normalised so that its
Jacobian at the frame centre is a pure rotation (the roll): the texture's period at the centre of the frame is
its period in texture units, whatever the angle. An angled view adds a projective row ``(gx, gy)`` so that the
local scale changes across the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["View", "angled", "fronto", "local_period"]


@dataclass(frozen=True)
class View:
    """``[u', v', w] = M · [x - cx, y - cy, 1]``, ``(u, v) = (u'/w + u0, v'/w + v0)``."""

    height: int
    width: int
    roll_deg: float
    gx: float
    gy: float
    u0: float
    v0: float

    @property
    def matrix(self) -> np.ndarray:
        """The 3×3 homography acting on centred image coordinates."""
        c = math.cos(math.radians(self.roll_deg))
        s = math.sin(math.radians(self.roll_deg))
        return np.array([[c, -s, 0.0], [s, c, 0.0], [self.gx, self.gy, 1.0]])

    def to_texture(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Texture coordinates of image points (float32 arrays of the shape of ``x``)."""
        m = self.matrix
        xc = x - self.width / 2
        yc = y - self.height / 2
        w = m[2, 0] * xc + m[2, 1] * yc + 1.0
        u = (m[0, 0] * xc + m[0, 1] * yc) / w + self.u0
        v = (m[1, 0] * xc + m[1, 1] * yc) / w + self.v0
        return u.astype(np.float32), v.astype(np.float32)

    def from_texture_v(self, v: float, x: np.ndarray) -> np.ndarray:
        """Image ``y`` of the texture line ``v = const`` at image columns ``x`` (a straight image line)."""
        m = self.matrix
        xc = x - self.width / 2
        vv = v - self.v0
        # vv * (gx xc + gy yc + 1) = m10 xc + m11 yc
        yc = (m[1, 0] * xc - vv * (m[2, 0] * xc + 1.0)) / (vv * m[2, 1] - m[1, 1])
        return yc + self.height / 2

    def jacobian(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``d(u, v)/d(x, y)`` at image points: shape ``S×2×2``."""
        m = self.matrix
        xc = np.asarray(x, np.float64) - self.width / 2
        yc = np.asarray(y, np.float64) - self.height / 2
        w = m[2, 0] * xc + m[2, 1] * yc + 1.0
        a = m[0, 0] * xc + m[0, 1] * yc
        b = m[1, 0] * xc + m[1, 1] * yc
        j = np.empty(xc.shape + (2, 2))
        j[..., 0, 0] = (m[0, 0] * w - a * m[2, 0]) / w ** 2
        j[..., 0, 1] = (m[0, 1] * w - a * m[2, 1]) / w ** 2
        j[..., 1, 0] = (m[1, 0] * w - b * m[2, 0]) / w ** 2
        j[..., 1, 1] = (m[1, 1] * w - b * m[2, 1]) / w ** 2
        return j


def local_period(view: View, x: np.ndarray, y: np.ndarray, period: float,
                 normal: tuple[float, float]) -> np.ndarray:
    """Image spacing of the texture's line family ``normal · (u, v) = k · period`` at image points."""
    j = view.jacobian(x, y)
    n = np.asarray(normal, np.float64)
    g = np.einsum("...ij,i->...j", j, n)  # J^T n
    return period / np.linalg.norm(g, axis=-1)


def fronto(height: int, width: int, rng: np.random.Generator) -> View:
    """Fronto-parallel with a small roll (±2°) and a random texture offset."""
    return View(height, width, float(rng.uniform(-2.0, 2.0)), 0.0, 0.0,
                float(rng.uniform(0, 500)), float(rng.uniform(0, 500)))


def angled(height: int, width: int, rng: np.random.Generator, *, normal: tuple[float, float],
           change: float | None = None) -> View:
    """A wall turned about a vertical axis so that the local period changes by ``change`` (0.3–0.7 when None)
    between the left and the right edge of the frame (ratio ``1 + change``), plus a small tilt."""
    if change is None:
        change = float(rng.uniform(0.3, 0.7))
    roll = float(rng.uniform(-2.0, 2.0))
    gy = float(rng.uniform(-0.08, 0.08)) / height
    sign = 1.0 if rng.random() < 0.5 else -1.0
    u0, v0 = float(rng.uniform(0, 500)), float(rng.uniform(0, 500))
    xs = np.array([0.5, width - 0.5])
    ys = np.array([height / 2, height / 2])
    target = math.log1p(change)
    lo, hi = 0.0, 1.8 / width
    for _ in range(50):
        mid = (lo + hi) / 2
        v = View(height, width, roll, sign * mid, gy, u0, v0)
        p = local_period(v, xs, ys, 1.0, normal)
        if abs(math.log(p[1] / p[0])) < target:
            lo = mid
        else:
            hi = mid
    return View(height, width, roll, sign * (lo + hi) / 2, gy, u0, v0)
