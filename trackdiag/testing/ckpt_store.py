"""Checkpoint stores with known truth, filled by trackdiag itself, for compare_ckpts tests.

Each simulated run "trains" on crops of scikit-image's brick photograph (shipped with the package, no
download): the output of checkpoint ``step`` is the crop blurred by a Gaussian whose σ falls from
``BLUR_START`` to ``BLUR_END`` px as training goes on (blurry → sharp). From its ``onset`` step on, a run
may carry an artifact:

* ``checkerboard``: the gain pattern of a real ``ConvTranspose2d(kernel_size=3, stride=2)`` (uneven kernel
  overlap: even and odd output pixels get different numbers of taps) multiplies the output;
* ``doubled``: a zone (the left half) repeats at twice the period: it is the ×2 enlargement of a quarter-size
  crop of the texture.

:func:`fill_run` logs one run through ``trackdiag.init`` / ``log`` / ``finish`` with the tiling and pixel
analyzers, the reference patch (a sharp crop elsewhere in the photo) and the sharp crop as the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["brick_crops", "blur", "checkerboard_gain", "doubled_zone", "output_at", "fill_run",
           "BLUR_START", "BLUR_END"]

BLUR_START, BLUR_END = 3.0, 0.4


def brick_crops(n: int, size: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` crops ``n×3×size×size`` in [0, 1] from the brick photo, and a reference crop ``1×3×size×size``
    from a part of the photo no crop uses (the bottom rows)."""
    from skimage import data

    img = torch.from_numpy(data.brick()).float() / 255.0  # 512×512, grey
    g = torch.Generator().manual_seed(seed)
    h = img.shape[0] - size - 8
    top = torch.randint(0, h // 2, (n,), generator=g)
    left = torch.randint(0, img.shape[1] - size, (n,), generator=g)
    crops = torch.stack([img[t:t + size, l_:l_ + size] for t, l_ in zip(top.tolist(), left.tolist(),
                                                                        strict=True)])
    ref = img[-size:, :size][None]
    return crops[:, None].repeat(1, 3, 1, 1), ref[:, None].repeat(1, 3, 1, 1)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` ``B×C×H×W`` (reflect padding); σ in px."""
    if sigma <= 0.05:
        return x
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def checkerboard_gain(size: int) -> torch.Tensor:
    """``1×1×size×size``: the output of a ``ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)``
    with an all-ones kernel on an all-ones input, divided by its mean — the uneven-overlap grid."""
    conv = torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        out = conv(torch.ones(1, 1, size // 2, size // 2))
    return out / out.mean()


def doubled_zone(sharp: torch.Tensor) -> torch.Tensor:
    """``sharp`` ``B×C×H×W`` with its left half replaced by the ×2 enlargement of its top-left quarter:
    the texture there repeats at twice the period."""
    b, c, h, w = sharp.shape
    big = F.interpolate(sharp[..., : h // 2, : w // 4], size=(h, w // 2), mode="bilinear",
                        align_corners=False)
    out = sharp.clone()
    out[..., :, : w // 2] = big
    return out


def output_at(sharp: torch.Tensor, step: int, *, steps: int, artifact: Optional[str], onset: int,
              strength: float = 0.25) -> torch.Tensor:
    """The simulated output at ``step`` of a run of ``steps`` steps (see the module doc), in [0, 1]."""
    sigma = BLUR_END + (BLUR_START - BLUR_END) * math.exp(-4.0 * step / steps)
    src = sharp
    if artifact == "doubled" and step >= onset:
        src = doubled_zone(sharp)
    out = blur(src, sigma)
    if artifact == "checkerboard" and step >= onset:
        gain = checkerboard_gain(sharp.shape[-1])
        out = out * (1.0 + strength * (gain - 1.0))
    return out.clamp(0.0, 1.0)


def fill_run(*, tracking_uri: str, experiment: str, run_name: str, artifact: Optional[str], onset: int,
             steps: int, every: int, n: int = 2, size: int = 128, seed: int = 0,
             out_dir: str = "", overrides: Sequence[str] = ()) -> str:
    """Log one simulated run to MLflow through trackdiag; returns its run id."""
    import trackdiag

    sharp, ref = brick_crops(n, size, seed=seed)
    ov = ["analyzer=[tiling,pixel]", f"analyzer.tiling.schedule.every={every}",
          "analyzer.tiling.figures_every=0",
          f"analyzer.pixel.schedule.every={every}", "analyzer.pixel.figures_every=0", *overrides]
    session = trackdiag.init(overrides=ov, backend="mlflow", tracking_uri=tracking_uri, experiment=experiment,
                             run_name=run_name, **({"out_dir": out_dir} if out_dir else {}))
    with session:
        for step in range(0, steps + 1, every):
            pred = output_at(sharp, step, steps=steps, artifact=artifact, onset=onset)
            session.log(step, pred, ref=ref, target=sharp)
    return str(getattr(session.backends[0], "run_id", ""))
