"""Wall materials rendered procedurally in texture coordinates (pure numpy, float32 RGB in [0, 1]).

A :class:`Material` is a function ``render(u, v) -> (..., 3)`` of texture coordinates (units: pixels of the
output image at the frame centre of a fronto-parallel view) plus its truth: ``period`` (the defining period
in texture units: tile pitch, brick course height, hex/penny row spacing, plank width, wallpaper repeat; None
when the material has none), and ``normal`` (the texture-space unit vector along which ``period`` repeats:
``(0, 1)`` for rows of bricks, ``(1, 0)`` for planks).

All randomness is drawn once by the factory (palette, salts) or comes from :func:`~.noise.cell_hash` of cell
indices, so rendering the same material at other sample points (supersampling, half resolution, a zone at
twice the period) gives the same wall.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .noise import cell_hash, fbm, value_noise

__all__ = ["APERIODIC", "MATERIALS", "PERIODIC", "Material", "make_material", "photo_period"]

RenderFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Material:
    """A wall texture with its truth.

    Attributes:
        name: material name (a key of :data:`MATERIALS`).
        period: the defining period in texture units, or None (herringbone, aperiodic surfaces).
        normal: unit texture-space vector along which ``period`` repeats.
        render: ``render(u, v)`` with ``u``, ``v`` float arrays of one shape ``S`` → ``S×3`` float32 in [0,
        1]. params: the drawn parameters (JSON-friendly), for the truth record.
        period_approx: True when ``period`` is measured (a photograph), not constructed.
    """

    name: str
    period: float | None
    normal: tuple[float, float]
    render: RenderFn = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    period_approx: bool = False


def _smooth(edge0: float | np.ndarray, edge1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / np.maximum(np.asarray(edge1) - edge0, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _rgb(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """``base`` (S×3 or 3) times ``shade`` (S) → S×3, clipped to [0, 1]."""
    return np.clip(base * shade[..., None], 0.0, 1.0).astype(np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def _jitter_colour(base: np.ndarray, h1: np.ndarray, h2: np.ndarray, h3: np.ndarray, *,
                   bright: float, hue: float, cluster: np.ndarray | float = 0.0) -> np.ndarray:
    """Per-cell colours: ``base`` (3,) with a brightness change ±``bright`` (plus ``cluster``, a smooth field
    over the cells: batches of darker and lighter tiles) and a hue change ±``hue``."""
    b = 1.0 + bright * (2 * h1 - 1) + cluster
    col = base[None] * b[..., None] if b.ndim else base * b
    shift = np.stack([hue * (2 * h2 - 1), hue * (2 * h3 - 1) * 0.5, -hue * (2 * h2 - 1)], axis=-1)
    return np.clip(col + shift, 0.0, 1.0)


def _salt(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 2**31 - 1))


# ------------------------------------------------------------------------------------------------------
# square ceramic tiles
# ------------------------------------------------------------------------------------------------------
_TILE_COLOURS = [(0.92, 0.92, 0.90), (0.80, 0.86, 0.90), (0.35, 0.55, 0.62), (0.88, 0.82, 0.70),
                 (0.25, 0.28, 0.32), (0.62, 0.74, 0.60), (0.85, 0.62, 0.50)]


def tiles(rng: np.random.Generator, period: float) -> Material:
    base = np.array(_TILE_COLOURS[rng.integers(len(_TILE_COLOURS))]) * rng.uniform(0.9, 1.05)
    grout = np.array((0.75, 0.74, 0.70)) if base.mean() < 0.6 else np.array((0.55, 0.54, 0.52))
    grout = grout * rng.uniform(0.8, 1.1)
    gfrac = rng.uniform(0.05, 0.12)
    bevel = rng.uniform(0.04, 0.12)
    sheen = rng.uniform(0.02, 0.07)
    var = rng.uniform(0.03, 0.15)
    clus = rng.uniform(0.0, 0.15) if rng.random() < 0.6 else 0.0  # batches of lighter / darker tiles
    cscale = rng.uniform(3, 8)
    salt = _salt(rng)
    p = float(period)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = u / p
        y = v / p
        i = np.floor(x)
        j = np.floor(y)
        fu = x - i
        fv = y - j
        gw = gfrac * p / 2
        du = np.minimum(fu, 1 - fu) * p
        dv = np.minimum(fv, 1 - fv) * p
        d = np.minimum(du, dv)
        in_tile = _smooth(gw - 0.4, gw + 0.4, d)
        h1, h2, h3, h4, h5 = (cell_hash(i, j, salt + k) for k in range(5))
        col = _jitter_colour(base, h1, h2, h3, bright=var, hue=var * 0.4,
                             cluster=clus * value_noise(i, j, cscale, salt + 21))
        bw = 0.1 * p
        ramp = lambda dist: np.clip(1 - (dist - gw) / bw, 0, 1)
        left = np.where(fu < 0.5, ramp(fu * p), 0)
        right = np.where(fu >= 0.5, ramp((1 - fu) * p), 0)
        top = np.where(fv < 0.5, ramp(fv * p), 0)
        bottom = np.where(fv >= 0.5, ramp((1 - fv) * p), 0)
        shade = 1 + bevel * (left - right + top - bottom) * 0.5
        shade += sheen * ((fu - 0.5) * (2 * h4 - 1) + (fv - 0.5) * (2 * h5 - 1)) * 2
        shade += 0.015 * value_noise(u, v, max(p * 0.07, 1.0), salt + 11)
        gcol = grout * (1 + 0.04 * value_noise(u, v, 2.0, salt + 13))[..., None]
        return np.clip(_mix(gcol, col * shade[..., None], in_tile), 0, 1).astype(np.float32)

    return Material("tiles", p, (0.0, 1.0), render,
                    {"grout_frac": gfrac, "bevel": bevel, "sheen": sheen, "colour_var": var})


# ------------------------------------------------------------------------------------------------------
# running-bond brick
# ------------------------------------------------------------------------------------------------------
def brick(rng: np.random.Generator, period: float) -> Material:
    base = np.array((0.62, 0.26, 0.18)) * rng.uniform(0.8, 1.2) + rng.uniform(-0.04, 0.04, 3)
    mortar = np.array((0.72, 0.70, 0.66)) * rng.uniform(0.8, 1.1)
    aspect = rng.uniform(2.6, 3.3)
    mfrac = rng.uniform(0.08, 0.16)
    var = rng.uniform(0.08, 0.25)
    clus = rng.uniform(0.0, 0.15) if rng.random() < 0.6 else 0.0  # batches of lighter / darker bricks
    cscale = rng.uniform(3, 8)
    salt = _salt(rng)
    p = float(period)
    length = aspect * p

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        y = v / p
        j = np.floor(y)
        fv = y - j
        x = u / length + 0.5 * np.mod(j, 2)
        i = np.floor(x)
        fu = x - i
        mw = mfrac * p / 2
        d = np.minimum(np.minimum(fu, 1 - fu) * length, np.minimum(fv, 1 - fv) * p)
        in_brick = _smooth(mw - 0.4, mw + 0.4, d)
        h1, h2, h3 = (cell_hash(i, j, salt + k) for k in range(3))
        col = _jitter_colour(base, h1, h2, h3, bright=var, hue=0.04,
                             cluster=clus * value_noise(i, j, cscale, salt + 21))
        shade = 1 + 0.08 * fbm(u, v, p * 0.6, salt + 5, octaves=3) + 0.05 * value_noise(u, v, 1.5, salt + 9)
        # the bottom of each brick is a little darker (light from above), the top a little lighter
        shade += 0.05 * (0.5 - fv)
        mcol = mortar * (1 + 0.06 * value_noise(u, v, 1.2, salt + 17))[..., None]
        # mortar shadow just under each brick's top edge
        mcol = mcol * (1 - 0.15 * ((fv > 0.5) & (fv < 1)))[..., None]
        return np.clip(_mix(mcol, col * shade[..., None], in_brick), 0, 1).astype(np.float32)

    return Material("brick", p, (0.0, 1.0), render,
                    {"aspect": aspect, "mortar_frac": mfrac, "colour_var": var})


# ------------------------------------------------------------------------------------------------------
# herringbone parquet (boards 1×k)
# ------------------------------------------------------------------------------------------------------
def _wood_base(rng: np.random.Generator) -> np.ndarray:
    palettes = [(0.62, 0.45, 0.28), (0.50, 0.33, 0.20), (0.76, 0.62, 0.45), (0.40, 0.27, 0.18)]
    return np.array(palettes[rng.integers(len(palettes))]) * rng.uniform(0.9, 1.1)


def herringbone(rng: np.random.Generator, period: float) -> Material:
    w = float(period)  # board width
    k = int(rng.integers(3, 6))
    base = _wood_base(rng)
    gap = rng.uniform(0.04, 0.08) * w
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = u / w
        y = v / w
        cx = np.floor(x)
        cy = np.floor(y)
        fu = x - cx
        fv = y - cy
        d = np.mod(cx - cy, 2 * k)
        horiz = d < k
        bx = np.where(horiz, cx - d, cx)
        by = np.where(horiz, cy, cy + (d - k))
        along = np.where(horiz, (d + fu) / k, ((by - cy) + (1 - fv)) / k)
        across = np.where(horiz, fv, fu)
        dist = np.minimum(np.minimum(across, 1 - across) * w, np.minimum(along, 1 - along) * k * w)
        board = _smooth(gap / 2 - 0.4, gap / 2 + 0.4, dist)
        h1, h2, h3 = (cell_hash(bx * 2 + horiz, by, salt + q) for q in range(3))
        col = _jitter_colour(base, h1, h2, h3, bright=0.14, hue=0.03)
        grain = value_noise(along * k * 6 + h1 * 50, across * 9, 1.0, salt + 7)
        shade = 1 + 0.07 * grain + 0.03 * value_noise(u, v, 1.0, salt + 8)
        dark = base * 0.35
        return np.clip(_mix(np.broadcast_to(dark, col.shape), col * shade[..., None], board), 0, 1
                       ).astype(np.float32)

    return Material("herringbone", None, (0.0, 1.0), render, {"board_width": w, "board_ratio": k})


# ------------------------------------------------------------------------------------------------------
# hexagonal and penny mosaic on one hexagonal lattice (rows spaced ``period``)
# ------------------------------------------------------------------------------------------------------
def _hex_nearest(u: np.ndarray, v: np.ndarray,
                 p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Nearest and second-nearest lattice distances and the nearest cell's indices (a, b)."""
    s = 2 * p / math.sqrt(3)
    b = v / p
    a = u / s - b / 2
    a0 = np.floor(a)
    b0 = np.floor(b)
    best = np.full(u.shape, np.inf, np.float32)
    second = np.full(u.shape, np.inf, np.float32)
    ba = np.zeros(u.shape, np.float32)
    bb = np.zeros(u.shape, np.float32)
    for da in (0, 1):
        for db in (0, 1):
            ca = a0 + da
            cb = b0 + db
            cu = (ca + cb / 2) * s
            cv = cb * p
            dd = np.hypot(u - cu, v - cv).astype(np.float32)
            closer = dd < best
            second = np.where(closer, best, np.minimum(second, dd))
            ba = np.where(closer, ca, ba)
            bb = np.where(closer, cb, bb)
            best = np.where(closer, dd, best)
    return best, second, ba, bb, float(s)


_MOSAIC_COLOURS = [(0.20, 0.45, 0.60), (0.85, 0.85, 0.82), (0.30, 0.55, 0.45), (0.75, 0.60, 0.40),
                   (0.15, 0.18, 0.22), (0.60, 0.35, 0.45)]


def hex_mosaic(rng: np.random.Generator, period: float) -> Material:
    p = float(period)
    base = np.array(_MOSAIC_COLOURS[rng.integers(len(_MOSAIC_COLOURS))]) * rng.uniform(0.9, 1.1)
    grout = np.array((0.78, 0.77, 0.74)) if base.mean() < 0.6 else np.array((0.45, 0.45, 0.44))
    gfrac = rng.uniform(0.06, 0.14)
    var = rng.uniform(0.05, 0.25)
    clus = rng.uniform(0.0, 0.15) if rng.random() < 0.6 else 0.0  # batches of lighter / darker tiles
    cscale = rng.uniform(3, 8)
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d1, d2, ca, cb, s = _hex_nearest(u, v, p)
        edge = (d2 ** 2 - d1 ** 2) / (2 * s)
        gw = gfrac * s / 2
        inside = _smooth(gw - 0.4, gw + 0.4, edge)
        h1, h2, h3 = (cell_hash(ca, cb, salt + q) for q in range(3))
        col = _jitter_colour(base, h1, h2, h3, bright=var, hue=var * 0.5,
                             cluster=clus * value_noise(ca, cb, cscale, salt + 21))
        shade = 1 + 0.06 * (1 - d1 / s) + 0.02 * value_noise(u, v, 1.5, salt + 5)
        return np.clip(_mix(np.broadcast_to(grout, col.shape), col * shade[..., None], inside), 0, 1
                       ).astype(np.float32)

    return Material("hex", p, (0.0, 1.0), render, {"grout_frac": gfrac, "colour_var": var})


def penny(rng: np.random.Generator, period: float) -> Material:
    p = float(period)
    base = np.array(_MOSAIC_COLOURS[rng.integers(len(_MOSAIC_COLOURS))]) * rng.uniform(0.9, 1.1)
    grout = np.array((0.80, 0.79, 0.76)) if base.mean() < 0.6 else np.array((0.40, 0.40, 0.40))
    rfrac = rng.uniform(0.40, 0.47)
    var = rng.uniform(0.05, 0.25)
    clus = rng.uniform(0.0, 0.15) if rng.random() < 0.6 else 0.0  # batches of lighter / darker pennies
    cscale = rng.uniform(3, 8)
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d1, _d2, ca, cb, s = _hex_nearest(u, v, p)
        r = rfrac * s
        inside = _smooth(-0.5, 0.5, r - d1)
        h1, h2, h3 = (cell_hash(ca, cb, salt + q) for q in range(3))
        col = _jitter_colour(base, h1, h2, h3, bright=var, hue=var * 0.5,
                             cluster=clus * value_noise(ca, cb, cscale, salt + 21))
        shade = 1 + 0.10 * (0.5 - d1 / r) + 0.02 * value_noise(u, v, 1.5, salt + 5)
        return np.clip(_mix(np.broadcast_to(grout, col.shape), col * shade[..., None], inside), 0, 1
                       ).astype(np.float32)

    return Material("penny", p, (0.0, 1.0), render, {"radius_frac": rfrac, "colour_var": var})


# ------------------------------------------------------------------------------------------------------
# vertical wood planks (periodic along x only)
# ------------------------------------------------------------------------------------------------------
def planks(rng: np.random.Generator, period: float) -> Material:
    p = float(period)
    base = _wood_base(rng)
    gap = rng.uniform(0.03, 0.07) * p
    salt = _salt(rng)
    lmin, lmax = rng.uniform(4, 7) * p, rng.uniform(9, 16) * p
    bright = rng.uniform(0.1, 0.25)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = u / p
        i = np.floor(x)
        fu = x - i
        length = lmin + (lmax - lmin) * cell_hash(i, i * 0, salt + 1)
        off = cell_hash(i, i * 0 + 1, salt + 2) * length
        yy = (v + off) / length
        seg = np.floor(yy)
        fv = yy - seg
        dist = np.minimum(np.minimum(fu, 1 - fu) * p, np.minimum(fv, 1 - fv) * length)
        board = _smooth(gap / 2 - 0.4, gap / 2 + 0.4, dist)
        h1, h2, h3 = (cell_hash(i, seg, salt + q) for q in range(3, 6))
        col = _jitter_colour(base, h1, h2, h3, bright=bright, hue=0.03)
        grain = fbm(u * 6 / p + h1 * 40, v / (p * 0.9), 1.0, salt + 7, octaves=3)
        shade = 1 + 0.08 * grain + 0.02 * value_noise(u, v, 1.0, salt + 8)
        dark = base * 0.3
        return np.clip(_mix(np.broadcast_to(dark, col.shape), col * shade[..., None], board), 0, 1
                       ).astype(np.float32)

    return Material("planks", p, (1.0, 0.0), render, {"gap": gap, "length_range": [lmin, lmax]})


# ------------------------------------------------------------------------------------------------------
# wallpaper with a 2-D motif on a square repeat
# ------------------------------------------------------------------------------------------------------
def wallpaper(rng: np.random.Generator, period: float) -> Material:
    p = float(period)
    paper = np.array((0.90, 0.86, 0.80)) * rng.uniform(0.85, 1.05) + rng.uniform(-0.08, 0.08, 3)
    ink1 = np.clip(paper * rng.uniform(0.45, 0.8) + rng.uniform(-0.15, 0.15, 3), 0, 1)
    ink2 = np.clip(paper * rng.uniform(0.5, 0.9) + rng.uniform(-0.15, 0.15, 3), 0, 1)
    petals = int(rng.integers(4, 8))
    c1 = rng.uniform(0.2, 0.4, 2)
    c2 = (c1 + rng.uniform(0.35, 0.5, 2)) % 1.0
    r1 = rng.uniform(0.12, 0.2)
    r2 = rng.uniform(0.04, 0.08)
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        fu = np.mod(u / p, 1.0)
        fv = np.mod(v / p, 1.0)
        dx = (fu - c1[0] + 0.5) % 1.0 - 0.5
        dy = (fv - c1[1] + 0.5) % 1.0 - 0.5
        rr = np.hypot(dx, dy)
        th = np.arctan2(dy, dx)
        flower = 1 - _smooth(-0.015, 0.015, rr - r1 * (0.65 + 0.35 * np.cos(petals * th)))
        ex = (fu - c2[0] + 0.5) % 1.0 - 0.5
        ey = (fv - c2[1] + 0.5) % 1.0 - 0.5
        dot = 1 - _smooth(-0.01, 0.01, np.hypot(ex, ey * 1.6) - r2)
        vine = 1 - _smooth(0.0, 0.012, np.abs(fv - 0.5 - 0.12 * np.sin(2 * np.pi * fu)) - 0.006)
        col = np.broadcast_to(paper, u.shape + (3,)).astype(np.float32)
        col = _mix(col, ink2, 0.7 * vine)
        col = _mix(col, ink1, flower)
        col = _mix(col, ink2, dot)
        shade = 1 + 0.025 * value_noise(u, v, 1.2, salt) + 0.02 * fbm(u, v, p * 2, salt + 3)
        return np.clip(col * shade[..., None], 0, 1).astype(np.float32)

    return Material("wallpaper", p, (0.0, 1.0), render, {"petals": petals})


# ------------------------------------------------------------------------------------------------------
# photographs (scikit-image's brick, gravel, grass), tiled with mirroring
# ------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1)
    return img


@lru_cache(maxsize=1)
def photo_period() -> float:
    """Column spacing (px) of scikit-image's brick photograph near its centre (autocorrelation along x).

    The photograph shows vertical bricks seen slightly from below, so the spacing is only approximate.
    """
    img = _photo("brick")
    h = img.shape[0]
    prof = img[h // 2 - 48:h // 2 + 48].mean(axis=0)
    prof = prof - prof.mean()
    n = len(prof)
    spec = np.abs(np.fft.rfft(prof, 2 * n)) ** 2
    acf = np.fft.irfft(spec)[:n // 2]
    acf /= acf[0]
    lo = 12
    k = lo + int(np.argmax(acf[lo:n // 4]))
    a, b, c = acf[k - 1], acf[k], acf[k + 1]
    den = a - 2 * b + c
    return float(k + (0.5 * (a - c) / den if den != 0 else 0.0))


@lru_cache(maxsize=1)
def photo_scale_slope() -> float:
    """Slope of ln(column spacing) against the row (per photograph px) of scikit-image's brick photograph.

    The photograph is taken from below: its column spacing grows from about 30 px at the top to 41 px at
    the bottom (0.35 in log per photograph height), so a "fronto-parallel" scene of it has a perspective of
    its own (measured like :func:`photo_period`, on 48-row strips every 16 rows, least squares in log)."""
    img = _photo("brick")
    h = img.shape[0]
    rows, logs = [], []
    for a in range(0, h - 48, 16):
        prof = img[a:a + 48].mean(axis=0)
        prof = prof - prof.mean()
        n = len(prof)
        acf = np.fft.irfft(np.abs(np.fft.rfft(prof, 2 * n)) ** 2)[:n // 2]
        acf /= acf[0]
        k = 12 + int(np.argmax(acf[12:n // 4]))
        p0, p1, p2 = acf[k - 1], acf[k], acf[k + 1]
        den = p0 - 2 * p1 + p2
        rows.append(a + 24.0)
        logs.append(math.log(k + (0.5 * (p0 - p2) / den if den != 0 else 0.0)))
    return float(np.polyfit(np.asarray(rows) - h / 2, np.asarray(logs), 1)[0])


def photo_scale_factor(material: Material, v: np.ndarray) -> np.ndarray:
    """The photograph's own change of scale at texture rows ``v`` (1 at its centre row): the brick
    photograph's perspective (:func:`photo_scale_slope`), mirrored like the texture; 1 for other materials."""
    if material.params.get("photo") != "brick":
        return np.ones_like(np.asarray(v, np.float64))
    h = _photo("brick").shape[0]
    y = np.mod(np.asarray(v, np.float64) / float(material.params["scale"]) + h / 2, 2 * h)
    y = np.where(y >= h, 2 * h - y, y)
    return np.exp(photo_scale_slope() * (y - h / 2))


def _sample_mirrored(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape
    x = np.mod(x, 2 * w)
    x = np.where(x >= w, 2 * w - x - 1e-3, x)
    y = np.mod(y, 2 * h)
    y = np.where(y >= h, 2 * h - y - 1e-3, y)
    x0 = np.clip(np.floor(x - 0.5).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.floor(y - 0.5).astype(np.int64), 0, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = np.clip(x - 0.5 - x0, 0, 1)
    fy = np.clip(y - 0.5 - y0, 0, 1)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _photo_material(name: str, img_name: str, tint: np.ndarray, scale: float, period: float | None,
                    approx: bool, normal: tuple[float, float] = (0.0, 1.0)) -> Material:
    """The photograph scaled by ``scale``, its centre at texture (0, 0) (mirrored beyond its borders)."""
    img = _photo(img_name)
    mean = float(img.mean())
    cy, cx = img.shape[0] / 2, img.shape[1] / 2

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        g = _sample_mirrored(img, u / scale + cx, v / scale + cy)
        g = 0.5 + (g - mean) * 1.1
        return np.clip(tint * (g[..., None] * 1.4), 0, 1).astype(np.float32)

    return Material(name, period, normal, render, {"photo": img_name, "scale": scale}, approx)


def photo_brick(rng: np.random.Generator, period: float) -> Material:
    """The photograph at ``period / photo_period()`` times its size, clipped to 0.8–2.2 (the scene asks for
    the scale at which one copy covers the frame)."""
    scale = float(np.clip(float(period) / photo_period(), 0.8, 2.2))
    tint = np.array((0.75, 0.42, 0.32)) * rng.uniform(0.85, 1.1)
    return _photo_material("photo_brick", "brick", tint, scale, photo_period() * scale, True, (1.0, 0.0))


def photo_gravel(rng: np.random.Generator, period: float) -> Material:
    """``period`` is read as the scale (aperiodic: there is no period)."""
    tint = np.array((0.62, 0.60, 0.56)) * rng.uniform(0.85, 1.1)
    return _photo_material("photo_gravel", "gravel", tint, float(np.clip(period, 0.8, 2.2)), None, False)


def photo_grass(rng: np.random.Generator, period: float) -> Material:
    """``period`` is read as the scale (aperiodic: there is no period)."""
    tint = np.array((0.45, 0.62, 0.35)) * rng.uniform(0.85, 1.1)
    return _photo_material("photo_grass", "grass", tint, float(np.clip(period, 0.8, 2.2)), None, False)


# ------------------------------------------------------------------------------------------------------
# aperiodic surfaces
# ------------------------------------------------------------------------------------------------------
def stucco(rng: np.random.Generator, period: float) -> Material:
    base = np.array((0.86, 0.82, 0.74)) * rng.uniform(0.8, 1.05) + rng.uniform(-0.05, 0.05, 3)
    scale = rng.uniform(6, 20)
    relief = rng.uniform(0.15, 0.35)
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        e = 0.7
        h0 = fbm(u, v, scale, salt, octaves=4)
        hx = fbm(u + e, v + e, scale, salt, octaves=4)
        shade = 1 + relief * (hx - h0) / e * scale * 0.25 + 0.03 * value_noise(u, v, 1.0, salt + 3)
        return _rgb(base, shade)

    return Material("stucco", None, (0.0, 1.0), render, {"scale": scale, "relief": relief})


def gravel(rng: np.random.Generator, period: float) -> Material:
    cell = rng.uniform(10, 24)
    base = np.array((0.55, 0.55, 0.52)) * rng.uniform(0.8, 1.1)
    salt = _salt(rng)

    def render(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = u / cell
        y = v / cell
        ix = np.floor(x)
        iy = np.floor(y)
        best = np.full(u.shape, np.inf, np.float32)
        second = np.full(u.shape, np.inf, np.float32)
        bi = np.zeros(u.shape, np.float32)
        bj = np.zeros(u.shape, np.float32)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                ci = ix + di
                cj = iy + dj
                px = ci + cell_hash(ci, cj, salt)
                py = cj + cell_hash(ci, cj, salt + 1)
                dd = np.hypot(x - px, y - py).astype(np.float32)
                closer = dd < best
                second = np.where(closer, best, np.minimum(second, dd))
                bi = np.where(closer, ci, bi)
                bj = np.where(closer, cj, bj)
                best = np.where(closer, dd, best)
        edge = (second - best) * cell
        inside = _smooth(0.6, 1.8, edge)
        h1, h2, h3 = (cell_hash(bi, bj, salt + q) for q in range(2, 5))
        col = _jitter_colour(base, h1, h2, h3, bright=0.3, hue=0.08)
        shade = (1 + 0.15 * (0.5 - best)) * (0.35 + 0.65 * inside) + 0.03 * value_noise(u, v, 1.0, salt + 9)
        return np.clip(col * shade[..., None], 0, 1).astype(np.float32)

    return Material("gravel", None, (0.0, 1.0), render, {"cell": cell})


#: material name → factory ``(rng, period) -> Material``.
MATERIALS: dict[str, Callable[[np.random.Generator, float], Material]] = {
    "tiles": tiles, "brick": brick, "herringbone": herringbone, "hex": hex_mosaic, "penny": penny,
    "planks": planks, "wallpaper": wallpaper, "photo_brick": photo_brick,
    "stucco": stucco, "gravel": gravel, "photo_gravel": photo_gravel, "photo_grass": photo_grass,
}
#: materials with a defined period (``period_px`` truth).
PERIODIC = ("tiles", "brick", "hex", "penny", "planks", "wallpaper", "photo_brick")
#: aperiodic surfaces (context ``aperiodic``).
APERIODIC = ("stucco", "gravel", "photo_gravel", "photo_grass")


def make_material(name: str, rng: np.random.Generator, period: float) -> Material:
    """Draw material ``name`` with defining period ``period`` (texture units; ignored by aperiodic ones)."""
    try:
        factory = MATERIALS[name]
    except KeyError:
        raise ValueError(f"unknown material {name!r}; known: {sorted(MATERIALS)}") from None
    return factory(rng, float(period))
