"""Figures of the tiling analyzer (seed section 4.1), one renderer per figure, Agg only (no pyplot).

Every renderer takes the maps of :func:`trackdiag.analyzers.tiling.tiling_metrics` (on the host, without the
``map/`` prefix) and returns an ``H×W×3`` uint8 image; :func:`render_all` draws the six of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import figure_to_rgb, new_figure

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
    "acf": "Left: 2-D autocorrelation (Wiener–Khinchin, window-normalised). Right: the ACF along the direction "
           "of f*; its first significant peak (red) is the period in pixels. It should sit at S/f*: a peak at "
           "half or twice that means a jump to 2f or f/2. The ACF is less sensitive to amplitude distortion.",
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


def radial_profile(profile: np.ndarray, marks: np.ndarray, *, title: str = "radial profile") -> np.ndarray:
    """``profile`` ``2×R`` (radius, mean power); ``marks`` ``1×5`` (f*, own f, ref f, ACF f, S)."""
    r, pw = np.asarray(profile, dtype=np.float64)
    mk = np.asarray(marks, dtype=np.float64).reshape(-1)
    fstar, fown, _fref, facf, side = (mk.tolist() + [math.nan] * 5)[:5]
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ok = (r >= 1) & np.isfinite(pw) & (pw > 0)
    # log10 on a linear axis: same picture as semilogy, without the (slow) log-tick machinery.
    ax.plot(r[ok], np.log10(pw[ok]), color="#333", lw=1.0, label="mean power per ring")
    if _finite(fstar):
        ax.axvline(fstar, color="red", lw=1.5, label=f"f* = {fstar:.2f} bins ({side / fstar:.1f} px)")
        for k, lab in ((0.5, "0.5·f*"), (2.0, "2·f*")):
            ax.axvline(k * fstar, color="red", ls="--", lw=1.0, label=lab)
    if _finite(fown) and _finite(fstar) and abs(fown - fstar) > 0.02 * fstar:
        ax.axvline(fown, color="#1565c0", lw=1.0, label=f"own fundamental {fown:.2f}")
    if _finite(facf):
        ax.axvline(facf, color="grey", ls=":", lw=1.0, label=f"ACF period → {facf:.2f} bins")
    ax.set_xlabel(f"radius (bins of the {int(side) if _finite(side) else '?'}-point FFT)")
    ax.set_ylabel("log10 power")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    return figure_to_rgb(fig)


def fft_log(logp: np.ndarray, *, title: str, side: float = math.nan) -> np.ndarray:
    """``h×w`` log10 power (centred) as an image."""
    a = np.asarray(logp, dtype=np.float64)
    fig = new_figure(5.0, 4.4)
    ax = fig.add_subplot()
    finite = a[np.isfinite(a)]
    vmax = float(finite.max()) if finite.size else 1.0
    half = (side / 2) if _finite(side) else a.shape[1] / 2
    im = ax.imshow(a, cmap="magma", vmin=vmax - 7, vmax=vmax, extent=(-half, half, half, -half),
                   interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("kx (bins)")
    ax.set_ylabel("ky (bins)")
    fig.colorbar(im, ax=ax, label="log10 power")
    return figure_to_rgb(fig)


def acf(acf2d: np.ndarray, profile: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """``acf2d`` ``h×w`` (lags ±max_lag), ``profile`` ``2×T`` (lag px, ρ), ``marks`` ``1×4``
    (ACF period, spectral period, ref period, max_lag)."""
    mk = np.asarray(marks, dtype=np.float64).reshape(-1)
    pacf, pspec, pref, max_lag = (mk.tolist() + [math.nan] * 4)[:4]
    fig = new_figure(10.0, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    ml = max_lag if _finite(max_lag) else 1.0
    im = ax1.imshow(np.asarray(acf2d, dtype=np.float64), cmap="RdBu_r", vmin=-1, vmax=1,
                    extent=(-ml, ml, ml, -ml), interpolation="nearest")
    ax1.set_title("2-D ACF")
    ax1.set_xlabel("dx (px)")
    ax1.set_ylabel("dy (px)")
    fig.colorbar(im, ax=ax1)
    lags, rho = np.asarray(profile, dtype=np.float64)
    ax2.plot(lags, rho, color="#333", lw=1.0)
    ax2.axhline(0, color="#aaa", lw=0.5)
    if _finite(pacf):
        ax2.axvline(pacf, color="red", lw=1.5, label=f"first ACF peak {pacf:.2f} px")
    if _finite(pspec):
        ax2.axvline(pspec, color="#1565c0", ls="--", lw=1.0, label=f"S/f* = {pspec:.2f} px")
    if _finite(pref):
        ax2.axvline(pref, color="green", ls=":", lw=1.2, label=f"reference {pref:.2f} px")
    ax2.set_xlabel("lag along the f* direction (px)")
    ax2.set_ylabel("ρ")
    ax2.set_title("ACF along f*")
    ax2.legend(fontsize=7)
    return figure_to_rgb(fig)


def _centres(lo: float, hi: float, n: int) -> np.ndarray:
    """Centres of ``n`` equal cells from ``lo`` to ``hi`` (one per map row or column)."""
    return np.linspace(lo, hi, n + 1)[:-1] + (hi - lo) / max(n, 1) / 2


def _extent(geometry: np.ndarray, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    g = np.asarray(geometry, dtype=np.float64).reshape(-1)
    win, stride, _h, _w = g[:4]
    gh, gw = shape
    y0, x0 = win / 2 - stride / 2, win / 2 - stride / 2
    return (x0, x0 + gw * stride, y0 + gh * stride, y0)


def local_period(period: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """Local period map ``h×w`` (px, NaN unmeasured) over image coordinates."""
    a = np.asarray(period, dtype=np.float64)
    fig = new_figure(5.4, 4.4)
    ax = fig.add_subplot()
    finite = a[np.isfinite(a)]
    vmin, vmax = (np.percentile(finite, 2), np.percentile(finite, 98)) if finite.size else (0, 1)
    im = ax.imshow(np.ma.masked_invalid(a), cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-6),
                   extent=_extent(geometry, a.shape), interpolation="nearest")
    g = np.asarray(geometry, dtype=np.float64).reshape(-1)
    ax.set_xlim(0, g[3])
    ax.set_ylim(g[2], 0)
    ax.set_title(f"local period (window {int(g[0])} px)")
    fig.colorbar(im, ax=ax, label="period (px)")
    return figure_to_rgb(fig)


def local_period_bands(doubled: np.ndarray, row_frac: np.ndarray, col_frac: np.ndarray, geometry: np.ndarray,
                       *, base: float = math.nan, hint: str = "") -> np.ndarray:
    """Doubled-period map with the per-row (right) and per-column (bottom) shares and the run threshold."""
    d = np.asarray(doubled, dtype=np.float64)
    rf = np.asarray(row_frac, dtype=np.float64).reshape(-1)
    cf = np.asarray(col_frac, dtype=np.float64).reshape(-1)
    g = np.asarray(geometry, dtype=np.float64).reshape(-1)
    thr = g[4] if g.size > 4 else 0.35
    fig = new_figure(6.4, 5.6)
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(4, 1))
    ax = fig.add_subplot(gs[0, 0])
    ext = _extent(g, d.shape)
    ax.imshow(np.ma.masked_invalid(d), cmap="hot", vmin=0, vmax=1, extent=ext, interpolation="nearest")
    ax.set_xlim(0, g[3])
    ax.set_ylim(g[2], 0)
    base_s = f"{base:.1f} px" if _finite(base) else "n/a"
    ax.set_title(f"≈2× period (base {base_s}){' — ' + hint if hint else ''}", fontsize=9)
    axr = fig.add_subplot(gs[0, 1], sharey=ax)
    ys = _centres(ext[3], ext[2], rf.size)
    axr.plot(rf, ys, color="red")
    axr.axvline(thr, color="grey", ls="--", lw=0.8)
    axr.set_xlim(0, 1)
    axr.set_title("rows", fontsize=8)
    axb = fig.add_subplot(gs[1, 0], sharex=ax)
    xs = _centres(ext[0], ext[1], cf.size)
    axb.plot(xs, cf, color="red")
    axb.axhline(thr, color="grey", ls="--", lw=0.8)
    axb.set_ylim(0, 1)
    axb.set_ylabel("cols", fontsize=8)
    return figure_to_rgb(fig)


def render_all(maps: Mapping[str, np.ndarray], metrics: Mapping[str, float],
               texts: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The six figures from a tiling Result's maps (missing maps → that figure is skipped)."""
    out: dict[str, np.ndarray] = {}
    side = float(np.asarray(maps["radial_marks"]).reshape(-1)[4]) if "radial_marks" in maps else math.nan
    if "radial_profile" in maps and "radial_marks" in maps:
        out["radial_profile"] = radial_profile(maps["radial_profile"], maps["radial_marks"])
    if "fft_log_hann" in maps:
        out["fft_log_hann"] = fft_log(maps["fft_log_hann"], title="log power, Hann window", side=side)
    if "fft_log_nohann" in maps:
        out["fft_log_nohann"] = fft_log(maps["fft_log_nohann"], title="log power, no window", side=side)
    if "acf" in maps and "acf_profile" in maps and "acf_marks" in maps:
        out["acf"] = acf(maps["acf"], maps["acf_profile"], maps["acf_marks"])
    if "local_period_px" in maps and "local_geometry" in maps:
        out["local_period_px"] = local_period(maps["local_period_px"], maps["local_geometry"])
        if "local_doubled" in maps:
            base = float(np.asarray(maps.get("local_base", [[math.nan]])).reshape(-1)[0])
            out["local_period_bands"] = local_period_bands(
                maps["local_doubled"], maps.get("band_row_frac", np.zeros(1)), maps.get("band_col_frac", np.zeros(1)),
                maps["local_geometry"], base=base, hint=str(texts.get("band_axis_hint", "")))
    return out
