"""A plain, per-image numpy implementation of the tiling metrics: the speed and correctness reference for
:mod:`trackdiag.analyzers.tiling`.

It follows the definitions in ``docs/tiling.md`` the straightforward way, one image at a time: full 2-D FFTs
where the torch version projects or reads only the lines it needs (the ACF comes from a zero-padded 2-D
inverse FFT sampled bilinearly along f*'s direction; the border cross from a full periodic-plus-smooth
decomposition), ring masks instead of radial histograms, and a Python loop over the local windows.
Resizes use a 2×2 box filter and separable linear interpolation, so ``resize_*`` match only roughly; the
other metrics agree with the torch version (``tests/test_tiling_reference.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EULER_GAMMA = 0.5772156649015329


# ------------------------------------------------------------------------------------------------------
# Preparation and spectra
# ------------------------------------------------------------------------------------------------------
def luminance(img: np.ndarray) -> np.ndarray:
    """``H×W`` or ``H×W×C`` → ``H×W`` float64 (Rec. 601 for RGB)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.shape[2] >= 3:
        return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return a.mean(axis=2)


def hann(n: int) -> np.ndarray:
    return np.hanning(n) if n > 1 else np.ones(1)


def detrend(x: np.ndarray, w: np.ndarray, order: int = 2) -> np.ndarray:
    h, wd = x.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, wd), indexing="ij")
    cols = [np.ones_like(xx)] + ([xx, yy] if order >= 1 else []) + ([xx * xx, xx * yy,
                                                                     yy * yy] if order >= 2 else [])
    a = np.stack([c.ravel() for c in cols], axis=1)
    sw = np.sqrt(w.ravel())
    coef, *_ = np.linalg.lstsq(a * sw[:, None], x.ravel() * sw, rcond=None)
    return x - (a @ coef).reshape(h, wd)


def rfft_grid(s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ky = np.fft.fftfreq(s, d=1.0 / s)[:, None] * np.ones((1, s // 2 + 1))
    kx = np.fft.rfftfreq(s, d=1.0 / s)[None, :] * np.ones((s, 1))
    wt = np.full((s, s // 2 + 1), 2.0)
    wt[:, 0] = 1.0
    if s % 2 == 0:
        wt[:, -1] = 1.0
    return ky, kx, np.hypot(ky, kx), wt


def _val(p: np.ndarray, iy: int, ix: int) -> float:
    s, c = p.shape
    if ix < 0:
        return float(p[(-iy) % s, -ix])
    if ix > c - 1:
        return float(p[(-iy) % s, s - ix])
    return float(p[iy % s, ix])


def refine(p: np.ndarray, iy: int, ix: int, ky0: float, kx0: float) -> tuple[float, float]:
    def off(lm: float, lc: float, lp: float) -> float:
        den = lm - 2 * lc + lp
        return float(np.clip(0.5 * (lm - lp) / den, -0.5, 0.5)) if den < 0 else 0.0

    lg = lambda v: math.log(max(v, 1e-300))
    lc = lg(_val(p, iy, ix))
    return (ky0 + off(lg(_val(p, iy - 1, ix)), lc, lg(_val(p, iy + 1, ix))),
            kx0 + off(lg(_val(p, iy, ix - 1)), lc, lg(_val(p, iy, ix + 1))))


def find_peaks(p: np.ndarray, r: np.ndarray, ky: np.ndarray, kx: np.ndarray, r_min: float, r_max: float,
               k: int = 16, reach: int = 2) -> list[tuple[float, float, float, float, int, int]]:
    """(power, ky, kx, radius, iy, ix) of the k strongest local maxima in the band, strongest first."""
    s, c = p.shape
    # Extend with the Hermitian twins (kx < 0 and kx > S/2) and wrap ky, then a sliding maximum.
    twin = p[(-np.arange(s)) % s]
    left = twin[:, reach:0:-1]
    right = twin[:, [s - (c - 1 + j) for j in range(1, reach + 1)]] if reach else twin[:, :0]
    ext = np.concatenate([left, p, right], axis=1)
    ext = np.concatenate([ext[s - reach:], ext, ext[:reach]], axis=0)
    win = np.lib.stride_tricks.sliding_window_view(ext, (2 * reach + 1, 2 * reach + 1))
    is_max = p >= win.max(axis=(-2, -1))
    band = (r >= r_min) & (r <= r_max) & is_max & (p > 0)
    idx = np.flatnonzero(band)
    idx = idx[np.argsort(-p.ravel()[idx], kind="stable")][:k]
    out = []
    for i in idx:
        iy, ix = divmod(int(i), c)
        ry, rx = refine(p, iy, ix, float(ky[iy, ix]), float(kx[iy, ix]))
        out.append((float(p[iy, ix]), ry, rx, math.hypot(ry, rx), iy, ix))
    return out


def pick(peaks: list, rel_power: float = 0.25, tol: float = 0.04) -> int:
    if not peaks:
        return -1
    r0, p0 = peaks[0][3], peaks[0][0]
    best, best_r = 0, r0
    for j, pk in enumerate(peaks):
        m = r0 / max(pk[3], 1e-6)
        mi = round(m)
        if 1 <= mi <= 8 and abs(m - mi) <= tol * mi and pk[0] >= rel_power * p0 and pk[3] < best_r:
            best, best_r = j, pk[3]
    return best


def twin_radius(peaks: list, j: int, rel_power: float = 0.25) -> float:
    r0, pmax = peaks[j][3], peaks[0][0]
    ws = [(pk[0], pk[3]) for pk in peaks if abs(pk[3] - r0) <= 0.02 * r0 and pk[0] >= rel_power * pmax]
    tot = sum(w for w, _ in ws)
    return sum(w * r for w, r in ws) / tot if tot > 0 else float("nan")


def geo_mean_ring(p: np.ndarray, r: np.ndarray, wt: np.ndarray, center: float, half: float) -> float:
    ring = np.abs(r - center) <= half
    if not ring.any():
        return float("nan")
    return float(np.exp((np.log(np.maximum(p[ring], 1e-300)) * wt[ring]).sum() / wt[ring].sum()))


def acf_profile(sig: np.ndarray, w: np.ndarray, direction: tuple[float, float], t_max: float, step: float,
                floor: float, s: int, max_bin: float) -> np.ndarray:
    """Normalised ACF along ``direction`` (uy, ux) from zero-padded 2-D FFTs, sampled bilinearly."""
    h, wd = sig.shape
    size = (2 * h, 2 * wd)
    fs = np.fft.rfft2(sig, s=size)
    ps = np.abs(fs) ** 2
    # White noise has the same expected power per bin on any zero-padded grid: subtract the same floor.
    ps = np.maximum(ps - floor, 0.0)
    # Only frequencies with |ky|, |kx| <= max_bin (bins of the S-grid), as in the torch version.
    fy = np.abs(np.fft.fftfreq(size[0]))[:, None] * s
    fx = np.fft.rfftfreq(size[1])[None, :] * s
    ps = np.where((fy <= max_bin + 0.5) & (fx <= max_bin + 0.5), ps, 0.0)
    rs = np.fft.irfft2(ps, s=size)
    rw = np.fft.irfft2(np.abs(np.fft.rfft2(w, s=size)) ** 2, s=size)
    t = np.arange(0.0, t_max + step / 2, step)
    yy, xx = t * direction[0], t * direction[1]

    def bilinear(a: np.ndarray) -> np.ndarray:
        y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
        fy, fx = yy - y0, xx - x0
        g = lambda y, x: a[y % size[0], x % size[1]]
        return ((1 - fy) * (1 - fx) * g(y0, x0) + (1 - fy) * fx * g(y0, x0 + 1) + fy * (1 - fx) * g(y0 + 1,
                                                                                                    x0)
                + fy * fx * g(y0 + 1, x0 + 1))

    num, den = bilinear(rs), bilinear(rw)
    rho = (num / np.maximum(den, 1e-300)) / (rs[0, 0] / rw[0, 0])
    rho[den <= 0.05 * rw[0, 0]] = 0.0
    return rho


def first_peak(rho: np.ndarray, step: float, min_lag: float) -> tuple[float, float]:
    n = len(rho)
    first_low = next((i for i in range(1, n) if rho[i] <= 0.5), n)
    if first_low == n:
        first_low = next((i for i in range(1, n - 1) if rho[i] <= rho[i - 1] and rho[i] < rho[i + 1]), n)
    cands = [i for i in range(max(first_low, 1), n - 1)
             if rho[i] >= rho[i - 1] and rho[i] > rho[i + 1] and i * step >= min_lag]
    if not cands:
        return float("nan"), 0.0
    top = max(rho[i] for i in cands)
    for i in cands:
        if rho[i] >= 0.5 * top and rho[i] >= 0.05:
            a, b, c = rho[i - 1], rho[i], rho[i + 1]
            den = a - 2 * b + c
            d = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0
            return i * step + d * step, float(b - 0.25 * (a - c) * d)
    return float("nan"), 0.0


def periodicity(x: np.ndarray, valid: np.ndarray, masked: bool, *, min_period_px: float = 3.0,
                max_period_frac: float = 0.25) -> dict[str, Any]:
    h, wd = x.shape
    s = max(h, wd)
    v = valid & np.isfinite(x)
    x0 = np.where(v, x, 0.0)
    w = np.outer(hann(h), hann(wd)) * (apodize(v) if masked else v)
    sig = detrend(x0, w) * w
    p = np.abs(np.fft.rfft2(sig, s=(s, s))) ** 2
    ky, kx, r, wt = rfft_grid(s)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, wd)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    peaks = find_peaks(p, r, ky, kx, r_min, r_max)
    out: dict[str, Any] = {"sig": sig, "w": w, "p": p, "s": s, "grid": (ky, kx, r, wt)}
    if not peaks:
        out.update(radius=float("nan"), acf=float("nan"), rho=0.0, score=0.0, index=(0, 0),
                   direction=(0.0, 1.0))
        return out
    j = pick(peaks)
    rj = peaks[j][3]
    j = max((i for i, q in enumerate(peaks) if abs(q[3] - rj) <= 0.02 * rj), key=lambda i: peaks[i][0])
    radius = twin_radius(peaks, j)
    pk = peaks[j]
    nrm = max(math.hypot(pk[1], pk[2]), 1e-6)
    direction = (pk[1] / nrm, pk[2] / nrm)
    floor = math.exp(EULER_GAMMA) * geo_mean_ring(p, r, wt, 0.425 * s, 0.075 * s)
    step = 0.25
    rho = acf_profile(sig, w, direction, max(2.0, 0.45 * min(h, wd)), step, floor, s, r_max)
    lag, rh = first_peak(rho, step, max(max(min_period_px, 2.0) * 0.75, 0.3 * s / radius))
    # Octave check, as in the torch version.
    if math.isfinite(lag):
        r_acf = s / lag
        r0 = peaks[0][3]
        best = None
        for jj, q in enumerate(peaks):
            m = r0 / max(q[3], 1e-6)
            mi = round(m)
            if (mi >= 1 and abs(m - mi) <= 0.04 * mi and abs(q[3] - r_acf) <= 0.08 * r_acf
                    and q[0] >= 0.1 * peaks[0][0] and (best is None or q[0] > peaks[best][0])):
                best = jj
        if best is not None and best != j:
            j = best
            radius = twin_radius(peaks, j, rel_power=0.1)
            pk = peaks[j]
    bg = geo_mean_ring(p, r, wt, radius, 1.0)
    ratio = pk[0] / max(bg, 1e-300)
    gate = min(max(math.log10(max(ratio, 1e-30)) - 1.0, 0.0), 1.0)
    out.update(radius=radius, acf=lag, rho=rh, score=math.sqrt(min(max(rh, 0.0), 1.0)) * gate,
               index=(pk[4], pk[5]), direction=direction, peak_ratio=ratio)
    return out


def apodize(v: np.ndarray, taper_px: int | None = None) -> np.ndarray:
    """Raised-cosine taper inside the mask's edges (box mean of the mask, outside-frame counts as valid)."""
    h, w = v.shape
    t = taper_px or max(3, round(0.03 * min(h, w)))
    k = 2 * t + 1
    padded = np.pad(v.astype(np.float64), t, constant_values=1.0)
    c = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)
    ramp = np.clip((box - 0.5) * 2, 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)) * v


# ------------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------------
def ring_energy(p: np.ndarray, r: np.ndarray, wt: np.ndarray, center: float, extra: np.ndarray | None = None
                ) -> float:
    half = max(2.0, 0.05 * center)
    ring = (np.abs(r - center) <= half) & (r >= 1.0)
    if extra is not None:
        ring &= extra
    return float((p * wt * ring).sum())


def checkerboard(p: np.ndarray, total: float, kstar: tuple[float, float], strides=(2, 8)) -> dict[str, float]:
    s, _c = p.shape
    out = {}
    ks = np.asarray(kstar)
    kp = np.asarray([-ks[1], ks[0]])
    k2 = float(ks @ ks)
    for stride in strides:
        e = 0.0
        f = [(i if 2 * i <= stride else i - stride) / stride for i in range(stride)]
        for fy in f:
            for fx in f:
                if (fy, fx) == (0.0, 0.0):
                    continue
                skip = False
                for gy in {fy, -0.5 if fy == 0.5 else fy}:
                    for gx in {fx, -0.5 if fx == 0.5 else fx}:
                        g = np.asarray([gy * s, gx * s])
                        if k2 > 1e-6:
                            a, b = round(float(g @ ks) / k2), round(float(g @ kp) / k2)
                            dist = np.linalg.norm(g - (a * ks + b * kp))
                            if dist <= 2.0 + 0.03 * np.linalg.norm(g) and abs(a) <= 8 and abs(b) <= 8:
                                skip = True
                if skip:
                    continue
                iy, ix = round(fy * s), round(fx * s)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        e += _val(p, iy + dy, ix + dx)
        out[f"checkerboard_s{stride}"] = min(math.sqrt(e / max(total, 1e-300)), 1.0)
    return out


def border_cross(u: np.ndarray) -> dict[str, float]:
    h, w = u.shape
    v = np.zeros_like(u)
    dv = u[-1] - u[0]
    v[0] += dv
    v[-1] -= dv
    dh = u[:, -1] - u[:, 0]
    v[:, 0] += dh
    v[:, -1] -= dh
    big_u = np.fft.rfft2(u)
    qy = np.fft.fftfreq(h, d=1.0 / h)[:, None]
    qx = np.fft.rfftfreq(w, d=1.0 / w)[None, :]
    den = 2 * np.cos(2 * np.pi * qy / h) + 2 * np.cos(2 * np.pi * qx / w) - 4
    den[0, 0] = 1.0
    big_s = np.fft.rfft2(v) / den
    big_s[0, 0] = 0
    big_p = big_u - big_s
    side = max(h, w)
    rad = np.hypot(qy * side / h, qx * side / w)
    axis = ((np.abs(qy) <= 1) | (qx <= 1)) & (rad >= 2.0)
    s2, p2 = np.abs(big_s[axis]) ** 2, np.abs(big_p[axis]) ** 2
    tot = s2 + p2
    ok = tot > 1e-12 * tot.max() if tot.size else np.zeros(0, bool)
    index = float(np.median(s2[ok] / tot[ok])) if ok.any() else 0.0
    wt = np.full(big_u.shape, 2.0)
    wt[:, 0] = 1.0
    if w % 2 == 0:
        wt[:, -1] = 1.0
    pu = np.abs(big_u) ** 2 * wt
    ax_all = ((np.abs(qy) <= 1) | (qx <= 1)) & ~((qy == 0) & (qx == 0))
    eu = pu.sum() - pu[0, 0]
    return {"border_cross_index": index,
            "axis_energy_frac_nohann": float(pu[ax_all].sum() / eu) if eu > 0 else 0.0}


def resize_down_up(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    d = x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    ys = (np.arange(h) + 0.5) / 2 - 0.5
    xs = (np.arange(w) + 0.5) / 2 - 0.5
    rows = np.stack([np.interp(xs, np.arange(d.shape[1]), row) for row in d])
    return np.stack([np.interp(ys, np.arange(d.shape[0]), col) for col in rows.T], axis=1)


def peak_near(p: np.ndarray, iy: int, ix: int, ky: np.ndarray, kx: np.ndarray, reach: int = 3) -> float:
    s, c = p.shape
    best, arg = -1.0, (iy, ix)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            y, x = iy + dy, ix + dx
            if x < 0:
                y, x = (-y) % s, -x
            elif x > c - 1:
                y, x = (-y) % s, s - x
            y %= s
            if p[y, x] > best:
                best, arg = float(p[y, x]), (y, x)
    ry, rx = refine(p, arg[0], arg[1], float(ky[arg]), float(kx[arg]))
    return math.hypot(ry, rx)


def local_periods(x: np.ndarray, *, window_frac: float = 0.25, overlap: int = 3, max_fft_px: int = 64,
                  max_downsample: int = 2, min_peak_ratio: float = 10.0, min_period_px: float = 3.0
                  ) -> tuple[np.ndarray, int]:
    h, w = x.shape
    win = max(16, round(window_frac * min(h, w)))
    ds = max(1, min(max_downsample, win // max_fft_px))
    k = max(8, win // ds)
    st = max(1, k // overlap)
    if ds > 1:
        x = x[: h // ds * ds, : w // ds * ds].reshape(h // ds, ds, w // ds, ds).mean(axis=(1, 3))
    hh, ww = x.shape
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    hw = np.outer(hann(k), hann(k))
    ky, kx, r, wt = rfft_grid(k)
    r_min, r_max = 2.0, min(k / 2.0, k * ds / max(min_period_px, 4.0 * ds))
    band = (r >= r_min) & (r <= r_max)
    out = np.full((gh, gw), np.nan)
    for i in range(gh):
        for j in range(gw):
            patch = x[i * st:i * st + k, j * st:j * st + k]
            m = (patch * hw).sum() / hw.sum()
            p = np.abs(np.fft.rfft2((patch - m) * hw)) ** 2
            peaks = find_peaks(p, r, ky, kx, r_min, r_max, k=8, reach=1)
            if not peaks:
                continue
            jj = pick(peaks)
            rad = twin_radius(peaks, jj)
            bg = np.exp((np.log(np.maximum(p[band], 1e-300)) * wt[band]).sum() / wt[band].sum())
            if peaks[jj][0] / bg >= min_peak_ratio:
                out[i, j] = k * ds / rad
    return out, st * ds


def longest_run(flags: np.ndarray) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def bands(lp: np.ndarray, stride: int) -> dict[str, float]:
    base = float(np.nanmedian(lp)) if np.isfinite(lp).any() else float("nan")
    meas = np.isfinite(lp)
    ratio = lp / base
    dbl = meas & (ratio >= 1.7) & (ratio <= 2.35)

    def smooth(a: np.ndarray) -> np.ndarray:
        return np.array([a[max(0, i - 1):i + 2].mean() for i in range(len(a))])

    rf = smooth(dbl.sum(1) / np.maximum(meas.sum(1), 1))
    cf = smooth(dbl.sum(0) / np.maximum(meas.sum(0), 1))
    rrun, crun = longest_run(rf >= 0.35) * stride, longest_run(cf >= 0.35) * stride
    cols = cf.max() > rf.max()
    return {"band_base_period_px": base, "band_row_frac_max": float(rf.max()),
            "band_col_frac_max": float(cf.max()),
            "band_row_max_run": float(rrun), "band_col_max_run": float(crun),
            "band_axis_is_cols": float(cols),
            "band_score": float(cf.max() if cols else rf.max()),
            "band_max_run": float(crun if cols else rrun)}


def reference_metrics(img: np.ndarray, *, mask: np.ndarray | None = None, ref: np.ndarray | None = None
                      ) -> dict[str, float]:
    """Every numeric tiling metric of one image (``H×W`` or ``H×W×C`` in [0, 1]), the plain numpy way."""
    g = luminance(img)
    finite = np.isfinite(g)
    valid = finite & (mask > 0.5 if mask is not None else True)
    x = np.where(finite, g, 0.0)
    _h, _w = x.shape
    out: dict[str, float] = {"nonfinite_frac": float((~finite).mean()), "valid_px_frac": float(valid.mean())}
    per = periodicity(x, valid, mask is not None)
    lat = lattice_periodicity(x, valid, mask is not None)
    # the wall's score is also its central half's (analyzers/tiling.py: an angled wall's peak smears)
    cy, cx = slice(_h // 4, _h - _h // 4), slice(_w // 4, _w - _w // 4)
    crop = lattice_periodicity(x[cy, cx], valid[cy, cx], mask is not None, max_period_frac=0.4)
    s = per["s"]
    ky, kx, r, wt = per["grid"]
    out.update(fundamental_radius_bin=lat["radius"], fundamental_period_px=s / lat["radius"],
               acf_first_peak_period_px=lat["acf"], acf_first_peak_radius_bin=s / lat["acf"],
               periodicity_score=max(lat["score"], crop["score"]))
    per["radius"] = lat["radius"]
    fstar = per["radius"]
    if ref is not None:
        rg = luminance(ref)
        rp = lattice_periodicity(np.where(np.isfinite(rg), rg, 0.0), np.isfinite(rg), True,
                                 max_period_frac=0.34)
        out["ref_period_px"] = rp["s"] / rp["radius"]
        out["ref_radius_bin"] = s / out["ref_period_px"]
        fstar = out["ref_radius_bin"]
    p = per["p"]
    ef = ring_energy(p, r, wt, fstar)
    out["E2f_over_Ef"] = ring_energy(p, r, wt, 2 * fstar) / ef if ef > 0 else float("nan")
    out["Ehalf_over_Ef"] = ring_energy(p, r, wt, 0.5 * fstar) / ef if ef > 0 else float("nan")
    axis = (np.abs(ky) <= 1) | (np.abs(kx) <= 1)
    out["axis_ratio_at_f"] = ring_energy(p, r, wt, fstar, axis) / ef if ef > 0 else float("nan")
    vf = valid.astype(np.float64)
    out["checkerboard_s2"] = out["checkerboard_score"] = parity_gain(x, vf)
    for k in (8, 16):
        out[f"grid_s{k}"] = grid_excess(x, vf, k)
    mean = (x * vf).sum() / max(vf.sum(), 1.0)
    var = max(((x - mean) ** 2 * vf).sum() / max(vf.sum(), 1.0), 0.0)
    out.update(border_cross((x - mean) * vf))
    vx = valid[:, 1:] & valid[:, :-1]
    vy = valid[1:] & valid[:-1]
    out["shift_mse_dx1"] = float(((x[:, 1:] - x[:, :-1]) ** 2)[vx].mean())
    out["shift_mse_dy1"] = float(((x[1:] - x[:-1]) ** 2)[vy].mean())
    filled = np.where(valid, x, mean)
    up = resize_down_up(filled)
    diff = up - filled
    out["resize_mse_downUp"] = float((diff ** 2)[valid].mean())
    p_up = np.abs(np.fft.rfft2(per["sig"] + diff * per["w"], s=(s, s))) ** 2
    iy, ix = per["index"]
    out["resize_delta_r"] = peak_near(p_up, iy, ix, ky, kx) - peak_near(p, iy, ix, ky, kx)
    lp, stride = local_periods(np.where(valid, x, 0.0))
    out.update(bands(lp, stride))
    out["shift_nmse_dx1"] = out["shift_mse_dx1"] / max(2 * var, 1e-300)
    out["resize_nmse_downUp"] = out["resize_mse_downUp"] / max(var, 1e-300)
    return out


# ------------------------------------------------------------------------------------------------------
# Issue 11 estimators, the plain way (one image, full-plane arrays, Python loops over peaks)
# ------------------------------------------------------------------------------------------------------
def lattice_periodicity(x: np.ndarray, valid: np.ndarray, masked: bool, *, min_period_px: float = 3.0,
                        max_period_frac: float = 0.25, bg_reach: int = 6, k: int = 32,
                        min_prom: float = 30.0) -> dict[str, Any]:
    """The 2-D lattice estimator of ``trackdiag.functional.lattice`` on one image: the prominence of every
    coefficient of the full (fftshifted) plane against its 13×13 neighbourhood without the central 3×3,
    5×5 local maxima, the same candidate and reduction rules, the ACF at the lattice period."""
    h, wd = x.shape
    s = max(h, wd)
    v = valid & np.isfinite(x)
    x0 = np.where(v, x, 0.0)
    w = np.outer(hann(h), hann(wd)) * (apodize(v) if masked else v)
    sig = detrend(x0, w) * w
    full = np.abs(np.fft.fft2(sig, s=(s, s))) ** 2
    lp = np.log(np.maximum(full, np.finfo(np.float32).tiny))
    pad = bg_reach + 2
    ext = np.pad(lp, pad, mode="wrap")  # the full plane is periodic: neighbours wrap
    kk = 2 * bg_reach + 1
    big = np.lib.stride_tricks.sliding_window_view(ext, (kk, kk)).sum(axis=(-2, -1))
    small = np.lib.stride_tricks.sliding_window_view(ext[bg_reach - 1:-(bg_reach - 1),
                                                         bg_reach - 1:-(bg_reach - 1)],
                                                     (3, 3)).sum(axis=(-2, -1))
    prom_ext = ext[bg_reach:-bg_reach, bg_reach:-bg_reach] - (big - small) / (kk * kk - 9)  # framed by 2
    prom = prom_ext[2:-2, 2:-2]
    is_max = prom >= np.lib.stride_tricks.sliding_window_view(prom_ext, (5, 5)).max(axis=(-2, -1))
    fy = np.fft.fftfreq(s, d=1.0 / s)[:, None] * np.ones((1, s))
    fx = np.fft.fftfreq(s, d=1.0 / s)[None, :] * np.ones((s, 1))
    rad = np.hypot(fy, fx)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, wd)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    half = (fx > 0) | ((fx == 0) & (fy > 0))  # one of each Hermitian pair
    cand = is_max & half & (rad >= r_min) & (rad <= r_max) & (fx <= s // 2) & (np.abs(fy) <= s // 2)
    idx = np.flatnonzero(cand)
    promv = prom.ravel()[idx]
    strong = promv >= math.log(min_prom)
    order = np.lexsort((-lp.ravel()[idx], ~strong))  # prominent first, by power; then by prominence
    order = np.concatenate([order[strong[order]], idx.argsort()[:0]]) if strong.any() else np.argsort(-promv)
    idx = idx[order][:k]
    peaks = []
    for i in idx:
        iy, ix = divmod(int(i), s)

        def off(a: float, b: float, c: float) -> float:
            den = a - 2 * b + c
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0

        ry = fy[iy, ix] + off(lp[(iy - 1) % s, ix], lp[iy, ix], lp[(iy + 1) % s, ix])
        rx = fx[iy, ix] + off(lp[iy, (ix - 1) % s], lp[iy, ix], lp[iy, (ix + 1) % s])
        peaks.append(dict(ky=ry, kx=rx, r=math.hypot(ry, rx), p=float(full[iy, ix]),
                          prom=float(math.exp(min(prom[iy, ix], 80.0)))))
    out: dict[str, Any] = {"sig": sig, "w": w, "s": s}
    f = _pick_lattice_np(peaks, min_prom)
    if f is None:
        out.update(radius=float("nan"), acf=float("nan"), rho=0.0, score=0.0, prominence=0.0)
        return out
    (fky, fkx), prom_f = f
    radius = math.hypot(fky, fkx)
    direction = (fky / radius, fkx / radius)
    ky, kx, r, wt = rfft_grid(s)
    p_half = np.abs(np.fft.rfft2(sig, s=(s, s))) ** 2
    floor = math.exp(EULER_GAMMA) * geo_mean_ring(p_half, r, wt, 0.425 * s, 0.075 * s)
    step = 0.25
    rho = acf_profile(sig, w, direction, max(2.0, 0.45 * min(h, wd)), step, floor, s, r_max)
    period = s / radius

    def near(target: float) -> tuple[float, float]:
        best = None
        for i in range(1, len(rho) - 1):
            if rho[i] >= rho[i - 1] and rho[i] > rho[i + 1] and 0.8 * target <= i * step <= 1.2 * target:
                if best is None or rho[i] > rho[best]:
                    best = i
        if best is None:
            return float("nan"), 0.0
        a, b, c = rho[best - 1], rho[best], rho[best + 1]
        den = a - 2 * b + c
        d = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0
        return best * step + d * step, float(b - 0.25 * (a - c) * d)

    lag, rh = near(period)
    _, rh2 = near(2 * period)
    rho_p = max(rh, rh2)
    if not math.isfinite(lag):
        lag, rh = first_peak(rho, step, max(min_period_px, 2.0) * 0.75)
    gate = min(max(math.log10(max(prom_f, 1e-30)) - 1.5, 0.0), 1.0)
    out.update(radius=radius, acf=lag, rho=rh, score=math.sqrt(min(max(rho_p, 0.0), 1.0)) * gate,
               prominence=prom_f)
    return out


def _pick_lattice_np(peaks: list[dict[str, float]], min_prom: float, rel_prom: float = 0.03,
                     rel_power: float = 0.25, weak_power: float = 0.02, tol_bins: float = 0.3,
                     tol_rel: float = 0.03, low_radius: float = 14.0) -> tuple[tuple[float, float],
                                                                               float] | None:
    """``pick_lattice`` of one image, with loops."""
    if not peaks:
        return None
    top = max(q["prom"] for q in peaks)
    ok = [q for q in peaks if q["prom"] >= max(min_prom, rel_prom * top)]

    def dist(a: tuple[float, float], b: tuple[float, float]) -> float:
        return min(math.hypot(a[0] - b[0], a[1] - b[1]), math.hypot(a[0] + b[0], a[1] + b[1]))

    def supported(q: dict[str, float]) -> bool:
        return any(dist((o["ky"], o["kx"]), (m * q["ky"], m * q["kx"])) <= tol_bins + tol_rel * m * q["r"]
                   for m in (2.0, 3.0) for o in ok)

    ok = [q for q in ok if q["r"] >= low_radius or supported(q)]
    if not ok:
        return None
    q1 = max(ok, key=lambda q: q["p"])
    strong = [q for q in ok if q["p"] >= rel_power * q1["p"]]
    weak = [q for q in ok if q["p"] >= weak_power * q1["p"]]
    best = q1
    for m in range(2, 7):
        t = (q1["ky"] / m, q1["kx"] / m)
        near = [q for q in strong if dist((q["ky"], q["kx"]), t) <= tol_bins + tol_rel * math.hypot(*t)]
        if near:
            q = max(near, key=lambda q: q["p"])
            if q["r"] < best["r"]:
                best = q
    for _ in range(2):
        kb, tol = (best["ky"], best["kx"]), tol_bins + tol_rel * best["r"]
        hits = []
        for a in ok:
            for b in ok:
                if a["r"] > 0.85 * best["r"] or b["r"] > 0.85 * best["r"]:
                    continue
                if not any(dist((a["ky"] + sg * b["ky"], a["kx"] + sg * b["kx"]), kb) <= tol for sg in (1,
                                                                                                        -1)):
                    continue
                same = abs(a["r"] - b["r"]) <= 0.05 * a["r"]
                cos = (a["ky"] * b["ky"] + a["kx"] * b["kx"]) / max(a["r"] * b["r"], 1e-9)
                ax_a = min(abs(a["ky"]), abs(a["kx"])) <= 0.18 * a["r"]
                ax_b = min(abs(b["ky"]), abs(b["kx"])) <= 0.18 * b["r"]
                geom = same and ((abs(cos) <= 0.15 and ax_a and ax_b) or abs(abs(cos) - 0.5) <= 0.03)
                if (a in strong and b in strong) or (a in weak and b in weak and geom):
                    hits.append(a)
        if hits:
            best = max(hits, key=lambda q: q["p"])
        for m in range(2, 7):
            t = (best["ky"] / m, best["kx"] / m)
            near = [q for q in strong if dist((q["ky"], q["kx"]), t) <= tol_bins + tol_rel * math.hypot(*t)]
            if near:
                q = max(near, key=lambda q: q["p"])
                if q["r"] < best["r"]:
                    best = q
    f = (best["ky"], best["kx"])
    fr = best["r"]
    ang = math.degrees(math.atan2(abs(f[0]), abs(f[1])))
    perp = [q for q in ok if abs((q["ky"] * f[0] + q["kx"] * f[1]) / max(q["r"] * fr, 1e-9)) <= 0.15
            and abs(q["r"] - fr) <= 0.05 * fr]
    if abs(ang - 45.0) <= 8.0 and perp:
        other = max(perp, key=lambda q: q["p"])
        fa = ((f[0] + other["ky"]) / 2, (f[1] + other["kx"]) / 2)
        fb = ((f[0] - other["ky"]) / 2, (f[1] - other["kx"]) / 2)
        f = fa if min(abs(fa[0]), abs(fa[1])) <= min(abs(fb[0]), abs(fb[1])) else fb
    return f, best["prom"]


def _batch_se(vals: list[float]) -> float:
    """Standard error of the mean of the batch values (NaN with fewer than 4)."""
    if len(vals) < 4:
        return math.nan
    return float(np.std(vals, ddof=1) / math.sqrt(len(vals)))


def _parts(n: int) -> int:
    return max(1, min(4, n))


def parity_gain(x: np.ndarray, v: np.ndarray, block: int = 8) -> float:
    """``checkerboard_s2``: per carrier, Σ (block mean of x·v·c)·(block mean of x·v) / Σ (block mean)², over
    fully valid blocks, less 3 standard errors in quadrature (the same ratio on 4×4 parts of the image);
    the root sum of squares of the three carriers, capped at 3× the root sum of squares of the carriers'
    interquartile means of the 2×2-quad contrasts."""
    h, w = x.shape
    hc, wc = h // block * block, w // block * block
    xr, v = x[:hc, :wc], v[:hc, :wc]
    x = xr * v

    def bm(a: np.ndarray) -> np.ndarray:
        return a.reshape(hc // block, block, wc // block, block).mean(axis=(1, 3))

    sm, full = bm(x), bm(v) >= 0.999
    s2 = np.where(full, sm ** 2, 0.0)
    den = s2.sum()
    if den <= 0:
        return math.nan
    hb, wb = sm.shape
    gr, gc = _parts(hb), _parts(wb)
    rb, cb = hb // gr, wb // gc

    def batches(a: np.ndarray) -> np.ndarray:
        return a[:gr * rb, :gc * cb].reshape(gr, rb, gc, cb).sum(axis=(1, 3)).ravel()

    den_b = batches(s2)
    cy = 1.0 - 2.0 * (np.arange(hc) % 2)
    cx = 1.0 - 2.0 * (np.arange(wc) % 2)
    tot = 0.0
    for c in (cx[None, :], cy[:, None], cy[:, None] * cx[None, :]):
        ms = np.where(full, bm(x * c) * sm, 0.0)
        a = ms.sum() / den
        ab = batches(ms)
        se = _batch_se([float(n / d) for n, d in zip(ab, den_b, strict=True) if d > 0])
        se = math.inf if math.isnan(se) else se
        tot += max(0.0, a * a - (3.0 * se) ** 2)
    ls = math.sqrt(tot)
    # robust gain: interquartile mean of the quad contrasts per carrier
    q = xr[: hc // 2 * 2, : wc // 2 * 2]
    qv = v[: hc // 2 * 2, : wc // 2 * 2].reshape(hc // 2, 2, wc // 2, 2).min(axis=(1, 3)) > 0.5
    y00, y01, y10, y11 = q[0::2, 0::2], q[0::2, 1::2], q[1::2, 0::2], q[1::2, 1::2]
    qs = np.maximum(y00 + y01 + y10 + y11, 0.08)
    rob = 0.0
    for num in ((y00 + y10) - (y01 + y11), (y00 + y01) - (y10 + y11), (y00 + y11) - (y01 + y10)):
        vals = np.sort((num / qs)[qv])
        n = vals.size
        lo, hi = n // 4, max(3 * n // 4, n // 4 + 1)
        rob += float(vals[lo:hi].mean()) ** 2
    return min(ls, 3.0 * math.sqrt(rob))


def _trimmed(vals: np.ndarray, trim: float = 0.1) -> float:
    vals = np.sort(vals)
    n = vals.size
    if n == 0:
        return math.nan
    lo = int(math.floor(trim * n))
    hi = max(n - lo, lo + 1)
    return float(vals[lo:hi].mean())


def grid_excess(x: np.ndarray, v: np.ndarray, k: int) -> float:
    """``grid_s<k>``: per line (difference across it, averaged over k-row segments) its |jump| minus the
    median |jump| of the k lines within ±k/2 (itself excluded); per phase (line mod k) the 10 %-trimmed mean
    over 4×4 parts of the image; the winning phase (over the whole image) minus the phase k/2 away,
    averaged over the parts, less 3.5 standard errors (the smaller of the batch-means one and the rms of
    the other phase pairs' differences); mean of the two directions."""
    h = k // 2
    res = []
    for a, m in ((x, v), (x.T, v.T)):
        d = a[:, 1:] - a[:, :-1]
        pv = m[:, 1:] * m[:, :-1]
        r, length = d.shape
        rc = r // k * k
        if rc == 0 or length < 2 * h + 1 + k:
            res.append((0.0, math.nan, 0))
            continue
        seg = np.abs(d[:rc].reshape(rc // k, k, length).mean(axis=1))
        okp = pv[:rc].reshape(rc // k, k, length).min(axis=1) > 0.5
        win = np.lib.stride_tricks.sliding_window_view(seg, 2 * h + 1, axis=-1)
        okw = np.asarray(np.lib.stride_tricks.sliding_window_view(okp, 2 * h + 1, axis=-1).all(axis=-1))
        around = np.concatenate([win[..., :h], win[..., h + 1:]], axis=-1)
        nbr = np.sort(around, axis=-1)[..., (2 * h - 1) // 2]
        e = win[..., h] - nbr
        start = (-(h + 1)) % k
        cyc = (e.shape[-1] - start) // k
        e = e[:, start:start + cyc * k].reshape(rc // k, cyc, k)
        ok = okw[:, start:start + cyc * k].reshape(rc // k, cyc, k)
        w = np.array([_trimmed(e[..., p][ok[..., p]]) for p in range(k)])
        j = int(np.argmax(np.where(np.isnan(w), -np.inf, w)))
        sib = (j + k // 2) % k
        cnt = ok.sum(axis=(0, 1))
        rr = rc // k
        gr, gc = _parts(rr), _parts(cyc)
        rb, cb = rr // gr, cyc // gc
        db = []
        for bi in range(gr):
            for bj in range(gc):
                eb = e[bi * rb:(bi + 1) * rb, bj * cb:(bj + 1) * cb]
                ob = ok[bi * rb:(bi + 1) * rb, bj * cb:(bj + 1) * cb]
                if ob[..., j].any() and ob[..., sib].any():
                    db.append(_trimmed(eb[..., j][ob[..., j]]) - _trimmed(eb[..., sib][ob[..., sib]]))
        diff = float(np.mean(db)) if db else float(w[j] - w[sib])
        # the empirical null: the other phase pairs' differences
        others = [p for p in range(k) if p not in (j, sib)]
        nd = [w[p] - w[(p + k // 2) % k] for p in others]
        nscale = math.sqrt(sum(x * x for x in nd if math.isfinite(x)) / max(len(others), 1))
        se = _batch_se(db)
        res.append((diff, min(se, nscale) if math.isfinite(se) else nscale, int(min(cnt[j], cnt[sib]))))
    (d0, s0, n0), (d1, s1, n1) = res
    se = 0.5 * math.sqrt(s0 ** 2 + s1 ** 2)
    if n0 < 32 or n1 < 32 or not math.isfinite(se):
        return math.nan
    return max(0.0, 0.5 * (d0 + d1) - 3.5 * se)


