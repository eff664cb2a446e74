"""The one adapter between the probes / fingerprint and the artifact estimators.

:func:`artifact_scores` returns the grid, edge and seam scores the probes compare between stages. The grid,
edge and seam estimators here are small pure-torch stand-ins (lattice-line jump excess per stride); the
tiling analyzer's own estimators can replace them *in this one function* without touching any caller.
``checkerboard_s2`` comes from the tiling analyzer.

Definitions (``x`` = luminance, ``B×H×W``; "jump" = first difference across a pixel boundary):

* ``grid_s<k>``: the boundaries of each row are cut into lattice cells of ``k`` boundaries; in each cell,
  the share ``f_p`` of its squared-jump energy at phase ``p`` (position ``≡ p mod k``); ``F_p`` = the mean
  share over cells (each cell weighs the same, so a few strong edges of the content cannot dominate). The
  score is ``k · max_p (F_p − F_{p+k/2})``: the excess share of the strongest lattice line over the line half
  a period away, in units of the uniform share ``1/k`` (0 = no lattice; at most ``k``). A finer period
  (k/2, k/4 …, e.g. a checkerboard) gives ``F_p = F_{p+k/2}`` and scores 0 here, so each stride counts only
  what the next finer stride does not explain. Rows and columns are scored separately; the larger counts.
* ``edge_<side>``: mean squared jump in the ``band`` outermost pixels of one side over the same in the
  interior, minus 1 (0 = the border looks like the inside).
* ``mask_seam_score``: mean squared jump across the mask border over the same inside the wall, minus 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch

from ..checks import check_image_batch, normalize_mask

__all__ = ["artifact_scores", "grid_score", "edge_scores", "seam_score", "GRID_STRIDES"]

#: The lattice strides scored by default (VAE 8×, patchify 16×, stacked 32×).
GRID_STRIDES: tuple[int, ...] = (8, 16, 32)
_EPS = 1e-6  # a squared jump of (1e-3)² in [0, 1] units: invisible


def _gray(images: torch.Tensor) -> torch.Tensor:
    """``B×C×H×W`` → ``B×H×W`` (mean over channels; non-finite values become 0)."""
    return torch.nan_to_num(images.float().mean(dim=1), nan=0.0, posinf=0.0, neginf=0.0)


def _phase_shares(jumps: torch.Tensor, k: int, weight: torch.Tensor) -> torch.Tensor:
    """Mean share of each lattice phase in the jump energy of k-px blocks.

    ``jumps``, ``weight``: B×H×(W−1) → (k,).

    The jump at index ``j`` lies on the boundary between pixels ``j`` and ``j+1``; its phase is ``(j+1) % k``.
    Blocks are the lattice cells ``[m·k, (m+1)·k)`` of boundaries; a block counts when all its jumps are
    valid and it holds any energy. Uniform shares are ``1/k``; a line on the lattice puts its energy on one.
    """
    n = jumps.shape[-1]
    first = (k - 1) % k  # index of the first jump with phase 0
    m = (n - first) // k
    if m < 1:
        return torch.full((k,), float("nan"), dtype=torch.float64)
    sq = jumps.double().square()[..., first : first + m * k].reshape(*jumps.shape[:-1], m, k)
    ok = weight[..., first : first + m * k].reshape(*jumps.shape[:-1], m, k).bool().all(dim=-1)
    tot = sq.sum(dim=-1)
    ok = ok & (tot > _EPS * k)
    if not bool(ok.any()):
        return torch.full((k,), 1.0 / k, dtype=torch.float64)  # nothing moves: no grid
    shares = sq / tot.clamp_min(1e-30)[..., None]
    return (shares * ok[..., None]).sum(dim=tuple(range(shares.ndim - 1))) / ok.sum()


def grid_score(gray: torch.Tensor, k: int, *, margin: int = 4, valid: Optional[torch.Tensor] = None) -> float:
    """Lattice-line jump excess of stride ``k`` (see the module doc).

    Args:
        gray: ``B×H×W``.
        k: an even stride >= 2.
        margin: pixels at each border left out (borders are scored by :func:`edge_scores`).
        valid: optional ``B×H×W`` bool; only jumps between two valid pixels count.
    """
    if k < 2 or k % 2:
        raise ValueError(f"grid stride must be an even number >= 2, got {k}")
    scores = []
    v_all = torch.ones_like(gray, dtype=torch.bool) if valid is None else valid.bool()
    for g, v in ((gray, v_all), (gray.transpose(-1, -2), v_all.transpose(-1, -2))):
        h, w = g.shape[-2:]
        if w - 2 * margin < 4 * k or h <= 2 * margin:  # fewer than 4 lattice cells a row: too noisy
            continue
        keep = torch.zeros_like(v)
        keep[:, margin : h - margin, margin : w - margin] = True
        v = v & keep
        jumps = g[..., 1:] - g[..., :-1]
        weight = v[..., 1:] & v[..., :-1]  # the absolute lattice phase is kept
        f = _phase_shares(jumps, k, weight)
        scores.append(float((f - f.roll(-(k // 2))).max() * k))
    return max(scores) if scores else float("nan")


def edge_scores(gray: torch.Tensor, *, band: int = 2) -> dict[str, float]:
    """``edge_left/right/top/bottom``: squared-jump energy in the outer ``band`` px over the interior, − 1."""
    h, w = gray.shape[-2:]
    dx = (gray[..., :, 1:] - gray[..., :, :-1]).square()
    dy = (gray[..., 1:, :] - gray[..., :-1, :]).square()
    inner = torch.cat(
        [
            dx[..., 2 * band : h - 2 * band, 2 * band : w - 1 - 2 * band].flatten(1),
            dy[..., 2 * band : h - 1 - 2 * band, 2 * band : w - 2 * band].flatten(1),
        ],
        dim=1,
    )
    base = float(inner.mean()) + _EPS
    # jumps along each side (parallel stripes) and into it (a step at the border); corners left out so
    # that one bad side does not spill into its neighbours
    r, c = slice(2 * band, h - 2 * band), slice(2 * band, w - 2 * band)
    sides = {
        "edge_left": torch.cat([dy[..., r, :band].flatten(1), dx[..., r, :band].flatten(1)], 1),
        "edge_right": torch.cat(
            [dy[..., r, w - band :].flatten(1), dx[..., r, w - 1 - band :].flatten(1)], 1
        ),
        "edge_top": torch.cat([dx[..., :band, c].flatten(1), dy[..., :band, c].flatten(1)], 1),
        "edge_bottom": torch.cat(
            [dx[..., h - band :, c].flatten(1), dy[..., h - 1 - band :, c].flatten(1)], 1
        ),
    }
    return {k: float(v.mean()) / base - 1.0 for k, v in sides.items()}


def seam_score(gray: torch.Tensor, wall: torch.Tensor) -> float:
    """``mask_seam_score``: squared jump across the mask border over the same inside the wall, − 1.

    ``gray`` B×H×W, ``wall`` B×H×W bool. NaN when the mask has no border or no inside.
    """
    wf = wall.float()
    dx = (gray[..., :, 1:] - gray[..., :, :-1]).square()
    dy = (gray[..., 1:, :] - gray[..., :-1, :]).square()
    cross_x = (wf[..., :, 1:] != wf[..., :, :-1]).float()
    cross_y = (wf[..., 1:, :] != wf[..., :-1, :]).float()
    in_x = wf[..., :, 1:] * wf[..., :, :-1]
    in_y = wf[..., 1:, :] * wf[..., :-1, :]
    n_cross = float(cross_x.sum() + cross_y.sum())
    n_in = float(in_x.sum() + in_y.sum())
    if n_cross == 0 or n_in == 0:
        return float("nan")
    e_cross = float((dx * cross_x).sum() + (dy * cross_y).sum()) / n_cross
    e_in = float((dx * in_x).sum() + (dy * in_y).sum()) / n_in
    return e_cross / (e_in + _EPS) - 1.0


def artifact_scores(
    images: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    *,
    strides: Sequence[int] = GRID_STRIDES,
    band: int = 2,
    margin: int = 4,
    checkerboard: bool = True,
) -> dict[str, float]:
    """Grid, edge, seam (and checkerboard) scores of a batch, averaged over its images.

    Args:
        images: ``B×C×H×W`` (any range; the scores are ratios of jump energies).
        mask: optional wall mask (``B×1×H×W``, ``1×H×W`` or ``H×W``, > 0.5 = wall): the grid is measured on
            the wall only and ``mask_seam_score`` is added.
        strides: lattice strides for ``grid_s<k>``.
        band: width in px of the border bands of ``edge_<side>``.
        margin: pixels at each border left out of the grid scores.
        checkerboard: also return the tiling analyzer's ``checkerboard_s2``.

    Returns:
        ``{"grid_s8": …, "grid_s16": …, "edge_left": …, …, ["mask_seam_score"], ["checkerboard_s2"]}``.
    """
    images = check_image_batch(images, name="images").detach()
    b, _, h, w = images.shape
    gray = _gray(images)
    wall = None
    if mask is not None:
        wall = normalize_mask(mask, batch=b, height=h, width=w).to(images.device)[:, 0]
    out: dict[str, float] = {}
    for k in strides:
        out[f"grid_s{k}"] = grid_score(gray, int(k), margin=margin, valid=wall)
    out.update(edge_scores(gray, band=band))
    if wall is not None:
        out["mask_seam_score"] = seam_score(gray, wall)
    if checkerboard:
        try:
            from ..analyzers.tiling import tiling_metrics

            lo, hi = float(images.min()), float(images.max())
            unit = (images - lo) / (hi - lo) if hi > lo else images * 0
            tm = tiling_metrics(unit.clamp(0, 1), mask=mask, maps=False)
            if "checkerboard_s2" in tm:
                out["checkerboard_s2"] = float(tm["checkerboard_s2"].float().nanmean())
        except Exception:  # the tiling analyzer may refuse tiny or flat images; the other scores stand
            out["checkerboard_s2"] = float("nan")
    return out
