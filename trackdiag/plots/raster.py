"""A small raster plotting kit: figures drawn with Pillow, no matplotlib figure machinery.

The figures the training loop draws go through here: a colour-mapped heat map is a lookup table and a
resize; a line plot is a few ``ImageDraw`` calls. Everything is drawn at ``SS``× the output size and
box-reduced, which gives anti-aliased lines and text for a few milliseconds per figure (a matplotlib
figure costs 0.2–1 s).

Coordinates given to :class:`Canvas` and :class:`Axes` are output pixels (``x`` right, ``y`` down).
Colour maps are the matplotlib ones (256-entry lookup tables read once from ``matplotlib.colormaps``, which
does not import pyplot or build a figure); fonts are DejaVu Sans (matplotlib's copy or the system's), or PIL's
default font when neither is there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any, Optional

import numpy as np

__all__ = ["SS", "warm", "Canvas", "Axes", "colorize", "lut", "nice_ticks", "font", "fmt_tick"]

#: Supersampling factor (drawn at SS× and reduced).
SS = 2

Colour = Any  # "#rrggbb", a name PIL knows, or an RGB tuple


@cache
def _font_path() -> Optional[str]:
    import importlib.util
    from pathlib import Path

    candidates = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    candidates += [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
                   Path("/usr/share/fonts/TTF/DejaVuSans.ttf")]
    for p in candidates:
        if p.is_file():
            return str(p)
    return None


@lru_cache(maxsize=32)
def font(size: float) -> Any:
    """DejaVu Sans at ``size`` output pixels (times :data:`SS`)."""
    from PIL import ImageFont

    px = max(6, int(round(size * SS)))
    path = _font_path()
    if path is not None:
        try:
            return ImageFont.truetype(path, px)
        except OSError:
            pass
    try:
        return ImageFont.load_default(px)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


@lru_cache(maxsize=32)
def lut(name: str) -> np.ndarray:
    """``256×3`` uint8 lookup table of the matplotlib colour map ``name`` (grey ramp without matplotlib)."""
    try:
        from matplotlib import colormaps

        rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
        return np.round(rgba[:, :3] * 255).astype(np.uint8)
    except Exception:
        g = np.arange(256, dtype=np.uint8)
        return np.stack([g, g, g], axis=1)


def warm() -> None:
    """Load the fonts and colour maps the in-loop figures use (the render process calls it at start)."""
    for size in (8, 9, 10, 11, 12):
        font(size)
    for name in ("magma", "viridis", "RdBu_r", "hot", "inferno", "gray"):
        lut(name)


def colorize(values: np.ndarray, cmap: str, vmin: float, vmax: float,
             nan_rgb: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """``h×w`` values → ``h×w×3`` uint8 through the colour map (NaN/Inf → ``nan_rgb``)."""
    a = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    with np.errstate(invalid="ignore"):
        idx = np.clip((a - vmin) / span * 255.0 + 0.5, 0, 255)
    ok = np.isfinite(idx)
    out = lut(cmap)[np.where(ok, idx, 0).astype(np.intp)]
    out[~ok] = nan_rgb
    return out


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values inside ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks


def fmt_tick(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.2g}"


def _rgb(c: Colour) -> Any:
    if isinstance(c, str) and c.startswith("#") and len(c) == 4:
        return "#" + "".join(ch * 2 for ch in c[1:])
    return c


class Canvas:
    """A white ``width×height`` figure (output pixels)."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image, ImageDraw

        self.width, self.height = int(width), int(height)
        self.img = Image.new("RGB", (self.width * SS, self.height * SS), "white")
        self.draw = ImageDraw.Draw(self.img)

    # -- primitives, in output pixels ------------------------------------------------------------------
    def text(self, xy: tuple[float, float], s: str, *, size: float = 11, fill: Colour = "#222",
             anchor: str = "la", rotate: bool = False) -> None:
        """Text at ``xy`` (PIL anchors: l/m/r + a/m/s/d). ``rotate``: vertical, reading bottom-up."""
        f = font(size)
        x, y = xy[0] * SS, xy[1] * SS
        if not rotate:
            self.draw.text((x, y), s, font=f, fill=_rgb(fill), anchor=anchor)
            return
        from PIL import Image, ImageDraw

        left, top, right, bottom = self.draw.textbbox((0, 0), s, font=f, anchor="lt")
        tmp = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
        ImageDraw.Draw(tmp).text((-left, -top), s, font=f, fill=255, anchor="lt")
        tmp = tmp.rotate(90, expand=True)
        w, h = tmp.size
        ox = {"l": 0, "m": w // 2, "r": w}[anchor[0]]
        oy = {"a": 0, "t": 0, "m": h // 2, "s": h, "d": h, "b": h}[anchor[1]]
        self.img.paste(Image.new("RGB", tmp.size, _rgb(fill)), (int(x - ox), int(y - oy)), tmp)

    def text_width(self, s: str, size: float = 11) -> float:
        left, _top, right, _bottom = self.draw.textbbox((0, 0), s, font=font(size))
        return (right - left) / SS

    def rect(self, box: tuple[float, float, float, float], *, outline: Optional[Colour] = None,
             fill: Optional[Colour] = None, width: float = 1.0) -> None:
        x0, y0, x1, y1 = (v * SS for v in box)
        self.draw.rectangle((x0, y0, x1, y1), outline=_rgb(outline) if outline else None,
                            fill=_rgb(fill) if fill else None, width=max(1, int(round(width * SS))))

    def line(self, pts: Sequence[tuple[float, float]], *, fill: Colour, width: float = 1.0,
             dash: Optional[tuple[float, float]] = None) -> None:
        """A polyline (output pixels); ``dash`` (on, off) in output pixels."""
        if len(pts) < 2:
            return
        xy = [(x * SS, y * SS) for x, y in pts]
        w = max(1, int(round(width * SS)))
        if dash is None:
            self.draw.line(xy, fill=_rgb(fill), width=w, joint="curve")
            return
        on, off = dash[0] * SS, dash[1] * SS
        period, phase = on + off, 0.0
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):
            seg = math.hypot(x1 - x0, y1 - y0)
            t = 0.0
            while t < seg:
                pos = (phase + t) % period
                run = (on - pos) if pos < on else (period - pos)
                t1 = min(seg, t + run)
                if pos < on and seg > 0:
                    a, b = t / seg, t1 / seg
                    self.draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                                    (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=_rgb(fill), width=w)
                t = t1
            phase = (phase + seg) % period

    def image(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> None:
        """Paste an ``h×w×3`` uint8 array into ``box`` (output pixels), cells kept sharp (nearest)."""
        from PIL import Image

        x0, y0, x1, y1 = (int(round(v * SS)) for v in box)
        if x1 <= x0 or y1 <= y0:
            return
        im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize((x1 - x0, y1 - y0),
                                                                              Image.Resampling.NEAREST)
        self.img.paste(im, (x0, y0))

    def marker(self, x: float, y: float, *, shape: str, fill: Colour, size: float = 6.0) -> None:
        """One marker centred on (x, y).

        Shapes: ``^`` triangle, ``s`` square, ``D`` diamond, ``x`` cross, ``o`` dot.
        """
        r = size / 2 * SS
        cx, cy = x * SS, y * SS
        c = _rgb(fill)
        if shape == "^":
            self.draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=c)
        elif shape == "s":
            self.draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=c)
        elif shape == "D":
            self.draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=c)
        elif shape == "x":
            w = max(1, SS)
            self.draw.line([(cx - r, cy - r), (cx + r, cy + r)], fill=c, width=w)
            self.draw.line([(cx - r, cy + r), (cx + r, cy - r)], fill=c, width=w)
        else:
            self.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)

    def legend(self, entries: Sequence[tuple[str, dict[str, Any]]], *, anchor: tuple[float, float],
               corner: str = "ur", size: float = 9) -> None:
        """A framed legend; each entry (label, style) with style keys ``color``, ``dash``, ``width``,
        ``marker``, ``patch``. ``corner`` says which corner of the legend sits at ``anchor``."""
        if not entries:
            return
        row, pad, sw = size * 1.5, 4.0, 22.0
        w = max(self.text_width(label, size) for label, _ in entries) + sw + 3 * pad
        h = row * len(entries) + pad
        x0 = anchor[0] - (w if corner[1] == "r" else 0)
        y0 = anchor[1] - (h if corner[0] == "l" else 0)
        self.rect((x0, y0, x0 + w, y0 + h), outline="#bbb", fill="white")
        for i, (label, st) in enumerate(entries):
            cy = y0 + pad / 2 + row * (i + 0.5)
            if st.get("patch"):
                self.rect((x0 + pad, cy - size * 0.4, x0 + pad + sw, cy + size * 0.4), fill=st["color"])
            elif st.get("marker"):
                self.marker(x0 + pad + sw / 2, cy, shape=st["marker"], fill=st["color"], size=7)
            else:
                self.line([(x0 + pad, cy), (x0 + pad + sw, cy)], fill=st["color"], width=st.get("width", 1.5),
                          dash=st.get("dash"))
            self.text((x0 + 2 * pad + sw, cy), label, size=size, anchor="lm")

    def colorbar(self, box: tuple[float, float, float, float], *, cmap: str, vmin: float, vmax: float,
                 label: str = "", ticks: Optional[Sequence[float]] = None,
                 tick_labels: Optional[Sequence[str]] = None) -> None:
        """A vertical colour bar in ``box`` with ticks on the right and ``label`` beside them."""
        x0, y0, x1, y1 = box
        ramp = lut(cmap)[::-1][:, None, :]
        self.image(ramp, box)
        self.rect(box, outline="#444")
        ticks = list(ticks) if ticks is not None else nice_ticks(vmin, vmax, 5)
        labels = list(tick_labels) if tick_labels is not None else [fmt_tick(t) for t in ticks]
        widest = 0.0
        span = (vmax - vmin) or 1.0
        for t, s in zip(ticks, labels, strict=True):
            y = y1 - (t - vmin) / span * (y1 - y0)
            if y0 - 0.5 <= y <= y1 + 0.5:
                self.line([(x1, y), (x1 + 3, y)], fill="#444")
                self.text((x1 + 5, y), s, size=9, anchor="lm")
                widest = max(widest, self.text_width(s, 9))
        if label:
            self.text((x1 + 9 + widest, (y0 + y1) / 2), label, size=10, anchor="lm", rotate=True)

    def to_array(self) -> np.ndarray:
        """The figure as ``height×width×3`` uint8."""
        return np.asarray(self.img.reduce(SS) if SS > 1 else self.img, dtype=np.uint8).copy()


class Axes:
    """A plot box on a :class:`Canvas` with linear data limits; ``yflip`` puts ``ylim[0]`` at the top."""

    def __init__(self, canvas: Canvas, box: tuple[float, float, float, float], *, xlim: tuple[float, float],
                 ylim: tuple[float, float], yflip: bool = False) -> None:
        self.c = canvas
        self.box = box
        self.xlim = (float(xlim[0]), float(xlim[1]) if xlim[1] != xlim[0] else float(xlim[0]) + 1.0)
        self.ylim = (float(ylim[0]), float(ylim[1]) if ylim[1] != ylim[0] else float(ylim[0]) + 1.0)
        self.yflip = yflip

    def px(self, x: Any) -> Any:
        x0, _, x1, _ = self.box
        frac = (np.asarray(x, dtype=np.float64) - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        return x0 + frac * (x1 - x0)

    def py(self, y: Any) -> Any:
        _, y0, _, y1 = self.box
        t = (np.asarray(y, dtype=np.float64) - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return y0 + t * (y1 - y0) if self.yflip else y1 - t * (y1 - y0)

    def _inside_x(self, x: float) -> bool:
        lo, hi = sorted(self.xlim)
        return lo <= x <= hi

    def _inside_y(self, y: float) -> bool:
        lo, hi = sorted(self.ylim)
        return lo <= y <= hi

    def plot(self, x: np.ndarray, y: np.ndarray, *, color: Colour, width: float = 1.2,
             dash: Optional[tuple[float, float]] = None) -> None:
        """A curve, broken at NaN/Inf, clipped to the box."""
        xs, ys = np.asarray(self.px(x), dtype=np.float64), np.asarray(self.py(y), dtype=np.float64)
        bx0, by0, bx1, by1 = self.box
        ok = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = np.clip(xs, bx0, bx1), np.clip(ys, by0, by1)
        start = None
        for i in range(len(xs) + 1):
            good = i < len(xs) and bool(ok[i])
            if good and start is None:
                start = i
            elif not good and start is not None:
                seg = list(zip(xs[start:i].tolist(), ys[start:i].tolist(), strict=True))
                if len(seg) == 1:
                    self.c.marker(seg[0][0], seg[0][1], shape="o", fill=color, size=max(2.0, width * 2))
                else:
                    self.c.line(seg, fill=color, width=width, dash=dash)
                start = None

    def vline(self, x: float, *, color: Colour, width: float = 1.0, dash: Optional[tuple[float, float]] = None
              ) -> None:
        if math.isfinite(x) and self._inside_x(x):
            px = float(self.px(x))
            self.c.line([(px, self.box[1]), (px, self.box[3])], fill=color, width=width, dash=dash)

    def hline(self, y: float, *, color: Colour, width: float = 1.0, dash: Optional[tuple[float, float]] = None
              ) -> None:
        if math.isfinite(y) and self._inside_y(y):
            py = float(self.py(y))
            self.c.line([(self.box[0], py), (self.box[2], py)], fill=color, width=width, dash=dash)

    def image(self, rgb: np.ndarray, extent: Optional[tuple[float, float, float, float]] = None) -> None:
        """Paste ``rgb`` over data ``extent`` (left, right, bottom, top as in imshow).

        Without ``extent`` it fills the whole box.
        """
        if extent is None:
            self.c.image(rgb, self.box)
            return
        left, right, bottom, top = extent
        xa, xb = sorted((float(self.px(left)), float(self.px(right))))
        ya, yb = sorted((float(self.py(top)), float(self.py(bottom))))
        bx0, by0, bx1, by1 = self.box
        # Crop what falls outside the box (in cells of the array).
        h, w = rgb.shape[:2]
        cx0 = max(0, int(math.floor((bx0 - xa) / (xb - xa) * w))) if xb > xa else 0
        cx1 = min(w, int(math.ceil((bx1 - xa) / (xb - xa) * w))) if xb > xa else w
        cy0 = max(0, int(math.floor((by0 - ya) / (yb - ya) * h))) if yb > ya else 0
        cy1 = min(h, int(math.ceil((by1 - ya) / (yb - ya) * h))) if yb > ya else h
        if cx1 <= cx0 or cy1 <= cy0:
            return
        nxa, nxb = xa + cx0 / w * (xb - xa), xa + cx1 / w * (xb - xa)
        nya, nyb = ya + cy0 / h * (yb - ya), ya + cy1 / h * (yb - ya)
        sub = rgb[cy0:cy1, cx0:cx1]
        # Paste then re-clip: draw onto the canvas but never outside the box.
        from PIL import Image

        S = SS
        X0, Y0, X1, Y1 = (int(round(v * S)) for v in (nxa, nya, nxb, nyb))
        if X1 <= X0 or Y1 <= Y0:
            return
        im = Image.fromarray(np.ascontiguousarray(sub, dtype=np.uint8)).resize((X1 - X0, Y1 - Y0),
                                                                               Image.Resampling.NEAREST)
        BX0, BY0, BX1, BY1 = (int(round(v * S)) for v in self.box)
        im = im.crop((max(0, BX0 - X0), max(0, BY0 - Y0), min(X1, BX1) - X0, min(Y1, BY1) - Y0))
        self.c.img.paste(im, (max(X0, BX0), max(Y0, BY0)))

    def frame(self, *, xticks: Optional[Sequence[float]] = None, yticks: Optional[Sequence[float]] = None,
              xlabels: Optional[Sequence[str]] = None, ylabels: Optional[Sequence[str]] = None,
              xlabel: str = "", ylabel: str = "", title: str = "", grid: bool = False,
              tick_size: float = 10, label_size: float = 11, title_size: float = 12) -> None:
        """Box, ticks (auto when None; ``[]`` for none), axis labels, title, optional grid."""
        x0, y0, x1, y1 = self.box
        xt = nice_ticks(min(self.xlim), max(self.xlim)) if xticks is None else list(xticks)
        yt = nice_ticks(min(self.ylim), max(self.ylim)) if yticks is None else list(yticks)
        xl = [fmt_tick(v) for v in xt] if xlabels is None else list(xlabels)
        yl = [fmt_tick(v) for v in yt] if ylabels is None else list(ylabels)
        widest = 0.0
        for v, s in zip(xt, xl, strict=True):
            if not self._inside_x(v):
                continue
            px = float(self.px(v))
            if grid:
                self.c.line([(px, y0), (px, y1)], fill="#e4e4e4")
            self.c.line([(px, y1), (px, y1 + 4)], fill="#333")
            self.c.text((px, y1 + 6), s, size=tick_size, anchor="ma")
        for v, s in zip(yt, yl, strict=True):
            if not self._inside_y(v):
                continue
            py = float(self.py(v))
            if grid:
                self.c.line([(x0, py), (x1, py)], fill="#e4e4e4")
            self.c.line([(x0 - 4, py), (x0, py)], fill="#333")
            self.c.text((x0 - 6, py), s, size=tick_size, anchor="rm")
            widest = max(widest, self.c.text_width(s, tick_size))
        self.c.rect(self.box, outline="#333")
        if xlabel:
            self.c.text(((x0 + x1) / 2, y1 + 8 + tick_size * 1.4), xlabel, size=label_size, anchor="ma")
        if ylabel:
            self.c.text((x0 - 10 - widest - label_size * 1.2, (y0 + y1) / 2), ylabel, size=label_size,
                        anchor="mm", rotate=True)
        if title:
            self.c.text(((x0 + x1) / 2, y0 - 6), title, size=title_size, anchor="md")

    def grid_under(self) -> None:
        """Light grid lines at the auto ticks (call before plotting so curves sit on top)."""
        x0, y0, x1, y1 = self.box
        for v in nice_ticks(min(self.xlim), max(self.xlim)):
            px = float(self.px(v))
            self.c.line([(px, y0), (px, y1)], fill="#e6e6e6")
        for v in nice_ticks(min(self.ylim), max(self.ylim)):
            py = float(self.py(v))
            self.c.line([(x0, py), (x1, py)], fill="#e6e6e6")
