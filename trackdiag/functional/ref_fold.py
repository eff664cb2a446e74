"""The fold of the reference's fine texture by a stride: aliasing measured against what the texture is.

A subsampling by ``stride`` without a low-pass moves every frequency ``k`` of the texture beyond the new
Nyquist frequency ``1/(2·stride)`` cycles/px to ``k − m/stride`` (``m`` the integer vector that brings it
into the new band), at the texture's full contrast; an antialiased subsampling removes it instead (the
generator's filter keeps ≈ 0.1 of the amplitude at the new Nyquist frequency: ≈ 0.01 of the power), and an
upsampling after either keeps it where it was put. The folded positions of a texture's fine peaks are
therefore predicted by the texture itself — the reference — and the stride, and the output's power there,
against the reference's power at the peaks it came from, is the fold's gain: near 1 (the upsampling's own
transfer ``cos⁴(π|q|)`` aside) for a strided output, ≈ 0.01 for an antialiased one.

Why a reference: an output that was strided then upsampled by 2 (the generator's ``stride_up``, a decoder
run at half resolution) shows the fold as a clean coarse lattice, and a sampled periodic texture *is* the
lattice of its folded frequencies — no test on the output alone can tell it from a real wall of that
lattice, and an antialiased twin, rendered at one sample per pixel, shows the same lattice weaker
(docs/tiling.md §6). Only the amplitude parts them, and only the texture's own fine peaks say what amplitude
to expect.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .spectral import Spectrum, _box_mean_wrapped, log_power

__all__ = ["ref_fold_gain", "peak_excess", "RefFold", "CONTROL_DEG"]

#: The ring control's directions (degrees from each folded position): none a symmetry of a square (90°) or
#: hexagonal (60°) lattice, so at most a few land on another fold of the same texture (the median drops them).
CONTROL_DEG = (20.0, 40.0, 70.0, 100.0, 125.0, 145.0, 165.0)


class RefFold(NamedTuple):
    """What :func:`ref_fold_gain` measured, each ``(N,)``: the fold's gain in shares of each image's AC power,
    the same in variance units, and the reference's share of AC power in the sources used."""

    gain: torch.Tensor
    power: torch.Tensor
    used: torch.Tensor


def peak_excess(spec: Spectrum, *, gain: float = 8.0, reach: int = 4, peaks: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Prominent local maxima and every bin's excess power over its neighbourhood, as a share of the AC power.

    A bin is prominent when it stands ``gain``× above the geometric mean of its ``(2·reach+1)²``
    neighbourhood (the peak test of :func:`~trackdiag.functional.spectral.fine_peak_fracs`) and is a 3×3
    local maximum (ky wrapped around). ``spec``: ``N`` spectra of side ``S``. Returns ``(peak, share, ac)``:
    ``N×S×(S//2+1)`` bool (None with ``peaks=False``: not needed, not computed) and float, ``share`` =
    ``max(0, P − geometric mean)·weight / ac`` (so a sum over any set of bins is a share of the full-plane AC
    energy), and ``ac`` ``(N,)`` that energy (radius ≥ 2 bins counts as AC).
    """
    p = spec.power
    lp = log_power(p)
    bg = _box_mean_wrapped(lp, reach)
    dt = p.dtype
    tot = (p * ((spec.radius >= 2).to(dt) * spec.weight)).sum(dim=(1, 2)).clamp_min(torch.finfo(dt).tiny)
    share = (p - torch.exp(bg)).clamp_min(0.0).mul_(spec.weight).div_(tot[:, None, None])
    if not peaks:
        return None, share, tot
    prom = (lp - bg) > math.log(gain)
    wrapped = torch.cat([p[:, -1:], p, p[:, :1]], dim=1)[:, None]
    mx = F.max_pool2d(wrapped, 3, 1, padding=(0, 1))[:, 0]
    return prom & (p >= mx), share, tot


def _near(spec: Spectrum, q: torch.Tensor, tol: torch.Tensor, use: torch.Tensor, *, max_tol: float
          ) -> torch.Tensor:
    """``J×S×C`` bool: for each of ``J`` sets of ``K`` points (``q`` ``J×K×2`` cycles/px (y, x); ``K×2``
    reads as one set and gives ``S×C``), the bins within ``tol`` (``(K,)``) cycles/px of ``±q`` for the
    points where ``use``; ky wraps around (rfft2 order), the half plane's mirror is the ``−q`` term. Only
    the ``(2R+1)²`` bins around each point are tested, ``R`` from ``max_tol`` (≥ every ``tol``; a bound
    known without reading the tensors: no host synchronisation)."""
    one = q.dim() == 2
    qj = q[None] if one else q
    nj = qj.shape[0]
    s, c = spec.side, spec.ky.shape[-1]
    dev, dt = spec.ky.device, q.dtype
    reach = int(math.ceil(max_tol * s)) + 1
    off = torch.arange(-reach, reach + 1, device=dev, dtype=dt)
    hits = torch.zeros(nj * s * c, device=dev, dtype=dt)
    base = (torch.arange(nj, device=dev) * (s * c))[:, None, None, None]  # J×1×1×1
    for sg in (1.0, -1.0):
        qb = sg * qj * s  # J×K×2 in bins
        cy = torch.round(qb[..., 0])[..., None, None] + off[:, None]  # J×K×W×1
        cx = torch.round(qb[..., 1])[..., None, None] + off[None, :]  # J×K×1×W
        d = torch.sqrt((cy - qb[..., 0, None, None]).square() + (cx - qb[..., 1, None, None]).square())
        ok = (d <= (tol * s)[:, None, None]) & use[:, None, None] & (cx >= 0) & (cx <= c - 1)
        iy = torch.remainder(cy, s).long().expand_as(ok)
        ix = cx.clamp(0, c - 1).long().expand_as(ok)
        hits.index_add_(0, (base + iy * c + ix).reshape(-1), ok.to(dt).reshape(-1))
    hit = (hits > 0).reshape(nj, s, c)
    return hit[0] if one else hit


def _ring_control(spec: Spectrum, share: torch.Tensor, q: torch.Tensor, tol: torch.Tensor,
                  use: torch.Tensor, *, max_tol: float, angles: tuple[float, ...]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``share`` (``N×S×C``) summed within ``tol`` of the folded positions ``±q`` (``K×2`` cycles/px, where
    ``use``), and its median over the same positions rotated by each of ``angles`` (degrees): the power the
    image holds at those frequency radii in any direction. Returns ``(at_q, control)``, each ``(N,)``; the
    control is 0 without ``angles``."""
    dt = q.dtype
    rad = torch.tensor([0.0, *angles], device=q.device, dtype=dt).deg2rad()  # J
    cs, sn = torch.cos(rad)[:, None], torch.sin(rad)[:, None]
    qs = torch.stack([q[:, 0] * cs - q[:, 1] * sn, q[:, 0] * sn + q[:, 1] * cs], dim=-1)  # J×K×2
    sums = torch.einsum("nsc,jsc->nj", share, _near(spec, qs, tol, use, max_tol=max_tol).to(dt))
    ctrl = sums[:, 1:].median(dim=1).values if angles else torch.zeros_like(sums[:, 0])
    return sums[:, 0], ctrl


def ref_fold_gain(out: Spectrum, ref: Spectrum, *, stride: int = 2, rel_power: float = 0.25, n_peaks: int = 8,
                  tol_cycles: float = 1.0 / 256, rel_tol: float = 0.03, min_fold_cycles: float = 1.0 / 128,
                  own_frac: float = 0.01, out_pixels: torch.Tensor | float | None = None,
                  ref_pixels: torch.Tensor | float | None = None, gain: float = 8.0, reach: int = 4,
                  control_deg: tuple[float, ...] = CONTROL_DEG) -> RefFold:
    """The gain of the output at the folded positions of the reference's fine peaks (see the module doc).

    ``out``: the output's :class:`~trackdiag.functional.spectral.Spectrum` (``N`` images, side ``S``);
    ``ref``: the reference's (1 image, any side). The sources are the reference's prominent peaks
    (:func:`peak_excess`) beyond the new Nyquist frequency ``1/(2·stride)`` on either axis (by more than
    two of its bins) with at least ``rel_power`` of the excess of its strongest prominent peak (the
    texture's own fine shell, not a weak high harmonic of a coarse wall), the ``n_peaks`` strongest. A
    source ``k`` folds to ``q = k − round(stride·k)/stride`` (per axis); it is used where ``|q| ≥
    min_fold_cycles`` and no prominent peak of the reference with ``own_frac`` of its excess lies within
    ``tol = tol_cycles + rel_tol·|k|`` of ``±q`` (the texture has its own component there: a lattice
    commensurate with the stride folds onto itself). Each image's excess share within ``tol`` of the
    folded positions is taken less its ring control: the median of the same sum at the positions rotated
    by each of ``control_deg`` (degrees; :data:`CONTROL_DEG`), the broad power the image holds at those
    frequency radii in any direction (an antialiased twin's tile colours, light and furniture; its excess
    over the geometric mean is positive on average, so the tolerance's hundreds of bins summed it into a
    false gain — a twin of a plain strided hex wall read 0.14 without the control, 0.03 with it;
    thirteenth sitting).

    Returns a :class:`RefFold` of ``(N,)`` tensors: ``used`` the reference's share of AC power in the used
    sources (0 where none); ``gain`` = (the output's excess share within ``tol`` of the folded positions −
    the reference's own excess share there, each less its ring control, floored at 0) / ``used``, NaN
    where no source is used: shares
    of each image's own AC power (contrast-free, but an antialiased output whose fine texture was most of
    its variance reads its faint fold large); ``power``: the same in variance units, the output's fold
    against the reference's sources (``out_pixels``, ``ref_pixels``: the sums of the squared window
    weights of the two spectra, ``(N,)`` and one number; NaN without them): contrast-bound (lighting
    scales it), but an antialiased output's fold is faint whatever its variance. Generated
    stride-then-upsample walls read ``gain`` 0.57–1.7 fronto-parallel and 0.03–0.27 at an angle (the fold
    drifts across the frame and out of the window; 0.14–0.80 on the central half), antialiased twins of
    a fine reference ≤ 0.058 in gain, the smaller of gain and power ≤ 0.057 (seeds 31–33; docs/tiling.md
    §6).

    >>> import torch
    >>> from trackdiag.functional.spectral import prepare, spectrum
    >>> yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    >>> tex = torch.cos(2 * math.pi * (xx / 2.6 + yy / 7.0))[None]  # fine: 0.385 cycles/px along x
    >>> r = spectrum(prepare(tex)[0])
    >>> strided = tex[:, ::2, ::2].repeat_interleave(2, 1).repeat_interleave(2, 2)  # stride 2, then ×2
    >>> g_fold = ref_fold_gain(spectrum(prepare(strided)[0]), r).gain
    >>> g_same = ref_fold_gain(r, r).gain  # the texture itself: nothing at the folded positions
    >>> bool(g_fold > 0.3), float(g_same)
    (True, 0.0)
    """
    if stride < 2 or not 0 < rel_power <= 1 or n_peaks < 1:
        raise ValueError("need stride >= 2, 0 < rel_power <= 1, n_peaks >= 1")
    n = out.power.shape[0]
    dev, dt = out.power.device, out.power.dtype
    ref = Spectrum(*(t.to(device=dev, dtype=dt) for t in ref))
    sr = ref.side
    rpk_n, rshare_n, rtot = peak_excess(ref, gain=gain, reach=reach)
    assert rpk_n is not None
    rpk, rshare = rpk_n[0], rshare_n[0]
    fy, fx = ref.ky / sr, ref.kx / sr
    nyq = 0.5 / stride + 2.0 / sr
    cand = rpk & (ref.radius >= 3)
    strongest = (rshare * cand).amax()
    w = rshare * (cand & ((fy.abs() > nyq) | (fx.abs() > nyq)))
    w = w * (w >= rel_power * strongest)
    vals, idx = torch.topk(w.reshape(-1), min(n_peaks, w.numel()))
    k = torch.stack([fy.reshape(-1)[idx], fx.reshape(-1)[idx]], dim=-1)  # K×2 cycles/px
    q = k - torch.round(k * stride) / stride
    tol = tol_cycles + rel_tol * k.norm(dim=-1)
    use = (vals > 0) & (q.norm(dim=-1) >= min_fold_cycles)
    # no source whose folded position the texture itself occupies (a prominent peak of the reference with
    # at least ``own_frac`` of the source's excess)
    sel = (rpk & (ref.radius >= 2)).reshape(-1)  # every bin (a masked sum: no host synchronisation)
    pk_f = torch.stack([fy.reshape(-1), fx.reshape(-1)], dim=-1)  # B×2
    strong = sel[None] & (rshare.reshape(-1)[None] >= own_frac * vals[:, None])  # K×B
    for sg in (1.0, -1.0):
        dy = torch.remainder(pk_f[None, :, 0] - sg * q[:, None, 0] + 0.5, 1.0) - 0.5
        d2 = dy.square() + (pk_f[None, :, 1] - sg * q[:, None, 1]).square()
        use &= ~((d2 <= tol[:, None].square()) & strong).any(dim=1)
    used = (vals * use).sum()
    _, oshare, otot = peak_excess(out, gain=gain, reach=reach, peaks=False)
    max_tol = tol_cycles + rel_tol * math.sqrt(0.5)  # |k| ≤ the Nyquist corner's √2/2 cycles/px
    # each image's excess at the folded positions less its excess there in other directions (the ring
    # control: the broad power an image holds at those radii — tile colours, light, furniture — whatever
    # the direction, which the geometric-mean excess counts within the tolerance as well)
    f_at, f_ctrl = _ring_control(out, oshare, q, tol, use, max_tol=max_tol, angles=control_deg)
    o_at, o_ctrl = _ring_control(ref, rshare_n, q, tol, use, max_tol=max_tol, angles=control_deg)
    fold, own = f_at - f_ctrl, (o_at - o_ctrl)[0]
    tiny = torch.finfo(dt).tiny
    g_out = (fold - own).clamp_min(0.0) / used.clamp_min(tiny)
    nan = torch.full((n,), float("nan"), device=dev, dtype=dt)
    power = nan
    if out_pixels is not None and ref_pixels is not None:  # the output's AC variance over the reference's
        var_o = otot / torch.as_tensor(out_pixels, device=dev, dtype=dt).clamp_min(1.0)
        var_r = rtot / torch.as_tensor(ref_pixels, device=dev, dtype=dt).clamp_min(1.0)
        p_out = (fold * var_o / var_r.clamp_min(tiny) - own).clamp_min(0.0) / used.clamp_min(tiny)
        power = torch.where(used > 0, p_out, nan)
    return RefFold(torch.where(used > 0, g_out, nan), power, used.expand(n).clone())
