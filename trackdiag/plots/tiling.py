"""Figures of the tiling analyzer (seed section 4.1), one renderer per figure, drawn with Pillow
(:mod:`trackdiag.plots.raster`, no matplotlib figure): they are drawn in the training loop.

Every renderer takes the maps of :func:`trackdiag.analyzers.tiling.tiling_metrics` (on the host, without the
``map/`` prefix) and returns an ``H×W×3`` uint8 image; :func:`render_all` draws the six of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .figuredata import AcfMarks, LocalGeometry, RadialMarks
from .raster import Axes, Canvas, colorize

__all__ = [
    "FIGURES",
    "HOW_TO_READ",
    "acf",
    "fft_log",
    "local_period",
    "local_period_bands",
    "radial_profile",
    "render_all",
]

#: Figure names, in report order (file names are ``<name>.png``).
FIGURES = ("radial_profile", "fft_log_hann", "fft_log_nohann", "acf", "local_period_px", "local_period_bands")

#: How to read each figure (shown under it in index.html).
HOW_TO_READ: dict[str, str] = {
    "radial_profile": "Mean power per ring (log scale) of the detrended, Hann-windowed image. Red: f*, "
                      "dashed: 0.5·f* and 2·f*, grey dotted: the ACF period. If E2f_over_Ef or Ehalf_over_Ef "
                      "> 1 there is more energy at a harmonic than at f*: high risk of fundamental/harmonic "
                      "confusion (doubled or halved tiles).",
    "fft_log_hann": "log10 power with the Hann window (DC in the centre). Compare with the unwindowed one: a "
                    "bright cross there that is gone here is an FFT edge effect, not texture.",
    "fft_log_nohann": "log10 power without a window. A bright horizontal/vertical cross through the centre "
                      "that the Hann version does not show means the frame borders do not match "
                      "(see border_cross_index); it often drives row/column artifacts.",
    "acf": "Left: 2-D autocorrelation (Wiener–Khinchin, window-normalised). Right: the ACF along the "
           "direction of f*; its first significant peak (red) is the period in pixels. It should sit at "
           "S/f*: a peak at half or twice that means a jump to 2f or f/2. The ACF is less sensitive to "
           "amplitude distortion.",
    "local_period_px": "Local period (px) in overlapping windows. Stripes or blocks reveal a grid tied to "
                       "up/downsampling, strides or patch stitching; a smooth drift is perspective.",
    "local_period_bands": "Where the local period is ≈ 2× the base period (the median). Right/bottom: the "
                          "share of such windows per row/column with the threshold; read with band_score "
                          "and band_max_run. Bright lines = rows/columns of doubled period.",
}


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _pad(lo: float, hi: float, frac: float = 0.05) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (0.0, 1.0)
    if hi <= lo:
        return (lo - 0.5, hi + 0.5)
    d = (hi - lo) * frac
    return (lo - d, hi + d)


def _heat_panel(c: Canvas, box: tuple[float, float, float, float], a: np.ndarray, *, cmap: str, vmin: float,
                vmax: float, extent: tuple[float, float, float, float], xlim: tuple[float, float],
                ylim: tuple[float, float], title: str, xlabel: str, ylabel: str, cbar_label: str = "",
                colorbar: bool = True) -> Axes:
    """A heat map over data ``extent`` (left, right, bottom, top) in ``box``, y down, with its colour bar."""
    ax = Axes(c, box, xlim=xlim, ylim=ylim, yflip=True)
    ax.image(colorize(a, cmap, vmin, vmax), extent)
    ax.frame(xlabel=xlabel, ylabel=ylabel, title=title)
    if colorbar:
        c.colorbar((box[2] + 12, box[1], box[2] + 26, box[3]), cmap=cmap, vmin=vmin, vmax=vmax,
                   label=cbar_label)
    return ax


#: Size (height, width) of each figure in pixels.
SIZES = {"radial_profile": (400, 600), "fft_log": (440, 500), "acf": (420, 1000),
         "local_period_px": (440, 540), "local_period_bands": (560, 640)}


def radial_profile(profile: np.ndarray, marks: np.ndarray, *, title: str = "radial profile") -> np.ndarray:
    """``profile`` ``2×R`` (radius, mean power); ``marks`` ``1×5`` (f*, own f, ref f, ACF f, S).

    Returns ``400×600×3`` uint8: log10 power against the radius with f* (red), 0.5·f* and 2·f* (red dashed),
    the own fundamental (blue, when it differs) and the ACF period (grey dotted) marked.
    """
    r, pw = np.asarray(profile, dtype=np.float64)
    mk = RadialMarks.from_array(marks)
    fstar, fown, facf, side = mk.fstar_bin, mk.fundamental_bin, mk.acf_bin, mk.side_px
    h, w = SIZES["radial_profile"]
    c = Canvas(w, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (r >= 1) & np.isfinite(pw) & (pw > 0)
        lp = np.log10(np.where(ok, pw, np.nan))
    xs = r[ok]
    xmarks = [v for v in (fstar, 0.5 * fstar, 2 * fstar, fown, facf) if _finite(v)]
    xlo = min([float(xs.min())] if xs.size else [0.0])
    xhi = max([float(xs.max())] if xs.size else [1.0])
    xlim = _pad(min([xlo] + xmarks), max([xhi] + xmarks), 0.03)
    ylim = _pad(float(np.nanmin(lp)) if ok.any() else 0.0, float(np.nanmax(lp)) if ok.any() else 1.0)
    ax = Axes(c, (62, 30, w - 14, h - 50), xlim=xlim, ylim=ylim)
    ax.grid_under()
    legend: list[tuple[str, dict[str, Any]]] = [("mean power per ring", {"color": "#333", "width": 1.0})]
    ax.plot(r[ok], lp[ok], color="#333", width=1.0)
    if _finite(fstar):
        sp = f" ({side / fstar:.1f} px)" if _finite(side) and fstar else ""
        for k, lab in ((0.5, "0.5·f*"), (2.0, "2·f*")):
            ax.vline(k * fstar, color="red", width=1.0, dash=(6, 4))
            legend.append((lab, {"color": "red", "dash": (6, 4), "width": 1.0}))
        ax.vline(fstar, color="red", width=1.5)
        legend.insert(1, (f"f* = {fstar:.2f} bins{sp}", {"color": "red", "width": 1.5}))
    if _finite(fown) and _finite(fstar) and abs(fown - fstar) > 0.02 * fstar:
        ax.vline(fown, color="#1565c0", width=1.0)
        legend.append((f"own fundamental {fown:.2f}", {"color": "#1565c0", "width": 1.0}))
    if _finite(facf):
        ax.vline(facf, color="grey", width=1.0, dash=(1.5, 2.5))
        legend.append((f"ACF period → {facf:.2f} bins", {"color": "grey", "dash": (1.5, 2.5), "width": 1.0}))
    side_s = int(side) if _finite(side) else "?"
    ax.frame(xlabel=f"radius (bins of the {side_s}-point FFT)", ylabel="log10 power", title=title)
    c.legend(legend, anchor=(ax.box[2] - 6, ax.box[1] + 6), corner="ur", size=8)
    return c.to_array()


def fft_log(logp: np.ndarray, *, title: str, side: float = math.nan) -> np.ndarray:
    """``h×w`` log10 power (centred) as a ``440×500×3`` uint8 image, 7 decades of ``magma`` below the peak."""
    a = np.asarray(logp, dtype=np.float64)
    finite = a[np.isfinite(a)]
    vmax = float(finite.max()) if finite.size else 1.0
    half = (side / 2) if _finite(side) else a.shape[1] / 2
    h, w = SIZES["fft_log"]
    c = Canvas(w, h)
    side_px = min(w - 150, h - 80)
    box = (70.0, 34.0, 70.0 + side_px, 34.0 + side_px)
    _heat_panel(c, box, a, cmap="magma", vmin=vmax - 7, vmax=vmax, extent=(-half, half, half, -half),
                xlim=(-half, half), ylim=(-half, half), title=title, xlabel="kx (bins)", ylabel="ky (bins)",
                cbar_label="log10 power")
    return c.to_array()


def acf(acf2d: np.ndarray, profile: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """``acf2d`` ``h×w`` (lags ±max_lag), ``profile`` ``2×T`` (lag px, ρ), ``marks`` ``1×4``
    (ACF period, spectral period, ref period, max_lag). Returns ``420×1000×3`` uint8: the 2-D ACF (left) and
    the ACF along f* with the first peak (red), S/f* (blue dashed) and the reference (green dotted)."""
    mk = AcfMarks.from_array(marks)
    pacf, pspec, pref, max_lag = mk.acf_period_px, mk.fundamental_period_px, mk.ref_period_px, mk.max_lag
    h, w = SIZES["acf"]
    c = Canvas(w, h)
    ml = max_lag if _finite(max_lag) else 1.0
    side_px = h - 90
    _heat_panel(c, (64.0, 34.0, 64.0 + side_px, 34.0 + side_px), np.asarray(acf2d, dtype=np.float64),
                cmap="RdBu_r", vmin=-1.0, vmax=1.0, extent=(-ml, ml, ml, -ml), xlim=(-ml, ml), ylim=(-ml, ml),
                title="2-D ACF", xlabel="dx (px)", ylabel="dy (px)")
    lags, rho = np.asarray(profile, dtype=np.float64)
    fin = np.isfinite(lags) & np.isfinite(rho)
    xm = [v for v in (pacf, pspec, pref) if _finite(v)]
    lo = float(lags[fin].min()) if fin.any() else 0.0
    hi = float(lags[fin].max()) if fin.any() else 1.0
    xlim = _pad(min([lo] + xm), max([hi] + xm), 0.02)
    ylim = _pad(min(float(rho[fin].min()), -0.05) if fin.any() else -1.0,
                max(float(rho[fin].max()), 0.05) if fin.any() else 1.0)
    ax = Axes(c, (560.0, 34.0, w - 16.0, h - 56.0), xlim=xlim, ylim=ylim)
    ax.grid_under()
    ax.hline(0.0, color="#aaa", width=0.6)
    ax.plot(lags, rho, color="#333", width=1.0)
    legend: list[tuple[str, dict[str, Any]]] = []
    if _finite(pacf):
        ax.vline(pacf, color="red", width=1.5)
        legend.append((f"first ACF peak {pacf:.2f} px", {"color": "red", "width": 1.5}))
    if _finite(pspec):
        ax.vline(pspec, color="#1565c0", width=1.0, dash=(6, 4))
        legend.append((f"S/f* = {pspec:.2f} px", {"color": "#1565c0", "dash": (6, 4)}))
    if _finite(pref):
        ax.vline(pref, color="green", width=1.2, dash=(1.5, 2.5))
        legend.append((f"reference {pref:.2f} px", {"color": "green", "dash": (1.5, 2.5), "width": 1.2}))
    ax.frame(xlabel="lag along the f* direction (px)", ylabel="ρ", title="ACF along f*")
    c.legend(legend, anchor=(ax.box[2] - 6, ax.box[1] + 6), corner="ur", size=8)
    return c.to_array()


def _centres(lo: float, hi: float, n: int) -> np.ndarray:
    """Centres of ``n`` equal cells from ``lo`` to ``hi`` (one per map row or column)."""
    return np.linspace(lo, hi, n + 1)[:-1] + (hi - lo) / max(n, 1) / 2


def _extent(g: LocalGeometry[float], shape: tuple[int, int]) -> tuple[float, float, float, float]:
    win, stride = g.window_px, g.stride_px
    gh, gw = shape
    y0, x0 = win / 2 - stride / 2, win / 2 - stride / 2
    return (x0, x0 + gw * stride, y0 + gh * stride, y0)


def _image_box(left: float, top: float, max_w: float, max_h: float, ih: float, iw: float
               ) -> tuple[float, float, float, float]:
    """The largest box of the image's aspect ratio inside ``max_w×max_h`` at (left, top)."""
    s = min(max_w / max(iw, 1.0), max_h / max(ih, 1.0))
    return (left, top, left + iw * s, top + ih * s)


def local_period(period: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """Local period map ``h×w`` (px, NaN unmeasured, shown white) over image coordinates; ``440×540×3``."""
    a = np.asarray(period, dtype=np.float64)
    finite = a[np.isfinite(a)]
    vmin, vmax = ((float(np.percentile(finite, 2)), float(np.percentile(finite, 98))) if finite.size
                  else (0.0, 1.0))
    g = LocalGeometry.from_array(geometry)
    h, w = SIZES["local_period_px"]
    c = Canvas(w, h)
    box = _image_box(70.0, 34.0, w - 170.0, h - 84.0, g.height, g.width)
    _heat_panel(c, box, a, cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-6), extent=_extent(g, a.shape),
                xlim=(0.0, g.width), ylim=(0.0, g.height),
                title=f"local period (window {int(g.window_px)} px)",
                xlabel="x (px)", ylabel="y (px)", cbar_label="period (px)")
    return c.to_array()


def local_period_bands(doubled: np.ndarray, row_frac: np.ndarray, col_frac: np.ndarray, geometry: np.ndarray,
                       *, base: float = math.nan, hint: str = "") -> np.ndarray:
    """Doubled-period map with the per-row (right) and per-column (bottom) shares and the run threshold
    (grey dashed); ``560×640×3`` uint8."""
    d = np.asarray(doubled, dtype=np.float64)
    rf = np.asarray(row_frac, dtype=np.float64).reshape(-1)
    cf = np.asarray(col_frac, dtype=np.float64).reshape(-1)
    g = LocalGeometry.from_array(geometry)
    thr = g.band_frac_threshold
    h, w = SIZES["local_period_bands"]
    c = Canvas(w, h)
    ext = _extent(g, d.shape)
    box = _image_box(64.0, 40.0, w - 64.0 - 150.0, h - 40.0 - 130.0, g.height, g.width)
    base_s = f"{base:.1f} px" if _finite(base) else "n/a"
    ax = Axes(c, box, xlim=(0.0, g.width), ylim=(0.0, g.height), yflip=True)
    ax.image(colorize(d, "hot", 0.0, 1.0), ext)
    suffix = " — " + hint if hint else ""
    ax.frame(xticks=[], ylabel="y (px)", title=f"≈2× period (base {base_s}){suffix}", title_size=10)
    # Rows: share per map row, plotted against y (shares the map's y axis).
    axr = Axes(c, (box[2] + 14, box[1], box[2] + 124, box[3]), xlim=(0.0, 1.0), ylim=(0.0, g.height),
               yflip=True)
    axr.vline(thr, color="grey", width=0.8, dash=(4, 3))
    if rf.size:
        axr.plot(rf, _centres(ext[3], ext[2], rf.size), color="red", width=1.2)
    axr.frame(xticks=[0.0, 0.5, 1.0], yticks=[], title="rows", title_size=9)
    # Columns: share per map column against x (shares the map's x axis).
    axb = Axes(c, (box[0], box[3] + 12, box[2], box[3] + 92), xlim=(0.0, g.width), ylim=(0.0, 1.0))
    axb.hline(thr, color="grey", width=0.8, dash=(4, 3))
    if cf.size:
        axb.plot(_centres(ext[0], ext[1], cf.size), cf, color="red", width=1.2)
    axb.frame(yticks=[0.0, 0.5, 1.0], xlabel="x (px)", ylabel="cols", label_size=9)
    c.legend([(f"run threshold {thr:.2f}", {"color": "grey", "dash": (4, 3)}),
              ("share of ≈2× windows", {"color": "red"})], anchor=(w - 8, h - 8), corner="lr", size=8)
    return c.to_array()


def _any_finite(*arrays: Any) -> bool:
    return all(np.isfinite(np.asarray(a, dtype=np.float64)).any() for a in arrays)


def render_all(maps: Mapping[str, np.ndarray], metrics: Mapping[str, float],
               texts: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The six figures from a tiling Result's maps. A figure whose maps are missing or hold no finite value
    is skipped (no empty chart)."""
    out: dict[str, np.ndarray] = {}
    side = RadialMarks.from_array(maps["radial_marks"]).side_px if "radial_marks" in maps else math.nan
    if "radial_profile" in maps and "radial_marks" in maps:
        pw = np.asarray(maps["radial_profile"], dtype=np.float64)
        if pw.ndim == 2 and pw.shape[0] == 2 and (np.isfinite(pw[1]) & (pw[1] > 0) & (pw[0] >= 1)).any():
            out["radial_profile"] = radial_profile(maps["radial_profile"], maps["radial_marks"])
    fft_titles = (("fft_log_hann", "log power, Hann window"), ("fft_log_nohann", "log power, no window"))
    for name, title in fft_titles:
        if name in maps and _any_finite(maps[name]):
            out[name] = fft_log(maps[name], title=title, side=side)
    if "acf" in maps and "acf_profile" in maps and "acf_marks" in maps and _any_finite(maps["acf"]):
        out["acf"] = acf(maps["acf"], maps["acf_profile"], maps["acf_marks"])
    if "local_period_px" in maps and "local_geometry" in maps and _any_finite(maps["local_period_px"]):
        out["local_period_px"] = local_period(maps["local_period_px"], maps["local_geometry"])
        if "local_doubled" in maps:
            base = float(np.asarray(maps.get("local_base", [[math.nan]])).reshape(-1)[0])
            out["local_period_bands"] = local_period_bands(
                maps["local_doubled"], maps.get("band_row_frac", np.zeros(1)),
                maps.get("band_col_frac", np.zeros(1)), maps["local_geometry"], base=base,
                hint=str(texts.get("band_axis_hint", "")))
    return out
