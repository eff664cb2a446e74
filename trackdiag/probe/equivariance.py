"""Model-level shift equivariance EQ-T of an image-to-image callable (StyleGAN3's definition).

Karras et al. 2021 ("Alias-Free GAN", sec. 3 / appendix E) define translation equivariance as a PSNR between
"transform, then apply the model" and "apply the model, then transform":

    EQ-T = 10 · log10( I_max² / E_{x, t}[ mean over valid pixels of (g(t[x]) − t[g(x)])² ] )

with ``t`` a translation (whole or sub-pixel), ``I_max`` the dynamic range (1 for images in [0, 1]) and the
mean taken only over pixels that are valid in both images. Here ``g`` is the user's ``edit`` and we compare in
the original frame, ``t⁻¹[g(t[x])]`` against ``g(x)``, which is the same quantity for a translation. Sub-pixel
translations are ideal (band-limited) shifts by the Fourier shift theorem; the pixels near the wrap-around
seam (the shift plus ``border`` px, where the model saw wrapped content) and outside ``mask`` are not valid.
High EQ-T (≥ ~40 dB) means the model does not pin content to an absolute pixel lattice; a VAE or patchify
grid shows as low EQ-T for shifts off the lattice and high EQ-T for shifts by a multiple of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..core.checks import check_image_batch, normalize_mask
from ..errors import ShapeError
from .types import Edit

__all__ = ["translate", "valid_after_shift", "masked_psnr", "EqResult", "eq_t", "DEFAULT_SHIFTS"]

#: Whole-pixel, sub-pixel and lattice (multiple of 8) shifts, ``(dy, dx)`` in px.
DEFAULT_SHIFTS: tuple[tuple[float, float], ...] = (
    (0.0, 1.0),
    (1.0, 0.0),
    (3.0, 5.0),
    (0.0, 0.5),
    (0.5, 0.5),
    (0.25, 0.75),
    (8.0, 0.0),
    (0.0, 8.0),
    (8.0, 16.0),
)


def translate(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Translate ``x`` (``B×C×H×W``) by ``(dy, dx)`` px, periodically: whole shifts roll, others are ideal
    Fourier shifts (``y[n] = x[n − d]``)."""
    if float(dy).is_integer() and float(dx).is_integer():
        return torch.roll(x, shifts=(int(dy), int(dx)), dims=(-2, -1))
    h, w = x.shape[-2:]
    ky = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, dtype=torch.float64)[None, :]
    phase = torch.exp(-2j * math.pi * (ky * dy + kx * dx))
    out = torch.fft.ifft2(torch.fft.fft2(x.double()) * phase.to(x.device)).real
    return out.to(x.dtype)


def valid_after_shift(h: int, w: int, dy: float, dx: float, *, border: int) -> torch.Tensor:
    """``H×W`` bool: pixels of the original frame that never saw wrapped content (see the module doc)."""
    v = torch.ones(h, w, dtype=torch.bool)
    for size, d, axis in ((h, dy, 0), (w, dx, 1)):
        n = int(math.ceil(abs(d)))
        if n == 0 and d == 0:
            continue
        lo, hi = (border, size - n - border) if d > 0 else (n + border, size - border)
        keep = torch.zeros(size, dtype=torch.bool)
        if hi > lo:
            keep[lo:hi] = True
        v &= keep[:, None] if axis == 0 else keep[None, :]
    return v


def masked_psnr(
    a: torch.Tensor, b: torch.Tensor, valid: torch.Tensor, *, peak: float = 1.0
) -> tuple[float, float]:
    """``(psnr_db, mse)`` over ``valid`` (broadcast to ``B×C×H×W``). Inf when equal, NaN when nothing
    is valid."""
    v = valid.expand_as(a).to(a.dtype)
    n = float(v.sum())
    if n == 0:
        return float("nan"), float("nan")
    mse = float(((a.double() - b.double()).square() * v).sum()) / n
    return (float("inf") if mse == 0 else 10.0 * math.log10(peak**2 / mse)), mse


@dataclass
class EqResult:
    """EQ-T per shift and aggregated by kind: ``"whole"``, ``"subpixel"`` and ``"lattice"`` (multiples of
    ``lattice`` px, where a grid that the model pins to its lattice does not hurt)."""

    per_shift: dict[tuple[float, float], float]
    by_kind: dict[str, float] = field(default_factory=dict)
    lattice: int = 8

    def metrics(self) -> dict[str, float]:
        return {f"eq_t_{k}_db": v for k, v in self.by_kind.items()}


def _kind(dy: float, dx: float, lattice: int) -> str:
    if not (float(dy).is_integer() and float(dx).is_integer()):
        return "subpixel"
    return "lattice" if int(dy) % lattice == 0 and int(dx) % lattice == 0 else "whole"


@torch.no_grad()
def eq_t(
    edit: Edit,
    images: torch.Tensor,
    *,
    shifts: Sequence[tuple[float, float]] = DEFAULT_SHIFTS,
    mask: Optional[torch.Tensor] = None,
    border: int = 8,
    lattice: int = 8,
) -> EqResult:
    """EQ-T in dB of ``edit`` on ``images`` (``B×3×H×W`` in [0, 1]) for each shift, and per kind of shift.

    Per kind, the MSEs of its shifts are averaged first (the expectation over ``t`` of the definition).
    """
    x = check_image_batch(images, name="images")
    b, _, h, w = x.shape
    ref = edit(x)
    if ref.shape != x.shape:
        raise ShapeError(f"edit(images) must keep the shape {tuple(x.shape)}; got {tuple(ref.shape)}")
    wall = (
        torch.ones(b, 1, h, w, dtype=torch.bool)
        if mask is None
        else normalize_mask(mask, batch=b, height=h, width=w)
    )
    per_shift: dict[tuple[float, float], float] = {}
    mses: dict[str, list[float]] = {}
    for dy, dx in shifts:
        out = translate(edit(translate(x, dy, dx)), -dy, -dx)
        valid = valid_after_shift(h, w, dy, dx, border=border)[None, None] & wall.to(torch.bool)
        psnr, mse = masked_psnr(out, ref, valid)
        per_shift[(float(dy), float(dx))] = psnr
        if not math.isnan(mse):
            mses.setdefault(_kind(dy, dx, lattice), []).append(mse)
    by_kind = {
        k: (float("inf") if sum(v) == 0 else 10.0 * math.log10(len(v) / sum(v))) for k, v in mses.items()
    }
    return EqResult(per_shift=per_shift, by_kind=by_kind, lattice=lattice)
