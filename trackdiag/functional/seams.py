"""Where an artifact sits: per-side edge strips of the frame and the seam along the mask contour.

Pure batched functions on ``N×H×W`` luminance ``x`` (in [0, 1]) and ``N×H×W`` 0/1 validity weights ``v``.

* :func:`edge_scores`: for each side (left, right, top, bottom), the ``strip`` outermost lines parallel to
  that side are compared with the interior lines ``inner`` px further in. Per line: its mean level, the
  log energy of differences along the line (fine stripes), and the log energy of differences to the next
  line inwards (a smear has none, an offset makes one large jump). Each statistic of each outer line is
  scored in robust z units against the interior lines (median and 1.4826·MAD, floored); the side's score
  is the largest, ``edge_<side>``; ``edge_score`` is the largest side. Lines with < 50 % valid pixels do
  not count (a masked-out floor strip is not an edge of the wall).
* :func:`mask_seam_parts`: a halo along the inside of the mask contour (an inpainting seam): the
  relative brightness offset of the band ``skip``–``ring`` px inside the contour against the band
  ``gap``–``gap+ref`` px inside, compared block by block (``block`` px) and summarised by the median
  over blocks (signed, so a consistent halo adds up and the texture does not), as an absolute value, and
  by its consistency along the contour (median over MAD across blocks). The frame border is not a
  contour. NaN without a contour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SIDES", "edge_scores", "mask_seam_parts", "mask_seam_score"]

SIDES = ("left", "right", "top", "bottom")


def _line_stats(x: torch.Tensor, v: torch.Tensor, n_lines: int) -> tuple[torch.Tensor, ...]:
    """Statistics of the first ``n_lines`` rows of ``x`` (``N×H×W``, the side at row 0): mean level,
    log along-line difference energy, log to-next-line difference energy, valid share: each ``N×n_lines``."""
    xs, vs = x[:, : n_lines + 1], v[:, : n_lines + 1]
    tiny = 1e-8
    cnt = vs[:, :n_lines].sum(dim=-1)
    mean = (xs[:, :n_lines] * vs[:, :n_lines]).sum(-1) / cnt.clamp_min(1.0)
    da = (xs[:, :n_lines, 1:] - xs[:, :n_lines, :-1]).square() * vs[:, :n_lines, 1:] * vs[:, :n_lines, :-1]
    ca = (vs[:, :n_lines, 1:] * vs[:, :n_lines, :-1]).sum(-1)
    along = torch.log(da.sum(-1) / ca.clamp_min(1.0) + tiny)
    dp = (xs[:, 1:] - xs[:, :-1]).square() * vs[:, 1:] * vs[:, :-1]
    cp = (vs[:, 1:] * vs[:, :-1]).sum(-1)
    perp = torch.log(dp.sum(-1) / cp.clamp_min(1.0) + tiny)
    return mean, along, perp, cnt / float(x.shape[-1])


def _robust_z(outer: torch.Tensor, inner: torch.Tensor, ok_in: torch.Tensor, floor: float) -> torch.Tensor:
    """``|outer − median(inner)| / max(1.4826·MAD(inner), floor)`` per image: ``N×a``, ``N×b`` → ``N×a``."""
    vals = torch.where(ok_in, inner, torch.full_like(inner, float("nan")))
    med = vals.nanmedian(dim=1, keepdim=True).values
    mad = (vals - med).abs().nanmedian(dim=1, keepdim=True).values
    return (outer - med).abs() / torch.clamp(1.4826 * mad, min=floor)


def edge_scores(x: torch.Tensor, v: torch.Tensor, *, strip: int = 12, inner: int = 48) -> dict[str, torch.Tensor]:
    """``edge_left``, ``edge_right``, ``edge_top``, ``edge_bottom`` and ``edge_score`` (robust z units),
    each ``(N,)``; NaN for a side with no valid outer line or fewer than 8 valid interior lines."""
    n_lines = strip + inner
    m = n_lines + 1  # only the lines near each side are read (flips of thin slices, not of the image)
    xt, vt = x.transpose(-1, -2), v.transpose(-1, -2)
    views = {"top": (x[:, :m], v[:, :m]), "bottom": (x[:, -m:].flip(-2), v[:, -m:].flip(-2)),
             "left": (xt[:, :m], vt[:, :m]), "right": (xt[:, -m:].flip(-2), vt[:, -m:].flip(-2))}
    out: dict[str, torch.Tensor] = {}
    for side in SIDES:
        xs, vs = views[side]
        if min(x.shape[-2], x.shape[-1]) < n_lines + 2:
            out[f"edge_{side}"] = torch.full(x.shape[:1], float("nan"), device=x.device, dtype=x.dtype)
            continue
        mean, along, perp, share = _line_stats(xs, vs, n_lines)
        ok = share >= 0.5
        o, i = slice(0, strip), slice(strip + 4, n_lines)
        zs = []
        for stat, floor in ((mean, 0.01), (along, 0.15), (perp, 0.15)):
            z = _robust_z(stat[:, o], stat[:, i], ok[:, i], floor)
            zs.append(torch.where(ok[:, o], z, torch.zeros_like(z)).amax(dim=1))
        score = torch.stack(zs).amax(dim=0)
        usable = ok[:, o].any(dim=1) & (ok[:, i].sum(dim=1) >= 8)
        out[f"edge_{side}"] = torch.where(usable, score, torch.full_like(score, float("nan")))
    sides = torch.stack([torch.nan_to_num(out[f"edge_{s}"], nan=0.0) for s in SIDES])
    out["edge_score"] = sides.amax(dim=0)
    out["edge_side"] = sides.argmax(dim=0).to(x.dtype)  # index into SIDES
    return out


def _erode(m: torch.Tensor, r: int) -> torch.Tensor:
    """Binary erosion of ``N×H×W`` 0/1 by a (2r+1)² square; outside the frame counts as inside."""
    if r <= 0:
        return m
    inv = F.pad(1.0 - m[:, None], (r, r, r, r), value=0.0)
    return 1.0 - F.max_pool2d(inv, 2 * r + 1, stride=1)[:, 0]


def mask_seam_parts(x: torch.Tensor, v: torch.Tensor, *, skip: int = 1, ring: int = 3, gap: int = 6,
                    ref: int = 4, block: int = 32, min_px: int = 16) -> dict[str, torch.Tensor]:
    """Seam along the mask contour (see the module docstring), each ``(N,)``:

    * ``mask_seam_score``: ``|median over blocks|`` of the relative offset of the band ``skip``–``ring`` px
      inside the contour against the band ``gap``–``gap+ref`` px inside (the outermost ``skip`` px hold
      pixels mixed with what the mask removed, and JPEG ringing);
    * ``mask_seam_t``: that median over its spread across blocks, ``|med| / (1.4826·MAD + 0.01)``: a halo
      is the same offset all along the contour, texture and shadows differ from block to block;
    * ``mask_seam_agree``: share of blocks whose offset has the median's sign.

    NaN where there is no contour (or fewer than 4 blocks with both bands)."""
    e_skip = _erode(v, skip)
    e_ring = _erode(v, ring)
    e_gap = _erode(v, gap)
    e_ref = _erode(v, gap + ref)
    band_ring = e_skip * (1.0 - e_ring)
    band_ref = e_gap * (1.0 - e_ref)
    k = block
    n, h, w = x.shape
    hc, wc = (h // k) * k, (w // k) * k

    def sums(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t[:, None, :hc, :wc], k)[:, 0] * float(k * k)

    s_r, c_r = sums(x * band_ring), sums(band_ring)
    s_f, c_f = sums(x * band_ref), sums(band_ref)
    ok = (c_r >= min_px) & (c_f >= min_px)
    m_r = s_r / c_r.clamp_min(1.0)
    m_f = s_f / c_f.clamp_min(1.0)
    rel = (m_r - m_f) / m_f.abs().clamp_min(0.02)
    rel = torch.where(ok, rel, torch.full_like(rel, float("nan"))).reshape(n, -1)
    med = rel.nanmedian(dim=1).values
    mad = (rel - med[:, None]).abs().nanmedian(dim=1).values
    agree = torch.nanmean(torch.where(ok.reshape(n, -1), ((rel * torch.sign(med[:, None])) > 0).to(x.dtype),
                                      torch.full_like(rel, float("nan"))), dim=1)
    enough = ok.reshape(n, -1).sum(dim=1) >= 4
    nan = torch.full_like(med, float("nan"))
    return {"mask_seam_score": torch.where(enough, med.abs(), nan),
            "mask_seam_t": torch.where(enough, med.abs() / (1.4826 * mad + 0.01), nan),
            "mask_seam_agree": torch.where(enough, agree, nan)}


def mask_seam_score(x: torch.Tensor, v: torch.Tensor, **kw: int) -> torch.Tensor:
    """``mask_seam_score`` of :func:`mask_seam_parts`: ``(N,)``."""
    return mask_seam_parts(x, v, **kw)["mask_seam_score"]
