"""The one adapter between the probes / fingerprint and the artifact estimators.

:func:`artifact_scores` returns the grid, edge and seam scores the probes compare between stages, computed by
the **tiling diagnosis's own estimators**, so a probe and the diagnosis of the same image agree (same
numbers, same limits: :data:`trackdiag.probe.attribute.LIMITS` are the tiling analyzer's):

* ``grid_s<k>``: :func:`trackdiag.functional.grid.grid_excess` (median extra jump on the k-px lines over
  the block's median jump, image units, averaged over the two directions; NaN with fewer than 32 valid
  blocks), on the wall only when a mask is given, over the blocks of all the batch's images together;
* ``edge_<side>``: :func:`trackdiag.functional.seams.edge_scores` (robust z of a step 2–13 px in from the
  side that runs the whole side; NaN for images under 63 px);
* ``mask_seam_score``: :func:`trackdiag.functional.seams.mask_seam_parts` (relative offset of the band just
  inside the mask contour), counted only where it is consistent along the contour (``mask_seam_t`` at
  least the tiling rule's ``SEAM_T_WARN``), as the tiling rule requires; ``mask_seam_t`` is returned too.

Images are reduced to luminance (channel mean) and scaled to [0, 1] by the batch's range when they lie
outside it. The edge and seam scores are the mean over the batch's images (NaN ignored).

(Before issue 17 this module had its own stand-in estimators — lattice-line jump shares, border/interior
jump-energy ratios — on other scales; they are gone, so there is one grid, edge and seam estimator.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch

from ..core.checks import check_image_batch, normalize_mask

__all__ = ["artifact_scores", "GRID_STRIDES"]

#: The lattice strides scored by default (VAE 8×, patchify 16×, stacked 32×).
GRID_STRIDES: tuple[int, ...] = (8, 16, 32)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """``B×C×H×W`` → ``B×H×W`` (mean over channels; non-finite values become 0)."""
    return torch.nan_to_num(images.float().mean(dim=1), nan=0.0, posinf=0.0, neginf=0.0)


def artifact_scores(
    images: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    *,
    strides: Sequence[int] = GRID_STRIDES,
    strip: int = 13,
    margin: int = 4,
    checkerboard: bool = True,
    noise_free: bool = False,
) -> dict[str, float]:
    """Grid, edge, seam (and checkerboard) scores of a batch, averaged over its images.

    Args:
        images: ``B×C×H×W`` (any range; the scores are ratios of jump energies).
        mask: optional wall mask (``B×1×H×W``, ``1×H×W`` or ``H×W``, > 0.5 = wall): the grid is measured on
            the wall only and ``mask_seam_score`` is added.
        strides: lattice strides for ``grid_s<k>``.
        strip: how far in from each side (px) a step counts as an edge stripe (``edge_<side>``).
        margin: pixels at each border left out of the grid scores.
        checkerboard: also return the tiling analyzer's ``checkerboard_s2``.
        noise_free: the images carry no content or noise of their own (decoded flat colours whose
            structure is periodic, :func:`trackdiag.probe.vae.flat_periodicity`): the grid scores take no
            noise floor (its standard errors would be the lattice's own other phases).

    Returns:
        ``{"grid_s8": …, "grid_s16": …, "edge_left": …, …, ["mask_seam_score"], ["checkerboard_s2"]}``.
    """
    from ..analyzers.tiling_limits import SEAM_T_WARN
    from ..functional.grid import grid_excess
    from ..functional.seams import SIDES, mask_seam_parts
    from ..functional.seams import edge_scores as strip_scores

    images = check_image_batch(images, name="images").detach()
    b, _, h, w = images.shape
    gray = _gray(images)
    lo, hi = float(gray.min()), float(gray.max())
    x = gray if (lo >= 0.0 and hi <= 1.0) else ((gray - lo) / (hi - lo) if hi > lo else gray * 0)
    finite = torch.isfinite(images.float()).all(dim=1).to(x.dtype)
    wall = None
    if mask is not None:
        wall = normalize_mask(mask, batch=b, height=h, width=w).to(images.device)[:, 0]
    valid = finite if wall is None else finite * wall.to(x.dtype)
    if margin > 0:  # the borders belong to the edge scores
        keep = torch.zeros_like(valid)
        keep[:, margin : h - margin, margin : w - margin] = 1.0
        valid = valid * keep

    def mean(t: torch.Tensor) -> float:
        t = t.double()
        return float(t.nanmean()) if bool(torch.isfinite(t).any()) else float("nan")

    out: dict[str, float] = {}
    # the batch's images side by side (the column at each join invalid): the grid estimator's median over
    # the blocks of all images, so small probe images (48-64 px, too few blocks alone) are scored too
    side = valid.clone()
    side[:, :, 0] = 0.0
    side[:, :, -1] = 0.0
    grid = grid_excess(x.permute(1, 0, 2).reshape(1, h, b * w), side.permute(1, 0, 2).reshape(1, h, b * w),
                       strides=tuple(int(k) for k in strides), **({"noise_z": 0.0} if noise_free else {}))
    for k in strides:
        out[f"grid_s{k}"] = mean(grid[f"grid_s{k}"])
    edges = strip_scores(x, finite, strip=int(strip))
    out.update({f"edge_{sd}": mean(edges[f"edge_{sd}"]) for sd in SIDES})
    if wall is not None:
        parts = mask_seam_parts(x, finite * wall.to(x.dtype))
        t = parts["mask_seam_t"]
        score = torch.where(t >= SEAM_T_WARN, parts["mask_seam_score"], torch.zeros_like(t))
        score = torch.where(torch.isfinite(t), score, t)
        out["mask_seam_score"] = mean(score)
        out["mask_seam_t"] = mean(t)
    if checkerboard:
        try:
            from ..analyzers.tiling import tiling_metrics

            unit = (images - lo) / (hi - lo) if hi > lo else images * 0
            tm = tiling_metrics(unit.clamp(0, 1), mask=mask, maps=False)
            if "checkerboard_s2" in tm:
                out["checkerboard_s2"] = float(tm["checkerboard_s2"].float().nanmean())
        except Exception:  # the tiling analyzer may refuse tiny or flat images; the other scores stand
            out["checkerboard_s2"] = float("nan")
    return out
