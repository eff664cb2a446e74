"""Pixel anomalies when the target is the unedited input: leak, texture-referenced defects and bands.

:func:`judge_against_input` combines :mod:`trackdiag.functional.pixel_leak` and
:mod:`trackdiag.functional.pixel_texture` for a batch (``pred``, ``inp``: ``B×C×H×W`` in [0, 1]; ``mask``:
``B×H×W`` bool or None):

* a sample is **edited** when the 75th percentile of the change inside the mask is above ``edit_level`` ×
  the noise level outside it; its output is then judged against its own texture
  (:mod:`trackdiag.functional.pixel_edit`), not against the old wall;
* otherwise the signal is the difference to the input, aligned (integer shift) and with exposure removed,
  over the whole image (the difference heat map of an edit that should be small);
* edited: the anomaly score is the texture's own fine-scale level over the local one
  (:func:`~trackdiag.functional.pixel_edit.sharpness_deficit`: smears), thresholded at ``score_edited``
  with the gaps closed and grown by the window's reach, a component counting when its peak reaches
  ``peak_edited``; where the local phase of the lattice's fundamental (its mean departure phasor over
  ``phase_coherent`` px) departs from the wall's smooth phase field by more than ``phase_deg`` over at
  least ``phase_min_area`` px
  (:mod:`~trackdiag.functional.pixel_phase`: offsets and misplaced patches), the score is
  ``peak_edited × departure / phase_deg``; a component departing by ``phase_weak_deg``–``phase_deg`` counts
  too where the edge image breaks its lattice translates ``phase_support`` × as much as the wall on average
  (:mod:`~trackdiag.functional.pixel_translate`); with ``copy_level`` > 0, a region whose grain repeats
  another part of the wall (:func:`~trackdiag.functional.pixel_copy.copy_boxes`: a misplaced patch, even
  one in phase with its new place; of the copy and its source, the one departing more in phase) scores
  ``peak_edited`` too; with ``copy_blocks`` (on by default since the twelfth sitting, when one batched FFT
  correlation made it cheap), copies processed after the copy are searched block by block too
  (:mod:`~trackdiag.functional.pixel_blocks`); a phase component touching a copy box is cut to within
  ``copy_reach`` px of it (0: off; a copy's phase departure runs on beyond the copy);
* unedited: the anomaly score is the change against the change the local texture explains
  (:func:`~trackdiag.functional.pixel_change.relative_change`), thresholded at ``score_unedited`` with the
  gaps closed; a component counts when its peak reaches ``peak_unedited`` (``peak``) and its box is shrunk
  by the window's reach (``box_margin``);
* row/column bands: unedited, lines whose mean lattice residual of the difference has a robust ``|z|``
  above ``band_z_unedited``; edited, lines whose level against the block-matched lattice translates
  (:func:`~trackdiag.functional.pixel_edit.band_level`) is at least ``band_level_edited`` (image units),
  beyond ``band_kappa`` × the contrast of the lattice's expected line profile (a mortar line's own
  variation from period to period is not a band), or whose level in the colour plane orthogonal to the
  wall's mean colour is at least ``band_chroma_level`` (0.02; 0 = off), ``band_chroma_z`` × that plane's
  spread of line levels and ``band_chroma_along`` × the spread of the line's own residual along it (a band
  moves a line uniformly; bricks of several colours scatter it: without that guard, 7 of 20 clean
  synthetic walls with ±10 % brick colours read a false band, docs/pixel.md, tenth sitting):
  :func:`edited_band_level`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .pixel_change import close_hot, relative_change
from .pixel_copy import copy_boxes
from .pixel_edit import band_level, chroma_plane, drop_echoes, matched_lattice_residuals, sharpness_deficit
from .pixel_edit import chroma_level as chroma_level_of
from .pixel_leak import leak_measure, photometric_residual, register_shift
from .pixel_phase import departure_boxes, phase_departure
from .pixel_texture import band_profile, lattice_residual, lattice_vectors
from .pixel_translate import translate_residual_z, translate_support

__all__ = ["judge_against_input", "edited_band_level"]


def judge_against_input(pred: torch.Tensor, inp: torch.Tensor, mask: Optional[torch.Tensor], *,
                        edit_level: float = 4.0, score_unedited: float = 3.0, score_edited: float = 2.5,
                        peak_unedited: float = 6.0, peak_edited: float = 4.0,
                        band_z_unedited: float = 8.0, band_level_edited: float = 0.06, window: int = 9,
                        phase_deg: float = 52.0, phase_min_area: int = 250, band_kappa: float = 0.15,
                        phase_coherent: float = 6.0, phase_edge_floor: float = 30.0,
                        phase_weak_deg: float = 40.0, phase_support: float = 1.5,
                        band_chroma_level: float = 0.02, band_chroma_z: float = 6.0,
                        band_chroma_along: float = 3.0, copy_level: float = 0.25,
                        copy_blocks: bool = True, copy_reach: int = 8) -> dict[str, torch.Tensor]:
    """Returns ``score`` (``B×H×W``, in multiples of the region's own level, 0 outside the region),
    ``threshold`` (``(B,)``), ``peak`` (``(B,)``, the level a component's peak must reach),
    ``box_margin`` (``(B,)``, px to shrink each box by, negative: grow), ``edited`` (``(B,)`` 0/1),
    ``band_rows``/``band_cols`` (``B×H``/``B×W``: robust ``|z|`` of each line for unedited samples, the
    band level in image units for edited ones; 0 where not measured), ``band_z`` (``(B,)`` the band
    threshold in the same units) and, with a mask,
    the leak metrics of :func:`~trackdiag.functional.pixel_leak.leak_measure` (each ``(B,)``)."""
    b, _, h, w = pred.shape
    unclipped = ((pred > 0.01) & (pred < 0.99) & (inp > 0.01) & (inp < 0.99)).all(dim=1)
    full = torch.ones(b, h, w, dtype=torch.bool, device=pred.device)
    out: dict[str, torch.Tensor] = {}
    if mask is not None:
        out.update(leak_measure(pred, inp, mask))
        # the change that alignment and exposure do not explain (an exposure change is not an edit)
        moved = register_shift(pred, inp, ~mask)
        change = torch.stack([photometric_residual(pred[:, c:c + 1], moved[:, c:c + 1], ~mask).abs()
                              for c in range(pred.shape[1])]).mean(dim=0)  # per channel: no cancelling
        inside = torch.where(mask, change, torch.full_like(change, float("nan"))).reshape(b, -1)
        edited = torch.nanquantile(inside, 0.75, dim=1) > edit_level * out["noise_level"]
        edited = edited & (mask.reshape(b, -1).sum(dim=1) >= 64)
    else:
        edited = torch.zeros(b, dtype=torch.bool, device=pred.device)
    aligned = register_shift(pred, inp, full & unclipped)
    diff = photometric_residual(pred, aligned, full & unclipped)
    own = pred.mean(dim=1)
    m = mask if mask is not None else full
    signal = torch.where(edited[:, None, None], own, diff)
    region = torch.where(edited[:, None, None], m, full) & unclipped
    vectors = lattice_vectors(signal.cpu(), region.cpu()).to(pred.device)
    res = lattice_residual(signal, region, vectors)
    # inside an edit: the output against its own texture (a smear has lost the texture's finest scale)
    # (a saturated face has no grain either: pixels within the window of a clipped one are left out)
    near_clip = F.max_pool2d((~unclipped).float()[:, None], 7, stride=1, padding=3)[:, 0] > 0
    score = close_hot(sharpness_deficit(own, region & ~near_clip), torch.full((b,), score_edited,
                      device=pred.device), close_px=9)
    # the score needs its whole window inside a smear: its components are grown by the window's reach
    score = F.max_pool2d(score[:, None], 7, stride=1, padding=3)[:, 0]
    thr_u = torch.full((b,), score_unedited, device=pred.device)
    rel = close_hot(relative_change(diff, aligned.mean(dim=1), full & unclipped, window=window) * unclipped,
                    thr_u)
    if bool(edited.any()):  # offsets and misplaced patches: where the lattice's phase departs
        # the block search reads the new wall only: the old wall's clipped pixels are no hole in it
        blocks = (m & ((pred > 0.01) & (pred < 0.99)).all(dim=1))[edited] if copy_blocks else None
        score[edited] = torch.maximum(score[edited], _phase_score(
            own[edited], m[edited], phase_deg=phase_deg, min_area=phase_min_area, floor=score_edited,
            peak=peak_edited, coherent=phase_coherent, edge_floor=phase_edge_floor, weak_deg=phase_weak_deg,
            support=phase_support, vectors=vectors[edited.cpu()].to(own.device),
            support_region=region[edited], copy_level=copy_level,
            block_region=blocks, copy_reach=copy_reach))
    out["score"] = torch.where(edited[:, None, None], score, rel)
    out["threshold"] = torch.where(edited, score_edited, thr_u)
    out["peak"] = torch.where(edited, peak_edited, peak_unedited)
    # unedited: shrink by the window's reach; edited: as measured (smears already grown above)
    out["box_margin"] = torch.where(edited, 0.0, torch.full_like(thr_u, float(window // 2)))
    out["edited"] = edited.float()
    for axis in ("rows", "cols"):
        z = torch.nan_to_num(band_profile(res, region, axis=axis).abs(), nan=0.0)
        if bool(edited.any()):  # inside an edit: the band's level against the block-matched lattice
            vec = vectors[edited.cpu()].to(own.device)
            z[edited] = edited_band_level(pred[edited], region[edited], vec, axis=axis, kappa=band_kappa,
                                          level=band_level_edited, chroma_level=band_chroma_level,
                                          chroma_z=band_chroma_z, chroma_along=band_chroma_along)
        out[f"band_{axis}"] = z
    out["band_z"] = torch.where(edited, band_level_edited, torch.full_like(thr_u, band_z_unedited))
    return out


def edited_band_level(pred: torch.Tensor, region: torch.Tensor, vectors: torch.Tensor, *, axis: str,
                      kappa: float, level: float, chroma_level: float, chroma_z: float,
                      chroma_along: float = 3.0) -> torch.Tensor:
    """``B×L``: the band level of each line inside an edit, in image units judged at ``level``: the
    luminance's level against its block-matched lattice translates
    (:func:`~trackdiag.functional.pixel_edit.band_level`, beyond ``kappa`` × the lattice's line contrast)
    or, where larger, the chroma level (:func:`~trackdiag.functional.pixel_edit.chroma_band_level`)
    scaled by ``level / chroma_level`` (a chroma band of ``chroma_level`` reads ``level``; 0 disables it).
    ``pred``: ``B×C×H×W``; ``region``: ``B×H×W`` bool; ``vectors``: ``B×2×2``."""
    own = pred.mean(dim=1)
    use_chroma = chroma_level > 0 and pred.shape[1] == 3
    ch = chroma_plane(pred, region) if use_chroma else None

    res, res_ch = matched_lattice_residuals(own, region, vectors, axis=axis, follow=ch)
    out = band_level(res, region, axis=axis, signal=own, kappa=kappa)
    if ch is not None:
        lc = chroma_level_of(res_ch, ch, region, axis=axis, kappa=kappa, z_guard=chroma_z,
                             along_z=chroma_along)
        out = torch.maximum(out, lc * (level / chroma_level))
    return drop_echoes(out, vectors, axis=axis, threshold=level)


def _phase_score(own: torch.Tensor, region: torch.Tensor, *, phase_deg: float, min_area: int, floor: float,
                 peak: float, coherent: float, edge_floor: float, weak_deg: float = 0.0, support: float = 0.0,
                 vectors: Optional[torch.Tensor] = None, support_region: Optional[torch.Tensor] = None,
                 copy_level: float = 0.0, block_region: Optional[torch.Tensor] = None,
                 copy_reach: int = 0) -> torch.Tensor:
    """``B×H×W``: the edited score of the phase-departure boxes
    (:func:`~trackdiag.functional.pixel_phase.departure_boxes` above ``phase_deg``), ``peak × departure /
    phase_deg`` and at least just above ``floor`` on them, 0 elsewhere. The departure is that of the mean
    phasor over ``coherent`` px (a patch's one offset adds up, the wall's scattered joints do not); each box
    is redrawn at its half-departure contour, no lower than ``edge_floor``.

    With ``weak_deg`` < ``phase_deg`` and ``vectors`` (``B×2×2``, the wall's lattice), boxes departing by
    ``weak_deg``–``phase_deg`` that touch no strong box count too where the edge image breaks its own
    lattice translates there at least ``support`` × as much as over the wall on average
    (:func:`~trackdiag.functional.pixel_translate.translate_support`, over ``support_region``, default
    ``region``)."""
    dep = phase_departure(own, region, coherent=coherent)
    keep = departure_boxes(dep, threshold=phase_deg, peak=phase_deg, min_area=min_area, edge_floor=edge_floor)
    if vectors is not None and 0 < weak_deg < phase_deg:
        weak = departure_boxes(dep, threshold=weak_deg, peak=weak_deg, min_area=min_area,
                               edge_floor=min(edge_floor, weak_deg))
        weak = _components_apart(weak, keep)
        if bool(weak.any()):
            reg = region if support_region is None else support_region
            z = translate_residual_z(own, reg, vectors)
            keep = keep | (weak & (translate_support(z, reg, weak) >= support))
    val = torch.clamp_min(peak * dep / phase_deg, floor * 1.0001 + 1e-6)
    if copy_level > 0:  # misplaced patches whose grain repeats elsewhere on the wall (phase or not)
        reg = region if support_region is None else support_region
        copies = copy_boxes(own, reg, dep, level=copy_level, min_area=min_area,
                            blocks=block_region is not None, block_region=block_region)
        copies &= region
        if copy_reach > 0 and bool(copies.any()):  # a copy's phase box runs on beyond it: the copy's own
            keep = _clip_touching(keep, copies, copy_reach)  # box stands for it (within the window's reach)
        val = torch.where(copies, torch.clamp_min(val, peak), val)
        keep = keep | copies
    return torch.where(keep, val, torch.zeros_like(dep))


def _clip_touching(mask: torch.Tensor, other: torch.Tensor, reach: int) -> torch.Tensor:
    """``B×H×W`` bool: ``mask`` whose 8-connected components touching ``other`` (``B×H×W`` bool) are cut to
    within ``reach`` px of it (pieces the cut leaves apart from ``other`` dropped); the other components as
    they are."""
    near = F.max_pool2d(other.float()[:, None], 2 * reach + 1, stride=1, padding=reach)[:, 0] > 0.5
    grown = F.max_pool2d(other.float()[:, None], 3, stride=1, padding=1)[:, 0] > 0.5
    touching = mask & ~_components_apart(mask, grown)
    cut = touching & near
    return (mask & ~touching) | (cut & ~_components_apart(cut, grown))


def _components_apart(mask: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``B×H×W`` bool: the 8-connected components of ``mask`` that share no pixel with ``other``."""
    import numpy as np
    from scipy import ndimage

    out = torch.zeros_like(mask)
    for i in range(mask.shape[0]):
        m, o = mask[i].cpu().numpy(), other[i].cpu().numpy()
        labels, n = ndimage.label(m, structure=np.ones((3, 3)))
        if n == 0:
            continue
        touched = np.unique(labels[o & m])
        out[i] = torch.from_numpy((labels > 0) & ~np.isin(labels, touched[touched > 0]))
    return out
