"""The VAE alone: encode→decode constant colours, the reference texture and a few targets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..core.checks import check_image_batch
from ..errors import ShapeError
from .scores import artifact_scores
from .types import Decode, Encode

__all__ = ["VaeProbe", "probe_vae", "constant_colours", "flat_periodicity", "DEFAULT_COLOURS", "FLAT_Z"]

#: A flat-colour decode is periodic when its stride-k pattern stands this many standard errors above its
#: non-periodic rest (the pattern is a mean over blocks; the rest's spread over their count is its error).
FLAT_Z = 5.0

#: Wall-like flat colours (white plaster, grey concrete, terracotta, dark slate, mid grey).
DEFAULT_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.92, 0.91, 0.88),
    (0.55, 0.55, 0.55),
    (0.72, 0.42, 0.30),
    (0.20, 0.22, 0.25),
    (0.5, 0.5, 0.5),
)


def constant_colours(colours: Sequence[Sequence[float]], size: int) -> torch.Tensor:
    """``len(colours)×3×size×size`` flat images."""
    c = torch.tensor([list(map(float, col)) for col in colours], dtype=torch.float32)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ShapeError(f"colours must be RGB triples; got shape {tuple(c.shape)}")
    return c[:, :, None, None].expand(-1, -1, size, size).contiguous()


@dataclass
class VaeProbe:
    """What the VAE does by itself.

    Attributes:
        constant: scores of the decoded constant colours (any structure there comes from the VAE).
        inputs / outputs: scores of each probe set (``"reference"``, ``"targets"``) before and after the VAE.
        excess: ``outputs − inputs`` per set and key: what the VAE added.
        psnr_db: reconstruction PSNR per set (constant colours included).
    """

    constant: dict[str, float]
    inputs: dict[str, dict[str, float]] = field(default_factory=dict)
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    excess: dict[str, dict[str, float]] = field(default_factory=dict)
    psnr_db: dict[str, float] = field(default_factory=dict)

    def added(self, key: str) -> float:
        """What the VAE adds to ``key``: the largest of the constant-colour score (content-free) and its
        excesses over the reference and targets. On flat colours whose decode is periodic the grid scores
        take no noise floor (:func:`flat_periodicity`): a 5 % transposed-conv imbalance scores grid_s8
        0.0083 there (0.0035 with the floor, 0.0021 over the targets; the tiling warn limit is 0.004)."""
        vals = [self.constant.get(key, float("nan"))]
        vals += [e[key] for e in self.excess.values() if key in e]
        vals = [v for v in vals if not math.isnan(v)]
        return max(vals) if vals else float("nan")


def flat_periodicity(images: torch.Tensor, *, stride: int = 8, margin: int = 1) -> tuple[float, float]:
    """``(amplitude, standard error)`` of the stride-``stride`` periodic pattern of decoded flat colours.

    ``images``: ``B×C×H×W``. Per image, the luminance's blocks of ``stride`` px (``margin`` blocks at each
    border left out) are averaged into a ``stride×stride`` pattern; the amplitude is its RMS about its mean,
    the error the RMS of what the pattern does not explain over √(blocks). Returns the largest amplitude
    over the images and that image's error (NaN when the images are smaller than 2 + 2·margin blocks)."""
    g = images.float().mean(dim=1)
    b, h, w = g.shape
    k = int(stride)
    nb_y, nb_x = h // k - 2 * margin, w // k - 2 * margin
    if nb_y < 2 or nb_x < 2:
        return float("nan"), float("nan")
    y0, x0 = margin * k, margin * k
    blocks = g[:, y0:y0 + nb_y * k, x0:x0 + nb_x * k].reshape(b, nb_y, k, nb_x, k)
    pattern = blocks.mean(dim=(1, 3))  # b×k×k
    amp = (pattern - pattern.mean(dim=(1, 2), keepdim=True)).square().mean(dim=(1, 2)).sqrt()
    rest = (blocks - pattern[:, None, :, None, :]).square().mean(dim=(1, 2, 3, 4)).sqrt()
    se = rest / math.sqrt(nb_y * nb_x)
    i = int(amp.argmax())
    return float(amp[i]), float(se[i])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.float() - b.float()).square().mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


@torch.no_grad()
def probe_vae(
    encode: Encode,
    decode: Decode,
    *,
    size: int = 128,
    colours: Sequence[Sequence[float]] = DEFAULT_COLOURS,
    reference: Optional[torch.Tensor] = None,
    targets: Optional[torch.Tensor] = None,
    mask: Optional[torch.Tensor] = None,
) -> VaeProbe:
    """Encode→decode flat colours (``size``×``size``), the reference (``3×h×w`` / ``1×3×h×w``) and targets.

    ``mask`` (targets' wall mask) adds the seam score on the targets. Scores: :func:`artifact_scores`.
    """
    flat = constant_colours(colours, size)
    rec = decode(encode(flat))
    check_image_batch(rec, name="decode(encode(colours))")
    # flat colours carry no content or noise: when their decode is periodic on the 8-px lattice, every
    # jump on it is the VAE's own and the grid score takes no noise floor (whose standard errors would be
    # the lattice's own other phases: a 5 % transposed-conv imbalance read 0.0035, under the limit)
    amp, se = flat_periodicity(rec)
    periodic = math.isfinite(amp) and amp > FLAT_Z * se and amp > 0.0
    probe = VaeProbe(constant=artifact_scores(rec, checkerboard=False, noise_free=periodic))
    probe.psnr_db["constant"] = _psnr(rec, flat)
    sets: dict[str, tuple[torch.Tensor, Optional[torch.Tensor]]] = {}
    if reference is not None:
        ref = reference if reference.ndim == 4 else reference[None]
        sets["reference"] = (check_image_batch(ref, name="reference"), None)
    if targets is not None:
        sets["targets"] = (check_image_batch(targets, name="targets"), mask)
    for name, (x, m) in sets.items():
        y = decode(encode(x))
        if y.shape != x.shape:
            raise ShapeError(
                f"decode(encode({name})) has shape {tuple(y.shape)}, expected {tuple(x.shape)}; "
                "crop the inputs to a multiple of the VAE's downsampling factor."
            )
        si, so = artifact_scores(x, m, checkerboard=False), artifact_scores(y, m, checkerboard=False)
        probe.inputs[name], probe.outputs[name] = si, so
        probe.excess[name] = {k: so[k] - si[k] for k in so}
        probe.psnr_db[name] = _psnr(y, x)
    return probe


def summary(probe: VaeProbe) -> Mapping[str, float]:
    """Flat ``vae/<set>/<key>`` numbers for a tracker."""
    out = {f"vae/constant/{k}": v for k, v in probe.constant.items()}
    for name, e in probe.excess.items():
        out.update({f"vae/{name}/excess_{k}": v for k, v in e.items()})
    out.update({f"vae/{name}/psnr_db": v for name, v in probe.psnr_db.items()})
    return out
