"""Defects judged against the texture's own local statistics (pixel diagnostics inside an intended edit).

A re-textured wall differs from the old wall everywhere, so the pixel difference cannot show a defect in it.
Here the output is compared with *itself*: a periodic texture predicts each pixel from the same pixel one and
two lattice steps away. Steps (``signal``: ``B×H×W``, ``region``: ``B×H×W`` bool):

1. :func:`lattice_vectors`: the two shortest independent strong peaks of the region's autocorrelation
   (lags from ``min_lag`` px): the texture's lattice (for a brick wall, the brick and the course);
2. :func:`lattice_residual`: ``signal - median(signal(x ± t1), signal(x ± t2), signal(x ± 2 t1), …)``: what
   the lattice does not explain (the median of the translates ignores a defect that covers some of them);
3. :func:`texture_anomalies`: the local RMS of that residual over ``window`` px against its median over the
   region (the texture's own local level): a defect box (an offset or misplaced patch, a smear) stands out
   as a compact component; a band of rows or columns offset by an amplitude as an elongated one, found
   separately by :func:`band_profile` (row or column means of the residual against their robust spread).

For an unedited pair the signal is the difference to the (aligned) input, and the same steps judge it.
The lattice step is what the tiling analyzer's lattice estimator measures on images; the two could share it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["lattice_vectors", "lattice_residual", "local_rms", "band_profile"]


def lattice_vectors(signal: torch.Tensor, region: torch.Tensor, *, min_lag: int = 6, max_lag: int = 64
                    ) -> torch.Tensor:
    """``B×2×2`` integer lattice vectors ``(dy, dx)`` from the region's normalised autocorrelation."""
    b, h, w = signal.shape
    m = region.float()
    mean = (signal * m).sum(dim=(1, 2), keepdim=True) / m.sum(dim=(1, 2), keepdim=True).clamp_min(1)
    x = (signal - mean) * m
    sh, sw = 2 * h, 2 * w
    fx = torch.fft.rfft2(x, s=(sh, sw))
    fm = torch.fft.rfft2(m, s=(sh, sw))
    acf = torch.fft.irfft2(fx.abs() ** 2, s=(sh, sw))
    cnt = torch.fft.irfft2(fm.abs() ** 2, s=(sh, sw)).clamp_min(1.0)
    acf = acf / cnt
    acf = acf / acf[:, :1, :1].clamp_min(1e-12)
    lag_y = torch.fft.fftfreq(sh, d=1.0 / sh).round()[:, None].expand(sh, sw)
    lag_x = torch.fft.fftfreq(sw, d=1.0 / sw).round()[None, :].expand(sh, sw)
    r = torch.sqrt(lag_y ** 2 + lag_x ** 2)
    ok = (r >= min_lag) & (r <= max_lag) & ((lag_y > 0) | ((lag_y == 0) & (lag_x > 0)))
    ok = ok & (cnt >= 0.25 * cnt[:, :1, :1].min())
    local = acf >= F.max_pool2d(F.pad(acf[:, None], (1, 1, 1, 1), mode="circular"), 3, stride=1)[:, 0]
    out = torch.zeros(b, 2, 2)
    for i in range(b):
        cand = ok[i] & local[i]
        vals = torch.where(cand, acf[i], torch.full_like(acf[i], -math.inf)).flatten()
        order = torch.argsort(vals, descending=True)[:40]
        picks: list[tuple[float, float]] = []
        for j in order.tolist():
            if not math.isfinite(float(vals[j])):
                break
            v = (float(lag_y.flatten()[j]), float(lag_x.flatten()[j]))
            if not picks:
                picks.append(v)
                continue
            a = picks[0]
            cross = abs(a[0] * v[1] - a[1] * v[0]) / (math.hypot(*a) * math.hypot(*v))
            if cross > math.sin(math.radians(25)):
                picks.append(v)
                break
        while len(picks) < 2:
            picks.append(picks[0] if picks else (0.0, float(min_lag)))
        out[i] = torch.tensor(picks)
    return out


def lattice_residual(signal: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``B×H×W``: ``signal`` minus the median of its lattice translates (±1 and ±2 steps of both vectors)
    that fall inside ``region`` (NaN outside the region or where no translate does)."""
    b, h, w = signal.shape
    out = torch.full_like(signal, float("nan"))
    for i in range(b):
        shifts = []
        for v in vectors[i]:
            for k in (1, -1, 2, -2):
                dy, dx = int(round(k * float(v[0]))), int(round(k * float(v[1])))
                moved = torch.roll(signal[i], (dy, dx), dims=(0, 1))
                inside = torch.roll(region[i], (dy, dx), dims=(0, 1))
                ys = torch.arange(h)[:, None] - dy
                xs = torch.arange(w)[None, :] - dx
                inside = inside & (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
                shifts.append(torch.where(inside, moved, torch.full_like(moved, float("nan"))))
        pred = torch.stack(shifts).nanmedian(dim=0).values
        out[i] = torch.where(region[i], signal[i] - pred, torch.full_like(pred, float("nan")))
    return out


def local_rms(res: torch.Tensor, *, window: int = 9) -> torch.Tensor:
    """``B×H×W`` local RMS of ``res`` over ``window`` px (NaN ignored; NaN where the window has none)."""
    ok = torch.isfinite(res).float()
    sq = torch.nan_to_num(res) ** 2
    k = int(window)
    s = F.avg_pool2d(F.pad(sq[:, None], (k // 2,) * 4), k, stride=1)[:, 0]
    c = F.avg_pool2d(F.pad(ok[:, None], (k // 2,) * 4), k, stride=1)[:, 0]
    return torch.where(c > 0.3, (s / c.clamp_min(1e-6)).sqrt(), torch.full_like(s, float("nan")))


def band_profile(res: torch.Tensor, region: torch.Tensor, *, axis: str) -> torch.Tensor:
    """``B×L``: robust z of the mean residual of each row (``axis="rows"``) or column of the region
    (NaN where the line has fewer than 16 region pixels). ``z = (m - median) / (1.4826 · MAD)`` over lines."""
    dim = 2 if axis == "rows" else 1
    ok = region & torch.isfinite(res)
    n = ok.sum(dim=dim).float()
    mean = torch.where(ok, res, torch.zeros_like(res)).sum(dim=dim) / n.clamp_min(1)
    mean = torch.where(n >= 16, mean, torch.full_like(mean, float("nan")))
    med = mean.nanmedian(dim=1, keepdim=True).values
    mad = (mean - med).abs().nanmedian(dim=1, keepdim=True).values
    return (mean - med) / (1.4826 * mad).clamp_min(1e-6)
