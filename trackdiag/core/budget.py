"""The per-call pixel budget of ``log()``: native-resolution crops that keep what the tiling diagnosis needs.

A ``log()`` call whose images hold more than ``max_megapixels`` (over the whole batch) is analysed on a
*composite* of each image: a subset of its rows times a subset of its columns, at native resolution. Nothing
is resampled (a downscale would erase the stride grids the tiling analyzer looks for). The kept rows (and,
the same way, the kept columns) are, in order:

* the **edge strips**: the first and last ``edge_px`` rows, so the frame's four borders (padding artefacts,
  the border cross of a non-periodic frame, the wrap-around seam of a tileable texture) are the composite's
  own borders;
* one large **central block** (about 70 % of the kept rows, 100 % without a mask contour to follow): enough
  contiguous frame for local-period zones, bands and a perspective trend;
* with a mask, a **contour block** around the row (column) where the wall's contour is densest and that the
  central block does not already cover: samples along the mask contour.

Where two kept blocks meet, the removed gap is chosen (within a search range) so that the rows on both sides
of the junction match best (least mean squared difference over a few rows): for a periodic texture this is a
multiple of its period along that axis, so the junction is seamless and adds no line to the spectrum. The
mismatch that remains is reported (``seam_nmse``: junction MSE over the MSE expected between unrelated
rows; 0 for a seamless junction, about 1 for a junction between unrelated rows).

:func:`plan_axis` and :func:`plan_budget` are pure functions; :class:`PixelBudget` is the thin wrapper the
session calls on every validated :class:`~trackdiag.analyzers.base.StepInputs`. Reported per cropped call as
metrics ``trackdiag/budget/kept_px_frac``, ``trackdiag/budget/seam_nmse``, ``trackdiag/budget/height_px`` and
``trackdiag/budget/width_px``; the limit is the run parameter ``budget.max_megapixels``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..analyzers.base import StepInputs
from ..config import BudgetConfig
from ..errors import InputValueError

__all__ = ["BudgetPlan", "AxisPlan", "plan_axis", "plan_budget", "apply_plan",
           "contour_profile", "PixelBudget"]


@dataclass(frozen=True)
class AxisPlan:
    """Kept index ranges along one axis: ``blocks`` are ``(start, stop)`` half-open, ascending, disjoint."""

    size: int
    blocks: tuple[tuple[int, int], ...]
    seam_nmse: float = float("nan")  # mean over the junctions (NaN when nothing was removed)

    @property
    def kept(self) -> int:
        return sum(b - a for a, b in self.blocks)

    def index(self, device: Optional[torch.device] = None) -> torch.Tensor:
        return torch.cat([torch.arange(a, b, device=device) for a, b in self.blocks])


@dataclass(frozen=True)
class BudgetPlan:
    rows: AxisPlan
    cols: AxisPlan

    @property
    def identity(self) -> bool:
        return self.rows.kept == self.rows.size and self.cols.kept == self.cols.size

    @property
    def kept_px_frac(self) -> float:
        return (self.rows.kept * self.cols.kept) / float(self.rows.size * self.cols.size)

    @property
    def seam_nmse(self) -> float:
        vals = [v for v in (self.rows.seam_nmse, self.cols.seam_nmse) if math.isfinite(v)]
        return sum(vals) / len(vals) if vals else float("nan")


def edge_strip_px(kept: int) -> int:
    """Width of each edge strip for ``kept`` kept rows: 1/16 of them, between 16 and 64 px."""
    return int(min(64, max(16, kept // 16)))


def _junction_costs(profile: torch.Tensor, a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """MSE between rows ``[a - k, a + k)`` and ``[b - k, b + k)`` of ``profile`` (``L×W``), per candidate.

    ``a`` and ``b`` are ``(n,)`` long tensors; rows are clamped into range. Returns ``(n,)``.
    """
    n_rows = profile.shape[0]
    off = torch.arange(-k, k, device=profile.device)
    ia = (a[:, None] + off).clamp(0, n_rows - 1)
    ib = (b[:, None] + off).clamp(0, n_rows - 1)
    return (profile[ia] - profile[ib]).square().mean(dim=(1, 2))


def _unrelated_mse(profile: torch.Tensor) -> float:
    """Expected MSE between two unrelated rows of an ``L×W`` profile: twice the variance across rows."""
    if profile.shape[0] < 2:
        return float("nan")
    return float(2.0 * profile.var(dim=0).mean())


def plan_axis(size: int, kept: int, *, profile: Optional[torch.Tensor] = None,
              contour: Optional[torch.Tensor] = None, centre: Optional[float] = None,
              search_px: int = 128, match_rows: int = 16) -> AxisPlan:
    """Which rows (or columns) of an axis of ``size`` pixels to keep, ``kept`` of them at most.

    Args:
        size: pixels along the axis; kept: how many to keep (``>= size`` keeps all).
        profile: ``size×W`` float, the image seen along this axis (rows of the luminance, a few columns
            subsampled): junctions are placed where rows on both sides match best. None: no matching.
        contour: ``(size,)`` count of mask-contour pixels per row, or None (no contour block).
        centre: where to centre the central block (0..1 of the axis, e.g. the wall's centroid); None: 0.5.
        search_px: the removed gap before each block may grow or shrink by up to this many pixels.
        match_rows: rows on each side of a junction compared (a window longer than most periods pins the
            phase, not just a run of equal rows).

    Returns:
        An :class:`AxisPlan` whose first block starts at 0 and last block ends at ``size`` (the edge strips).
    """
    if kept >= size:
        return AxisPlan(size, ((0, size),))
    edge = min(edge_strip_px(kept), max(1, kept // 4))
    inner = kept - 2 * edge
    if inner < 8:
        raise InputValueError(f"a pixel budget of {kept} rows out of {size} leaves no room for the centre; "
                              "raise budget.max_megapixels.")
    # The contour block: around the densest contour row that the central block would not cover.
    n_central = inner
    c_pos = 0.5 if centre is None or not math.isfinite(centre) else min(max(centre, 0.0), 1.0)
    central_start = int(round(c_pos * size - n_central / 2))
    contour_block: Optional[tuple[int, int]] = None
    contour_peak = 0
    if contour is not None and float(contour.sum()) > 0:
        n_central = int(round(inner * 0.7))
        n_contour = inner - n_central
        central_start = int(round(c_pos * size - n_central / 2))
        central_start = min(max(central_start, edge + match_rows), size - edge - n_central - match_rows)
        covered = contour.clone().float()
        covered[:edge] = 0
        covered[size - edge:] = 0
        covered[central_start:central_start + n_central] = 0
        if float(covered.sum()) > 0:
            # Density of contour pixels in a window of the block's length, centred on each row.
            win = torch.ones(1, 1, n_contour, dtype=covered.dtype, device=covered.device)
            dens = F.conv1d(covered[None, None], win, padding=n_contour // 2)[0, 0, :size]
            # The densest window (ties: the first), then the contour's own centroid inside it.
            top = int(torch.argmax(dens))
            lo_w, hi_w = max(0, top - n_contour // 2), min(size, top + n_contour // 2 + 1)
            seg = covered[lo_w:hi_w]
            pos = torch.arange(lo_w, hi_w, dtype=seg.dtype, device=seg.device)
            contour_peak = int(round(float((seg * pos).sum() / seg.sum())))
            start = min(max(contour_peak - n_contour // 2, edge + match_rows),
                        size - edge - n_contour - match_rows)
            contour_block = (start, start + n_contour)
        else:
            n_central = inner  # every contour pixel is already in the strips or the centre
            central_start = int(round(c_pos * size - n_central / 2))
    central_start = min(max(central_start, edge + match_rows), size - edge - n_central - match_rows)
    # Each interior block keeps its anchor row (the centre, the densest contour row) when junctions move it.
    central = (central_start, central_start + n_central)
    anchors = {central: central_start + n_central // 2}
    blocks = [(0, edge), central]
    if contour_block is not None:
        blocks.append(contour_block)
        anchors[contour_block] = contour_peak
    blocks.append((size - edge, size))
    merged = _merge(sorted(blocks))
    if profile is None or len(merged) == 1:
        return AxisPlan(size, tuple(merged))
    # Anchors of merged blocks: the ones that fall inside them (the first one found).
    anchored = [(a, b, next((v for k, v in anchors.items() if a <= v < b), None)) for a, b in merged]
    return _match_junctions(size, anchored, profile, search_px=search_px, k=match_rows)


def _merge(blocks: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of sorted blocks (overlapping or touching blocks become one)."""
    out: list[tuple[int, int]] = []
    for a, b in blocks:
        if out and a <= out[-1][1]:  # overlapping or touching blocks are one block
            out[-1] = (out[-1][0], max(out[-1][1], b))
            continue
        out.append((a, b))
    return out


def _match_junctions(size: int, blocks: list[tuple[int, int, Optional[int]]], profile: torch.Tensor, *,
                     search_px: int, k: int) -> AxisPlan:
    """Move the interior blocks (keeping their lengths) so each junction is as seamless as possible.

    ``blocks`` are ``(start, stop, anchor)``; a block moves by at most ``search_px`` and keeps its ``anchor``
    row (if any) at least ``k + 2`` rows inside. The first and last blocks (the edge strips) stay where they
    are; the block before the last one is shortened instead of moved, so that the last junction can match.
    """
    unrelated = _unrelated_mse(profile)
    margin = k + 2
    out: list[tuple[int, int]] = [blocks[0][:2]]
    anchors: list[Optional[int]] = [None]
    costs: list[float] = []
    for i in range(1, len(blocks)):
        a_prev = out[-1][1]
        start, stop, anchor = blocks[i]
        n = stop - start
        if i == len(blocks) - 1:
            # The strip is fixed at the end: end the previous block where its rows match the strip's.
            p0, p1 = out[-1]
            lo = max(p0 + 8, p1 - search_px)
            if anchors[-1] is not None:
                lo = max(lo, anchors[-1] + margin)
            lo = min(lo, p1)
            cand = torch.arange(lo, p1 + 1, device=profile.device)
            cost = _junction_costs(profile, cand, torch.full_like(cand, start), k)
            j = int(torch.argmin(cost))
            out[-1] = (p0, int(cand[j]))
            out.append((start, stop))
        else:
            nxt = blocks[i + 1][0]
            lo = max(a_prev + 1, start - search_px)
            hi = min(start + search_px, nxt - n - 1 - k, size - n)
            if anchor is not None:
                lo = max(lo, anchor + margin - n)
                hi = min(hi, anchor - margin)
            if hi < lo:
                lo = hi = min(max(start, a_prev + 1), size - n)
            cand = torch.arange(lo, hi + 1, device=profile.device)
            cost = _junction_costs(profile, torch.full_like(cand, a_prev), cand, k)
            j = int(torch.argmin(cost))
            s = int(cand[j])
            out.append((s, s + n))
        anchors.append(anchor)
        costs.append(float(cost[j]))
    nmse = (sum(costs) / len(costs)) / unrelated if unrelated > 0 else float("nan")
    return AxisPlan(size, tuple(_merge(out)), nmse)


def contour_profile(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-contour pixels per row and per column, summed over the batch.

    Args:
        mask: ``B×1×H×W`` bool (True = wall).

    Returns:
        ``((H,), (W,))`` float counts of wall pixels with a non-wall 4-neighbour (the frame counts as wall).
    """
    m = mask[:, 0]
    inner = m.clone()
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    inner[:, :, 1:] &= m[:, :, :-1]
    inner[:, :, :-1] &= m[:, :, 1:]
    edge = m & ~inner
    return edge.sum(dim=(0, 2)).to(torch.float32), edge.sum(dim=(0, 1)).to(torch.float32)


def _luma_rows(img: torch.Tensor, max_width: int = 256) -> torch.Tensor:
    """Sample 0's channel mean (``H×W'``, columns subsampled to at most ``max_width``), finite values only."""
    step = max(1, img.shape[-1] // max_width)
    x = img[0, :, :, ::step].float().mean(dim=0)
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def plan_budget(pred: torch.Tensor, *, max_pixels: int, mask: Optional[torch.Tensor] = None,
                search_px: int = 128) -> BudgetPlan:
    """The kept rows and columns of a ``B×C×H×W`` batch so that ``B·h·w <= max_pixels``.

    The aspect ratio is kept. With a ``B×1×H×W`` bool ``mask``, the central blocks are centred on the wall's
    centroid and contour blocks follow the mask contour.
    """
    b, _, h, w = pred.shape
    per = max_pixels / float(b)
    if h * w <= per:
        return BudgetPlan(AxisPlan(h, ((0, h),)), AxisPlan(w, ((0, w),)))
    scale = math.sqrt(per / float(h * w))
    kh, kw = max(64, int(h * scale)), max(64, int(w * scale))
    row_c = col_c = None
    cy = cx = None
    if mask is not None:
        row_c, col_c = contour_profile(mask)
        mf = mask[:, 0].to(torch.float32).sum(dim=0)
        tot = float(mf.sum())
        if tot > 0:
            cy = float((mf.sum(dim=1) * torch.arange(h, dtype=mf.dtype, device=mf.device)).sum()) / tot / h
            cx = float((mf.sum(dim=0) * torch.arange(w, dtype=mf.dtype, device=mf.device)).sum()) / tot / w
    rows_profile = _luma_rows(pred)
    cols_profile = _luma_rows(pred.transpose(-1, -2))
    rows = plan_axis(h, kh, profile=rows_profile, contour=row_c, centre=cy, search_px=search_px)
    cols = plan_axis(w, kw, profile=cols_profile, contour=col_c, centre=cx, search_px=search_px)
    return BudgetPlan(rows, cols)


def apply_plan(x: torch.Tensor, plan: BudgetPlan) -> torch.Tensor:
    """The composite of a ``B×C×H×W`` tensor (any dtype): kept rows × kept columns, native pixels."""
    if plan.identity:
        return x
    out = x
    if plan.rows.kept < plan.rows.size:
        out = out.index_select(-2, plan.rows.index(x.device))
    if plan.cols.kept < plan.cols.size:
        out = out.index_select(-1, plan.cols.index(x.device))
    return out


class PixelBudget:
    """Applies the budget to every validated ``StepInputs`` of a session and reports what it kept.

    Args:
        max_megapixels: the per-call limit (0 disables the budget).
        report: called with ``(metrics, step)`` after every call that was cropped (the session sends them
            through its worker as ``trackdiag/budget/...`` scalars); None: not reported.
    """

    def __init__(self, max_megapixels: float = 1.0, *,
                 report: Optional[Callable[[Mapping[str, float], int], None]] = None) -> None:
        if not (max_megapixels >= 0 and math.isfinite(max_megapixels)):
            raise InputValueError(f"budget.max_megapixels must be >= 0 (0 = no budget); "
                                  f"got {max_megapixels}.")
        self.max_pixels = int(max_megapixels * 1_000_000)
        self.report = report
        self.last: Optional[BudgetPlan] = None

    @classmethod
    def from_config(cls, node: Any, *, report: Optional[Callable[[Mapping[str, float], int], None]] = None
                    ) -> PixelBudget:
        value = getattr(node, "max_megapixels", None) if node is not None else None
        return cls(float(value) if value is not None else BudgetConfig.max_megapixels, report=report)

    def __call__(self, inputs: StepInputs) -> StepInputs:
        """``inputs`` with ``pred``, ``mask`` and ``target`` replaced by their composites when over budget."""
        self.last = None
        pred = inputs.pred
        if pred is None or self.max_pixels <= 0 or pred[:, 0].numel() <= self.max_pixels:
            return inputs
        with torch.no_grad():
            plan = plan_budget(pred, max_pixels=self.max_pixels, mask=inputs.mask)
            if plan.identity:
                return inputs
            out = dataclasses.replace(
                inputs, pred=apply_plan(pred, plan),
                mask=apply_plan(inputs.mask, plan) if inputs.mask is not None else None,
                target=apply_plan(inputs.target, plan) if inputs.target is not None else None)
        self.last = plan
        if self.report is not None:
            self.report({"kept_px_frac": plan.kept_px_frac, "seam_nmse": plan.seam_nmse,
                         "height_px": float(plan.rows.kept), "width_px": float(plan.cols.kept)}, inputs.step)
        return out
