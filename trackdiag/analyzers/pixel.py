"""Pixel-space diagnostics: where does an output differ from its input/target, and how?

Seed section 3.3: render the input and the result, show the difference as a heat map, and find anomalies in
2-D with a Sobel filter plus connected components.

The math is a set of pure functions on batched tensors (any device, float32):

* :func:`difference_map`: ``|pred - target|`` averaged over channels, ``B×H×W``;
* :func:`sobel` / :func:`gradient_difference`: the Sobel gradient of ``pred - target`` (the Sobel filter is
  linear, so this *is* the difference of the two images' Sobel gradients), ``B×H×W`` magnitude;
* :func:`anomaly_score`: ``|Δ| + sobel_weight · |∇Δ|``, optionally box-smoothed; with a mask the Sobel term
  is ignored within one pixel of the mask border (:func:`mask_border`), where an intended edit ends;
* :func:`anomaly_threshold`: a robust per-sample threshold ``max(min_score, median + k · 1.4826 · MAD)``
  measured inside the mask when there is one (where differences are expected), else over the whole image;
* :func:`mask_energy`: the difference energy ``Δ²`` inside and outside the mask, and the share outside;
* :func:`anomaly_grid`: the thresholded map pooled onto a bounded grid (count, score sum, score peak per
  cell), the only large thing that leaves the device;
* :func:`label_components` (CPU, numpy + ``scipy.ndimage.label``): connected components with bounding box,
  area, mean and peak score, and whether each is aligned with the rows or the columns;
* :func:`aligned_energy_fractions`: the share of anomaly energy in row- and column-aligned components.

:class:`PixelAnalyzer` wraps them: ``compute`` on the device, ``summarize`` labels components on the CPU,
``render`` draws the heat map and the anomaly boxes over the image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..core.checks import check_image_batch, check_same_hw, normalize_mask
from ..errors import InputValueError, ShapeError
from ..metricspec import MetricSpec, register_metrics
from ..plots.figuredata import PixelGeometry
from ..verdicts import Verdict, register_rules
from .base import MAP_PREFIX, Analyzer, AnalyzerParams, Result, StepInputs, reduce_per_sample

__all__ = [
    "PixelParams", "PixelAnalyzer", "Component", "match_channels", "difference_map", "sobel",
    "gradient_difference", "anomaly_score", "anomaly_threshold", "mask_energy", "mask_border", "anomaly_grid",
    "label_components", "component_axis", "aligned_energy_fractions", "pixel_maps", "band_components",
]

#: Sobel kernels normalised by 1/8, so a step of height ``c`` gives a gradient of ``c/2`` on both sides.
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


# ------------------------------------------------------------------------------------------------------
# Pure tensor math
# ------------------------------------------------------------------------------------------------------
def match_channels(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``pred`` and ``target`` (``B×C×H×W``, same B, H, W) and broadcast a 1-channel one to the
    other.

    Raises:
        ShapeError: different batch/size, or channel counts that are neither equal nor 1.
    """
    pred = check_image_batch(pred, name="pred")
    target = check_image_batch(target, name="target").to(device=pred.device, dtype=pred.dtype)
    check_same_hw(pred, target, names=("pred", "target"))
    cp, ct = pred.shape[1], target.shape[1]
    if cp != ct:
        if ct == 1:
            target = target.expand(-1, cp, -1, -1)
        elif cp == 1:
            pred = pred.expand(-1, ct, -1, -1)
        else:
            raise ShapeError(f"target must have 1 or {cp} channels like pred; got {tuple(target.shape)}.")
    return pred, target


def difference_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over channels.

    Args:
        pred, target: ``B×C×H×W`` (see :func:`match_channels`).

    Returns:
        ``B×H×W`` float tensor, ``|pred - target|`` averaged over C.

    >>> difference_map(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)).shape
    torch.Size([1, 2, 2])
    """
    pred, target = match_channels(pred, target)
    return (pred - target).abs().mean(dim=1)


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradients with replicate padding.

    Args:
        x: ``B×C×H×W``.

    Returns:
        ``B×C×2×H×W``: index 0 of dim 2 is d/dx (along columns), index 1 is d/dy (along rows), each
        normalised by 1/8 (a unit step gives 0.5 on the two pixels that straddle it).
    """
    if x.ndim != 4:
        raise ShapeError(f"sobel expects B×C×H×W; got {tuple(x.shape)}.")
    b, c, h, w = x.shape
    kx = _SOBEL_X.to(device=x.device, dtype=x.dtype)
    weight = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # (2C)×1×3×3
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, weight, groups=c).view(b, c, 2, h, w)


def gradient_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Magnitude of the difference of the Sobel gradients of ``pred`` and ``target``.

    Because the Sobel filter is linear this equals the Sobel gradient of ``pred - target``; channels are
    combined by the root mean square.

    Returns:
        ``B×H×W``: ``sqrt(mean_c(gx_c² + gy_c²))``.
    """
    pred, target = match_channels(pred, target)
    g = sobel(pred - target)
    return g.square().sum(dim=2).mean(dim=1).sqrt()


def anomaly_score(diff: torch.Tensor, grad_diff: torch.Tensor, *, sobel_weight: float = 1.0,
                  smooth_px: int = 1) -> torch.Tensor:
    """Per-pixel anomaly score ``diff + sobel_weight · grad_diff``, box-smoothed over ``smooth_px`` when > 1.

    Args:
        diff, grad_diff: ``B×H×W`` (:func:`difference_map`, :func:`gradient_difference`).

    Returns:
        ``B×H×W``.
    """
    if diff.shape != grad_diff.shape or diff.ndim != 3:
        raise ShapeError(f"diff and grad_diff must both be B×H×W; got {tuple(diff.shape)} and "
                         f"{tuple(grad_diff.shape)}.")
    score = diff + float(sobel_weight) * grad_diff
    if smooth_px > 1:
        k = int(smooth_px)
        score = F.avg_pool2d(score[:, None], k, stride=1, padding=k // 2, count_include_pad=False)[:, 0]
        score = score[..., : diff.shape[-2], : diff.shape[-1]]
    return score


def anomaly_threshold(score: torch.Tensor, *, region: Optional[torch.Tensor] = None, sigma: float = 4.0,
                      min_score: float = 0.05, min_region_px: int = 64) -> torch.Tensor:
    """Robust per-sample threshold ``max(min_score, median + sigma · 1.4826 · MAD)``.

    The statistics use at most ~64k pixels per image (every k-th row and column of larger images).

    Args:
        score: ``B×H×W``.
        region: optional ``B×H×W`` bool where the statistics are measured (the wall: differences are
            expected there, so anomalies are differences that stand out from the edit itself). Samples whose
            region has fewer than ``min_region_px`` pixels use the whole image.

    Returns:
        ``(B,)`` thresholds.
    """
    b = score.shape[0]
    # Median and MAD need no more than ~64k samples per image: take every k-th row and column beyond that.
    k = max(1, int(math.sqrt(score.shape[-2] * score.shape[-1] / 65536)))
    if k > 1:
        score = score[:, ::k, ::k]
        region = region[:, ::k, ::k] if region is not None else None
        min_region_px = max(1, min_region_px // (k * k))
    flat = score.reshape(b, -1)
    if region is not None:
        reg = region.reshape(b, -1)
        enough = reg.sum(dim=1, keepdim=True) >= min_region_px
        use = reg | ~enough
        flat = torch.where(use, flat, torch.full_like(flat, float("nan")))
        med = flat.nanmedian(dim=1).values
        mad = (flat - med[:, None]).abs().nanmedian(dim=1).values
    else:
        med = flat.median(dim=1).values
        mad = (flat - med[:, None]).abs().median(dim=1).values
    thr = med + float(sigma) * 1.4826 * mad
    return thr.clamp_min(float(min_score))


def mask_energy(diff_sq: torch.Tensor, mask: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Difference energy inside and outside the mask.

    Args:
        diff_sq: ``B×H×W`` squared difference (mean over channels of ``(pred - target)²``).
        mask: ``B×H×W`` bool (True = wall) or None.

    Returns:
        ``(B,)`` tensors: ``energy_in_mask`` and ``energy_out_mask`` (mean ``Δ²`` per pixel of each region,
        NaN where the region is empty or there is no mask) and ``energy_out_frac`` (share of the total
        energy that lies outside the mask: an edit that leaks outside the wall raises it; NaN without a
        mask or when the image is identical).
    """
    b = diff_sq.shape[0]
    flat = diff_sq.reshape(b, -1)
    nan = torch.full((b,), float("nan"), device=flat.device, dtype=flat.dtype)
    if mask is None:
        return {"energy_in_mask": nan, "energy_out_mask": nan, "energy_out_frac": nan.clone()}
    m = mask.reshape(b, -1).to(flat.dtype)
    n_in, n_out = m.sum(dim=1), (1 - m).sum(dim=1)
    e_in, e_out = (flat * m).sum(dim=1), (flat * (1 - m)).sum(dim=1)
    total = e_in + e_out
    return {
        "energy_in_mask": torch.where(n_in > 0, e_in / n_in.clamp_min(1), nan),
        "energy_out_mask": torch.where(n_out > 0, e_out / n_out.clamp_min(1), nan),
        "energy_out_frac": torch.where((total > 0) & (n_out > 0), e_out / total.clamp_min(1e-30), nan),
    }


def mask_border(mask: torch.Tensor) -> torch.Tensor:
    """Pixels within one pixel of the mask's border (on either side), where the edit ends on purpose.

    Args:
        mask: ``B×H×W`` bool.

    Returns:
        ``B×H×W`` bool. The Sobel term of the anomaly score is ignored there, since the difference image
        always steps at the border of an intended edit.
    """
    m = mask[:, None].float()
    both = F.max_pool2d(F.pad(torch.cat([m, -m], dim=1), (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (both[:, 0] != -both[:, 1])  # dilation != erosion


def grid_stride(height: int, width: int, max_side: int) -> int:
    """Smallest integer stride that brings ``max(height, width)`` to at most ``max_side`` cells."""
    return max(1, math.ceil(max(height, width) / max(1, int(max_side))))


def anomaly_grid(score: torch.Tensor, threshold: torch.Tensor, *, stride: int) -> torch.Tensor:
    """Pool the thresholded score onto a grid of ``stride × stride`` cells.

    Args:
        score: ``B×H×W``; threshold: ``(B,)``.

    Returns:
        ``B×3×h×w`` with ``h = ceil(H / stride)``: channel 0 the number of anomalous pixels in the cell,
        channel 1 the sum of their scores, channel 2 the peak score (0 where no pixel is anomalous).
        Connected components of ``channel 0 > 0`` are the anomalies (:func:`label_components`).
    """
    hot = score > threshold[:, None, None]
    vals = torch.where(hot, score, torch.zeros_like(score))
    stack = torch.stack([hot.to(score.dtype), vals], dim=1)
    if stride == 1:
        return torch.cat([stack, vals[:, None]], dim=1)
    h, w = score.shape[-2:]
    pad = (0, (-w) % stride, 0, (-h) % stride)
    stack = F.pad(stack, pad)
    sums = F.avg_pool2d(stack, stride) * float(stride * stride)
    peak = F.max_pool2d(F.pad(vals, pad)[:, None], stride)
    return torch.cat([sums, peak], dim=1)


def _resize_for_figure(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """``N×C×H×W`` → area-downsampled so that the longer side is at most ``max_side``."""
    h, w = x.shape[-2:]
    s = max(h, w) / max(1, max_side)
    if s <= 1:
        return x
    return F.interpolate(x, size=(max(1, round(h / s)), max(1, round(w / s))), mode="area")


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def pixel_maps(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None, *,
               sobel_weight: float = 1.0, smooth_px: int = 1, threshold_sigma: float = 4.0,
               min_score: float = 0.05, map_max_side: int = 128, component_samples: int = 8,
               heatmap_scale: float = 4.0, render_max_side: int = 256,
               target_is_input: bool = False) -> dict[str, torch.Tensor]:
    """Everything the pixel analyzer measures on the device, for a batch.

    Args:
        pred, target: ``B×C×H×W``.
        mask: ``B×1×H×W`` / ``H×W`` (values > 0.5 = wall) or None.

    Returns:
        Per-sample ``(B,)`` tensors ``diff_mae``, ``diff_rmse``, ``grad_diff_mean``, ``energy_in_mask``,
        ``energy_out_mask``, ``energy_out_frac``, ``anomaly_threshold``, ``anomaly_area_frac``; and figure
        maps
        (``map/`` keys, first samples only): ``map/anomaly_grid`` (``k×3×h×w``, :func:`anomaly_grid` of the
        first ``component_samples``), ``map/geometry`` (``[H, W, stride]``), ``map/image_in`` /
        ``map/image_out`` (sample 0, ``C×h×w`` uint8), ``map/heatmap`` (sample 0, ``clamp(|Δ|·heatmap_scale)``
        as uint8) and ``map/grad_heatmap`` (the same for the Sobel difference).
    """
    pred, target = match_channels(pred, target)
    if not pred.is_floating_point() or pred.dtype == torch.float64:
        pred, target = pred.float(), target.float()
    b, _, h, w = pred.shape
    m = None
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and tuple(mask.shape) == (b, 1, h, w):
        m = mask.to(pred.device)[:, 0]  # already normalised (StepInputs): no second finiteness pass
    elif mask is not None:
        m = normalize_mask(mask, batch=b, height=h, width=w).to(pred.device)[:, 0]
    delta = pred - target
    diff = delta.abs().mean(dim=1)
    diff_sq = delta.square().mean(dim=1)
    grad = sobel(delta).square().sum(dim=2).mean(dim=1).sqrt()
    grad_for_score = grad if m is None else grad * ~mask_border(m)
    extra: dict[str, torch.Tensor] = {}
    if target_is_input:
        # the target is the unedited input: leak in noise levels, defects against the texture's own lattice
        from ..functional.pixel_judge import judge_against_input

        judged = judge_against_input(pred, target, m)
        score, thr = judged.pop("score"), judged.pop("threshold")
        extra = judged
    else:
        score = anomaly_score(diff, grad_for_score, sobel_weight=sobel_weight, smooth_px=smooth_px)
        thr = anomaly_threshold(score, region=m, sigma=threshold_sigma, min_score=min_score)
    out: dict[str, torch.Tensor] = {
        "diff_mae": diff.mean(dim=(1, 2)),
        "diff_rmse": diff_sq.mean(dim=(1, 2)).sqrt(),
        "grad_diff_mean": grad.mean(dim=(1, 2)),
        **mask_energy(diff_sq, m),
        "anomaly_threshold": thr,
        "anomaly_area_frac": (score > thr[:, None, None]).float().mean(dim=(1, 2)),
    }
    for key in ("band_rows", "band_cols", "peak", "box_margin"):
        if key in extra:
            out[MAP_PREFIX + key] = extra.pop(key)
    out.update(extra)
    k = max(1, min(b, int(component_samples)))
    stride = grid_stride(h, w, map_max_side)
    out[MAP_PREFIX + "anomaly_grid"] = anomaly_grid(score[:k], thr[:k], stride=stride)
    out[MAP_PREFIX + "geometry"] = torch.tensor(list(PixelGeometry(height=h, width=w, stride=stride)),
                                                dtype=torch.int64, device=pred.device)
    small = _resize_for_figure(torch.cat([target[:1], pred[:1]]), render_max_side)
    out[MAP_PREFIX + "image_in"] = _to_u8(small[0])
    out[MAP_PREFIX + "image_out"] = _to_u8(small[1])
    heat = _resize_for_figure(torch.stack([diff[:1], grad[:1]], dim=1), render_max_side)[0]
    out[MAP_PREFIX + "heatmap"] = _to_u8(heat[0] * float(heatmap_scale))
    out[MAP_PREFIX + "grad_heatmap"] = _to_u8(heat[1] * float(heatmap_scale))
    return out


# ------------------------------------------------------------------------------------------------------
# Connected components (CPU)
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """One anomaly region, in full-resolution pixels (``x1``/``y1`` exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    area_px: float
    energy: float  # sum of the scores of its pixels
    mean_score: float
    peak_score: float
    axis: str  # "rows" (a stripe along the rows), "cols", "edge" (along the frame border) or "none"

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def component_axis(x0: int, y0: int, x1: int, y1: int, *, height: int, width: int,
                   aligned_aspect: float = 4.0, min_span: float = 0.4) -> str:
    """What a component's box ``[x0, x1) × [y0, y1)`` in a ``height×width`` frame is aligned with.

    ``"rows"`` (``"cols"``): at least ``aligned_aspect`` times wider than tall (taller than wide) *and*
    across at least ``min_span`` of the frame's width (height): a stripe runs across the wall, while the
    short streaks of a texture's own joints (an unsharp mortar line between two bricks) do not.
    ``"edge"``: elongated along the frame border it touches (the zero padding of a convolution: the last
    rows or columns of every output), not a stripe. ``"none"`` otherwise.
    """
    bw, bh = x1 - x0, y1 - y0
    if bw >= aligned_aspect * bh:
        if y0 <= 0 or y1 >= height:
            return "edge"
        return "rows" if bw >= min_span * width else "none"
    if bh >= aligned_aspect * bw:
        if x0 <= 0 or x1 >= width:
            return "edge"
        return "cols" if bh >= min_span * height else "none"
    return "none"


def label_components(grid: np.ndarray, *, stride: int, height: int, width: int, min_area_px: float = 16,
                     aligned_aspect: float = 4.0, min_span: float = 0.4, min_peak: float = 0.0,
                     margin: int = 0) -> list[Component]:
    """Connected components (8-connectivity) of one sample's anomaly grid.

    Args:
        grid: ``3×h×w`` from :func:`anomaly_grid` (count, score sum, score peak per cell).
        stride: the cell size in pixels; ``height``/``width``: the full image size (boxes are clipped to it).
        min_area_px: components with fewer anomalous pixels are dropped (salt noise).
        aligned_aspect: a component whose box is at least this many times wider than tall is aligned with
            the rows (``axis="rows"``); this many times taller than wide, with the columns (see
            :func:`component_axis` with ``min_span``: ``"edge"`` along the frame border, ``"none"`` when
            short).
        min_peak: components whose peak score is below this are dropped (hysteresis: the grid holds the
            pixels above a lower threshold).
        margin: px by which each box is shrunk on every side (the reach of a local window that spread the
            score beyond the anomaly), never below one cell; negative: grown by as much (a score that
            only rises where its whole window lies inside the anomaly).

    Returns:
        Components sorted by decreasing energy.
    """
    from scipy import ndimage

    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 3 or grid.shape[0] != 3:
        raise ShapeError(f"anomaly grid must be 3×h×w; got {grid.shape}.")
    count, total, peak = grid
    labels, n = ndimage.label(count > 0, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(count, labels, index)
    energies = ndimage.sum_labels(total, labels, index)
    peaks = ndimage.maximum(peak, labels, index)
    comps: list[Component] = []
    for sl, area, energy, pk in zip(ndimage.find_objects(labels), areas, energies, peaks, strict=True):
        if area < min_area_px or pk < min_peak:
            continue
        y0, y1 = sl[0].start * stride, min(sl[0].stop * stride, height)
        x0, x1 = sl[1].start * stride, min(sl[1].stop * stride, width)
        if margin > 0:
            my = max(0, min(int(margin), (y1 - y0 - stride) // 2))
            mx = max(0, min(int(margin), (x1 - x0 - stride) // 2))
            y0, y1, x0, x1 = y0 + my, y1 - my, x0 + mx, x1 - mx
        elif margin < 0:  # a score that needs its whole window inside the anomaly: grow by the reach
            y0, y1 = max(0, y0 + int(margin)), min(height, y1 - int(margin))
            x0, x1 = max(0, x0 + int(margin)), min(width, x1 - int(margin))
        axis = component_axis(x0, y0, x1, y1, height=height, width=width, aligned_aspect=aligned_aspect,
                              min_span=min_span)
        comps.append(Component(int(x0), int(y0), int(x1), int(y1), float(area), float(energy),
                               float(energy / area), float(pk), axis))
    comps.sort(key=lambda c: -c.energy)
    return comps


def band_components(z_rows: np.ndarray, z_cols: np.ndarray, limit: float, *, height: int, width: int,
                    ) -> list[Component]:
    """Bands of consecutive rows (columns) whose robust ``|z|`` is above ``limit``, as full-width
    (full-height) components with ``axis`` ``"rows"`` (``"cols"``); ``energy`` is the sum of ``|z|``."""
    out: list[Component] = []
    for z, axis in ((np.asarray(z_rows, np.float64), "rows"), (np.asarray(z_cols, np.float64), "cols")):
        hot = z >= limit
        i = 0
        while i < len(z):
            if not hot[i]:
                i += 1
                continue
            j = i
            while j < len(z) and hot[j]:
                j += 1
            e = float(z[i:j].sum())
            if axis == "rows":
                comp = Component(0, i, width, j, float((j - i) * width), e, e / (j - i),
                                 float(z[i:j].max()), axis)
            else:
                comp = Component(i, 0, j, height, float((j - i) * height), e, e / (j - i),
                                 float(z[i:j].max()), axis)
            out.append(comp)
            i = j
    return out


def aligned_energy_fractions(components: Sequence[Component]) -> tuple[float, float]:
    """Share of the anomaly energy away from the frame border (components not on the ``"edge"`` axis) in
    row-aligned and in column-aligned components (NaN when none)."""
    total = sum(c.energy for c in components if c.axis != "edge")
    if total <= 0:
        return float("nan"), float("nan")
    rows = sum(c.energy for c in components if c.axis == "rows")
    cols = sum(c.energy for c in components if c.axis == "cols")
    return rows / total, cols / total


# ------------------------------------------------------------------------------------------------------
# Analyzer
# ------------------------------------------------------------------------------------------------------
@dataclass
class PixelParams(AnalyzerParams):
    """Parameters of :class:`PixelAnalyzer` (see ``docs/pixel.md``)."""

    #: Gain of the difference heat map in figures (seed ``--heatmap-scale``): shown as
    #: ``clamp(|Δ|·scale, 0, 1)``.
    heatmap_scale: float = 4.0
    #: Weight of the Sobel gradient difference in the anomaly score ``|Δ| + w·|∇Δ|``.
    sobel_weight: float = 1.0
    #: Box smoothing of the score before thresholding (1 = none).
    smooth_px: int = 1
    #: Threshold = median + sigma · 1.4826 · MAD of the score (inside the mask when there is one) ...
    threshold_sigma: float = 4.0
    #: ... but never below this absolute score (differences in [0, 1] image units).
    min_score: float = 0.05
    #: Components with fewer anomalous pixels are ignored.
    min_area_px: float = 16.0
    #: Box aspect ratio from which a component counts as aligned with the rows or the columns ...
    aligned_aspect: float = 4.0
    #: ... when it also spans this share of the frame's width (height); see :func:`component_axis`.
    aligned_min_span: float = 0.4
    #: Longest side of the anomaly grid sent to the CPU (boxes are exact to ``ceil(max(H, W) / this)`` px).
    map_max_side: int = 128
    #: Components are labelled for this many first samples of the batch (per-sample scalars cover all).
    component_samples: int = 8
    #: Longest side of the images and heat maps kept for figures.
    render_max_side: int = 256
    #: Rows of the anomaly table kept per sample (largest energy first).
    max_components: int = 20
    #: The target is the unedited input (offline ``--images``): leak in noise levels and defects judged
    #: against the texture's own lattice. False in the training loop, where the output is compared with its
    #: training target everywhere (no leak metric there).
    target_is_input: bool = False


class PixelAnalyzer(Analyzer[PixelParams]):
    """Difference heat map, Sobel gradient difference, anomaly regions and mask leakage of ``pred`` vs
    ``target``.

    Metrics (``trackdiag/pixel/<key>``): ``diff_mae``, ``diff_rmse``, ``grad_diff_mean``,
    ``energy_in_mask``, ``energy_out_mask``, ``energy_out_frac``, ``anomaly_threshold``,
    ``anomaly_area_frac``, ``anomaly_count``, ``anomaly_area_px``, ``anomaly_peak_score``,
    ``anomaly_row_energy_frac``, ``anomaly_col_energy_frac``, ``anomaly_aligned_energy_frac``; text
    ``anomaly_axis_hint`` (``rows``/``cols``/``none``); table ``anomalies``; figure ``pixel_overlay``.
    """

    name = "pixel"
    Params = PixelParams
    requires = ("pred", "target")

    def __init__(self, params: Optional[PixelParams] = None) -> None:
        super().__init__(params)
        p = self.params
        if p.heatmap_scale <= 0 or p.threshold_sigma < 0 or p.min_score < 0 or p.map_max_side < 1 \
                or p.render_max_side < 1 or p.aligned_aspect < 1 or p.smooth_px < 1:
            raise InputValueError(
                "pixel params: heatmap_scale > 0, threshold_sigma >= 0, min_score >= 0, map_max_side >= 1, "
                "render_max_side >= 1, aligned_aspect >= 1 and smooth_px >= 1 are required; got "
                f"{p}.")

    def compute(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        p = self.params
        if inputs.pred is None or inputs.target is None:
            raise InputValueError("pixel analyzer: compute needs both pred and target.")
        with torch.no_grad():
            return pixel_maps(inputs.pred, inputs.target, inputs.mask, sobel_weight=p.sobel_weight,
                              smooth_px=p.smooth_px, threshold_sigma=p.threshold_sigma, min_score=p.min_score,
                              map_max_side=p.map_max_side, component_samples=p.component_samples,
                              heatmap_scale=p.heatmap_scale, render_max_side=p.render_max_side,
                              target_is_input=p.target_is_input)

    def summarize(self, step: int, host: Mapping[str, np.ndarray], *,
                  sample_ids: Optional[Sequence[str]] = None) -> Result:
        p = self.params
        metrics = reduce_per_sample(host)
        grid = np.asarray(host[MAP_PREFIX + "anomaly_grid"])
        h, w, stride = PixelGeometry.from_array(host[MAP_PREFIX + "geometry"])
        rows: list[dict[str, Any]] = []
        per_sample: list[list[Component]] = []
        peaks = host.get(MAP_PREFIX + "peak")
        margins = host.get(MAP_PREFIX + "box_margin")
        for i in range(grid.shape[0]):
            comps = label_components(grid[i], stride=stride, height=h, width=w, min_area_px=p.min_area_px,
                                     aligned_aspect=p.aligned_aspect, min_span=p.aligned_min_span,
                                     min_peak=float(peaks[i]) if peaks is not None else 0.0,
                                     margin=int(margins[i]) if margins is not None else 0)
            per_sample.append(comps)
            sid = str(sample_ids[i]) if sample_ids is not None and i < len(sample_ids) else str(i)
            for c in comps[: p.max_components]:
                rows.append({"step": step, "sample": sid, "index": i,
                             "x0": c.x0, "y0": c.y0, "x1": c.x1, "y1": c.y1, "area_px": c.area_px,
                             "mean_score": c.mean_score, "peak_score": c.peak_score, "energy": c.energy,
                             "axis": c.axis})
        bands_r = host.get(MAP_PREFIX + "band_rows")
        band_count = {"rows": 0, "cols": 0}
        if bands_r is not None:
            bands_c = np.asarray(host[MAP_PREFIX + "band_cols"])
            zlim = np.asarray(host.get("band_z", np.full(len(bands_r), 8.0)), dtype=np.float64).reshape(-1)
            for i in range(min(len(per_sample), len(bands_r))):
                sid = str(sample_ids[i]) if sample_ids is not None and i < len(sample_ids) else str(i)
                for c in band_components(np.asarray(bands_r[i]), np.asarray(bands_c[i]), float(zlim[i]),
                                         height=h, width=w):
                    per_sample[i].append(c)
                    band_count[c.axis] += 1
                    rows.append({"step": step, "sample": sid, "index": i, "x0": c.x0, "y0": c.y0, "x1": c.x1,
                                 "y1": c.y1, "area_px": c.area_px, "mean_score": c.mean_score,
                                 "peak_score": c.peak_score, "energy": c.energy, "axis": c.axis})
        everything = [c for comps in per_sample for c in comps]
        # Energy-weighted over the labelled samples: the share of all anomaly energy in aligned components.
        row_frac, col_frac = aligned_energy_fractions(everything)
        metrics.update({
            "anomaly_count": float(np.mean([sum(x.axis != "edge" for x in c) for c in per_sample])),
            "anomaly_edge_count": float(np.mean([sum(x.axis == "edge" for x in c) for c in per_sample])),
            "anomaly_area_px": float(np.mean([sum(x.area_px for x in c) for c in per_sample])),
            "anomaly_peak_score": max((c.peak_score for c in everything), default=0.0),
            "anomaly_row_energy_frac": row_frac,
            "anomaly_col_energy_frac": col_frac,
            "anomaly_aligned_energy_frac": row_frac + col_frac,
        })
        if bands_r is not None:
            metrics["band_rows_count"] = float(band_count["rows"])
            metrics["band_cols_count"] = float(band_count["cols"])
        hint = "none"
        if everything and max(row_frac, col_frac) >= 0.5:
            hint = "rows" if row_frac >= col_frac else "cols"
        skip = {MAP_PREFIX + k for k in ("anomaly_grid", "geometry", "band_rows", "band_cols", "peak",
                                         "box_margin")}
        maps = {k.removeprefix(MAP_PREFIX): np.asarray(v) for k, v in host.items()
                if k.startswith(MAP_PREFIX) and k not in skip}
        maps["geometry"] = PixelGeometry(height=h, width=w, stride=stride).to_array()
        return Result(metrics=metrics, texts={"anomaly_axis_hint": hint}, maps=maps,
                      tables={"anomalies": rows})

    def render(self, result: Result) -> dict[str, np.ndarray]:
        from ..plots.pixel import pixel_overlay

        if "heatmap" not in result.maps:
            return {}
        geometry = PixelGeometry.from_array(result.maps["geometry"])
        h, w = geometry.height, geometry.width
        boxes = [r for r in result.tables.get("anomalies", []) if r.get("index", 0) == 0]
        return {"pixel_overlay": pixel_overlay(
            image_in=result.maps["image_in"], image_out=result.maps["image_out"],
            heatmap=result.maps["heatmap"], grad_heatmap=result.maps.get("grad_heatmap"),
            boxes=boxes, full_size=(h, w))}


# ------------------------------------------------------------------------------------------------------
# Metric specs and verdict rules (they read only the flat metrics)
# ------------------------------------------------------------------------------------------------------
#: A leak: the edit spills at least this many px beyond the mask (at >= 3x the image's noise level).
LEAK_PX_WARN = 3.0
LEAK_PX_BAD = 12.0
#: Share of the anomaly energy in row- (column-) aligned components from which errors "cluster along" them.
ALIGNED_FRAC = 0.5
#: Anomaly regions per image (the batch's mean) from which ``pixel_defect`` is given: one in a single pair;
#: in the training loop's batches, one per image on average (an undertrained model's few blurred joints in
#: some samples are fidelity, not a defect: ``pixel/diff_rmse`` tracks them).
ANOMALY_COUNT_WARN = 1.0

register_metrics("pixel", [
    MetricSpec("leak_px", goal="min", unit="px",
               doc="depth of the edit's spill beyond the mask at >= 3x the image's own noise level "
                   "(only when the target is the unedited input)", warn=LEAK_PX_WARN, bad=LEAK_PX_BAD),
    MetricSpec("leak_level", goal="min", unit="× noise", doc="change just outside the mask, in noise levels"),
    MetricSpec("noise_level", goal="none", unit="",
               doc="local RMS of the unexplained change outside the mask"),
    MetricSpec("anomaly_count", goal="min", unit="",
               doc="anomaly regions per sample, away from the frame border", warn=ANOMALY_COUNT_WARN),
    MetricSpec("anomaly_edge_count", goal="min", unit="",
               doc="anomaly streaks along the frame border per sample (a convolution's zero padding)"),
    MetricSpec("anomaly_row_energy_frac", goal="min", unit="share", doc="anomaly energy along rows",
               warn=ALIGNED_FRAC),
    MetricSpec("anomaly_col_energy_frac", goal="min", unit="share", doc="anomaly energy along columns",
               warn=ALIGNED_FRAC),
    MetricSpec("energy_out_frac", goal="min", unit="share",
               doc="share of the difference energy outside the mask (relative; see leak_px)"),
])


def pixel_rules(summary: Mapping[str, Any]) -> list[Verdict]:
    """Verdicts of the pixel analyzer from its flat metrics (one pair or a batch)."""
    def g(key: str) -> float:
        try:
            return float(summary.get(key, math.nan))
        except (TypeError, ValueError):
            return math.nan

    out: list[Verdict] = []
    leak = g("leak_px_max") if math.isfinite(g("leak_px_max")) else g("leak_px")
    if math.isfinite(leak) and leak >= LEAK_PX_WARN:
        out.append(Verdict(
            code="pixel_leak", severity="bad" if leak >= LEAK_PX_BAD else "warn",
            title=f"The edit spills {leak:.0f} px beyond the wall mask",
            evidence={"leak_px": leak, "leak_level": g("leak_level"), "noise_level": g("noise_level"),
                      "limit_px": LEAK_PX_WARN},
            fix="Check that masks match the images (python -m trackdiag.dataset --mask); composite the "
                "output with the mask, or add a masked loss term that penalises changes outside the wall."))
    for key, code, axis in (("anomaly_row_energy_frac", "pixel_rows", "rows"),
                            ("anomaly_col_energy_frac", "pixel_cols", "columns")):
        frac = g(key)
        bands = g(f"band_{code.split('_')[1]}_count")
        if (math.isfinite(frac) and frac >= ALIGNED_FRAC) or (math.isfinite(bands) and bands > 0):
            out.append(Verdict(
                code=code, severity="warn", title=f"Errors cluster along {axis}",
                evidence={key: frac, "anomaly_count": g("anomaly_count"), "bands": bands},
                fix="Typical causes: batch-norm imbalance, periodicity in the latents, augmentations that "
                    "create a regular pattern, transposed-conv upsampling; see the tiling and latent "
                    "sections."))
    count = g("anomaly_count")
    if math.isfinite(count) and count >= ANOMALY_COUNT_WARN \
            and not any(v.code in ("pixel_rows", "pixel_cols") for v in out):
        out.append(Verdict(
            code="pixel_defect", severity="warn", title=f"{count:g} anomaly region(s) per image",
            evidence={"anomaly_count": count, "anomaly_area_px": g("anomaly_area_px"),
                      "anomaly_peak_score": g("anomaly_peak_score")},
            fix="Look at the boxes in the overlay: offsets and misplaced patches come from patch-based "
                "sampling or attention seams; smears from too few steps or a too-strong guidance."))
    return out


register_rules("pixel", pixel_rules)
