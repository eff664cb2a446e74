"""A plain, per-image numpy implementation of the tiling metrics: the speed and correctness reference for
:func:`trackdiag.analyzers.tiling.tiling_metrics` (``benchmarks/bench_tiling.py`` times one against the
other; ``tests/tiling/test_tiling_reference.py`` holds them to agreement).

"Plain" means what a straightforward implementation would do: one image at a time, float64, numpy FFTs, full
2-D spectra where the torch version projects or reads only the lines it needs, and Python loops over the
local windows, tiles, strips, peaks, peak pairs and lattice hypotheses (array operations inside each), never
per-pixel Python loops. Sections, one per estimator:

* spectra, peaks and the global period (the older estimator's peaks and ACF, ring energies, parity gain, grid
  excess, border cross, shift and resize; :func:`reference_metrics` assembles the summary);
* the 2-D lattice (:func:`lattice_periodicity`, :func:`_pick_lattice_np`: the prominence map, the candidate
  rules, divisors, pairs, the coarsest explaining lattice, the comb of ``f/m``, the centred square, ``g``)
  and its real-space basis (:func:`lattice_keys`);
* the local lattice map (:func:`local_lattice_map`: per window the fundamental, the x and y periods and the
  half-frequency ratios) with the band, zone and doubled-area keys (:func:`band_keys`), its perspective trend
  (:func:`map_trend`) and the centre's period (:func:`centre_period`, :func:`centre_crop_lattice`);
* the doubled-zone map (:func:`doubling_margins`, :func:`region_extent`) and the real-space pair test
  (:func:`pair_margins`);
* the scale trends (:func:`window_scale_trend`, :func:`centroid_scale_trend`, :func:`thirds_scale_trend`);
* strip novelty (:func:`strip_novelty`), the aliasing fold keys (:func:`fine_peak_fracs`,
  :func:`window_fold_fracs`), the edge strips (:func:`edge_scores`) and the mask seam (:func:`mask_seam`);
* the window vote for the base period (:func:`window_readings`, :func:`window_vote_period`,
  :func:`window_confirmed`: ``window_vote_period_px`` and its effect on ``fundamental_period_px``), the
  parity gain's line share (:func:`line_share`, ``checkerboard_line_share``), and an angled wall's region
  maps on the rectified wall (:func:`wall_tilt`, :func:`rectify_image`, :func:`map_back`,
  :func:`rectified_region_keys`: ``rect_*`` and the ``doubling_*`` / ``pair_*`` keys they replace) and its
  centre's period on the rectified wall (``rect_crop_period_px``, ``rect_crop_periodicity_score``, the
  rectified windows for the vote);
  :func:`lattice_summary` runs them in ``tiling_metrics``' order.

Not covered: the keys that need a reference patch (``ref_*``, ``period_ratio_to_ref``, the spectrum distance,
the detail deficit) and the grid's winning phase (``grid_phase_s*``). Resizes use a 2×2 box filter and
separable linear interpolation, so ``resize_*`` match only roughly; the torch ACF is a projection onto f*'s
direction (here a zero-padded 2-D ACF), so ``acf_first_peak_*``, ``acf_peak_rho`` and ``periodicity_score``
agree to a few %; the mask's taper is exact here (torch: a coarse box mean upsampled), so keys read through it
agree to a few % with a mask. Everything else agrees to float32 rounding, up to keys that count windows or
bins over a threshold.
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
    """``x`` less its weighted (``w``) least-squares polynomial of degree ``order`` in (x, y)."""
    h, wd = x.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, wd), indexing="ij")
    cols = [np.ones_like(xx)] + ([xx, yy] if order >= 1 else []) + ([xx * xx, xx * yy,
                                                                     yy * yy] if order >= 2 else [])
    a = np.stack([c.ravel() for c in cols], axis=1)
    aw = a * w.ravel()[:, None]  # weighted least squares by its normal equations (a few unknowns)
    coef = np.linalg.solve(aw.T @ a + 1e-12 * np.eye(a.shape[1]), aw.T @ x.ravel())
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


def longest_run(flags: np.ndarray) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def reference_metrics(img: np.ndarray, *, mask: np.ndarray | None = None, ref: np.ndarray | None = None,
                      newer: bool = True) -> dict[str, float]:
    """The numeric tiling metrics of one image (``H×W`` or ``H×W×C`` in [0, 1]), the plain numpy way.

    ``newer=False`` stops after the seed's metrics and the lattice's period (the keys of
    :func:`lattice_summary` are left out: a cheaper check of the global estimators)."""
    g = luminance(img)
    finite = np.isfinite(g)
    valid = finite & (mask > 0.5 if mask is not None else True)
    x = np.where(finite, g, 0.0)
    _h, _w = x.shape
    out: dict[str, float] = {"nonfinite_frac": float((~finite).mean()), "valid_px_frac": float(valid.mean())}
    per = periodicity(x, valid, mask is not None)
    lat = lattice_periodicity(x, valid, mask is not None)
    # the wall's score is also its central half's (analyzers/tiling.py: an angled wall's peak smears)
    crop = centre_crop_lattice(x, valid, mask is not None)
    s = per["s"]
    ky, kx, r, wt = per["grid"]
    out.update(fundamental_radius_bin=lat["radius"], fundamental_period_px=s / lat["radius"],
               acf_first_peak_period_px=lat["acf"], acf_first_peak_radius_bin=s / lat["acf"],
               periodicity_score=max(lat["score"], crop["score"]), acf_peak_rho=lat["rho"],
               fundamental_peak_ratio=lat["prominence"], frame_periodicity_score=lat["score"],
               centre_periodicity_score=crop["score"])
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
    out.update(parity_gain(x, vf))
    out["checkerboard_score"] = out["checkerboard_s2"]
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
    out["shift_nmse_dx1"] = out["shift_mse_dx1"] / max(2 * var, 1e-300)
    out["resize_nmse_downUp"] = out["resize_mse_downUp"] / max(var, 1e-300)
    out["shift_nmse_dy1"] = out["shift_mse_dy1"] / max(2 * var, 1e-300)
    out["checkerboard_s8"] = out["grid_s8"]
    out["fft_side_px"] = float(s)
    out["fstar_radius_bin"], out["fstar_period_px"] = fstar, s / fstar
    if newer:
        out.update(lattice_summary(x, valid, finite, lat, crop, mask is not None))
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
    # the prominent ones first, by power; then the others by prominence; the k first
    rank = np.where(strong, lp.ravel()[idx] + 1e4, promv)
    idx = idx[np.argsort(-rank, kind="stable")][:k]
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
    f = _pick_lattice_np(peaks, min_prom, min_radius=r_min)
    if f is None:
        out.update(radius=float("nan"), acf=float("nan"), rho=0.0, score=0.0, prominence=0.0,
                   f=np.full(2, np.nan), g=np.full(2, np.nan), found=False)
        return out
    (fky, fkx), prom_f, g_vec = f
    out.update(f=np.array([fky, fkx]), g=np.array(g_vec), found=True)
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


def _pick_lattice_np(peaks: list[dict[str, float]], min_prom: float, *, min_radius: float = 0.0,
                     rel_prom: float = 0.03, rel_power: float = 0.25, weak_power: float = 0.02,
                     max_harmonic: int = 6, tol_bins: float = 0.3, tol_rel: float = 0.03,
                     low_radius: float = 14.0, lone_prom: float = 1e5
                     ) -> tuple[tuple[float, float], float, tuple[float, float]] | None:
    """``lattice.pick_lattice`` of one image, with Python loops over the peaks, pairs and hypotheses.

    The candidates (prominent, and supported by a harmonic, a comb, their prominence or a pair), the
    strongest line ``k₁``, its divisors with their combs and shorter pairs (twice over), the coarsest lattice
    that explains the strong peaks, the comb of ``f/m``, the centred square; then the second basis vector.
    Returns ``(f, prominence of f's peak, g)`` (``g`` NaN on a 1-D texture) or None without a lattice."""
    n = len(peaks)
    if n == 0:
        return None
    ky = np.array([q["ky"] for q in peaks])
    kx = np.array([q["kx"] for q in peaks])
    r = np.array([q["r"] for q in peaks])
    pw = np.array([q["p"] for q in peaks])
    prom = np.array([q["prom"] for q in peaks])
    r_top = r.max()

    def dist(ty: float, tx: float) -> np.ndarray:
        """Distance of every peak to ±(ty, tx)."""
        return np.minimum(np.hypot(ky - ty, kx - tx), np.hypot(ky + ty, kx + tx))

    def near(ty: float, tx: float, among: np.ndarray) -> np.ndarray:
        return among & (dist(ty, tx) <= tol_bins + tol_rel * math.hypot(ty, tx))

    def comb(among: np.ndarray, skip: int, share: float = 0.6) -> np.ndarray:
        """Per peak: of its multiples m·k (m = 2..6, not multiples of ``skip``) inside the searched band,
        at least ``share`` are peaks among ``among``."""
        out = np.zeros(n, bool)
        for i in range(n):
            hits = tested = 0
            for m in range(2, max_harmonic + 1):
                if m % skip == 0 or m * r[i] > r_top:
                    continue
                tested += 1
                hits += bool((among & (dist(m * ky[i], m * kx[i]) <= tol_bins + tol_rel * m * r[i])).any())
            out[i] = hits >= share * tested
        return out

    top = prom.max()
    base = prom >= min_prom
    ok = base & (prom >= rel_prom * top)
    # a low line needs a prominent harmonic at 2k or 3k (both, a comb, or half the top prominence) ...
    support, both = np.zeros(n, bool), np.ones(n, bool)
    for m in (2.0, 3.0):
        hit = np.array([(ok & (dist(m * ky[i], m * kx[i]) <= tol_bins + tol_rel * m * r[i])).any()
                        for i in range(n)])
        support |= hit
        both &= hit
    top_prom = prom[ok].max() if ok.any() else 0.0
    support &= both | comb(ok, max_harmonic + 1, share=0.75) | (prom >= 0.5 * top_prom)
    # ... or be one of a pair a ± b = c of a longer prominent line c
    for a in range(n):
        if support[a] or not base[a]:
            continue
        for b in range(n):
            if b == a or not base[b]:
                continue
            sin = abs(ky[a] * kx[b] - kx[a] * ky[b]) / max(r[a] * r[b], 1e-9)
            if sin <= 0.3:
                continue
            for sy, sx in ((ky[a] + ky[b], kx[a] + kx[b]), (ky[a] - ky[b], kx[a] - kx[b])):
                d = np.minimum(np.hypot(sy - ky, sx - kx), np.hypot(sy + ky, sx + kx))
                if (ok & (d <= tol_bins + tol_rel * r) & (r[a] < 0.9 * r) & (r[b] < 0.9 * r)).any():
                    support[a] = True
    lowok = (r >= low_radius) | support | (prom >= lone_prom)
    ok &= lowok
    extra = base & lowok & ~ok
    if not ok.any():
        return None
    i1 = int(np.argmax(np.where(ok, pw, -1.0)))
    p1 = pw[i1]
    strong_pw, weak_pw = pw >= rel_power * p1, pw >= weak_power * p1
    combs = {m: (ok & comb(base & weak_pw, m, share=0.5)) | (extra & comb(base & strong_pw, m))
             for m in range(2, max_harmonic + 1)}
    strong = ok & strong_pw

    def divisors(best: int, *, fixed: bool) -> int:
        """Divisors ``k/m`` (m = 2..6) that are strong peaks carrying their comb; the shortest wins. ``k``:
        the starting line (``fixed``) or the current best (updated as the loop goes)."""
        k0 = best
        for m in range(2, max_harmonic + 1):
            kb = k0 if fixed else best
            cand = near(ky[kb] / m, kx[kb] / m, combs[m] & strong_pw)
            if cand.any():
                j = int(np.argmax(np.where(cand, pw, -1.0)))
                if r[j] < r[best]:
                    best = j
        return best

    best = divisors(i1, fixed=True)
    pair_ok = ok | (extra & comb(base, max_harmonic + 1))
    weak = pair_ok & weak_pw
    for _ in range(2):
        # a shorter pair a ± b = k_best (both strong, or both weak with a square or hexagonal geometry)
        tol = tol_bins + tol_rel * r[best]
        hit = np.zeros(n, bool)
        for a in range(n):
            for b in range(n):
                if r[a] > 0.85 * r[best] or r[b] > 0.85 * r[best]:
                    continue
                if abs(ky[a] * kx[b] - kx[a] * ky[b]) <= 0.3 * r[a] * r[b]:
                    continue
                sums = ((ky[a] + ky[b], kx[a] + kx[b]), (ky[a] - ky[b], kx[a] - kx[b]))
                if not any(min(math.hypot(sy - ky[best], sx - kx[best]),
                               math.hypot(sy + ky[best], sx + kx[best])) <= tol for sy, sx in sums):
                    continue
                same = abs(r[a] - r[b]) <= 0.05 * r[a]
                cos = (ky[a] * ky[b] + kx[a] * kx[b]) / max(r[a] * r[b], 1e-9)
                square = (same and abs(cos) <= 0.15 and min(abs(ky[a]), abs(kx[a])) <= 0.18 * r[a]
                          and min(abs(ky[b]), abs(kx[b])) <= 0.18 * r[b])
                hexa = same and abs(abs(cos) - 0.5) <= 0.03
                if (strong[a] and strong[b]) or (weak[a] and weak[b] and (square or hexa)):
                    hit[a] = True
        if hit.any():
            best = int(np.argmax(np.where(hit, pw, -1.0)))
        best = divisors(best, fixed=False)
    f = np.array([ky[best], kx[best]])
    fr = r[best]
    among_v = ok & strong_pw

    def second(f: np.ndarray, fr: float) -> np.ndarray:
        """The shortest prominent peak not collinear with ``f`` (|sin| > 0.3), with some power."""
        cross = np.abs(ky * f[1] - kx * f[0]) / np.maximum(r * fr, 1e-9)
        cand = ok & (cross > 0.3) & (pw >= 0.02 * pw[best])
        if not cand.any():
            return np.array([np.nan, np.nan])
        j = int(np.argmin(np.where(cand, r, np.inf)))
        return np.array([ky[j], kx[j]])

    f = _finer_lattice_np(ky, kx, r, f, second(f, fr), among_v, min_radius=min_radius, tol_bins=tol_bins,
                          tol_rel=tol_rel)
    fr = float(np.hypot(*f))
    # the comb of f/m: peaks at j·f/m, j prime to m, make f/m the fundamental (the largest m wins)
    fn = f / max(fr, 1e-9)
    along_f = among_v & (np.abs(ky * fn[1] - kx * fn[0]) <= 0.1 * r)
    for m in range(max_harmonic, 1, -1):
        v = f / m
        rv = float(np.hypot(*v))
        hits = seen = 0
        for j in range(2, 13):
            if j % m == 0 or math.gcd(j, m) != 1 or j * rv > r_top:
                continue
            seen += 1
            hits += bool((among_v & (dist(j * v[0], j * v[1]) <= tol_bins + tol_rel * j * rv)).any())
        vv = max(float(v @ v), 1e-12)
        jj = np.rint((ky * v[0] + kx * v[1]) / vv)
        on = along_f & (np.hypot(ky - jj * v[0], kx - jj * v[1]) <= tol_bins + tol_rel * r)
        if hits >= 2 and hits >= 0.6 * seen and fr / m >= min_radius and on.sum() >= 0.7 * along_f.sum():
            f, fr = v, fr / m
            break
    # a centred square lattice seen along its axes: the axis-aligned (f ± g)/2
    ang = math.degrees(math.atan2(abs(f[0]), abs(f[1])))
    cos = (ky * f[0] + kx * f[1]) / np.maximum(r * fr, 1e-9)
    perp = ok & (np.abs(cos) <= 0.15) & (np.abs(r - fr) <= 0.05 * fr)
    if abs(ang - 45.0) <= 8.0 and perp.any():
        jg = int(np.argmax(np.where(perp, pw, -1.0)))
        fa, fb = (f + [ky[jg], kx[jg]]) / 2, (f - [ky[jg], kx[jg]]) / 2
        f = fa if min(abs(fa[0]), abs(fa[1])) <= min(abs(fb[0]), abs(fb[1])) else fb
        fr = float(np.hypot(*f))
    g = second(f, fr)
    return (float(f[0]), float(f[1])), float(prom[best]), (float(g[0]), float(g[1]))


def _finer_lattice_np(ky: np.ndarray, kx: np.ndarray, r: np.ndarray, f: np.ndarray, g: np.ndarray,
                      sel: np.ndarray, *, min_radius: float, tol_bins: float, tol_rel: float,
                      min_share: float = 0.9, min_gain: int = 2, m_short: int = 40) -> np.ndarray:
    """``lattice._finer_lattice``: where ``f``, ``g`` explain fewer than 90 % of the strong peaks, the
    coarsest lattice spanned by a pair of the 40 shortest peaks, differences and sums that explains ≥ 90 %
    of them and ≥ 2 more; returns the new (reduced) ``f``."""
    pts = np.stack([ky, kx], axis=1)
    tol = tol_bins + tol_rel * r

    def explained(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
        det = b1[0] * b2[1] - b1[1] * b2[0]
        if abs(det) <= 1e-6:
            return np.zeros(len(pts), bool)
        a = np.rint((pts[:, 0] * b2[1] - pts[:, 1] * b2[0]) / det)
        b = np.rint((pts[:, 1] * b1[0] - pts[:, 0] * b1[1]) / det)
        return np.hypot(pts[:, 0] - a * b1[0] - b * b2[0], pts[:, 1] - a * b1[1] - b * b2[1]) <= tol

    if not np.isfinite(f).all():
        return f
    one_d = not np.isfinite(g).all()
    gg = np.array([-f[1], f[0]]) * 1e3 if one_d else g
    cur_hit = explained(f, gg)

    def along(v: np.ndarray) -> np.ndarray:
        return np.abs(ky * v[1] - kx * v[0]) <= 0.1 * r * max(float(np.hypot(*v)), 1e-9)

    sel = sel & (cur_hit | ~(along(f) | (along(np.nan_to_num(g)) & (not one_d))))
    cur, nsel = int((cur_hit & sel).sum()), int(sel.sum())
    if cur >= min_share * nsel:
        return f
    idx = np.flatnonzero(sel)
    cands = [pts[i] for i in idx] + [pts[i] - pts[j] for i in idx for j in idx] + \
        [pts[i] + pts[j] for i in idx for j in idx]
    cands = [c for c in cands if np.hypot(*c) >= max(min_radius, 1.0)]
    cands = sorted(cands, key=lambda c: float(np.hypot(*c)))[:m_short]
    best, best_det = None, -1.0
    for b1 in cands:
        for b2 in cands:
            det = abs(b1[0] * b2[1] - b1[1] * b2[0])
            if det / max(float(np.hypot(*b1) * np.hypot(*b2)), 1e-9) <= 0.3:
                continue
            cnt = int((explained(b1, b2) & sel).sum())
            if cnt >= min_share * nsel and det > best_det:
                best, best_det, best_cnt = (b1, b2), det, cnt
    if best is None or best_cnt < cur + min_gain:
        return f
    t1, t2 = best
    for _ in range(4):  # Lagrange–Gauss reduction in reciprocal space
        if t2 @ t2 < t1 @ t1:
            t1, t2 = t2, t1
        t2 = t2 - np.rint((t1 @ t2) / max(t1 @ t1, 1e-12)) * t1
    return t1


def _batch_se(vals: list[float]) -> float:
    """Standard error of the mean of the batch values (NaN with fewer than 4)."""
    if len(vals) < 4:
        return math.nan
    return float(np.std(vals, ddof=1) / math.sqrt(len(vals)))


def _parts(n: int) -> int:
    return max(1, min(4, n))


def parity_gain(x: np.ndarray, v: np.ndarray, block: int = 8) -> dict[str, float]:
    """``checkerboard_s2``: per carrier, Σ (block mean of x·v·c)·(block mean of x·v) / Σ (block mean)², over
    fully valid blocks, less 3 standard errors in quadrature (the same ratio on 4×4 parts of the image);
    the root sum of squares of the three carriers, capped at 3× the root sum of squares of the carriers'
    interquartile means of the 2×2-quad contrasts. Also the carriers' gains (``parity_gain_x``, ``_y``,
    ``_xy``), that robust gain (``checkerboard_robust``) and ``checkerboard_dims`` (2 where the xy carrier
    or both axis carriers stand above their floor, 1 where one does)."""
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
        return dict.fromkeys(("parity_gain_x", "parity_gain_y", "parity_gain_xy", "checkerboard_robust",
                              "checkerboard_dims", "checkerboard_s2", "checkerboard_line_share"), math.nan)
    hb, wb = sm.shape
    gr, gc = _parts(hb), _parts(wb)
    rb, cb = hb // gr, wb // gc

    def batches(a: np.ndarray) -> np.ndarray:
        return a[:gr * rb, :gc * cb].reshape(gr, rb, gc, cb).sum(axis=(1, 3)).ravel()

    den_b = batches(s2)
    cy = 1.0 - 2.0 * (np.arange(hc) % 2)
    cx = 1.0 - 2.0 * (np.arange(wc) % 2)
    tot = 0.0
    out: dict[str, float] = {}
    sig = []
    for name, c in (("x", cx[None, :]), ("y", cy[:, None]), ("xy", cy[:, None] * cx[None, :])):
        ms = np.where(full, bm(x * c) * sm, 0.0)
        a = ms.sum() / den
        ab = batches(ms)
        se = _batch_se([float(n / d) for n, d in zip(ab, den_b, strict=True) if d > 0])
        se = math.inf if math.isnan(se) else se
        fl = max(0.0, a * a - (3.0 * se) ** 2)
        out[f"parity_gain_{name}"] = float(a)
        sig.append(fl > 0)
        tot += fl
    ls = math.sqrt(tot)
    out["checkerboard_line_share"] = line_share(x, np.where(full, sm, 0.0), den, block)
    out["checkerboard_dims"] = 2.0 if sig[2] or (sig[0] and sig[1]) else (1.0 if sig[0] or sig[1] else 0.0)
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
    out["checkerboard_robust"] = math.sqrt(rob)
    out["checkerboard_s2"] = min(ls, 3.0 * math.sqrt(rob))
    return out


def line_share(xv: np.ndarray, sw: np.ndarray, den: float, block: int) -> float:
    """``checkerboard_line_share``: per axis, the x (y) carrier's least-squares gain split by the class of its
    column (row) pair ``(2c, 2c+1)`` mod ``block``, ``a_c = Σ_blocks (block mean of the pair class's
    signed differences)·(block mean) / Σ (block mean)²``; returns ``Σ_axis max_c |a_c| / Σ_axis Σ_c |a_c|``.
    ``xv``: weighted luminance cropped to whole blocks; ``sw``: block means, 0 where not fully valid."""
    if block % 2:
        return math.nan
    hb, wb = sw.shape
    num = tot = 0.0
    for axis in (1, 0):  # columns (the x carrier), then rows (y)
        gains = []
        for c in range(block // 2):
            d = np.zeros_like(xv)
            if axis == 1:
                d[:, 2 * c::block] = xv[:, 2 * c::block] - xv[:, 2 * c + 1::block]
            else:
                d[2 * c::block] = xv[2 * c::block] - xv[2 * c + 1::block]
            bsum = d.reshape(hb, block, wb, block).sum(axis=(1, 3)) / (block * block)
            gains.append(abs(float((bsum * sw).sum()) / den))
        num += max(gains)
        tot += sum(gains)
    return num / max(tot, np.finfo(np.float64).tiny)


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




# ------------------------------------------------------------------------------------------------------
# Shared helpers of the newer estimators
# ------------------------------------------------------------------------------------------------------
_TINY32 = float(np.finfo(np.float32).tiny)


def lower_median(a: np.ndarray | list[float]) -> float:
    """The lower median of the finite values (torch's ``nanmedian``); NaN when there are none."""
    v = np.sort(np.asarray(a, dtype=np.float64).ravel())
    v = v[np.isfinite(v)]
    return float(v[(v.size - 1) // 2]) if v.size else math.nan


def hann_sym(n: int) -> np.ndarray:
    """The symmetric Hann window (``torch.hann_window(periodic=False)``; ones for ``n == 1``)."""
    return np.hanning(n) if n > 1 else np.ones(1)


def hann_periodic(n: int) -> np.ndarray:
    """The periodic Hann window (``torch.hann_window(periodic=True)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def box_mean(x: np.ndarray, ds: int) -> np.ndarray:
    """Mean over non-overlapping ``ds×ds`` blocks (whole blocks only)."""
    h, w = x.shape
    return x[: h // ds * ds, : w // ds * ds].reshape(h // ds, ds, w // ds, ds).mean(axis=(1, 3))


def moving_mean(v: np.ndarray, k: int) -> np.ndarray:
    """``k``-tap moving mean (``k`` odd), shrinking at the ends (``avg_pool1d(count_include_pad=False)``)."""
    r = k // 2
    out = np.empty(len(v))
    for i in range(len(v)):
        out[i] = v[max(0, i - r): i + r + 1].mean()
    return out


def bilinear_zero(img: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """``img`` read at the pixel coordinates ``(yy, xx)`` (same shape), bilinear, zero outside the frame
    (``grid_sample(align_corners=True, padding_mode="zeros")``)."""
    h, w = img.shape
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    fy, fx = yy - y0, xx - x0
    out = np.zeros(yy.shape)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            y, x = y0 + dy, x0 + dx
            inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            out += np.where(inside, img[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)], 0.0) * wy * wx
    return out


def local_geometry(h: int, w: int, *, window_frac: float = 0.25, overlap: int = 3, max_fft_px: int = 64,
                   max_downsample: int = 2) -> tuple[int, int, int]:
    """Window side, stride (original px) and downsampling of the local maps (``bands.local_geometry``)."""
    win = max(16, round(window_frac * min(h, w)))
    ds = max(1, min(max_downsample, win // max_fft_px))
    win_ds = max(8, win // ds)
    return win_ds * ds, max(1, win_ds // max(1, overlap)) * ds, ds


def masked_downsample(x: np.ndarray, v: np.ndarray, ds: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` zeroed outside ``v`` (0/1) and box-downsampled by ``ds`` as a valid-weighted mean."""
    x0 = x * v
    if ds > 1:
        vs = box_mean(v, ds)
        x0 = box_mean(x0, ds) / np.maximum(vs, 1e-6)
        v = (vs >= 0.5).astype(np.float64)
        x0 = x0 * v
    return x0, v


def theil_sen_groups(t: np.ndarray, v: np.ndarray, use: np.ndarray, group: np.ndarray,
                     min_points: int = 4) -> float:
    """Lower median of the slopes of every pair of usable points in the same group (``t_j > t_i``)."""
    if use.sum() < min_points:
        return math.nan
    slopes = []
    for gi in np.unique(group):
        idx = np.flatnonzero((group == gi) & use)
        for a in idx:
            for b in idx:
                if t[b] - t[a] > 1e-9:
                    slopes.append((v[b] - v[a]) / (t[b] - t[a]))
    return lower_median(slopes)


# ------------------------------------------------------------------------------------------------------
# The local lattice map: scalar and per-axis periods, half-frequency ratios (bands.local_period_map)
# ------------------------------------------------------------------------------------------------------
def _profile_fundamental(prof: np.ndarray, lo: int, hi: int, rel_power: float, max_div: int = 4
                         ) -> tuple[float, float]:
    """Fundamental (sub-bin) of a 1-D axis profile searched in bins ``[lo, hi]`` and its peak over the
    band's geometric-mean power (NaN, 0 where there is no local maximum)."""
    n = len(prof)
    is_max = np.zeros(n, bool)
    for i in range(lo, hi + 1):
        left, right = prof[max(i - 1, 0)], prof[min(i + 1, n - 1)]
        is_max[i] = prof[i] >= left and prof[i] > right
    if not is_max.any():
        return math.nan, 0.0
    j = int(np.argmax(np.where(is_max, prof, -1.0)))
    top = prof[j]
    if top <= 0:
        return math.nan, 0.0
    best = j
    for m in range(max_div, 1, -1):  # the lowest divisor of the strongest maximum that is a maximum too
        c = round(j / m)
        for off in (-1, 0, 1):
            cand = min(max(c + off, 0), n - 1)
            if is_max[cand] and prof[cand] >= rel_power * top and cand < best:
                best = cand
    i = min(max(best, 1), n - 2)
    lp = np.log(np.maximum(prof, _TINY32))
    a, b, c2 = lp[i - 1], lp[i], lp[i + 1]
    den = a - 2 * b + c2
    d = float(np.clip(0.5 * (a - c2) / den, -0.5, 0.5)) if den < 0 else 0.0
    bg = math.exp(lp[lo:hi + 1].mean())
    return i + d, float(prof[best] / max(bg, _TINY32))


def axis_profiles(p: np.ndarray, cone_deg: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Max-projected profiles of a ``k×(k//2+1)`` window power along kx (cone ``|ky| ≤ tan·kx``) and
    along ``|ky|`` (cone ``kx ≤ tan·|ky|``, both signs folded)."""
    k, c = p.shape
    ky = np.fft.fftfreq(k, d=1.0 / k)[:, None] * np.ones((1, c))
    kx = np.arange(c)[None, :] * np.ones((k, 1))
    t = math.tan(math.radians(cone_deg))
    px = (p * (np.abs(ky) <= t * kx)).max(axis=0)
    py_all = (p * (kx <= t * np.abs(ky))).max(axis=1)
    half = k // 2 + 1
    neg = np.concatenate([py_all[:1], py_all[::-1][: half - 1]])
    return px, np.maximum(py_all[:half], neg)


def half_frequency_ratio(prof: np.ndarray, f0: float, reach: float = 1.0) -> float:
    """``log`` power at ``f0/2`` over power at ``f0`` (each the largest within ±reach bins)."""
    n = len(prof)
    if not (math.isfinite(f0) and f0 / 2 >= 1.0 and f0 + reach < n):
        return math.nan
    idx = np.arange(n)

    def at(f: float) -> float:
        return max(float(np.where(np.abs(idx - f) <= reach, prof, 0.0).max()), _TINY32)

    return math.log(at(f0 / 2)) - math.log(at(f0))


def local_lattice_map(x: np.ndarray, valid: np.ndarray | None = None, *, window_frac: float = 0.25,
                      overlap: int = 3, max_fft_px: int = 64, max_downsample: int = 2,
                      min_period_px: float = 3.0, min_valid_frac: float = 0.6, min_peak_ratio: float = 10.0,
                      rel_power: float = 0.25) -> dict[str, Any]:
    """``bands.local_period_map`` of one image, one window at a time: each window's fundamental (the global
    estimator's peak rules), its x and y periods (axis profiles) and its half-frequency ratios along x and
    y (against the 7×7-neighbourhood median of the axis fundamentals). Maps ``gh×gw`` (NaN: unmeasured)."""
    h, w = x.shape
    win, stride, ds = local_geometry(h, w, window_frac=window_frac, overlap=overlap, max_fft_px=max_fft_px,
                                     max_downsample=max_downsample)
    vf = None if valid is None else valid.astype(np.float64)
    if ds > 1:
        if vf is None:
            x = box_mean(x, ds)
        else:
            x, vf = masked_downsample(x, vf, ds)
    k, st = win // ds, stride // ds
    hh, ww = x.shape
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // max(1, overlap))
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    ky, kx, r, wt = rfft_grid(k)
    r_min, r_max = 2.0, min(k / 2.0, k * ds / max(min_period_px, 4.0 * ds))
    band = (r >= r_min) & (r <= r_max)
    lo, hi = max(1, math.ceil(r_min)), min(k // 2 - 1, math.floor(r_max))
    hp = hann_periodic(k)
    hs = np.outer(hann_sym(k), hann_sym(k))
    nan = np.full((gh, gw), np.nan)
    period, ratio, perx, pery = nan.copy(), np.zeros((gh, gw)), nan.copy(), nan.copy()
    fxs, fys, okv = nan.copy(), nan.copy(), np.zeros((gh, gw), bool)
    profs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for i in range(gh):
        for j in range(gw):
            patch = x[i * st:i * st + k, j * st:j * st + k]
            if vf is None:
                frac = 1.0
                p = np.abs(np.fft.rfft2(patch * np.outer(hp, hp))) ** 2
            else:
                vp = vf[i * st:i * st + k, j * st:j * st + k]
                frac = vp.mean()
                wts = vp * hs
                m = (patch * wts).sum() / max(wts.sum(), 1e-12)
                p = np.abs(np.fft.rfft2((patch - m) * wts)) ** 2
            peaks = find_peaks(p, r, ky, kx, r_min, r_max, k=8, reach=1)
            if peaks:
                jj = pick(peaks, rel_power=rel_power)
                rad = twin_radius(peaks, jj, rel_power=rel_power)
                bg = math.exp((np.log(np.maximum(p[band], _TINY32)) * wt[band]).sum() / wt[band].sum())
                ratio[i, j] = peaks[jj][0] / max(bg, _TINY32)
                if frac >= min_valid_frac and ratio[i, j] >= min_peak_ratio:
                    period[i, j] = k * ds / rad
            px, py = axis_profiles(p)
            profs[i, j] = px, py
            fx, rx = _profile_fundamental(px, lo, hi, rel_power)
            fy, ry = _profile_fundamental(py, lo, min(k // 2 - 1, hi), rel_power)
            okv[i, j] = frac >= min_valid_frac
            if okv[i, j] and rx >= min_peak_ratio:
                perx[i, j], fxs[i, j] = k * ds / fx, fx
            if okv[i, j] and ry >= min_peak_ratio:
                pery[i, j], fys[i, j] = k * ds / fy, fy
    half_x, half_y = nan.copy(), nan.copy()
    for i in range(gh):
        for j in range(gw):
            if not okv[i, j]:
                continue
            sl = (slice(max(0, i - 3), i + 4), slice(max(0, j - 3), j + 4))
            half_x[i, j] = half_frequency_ratio(profs[i, j][0], lower_median(fxs[sl]))
            half_y[i, j] = half_frequency_ratio(profs[i, j][1], lower_median(fys[sl]))
    cy = (np.arange(gh) * st + k / 2.0) * ds
    cx = (np.arange(gw) * st + k / 2.0) * ds
    return {"period": period, "ratio": ratio, "period_x": perx, "period_y": pery, "half_x": half_x,
            "half_y": half_y, "center_y": cy, "center_x": cx, "window_px": k * ds, "stride_px": st * ds}


def longest_run_px(flags: np.ndarray, stride: int) -> float:
    return float(longest_run(flags) * stride)


def band_keys(lm: dict[str, Any], *, doubled_range: tuple[float, float] = (1.7, 2.35),
              frac_threshold: float = 0.35, half_excess: float = 3.0) -> dict[str, float]:
    """``bands.band_metrics``: a window is doubled when its x or y period is 1.7–2.35× that axis's median;
    per map row / column the smoothed doubled share; the half-frequency zone keys; ``doubled_area_frac``
    and where the doubled windows lie."""
    p = lm["period"]
    gh, gw = p.shape
    base = lower_median(p)
    out: dict[str, float] = {}

    def axis(per: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = per / lower_median(per)
        meas = np.isfinite(per)
        with np.errstate(invalid="ignore"):
            return meas & (r >= doubled_range[0]) & (r <= doubled_range[1]), meas

    dx_, mx_ = axis(lm["period_x"])
    dy_, my_ = axis(lm["period_y"])
    measured, doubled = mx_ | my_, dx_ | dy_
    out["band_base_period_x_px"] = lower_median(lm["period_x"])
    out["band_base_period_y_px"] = lower_median(lm["period_y"])
    out["doubled_x_frac"] = dx_.sum() / max(mx_.sum(), 1)
    out["doubled_y_frac"] = dy_.sum() / max(my_.sum(), 1)
    hd, hm = [], []
    for hr in (lm["half_x"], lm["half_y"]):
        ex = hr - lower_median(hr)
        hm.append(np.isfinite(ex))
        with np.errstate(invalid="ignore"):
            hd.append(hm[-1] & (ex > half_excess))
    hmeas, hdbl = hm[0] | hm[1], hd[0] | hd[1]
    out["zone_frac"] = hdbl.sum() / max(hmeas.sum(), 1)
    out["zone_row_frac_max"] = float(moving_mean(hdbl.sum(1) / np.maximum(hmeas.sum(1), 1), 3).max())
    out["zone_col_frac_max"] = float(moving_mean(hdbl.sum(0) / np.maximum(hmeas.sum(0), 1), 3).max())
    out["zone_x_extent"] = hdbl.any(0).sum() / max(hmeas.any(0).sum(), 1)
    out["zone_y_extent"] = hdbl.any(1).sum() / max(hmeas.any(1).sum(), 1)
    rf = moving_mean(doubled.sum(1) / np.maximum(measured.sum(1), 1), 3)
    cf = moving_mean(doubled.sum(0) / np.maximum(measured.sum(0), 1), 3)
    rrun = longest_run_px(rf >= frac_threshold, lm["stride_px"])
    crun = longest_run_px(cf >= frac_threshold, lm["stride_px"])
    cols = cf.max() > rf.max()
    area = doubled.sum() / max(measured.sum(), 1)
    out.update(doubled_area_frac=area, band_row_frac_max=rf.max(), band_col_frac_max=cf.max(),
               band_row_max_run=rrun, band_col_max_run=crun, band_axis_is_cols=float(cols),
               band_score=cf.max() if cols else rf.max(), band_max_run=crun if cols else rrun,
               band_doubled_frac=area)
    out = {k: (float(v) if math.isfinite(base) else math.nan) for k, v in out.items()}
    gy, gx = np.linspace(0.0, 1.0, gh)[:, None], np.linspace(0.0, 1.0, gw)[None, :]
    cnt = doubled.sum()
    out["doubled_center_y"] = float((doubled * gy).sum() / cnt) if cnt else math.nan
    out["doubled_center_x"] = float((doubled * gx).sum() / cnt) if cnt else math.nan
    out["band_base_period_px"] = base
    return out


def map_trend(lm: dict[str, Any], h: int, w: int, keep: tuple[float, float] = (0.6, 1.6)
              ) -> tuple[float, float]:
    """``bands.period_trend``: Theil–Sen slopes of each window's mean log period ratio (scalar, x, y maps,
    those within ``keep`` × their median) against ``y/H`` within map columns and ``x/W`` within map rows."""
    logs, cnt = np.zeros(lm["period"].shape), np.zeros(lm["period"].shape)
    for m in (lm["period"], lm["period_x"], lm["period_y"]):
        r = m / lower_median(m)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(r) & (r >= keep[0]) & (r <= keep[1])
        logs = logs + np.where(ok, np.log(np.where(ok, r, 1.0)), 0.0)
        cnt = cnt + ok
    scale = logs / np.maximum(cnt, 1)
    gh, gw = scale.shape
    ty = np.repeat((lm["center_y"] / h)[:, None], gw, 1).ravel()
    tx = np.repeat((lm["center_x"] / w)[None, :], gh, 0).ravel()
    row, col = np.indices((gh, gw))
    use = (cnt > 0).ravel()
    return (theil_sen_groups(ty, scale.ravel(), use, col.ravel()),
            theil_sen_groups(tx, scale.ravel(), use, row.ravel()))


def centre_period(lm: dict[str, Any], ty: float, tx: float, h: int, w: int,
                  keep: tuple[float, float] = (0.6, 1.6)) -> float:
    """``bands.centre_period``: the windows' log periods moved to the frame centre along the trend, their
    lower median over the windows within ``keep`` × the map's median."""
    p = lm["period"]
    r = p / lower_median(p)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= keep[0]) & (r <= keep[1])
    cy = (lm["center_y"] / h - 0.5)[:, None]
    cx = (lm["center_x"] / w - 0.5)[None, :]
    sy, sx = (0.0 if not math.isfinite(ty) else ty), (0.0 if not math.isfinite(tx) else tx)
    lc = np.log(np.maximum(np.where(ok, p, 1.0), 1e-6)) - sy * cy - sx * cx
    return math.exp(lower_median(np.where(ok, lc, np.nan)))


# ------------------------------------------------------------------------------------------------------
# The doubled-zone map: windows against the wall's rescaled spectrum (functional/doubling.doubling_map)
# ------------------------------------------------------------------------------------------------------
_DOUBLED_FACTORS = [(j, j) for j in (0.9, 1.0, 1.1)] + [(fx * j, fy * j) for fx, fy in
                                                        ((2.0, 1.0), (1.0, 2.0), (2.0, 2.0))
                                                        for j in (0.9, 1.0, 1.1)]


def box3_shrinking(a: np.ndarray) -> np.ndarray:
    """3×3 moving mean of a 2-D array, shrinking at the borders (sums of the padded 3×3 shifts over the
    count of the pixels inside)."""
    pad = np.pad(a, 1)
    cnt = np.pad(np.ones_like(a), 1)
    h, w = a.shape
    s, n = np.zeros_like(a), np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            s += pad[dy:dy + h, dx:dx + w]
            n += cnt[dy:dy + h, dx:dx + w]
    return s / n


def half_weights(k: int) -> np.ndarray:
    """``k×k``: how many bins of the centred ``k×k`` spectrum each bin of its half ``κy ≤ 0`` (the rows
    ``0 … k//2``) stands for (2; 1 on the rows that are their own mirror image: ``k//2`` and an even ``k``'s
    Nyquist row 0), 0 on the other rows (the doubling map reads the half spectrum only)."""
    c = k // 2
    wr = np.zeros(k)
    wr[:c] = 2.0
    wr[c] = 1.0
    if k % 2 == 0:
        wr[0] = 1.0
    return np.repeat(wr[:, None], k, axis=1)


def whitened_log_spectrum(win: np.ndarray, vp: np.ndarray) -> np.ndarray:
    """Centred (fftshifted) log power of one ``k×k`` window (Hann × validity, weighted mean removed),
    3×3 smoothed, minus its ring means over the half spectrum (:func:`half_weights`)."""
    k = win.shape[0]
    wts = vp * np.outer(hann_sym(k), hann_sym(k))
    m = (win * wts).sum() / max(wts.sum(), 1e-9)
    full = np.fft.fftshift(np.abs(np.fft.fft2((win - m) * wts)) ** 2)
    eps = 1e-6 * full.mean() + _TINY32
    lp = box3_shrinking(np.log(full + eps))
    o = np.arange(k) - k // 2
    ring = np.minimum(np.rint(np.hypot(o[:, None], o[None, :])).astype(int), k // 2 + 1)
    hw = half_weights(k).ravel()
    means = np.bincount(ring.ravel(), lp.ravel() * hw) / np.maximum(np.bincount(ring.ravel(), hw), 1)
    return lp - means[ring]


def doubling_margins(x: np.ndarray, v: np.ndarray, *, window_px: int, stride_px: int, ds: int,
                     trend_x: float, trend_y: float, min_valid_frac: float = 0.9
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the best correlation of its spectrum (read at the centre's scale) with the doubled
    templates minus the best plain one (``margin``) and the plain one, both ``gh×gw`` (NaN: mostly
    invalid). The reference is the windows' element-wise lower median; 3 plain + 9 doubled templates; the
    correlations over the half spectrum, each bin weighted by :func:`half_weights`."""
    h, w = x.shape
    x0, vf = masked_downsample(x, v, ds)
    k, st = window_px // ds, max(1, stride_px // ds)
    hh, ww = x0.shape
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // 3)
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    c = k // 2
    o = np.arange(k) - c
    ring = np.hypot(o[:, None], o[None, :])
    cy = (np.arange(gh) * st + k / 2.0) * ds
    cx = (np.arange(gw) * st + k / 2.0) * ds
    tx = 0.0 if not math.isfinite(trend_x) else trend_x
    ty = 0.0 if not math.isfinite(trend_y) else trend_y
    zn, vws, oks = [], [], []
    for i in range(gh):
        for j in range(gw):
            win = x0[i * st:i * st + k, j * st:j * st + k]
            vp = vf[i * st:i * st + k, j * st:j * st + k]
            oks.append(vp.mean() >= min_valid_frac)
            z = whitened_log_spectrum(win, vp)
            s = math.exp(tx * (cx[j] / w - 0.5) + ty * (cy[i] / h - 0.5))
            u = c + o / s  # the window's spectrum read at κ/s (pixel coordinates)
            zn.append(bilinear_zero(z, u[:, None] * np.ones((1, k)), np.ones((k, 1)) * u[None, :]))
            inside = (u >= 0) & (u <= k - 1)
            vws.append(inside[:, None] & inside[None, :] & (ring >= 2.0 * s))
    ok = np.asarray(oks)
    sel = np.sort(np.asarray(zn)[ok], axis=0)  # the reference: the lower median over the valid windows
    ref = np.nan_to_num(sel[(len(sel) - 1) // 2]) if len(sel) else np.zeros((k, k))
    templates = []
    for fx, fy in _DOUBLED_FACTORS:
        ux, uy = c + fx * o, c + fy * o
        mt = ((uy >= 0) & (uy <= k - 1))[:, None] & ((ux >= 0) & (ux <= k - 1))[None, :]
        templates.append((bilinear_zero(ref, uy[:, None] * np.ones((1, k)), np.ones((k, 1)) * ux[None, :]),
                          mt))
    margin, plain = np.full(gh * gw, np.nan), np.full(gh * gw, np.nan)
    hw = half_weights(k)
    for p_ in range(gh * gw):
        if not ok[p_]:
            continue
        corrs = []
        for rs, mt in templates:
            msk = vws[p_] & mt & (hw > 0)
            wt = hw[msk]
            n = max(float(wt.sum()), 1.0)
            a, b = zn[p_][msk], rs[msk]
            cov = (wt * a * b).sum() - (wt * a).sum() * (wt * b).sum() / n
            va = max((wt * a * a).sum() - (wt * a).sum() ** 2 / n, 0.0)
            vb = max((wt * b * b).sum() - (wt * b).sum() ** 2 / n, 0.0)
            corrs.append(cov / max(math.sqrt(va * vb), 1e-9))
        plain[p_] = max(corrs[:3])
        margin[p_] = max(corrs[3:]) - plain[p_]
    return margin.reshape(gh, gw), plain.reshape(gh, gw)


def nan_box(v: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """NaN-aware ``kh×kw`` moving mean (NaN stays NaN)."""
    h, w = v.shape
    out = v.copy()
    for i in range(h):
        for j in range(w):
            if math.isfinite(v[i, j]):
                blk = v[max(0, i - kh // 2):i + kh // 2 + 1, max(0, j - kw // 2):j + kw // 2 + 1]
                out[i, j] = blk[np.isfinite(blk)].mean()
    return out


def region_extent(margin: np.ndarray, *, excess: float, min_line: int = 3, min_span: float = 0.4,
                  full_span: float = 0.8, lower: bool = False) -> dict[str, float]:
    """``doubling.region_extent``: the excess over the image's median margin (``lower``: the level read
    below the 40th percentile, :func:`lower_location_scale`), its 3×3-smoothed maximum, the share above
    ``excess``, the strongest whole map row (column) with its evenness, and the same level over the lines
    spanning ``full_span`` of the measured extent with the largest excess on them (``*_full``,
    ``*_full_peak``)."""
    e = margin - (lower_location_scale(margin)[0] if lower else lower_median(margin))
    ok = np.isfinite(e)
    if not ok.any():
        return dict.fromkeys(("excess_max", "area_frac", "row_level", "col_level", "row_even", "col_even",
                              "row_full", "col_full", "row_full_peak", "col_full_peak"), math.nan)
    es = nan_box(e, 3, 3)
    out = {"excess_max": float(es[ok].max()), "area_frac": float((ok & (np.nan_to_num(es) > excess)).sum()
                                                                  / ok.sum())}

    def level(a: np.ndarray) -> tuple[float, float, float, float]:
        fin = np.isfinite(a)
        cols = np.flatnonzero(fin.any(0))
        full = cols[-1] - cols[0] + 1 if cols.size else 1
        best, peak, best_long, peak_long = -math.inf, math.nan, -math.inf, -math.inf
        for line, f in zip(a, fin, strict=True):
            idx = np.flatnonzero(f)
            if idx.size < min_line or idx[-1] - idx[0] + 1 < min_span * max(full, 1):
                continue
            q = float(line[f].min())
            if q > best:
                best, peak = q, float(line[f].max())
            if idx[-1] - idx[0] + 1 >= full_span * max(full, 1):
                best_long, peak_long = max(best_long, q), max(peak_long, float(line[f].max()))
        fl = best_long if math.isfinite(best_long) else math.nan
        pl = peak_long if math.isfinite(peak_long) else math.nan
        if not math.isfinite(best):
            return math.nan, math.nan, fl, pl
        return best, best / max(peak, 1e-6), fl, pl

    out["row_level"], out["row_even"], out["row_full"], out["row_full_peak"] = level(nan_box(e, 3, 1))
    out["col_level"], out["col_even"], out["col_full"], out["col_full_peak"] = level(nan_box(e, 1, 3).T)
    return out


def region_keys(prefix: str, ext: dict[str, float], plain: np.ndarray) -> dict[str, float]:
    out = {f"{prefix}_{k}": v for k, v in ext.items()}
    out[f"{prefix}_plain_corr"] = lower_median(plain)
    return out


# ------------------------------------------------------------------------------------------------------
# The real-space pair test (functional/doubling.pair_doubling_map, bands.pair_doubling_keys)
# ------------------------------------------------------------------------------------------------------
def robust_z(m: np.ndarray, floor: float) -> np.ndarray:
    med = lower_median(m)
    mad = lower_median(np.abs(m - med))
    return (m - med) / (1.4826 * mad + floor)


def edge_image(x: np.ndarray, vf: np.ndarray, t1: np.ndarray, t2: np.ndarray, *, length: int) -> np.ndarray:
    """What the pair test reads (``bands.edge_image``): the gradient magnitude (central differences, 0 where a
    neighbour is invalid) on a 2-D lattice; on a 1-D texture (``t2`` NaN) the gradient along ``t1`` averaged
    over ``2·(length // 2) + 1`` px along the lines, valid-weighted."""
    gy, gx = np.zeros_like(x), np.zeros_like(x)
    gy[1:-1] = (x[2:] - x[:-2]) * 0.5 * (vf[2:] * vf[:-2])
    gx[:, 1:-1] = (x[:, 2:] - x[:, :-2]) * 0.5 * (vf[:, 2:] * vf[:, :-2])
    if not (np.isfinite(t1).all() and not np.isfinite(t2).all()):
        return np.sqrt(gy ** 2 + gx ** 2) * vf
    nrm = max(float(np.hypot(*t1)), 1e-6)
    uy, ux = t1[0] / nrm, t1[1] / nrm
    g = np.abs(uy * gy + ux * gx) * vf
    r = max(1, int(length)) // 2
    axis = 0 if abs(ux) >= abs(uy) else 1  # lines along y: average along y
    kern = np.ones(2 * r + 1)
    def run(a: np.ndarray) -> np.ndarray:
        return np.apply_along_axis(lambda line: np.convolve(line, kern, mode="same"), axis, a)
    return run(g) / np.maximum(run(vf), 1e-6) * vf


def _window_shift_corr(x0: np.ndarray, vf: np.ndarray, dy: float, dx: float, *, k: int, st: int,
                       yy: np.ndarray, xx: np.ndarray, flat_var: float, grid: tuple[int, int]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The pair test's correlation of ``x0`` with itself read ``(dy, dx)`` apart (half each way, bilinear,
    zero outside; ``vf`` its valid weights) in ``k``-px windows at stride ``st`` on a ``grid`` of windows,
    and each window's valid share; NaN where a window is flat (as the torch box means)."""
    gh, gw = grid
    c, share = np.zeros((gh, gw)), np.zeros((gh, gw))
    xa, va = bilinear_zero(x0, yy - dy, xx - dx), bilinear_zero(vf, yy - dy, xx - dx)
    xb, vb = bilinear_zero(x0, yy + dy, xx + dx), bilinear_zero(vf, yy + dy, xx + dx)
    wgt = ((va > 0.99) & (vb > 0.99)).astype(np.float64)
    a, b = xa * wgt, xb * wgt
    for i in range(gh):
        for j in range(gw):
            sl = (slice(i * st, i * st + k), slice(j * st, j * st + k))
            n = wgt[sl].sum()
            sa, sb = a[sl].sum(), b[sl].sum()
            cnt = max(n, 1e-9)
            cov = (a[sl] * b[sl]).sum() - sa * sb / cnt
            vaa = max((a[sl] ** 2).sum() - sa * sa / cnt, 0.0)
            vbb = max((b[sl] ** 2).sum() - sb * sb / cnt, 0.0)
            flat = min(vaa, vbb) / (k * k) <= flat_var
            c[i, j] = np.nan if flat else min(max(cov / max(math.sqrt(vaa * vbb), 1e-30), -1.0), 1.0)
            share[i, j] = n / (k * k)
    return c, share


def pair_margins(x: np.ndarray, v: np.ndarray, vectors: list[np.ndarray], *, window_px: int, stride_px: int,
                 ds: int, trend_x: float, trend_y: float, min_valid_frac: float = 0.5,
                 floor: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Per window, the largest over the lattice vectors ``v`` of min(z(c(2v) − c(v)), z(−c(v))) and of
    min(z(c(v) − c(v/2)), z(−c(v/2))), ``c(d)`` the Pearson correlation of the pixel pairs ``p ± d/2``
    (``d`` scaled by the pixel's expected scale); and the best ``c(v)``."""
    h, w = x.shape
    x0, vf = masked_downsample(x, v, ds)
    k, st = max(2, window_px // ds), max(1, stride_px // ds)
    hh, ww = x0.shape
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // 3)
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    tx = 0.0 if not math.isfinite(trend_x) else trend_x
    ty = 0.0 if not math.isfinite(trend_y) else trend_y
    yc = (np.arange(hh) + 0.5) * ds
    xc = (np.arange(ww) + 0.5) * ds
    scale = np.exp(tx * (xc / w - 0.5)[None, :] + ty * (yc / h - 0.5)[:, None])
    yy, xx = np.indices((hh, ww)).astype(np.float64)
    n0 = max(vf.sum(), 1.0)
    mean0 = (x0 * vf).sum() / n0
    flat_var = 1e-4 * (((x0 - mean0) * vf) ** 2).sum() / n0 + 1e-12  # a flat window has no correlation

    def corr(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not np.isfinite(d).all():
            return np.zeros((gh, gw)), np.zeros((gh, gw))
        return _window_shift_corr(x0, vf, d[0] * scale / ds * 0.5, d[1] * scale / ds * 0.5, k=k, st=st,
                                  yy=yy, xx=xx, flat_var=flat_var, grid=(gh, gw))

    margins, plains = [], []
    for vec in vectors:
        c_half, _ = corr(0.5 * vec)
        c1, s1 = corr(vec)
        c2, s2 = corr(2.0 * vec)
        ok = (s2 >= min_valid_frac) & (s1 >= min_valid_frac) & bool(np.isfinite(vec).all())
        c_half, c1, c2 = (np.where(ok, cc, np.nan) for cc in (c_half, c1, c2))
        margins.append(np.minimum(robust_z(c2 - c1, floor), robust_z(-c1, floor)))
        margins.append(np.minimum(robust_z(c1 - c_half, floor), robust_z(-c_half, floor)))
        plains.append(c1)
    with np.errstate(invalid="ignore"):
        best = np.nanmax(np.where(np.isfinite(margins), margins, -np.inf), axis=0)
        plain = np.nanmax(np.where(np.isfinite(plains), plains, -np.inf), axis=0)
    return np.where(np.isfinite(best), best, np.nan), np.where(np.isfinite(plain), plain, np.nan)


def lower_location_scale(m: np.ndarray) -> tuple[float, float]:
    """``doubling._lower_location_scale``: the level and spread of the finite values read below the 40th
    percentile (``σ = (q₄₀ − q₁₀) / 1.0283``, ``μ = q₄₀ + 0.2533 σ``; linear quantiles)."""
    v = np.asarray(m, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return math.nan, math.nan
    q10, q40 = np.quantile(v, [0.1, 0.4])
    sigma = (q40 - q10) / 1.0283
    return float(q40 + 0.2533 * sigma), float(sigma)


def directional_edges(x: np.ndarray, vf: np.ndarray, t1: np.ndarray, t2: np.ndarray,
                      vectors: list[np.ndarray], *, length: int) -> list[np.ndarray]:
    """``bands.directional_edges``: per vector ``v`` the gradient along it, ``|v̂·∇x|`` (0 for a NaN vector);
    a 1-D texture's edge comb (:func:`edge_image`) for every vector."""
    if np.isfinite(t1).all() and not np.isfinite(t2).all():
        return [edge_image(x, vf, t1, t2, length=length)] * len(vectors)
    gy, gx = np.zeros_like(x), np.zeros_like(x)
    gy[1:-1] = (x[2:] - x[:-2]) * 0.5 * (vf[2:] * vf[:-2])
    gx[:, 1:-1] = (x[:, 2:] - x[:, :-2]) * 0.5 * (vf[:, 2:] * vf[:, :-2])
    out = []
    for v in vectors:
        nrm = max(float(np.hypot(*v)), 1e-6) if np.isfinite(v).all() else math.inf
        out.append(np.abs(v[0] / nrm * gy + v[1] / nrm * gx) * vf if math.isfinite(nrm) else np.zeros_like(x))
    return out


def pair_hypotheses(xs: list[np.ndarray], v: np.ndarray, vectors: list[np.ndarray], *, window_px: int,
                    stride_px: int, ds: int, floor: float = 0.08, min_valid_frac: float = 0.5
                    ) -> tuple[list[np.ndarray], np.ndarray]:
    """The pair test on a wall without a perspective trend (``doubling.pair_doubling_map`` with a flat
    scale): each vector reads its own image ``xs[i]``, the two basis vectors also at ``4v``
    (min(z(c(4v) − c(2v)), z(−c(2v)))), every z from the level and spread read below the 40th percentile.
    Returns every hypothesis' map and the best ``c(v)``."""
    hyps, plains = [], []
    for i, (xi, vec) in enumerate(zip(xs, vectors, strict=True)):
        x0, vf = masked_downsample(xi, v, ds)
        k, st = max(2, window_px // ds), max(1, stride_px // ds)
        hh, ww = x0.shape
        if hh < k or ww < k:
            k = min(hh, ww)
            st = max(1, k // 3)
        gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
        yy, xx = np.indices((hh, ww)).astype(np.float64)
        n0 = max(vf.sum(), 1.0)
        mean0 = (x0 * vf).sum() / n0
        flat_var = 1e-4 * (((x0 - mean0) * vf) ** 2).sum() / n0 + 1e-12

        def corr(d: np.ndarray, x0: np.ndarray = x0, vf: np.ndarray = vf, k: int = k, st: int = st,
                 gh: int = gh, gw: int = gw, yy: np.ndarray = yy, xx: np.ndarray = xx,
                 flat_var: float = flat_var) -> tuple[np.ndarray, np.ndarray]:
            if not np.isfinite(d).all():
                return np.zeros((gh, gw)), np.zeros((gh, gw))
            return _window_shift_corr(x0, vf, d[0] / ds * 0.5, d[1] / ds * 0.5, k=k, st=st, yy=yy, xx=xx,
                                      flat_var=flat_var, grid=(gh, gw))

        def z(m: np.ndarray) -> np.ndarray:
            mu, sig = lower_location_scale(m)
            return (m - mu) / (sig + floor)

        if not np.isfinite(vec).all():
            continue
        c_half, _ = corr(0.5 * vec)
        c1, s1 = corr(vec)
        c2, s2 = corr(2.0 * vec)
        ok = (s2 >= min_valid_frac) & (s1 >= min_valid_frac)
        c_half, c1, c2 = (np.where(ok, cc, np.nan) for cc in (c_half, c1, c2))
        hyps.append(np.minimum(z(c2 - c1), z(-c1)))
        hyps.append(np.minimum(z(c1 - c_half), z(-c_half)))
        if i < 2:
            c4, s4 = corr(4.0 * vec)
            c4 = np.where(ok & (s4 >= min_valid_frac), c4, np.nan)
            hyps.append(np.minimum(z(c4 - c2), z(-c2)))
        plains.append(c1)
    with np.errstate(invalid="ignore"):
        plain = np.nanmax(np.where(np.isfinite(plains), plains, -np.inf), axis=0)
    return hyps, np.where(np.isfinite(plain), plain, np.nan)


def hypotheses_extent(hyps: list[np.ndarray], *, excess: float) -> dict[str, float]:
    """``bands.hypotheses_extent``: :func:`region_extent` (lower level) of each hypothesis' map, then the
    largest excess, area and line levels (with the evenness and long-line reading of the line's
    hypothesis)."""
    ext = [region_extent(m, excess=excess, lower=True) for m in hyps]
    def top(key: str) -> int | None:
        vals = [e[key] for e in ext]
        fin = [j for j, x in enumerate(vals) if math.isfinite(x)]
        return max(fin, key=lambda j: (vals[j], -j)) if fin else None
    out: dict[str, float] = {}
    for key in ("excess_max", "area_frac"):
        j = top(key)
        out[key] = ext[j][key] if j is not None else math.nan
    for line in ("row", "col"):
        j = top(f"{line}_level")
        out[f"{line}_level"] = ext[j][f"{line}_level"] if j is not None else math.nan
        for k in (f"{line}_even", f"{line}_full", f"{line}_full_peak"):
            out[k] = ext[j][k] if j is not None else math.nan
    return out


# ------------------------------------------------------------------------------------------------------
# Scale trends for perspective (functional/localmap: window_scale_trend, centroid_scale_trend;
# bands.scale_trend)
# ------------------------------------------------------------------------------------------------------
def log_radial_profile(z: np.ndarray, wts: np.ndarray, *, bins_per_octave: int = 32, r_lo_bins: float = 6.0,
                       hi_cycles: float = 0.45, square: bool = False) -> np.ndarray:
    """Whitened log ring-mean power of one window on a log-frequency grid (one-bin rings of the full
    rfft2, interpolated, minus a one-octave moving mean); ``square``: the transform zero-padded to the
    longer side on both axes."""
    h0, w0 = z.shape
    h, w = (max(h0, w0),) * 2 if square else (h0, w0)
    ww = wts * np.outer(hann_sym(h0), hann_sym(w0))
    m = (z * ww).sum() / max(ww.sum(), 1e-9)
    p = np.abs(np.fft.rfft2((z - m) * ww, s=(h, w))) ** 2
    s = max(h, w)
    nr = s // 2 + 2
    nb = max(2, math.ceil(math.log2(hi_cycles * s / r_lo_bins) * bins_per_octave))
    rr = r_lo_bins * 2.0 ** (np.arange(nb) / bins_per_octave)
    rad = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]) * s
    ri = np.minimum(np.rint(rad).astype(int), s // 2 + 1).ravel()
    tot = np.bincount(ri, p.ravel(), minlength=nr)[:nr]
    cnt = np.bincount(ri, minlength=nr)[:nr]
    lin = np.log(np.maximum(tot / np.maximum(cnt, 1), _TINY32))
    i0 = np.minimum(np.floor(rr).astype(int), nr - 2)
    fr = rr - i0
    prof = lin[i0] * (1 - fr) + lin[i0 + 1] * fr
    return prof - moving_mean(prof, bins_per_octave | 1)


def scale_shift(a: np.ndarray, b: np.ndarray, max_shift: int, step_reach: int = 0,
                step_margin: float = 0.0) -> tuple[float, float]:
    """The shift of ``b`` against ``a`` (grid steps, positive: ``b`` at higher frequency) of largest
    correlation over ``±max_shift``, and that correlation; ``step_reach`` > ``max_shift``: NaN shift where
    the best beyond ``±max_shift`` (out to ``±step_reach``, at most half the profile) comes within
    ``step_margin`` of the best in range (a step of scale)."""
    n = len(a)
    k = min(max_shift, n // 3)
    kk = max(k, min(step_reach, n // 2))
    best, arg, best_out = -math.inf, 0, -math.inf
    for sh in range(-kk, kk + 1):
        i = np.arange(n)
        ok = (i + sh >= 0) & (i + sh < n)
        if ok.sum() < n // 2:
            c = -1.0
        else:
            xa = a[ok] - a[ok].mean()
            yb = b[i[ok] + sh] - b[i[ok] + sh].mean()
            c = float((xa * yb).sum() / max(np.linalg.norm(xa) * np.linalg.norm(yb), 1e-12))
        if abs(sh) <= k:
            if c > best:
                best, arg = c, sh
        else:
            best_out = max(best_out, c)
    return (math.nan if kk > k and best_out > best - step_margin else float(arg)), best


def window_grid(h: int, w: int, window_frac: float = 0.5, grid: int = 3
                ) -> tuple[list[tuple[int, int]], int, int, int, int]:
    """Top-left corners (row-major) of the ``grid×grid`` windows spread from edge to edge, their size and
    strides."""
    wh, ww = max(16, round(window_frac * h)), max(16, round(window_frac * w))
    sty, stx = max(1, (h - wh) // max(1, grid - 1)), max(1, (w - ww) // max(1, grid - 1))
    ys = [i * sty for i in range(grid) if i * sty + wh <= h]
    xs = [j * stx for j in range(grid) if j * stx + ww <= w]
    return [(y, x) for y in ys for x in xs], wh, ww, sty, stx


def window_scale_trend(x: np.ndarray, wts: np.ndarray, *, grid: int = 3, bins_per_octave: int = 32,
                       max_octaves: float = 0.8, min_valid: float = 0.6, min_corr: float = 0.5,
                       hi_cycles: float = 0.2, square: bool = False, step_octaves: float = 0.0,
                       step_margin: float = 0.0, prefix: str = "persp") -> dict[str, float]:
    """``persp_trend_*`` / ``persp_agree_*`` / ``persp_pairs_*``: every pair of windows of a 3×3 grid in the
    same row (column) matched along log frequency; the lower median of the pair slopes (``square``: padded
    transforms, keys ``prefix_*``; ``step_octaves``: pairs that match beyond ``max_octaves``, read out to
    ``step_octaves``, within ``step_margin`` of their in-range best are left out)."""
    h, w = x.shape
    corners, wh, ww, sty, stx = window_grid(h, w, grid=grid)
    gy = len({c[0] for c in corners})
    gx = len(corners) // max(gy, 1)
    prof = [log_radial_profile(x[y:y + wh, xx:xx + ww], wts[y:y + wh, xx:xx + ww],
                               bins_per_octave=bins_per_octave, hi_cycles=hi_cycles, square=square)
            for y, xx in corners]
    vfrac = [wts[y:y + wh, xx:xx + ww].mean() for y, xx in corners]
    cy = (np.arange(gy) * sty + wh / 2) / h
    cx = (np.arange(gx) * stx + ww / 2) / w
    k = round(max_octaves * bins_per_octave)
    out: dict[str, float] = {}
    for name in ("x", "y"):
        if name == "x":
            pairs = [(r * gx + a, r * gx + b, cx[a], cx[b]) for r in range(gy) for a in range(gx)
                     for b in range(a + 1, gx)]
        else:
            pairs = [(a * gx + c, b * gx + c, cy[a], cy[b]) for c in range(gx) for a in range(gy)
                     for b in range(a + 1, gy)]
        slopes = []
        for ia, ib, ta, tb in pairs:
            shift, corr = scale_shift(prof[ia], prof[ib], k, round(step_octaves * bins_per_octave),
                                      step_margin)
            if (corr >= min_corr and vfrac[ia] >= min_valid and vfrac[ib] >= min_valid
                    and math.isfinite(shift)):
                slopes.append(-shift / bins_per_octave * math.log(2.0) / (tb - ta))
        med = lower_median(slopes)
        agree = (sum(1 for s in slopes if np.sign(s) == np.sign(med) and abs(s) >= 0.5 * abs(med))
                 / len(slopes)) if slopes else math.nan
        out[f"{prefix}_trend_{name}"] = med
        out[f"{prefix}_agree_{name}"] = agree
        out[f"{prefix}_pairs_{name}"] = float(len(slopes))
    return out


def centroid_scale_trend(x: np.ndarray, wts: np.ndarray, *, grid: int = 3, lo_cycles: float = 0.02,
                         hi_cycles: float = 0.2, min_valid: float = 0.6) -> dict[str, float]:
    """``centroid_trend_*``: per window of the 3×3 grid, the power-weighted mean log frequency over
    0.02–0.2 cycles/px; the lower median over rows (columns) of the end windows' difference per frame.
    ``aniso_trend_*``: the windows' cone anisotropy's pairwise slopes along the rows (columns)."""
    h, w = x.shape
    corners, wh, ww, sty, stx = window_grid(h, w, grid=grid)
    gy = len({c[0] for c in corners})
    gx = len(corners) // max(gy, 1)
    hw = np.outer(hann_sym(wh), hann_sym(ww))
    r = np.hypot(np.fft.fftfreq(wh)[:, None], np.fft.rfftfreq(ww)[None, :])
    band = (r >= lo_cycles) & (r <= hi_cycles)
    lr = np.log(np.maximum(r, 1e-6))
    c, ok = np.zeros((gy, gx)), np.zeros((gy, gx), bool)
    for n, (y, xx) in enumerate(corners):
        z, v = x[y:y + wh, xx:xx + ww], wts[y:y + wh, xx:xx + ww]
        wt = v * hw
        m = (z * wt).sum() / max(wt.sum(), 1e-9)
        p = np.abs(np.fft.rfft2((z - m) * wt)) ** 2 * band
        c[n // gx, n % gx] = (p * lr).sum() / max(p.sum(), _TINY32)
        ok[n // gx, n % gx] = v.mean() >= min_valid
    out = {"centroid_trend_x": math.nan, "centroid_trend_y": math.nan}
    # aniso_trend_*: each window's ln(scale_x / scale_y) from its x- and y-cone log-radial profiles, the
    # lower median of the pairwise slopes in each row (column)
    an = np.zeros((gy, gx))
    nb = max(3, math.floor(math.log2(hi_cycles / lo_cycles) * 6))
    edges = lo_cycles * 2.0 ** (np.arange(nb + 1) / 6)
    ring = np.searchsorted(edges, r, side="left") - 1
    ky = np.fft.fftfreq(wh)[:, None]
    c2 = (r ** 2 - 2 * ky ** 2) / np.maximum(r ** 2, 1e-12)
    cones = [(ring >= 0) & (ring < nb) & cone for cone in (c2 >= 0.5, c2 <= -0.5)]
    for n, (y, xx) in enumerate(corners):
        z, v = x[y:y + wh, xx:xx + ww], wts[y:y + wh, xx:xx + ww]
        wt = v * hw
        m = (z * wt).sum() / max(wt.sum(), 1e-9)
        p = np.abs(np.fft.rfft2((z - m) * wt)) ** 2
        lx, ly = (np.log(np.maximum(np.array([p[sel & (ring == i)].mean() if (sel & (ring == i)).any()
                                              else 0.0 for i in range(nb)]), _TINY32)) for sel in cones)
        mm = (lx + ly) / 2
        d = (mm[2:] - mm[:-2]) / (2 * math.log(2) / 6)
        an[n // gx, n % gx] = ((lx - ly)[1:-1] * d).sum() / max((d * d).sum(), 1e-9)
    for name, vals, oks, pos in (("x", an, ok, (np.arange(gx) * stx + ww / 2) / w),
                                 ("y", an.T, ok.T, (np.arange(gy) * sty + wh / 2) / h)):
        sl = [(vals[i, b] - vals[i, a]) / (pos[b] - pos[a]) for i in range(vals.shape[0])
              for a in range(vals.shape[1]) for b in range(a + 1, vals.shape[1]) if oks[i, a] and oks[i, b]]
        out[f"aniso_trend_{name}"] = lower_median(sl) if oks.sum() >= 2 and sl else math.nan
    if gx > 1:
        sl = -(c[:, -1] - c[:, 0]) / ((gx - 1) * stx / w)
        out["centroid_trend_x"] = lower_median(np.where(ok[:, -1] & ok[:, 0], sl, np.nan))
    if gy > 1:
        sl = -(c[-1] - c[0]) / ((gy - 1) * sty / h)
        out["centroid_trend_y"] = lower_median(np.where(ok[-1] & ok[0], sl, np.nan))
    return out


def thirds_scale_trend(x: np.ndarray, wts: np.ndarray, *, bins_per_octave: int = 32,
                       max_octaves: float = 0.8) -> dict[str, float]:
    """``scale_trend_*`` / ``scale_corr_*``: the left and right (top and bottom) thirds' whitened
    log-radial profiles matched along log frequency."""
    h, w = x.shape
    k = round(max_octaves * bins_per_octave)
    out = {}
    for name, a, b in (("x", np.s_[:, : w // 3], np.s_[:, w - w // 3:]),
                       ("y", np.s_[: h // 3, :], np.s_[h - h // 3:, :])):
        shift, corr = scale_shift(log_radial_profile(x[a], wts[a], bins_per_octave=bins_per_octave),
                                  log_radial_profile(x[b], wts[b], bins_per_octave=bins_per_octave), k)
        out[f"scale_trend_{name}"] = -shift / bins_per_octave * math.log(2.0) / (2.0 / 3.0)
        out[f"scale_corr_{name}"] = corr
    return out


# ------------------------------------------------------------------------------------------------------
# Strip novelty (localmap.strip_novelty, bands.strip_band_keys)
# ------------------------------------------------------------------------------------------------------
def strip_novelty(x: np.ndarray, v: np.ndarray, *, strip_px: int, below_period_px: float,
                  min_valid: float = 0.5, gain: float = 4.0, rel_tol: float = 0.2, min_period_px: float = 6.0,
                  max_period_frac: float = 0.25, smooth_frac: float = 1.0 / 16.0, ref_gap: float = 0.18,
                  ref_reach: float = 0.2, below_frac: float = 0.75) -> dict[str, float]:
    """Horizontal strips' share of power above ``gain`` × the (dilated) median spectrum of the strips a
    gap away on either side; the most novel strip's extent along x (see the torch docstring)."""
    h, w = x.shape
    cnt = np.maximum(v.sum(1, keepdims=True), 1.0)
    z = (x - (x * v).sum(1, keepdims=True) / cnt) * v
    pw = np.abs(np.fft.rfft(z * hann_sym(w), axis=1)) ** 2
    c = pw.shape[1]
    s = max(8, min(h // 2, strip_px))
    st = max(1, s // 2)
    ns = (h - s) // st + 1
    f = np.arange(c)
    band = (f >= 1.0 / max_period_frac) & (f <= w / min_period_px)
    ps = np.stack([pw[i * st:i * st + s].mean(0) for i in range(ns)]) * band
    ps = ps / np.maximum(ps.sum(1, keepdims=True), _TINY32)
    vs = np.array([v[i * st:i * st + s].mean() for i in range(ns)])
    ok = vs >= min_valid
    gap, reach = max(1, round(ref_gap * ns)), max(2, round(ref_reach * ns))
    refd = np.zeros((ns, c))
    dil = 1 + math.ceil(rel_tol * (c - 1))
    half = np.minimum(np.floor(1 + rel_tol * f).astype(int), dil)
    judged = ok.copy()
    for i in range(ns):
        sides = []
        for lo_, hi_ in ((i - gap - reach, i - gap), (i + gap + 1, i + gap + reach + 1)):
            idx = [j for j in range(lo_, hi_) if 0 <= j < ns and ok[j]]
            sides.append(np.sort(ps[idx], axis=0)[(len(idx) - 1) // 2] if idx else np.full(c, np.nan))
        ref = np.fmax(*sides)
        if not math.isfinite(ref[0]):  # no reference on either side: not judged
            judged[i] = False
        ref = np.nan_to_num(ref)
        refd[i] = [ref[max(0, q - half[q]): q + half[q] + 1].max() for q in range(c)]
    excess = ps > gain * refd
    ok = judged

    def smoothed(ex: np.ndarray) -> np.ndarray:
        return np.where(ok, moving_mean((ps * ex).sum(1), 3), 0.0)

    nov_all = float(smoothed(excess).max())
    if math.isfinite(below_period_px):
        excess = excess & (f <= below_frac * w / below_period_px)[None]
    nov = np.where(ok, (ps * excess).sum(1), 0.0)
    nov_s = np.where(ok, moving_mean(nov, 3), 0.0)
    j = int(np.argmax(nov_s))
    rows = np.minimum(j * st + np.arange(s), h - 1)
    zr, vr = z[rows], v[rows]
    bp = np.fft.irfft(np.fft.rfft(zr, axis=1) * excess[j], n=w, axis=1)
    e = (bp ** 2 * vr).sum(0) / np.maximum(vr.sum(0), 1.0)
    vcol = vr.mean(0) >= 0.5
    e = moving_mean(e, max(3, round(smooth_frac * w) | 1))
    p90 = float(np.quantile(e[vcol], 0.9)) if vcol.any() else math.nan
    extent = (vcol & (e >= 0.25 * p90)).sum() / max(vcol.sum(), 1)
    return {"novelty_max": float(nov_s[j]), "novelty_all_max": nov_all, "extent": float(extent),
            "at": (j * st + s / 2)}


def strip_band_keys(x: np.ndarray, v: np.ndarray, period_px: float, strip_frac: float = 0.1
                    ) -> dict[str, float]:
    h, w = x.shape
    sx = strip_novelty(x, v, strip_px=max(8, round(strip_frac * h)), below_period_px=period_px)
    sy = strip_novelty(x.T, v.T, strip_px=max(8, round(strip_frac * w)), below_period_px=period_px)
    return {"strip_novelty_x": sx["novelty_max"], "strip_extent_x": sx["extent"],
            "strip_novelty_at_y": sx["at"] / h, "strip_novelty_y": sy["novelty_max"],
            "strip_extent_y": sy["extent"], "strip_novelty_at_x": sy["at"] / w,
            "strip_novelty_all_x": sx["novelty_all_max"], "strip_novelty_all_y": sy["novelty_all_max"]}


# ------------------------------------------------------------------------------------------------------
# Edge strips (functional/seams.edge_scores)
# ------------------------------------------------------------------------------------------------------
def _line_stats(xs: np.ndarray, vs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line 0..n−1 (the side at line 0): mean level, log along-line and log to-next-line difference
    energies."""
    x0, v0 = xs[:n], vs[:n]
    mean = (x0 * v0).sum(1) / np.maximum(v0.sum(1), 1.0)
    pa = v0[:, 1:] * v0[:, :-1]
    along = np.log(((x0[:, 1:] - x0[:, :-1]) ** 2 * pa).sum(1) / np.maximum(pa.sum(1), 1.0) + 1e-8)
    pp = vs[1:n + 1] * vs[:n]
    perp = np.log(((xs[1:n + 1] - xs[:n]) ** 2 * pp).sum(1) / np.maximum(pp.sum(1), 1.0) + 1e-8)
    return mean, along, perp


def edge_scores(x: np.ndarray, v: np.ndarray, *, strip: int = 13, inner: int = 48, reach: int = 160,
                recur: float = 1.25, segments: int = 4) -> dict[str, float]:
    """``edge_<side>``: per side and segment, the steps of the line statistics 3..strip px in, in robust z
    units of the interior steps; the same signed step on every segment, less ``recur`` × the largest such
    step further in."""
    n_lines = strip + inner
    h, w = x.shape
    short = min(h, w)
    lines = max(n_lines, min(reach, short // 2 - 2))
    m = lines + 1
    views = {"top": (x[:m], v[:m]), "bottom": (x[-m:][::-1], v[-m:][::-1]),
             "left": (x.T[:m], v.T[:m]), "right": (x.T[-m:][::-1], v.T[-m:][::-1])}
    out: dict[str, float] = {}
    for side in ("left", "right", "top", "bottom"):
        xs, vs = views[side]
        length = xs.shape[1]
        if short < n_lines + 2 or length < 4 * segments:
            out[f"edge_{side}"] = math.nan
            continue
        q = length // segments
        segz = []
        for j in range(segments):
            stats = _line_stats(xs[:, j * q:(j + 1) * q], vs[:, j * q:(j + 1) * q], lines)
            zs = []
            for stat, floor in zip(stats, (0.004, 0.1, 0.1), strict=True):
                a = 0.5 * (stat[:-1] + stat[1:])
                d = a[:-2] - a[2:]  # d[i]: the step at boundary i + 2
                ins = d[strip + 3: n_lines - 3]
                med = lower_median(ins)
                mad = lower_median(np.abs(ins - med))
                zs.append((d[1:] - med) / max(1.4826 * mad, floor))
            segz.append(zs)
        z = np.nan_to_num(np.asarray(segz))  # segments×3×(lines−3)
        best = 0.0
        for same in (z.min(axis=0), (-z).min(axis=0)):
            near = same[:, : strip - 2].max(axis=1)
            far = np.maximum(same[:, strip + 2:].max(axis=1), 0.0)
            best = max(best, float((near - recur * far).max()))
        out[f"edge_{side}"] = best
    sides = [0.0 if not math.isfinite(out[f"edge_{s}"]) else out[f"edge_{s}"]
             for s in ("left", "right", "top", "bottom")]
    out["edge_score"] = max(sides)
    out["edge_side"] = float(int(np.argmax(sides)))
    return out


# ------------------------------------------------------------------------------------------------------
# Aliasing fold keys (functional/spectral.fine_peak_fracs, window_fold_fracs)
# ------------------------------------------------------------------------------------------------------
def lattice_distance(pts: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Distance (bins) of the points ``pts`` (``M×2``, (ky, kx)) to the nearest ``m·f + n·g`` (``g`` NaN:
    the points ``m·f``); +inf for a degenerate basis."""
    one_d = not math.isfinite(g[0])
    g1 = np.array([-f[1], f[0]]) if one_d else g
    basis = np.array([[f[0], g1[0]], [f[1], g1[1]]])
    det = basis[0, 0] * basis[1, 1] - basis[0, 1] * basis[1, 0]
    if not math.isfinite(det) or abs(det) <= 1e-9:
        return np.full(len(pts), np.inf)
    ab = np.rint(pts @ np.linalg.inv(basis).T)
    if one_d:
        ab[:, 1] = 0.0
    return np.linalg.norm(ab @ basis.T - pts, axis=1)


def fine_peak_fracs(p: np.ndarray, f: np.ndarray | None, g: np.ndarray | None, lattice_ok: bool, *,
                    min_cycles_px: float = 0.2, gain: float = 8.0, reach: int = 4, stride: int = 8,
                    stride_reach: float = 1.5, rel_tol: float = 0.06, top_bins: int = 2048,
                    own_line: bool = False, own_lattice: bool = False) -> tuple[float, float]:
    """Share of the AC power (``p``: ``S×(S//2+1)`` rfft2 power) in bins ``gain``× above their
    neighbourhood's geometric mean at ≥ 0.2 cycles/px, off the stride grid and off the wall's lattice;
    and of those off the lattice of the two strongest such peaks (``own_line``: of the two strongest
    prominent peaks at any scale, and off the first one's line; ``own_lattice``: the same two, without the
    line)."""
    s = p.shape[0]
    ky, kx, r, wt = rfft_grid(s)
    lp = np.log(np.maximum(p, _TINY32))
    k = 2 * reach + 1
    wrapped = np.concatenate([lp[-reach:], lp, lp[:reach]], axis=0)
    cs = np.concatenate([np.zeros((1, lp.shape[1])), np.cumsum(wrapped, axis=0)])
    bg = (cs[k:] - cs[:-k]) / k  # ky (wrapped)
    cs = np.concatenate([np.zeros((s, 1)), np.cumsum(bg, axis=1)], axis=1)
    cnt = np.concatenate([[0], np.cumsum(np.ones(lp.shape[1]))])
    j = np.arange(lp.shape[1])
    lo, hi = np.maximum(j - reach, 0), np.minimum(j + reach + 1, lp.shape[1])
    bg = (cs[:, hi] - cs[:, lo]) / (cnt[hi] - cnt[lo])  # kx (shrinking at the ends)
    peak = (lp - bg) > math.log(gain)
    fy, fx = ky * (stride / s), kx * (stride / s)
    near = ((np.abs(fy - np.rint(fy)) * s / stride <= stride_reach)
            & (np.abs(fx - np.rint(fx)) * s / stride <= stride_reach))
    keep = (r / s >= min_cycles_px) & ~near
    pts = np.stack([ky.ravel(), kx.ravel()], axis=1)
    tolr = stride_reach + rel_tol * r.ravel()
    if f is not None and g is not None and lattice_ok:
        keep &= ~(lattice_distance(pts, f, g) <= tolr).reshape(r.shape)
    tot = max(float((p * (r >= 2) * wt).sum()), _TINY32)
    wgt = (p * wt * (peak & keep)).ravel()
    total = float(wgt.sum())
    any_scale = own_line or own_lattice
    cand = (p * wt * (peak & (r >= 3.0) & ~near)).ravel() if any_scale else wgt
    idx = np.argsort(-cand, kind="stable")[:top_bins]
    pw, kk, tol = cand[idx], pts[idx], tolr[idx]
    if pw[0] <= 0:
        return total / tot, total / tot
    a = kk[0]
    if any_scale:
        ua = a / max(np.linalg.norm(a), 1e-9)
        line_dist = lambda q: np.abs(q[:, 0] * ua[1] - q[:, 1] * ua[0])
        off = pw * (line_dist(kk) > tol)
    else:
        off = pw * ~(lattice_distance(kk, a, np.array([np.nan, np.nan])) <= tol)
    jb = int(np.argmax(off))
    b = kk[jb] if off[jb] > 0 else np.array([np.nan, np.nan])
    if any_scale:
        own = lattice_distance(pts, a, b) <= tolr
        if own_line:
            own |= line_dist(pts) <= tolr
        return total / tot, float((wgt * ~own).sum()) / tot
    own = lattice_distance(kk, a, b) <= tol
    return total / tot, (total - float((pw * own).sum())) / tot


def window_fold_fracs(x: np.ndarray, v: np.ndarray, f: np.ndarray, g: np.ndarray, lattice_ok: bool,
                      side: int, window: int = 64, min_valid: float = 0.95,
                      min_cycles_px: float = 0.1) -> tuple[float, float]:
    """:func:`fine_peak_fracs` (``own_line``) on each 64-px tile of a non-overlapping grid (detrended,
    Hann-windowed; the frame's lattice rescaled to the tile), lower medians over the valid tiles."""
    h, w = x.shape
    if h < window or w < window:
        return math.nan, math.nan
    hw = np.outer(hann_sym(window), hann_sym(window))
    fines, folds = [], []
    for i in range(h // window):
        for j in range(w // window):
            sl = np.s_[i * window:(i + 1) * window, j * window:(j + 1) * window]
            if v[sl].mean() < min_valid:
                continue
            sig = detrend(x[sl], hw) * hw
            fi, fo = fine_peak_fracs(np.abs(np.fft.rfft2(sig)) ** 2, f * (window / side), g * (window / side),
                                     lattice_ok, top_bins=512, own_line=True, min_cycles_px=min_cycles_px)
            fines.append(fi)
            folds.append(fo)
    return lower_median(fines), lower_median(folds)


# ------------------------------------------------------------------------------------------------------
# The mask seam (functional/seams.mask_seam_parts)
# ------------------------------------------------------------------------------------------------------
def erode(v: np.ndarray, r: int) -> np.ndarray:
    """Minimum of ``v`` over the (2r+1)² square around each pixel (outside the frame counts as 1)."""
    if r <= 0:
        return v
    k = 2 * r + 1
    pad = np.pad(v, r, constant_values=1.0)
    rows = np.lib.stride_tricks.sliding_window_view(pad, k, axis=1).min(axis=-1)
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=0).min(axis=-1)


def contour_offsets(x: np.ndarray, band_ring: np.ndarray, band_ref: np.ndarray, *, block: int,
                    min_px: int = 16, pool_ref: bool = False,
                    outside: tuple[np.ndarray, np.ndarray] | None = None,
                    min_contrast: float = 0.1) -> dict[str, float]:
    """Per ``block``-px block, the relative offset of the mean of ``x`` over ``band_ring`` against its mean
    over ``band_ref`` (``pool_ref``: over the block's 3×3-block neighbourhood), less the blur across the
    contour: with the ``outside`` bands (ring, ref; both with ``min_px`` pixels in the block), the median over
    the blocks whose wall–outside contrast is ≥ ``min_contrast`` of the wall's level of the share of that
    contrast the outside ring moved towards the wall (clipped to [0, 0.5]), times each block's contrast,
    is added where the block's offset goes towards the outside's level; the lower median over blocks, its
    robust t and the share of blocks of its sign."""
    h, w = x.shape
    nr, nc = h // block, w // block
    blocks = []
    for i in range(nr):
        for j in range(nc):
            sl = np.s_[i * block:(i + 1) * block, j * block:(j + 1) * block]
            r = 1 if pool_ref else 0
            sf = np.s_[max(i - r, 0) * block:min(i + r + 1, nr) * block,
                       max(j - r, 0) * block:min(j + r + 1, nc) * block]
            c_r, c_f = band_ring[sl].sum(), band_ref[sf].sum()
            if c_r >= min_px and c_f >= min_px:
                m_r = (x[sl] * band_ring[sl]).sum() / c_r
                m_f = (x[sf] * band_ref[sf]).sum() / c_f
                contrast = shift = math.nan
                if outside is not None:
                    c_o, c_of = outside[0][sl].sum(), outside[1][sl].sum()
                    if c_o >= min_px and c_of >= min_px:
                        m_of = (x[sl] * outside[1][sl]).sum() / c_of
                        contrast, shift = m_f - m_of, (x[sl] * outside[0][sl]).sum() / c_o - m_of
                blocks.append((m_r - m_f, m_f, contrast, shift))
    if len(blocks) < 4:
        return dict.fromkeys(("mask_seam_score", "mask_seam_t", "mask_seam_agree", "_median"), math.nan)
    shares = [s / c for _, m_f, c, s in blocks
              if math.isfinite(c) and abs(c) >= min_contrast * max(abs(m_f), 0.02)]
    share = min(max(lower_median(np.asarray(shares)), 0.0), 0.5) if shares else 0.0
    rel = np.asarray([(d + (share * c if math.isfinite(c) and d * c < 0 else 0.0)) / max(abs(m_f), 0.02)
                      for d, m_f, c, _ in blocks])
    med = lower_median(rel)
    mad = lower_median(np.abs(rel - med))
    return {"mask_seam_score": abs(med), "mask_seam_t": abs(med) / (1.4826 * mad + 0.01),
            "mask_seam_agree": float(((rel * np.sign(med)) > 0).mean()), "_median": med}


def mask_seam(x: np.ndarray, v: np.ndarray, period_px: float, *, skip: int = 1, ring: int = 3, gap: int = 6,
              ref: int = 4, block: int = 32, max_shift_px: float = 28.0) -> dict[str, float]:
    """``mask_seam_*``: the band ``skip``–``ring`` px inside the contour against the band ``gap``–``gap+ref``
    px inside, block by block; on a periodic wall with a multiple ``m·P`` (m = 1–4) of its period in
    ``gap+ref``–28 px (the one of least rounding error + 0.1·m), against the contour band that (rounded)
    depth deeper, averaged over each block's 3×3-block neighbourhood, unless that confirms the first offset
    (same sign, at least half of it); each block's offset less the blur across the contour, read on the same
    bands outside it."""
    band_ring = erode(v, skip) * (1.0 - erode(v, ring))
    o = 1.0 - v  # the same bands outside the contour (the blur across it)
    outside = (erode(o, skip) * (1.0 - erode(o, ring)), erode(o, gap) * (1.0 - erode(o, gap + ref)))
    cands = [(abs(m * period_px - round(m * period_px)) + 0.1 * m, round(m * period_px))
             for m in range(1, 5) if math.isfinite(period_px) and period_px > 0
             and gap + ref <= m * period_px <= max_shift_px]
    plain = contour_offsets(x, band_ring, erode(v, gap) * (1.0 - erode(v, gap + ref)), block=block,
                            outside=outside)
    mp = plain.pop("_median")
    if cands:
        d = min(cands)[1]
        deeper = (erode(v, skip + d) > 0.5) * (1.0 - (erode(v, ring + d) > 0.5))
        shifted = contour_offsets(x, band_ring, deeper, block=block, pool_ref=True, outside=outside)
        ms = shifted.pop("_median")
        if not (mp * ms > 0 and abs(ms) >= 0.5 * abs(mp)):  # the deeper band does not confirm the offset
            return shifted
    return plain


# ------------------------------------------------------------------------------------------------------
# The lattice's real-space basis (functional/lattice.real_basis, axis_periods; tiling._lattice_keys)
# ------------------------------------------------------------------------------------------------------
def real_basis(f: np.ndarray, g: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``t₁``, ``t₂`` ((ty, tx) px) dual to the reciprocal ``f``, ``g`` (bins), Gauss-reduced; a 1-D texture
    (``g`` NaN): ``t₁ = f/|f|²·side``, ``t₂`` NaN."""
    b1, b2 = f / side, g / side
    if not np.isfinite(g).all():
        return b1 / max(float(b1 @ b1), 1e-12), np.array([np.nan, np.nan])
    det = b1[0] * b2[1] - b1[1] * b2[0]
    t1, t2 = np.array([b2[1], -b2[0]]) / det, np.array([-b1[1], b1[0]]) / det
    for _ in range(4):
        if t2 @ t2 < t1 @ t1:
            t1, t2 = t2, t1
        t2 = t2 - np.rint((t1 @ t2) / max(t1 @ t1, 1e-12)) * t1
    return t1, t2


def axis_periods(t1: np.ndarray, t2: np.ndarray, max_angle_deg: float = 30.0) -> tuple[float, float]:
    """Shortest lattice vector ``a·t₁ + b·t₂`` (|a|, |b| ≤ 3) within 30° of x and of y."""
    one_d = not np.isfinite(t2).all()
    c = math.cos(math.radians(max_angle_deg))
    px = py = math.inf
    for a in range(-3, 4):
        for b in range(-3, 4):
            if (a == 0 and b == 0) or (one_d and b != 0):
                continue
            vec = a * t1 + (0.0 if one_d else b * t2)
            ln = float(np.hypot(*vec))
            if ln <= 1e-6:
                continue
            if abs(vec[1]) >= c * ln:
                px = min(px, ln)
            if abs(vec[0]) >= c * ln:
                py = min(py, ln)
    return (px if math.isfinite(px) else math.nan), (py if math.isfinite(py) else math.nan)


def lattice_keys(f: np.ndarray, g: np.ndarray, side: int, prominence: float) -> dict[str, float]:
    t1, t2 = real_basis(f, g, side)
    px, py = axis_periods(t1, t2)
    ang = lambda t: math.degrees(math.atan2(t[0], t[1])) % 180.0
    return {"lattice_t1_px": float(np.hypot(*t1)), "lattice_t2_px": float(np.hypot(*t2)),
            "lattice_t1_angle_deg": ang(t1), "lattice_t2_angle_deg": ang(t2), "period_x_px": px,
            "period_y_px": py, "lattice_prominence": prominence}


# ------------------------------------------------------------------------------------------------------
# The newer summary keys of one unmasked image (tiling.tiling_metrics after the seed's metrics)
# ------------------------------------------------------------------------------------------------------
PERSPECTIVE_TREND, CENTRE_AGREE, CENTRE_MULTIPLE = 0.2, 0.12, 1.4
PERSP_STEP_OCTAVES, PERSP_STEP_MARGIN = 1.2, 0.1  # persp_sq pairs matching beyond the 0.8-octave reach
#   (out to 1.2) within 0.1 of their in-range best: a step of scale, left out
CENTRE_ZONE, CENTRE_CROP_FRAC = (1.6, 2.6), 0.4
CENTRE_CROP_SCORE, FRAME_DOUBLE, REF_MAP_CYCLES, CENTRE_HALF = 0.03, (1.85, 2.6), 2.5, 0.12
RECT_ALT_DIFF = 0.1  # as tiling_limits: the unchecked tilt is a second candidate beyond this (frame units)
RECT_ALT_MAX = 1.0  # as tiling_limits: ... and only where |G_y| + |G_x| <= this
RECT_REFINE_STEP = 0.2  # as tiling_limits: the tilt's one correction, at most this per component
RECT_REFINE_SPREAD = 0.1  # as tiling_limits: ... where the residual's two axes agree within this
RECT_REFINE_COHERENT = 0.6  # as tiling_limits: ... and the rectified local map's windows agree
RECT_PAIR_FRONTO = True  # as tiling_limits: the rectified wall's pair region in the fronto-parallel reading
RECT_CORR_TOL = 0.05  # as tiling_limits: a rectified map is kept unless its plain correlation drops more
MIN_REGION_PERIODS = 5.0  # as analyzers/tiling.py: the region maps need this many lattice periods across
STRIP_MIN_LATTICE_PX = 8.0  # as tiling_limits: the longest lattice vector below: no wall lattice to double
WEAK_SCORE = 0.1  # as tiling_limits: periodicity_score below: a wall with hardly a lattice (no doubling map)
# the window vote (analyzers/tiling_limits.py WINDOW_*)
VOTE_FRAC, VOTE_CYCLES, VOTE_TOL, VOTE_SHARE, CONFIRM_RANGE = 1 / 3, 6.0, 0.08, 0.5, 1.25
CONFIRM_TOL = 0.05  # the windows' median contradicts the reported period beyond this (WINDOW_CONFIRM_TOL)
FINE_MIN, FINE_SHARE, PAIR_SHARE = 3, 1 / 3, 2 / 3  # the rectified windows' finer lattice (WINDOW_FINE_*)
COARSE_MAX = 2.6  # ... and its coarser partner's reach, 2^(1 - VOTE_TOL) to this × (WINDOW_COARSE_MAX)


def centre_crop_lattice(x: np.ndarray, valid: np.ndarray, masked: bool, min_period_px: float = 3.0
                        ) -> dict[str, Any]:
    """:func:`lattice_periodicity` of the frame's central half: its score joins ``periodicity_score``, its
    period is ``centre_crop_period_px`` (NaN without a lattice); computed once, as in ``tiling_metrics``."""
    h, w = x.shape
    sl = np.s_[h // 4: h - h // 4, w // 4: w - w // 4]
    return lattice_periodicity(x[sl], valid[sl], masked, min_period_px=min_period_px,
                               max_period_frac=CENTRE_CROP_FRAC)


def fast_size(n: int) -> int:
    """The largest size ``≤ n`` whose prime factors are all 2, 3, 5 or 7 (the window vote's side:
    spectral.fast_fft_size)."""
    m = max(1, n)
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m -= 1


def window_readings(x: np.ndarray, valid: np.ndarray, trend_x: float, trend_y: float, masked: bool
                    ) -> tuple[list[float], list[bool], int]:
    """The window vote's readings: the frame cut into a centred grid of non-overlapping ``side×side``
    windows (a third of the shorter side, rounded down to a :func:`fast_size`), each read by
    :func:`lattice_periodicity` (periods up to 0.34 of
    the window); per window its log period moved to the frame centre along the trend (NaN trends read as 0)
    and whether it votes (a lattice and ≥ 60 % valid pixels). Returns ``(log periods, votes, side)``."""
    h, w = x.shape
    side = fast_size(int(min(h, w) * VOTE_FRAC))
    if side < 32:
        return [math.nan], [False], side
    gy, gx = max(1, h // side), max(1, w // side)
    oy, ox = (h - gy * side) // 2, (w - gx * side) // 2
    tx = trend_x if math.isfinite(trend_x) else 0.0
    ty = trend_y if math.isfinite(trend_y) else 0.0
    lw, ok = [], []
    for i in range(gy):
        for j in range(gx):
            sl = np.s_[oy + i * side: oy + (i + 1) * side, ox + j * side: ox + (j + 1) * side]
            r = lattice_periodicity(x[sl], valid[sl], masked, max_period_frac=0.34)
            per = r["s"] / r["radius"] if r["found"] else math.nan
            cy = (oy + side * (i + 0.5)) / h - 0.5
            cx = (ox + side * (j + 0.5)) / w - 0.5
            lw.append(math.log(max(per, 1e-6)) - tx * cx - ty * cy if math.isfinite(per) else math.nan)
            ok.append(bool(r["found"]) and float(valid[sl].mean()) >= 0.6)
    return lw, ok, side


def _largest_group(lw: list[float], among: list[bool]) -> tuple[list[bool], float]:
    """The largest group of windows (``among``) within ``VOTE_TOL`` of one member's log period (the first
    such member on ties) and the group's lower median; NaN without one."""
    near = [[abs(a - b) <= VOTE_TOL for b in lw] for a in lw]  # NaN: False
    best, cnt_best = 0, -1
    for i, a in enumerate(among):
        cnt = sum(n and m for n, m in zip(near[i], among, strict=True)) if a else -1
        if cnt > cnt_best:
            best, cnt_best = i, cnt
    group = [n and m for n, m in zip(near[best], among, strict=True)]
    vals = sorted(v for v, g in zip(lw, group, strict=True) if g and math.isfinite(v))
    return group, (vals[(len(vals) - 1) // 2] if vals else math.nan)


def window_vote_period(lw: list[float], ok: list[bool], side: int, period: float, crop: float,
                       crop_score: float, min_period_px: float = 3.0, lattice_t1: float = math.nan) -> float:
    """``window_vote_period_px``: the finer period (a divisor of ``period``) that the largest group of voting
    windows reads, where it holds half of the ≥ 4 voting windows, more than agree with ``period``, and a
    window holds ``period`` ``VOTE_CYCLES`` times or the central half's lattice (``crop``, scoring ≥
    ``CENTRE_CROP_SCORE``) reads it too, or the frame's shortest lattice vector (``lattice_t1``) has its
    length; NaN where ``period`` stands (tiling_summary._window_vote_period)."""
    l0 = math.log(max(period, 1e-6)) if math.isfinite(period) else math.nan
    nvote = sum(ok)
    agree0 = sum(o and abs(v - l0) <= VOTE_TOL for v, o in zip(lw, ok, strict=True))
    finer = []
    for v, o in zip(lw, ok, strict=True):
        m = math.exp(l0 - v) if math.isfinite(l0 - v) else math.nan
        f = (o and m >= 2.0 - 2.0 * VOTE_TOL and v >= math.log(2.0 * min_period_px)
             and abs(math.log(m / max(round(m), 1.0))) <= VOTE_TOL)
        finer.append(bool(f))
    group, lm = _largest_group(lw, finer)
    share = sum(group)
    room = side >= VOTE_CYCLES * period
    if math.isfinite(crop) and math.isfinite(lm):
        room = room or (abs(math.log(max(crop, 1e-6)) - lm) <= VOTE_TOL and crop_score >= CENTRE_CROP_SCORE)
    if math.isfinite(lattice_t1) and math.isfinite(lm):
        room = room or abs(math.log(max(lattice_t1, 1e-6)) - lm) <= VOTE_TOL
    use = share >= VOTE_SHARE * nvote and share > agree0 and nvote >= 4 and room and any(finer)
    return math.exp(lm) if use else math.nan


def window_confirmed(lw: list[float], ok: list[bool], period: float, readings: list[float]) -> float:
    """Of the centre's readings (reported, central half, map, frame), the one nearest (within ``VOTE_TOL``)
    to the median of the largest group of voting windows within ×/÷ ``CONFIRM_RANGE`` of ``period``, where
    that group holds half of the ≥ 4 voting windows and contradicts ``period`` (beyond ``CONFIRM_TOL``); NaN
    elsewhere (tiling_summary._window_confirmed)."""
    l0 = math.log(max(period, 1e-6)) if math.isfinite(period) else math.nan
    nvote = sum(ok)
    cand = [bool(o and abs(v - l0) <= math.log(CONFIRM_RANGE)) for v, o in zip(lw, ok, strict=True)]
    group, lm = _largest_group(lw, cand)
    d = [abs(math.log(max(r, 1e-6)) - lm) if math.isfinite(r) else math.inf for r in readings]
    d = [e if math.isfinite(e) else math.inf for e in d]
    j = min(range(len(d)), key=lambda i: d[i])
    use = (sum(group) >= VOTE_SHARE * nvote and nvote >= 4 and any(cand) and d[j] <= VOTE_TOL
           and abs(l0 - lm) > CONFIRM_TOL)
    return readings[j] if use else math.nan


def rectified_base(lw: list[float], ok: list[bool], side: int, period: float, readings: list[float], *,
                   lattice_t1: float, min_period_px: float = 3.0, exact: bool = True,
                   fine_rows: bool = True) -> float:
    """The rectified (or fronto-parallel: ``exact``) wall's windows' base lattice where it departs from
    ``period``: the largest group of voting windows (above ``2 × min_period_px``) whose double (2^(1 −
    VOTE_TOL) to ``COARSE_MAX`` ×) some voting window reads and whose half none reads, where it holds
    ``FINE_MIN`` windows, ``FINE_SHARE`` of the voters and with its double ``PAIR_SHARE``; else the largest
    group where it holds ``VOTE_SHARE`` and lies beyond ×/÷ ``CONFIRM_RANGE`` of ``period``. Its median, or
    the reading nearest to it within ``CONFIRM_TOL``; towards ½ of ``period`` or less only with
    ``lattice_t1`` nearer the new period (or, the majority, ``VOTE_CYCLES`` periods in a window); NaN where
    ``period`` stands; not ``exact`` (an angled wall's trend-moved windows): the majority only, towards a
    coarser period (tiling_summary._rectified_base)."""
    l0 = math.log(max(period, 1e-6)) if math.isfinite(period) else math.nan
    nvote = sum(ok)
    ln2 = math.log(2.0)
    floor = [math.isfinite(v) and v >= math.log(2.0 * min_period_px) for v in lw]
    lo, hi = ln2 - VOTE_TOL, math.log(COARSE_MAX)
    up = lambda a, b: lo <= a - b <= hi  # a reads b's double (NaN: False)
    has_dbl = [bool(o and fl and any(p and up(u, v) for u, p in zip(lw, ok, strict=True))
                    and not any(p and up(v, u) for u, p in zip(lw, ok, strict=True)))
               for v, o, fl in zip(lw, ok, floor, strict=True)]
    gf, mf = _largest_group(lw, has_dbl)
    nf = sum(gf) if any(has_dbl) else 0
    nc = sum(o and up(v, mf) for v, o in zip(lw, ok, strict=True)) if nf else 0
    fine = (exact and (fine_rows or nf >= nc) and nf >= FINE_MIN and nf >= FINE_SHARE * nvote
            and nf + nc >= PAIR_SHARE * nvote)
    among = [o and fl for o, fl in zip(ok, floor, strict=True)]
    g, m = _largest_group(lw, among)
    far = any(among) and sum(g) >= VOTE_SHARE * nvote and abs(m - l0) > math.log(CONFIRM_RANGE)
    target = mf if fine else m
    lt = math.log(max(lattice_t1, 1e-6)) if math.isfinite(lattice_t1) else math.nan
    near_t1 = math.isfinite(lt) and abs(lt - target) < abs(lt - l0)
    room = near_t1 if fine else (side >= VOTE_CYCLES * period or near_t1)
    harmonic = l0 - target >= math.log(2.0 - 2.0 * VOTE_TOL)
    if not ((fine or far) and nvote >= 4 and math.isfinite(target) and abs(target - l0) > CONFIRM_TOL
            and (room or not harmonic) and (exact or target > l0)):
        return math.nan
    d = [abs(math.log(max(r, 1e-6)) - target) if math.isfinite(r) else math.inf for r in readings]
    j = min(range(len(d)), key=lambda i: d[i])
    return readings[j] if d[j] <= CONFIRM_TOL else math.exp(target)


# ------------------------------------------------------------------------------------------------------
# The rectified region maps of a wall seen at an angle (functional/rectify.py, analyzers/rectified.py)
# ------------------------------------------------------------------------------------------------------
def axis_tilt(lm: dict[str, Any], h: int, w: int, keep: tuple[float, float] = (0.6, 1.6), min_points: int = 6
              ) -> tuple[tuple[float, float], tuple[float, float]]:
    """``rectify.tilt_from_axis_periods`` in frame units: ``(G_y, G_x)`` from Theil–Sen slopes of the local
    map's per-axis log periods (``2G_x, G_y`` for the x periods, ``G_x, 2G_y`` for the y periods), and each
    component's spread (the two axes' estimates apart; NaN unless both are measured)."""
    gh, gw = lm["period_x"].shape
    ty = np.repeat((lm["center_y"] / h)[:, None], gw, 1).ravel()
    tx = np.repeat((lm["center_x"] / w)[None, :], gh, 0).ravel()
    row, col = np.indices((gh, gw))

    def slopes(m: np.ndarray) -> tuple[float, float]:
        r = m / lower_median(m)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(r) & (r >= keep[0]) & (r <= keep[1])
        v = np.where(ok, np.log(np.where(ok, r, 1.0)), 0.0).ravel()
        return (theil_sen_groups(tx, v, ok.ravel(), row.ravel(), min_points),
                theil_sen_groups(ty, v, ok.ravel(), col.ravel(), min_points))

    xx, xy = slopes(lm["period_x"])
    yx, yy = slopes(lm["period_y"])

    def mean(a: float, b: float) -> float:
        vals = [v for v in (a, b) if math.isfinite(v)]
        return sum(vals) / len(vals) if vals else math.nan

    return (mean(xy, yy / 2.0), mean(xx / 2.0, yx)), (abs(xy - yy / 2.0), abs(xx / 2.0 - yx))


def tilt_agrees(e: float, tr: float, one_d: bool) -> bool:
    """``rectify.tilt_agrees`` for one component (frame units): the trend's sign and 0.4–1.35 × its size
    (on a 1-D texture 0.3–0.6 × or the 2-D range) along a trend ≥ 0.2, within 0.15 along a flatter one."""
    tr = tr if math.isfinite(tr) else 0.0
    q = e / (tr if abs(tr) > 1e-9 else 1.0)
    lo, hi = (0.3, 0.6) if one_d else (0.4, 1.35)
    agree = lo <= q <= hi or (one_d and 0.4 <= q <= 1.35)
    return math.isfinite(e) and ((abs(tr) >= 0.2 and agree) or (abs(tr) < 0.2 and abs(e) <= 0.15))


def wall_tilt(lm: dict[str, Any], h: int, w: int, trend_y: float, trend_x: float, one_d: bool
              ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """``rectify.tilt_from_axis_periods`` then ``rectify.checked_tilt`` and ``rectify.alternative_tilt``:
    the tilt (g_y, g_x) in 1/px (:func:`axis_tilt`), each component kept where it agrees with the isotropic
    trend (:func:`tilt_agrees`) and else replaced by the trend over 1.4 (2 on a 1-D texture); and the
    unchecked estimate (1/px; per component where the trend is ≥ 0.2, else the checked one) where it
    differs from the checked one by more than ``RECT_ALT_DIFF`` (frame units) and
    ``|G_y| + |G_x| ≤ RECT_ALT_MAX``, else None."""
    est, _ = axis_tilt(lm, h, w)
    div = 2.0 if one_d else 1.4
    out = []
    for e, tr in zip(est, (trend_y, trend_x), strict=True):
        out.append(e if tilt_agrees(e, tr, one_d) else (tr if math.isfinite(tr) else 0.0) / div)
    alt = [e if math.isfinite(e) and abs(t if math.isfinite(t) else 0.0) >= 0.2 else c
           for e, c, t in zip(est, out, (trend_y, trend_x), strict=True)]
    differs = any(abs(a - c) > RECT_ALT_DIFF for a, c in zip(alt, out, strict=True))
    sane = all(math.isfinite(a) for a in alt) and abs(alt[0]) + abs(alt[1]) <= RECT_ALT_MAX
    other = (alt[0] / h, alt[1] / w) if differs and sane else None
    return (out[0] / h, out[1] / w), other


def refined_tilt(x: np.ndarray, vf: np.ndarray, gy: float, gx: float, trend_y: float, trend_x: float,
                 one_d: bool) -> tuple[float, float]:
    """``rectified.refine_tilts`` for one candidate (1/px): the wall rectified by it, its local map's
    residual tilt (:func:`axis_tilt`) added per component (clamped to ±``RECT_REFINE_STEP``) where measured,
    its two axes within ``RECT_REFINE_SPREAD`` (or one measured), the rectified map coherent (the mean over
    its measured axes of the share of windows within 25 % of the lower median ≥ ``RECT_REFINE_COHERENT``)
    and the sum still agreeing with the trend."""
    h, w = x.shape
    xr, vr = rectify_image(x, vf, gy, gx)
    lm = local_lattice_map(xr, vr > 0.5)
    (ry, rx), (sy, sx) = axis_tilt(lm, h, w)
    shares = []
    for m in (lm["period_x"], lm["period_y"]):  # rectify.period_coherence
        v = m[np.isfinite(m)]
        if v.size:
            shares.append(float(np.mean(np.abs(v / lower_median(v) - 1.0) <= 0.25)))
    coherent = bool(shares) and sum(shares) / len(shares) >= RECT_REFINE_COHERENT
    out = []
    for g, r, sp, tr in ((gy * h, ry, sy, trend_y), (gx * w, rx, sx, trend_x)):
        ok = coherent and math.isfinite(r) and not sp > RECT_REFINE_SPREAD
        new = g + min(max(r, -RECT_REFINE_STEP), RECT_REFINE_STEP) if ok else g
        out.append(new if ok and tilt_agrees(new, tr, one_d) else g)
    return out[0] / h, out[1] / w


def rectify_image(x: np.ndarray, vf: np.ndarray, gy: float, gx: float, min_valid: float = 0.99
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``rectify.rectify``: rectified pixel ``q`` (frame-centred px) reads the image at
    ``p = q / (1 − g·q)``, bilinear with zeros outside the frame, as ``x·v`` and ``v`` (the ratio where the
    read validity is ≥ ``min_valid`` and the point is ahead of the horizon; 0 elsewhere). Whole-plane
    arrays: the four corners' weights and reads (no per-pixel loop)."""
    h, w = x.shape
    qy = (np.arange(h) + 0.5 - h / 2.0)[:, None]
    qx = (np.arange(w) + 0.5 - w / 2.0)[None, :]
    den = 1.0 - gy * qy - gx * qx
    ahead = den > 0.05
    den = np.where(ahead, den, 1.0)
    py, px = qy / den + h / 2.0 - 0.5, qx / den + w / 2.0 - 0.5  # pixel index coordinates
    y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    xv = x * vf
    a, b = np.zeros((h, w)), np.zeros((h, w))
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wt = (py - y0 if dy else 1.0 - (py - y0)) * (px - x0 if dx else 1.0 - (px - x0))
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            yi, xi = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
            a += np.where(inside, wt * xv[yi, xi], 0.0)
            b += np.where(inside, wt * vf[yi, xi], 0.0)
    ok = (b >= min_valid) & ahead
    return np.where(ok, a / np.maximum(b, 1e-6), 0.0), ok.astype(np.float64)


def map_back(values: np.ndarray, cy: np.ndarray, cx: np.ndarray, gy: float, gx: float, h: int, w: int
             ) -> np.ndarray:
    """``rectify.map_to_image_grid``: the rectified map read at the rectified places of the image's window
    centres, bilinear over the measured ones of the four surrounding windows (NaN off the map or where their
    weight is ≤ 0.25)."""
    gh, gw = values.shape
    out = np.full((gh, gw), np.nan)
    sy = cy[1] - cy[0] if gh > 1 else 1.0
    sx = cx[1] - cx[0] if gw > 1 else 1.0
    for i in range(gh):
        for j in range(gw):
            yc, xc = cy[i] - h / 2.0, cx[j] - w / 2.0
            den = 1.0 + gy * yc + gx * xc
            if not den > 0.05:
                continue
            fy, fx = (yc / den + h / 2.0 - cy[0]) / sy, (xc / den + w / 2.0 - cx[0]) / sx
            if not (-0.5 <= fy <= gh - 0.5 and -0.5 <= fx <= gw - 0.5):
                continue
            fy, fx = min(max(fy, 0.0), gh - 1.0), min(max(fx, 0.0), gw - 1.0)
            y0, x0 = min(math.floor(fy), max(gh - 2, 0)), min(math.floor(fx), max(gw - 2, 0))
            wy, wx = fy - y0, fx - x0
            acc = wsum = 0.0
            for dy in (0, 1):
                for dx in (0, 1):
                    v = values[min(y0 + dy, gh - 1), min(x0 + dx, gw - 1)]
                    wt = (wy if dy else 1.0 - wy) * (wx if dx else 1.0 - wx)
                    if math.isfinite(v) and wt > 1e-6:
                        acc += v * wt
                        wsum += wt
            if wsum > 0.25:
                out[i, j] = acc / max(wsum, 1e-9)
    return out


def _map_centres(hh: int, ww: int, k: int, st: int, ds: int) -> tuple[np.ndarray, np.ndarray]:
    """The window centres (original px) of a map of ``k``-windows at stride ``st`` on a ``hh×ww`` frame
    downsampled by ``ds`` (the frame's side when it is shorter than ``k``)."""
    if hh < k or ww < k:
        k = min(hh, ww)
        st = max(1, k // 3)
    gh, gw = (hh - k) // st + 1, (ww - k) // st + 1
    return (np.arange(gh) * st + k / 2.0) * ds, (np.arange(gw) * st + k / 2.0) * ds


def rectified_region_keys(x: np.ndarray, vf: np.ndarray, gy: float, gx: float, t1: np.ndarray,
                          t2: np.ndarray) -> dict[str, float]:
    """``rectified.rectified_region_keys``: the doubled-zone map and the pair test (no perspective trend)
    on the wall rectified by the tilt, their window maps read back at the image's window centres."""
    h, w = x.shape
    xr, vr = rectify_image(x, vf, gy, gx)
    win, stride, ds = local_geometry(h, w)
    hh, ww = h // ds, w // ds
    margin, plain = doubling_margins(xr, vr, window_px=win, stride_px=stride, ds=ds, trend_x=0.0, trend_y=0.0)
    cy, cx = _map_centres(hh, ww, win // ds, max(1, stride // ds), ds)
    out = region_keys("doubling", region_extent(map_back(margin, cy, cx, gy, gx, h, w), excess=0.08), plain)
    edges = edge_image(xr, vr, t1, t2, length=max(3, win // 4))
    # (no trend on the rectified wall: the flat-scale pair map, 4v and the lower levels, its largest
    # hypothesis per window)
    hyps, pp = pair_hypotheses([edges] * 4, vr, [t1, t2, t1 + t2, t1 - t2], window_px=win // 2,
                               stride_px=stride // 2, ds=ds)
    with np.errstate(invalid="ignore"):
        pm = np.nanmax(np.where(np.isfinite(hyps), hyps, -np.inf), axis=0)
    pm = np.where(np.isfinite(pm), pm, np.nan)
    cy, cx = _map_centres(hh, ww, max(2, (win // 2) // ds), max(1, (stride // 2) // ds), ds)
    if not RECT_PAIR_FRONTO:
        out.update(region_keys("pair", region_extent(map_back(pm, cy, cx, gy, gx, h, w), excess=1.5), pp))
        return out
    # (tenth sitting, RECT_PAIR_FRONTO) the region's size and reach from the fronto-parallel reading:
    # directional edges per vector, each hypothesis' map read back, then its own reach; the plain
    # correlation stays the gradient reading's (the self-check's)
    vecs = [t1, t2, t1 + t2, t1 - t2]
    fh, _ = pair_hypotheses(directional_edges(xr, vr, t1, t2, vecs, length=max(3, win // 4)), vr, vecs,
                            window_px=win // 2, stride_px=stride // 2, ds=ds)
    back = [map_back(m, cy, cx, gy, gx, h, w) for m in fh]
    out.update(region_keys("pair", hypotheses_extent(back, excess=1.5), pp))
    return out


def lattice_summary(x: np.ndarray, valid: np.ndarray, finite: np.ndarray, lat: dict[str, Any],
                    crop: dict[str, Any], masked: bool) -> dict[str, float]:
    """Every key ``tiling_metrics`` adds to the seed's from the lattice on: the lattice keys, the aliasing
    fold keys, the edge strips, the local lattice map's band and zone keys, the map's trend, the doubled-zone
    map, the window, centroid and thirds scale trends, the centre's period, the strip novelty and the pair
    test and, with a mask, the mask seam (``lat``: :func:`lattice_periodicity` of the frame, ``crop``: of its
    central half, :func:`centre_crop_lattice`)."""
    h, w = x.shape
    s = lat["s"]
    vf = valid.astype(np.float64)
    f, g = lat["f"], lat["g"]
    gl = s / lat["radius"]
    out: dict[str, float] = {}
    out.update(lattice_keys(f, g, s, lat["prominence"]))
    lat_ok = bool(lat["found"] and lat["radius"] <= s / 6.0)
    p = np.abs(np.fft.rfft2(lat["sig"], s=(s, s))) ** 2
    out["alias_fine_peak_frac"], out["alias_fold_peak_frac"] = fine_peak_fracs(p, f, g, lat_ok)
    out["alias_own_fold_frac"] = (fine_peak_fracs(p, f, g, lat_ok, own_lattice=True)[1] if lat_ok
                                  else float("nan"))
    out["alias_win_fine_frac"], out["alias_win_fold_frac"] = window_fold_fracs(x, vf, f, g, lat_ok, s)
    out.update(edge_scores(x, finite.astype(np.float64)))
    if not masked:
        out.update(dict.fromkeys(("mask_seam_score", "mask_seam_t", "mask_seam_agree"), math.nan))
    lm = local_lattice_map(x, valid if masked else None)
    out.update(band_keys(lm))
    ty, tx = map_trend(lm, h, w)
    out["local_period_trend_y"], out["local_period_trend_x"] = ty, tx
    win, stride, ds = local_geometry(h, w)
    margin, plain = doubling_margins(x, vf, window_px=win, stride_px=stride, ds=ds, trend_x=tx, trend_y=ty)
    out.update(region_keys("doubling", region_extent(margin, excess=0.08), plain))
    cen = centre_period(lm, ty, tx, h, w)
    sw = apodize(valid) if masked else vf
    wst = window_scale_trend(x, sw)
    out.update(wst)
    out.update(window_scale_trend(x, sw, square=True, step_octaves=PERSP_STEP_OCTAVES,
                                  step_margin=PERSP_STEP_MARGIN, prefix="persp_sq"))
    if lat["score"] < 0.3:  # read by the rule on aperiodic walls only (NaN elsewhere, as tiling_metrics)
        out.update(centroid_scale_trend(x, sw))
    else:
        out.update(centroid_trend_x=math.nan, centroid_trend_y=math.nan, aniso_trend_x=math.nan,
                   aniso_trend_y=math.nan)
    wt = np.fmax(abs(wst["persp_trend_x"]), abs(wst["persp_trend_y"]))
    persp = (wt >= PERSPECTIVE_TREND) if math.isfinite(wt) else \
        bool(np.fmax(abs(ty), abs(tx)) >= PERSPECTIVE_TREND)
    rc = np.fmax(gl, cen) / np.fmin(gl, cen)
    use_c = persp and math.isfinite(rc) and (rc <= 1.0 + CENTRE_AGREE or (rc >= CENTRE_MULTIPLE and cen < gl))
    use_c = use_c or (persp and math.isfinite(cen) and lat["score"] < CENTRE_CROP_SCORE)
    cc = crop["s"] / crop["radius"] if crop["found"] else math.nan
    ccs = crop["score"]
    # ... and of the central half of the wall rectified by its tilt (the checked candidate), where it scores
    # at least as well (tiling_summary._rectified_crop_period)
    rcc = rcs = math.nan
    xr = vr = None
    if persp:
        one_d_r = not np.isfinite(real_basis(f, g, s)[1]).all()
        (rgy, rgx), _other = wall_tilt(lm, h, w, wst["persp_trend_y"], wst["persp_trend_x"], one_d_r)
        if math.isfinite(rgy) and math.isfinite(rgx) and (rgy != 0.0 or rgx != 0.0):
            # (the tilt corrected once on the wall it rectifies: the rectified region maps' first candidate)
            rgy, rgx = refined_tilt(x, vf, rgy, rgx, wst["persp_trend_y"], wst["persp_trend_x"], one_d_r)
            xr, vr = rectify_image(x, vf, rgy, rgx)
            rcrop = centre_crop_lattice(xr, vr > 0.5, True)
            rcc = rcrop["s"] / rcrop["radius"] if rcrop["found"] else math.nan
            rcs = rcrop["score"]
    out["rect_crop_period_px"], out["rect_crop_periodicity_score"] = rcc, rcs
    use_r = math.isfinite(rcc) and rcs >= ccs and rcs >= CENTRE_CROP_SCORE

    def centre_of(cc: float, ccs: float, halve: bool = False) -> float:
        q = cc / cen
        zone = math.isfinite(q) and CENTRE_ZONE[0] <= q <= CENTRE_ZONE[1]
        crop_ok = math.isfinite(cc) and cc >= 2.0 * 3.0 and ccs >= CENTRE_CROP_SCORE
        zc = 0.5 * cc if halve and 1.0 - CENTRE_HALF <= 0.5 * q < 1.0 else cen  # the crop's half
        return (zc if zone else cc) if crop_ok else (cen if use_c else gl)

    centre_img = centre_of(cc, ccs)  # the pair test's centre correction: the image crop's, as calibrated
    if use_r:
        cc, ccs = rcc, rcs
    centre = centre_of(cc, ccs, halve=True)
    out["centre_period_px"], out["centre_crop_period_px"] = cen, cc
    out["frame_period_px"] = gl
    # a fronto-parallel frame lattice pulled to 2× by a zone or band (tiling._frame_doubled_period)
    near = lambda a, b: math.isfinite(a / b) and abs(a / b - 1.0) <= CENTRE_AGREE
    two = lambda r: math.isfinite(r) and FRAME_DOUBLE[0] <= r <= FRAME_DOUBLE[1]
    no_crop = not math.isfinite(cc) or ccs < CENTRE_CROP_SCORE
    front = (cc if near(cc, cen) and not no_crop else cen) if (
        two(gl / cen) and cen <= win / REF_MAP_CYCLES
        and (near(cc, gl) or near(cc, cen) or two(cc / cen) or no_crop)) else gl
    out["fundamental_period_px"] = centre if persp else front
    # ... unless most local windows read a divisor of it; of the centre's readings, the one they confirm
    trx = wst["persp_trend_x"] if math.isfinite(wst["persp_trend_x"]) else tx
    try_ = wst["persp_trend_y"] if math.isfinite(wst["persp_trend_y"]) else ty
    lw, lok, vside = window_readings(x, valid, trx, try_, masked)
    if use_r and xr is not None and vr is not None:  # the rectified wall's windows, no trend to undo
        lw, lok, _ = window_readings(xr, vr > 0.5, 0.0, 0.0, True)
    vote = window_vote_period(lw, lok, vside, out["fundamental_period_px"], cc, ccs,
                              lattice_t1=out["lattice_t1_px"])
    out["window_vote_period_px"] = vote
    fp = out["fundamental_period_px"]
    confirmed = window_confirmed(lw, lok, fp, [fp, cc, cen, gl])
    if math.isfinite(confirmed):
        out["fundamental_period_px"] = confirmed
    if math.isfinite(vote):
        out["fundamental_period_px"] = vote
    # the windows' base lattice (tiling_summary._rectified_base): exact on a rectified or fronto-parallel wall
    fp = out["fundamental_period_px"]
    rb = rectified_base(lw, lok, vside, fp, [fp, cc, cen, gl], lattice_t1=out["lattice_t1_px"],
                        exact=use_r or not persp, fine_rows=use_r)
    if math.isfinite(rb):
        out["fundamental_period_px"] = rb
    out["fundamental_radius_bin"] = s / out["fundamental_period_px"]
    if masked:  # the reference band one row spacing deeper on a periodic wall: the reported period
        conf = max(lat["score"], crop["score"]) >= 0.3
        out.update(mask_seam(x, vf, out["fundamental_period_px"] if conf else math.nan))
    out.update(strip_band_keys(x, sw, gl))
    t1, t2 = real_basis(f, g, s)
    cs = (centre_img if persp else gl) / gl  # the pair test: the angled wall's centre correction only
    cs = 1.0 if not math.isfinite(cs) else cs
    t1, t2 = t1 * cs, t2 * cs
    vecs = [t1, t2, t1 + t2, t1 - t2]
    if (trx if math.isfinite(trx) else 0.0) == 0.0 and (try_ if math.isfinite(try_) else 0.0) == 0.0:
        # no perspective trend (eighth sitting): directional edges, 4v, lower levels, per-hypothesis reach
        hyps, pp = pair_hypotheses(directional_edges(x, vf, t1, t2, vecs, length=max(3, win // 4)), vf, vecs,
                                   window_px=win // 2, stride_px=stride // 2, ds=ds)
        out.update(region_keys("pair", hypotheses_extent(hyps, excess=1.5), pp))
    else:
        edges = edge_image(x, vf, t1, t2, length=max(3, win // 4))
        pm, pp = pair_margins(edges, vf, vecs, window_px=win // 2, stride_px=stride // 2,
                              ds=ds, trend_x=trx, trend_y=try_)
        out.update(region_keys("pair", region_extent(pm, excess=1.5), pp))
    # the region maps need room: MIN_REGION_PERIODS of the shortest lattice vector across, and a lattice
    room = min(h, w) / out["lattice_t1_px"] >= MIN_REGION_PERIODS
    # a wall seen at an angle: both maps again on the wall rectified by its tilt, each kept where its plain
    # correlation is no lower than the image's
    out.update(rect_doubling=0.0, rect_pair=0.0, rect_tilt_x=math.nan, rect_tilt_y=math.nan)
    if persp and room:
        one_d = not np.isfinite(t2).all()
        (gy, gx), other = wall_tilt(lm, h, w, wst["persp_trend_y"], wst["persp_trend_x"], one_d)
        if math.isfinite(gy) and math.isfinite(gx) and (gy != 0.0 or gx != 0.0):
            # each candidate corrected once on the wall it rectifies; a second one brought within
            # RECT_ALT_DIFF of the first is dropped
            gy, gx = refined_tilt(x, vf, gy, gx, wst["persp_trend_y"], wst["persp_trend_x"], one_d)
            if other is not None:
                other = refined_tilt(x, vf, other[0], other[1], wst["persp_trend_y"], wst["persp_trend_x"],
                                     one_d)
                if abs(other[0] - gy) * h <= RECT_ALT_DIFF and abs(other[1] - gx) * w <= RECT_ALT_DIFF:
                    other = None
            new = rectified_region_keys(x, vf, gy, gx, t1, t2)
            if other is not None:
                # the candidate under which the rectified windows repeat the lattice better
                alt = rectified_region_keys(x, vf, other[0], other[1], t1, t2)

                def corr(k: dict[str, float]) -> float:
                    c = k["pair_plain_corr"]
                    c = c if math.isfinite(c) else k["doubling_plain_corr"]
                    return c if math.isfinite(c) else -math.inf

                if corr(alt) > corr(new):
                    new, (gy, gx) = alt, other
            for pre in ("doubling", "pair"):
                pc = new[f"{pre}_plain_corr"]
                if math.isfinite(pc) and not pc < out[f"{pre}_plain_corr"] - RECT_CORR_TOL:
                    out.update({k: v for k, v in new.items() if k.startswith(pre + "_")})
                    out[f"rect_{pre}"] = 1.0
            out["rect_tilt_y"], out["rect_tilt_x"] = gy * h, gx * w
    if not room:
        out.update({k: math.nan for k in out if k.startswith(("doubling_", "pair_"))})
    # the tiering (tiling_summary._screened_region_keys): no region map of a lattice too fine to double, no
    # doubling map on a wall with hardly a lattice; "not measured" (NaN)
    fine = bool(np.fmax(out["lattice_t1_px"], out["lattice_t2_px"]) < STRIP_MIN_LATTICE_PX)
    weak = bool(max(lat["score"], crop["score"]) < WEAK_SCORE)  # periodicity_score
    screened = {"doubling": room and (fine or weak), "pair": room and fine}
    for pre, sc in screened.items():
        if sc:
            out.update({k: math.nan for k in out if k.startswith(pre + "_")}, **{f"rect_{pre}": math.nan})
    if screened["pair"]:
        out.update(rect_tilt_x=math.nan, rect_tilt_y=math.nan)
    out["region_screened"] = float(any(screened.values()))
    out.update(thirds_scale_trend(x, sw))
    return out
