"""One photo-like wall scene with known causes: :func:`make_scene`.

A scene is drawn once (material, view, room layout, lighting, artifact parameters) from a seeded
``numpy.random.Generator`` and rendered at any sampling of the frame (supersampled ×2 for antialiasing, at
half resolution for the transposed-conv upsampler, at ×3 for strided subsampling). Artifacts are planted by
their mechanism (see :mod:`.artifacts`); texture-level ones (a zone or band at twice the period, the whole
wall at 2× / 0.5× the reference's period) are rendered in texture coordinates.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import artifacts
from .camera import View, fronto, local_period
from .camera import angled as angled_view
from .lighting import Lighting, draw_lighting, gain
from .materials import (
    APERIODIC,
    MATERIALS,
    PERIODIC,
    Material,
    make_material,
    photo_period,
    photo_scale_factor,
)
from .noise import value_noise
from .truth import CAUSES, Truth

__all__ = ["CAUSE_MATERIALS", "GENERATOR_VERSION", "SIZES", "Scene", "make_scene", "scene_id"]

#: bumped whenever a change alters the pixels or the truth of a scene drawn from the same seed (caches
#: keyed on it are then regenerated).
GENERATOR_VERSION = 8  # 8: zone/band periods up to 64 px, bands 18-45 %, and the photograph labels of 7

#: frame sizes drawn when ``size`` is not given (H, W); all multiples of 16.
SIZES = ((512, 512), (512, 768), (768, 512), (768, 768), (640, 896), (768, 1024), (1024, 768), (1024, 1024))

_TEXTURED = ("tiles", "brick", "hex", "penny", "planks", "wallpaper")
_ALL = tuple(MATERIALS)
#: cause → materials it is planted on when ``kind="random"`` (``"clean"`` for no cause).
CAUSE_MATERIALS: dict[str, tuple[str, ...]] = {
    "clean": _ALL + ("herringbone",) * 0,
    "checkerboard": _ALL,
    "grid_s8": _ALL,
    "grid_s16": _ALL,
    "doubled_zone": _TEXTURED,
    "bands_rows": _TEXTURED,
    "bands_cols": _TEXTURED,
    "period_doubled": PERIODIC,
    "period_halved": PERIODIC,
    "aliasing": ("tiles", "hex", "penny", "wallpaper"),
    "edge_artifact": _ALL,
    "mask_seam": _ALL,
}
_MIN_PERIOD = {"tiles": 8.0, "brick": 8.0, "hex": 9.0, "penny": 9.0, "planks": 10.0, "wallpaper": 14.0,
               "herringbone": 8.0}


@dataclass
class Scene:
    """A generated scene.

    Attributes:
        pred: ``H×W×3`` uint8, the decoded JPEG (what a user feeds ``trackdiag.diagnose``).
        mask: ``H×W`` bool, True on the visible wall (furniture, frames, floor and ceiling excluded).
        ref: ``256×256×3`` uint8 reference patch of the intended texture (fronto-parallel, unlit) or None.
        truth: the ground truth.
        jpeg_bytes: the JPEG file of ``pred`` (for saving it bit-exactly).
    """

    pred: np.ndarray
    mask: np.ndarray
    ref: np.ndarray | None
    truth: Truth
    jpeg_bytes: bytes = field(default=b"", repr=False)

    def pred_float(self) -> np.ndarray:
        """``pred`` as ``H×W×3`` float32 in [0, 1]."""
        return self.pred.astype(np.float32) / 255.0


def scene_id(causes: Sequence[str], kind: str, angled: bool, seed: int, twin: bool = False) -> str:
    """The id of a scene: ``<causes or clean>_<kind>_<fro|ang>_<seed>[_twin]``."""
    name = "+".join(causes) if causes else "clean"
    return f"{name}_{kind}_{'ang' if angled else 'fro'}_{seed}{'_twin' if twin else ''}"


# ------------------------------------------------------------------------------------------------------
# layout: floor, ceiling, furniture, picture frames
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float
    radius: float
    colour: tuple[float, float, float]
    border: float = 0.0
    inner: tuple[float, float, float] = (0.0, 0.0, 0.0)
    salt: int = 0


@dataclass(frozen=True)
class _Layout:
    floor_y: float  # image y of the floor line at the centre column
    ceil_y: float  # image y of the ceiling line at the centre column (0: none)
    furniture: tuple[_Box, ...]
    frames: tuple[_Box, ...]
    floor_material: Material
    ceiling_colour: tuple[float, float, float]


def _draw_layout(rng: np.random.Generator, h: int, w: int) -> _Layout:
    floor_y = h * (1 - rng.uniform(0.08, 0.22))
    ceil_y = h * rng.uniform(0.03, 0.1) if rng.random() < 0.6 else 0.0
    furniture = []
    for _ in range(int(rng.choice([0, 1, 1, 1, 2, 2]))):
        fw = w * rng.uniform(0.15, 0.35)
        fh = h * rng.uniform(0.12, 0.3)
        cx = w * rng.uniform(0.1, 0.9)
        bottom = floor_y + h * rng.uniform(0.02, 0.08)
        col = tuple(float(c) for c in rng.uniform(0.04, 0.2) * rng.uniform(0.8, 1.2, 3))
        furniture.append(_Box(cx - fw / 2, bottom - fh, cx + fw / 2, bottom,
                              min(float(rng.uniform(4, 24)), 0.45 * min(fw, fh)),
                              col, salt=int(rng.integers(1, 2**30))))  # type: ignore[arg-type]
    frames = []
    for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
        fw = w * rng.uniform(0.08, 0.2)
        fh = h * rng.uniform(0.08, 0.2)
        x0 = rng.uniform(0.05 * w, 0.95 * w - fw)
        y0 = rng.uniform(ceil_y + 0.05 * h, max(ceil_y + 0.06 * h, floor_y - fh - 0.25 * h))
        col = tuple(float(c) for c in rng.uniform(0.05, 0.3) * rng.uniform(0.8, 1.2, 3))
        inner = tuple(float(c) for c in rng.uniform(0.2, 0.8, 3))
        frames.append(_Box(x0, y0, x0 + fw, y0 + fh, min(float(rng.uniform(0, 3)), 0.45 * min(fw, fh)),
                           col,  # type: ignore[arg-type]
                           float(rng.uniform(4, 12)), inner, int(rng.integers(1, 2**30))))  # type: ignore[arg-type]
    floor_mat = make_material("planks", rng, float(rng.uniform(40, 90)))
    ceiling = tuple(float(c) for c in np.array((0.9, 0.89, 0.86)) * rng.uniform(0.85, 1.0))
    return _Layout(float(floor_y), float(ceil_y), tuple(furniture), tuple(frames), floor_mat,
                   ceiling)  # type: ignore[arg-type]


def _rounded_box_sd(x: np.ndarray, y: np.ndarray, b: _Box) -> np.ndarray:
    """Signed distance (px, negative inside) to a rounded rectangle."""
    cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
    hx, hy = (b.x1 - b.x0) / 2 - b.radius, (b.y1 - b.y0) / 2 - b.radius
    qx = np.abs(x - cx) - hx
    qy = np.abs(y - cy) - hy
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = np.minimum(np.maximum(qx, qy), 0)
    return outside + inside - b.radius


# ------------------------------------------------------------------------------------------------------
# the drawn scene and its renderer
# ------------------------------------------------------------------------------------------------------
Weight = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Zone:
    """Where ``weight(x, y)`` > 0 the wall is rendered at ``(sx, sy)`` times its period (soft blend)."""

    weight: Weight
    sx: float
    sy: float


@dataclass(frozen=True)
class _Spec:
    height: int
    width: int
    view: View
    material: Material
    wall_scale: float
    zones: tuple[_Zone, ...]
    layout: _Layout
    light: Lighting
    v_floor: float
    v_ceil: float


def _render(spec: _Spec, res: float, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Render at ``res`` × the output resolution, supersampled ``ss``× (box), → (``h×w×3``, wall coverage)."""
    h = round(spec.height * res)
    w = round(spec.width * res)
    r = res * ss
    ys = ((np.arange(h * ss, dtype=np.float32) + 0.5) / r)
    xs = ((np.arange(w * ss, dtype=np.float32) + 0.5) / r)
    X, Y = np.meshgrid(xs, ys)
    u, v = spec.view.to_texture(X, Y)
    lay = spec.layout
    in_floor = v > spec.v_floor
    in_ceil = v < spec.v_ceil
    on_wall = ~in_floor & ~in_ceil
    img = np.empty(X.shape + (3,), np.float32)
    # each layer is rendered only where it is seen
    k = spec.wall_scale
    uw, vw = u[on_wall], v[on_wall]
    wall = spec.material.render(uw / k, vw / k)
    for z in spec.zones:
        wt = z.weight(X[on_wall], Y[on_wall])
        sel = wt > 0
        if sel.any():
            alt = spec.material.render(uw[sel] / (k * z.sx), vw[sel] / (k * z.sy))
            wall[sel] = wall[sel] + (alt - wall[sel]) * wt[sel, None]
    img[on_wall] = wall
    # floor: planks receding towards a horizon far above the frame
    yh = lay.floor_y - 2.5 * spec.height
    depth = (lay.floor_y - yh) / np.maximum(Y[in_floor] - yh, 1.0)
    img[in_floor] = lay.floor_material.render((X[in_floor] - spec.width / 2) * depth, 4000.0 * depth) * 0.85
    img[in_ceil] = np.asarray(lay.ceiling_colour, np.float32) * (1 - 0.06 * (Y[in_ceil] / spec.height))[:,
                                                                                                        None]
    cover = (~in_floor & ~in_ceil).astype(np.float32)
    for b in lay.furniture + lay.frames:
        # only the box's bounding rows and columns
        r0 = max(int((b.y0 - 2) * r), 0)
        r1 = min(int((b.y1 + 2) * r) + 1, X.shape[0])
        c0 = max(int((b.x0 - 2) * r), 0)
        c1 = min(int((b.x1 + 2) * r) + 1, X.shape[1])
        if r1 <= r0 or c1 <= c0:
            continue
        bx, by = X[r0:r1, c0:c1], Y[r0:r1, c0:c1]
        sd = _rounded_box_sd(bx, by, b)
        inside = np.clip(0.5 - sd * r, 0, 1)
        if b.border > 0:  # a picture frame
            pic = np.asarray(b.inner, np.float32) * (1 + 0.4 * value_noise(bx, by, 25.0, b.salt))[..., None]
            in_pic = np.clip(0.5 - (sd + b.border) * r, 0, 1)
            colour = np.asarray(b.colour, np.float32)
            col = colour + (pic - colour) * in_pic[..., None]
        else:  # furniture, lit from above
            col = np.asarray(b.colour, np.float32) * (1 + 0.15 * value_noise(bx, by, 3.0, b.salt))[..., None]
            col = col * (1 + 0.25 * np.clip(1 - (by - b.y0) / 12.0, 0, 1))[..., None]
        sub = img[r0:r1, c0:c1]
        img[r0:r1, c0:c1] = sub + (col - sub) * inside[..., None]
        cover[r0:r1, c0:c1] *= 1 - inside
    img = img * gain(spec.light, X, Y, spec.height, spec.width)
    if ss > 1:
        img = artifacts.area_down(img.astype(np.float32), ss)
        cover = artifacts.area_down(cover[..., None], ss)[..., 0]
    return np.clip(img, 0, 1).astype(np.float32), cover


def _optics(img: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """The lens: a Gaussian blur of ``sigma`` px (antialiases a point-sampled render; 4× cheaper than 2×2
    supersampling, and the edges of every material are already soft over about a pixel)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img, sigma=(sigma, sigma, 0)).astype(np.float32)


def _soft(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _zone_weight(cx: float, cy: float, rx: float, ry: float, feather: float, wob: Sequence[float]) -> Weight:
    a1, p1, a2, p2 = wob

    def weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx = (x - cx) / rx
        dy = (y - cy) / ry
        th = np.arctan2(dy, dx)
        rad = 1 + a1 * np.sin(2 * th + p1) + a2 * np.sin(3 * th + p2)
        d = np.hypot(dx, dy) / rad
        return _soft((1 - d) * min(rx, ry) / feather + 0.5)

    return weight


def _band_weight(lo: float, hi: float, feather: float, axis: str) -> Weight:
    def weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        c = y if axis == "rows" else x
        return _soft((c - lo) / feather + 0.5) * _soft((hi - c) / feather + 0.5)

    return weight


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _seed_for(seed: int, causes: Sequence[str], kind: str, angled: bool | None) -> np.random.Generator:
    tag = zlib.crc32(f"{'+'.join(causes)}|{kind}|{angled}".encode())
    return np.random.default_rng([int(seed), tag])


def _ref_patch(material: Material, rng: np.random.Generator) -> np.ndarray:
    n, ss = 256, 2
    t = (np.arange(n * ss, dtype=np.float32) + 0.5) / ss
    U, V = np.meshgrid(t + float(rng.uniform(0, 300)), t + float(rng.uniform(0, 300)))
    img = artifacts.area_down(material.render(U, V), ss)
    img = artifacts.add_grain(img, rng, 0.004)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_scene(*, kind: str = "random", cause: str | Sequence[str] | None = None, seed: int = 0,
               size: tuple[int, int] | None = None, angled: bool | None = None, jpeg_q: int | None = None,
               with_ref: bool | None = None, twin: bool = False) -> Scene:
    """Draw and render one wall scene.

    Args:
        kind: material name (a key of :data:`~.materials.MATERIALS`) or ``"random"`` (drawn among the
            materials that suit the cause, :data:`CAUSE_MATERIALS`).
        cause: a verdict code (:data:`~.truth.CAUSES`), a list of them, or None / ``"clean"`` / ``[]``.
        seed: the scene is a pure function of (seed, cause, kind, angled) and the explicit options.
        size: ``(H, W)`` (even; multiples of 16 keep the 8/16-px grids whole); drawn from :data:`SIZES`.
        angled: angled wall (local period changes 30–70 % across the frame) or fronto-parallel with a small
            roll; drawn (40 % angled) when None.
        jpeg_q: JPEG quality; drawn in 75–95 when None.
        with_ref: give a reference patch; always for ``period_doubled`` / ``period_halved``, else drawn
            (50 %) when None.
        twin: the clean twin of the scene with the same draws: bilinear instead of transposed-conv
            upsampling, antialiased instead of strided subsampling, the reference's period instead of 2× /
            0.5×, no zone, band, grid, edge stripe or seam. Its truth has no cause.

    Returns:
        A :class:`Scene` (``pred`` uint8 ``H×W×3``, ``mask`` bool ``H×W``, ``ref`` uint8 ``256×256×3`` or
        None, ``truth``).
    """
    if cause is None or cause == "clean":
        causes: list[str] = []
    elif isinstance(cause, str):
        causes = [cause]
    else:
        causes = [c for c in cause if c != "clean"]
    for c in causes:
        if c not in CAUSES:
            raise ValueError(f"unknown cause {c!r}; known: {CAUSES}")
    for a, b in (("period_doubled", "period_halved"), ("checkerboard", "aliasing"), ("grid_s8", "grid_s16")):
        if a in causes and b in causes:
            raise ValueError(f"{a} and {b} exclude each other in one scene")
    rng = _seed_for(seed, causes, kind, angled)
    # ---- material -----------------------------------------------------------------------------------
    allowed = set(MATERIALS)
    for c in causes:
        allowed &= set(CAUSE_MATERIALS[c])
    if kind == "random":
        kind = str(rng.choice(sorted(allowed)))
    elif kind not in MATERIALS:
        raise ValueError(f"unknown material {kind!r}; known: {sorted(MATERIALS)}")
    if angled is None:
        angled = bool(rng.random() < 0.4)
    if size is None:
        sizes = [s for s in SIZES if max(s) <= 768] if "aliasing" in causes else list(SIZES)
        size = sizes[int(rng.integers(len(sizes)))]
    h, w = int(size[0]), int(size[1])
    if h % 2 or w % 2:
        raise ValueError(f"size must be even, got {size}")
    q = int(jpeg_q) if jpeg_q is not None else int(rng.integers(75, 96))
    alias_variant = str(rng.choice(["stride", "stride_up"]))
    if "aliasing" in causes and kind == "wallpaper":
        alias_variant = "stride"  # its motif is too faint at 2–4 px for a visible fold after a stride of 2
    lo_p = _MIN_PERIOD.get(kind, 8.0)
    if "aliasing" in causes:
        p_tex = float(rng.uniform(1.3, 2.8) if alias_variant == "stride" else rng.uniform(2.2, 3.5))
    elif "period_doubled" in causes:
        p_tex = _loguniform(rng, lo_p, max(lo_p * 1.5, 32.0))
    elif "period_halved" in causes:
        p_tex = _loguniform(rng, 2 * lo_p, max(4 * lo_p, 80.0))
    elif {"doubled_zone", "bands_rows", "bands_cols"} & set(causes):
        # up to 64 px (bricks and planks of 50-60 px, whose 2x region holds under two periods per window),
        # and up to a twelfth of the shorter side (a 2x period still fits a few times in a zone)
        p_tex = _loguniform(rng, lo_p, max(lo_p * 1.5, min(64.0, min(h, w) / 12.0)))
    else:
        p_tex = _loguniform(rng, lo_p, max(lo_p * 1.5, 56.0))
    if kind.startswith("photo_"):
        # one copy of the photograph covers the frame (no mirror seam in view), centred on the frame centre
        span = max(h, w) / 490.0 * float(rng.uniform(1.0, 1.15))
        p_tex = photo_period() * span if kind == "photo_brick" else span
    material = make_material(kind, rng, p_tex)
    p_tex = material.period if material.period is not None else p_tex
    if with_ref is None:
        with_ref = bool(rng.random() < 0.5)
    if {"period_doubled", "period_halved"} & set(causes):
        with_ref = True
    # ---- view, layout, light --------------------------------------------------------------------------
    view = angled_view(h, w, rng, normal=material.normal) if angled else fronto(h, w, rng)
    if kind.startswith("photo_"):
        view = replace(view, u0=0.0, v0=0.0)
    layout = _draw_layout(rng, h, w)
    light = draw_lighting(rng)
    cx = np.array([w / 2])
    v_floor = view.to_texture(cx, np.array([layout.floor_y]))[1]
    v_ceil = view.to_texture(cx, np.array([layout.ceil_y]))[1] if layout.ceil_y > 0 else np.array([-1e9])
    # wall extent at the centre column, for zones and bands
    top = max(layout.ceil_y, 0.0)
    bottom = layout.floor_y
    params: dict[str, Any] = {
        "generator": GENERATOR_VERSION, "material": material.params, "texture_period": material.period,
        "normal": list(material.normal),
        "view": {"roll_deg": view.roll_deg, "gx": view.gx, "gy": view.gy},
        "floor_y": layout.floor_y, "ceil_y": layout.ceil_y if layout.ceil_y > 0 else None,
        "furniture_boxes": [[b.x0, b.y0, b.x1, b.y1] for b in layout.furniture],
        "frame_boxes": [[b.x0, b.y0, b.x1, b.y1] for b in layout.frames],
        "lighting": {"grad": light.grad, "hot": light.hot, "vignette": light.vignette,
                     "shadow": light.shadow},
    }
    # ---- texture-level causes ---------------------------------------------------------------------------
    wall_scale = 1.0
    zones: list[_Zone] = []
    k_draw = 2.0 if "period_doubled" in causes else 0.5 if "period_halved" in causes else 1.0
    if k_draw != 1.0 and not twin:
        wall_scale = k_draw
    # draws below happen whatever ``twin`` is, so a twin shares every draw with its scene
    if "doubled_zone" in causes:
        rx = w * rng.uniform(0.12, 0.3)
        ry = (bottom - top) * rng.uniform(0.15, 0.35)
        zx = rng.uniform(rx + 0.05 * w, w - rx - 0.05 * w)
        zy = rng.uniform(top + ry, bottom - ry) if bottom - top > 2 * ry else (top + bottom) / 2
        feather = float(rng.uniform(6, 20))
        wob = [float(rng.uniform(0, 0.15)), float(rng.uniform(0, 6.3)), float(rng.uniform(0, 0.1)),
               float(rng.uniform(0, 6.3))]
        params["zone"] = {"shape": "ellipse", "cx": float(zx), "cy": float(zy), "rx": float(rx),
                          "ry": float(ry), "feather": feather}
        if not twin:
            zones.append(_Zone(_zone_weight(float(zx), float(zy), float(rx), float(ry), feather, wob), 2.0,
                               2.0))
    band_axis = None
    for c in ("bands_rows", "bands_cols"):
        if c not in causes:
            continue
        axis = "rows" if c == "bands_rows" else "cols"
        extent = (top, bottom) if axis == "rows" else (0.0, float(w))
        span = extent[1] - extent[0]
        width = span * rng.uniform(0.18, 0.45)  # up to nearly half the wall (a band is not a thin line)
        start = rng.uniform(extent[0] + 0.08 * span, extent[1] - 0.08 * span - width)
        feather = float(rng.uniform(3, 10))
        axes = ["x"] if material.normal == (1.0, 0.0) else ["x", "y"]
        doubled = str(rng.choice(axes))
        params["band"] = {"shape": "band", "axis": axis, "start": float(start), "width": float(width),
                          "feather": feather, "doubled_axis": doubled}
        band_axis = axis
        if not twin:
            zones.append(_Zone(_band_weight(float(start), float(start + width), feather, axis),
                               2.0 if doubled == "x" else 1.0, 2.0 if doubled == "y" else 1.0))
    spec = _Spec(h, w, view, material, wall_scale, tuple(zones), layout, light, float(v_floor[0]),
                 float(v_ceil[0]))
    # ---- render (with the resampling causes) ---------------------------------------------------------------
    grain = float(rng.uniform(0.006, 0.02))
    delta = float(rng.uniform(0.02, 0.06)) * (1 if rng.random() < 0.5 else -1)
    grain_rng = np.random.default_rng(rng.integers(2**63))
    if "checkerboard" in causes:
        half, _ = _render(spec, 0.5, 2)
        half = artifacts.add_grain(half, grain_rng, grain)
        img = artifacts.bilinear_upsample(half) if twin else artifacts.deconv_upsample(half, delta)
        params["cb_modulation"] = abs(delta)
        params["cb_delta"] = delta
    elif "aliasing" in causes:
        params["alias_variant"] = alias_variant
        if alias_variant == "stride":
            hi, _ = _render(spec, 3, 1)
            img = artifacts.antialiased_down(hi, 3) if twin else artifacts.stride(hi, 3)
        else:
            full = _render(spec, 1, 1)[0]  # the generator's sharp full-resolution output
            img = artifacts.bilinear_upsample(artifacts.antialiased_down(full, 2) if twin
                                              else artifacts.stride(full, 2))
        img = artifacts.add_grain(img, grain_rng, grain)
    else:
        img = _optics(_render(spec, 1, 1)[0])
        img = artifacts.add_grain(img, grain_rng, grain)
    cover = _render_cover(spec)
    mask = cover > 0.5
    # ---- image-level causes ----------------------------------------------------------------------------
    post_rng = np.random.default_rng(rng.integers(2**63))
    for c in ("grid_s8", "grid_s16"):
        if c in causes:
            k = 8 if c == "grid_s8" else 16
            amp = float(post_rng.uniform(0.01, 0.03))
            seams = bool(post_rng.random() < 0.4)
            field_ = artifacts.block_grid((h, w), post_rng, stride=k, rms=amp, seams=seams)
            params["vae_amp"], params["vae_seams"], params["vae_stride"] = amp, seams, k
            if not twin:
                img = np.clip(img + field_, 0, 1)
    if "edge_artifact" in causes:
        out, info = artifacts.edge_stripe(img, post_rng)
        params["edge"] = info
        if not twin:
            img = out
    if "mask_seam" in causes:
        out, info = artifacts.mask_seam(img, mask, post_rng)
        params["seam"] = info
        if not twin:
            img = out
    pred, data = artifacts.jpeg(img, q)
    ref = _ref_patch(material, np.random.default_rng(rng.integers(2**63))) if with_ref else None
    # ---- truth -------------------------------------------------------------------------------------------
    periodic = material.period is not None and "aliasing" not in causes
    scale_truth = 1.0 if twin else wall_scale
    period_px = float(material.period * scale_truth) if periodic and material.period else None
    ref_period = float(material.period) if (with_ref and periodic and material.period) else None
    change, tx, ty = _perspective_truth(view, mask, material, h, w, wall_scale=wall_scale)
    # the label follows the view (a wall seen at an angle); where only the brick photograph's own scale
    # change (taken from below) passes 10 %, the label is None: measuring it is right, not measuring it
    # is what a fronto-parallel label means, so neither counts
    view_change, _, _ = _perspective_truth(view, mask, material, h, w, wall_scale=wall_scale, own=False)
    label = True if view_change >= 0.2 else False if change < 0.1 else None
    context = []
    if label:
        context.append("perspective")
    if kind in APERIODIC:
        context.append("aperiodic")
    truth = Truth(id=scene_id(causes, kind, angled, seed, twin), causes=[] if twin else list(causes),
                  context=context, texture=kind, size=[h, w], jpeg_q=q, period_px=period_px,
                  period_approx=material.period_approx, ref_period_px=ref_period, perspective_label=label,
                  period_change=change, true_trend_x=tx, true_trend_y=ty,
                  band_axis=None if twin else band_axis, angled=bool(angled),
                  twin_of=scene_id(causes, kind, angled, seed) if twin else None, params=params)
    return Scene(pred=pred, mask=mask, ref=ref, truth=truth, jpeg_bytes=data)


def _render_cover(spec: _Spec) -> np.ndarray:
    """Wall coverage at output resolution (2× supersampled), without rendering the textures."""
    h, w, ss = spec.height, spec.width, 2
    ys = (np.arange(h * ss, dtype=np.float32) + 0.5) / ss
    xs = (np.arange(w * ss, dtype=np.float32) + 0.5) / ss
    X, Y = np.meshgrid(xs, ys)
    _u, v = spec.view.to_texture(X, Y)
    cover: np.ndarray = ((v <= spec.v_floor) & (v >= spec.v_ceil)).astype(np.float32)
    for b in spec.layout.furniture + spec.layout.frames:
        cover = cover * (1 - np.clip(0.5 - _rounded_box_sd(X, Y, b) * ss, 0, 1))
    return artifacts.area_down(cover[..., None], ss)[..., 0]


def _perspective_truth(view: View, mask: np.ndarray, material: Material, h: int,
                       w: int, *, wall_scale: float = 1.0, own: bool = True) -> tuple[float, float, float]:
    """(relative change of the local period over the wall, trend of log period along x/W, along y/H).

    The brick photograph's own perspective (:func:`~.materials.photo_scale_factor`, the texture drawn at
    ``1 / wall_scale``) multiplies the view's (``own=False``: the view's alone): a fronto-parallel view of it
    changes scale too."""
    ys, xs = np.mgrid[4:h:8, 4:w:8]
    keep = mask[ys, xs]
    if keep.sum() < 10:
        keep = np.ones_like(keep)
    x = xs[keep].astype(np.float64) + 0.5
    y = ys[keep].astype(np.float64) + 0.5
    if material.period is not None:
        p = local_period(view, x, y, 1.0, material.normal)
        if own:
            p = p * photo_scale_factor(material, view.to_texture(x, y)[1] / wall_scale)
    else:
        p = 1.0 / np.sqrt(np.abs(np.linalg.det(view.jacobian(x, y))))
    lo, med, hi = (float(q) for q in np.percentile(p, [2, 50, 98]))
    a = np.stack([np.ones_like(x), x / w - 0.5, y / h - 0.5], axis=1)
    coef, *_ = np.linalg.lstsq(a, np.log(p), rcond=None)
    return float((hi - lo) / med), float(coef[1]), float(coef[2])
