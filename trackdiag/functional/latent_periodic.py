"""Whitened spectra of latent channels: periodic peaks (lattices, grids, motifs) and stripes.

Everything here is pure math on ``N×h×w`` tensors (one image per latent channel and sample):

* :func:`detrend_poly`: remove a degree-2 polynomial surface (means, gradients, vignetting);
* :func:`whitened_spectrum`: the Hann-windowed power spectrum divided by the channel's own *isotropic*
  expectation, i.e. the median power of the ring of the same radius (off the axes) over ``ln 2`` (the
  median of an exponential variable). A bin of an isotropic Gaussian field has a ratio ~ Exp(1) whatever
  the spectral slope, so one threshold works on smooth and on rough content;
* :func:`periodic_peaks`: prominent local maxima of the batch-averaged whitened spectrum from period 2 px
  (Nyquist, corners included) to ``max_period_px``, against a Gamma quantile (the mean of ``n`` Exp(1)),
  grouped into the pattern's kind (``grid``: peaks on both axes only; ``lattice``: off-axis peaks;
  ``motif``: many harmonics of one cell; ``periodic_rows``/``periodic_cols``: peaks on one axis);
* :func:`stripe_excess`: the share of a channel's variance that lies on the row/column axis lines of the
  spectrum *beyond what its own isotropic spectrum puts there* (so image-like content, which already
  puts 10–15 % there, is not stripes), plus a whitened significance of that excess. A degree-2 detrend
  takes smooth one-directional gradients out first, so a gradient is not a stripe;
* :func:`first_component`: the first principal component of the channels, per sample (a pattern shared
  by every channel);
* :func:`latent_spectral`: all of it on a latent batch ``B×C×h×w``, per sample (what the latent analyzer
  computes on the device).

The period search works on the spectrum, so removing the row/column means (stripes) is never needed and
cannot erase a grid. The same ideas (whitened prominent peaks, lattice-line excess) are what the tiling
analyzer's lattice and grid estimators do on images; they could share this module's ring background.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .latent_moments import finite_filled

__all__ = ["detrend_poly", "whitened_spectrum", "WhiteSpectrum", "periodic_peaks", "PeriodicFinding",
           "stripe_excess", "first_component", "gamma_threshold", "prominence", "local_background",
           "periodic_peaks_from", "peak_share_map", "latent_spectral"]

_LN2 = math.log(2.0)


def detrend_poly(x: torch.Tensor, *, order: int = 2) -> torch.Tensor:
    """``x`` (N×h×w) minus its least-squares polynomial surface of total degree ``order`` (per image)."""
    n, h, w = x.shape
    y = torch.linspace(-1, 1, h, dtype=torch.float64, device=x.device)[:, None].expand(h, w)
    xx = torch.linspace(-1, 1, w, dtype=torch.float64, device=x.device)[None, :].expand(h, w)
    cols = [y ** a * xx ** (d - a) for d in range(order + 1) for a in range(d, -1, -1)]
    design = torch.stack([c.reshape(-1) for c in cols], dim=1)  # (h·w)×K
    pinv = torch.linalg.pinv(design)  # K×(h·w)
    flat = x.reshape(n, -1).double()
    coef = flat @ pinv.T
    return (flat - coef @ design.T).reshape(n, h, w).to(x.dtype)


@dataclass
class WhiteSpectrum:
    """Power spectrum and its whitened ratio, both ``N×h×w`` (unshifted FFT layout).

    ``ky``/``kx``: ``h×w`` integer frequency indices (signed, ``fftfreq`` layout, in bins of ``1/h`` and
    ``1/w`` cycles per px); ``radius``: ``h×w`` radius in cycles per px; ``expected``: ``N×h×w`` the
    isotropic expectation of each bin; ``total``: ``(N,)`` total power (without DC).
    """

    power: torch.Tensor
    ratio: torch.Tensor
    expected: torch.Tensor
    ky: torch.Tensor
    kx: torch.Tensor
    radius: torch.Tensor
    total: torch.Tensor


def _hann(n: int, device: torch.device) -> torch.Tensor:
    return torch.hann_window(n, periodic=False, dtype=torch.float32, device=device)


def whitened_spectrum(x: torch.Tensor, *, detrend_order: int = 2) -> WhiteSpectrum:
    """Whitened power spectrum of each ``h×w`` image of ``x`` (N×h×w, finite).

    The image is detrended (:func:`detrend_poly`), Hann-windowed and transformed. The expectation of a bin
    is the median power of the bins of the same radius (rounded to whole bins of ``1/max(h, w)``) that lie
    off the axis lines (``|kx| > 1`` and ``|ky| > 1``), divided by ``ln 2``; rings without such bins use
    the nearest ring that has some.
    """
    n, h, w = x.shape
    dev = x.device
    xd = detrend_poly(x.float(), order=detrend_order)
    win = _hann(h, dev)[:, None] * _hann(w, dev)[None, :]
    power = torch.fft.fft2(xd * win).abs().square()
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=dev).round().long()[:, None].expand(h, w)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=dev).round().long()[None, :].expand(h, w)
    fy, fx = ky.float() / h, kx.float() / w
    radius = torch.sqrt(fy * fy + fx * fx)
    side = max(h, w)
    ring = (radius * side).round().long()
    off_axis = (ky.abs() > 1) & (kx.abs() > 1)
    nring = int(ring.max()) + 1
    flat = power.reshape(n, -1)
    ring_f, off_f = ring.reshape(-1), off_axis.reshape(-1)
    bg = torch.full((n, nring), float("nan"), device=dev)
    for r in range(nring):
        sel = (ring_f == r) & off_f
        if int(sel.sum()) >= 4:
            bg[:, r] = flat[:, sel].median(dim=1).values / _LN2
    have = torch.isfinite(bg[0])
    idx = torch.arange(nring, device=dev)
    good = idx[have]
    if good.numel() == 0:
        raise ValueError(f"image {h}×{w} too small for a whitened spectrum")
    nearest = good[(idx[:, None] - good[None, :]).abs().argmin(dim=1)]
    bg = bg[:, nearest]
    # beyond the inscribed circle the rings are incomplete (a few bins around the corners, where one peak's
    # leakage is most of the ring): never above the last complete ring's level
    full = min(h, w) // 2
    if nring > full + 1:
        bg[:, full + 1:] = torch.minimum(bg[:, full + 1:], bg[:, full: full + 1])
    expected = bg[:, ring_f].reshape(n, h, w).clamp_min(1e-30)
    ratio = power / expected
    ratio[:, 0, 0] = 0.0
    total = flat.sum(dim=1) - flat[:, 0]
    return WhiteSpectrum(power, ratio, expected, ky, kx, radius, total)


@functools.lru_cache(maxsize=256)
def gamma_threshold(mean_of: int, p: float) -> float:
    """Upper ``p`` quantile of the mean of ``mean_of`` independent Exp(1) variables (a Gamma law)."""
    from scipy.special import gammainccinv

    n = max(1, int(mean_of))
    return float(gammainccinv(n, p) / n)


@dataclass
class PeriodicFinding:
    """The periodic structure of one channel (or of the first principal component) over a batch.

    ``ratio``: the strongest peak's batch-mean whitened ratio (0 when none); ``threshold``: the ratio a
    peak needed; ``period_px``: ``1/|k|`` of the lowest-frequency significant peak (NaN when none);
    ``period_x_px``/``period_y_px``: its periods along x and y (``inf`` on an axis it does not cross);
    ``share``: estimated share of the channel's variance in the significant peaks; ``kind``: ``"none"``,
    ``"grid"``, ``"lattice"``, ``"motif"``, ``"periodic_rows"`` or ``"periodic_cols"``; ``peaks``: their
    ``(ky, kx, ratio)`` in bins (half plane).
    """

    ratio: float
    threshold: float
    period_px: float
    period_x_px: float
    period_y_px: float
    share: float
    kind: str
    peaks: list[tuple[int, int, float]]

    @property
    def found(self) -> bool:
        return self.kind != "none"


def _box_sum(x: torch.Tensor, ky: int, kx: int) -> torch.Tensor:
    """Circular box sums of ``x`` (N×h×w) over ``ky×kx`` windows centred on each bin."""
    pad = F.pad(x[:, None], (kx // 2, kx // 2, ky // 2, ky // 2), mode="circular")
    return F.avg_pool2d(pad, (ky, kx), stride=1)[:, 0] * float(ky * kx)


def local_background(power: torch.Tensor, *, size: int = 7, line: int = 13) -> torch.Tensor:
    """Mean power around each bin; ``N×h×w`` → ``N×h×w`` (circular at the borders).

    Off the axes: the ``size×size`` neighbourhood without its central 3×3 (a peak's main lobe under a Hann
    window). On the axis lines (``|kx| <= 1`` or ``|ky| <= 1``, where stripes raise every bin): the same
    line's bins within ``line // 2`` without the central 3, so that a raised line (stripes) is not a peak
    while a periodic peak on it (a grid's lines) still is. Box sums: one pass, no sorting.
    """
    n, h, w = power.shape
    k, r = int(size), int(line)
    out = (_box_sum(power, k, k) - _box_sum(power, 3, 3)) / float(k * k - 9)
    along_y = (_box_sum(power, r, 1) - _box_sum(power, 3, 1)) / float(r - 3)
    along_x = (_box_sum(power, 1, r) - _box_sum(power, 1, 3)) / float(r - 3)
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=power.device).round().abs()[:, None].expand(h, w)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=power.device).round().abs()[None, :].expand(h, w)
    out = torch.where(kx <= 1, along_y, out)  # the row-stripe line runs along ky
    return torch.where(ky <= 1, along_x, out)


def prominence(spec: WhiteSpectrum) -> torch.Tensor:
    """``N×h×w``: the smaller of the whitened ratio (against the ring) and the local ratio (against the
    neighbourhood, :func:`local_background`). A periodic peak stands out from both; a ridge of the content
    (an edge, an elongated object) or a raised axis line (stripes) stands out from the ring only."""
    return torch.minimum(spec.ratio, spec.power / local_background(spec.power).clamp_min(1e-30))


def periodic_peaks(spec: WhiteSpectrum, *, samples: int, channels: int, min_cycles: float = 6.0,
                   p_bin: float = 1e-8) -> list[PeriodicFinding]:
    """Prominent peaks of the batch-averaged :func:`prominence`, per channel.

    Args:
        spec: :func:`whitened_spectrum` of ``samples·channels`` images, sample-major (``B×C`` flattened).
        min_cycles: the pattern repeats at least this many times across the longer side (lower
            frequencies carry the content's own large-scale anisotropy); the shortest period is 2 px
            (the Nyquist frequency, corners of the spectrum included).
        p_bin: false-alarm probability of one bin: the threshold is the upper ``p_bin`` quantile of the
            mean of ``samples`` Exp(1) variables (the law of a whitened bin of an isotropic field).

    Returns:
        One :class:`PeriodicFinding` per channel.
    """
    n, h, w = spec.ratio.shape
    if n != samples * channels:
        raise ValueError(f"spectrum has {n} images; expected {samples}×{channels}")
    prom = prominence(spec).reshape(samples, channels, h, w).mean(dim=0)  # C×h×w
    share = peak_share_map(spec).reshape(samples, channels, h, w).mean(dim=0)
    return periodic_peaks_from(prom, share, samples=samples, min_cycles=min_cycles, p_bin=p_bin)


def peak_share_map(spec: WhiteSpectrum) -> torch.Tensor:
    """``N×h×w``: each bin's power beyond the isotropic expectation, as a share of the image's total power."""
    return (spec.power - spec.expected).clamp_min(0) / spec.total[:, None, None].clamp_min(1e-30)


def periodic_peaks_from(prom: torch.Tensor, share_map: torch.Tensor, *, samples: int,
                        min_cycles: float = 6.0, p_bin: float = 1e-8) -> list[PeriodicFinding]:
    """:func:`periodic_peaks` from batch-mean maps: ``prom`` (C×h×w, :func:`prominence` averaged over
    ``samples`` images) and ``share_map`` (C×h×w, :func:`peak_share_map` averaged likewise)."""
    channels, h, w = prom.shape
    dev = prom.device
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=dev).round().long()[:, None].expand(h, w)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=dev).round().long()[None, :].expand(h, w)
    radius = torch.sqrt((ky.float() / h) ** 2 + (kx.float() / w) ** 2)
    thr = gamma_threshold(samples, p_bin)
    half = (ky > 0) | ((ky == 0) & (kx > 0))
    if h % 2 == 0:
        half = half | (ky == -(h // 2))  # the Nyquist row (its mirror is itself)
    search = half & (radius * max(h, w) >= min_cycles - 1e-6)
    padded = F.pad(prom[:, None], (1, 1, 1, 1), mode="circular")
    local_max = prom >= F.max_pool2d(padded, 3, stride=1)[:, 0]
    out: list[PeriodicFinding] = []
    for c in range(channels):
        cand = search & local_max[c] & (prom[c] > thr)
        top_any = float(prom[c][search].max())
        ys, xs = torch.nonzero(cand, as_tuple=True)
        if ys.numel() == 0:
            out.append(PeriodicFinding(top_any, thr, math.nan, math.nan, math.nan, 0.0, "none", []))
            continue
        vals = prom[c][ys, xs]
        peaks = [(int(ky[y, x]), int(kx[y, x]), float(v)) for y, x, v in zip(ys, xs, vals, strict=True)]
        peaks.sort(key=lambda t: -t[2])
        top = peaks[0][2]
        period, fy, fx = _fundamental(peaks, h, w, max_period=max(h, w) / min_cycles)
        on_x = [pk for pk in peaks if abs(pk[0]) <= 1]  # ky ~ 0: varies along x (column stripes)
        on_y = [pk for pk in peaks if abs(pk[1]) <= 1]
        off = [pk for pk in peaks if abs(pk[0]) > 1 and abs(pk[1]) > 1]
        if off:
            kind = "motif" if len(peaks) >= 5 else "lattice"
        elif on_x and on_y:
            kind = "grid"
        else:
            kind = "periodic_cols" if on_x else "periodic_rows"
        share = 0.0
        for pky, pkx, _ in peaks:
            yy = torch.tensor([(pky + d) % h for d in (-1, 0, 1)], device=prom.device)
            xx = torch.tensor([(pkx + d) % w for d in (-1, 0, 1)], device=prom.device)
            share += 2.0 * float(share_map[c][yy[:, None], xx[None, :]].sum())  # both half planes
        out.append(PeriodicFinding(top, thr, period, 1.0 / abs(fx) if fx else math.inf,
                                   1.0 / abs(fy) if fy else math.inf, min(share, 1.0), kind, peaks))
    return out


def _fundamental(peaks: list[tuple[int, int, float]], h: int, w: int, *, max_period: float
                 ) -> tuple[float, float, float]:
    """(period, fy, fx) of a peak set: the shortest axis-aligned cell period ``p`` (2 px up to
    ``max_period``, steps of 0.01 px) whose harmonics ``(i·h/p, j·w/p)`` bins explain at least 90 % of
    the peaks within 0.6 bins (a grid, an axis-aligned lattice or a tiled motif); otherwise ``1/|k|`` of the
    lowest-frequency peak (an oblique lattice)."""
    kyx = torch.tensor([[pk[0], pk[1]] for pk in peaks], dtype=torch.float64)
    cands = torch.arange(2.0, max_period + 1e-9, 0.01, dtype=torch.float64)
    fy_bins = kyx[None, :, 0] * cands[:, None] / h  # cycles per cell along y (should be integers)
    fx_bins = kyx[None, :, 1] * cands[:, None] / w
    ok = (((fy_bins - fy_bins.round()).abs() * h / cands[:, None]) <= 0.6) & \
        (((fx_bins - fx_bins.round()).abs() * w / cands[:, None]) <= 0.6)
    frac = ok.double().mean(dim=1)
    good = torch.nonzero(frac >= 0.9 - 1e-9)
    if good.numel():
        idx = good[:, 0]
        run = int(idx[0])
        while run + 1 < cands.numel() and bool(frac[run + 1] >= 0.9 - 1e-9):
            run += 1
        p = float(cands[(int(idx[0]) + run) // 2])  # the middle of the first run of candidates
        return p, 1.0 / p, 1.0 / p
    low = min(peaks, key=lambda t: (t[0] / h) ** 2 + (t[1] / w) ** 2)
    fy, fx = low[0] / h, low[1] / w
    return 1.0 / math.hypot(fy, fx), fy, fx


def stripe_excess(spec: WhiteSpectrum, *, min_bin: int = 5) -> dict[str, torch.Tensor]:
    """Axis-line power beyond the isotropic expectation, per image (``(N,)`` each).

    The axis line of the row stripes is ``kx ∈ {-1, 0, 1}`` (the Hann main lobe), ``|ky| >= min_bin``
    (lower frequencies are the detrended polynomial's); the column stripes' line is the transpose.

    Returns ``rows``/``cols``: ``(Σ P - Σ E) / total`` (the stripe share of the variance beyond what the
    content explains; about 0 ± noise without stripes), ``rows_z``/``cols_z``: the whitened excess,
    ``(mean of P/E on the line - 1) · sqrt(number of bins on the line)`` (about N(0, 1) for an isotropic
    Gaussian field), and ``rows_share``/``cols_share``: the raw share of the line (content included).
    """
    ky, kx = spec.ky, spec.kx
    out: dict[str, torch.Tensor] = {}
    for name, line in (("rows", (kx.abs() <= 1) & (ky.abs() >= min_bin)),
                       ("cols", (ky.abs() <= 1) & (kx.abs() >= min_bin))):
        p = spec.power[:, line]
        e = spec.expected[:, line]
        tot = spec.total.clamp_min(1e-30)
        out[name] = (p.sum(dim=1) - e.sum(dim=1)) / tot
        out[f"{name}_share"] = p.sum(dim=1) / tot
        nb = float(line.sum()) / 2.0  # the line is symmetric: half of its bins are independent
        out[f"{name}_z"] = ((p / e).mean(dim=1) - 1.0) * math.sqrt(max(nb, 1.0))
    return out


def first_component(x: torch.Tensor) -> torch.Tensor:
    """First principal component of the channels of each sample, ``B×C×h×w`` → ``B×h×w`` (unit-free).

    Channels are centred (not scaled) and projected on the top eigenvector of their ``C×C`` covariance.
    """
    b, c, h, w = x.shape
    flat = x.reshape(b, c, -1).double()
    flat = flat - flat.mean(dim=2, keepdim=True)
    cov = flat @ flat.transpose(1, 2) / flat.shape[2]
    _, vecs = torch.linalg.eigh(cov)
    v = vecs[:, :, -1]  # B×C
    return (v[:, None, :] @ flat)[:, 0].reshape(b, h, w).to(x.dtype)


def latent_spectral(x: torch.Tensor, *, pc1: bool = True) -> dict[str, torch.Tensor]:
    """Per-sample spectral measures of a latent batch ``B×C×h×w`` (non-finite values filled).

    Returns ``stripe_{rows,cols}_excess`` and ``..._z`` (``B×C``, :func:`stripe_excess`), and ``prom`` /
    ``share`` (``B×C'×h×w`` with ``C' = C + 1`` when ``pc1``: the prominence and peak-share maps of each
    channel and of the first principal component), which :func:`periodic_peaks_from` averages over the batch.
    """
    x = finite_filled(x)
    b, c, h, w = x.shape
    imgs = x.reshape(b * c, h, w)
    if pc1 and c > 1:
        imgs = torch.cat([x, first_component(x)[:, None]], dim=1).reshape(b * (c + 1), h, w)
    spec = whitened_spectrum(imgs)
    cc = imgs.shape[0] // b
    st = stripe_excess(spec)
    out = {f"stripe_{k.replace('rows', 'rows_excess').replace('cols', 'cols_excess')}"
           if k in ("rows", "cols") else f"stripe_{k}": v.reshape(b, cc)[:, :c]
           for k, v in st.items() if not k.endswith("_share")}
    out["prom"] = prominence(spec).reshape(b, cc, h, w)
    out["share"] = peak_share_map(spec).reshape(b, cc, h, w)
    return out
