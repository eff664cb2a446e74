"""The dominant-period estimate in numpy (no torch): :func:`trackdiag.functional.spectral.dominant_period`,
step for step, for the dataset scan's workers.

A scan's worker processes only need the period of each image; importing torch for it cost every scan about
1.5 s of CPU (the forkserver's import, and each worker's first calls), a fifth of a 500-image scan. This is
the same estimator written with numpy and ``scipy.fft`` (single-threaded, float32 like the torch version):
detrend and window (:func:`prepare`), the half-plane power spectrum on the square ``S = max(H, W)`` grid,
the strongest local maxima refined below one bin, the fundamental among them, the ACF along its direction
(Wiener–Khinchin on the projected power, window-corrected), the ACF octave check and the score
``sqrt(ρ) · clamp(log10(peak_ratio) − 1, 0, 1)``. Every step is defined in ``docs/tiling.md`` and in the
docstrings of :mod:`trackdiag.functional.spectral`; the two implementations are tested to agree
(``tests/dataset/test_dataset_period.py``), so a change to one must be made to both.

Arrays are ``N×H×W`` float32 (images) throughout; the spectra are ``N×S×(S//2+1)`` (rfft2 layout).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple, Optional

import numpy as np

__all__ = ["PeriodArrays", "dominant_period", "prepare"]

#: Sub-bins per frequency bin of the radial histograms (rings resolved to 1/4 bin), as in the torch version.
BINS_PER_BIN = 4
_TINY = np.finfo(np.float32).tiny


class PeriodArrays(NamedTuple):
    """Dominant period of each of N images, ``(N,)`` float arrays: ``period_px`` (``S / radius_bin``, NaN
    where no peak was found), ``radius_bin`` and ``score`` in [0, 1]."""

    period_px: np.ndarray
    radius_bin: np.ndarray
    score: np.ndarray


def _rfft2(x: np.ndarray, s: int) -> np.ndarray:
    import scipy.fft

    return scipy.fft.rfft2(x, s=(s, s), workers=1)


# ------------------------------------------------------------------------------------------------------
# Windows, masks and detrending
# ------------------------------------------------------------------------------------------------------
def _frozen(*arrays: np.ndarray) -> None:
    """Mark cached arrays read-only (they are shared by every call)."""
    for a in arrays:
        a.flags.writeable = False


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    w = np.ones(1, np.float32) if n == 1 else (
        0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(n) / (n - 1))).astype(np.float32)
    _frozen(w)
    return w


@lru_cache(maxsize=16)
def _hann2(h: int, w: int) -> np.ndarray:
    """The separable ``H×W`` Hann window."""
    out = _hann(h)[:, None] * _hann(w)[None, :]
    _frozen(out)
    return out


def _box_downsample(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over ``k×k`` blocks, ``N×H×W`` → ``N×⌈H/k⌉×⌈W/k⌉`` (blocks cut by the far edges average the
    pixels they hold)."""
    if k <= 1:
        return x
    n, h, w = x.shape
    if k == 2 and h % 2 == 0 and w % 2 == 0:  # the k² phases summed in place (as the torch version)
        out = x[:, 0::2, 0::2] + x[:, 1::2, 0::2]
        out += x[:, 0::2, 1::2]
        out += x[:, 1::2, 1::2]
        out *= np.float32(0.25)
        return out
    if h % k == 0 and w % k == 0:  # the k rows of each block, then k columns of that (as the torch version)
        blocks = x.reshape(n, h // k, k, w)
        rows = blocks[:, :, 0].copy()
        for i in range(1, k):
            rows += blocks[:, :, i]
        out = rows[..., 0::k].copy()
        for j in range(1, k):
            out += rows[..., j::k]
        out *= np.float32(1.0 / (k * k))
        return out
    hh, ww = -(-h // k), -(-w // k)
    pad = np.zeros((n, hh * k, ww * k), np.float32)
    pad[:, :h, :w] = x
    total = pad.reshape(n, hh, k, ww, k).sum(axis=(2, 4), dtype=np.float32)
    ry = np.minimum(k, h - np.arange(hh) * k).astype(np.float32)
    rx = np.minimum(k, w - np.arange(ww) * k).astype(np.float32)
    return total / (ry[:, None] * rx[None, :])


def _cumsum_rows(a: np.ndarray) -> np.ndarray:
    """``cumsum`` along axis 1 of ``N×H×W`` float32, as a contiguous copy: the same additions in the same
    order as ``numpy.cumsum``, but each step adds whole rows (``numpy.cumsum`` along the last axis runs one
    element at a time: several times slower)."""
    c = np.array(a, np.float32, order="C")
    for i in range(1, c.shape[1]):
        c[:, i] += c[:, i - 1]
    return c


def _box_mean(v: np.ndarray, k: int) -> np.ndarray:
    """Mean over a ``k×k`` box (``k`` odd) by cumulative sums; outside the frame counts as 1 (valid)."""
    r = k // 2
    n, h, w = v.shape
    p = np.ones((n, h + k, w + k), np.float32)
    p[:, r + 1: r + 1 + h, r + 1: r + 1 + w] = v
    p[:, :1, :] = 0.0
    p[:, :, :1] = 0.0
    c = _cumsum_rows(_cumsum_rows(np.ascontiguousarray(p.transpose(0, 2, 1))).transpose(0, 2, 1))
    total = c[:, k:k + h, k:k + w] - c[:, :h, k:k + w]
    total -= c[:, k:k + h, :w]
    total += c[:, :h, :w]
    total /= np.float32(k * k)
    return total


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a linear resize along one axis (``align_corners=False``)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32)
    return i0, i1, lam


def _upsample2(x: np.ndarray, axis: int) -> np.ndarray:
    """Linear 2× upsampling along ``axis`` (1 or 2 of ``N×H×W``, ``align_corners=False``): output ``2m`` is
    ``¾·x[m] + ¼·x[m−1]``, ``2m+1`` is ``¾·x[m] + ¼·x[m+1]`` (the ends repeat the edge): both halves as
    contiguous arrays, then interleaved once."""
    n = x.shape[axis]
    q, t = np.float32(0.25), np.float32(0.75)
    prev = np.take(x, np.maximum(np.arange(n) - 1, 0), axis=axis)
    nxt = np.take(x, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
    prev *= q
    nxt *= q
    even = np.multiply(x, t)
    even += prev
    odd = np.multiply(x, t, out=prev)
    odd += nxt
    shape = list(x.shape)
    shape[axis] *= 2
    return np.stack([even, odd], axis=axis + 1).reshape(shape)


def _resize_bilinear(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """``N×h0×w0`` → ``N×h×w``, bilinear, ``align_corners=False`` (as ``F.interpolate``)."""
    if (h, w) == (2 * x.shape[1], 2 * x.shape[2]):
        return _upsample2(_upsample2(x, 1), 2)
    y0, y1, ly = _bilinear_axis(x.shape[1], h)
    x0, x1, lx = _bilinear_axis(x.shape[2], w)
    rows = x[:, y0] * (1 - ly)[:, None] + x[:, y1] * ly[:, None]
    cols = np.ascontiguousarray(rows.transpose(0, 2, 1))  # columns gathered as rows (contiguous copies)
    out = cols[:, x0] * (1 - lx)[:, None] + cols[:, x1] * lx[:, None]
    return np.ascontiguousarray(out.transpose(0, 2, 1))


def _apodized_weights(v: np.ndarray) -> np.ndarray:
    """``N×H×W`` bool (or 0/1 float32) → soft weights (float32), 1 inside, falling smoothly to 0 at every
    mask edge (:func:`trackdiag.functional.spectral.apodized_weights` with its default taper)."""
    h, w = v.shape[-2:]
    t_px = max(1, int(max(3, round(0.03 * min(h, w)))))
    ds = max(1, min(t_px // 3, h, w))
    if ds == 2 and v.dtype == bool and h % 2 == 0 and w % 2 == 0:
        # 2×2 block means of a 0/1 mask are quarters: counted in uint8 and scaled, the same float32 values
        # as averaging the float mask (exact either way), without the float copy.
        v8 = v.view(np.uint8)
        rows = np.add(v8[:, 0::2], v8[:, 1::2])
        counts = np.add(rows[..., 0::2], rows[..., 1::2])
        quarters = np.multiply(counts, np.float32(0.25), dtype=np.float32)
        frac = _box_mean(quarters, 2 * max(1, round(t_px / 2)) + 1)
        frac = _resize_bilinear(frac, h, w)
    elif ds > 1:
        v = np.asarray(v, np.float32)
        frac = _box_mean(_box_downsample(v, ds), 2 * max(1, round(t_px / ds)) + 1)
        frac = _resize_bilinear(frac, h, w)
    else:
        v = np.asarray(v, np.float32)
        frac = _box_mean(v, 2 * t_px + 1)
    t = np.subtract(frac, np.float32(0.5), out=frac)
    t *= np.float32(2.0)
    np.maximum(t, np.float32(0.0), out=t)
    np.minimum(t, np.float32(1.0), out=t)
    # The raised cosine only where it is neither 0 nor 1 (the taper band along the mask's edges).
    band = t > 0
    band &= t < 1
    tb = t[band]
    t[band] = np.float32(0.5) - np.float32(0.5) * np.cos(np.float32(math.pi) * tb)
    t *= v
    return t


@lru_cache(maxsize=32)
def _powers(n: int, k: int) -> np.ndarray:
    t = np.linspace(-1.0, 1.0, n, dtype=np.float32) if n > 1 else np.zeros(1, np.float32)
    out = np.stack([t ** p for p in range(k + 1)], axis=1).astype(np.float32)
    _frozen(out)
    return out


def _detrend(x: np.ndarray, weights: np.ndarray, shared: bool, *, order: int = 2) -> np.ndarray:
    """Remove the weighted least-squares polynomial surface of degree ``order`` from ``x`` (``N×H×W``);
    ``shared``: ``weights`` is one ``1×H×W`` window for every image."""
    n, h, w = x.shape
    py, px = _powers(h, 2 * order), _powers(w, 2 * order)
    w0 = weights[:1] if shared else weights
    mw = py.T @ (w0.reshape(-1, w) @ px).reshape(w0.shape[0], h, -1)
    if shared:
        mw = np.broadcast_to(mw, (n, *mw.shape[1:]))
    wx = (weights * x).reshape(n * h, w) @ px[:, : order + 1]
    mx = py[:, : order + 1].T @ wx.reshape(n, h, -1)
    ex = [(a, d - a) for d in range(order + 1) for a in range(d, -1, -1)]
    ay = np.asarray([e[0] for e in ex])
    ax = np.asarray([e[1] for e in ex])
    a = mw[:, ay[:, None] + ay[None, :], ax[:, None] + ax[None, :]].astype(np.float64)
    b = mx[:, ay, ax].astype(np.float64)[..., None]
    ridge = 1e-9 * np.maximum(np.diagonal(a, axis1=1, axis2=2).mean(-1), 1e-30)[:, None, None] + 1e-30
    coef = np.linalg.solve(a + ridge * np.eye(len(ex)), b)[..., 0].astype(np.float32)
    grid = np.zeros((n, order + 1, order + 1), np.float32)
    grid[:, ay, ax] = coef
    return x - py[:, : order + 1] @ grid @ px[:, : order + 1].T


def prepare(x: np.ndarray, valid: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Detrended, windowed signal and its weights (both ``N×H×W``), as the torch ``prepare`` with its
    defaults: non-finite pixels are invalid; the weights are the Hann window times the apodized ``valid``
    (``N×H×W`` bool or 0/1) when given, else the Hann window (times the finite pixels)."""
    x = np.asarray(x, np.float32)
    finite = np.isfinite(x)
    all_finite = bool(finite.all())
    hann = _hann2(x.shape[-2], x.shape[-1])
    if valid is None:
        if all_finite:
            wts = np.broadcast_to(hann, x.shape)
            return _detrend(x, hann[None], True) * wts, wts
        v = finite.astype(np.float32)
        x0 = np.where(finite, x, np.float32(0.0))
        wts = hann * v
    else:
        vb = np.asarray(valid, bool) & finite
        x0 = x if all_finite else np.where(vb, x, np.float32(0.0))
        wts = _apodized_weights(vb)
        wts *= hann
    sig = _detrend(x0, wts, False)
    sig *= wts
    return sig, wts


# ------------------------------------------------------------------------------------------------------
# Spectra on the square S×S grid
# ------------------------------------------------------------------------------------------------------
class _Spectrum(NamedTuple):
    power: np.ndarray  # N×S×(S//2+1)
    ky: np.ndarray  # S×(S//2+1), bins
    kx: np.ndarray
    radius: np.ndarray
    weight: np.ndarray  # 2 for columns that stand for two Hermitian twins, else 1

    @property
    def side(self) -> int:
        return int(self.power.shape[-2])


@lru_cache(maxsize=16)
def _grids(s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``ky``, ``kx``, radius and Hermitian weight of the ``S×(S//2+1)`` half-plane (cached, read-only)."""
    ky = np.broadcast_to((np.fft.fftfreq(s, d=1.0 / s).astype(np.float32))[:, None], (s, s // 2 + 1))
    kx = np.broadcast_to((np.fft.rfftfreq(s, d=1.0 / s).astype(np.float32))[None, :], (s, s // 2 + 1))
    wt = np.full((s, s // 2 + 1), 2.0, np.float32)
    wt[:, 0] = 1.0
    if s % 2 == 0:
        wt[:, -1] = 1.0
    radius = np.sqrt(ky * ky + kx * kx)
    _frozen(wt, radius)
    return ky, kx, radius, wt


def _spectrum(signal: np.ndarray, s: int) -> _Spectrum:
    f = _rfft2(signal, s)
    power = np.multiply(f.real, f.real)
    power += np.multiply(f.imag, f.imag)
    ky, kx, radius, wt = _grids(s)
    return _Spectrum(power, ky, kx, radius, wt)


@lru_cache(maxsize=16)
def _radial_index(s: int) -> tuple[np.ndarray, int]:
    nb = math.ceil(s * 0.7072 * BINS_PER_BIN) + 1
    r = _grids(s)[2]
    idx = np.minimum(np.floor(r * np.float32(BINS_PER_BIN)).astype(np.int64), nb - 1).reshape(-1)
    _frozen(idx)
    return idx, nb


@lru_cache(maxsize=16)
def _radial_rows(s: int, n: int) -> tuple[np.ndarray, int]:
    """:func:`_radial_index` of ``n`` images as one flat index into ``n × nb`` bins (cached)."""
    idx, nb = _radial_index(s)
    flat = (idx[None] + np.arange(n)[:, None] * nb).reshape(-1)
    _frozen(flat)
    return flat, nb


def _scatter_rows(idx: np.ndarray, values: np.ndarray, nb: int, *, flat: bool = False) -> np.ndarray:
    """Row-wise ``scatter_add``: ``values`` ``N×M`` summed into ``N×nb`` bins ``idx`` (``M`` or ``N×M``;
    ``flat``: ``idx`` already holds ``row · nb + bin`` for every value, ``N·M``)."""
    n = values.shape[0]
    if not flat:
        idx = (np.broadcast_to(idx, values.shape) + np.arange(n)[:, None] * nb).reshape(-1)
    return np.bincount(idx, weights=values.reshape(-1), minlength=n * nb).reshape(n, nb).astype(np.float32)


def _ring_sum(hist: np.ndarray, center: np.ndarray, half_width: float) -> np.ndarray:
    nb = hist.shape[-1]
    rho = (np.arange(nb, dtype=np.float32) + np.float32(0.5)) / np.float32(BINS_PER_BIN)
    with np.errstate(invalid="ignore"):
        sel = np.abs(rho[None] - center[:, None]) <= half_width
    return (hist * sel).sum(axis=-1, dtype=np.float32)


def _ring_background(log_hist: np.ndarray, counts: np.ndarray, center: np.ndarray,
                     half_width: float = 1.0) -> np.ndarray:
    num = _ring_sum(log_hist, center, half_width)
    den = _ring_sum(np.broadcast_to(counts, log_hist.shape), center, half_width)
    return np.exp(num / np.maximum(den, np.float32(1.0)))


def _noise_floor(log_hist: np.ndarray, counts: np.ndarray, s: int) -> np.ndarray:
    c = np.full(log_hist.shape[0], 0.425 * s, np.float32)
    return np.float32(math.exp(0.5772156649)) * _ring_background(log_hist, counts, c, 0.075 * s)


# ------------------------------------------------------------------------------------------------------
# Spectral peaks
# ------------------------------------------------------------------------------------------------------
class _Peaks(NamedTuple):
    power: np.ndarray  # N×K, strongest first
    ky: np.ndarray
    kx: np.ndarray
    radius: np.ndarray
    valid: np.ndarray
    iy: np.ndarray
    ix: np.ndarray


def _mirror(iy: np.ndarray, ix: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    ixm = ix % s
    twin = ixm > s // 2
    return np.where(twin, (-iy) % s, iy % s), np.where(twin, s - ixm, ixm)


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of each row, largest first (ties: the first one), and their indices."""
    n, m = values.shape
    if 4 * k < m and bool(np.isfinite(values).all()):
        # Only the candidates at or above each row's k-th largest value are sorted.
        kth = -np.partition(-values, k - 1, axis=1)[:, k - 1:k]
        rows, cols = np.nonzero(values >= kth)
        # Row, then value descending, then index: what a stable sort of each row would give.
        order = np.lexsort((cols, -values[rows, cols], rows))
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(n))
        j = cols[first[:, None] + np.arange(k)[None, :]]
    else:
        j = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(values, j, axis=1), j


@lru_cache(maxsize=16)
def _peak_frame(s: int, c: int, r_min: float, r_max: float, reach: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where :func:`_find_peaks` reads the half-plane spectrum (cached per size and band): the flat storage
    index of every bin of the frame (the crop around the band, ``reach`` bins more on each side, Hermitian
    twins mirrored), the crop's ``ky`` and ``kx`` bins, and the crop's bins within the band."""
    rr = min(s // 2, math.ceil(float(r_max)))
    y0, y1 = -min(rr, (s - 1) // 2), min(rr, s // 2)
    ky = np.arange(y0 - reach, y1 + reach + 1)
    kx = np.arange(-reach, min(rr, c - 1) + reach + 1)
    gy, gx = _mirror(np.broadcast_to(ky[:, None], (ky.size, kx.size)),
                     np.broadcast_to(kx[None, :], (ky.size, kx.size)), s)
    cy, cx = ky[reach: ky.size - reach], kx[reach: kx.size - reach]
    crop_r = np.sqrt((cy[:, None] ** 2 + cx[None, :] ** 2).astype(np.float32))
    band = (crop_r >= np.float32(r_min)) & (crop_r <= np.float32(r_max))
    gather = (gy * c + gx).reshape(-1)
    _frozen(gather, cy, cx, band)
    return gather, cy, cx, band


def _find_peaks(spec: _Spectrum, r_min: float, r_max: float, *, k: int = 16, reach: int = 2) -> _Peaks:
    """Strongest ``k`` local maxima with ``r_min ≤ radius ≤ r_max`` (see the torch ``find_peaks``)."""
    power = spec.power
    n, s, c = power.shape
    gather, cy, cx, band = _peak_frame(s, c, float(r_min), float(r_max), reach)
    fh, fw = cy.size + 2 * reach, cx.size + 2 * reach
    framed = np.take(power.reshape(n, -1), gather, axis=1).reshape(n, fh, fw)
    crop = framed[:, reach: fh - reach, reach: fw - reach]
    inband = np.where(band[None], crop, np.float32(0.0))
    # Maxima of non-overlapping b×b blocks (blocks cut by the far edges hold fewer bins), first one on ties.
    b = reach + 1
    ch, cw = inband.shape[1:]
    bh, bw = -(-ch // b), -(-cw // b)
    padded = np.full((n, bh * b, bw * b), -np.inf, np.float32)
    padded[:, :ch, :cw] = inband
    blocks = padded.reshape(n, bh, b, bw, b).transpose(0, 1, 3, 2, 4).reshape(n, bh * bw, b * b)
    arg = blocks.argmax(axis=2)
    pooled = np.take_along_axis(blocks, arg[..., None], axis=2)[..., 0]
    by, bx = np.divmod(np.arange(bh * bw), bw)
    where = (by[None] * b + arg // b) * cw + bx[None] * b + arg % b  # flat index in the crop
    kk = min(4 * k, pooled.shape[1])
    cval, cpos = _top(pooled, kk)
    idx = np.take_along_axis(where, cpos, axis=1)
    row, col = idx // cw, idx % cw
    offs = np.arange(-reach, reach + 1)
    offs = (offs[:, None] * fw + offs[None, :]).reshape(-1)
    centre = (row + reach) * fw + col + reach
    neigh = np.take_along_axis(framed.reshape(n, -1), (centre[..., None] + offs).reshape(n, -1), axis=1)
    neigh = neigh.reshape(n, kk, -1).max(axis=-1)
    is_peak = (cval >= neigh) & (cval > 0)
    iy, ix = cy[row] % s, cx[col]
    score = np.where(is_peak, cval, np.float32(0.0))
    k = min(k, kk)
    top, j = _top(score, k)
    iy, ix = np.take_along_axis(iy, j, axis=1), np.take_along_axis(ix, j, axis=1)
    pky, pkx = _refine_peak(spec, iy, ix)
    return _Peaks(top, pky, pkx, np.sqrt(pky * pky + pkx * pkx), top > 0, iy, ix)


def _refine_peak(spec: _Spectrum, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-bin ``(ky, kx)`` of peaks at storage indices ``iy``, ``ix``: a 3-point parabola through the log
    power along each axis (Hermitian twins beyond the stored columns)."""
    n, s, c = spec.power.shape
    flat = spec.power.reshape(n, -1)

    def val(dy: int, dx: int) -> np.ndarray:
        y2, x2 = _mirror(iy + dy, ix + dx, s)
        return np.log(np.maximum(np.take_along_axis(flat, y2 * c + x2, axis=1), _TINY))

    lc = val(0, 0)

    def offset(lm: np.ndarray, lp: np.ndarray) -> np.ndarray:
        den = lm - 2 * lc + lp
        d = 0.5 * (lm - lp) / np.where(den < 0, den, np.float32(-1.0))
        return np.clip(np.where(den < 0, d, np.float32(0.0)), -0.5, 0.5)

    dy = offset(val(-1, 0), val(1, 0))
    dx = offset(val(0, -1), val(0, 1))
    return spec.ky.reshape(-1)[iy * c + ix] + dy, spec.kx.reshape(-1)[iy * c + ix] + dx


def _pick_fundamental(peaks: _Peaks, *, rel_power: float = 0.25, harmonic_tol: float = 0.04,
                      max_harmonic: int = 8) -> np.ndarray:
    m = peaks.radius[:, :1] / np.maximum(peaks.radius, np.float32(1e-6))
    mi = np.round(m)
    harmonic = (np.abs(m - mi) <= harmonic_tol * mi) & (mi >= 1) & (mi <= max_harmonic)
    ok = harmonic & (peaks.power >= rel_power * peaks.power[:, :1]) & peaks.valid
    ok[:, 0] = True
    return np.where(ok, peaks.radius, np.float32(np.inf)).argmin(axis=1)


def _fundamental_of(peaks: _Peaks, index: np.ndarray, *, rel_power: float = 0.25
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(radius, ky, kx, power, found)`` of ``peaks[index]``, the radius power-averaged with its twins."""
    def pick(t: np.ndarray) -> np.ndarray:
        return np.take_along_axis(t, index[:, None], axis=1)[:, 0]

    r0, ky0, kx0, p0 = pick(peaks.radius), pick(peaks.ky), pick(peaks.kx), pick(peaks.power)
    twin = np.abs(peaks.radius - r0[:, None]) <= np.float32(0.02) * r0[:, None]
    twin &= peaks.valid & (peaks.power >= rel_power * peaks.power[:, :1])
    wsum = (peaks.power * twin).sum(axis=1, dtype=np.float32)
    radius = (peaks.power * twin * peaks.radius).sum(axis=1, dtype=np.float32) / np.maximum(wsum, _TINY)
    found = peaks.valid[:, 0] & (wsum > 0)
    return np.where(found, radius, np.float32(np.nan)), ky0, kx0, p0, found


# ------------------------------------------------------------------------------------------------------
# Autocorrelation along f*'s direction (Wiener–Khinchin)
# ------------------------------------------------------------------------------------------------------
def _project(spec: _Spectrum, power: np.ndarray, direction: np.ndarray, bins_per_bin: int, nb: int
             ) -> np.ndarray:
    proj = np.abs(spec.ky[None] * (direction[:, 0, None, None] * np.float32(bins_per_bin))
                  + spec.kx[None] * (direction[:, 1, None, None] * np.float32(bins_per_bin)))
    n = power.shape[0]
    np.rint(proj, out=proj)
    np.minimum(proj, np.float32(nb - 1), out=proj)
    idx = proj.astype(np.int64).reshape(n, -1)
    idx += np.arange(n)[:, None] * nb
    return _scatter_rows(idx.reshape(-1), (power * spec.weight).reshape(n, -1), nb, flat=True)


def _cosine_sum(hist: np.ndarray, side: int, step: float, count: int, bins_per_bin: int) -> np.ndarray:
    """``Σ_b hist_b · cos(2π f_b t)`` at the lags ``t = 0, step, …`` by one real inverse FFT."""
    import scipy.fft

    n, nb = hist.shape
    length = round(bins_per_bin * side / step)
    length = max(length + length % 2, 2 * count)
    b = np.arange(nb) % length
    b = np.minimum(b, length - b)
    spec1 = np.zeros((n, length // 2 + 1), np.float32)
    for i in range(n):
        spec1[i] = np.bincount(b, weights=hist[i], minlength=length // 2 + 1)
    spec1[:, 0] *= 2.0
    spec1[:, -1] *= 2.0
    full = scipy.fft.irfft(spec1, n=length, workers=1) * np.float32(length / 2.0)
    return full[:, :count].astype(np.float32)


def _window_spectrum(wts: np.ndarray, s: int, shared: bool) -> _Spectrum:
    q = 4 if s >= 128 else 1
    sq = -(-s // q)
    wspec = _spectrum(_box_downsample(np.ascontiguousarray(wts[:1] if shared else wts), q), sq)
    if shared:
        wspec = wspec._replace(power=np.broadcast_to(wspec.power, (wts.shape[0], *wspec.power.shape[1:])))
    scale = np.float32(s / (q * sq))
    return wspec._replace(ky=wspec.ky * scale, kx=wspec.kx * scale)


def _acf_along(signal_power: np.ndarray, spec: _Spectrum, wspec: _Spectrum, direction: np.ndarray, *,
               step: float, count: int, max_bin: float, bins_per_bin: int = 16) -> np.ndarray:
    """Normalised, window-corrected ACF along ``direction`` (``N×2``) at lags ``k · step``: ``N×count``."""
    s = spec.side
    nb = math.ceil(s * 0.7072 * bins_per_bin) + 2
    if 2 * math.ceil(max_bin) + 1 < s:
        rr = math.ceil(max_bin)
        rows = np.concatenate([np.arange(0, rr + 1), np.arange(s - rr, s)])
        sub = _Spectrum(signal_power[:, rows, : rr + 1], spec.ky[rows, : rr + 1], spec.kx[rows, : rr + 1],
                        spec.radius[rows, : rr + 1], spec.weight[rows, : rr + 1])
        hs = _project(sub, sub.power, direction, bins_per_bin, nb)
    else:
        hs = _project(spec, signal_power, direction, bins_per_bin, nb)
    hw = _project(wspec, wspec.power, direction, bins_per_bin, nb)
    rs = _cosine_sum(hs, s, step, count, bins_per_bin)
    rw = _cosine_sum(hw, s, step, count, bins_per_bin)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # lags outside the support: 0 below
        rho = rs / np.maximum(rw, _TINY)
        rho = rho / np.maximum(rho[:, :1], _TINY)
    return np.where(rw > np.float32(0.05) * rw[:, :1], rho, np.float32(0.0))


def _local_maxima(profile: np.ndarray) -> np.ndarray:
    left = np.concatenate([profile[:, :1], profile[:, :-1]], axis=1)
    right = np.concatenate([profile[:, 1:], profile[:, -1:]], axis=1)
    is_max = (profile >= left) & (profile > right)
    is_max[:, 0] = False
    is_max[:, -1] = False
    return is_max


def _first_acf_peak(profile: np.ndarray, *, step: float, min_lag: np.ndarray, rel_height: float = 0.5,
                    min_height: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """First significant local maximum of the ACF after its central lobe, at lags ≥ ``min_lag`` (``(N,)``),
    parabola-refined: ``(lag_px, rho)`` (NaN lag and ρ = 0 where there is none)."""
    n, t = profile.shape
    lags = np.arange(t, dtype=np.float32) * np.float32(step)
    left = np.concatenate([profile[:, :1], profile[:, :-1]], axis=1)
    right = np.concatenate([profile[:, 1:], profile[:, -1:]], axis=1)
    is_max = _local_maxima(profile)
    is_min = (profile <= left) & (profile < right)
    is_min[:, 0] = False
    low = profile <= 0.5
    low[:, 0] = False
    ar = np.arange(t)
    first_low = np.where(low, ar, t).min(axis=1)
    first_min = np.where(is_min, ar, t).min(axis=1)
    first_low = np.where(first_low < t, first_low, first_min)
    cand = is_max & (ar[None] >= first_low[:, None]) & (lags[None] >= min_lag[:, None].astype(np.float32))
    top = np.where(cand, profile, np.float32(-1.0)).max(axis=1, keepdims=True)
    sig = cand & (profile >= rel_height * top) & (profile >= min_height)
    idx = np.where(sig, ar, t).min(axis=1)
    found = idx < t
    i = np.clip(idx, 1, t - 2)
    rows = np.arange(n)
    a, b, c = profile[rows, i - 1], profile[rows, i], profile[rows, i + 1]
    den = a - 2 * b + c
    d = np.clip(np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, np.float32(-1.0)), 0.0), -0.5, 0.5)
    lag = (lags[i] + d * np.float32(step)).astype(np.float32)
    rho = (b - 0.25 * (a - c) * d).astype(np.float32)
    return np.where(found, lag, np.float32(np.nan)), np.where(found, rho, np.float32(0.0))


# ------------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------------
def dominant_period(x: np.ndarray, *, valid: Optional[np.ndarray] = None, min_period_px: float = 3.0,
                    max_period_frac: float = 0.5, rel_power: float = 0.25,
                    harmonic_tol: float = 0.04) -> PeriodArrays:
    """Dominant (fundamental) spatial period of each of ``N×H×W`` images (``valid``: optional ``N×H×W``
    bool, the pixels that count), as :func:`trackdiag.functional.spectral.dominant_period`: see there and
    the module docstring. Returns :class:`PeriodArrays` of ``(N,)`` arrays."""
    x = np.asarray(x, np.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be N×H×W; got {x.shape}")
    n, h, w = x.shape
    s = max(h, w)
    sig, wts = prepare(x, valid)
    shared = valid is None and wts.strides[0] == 0
    spec = _spectrum(sig, s)
    r_min = max(1.5, s / max(1.0, max_period_frac * min(h, w)))
    r_max = min(s / 2.0, s / max(min_period_px, 2.0))
    peaks = _find_peaks(spec, r_min, r_max)
    j = _pick_fundamental(peaks, rel_power=rel_power, harmonic_tol=harmonic_tol)
    rj = np.take_along_axis(peaks.radius, j[:, None], axis=1)
    twins = (np.abs(peaks.radius - rj) <= np.float32(0.02) * rj) & peaks.valid
    j = np.where(twins, peaks.power, np.float32(-1.0)).argmax(axis=1)
    radius, ky0, kx0, p0, has = _fundamental_of(peaks, j, rel_power=rel_power)
    norm = np.maximum(np.sqrt(ky0 * ky0 + kx0 * kx0), np.float32(1e-6))
    direction = np.stack([ky0 / norm, kx0 / norm], axis=1)
    direction = np.where(has[:, None], direction, np.asarray([0.0, 1.0], np.float32)).astype(np.float32)

    # The ACF along f*'s direction (see the torch _acf_profile).
    step = 0.25
    count = int(max(2.0, 0.45 * min(h, w)) / step) + 1
    ridx, nbr = _radial_index(s)
    logp = np.maximum(spec.power, _TINY)
    np.log(logp, out=logp)
    logp *= spec.weight
    lh = _scatter_rows(_radial_rows(s, n)[0], logp, nbr, flat=True)
    counts = np.bincount(ridx, weights=spec.weight.reshape(-1), minlength=nbr).astype(np.float32)
    clean_p = np.maximum(spec.power - _noise_floor(lh, counts, s)[:, None, None], np.float32(0.0))
    prof = _acf_along(clean_p, spec, _window_spectrum(wts, s, shared), direction, step=step, count=count,
                      max_bin=r_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        min_lag = np.maximum(np.float32(max(min_period_px, 2.0) * 0.75),
                             np.nan_to_num(np.float32(0.3 * s) / radius, nan=0.0))
        acf_lag, rho = _first_acf_peak(prof, step=step, min_lag=min_lag)
        # Octave check: the ACF's period picks another member of f*'s harmonic family (torch version).
        r_acf = np.float32(s) / acf_lag
    m = peaks.radius[:, :1] / np.maximum(peaks.radius, np.float32(1e-6))
    family = (np.abs(m - np.round(m)) <= harmonic_tol * np.round(m)) & (np.round(m) >= 1) & peaks.valid
    with np.errstate(invalid="ignore"):
        near = family & (np.abs(peaks.radius - r_acf[:, None]) <= 2 * harmonic_tol * r_acf[:, None])
    near &= peaks.power >= np.float32(0.1) * peaks.power[:, :1]
    alt = np.where(near, peaks.power, np.float32(-1.0)).argmax(axis=1)
    use_alt = near.any(axis=1) & np.isfinite(r_acf) & (alt != j)
    j = np.where(use_alt, alt, j)
    radius2, _, _, p0b, _ = _fundamental_of(peaks, j, rel_power=0.1)
    radius = np.where(use_alt, radius2, radius)
    p0 = np.where(use_alt, p0b, p0)
    r0 = np.where(has, radius, np.float32(r_min)).astype(np.float32)

    bg = _ring_background(lh, counts, r0)
    peak_ratio = np.where(has, p0 / np.maximum(bg, _TINY), np.float32(0.0))
    gate = np.clip(np.log10(np.maximum(peak_ratio, np.float32(1e-30))) - np.float32(1.0), 0.0, 1.0)
    score = np.sqrt(np.clip(rho, 0.0, 1.0)) * gate
    score = np.where(has & np.isfinite(score), score, np.float32(0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        period = np.float32(s) / radius
    return PeriodArrays(period.astype(np.float64), radius.astype(np.float64), score.astype(np.float64))
