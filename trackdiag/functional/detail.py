"""Detail deficit against a reference: how much fine detail an output lacks, in dB — the fidelity metric.

A blur, an untrained checkpoint or a too-smooth upsampler removes energy from the fine scales first. The
earth mover's distance over energy per octave (``ref_spectrum_distance``) barely sees that: nearly all of a
photo's energy sits at coarse scales, so moving the little that is fine hardly moves the distribution.
Here each fine band is judged on a log scale:

1. For the output and for the reference, the mean power per frequency bin of each band of the (windowed,
   detrended) image, divided by the mean power per bin of the coarse scales (periods above the bands, DC
   excluded): the fine detail *relative to the image's own structure* (contrast-free, and independent of
   the image and FFT sizes because frequencies are in cycles/px). The bands are ``bands_per_octave`` per
   octave over periods ``min_period_px`` (2 px: Nyquist) to ``max_period_px`` (16 px) — the detail a blur
   removes first. Relative to the coarse scales and not to the total: every band lies above them, so any
   blur whose transfer falls with frequency lowers every band's ratio (the total includes the fine bands
   themselves, and removing the finest detail would raise the next bands' share of it).
2. Per band, the deficit ``10·log10(ref / (out + ref·10^(−floor_db/10)))`` dB, floored at 0: only a lack of
   detail counts (an excess — noise, a checkerboard at Nyquist — is the artifact metrics' job, and an
   output sharper than its reference does not win or lose by it); capped smoothly at ``floor_db``
   (an output with no detail at all).
3. The mean over the bands, weighted by the band's centre frequency (toward the finest detail).

0 dB: the output has at least the reference's relative detail in every band; a Gaussian blur of σ px raises
the deficit of the band at frequency f (cycles/px) by ``10·log10(e)·4π²σ²f²`` ≈ 17·σ²f² dB, e.g. 3.7 dB at
period 4 px for σ = 1 px. The measure assumes the output shows the texture at the reference's scale
(pixels per texture unit), as ``ref_spectrum_distance`` does.
"""

from __future__ import annotations

import math

import torch

from ..metricspec import MetricSpec
from .spectral import Spectrum

__all__ = ["detail_deficit_db", "DETAIL_SPECS", "MIN_PERIOD_PX", "MAX_PERIOD_PX", "FLOOR_DB"]

#: The detail bands span periods from Nyquist (2 px) to 16 px (three octaves).
MIN_PERIOD_PX, MAX_PERIOD_PX = 2.0, 16.0
#: The deficit of one band is capped (smoothly) at this many dB: an output with no detail at all.
FLOOR_DB = 30.0

#: The metric's spec (registered by the tiling analyzer, which logs it whenever ``ref`` is given).
DETAIL_SPECS = [
    MetricSpec("ref_detail_deficit_db", goal="min", unit="dB",
               doc="fine detail the output lacks against the reference: frequency-weighted mean over the "
               f"bands of periods {MIN_PERIOD_PX:g}–{MAX_PERIOD_PX:g} px of the shortfall of the output's "
               "variance-relative power density, 0 = as detailed as the reference (a blur raises it)"),
]


def _band_density(spec: Spectrum, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Power density of each band ``[edges[k], edges[k+1])`` (cycles/px) relative to the density of the
    coarse scales ``(0, edges[0])`` (DC excluded): ``N×K`` for ``K = len(edges) − 1`` (NaN where a band
    holds no FFT bin); and the total energy ``(N,)`` (DC excluded)."""
    side = spec.side
    f = (spec.radius / side).flatten()  # cycles/px of every rfft2 coefficient
    w = spec.weight.flatten()
    p = (spec.power * spec.weight).flatten(1)  # N×M, full-plane energy per coefficient
    nb = edges.numel() - 1
    # bucket 0: coarse (0 < f < edges[0]); 1..K: the bands; K+1: DC and everything above the last edge
    k = torch.bucketize(f, edges, right=True)
    idx = torch.where((f > 0) & (k <= nb), k, torch.full_like(k, nb + 1))
    energy = torch.zeros(p.shape[0], nb + 2, device=p.device, dtype=p.dtype).scatter_add_(
        1, idx.expand(p.shape[0], -1), p)
    count = torch.zeros(nb + 2, device=p.device, dtype=p.dtype).scatter_add_(0, idx, w)
    tiny = torch.finfo(p.dtype).tiny
    dens = energy[:, : nb + 1] / count[: nb + 1].clamp_min(tiny)  # per bin ∝ per unit frequency area
    rel = dens[:, 1:] / dens[:, :1].clamp_min(tiny)
    ok = (count[1: nb + 1] > 0) & (count[0] > 0)
    total = p[:, 1:].sum(dim=1)  # without DC (index 0 is ky = kx = 0)
    return torch.where(ok[None], rel, torch.full_like(rel, float("nan"))), total


def detail_deficit_db(out: Spectrum, ref: Spectrum, *, min_period_px: float = MIN_PERIOD_PX,
                      max_period_px: float = MAX_PERIOD_PX, bands_per_octave: int = 2,
                      floor_db: float = FLOOR_DB, pixels: torch.Tensor | float | None = None,
                      min_rms: float = 1e-4) -> torch.Tensor:
    """The output's detail deficit against the reference in dB (see the module doc).

    ``out``: the output's :class:`~trackdiag.functional.spectral.Spectrum` (``N`` images, side ``S``);
    ``ref``: the
    reference's (1 image, any side). ``pixels``: the number of pixels of each output that the spectrum
    holds (``(N,)`` or a number; ``H·W`` without a mask): where given, an output whose windowed RMS is
    below ``min_rms`` (image units; 1e-4 is 1/40 of an 8-bit level) is flat and gets ``floor_db`` (without
    it, the roundoff left by detrending a constant image would look like white detail). Returns ``(N,)``:
    ≥ 0, ``floor_db`` at most; NaN where the reference has no energy or no band holds a bin of both
    spectra.

    >>> import torch
    >>> from trackdiag.functional.spectral import prepare, spectrum
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(1, 64, 64, generator=g)
    >>> s = spectrum(prepare(x)[0] * prepare(x)[1])
    >>> float(detail_deficit_db(s, s))
    0.0
    """
    if not (2.0 <= min_period_px < max_period_px) or bands_per_octave < 1 or floor_db <= 0:
        raise ValueError("need 2 <= min_period_px < max_period_px, bands_per_octave >= 1, floor_db > 0")
    octaves = math.log2(max_period_px / min_period_px)
    nb = max(1, round(octaves * bands_per_octave))
    dt, dev = out.power.dtype, out.power.device
    edges = (1.0 / max_period_px) * torch.exp2(torch.linspace(0.0, octaves, nb + 1, dtype=dt, device=dev))
    edges[-1] = edges[-1] * (1.0 + 1e-6)  # Nyquist itself belongs to the last band
    d_out, e_out = _band_density(out, edges)
    d_ref, _ = _band_density(Spectrum(*(t.to(device=dev, dtype=dt) for t in ref)), edges)
    floor = 10.0 ** (-floor_db / 10.0)
    deficit = (10.0 * torch.log10(d_ref / (d_out + floor * d_ref))).clamp_min(0.0)
    if pixels is not None:  # flat: below 8-bit quantisation everywhere, no detail at all
        per_px = e_out / (float(out.side) ** 2 * torch.as_tensor(pixels, device=dev, dtype=dt).clamp_min(1.0))
        deficit = torch.where((per_px < min_rms * min_rms)[:, None], torch.full_like(deficit, floor_db),
                              deficit)
    centre = torch.sqrt(edges[:-1] * edges[1:])
    ok = torch.isfinite(deficit) & (d_ref > 0)
    wts = torch.where(ok, centre[None], torch.zeros_like(deficit))
    num = torch.where(ok, deficit, torch.zeros_like(deficit)).mul(wts).sum(dim=1)
    den = wts.sum(dim=1)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(dt).tiny), torch.full_like(num, float("nan")))
