"""Misplaced patches processed after the copy (resampled, blended, re-compressed): a local block search.

The copied grain (:mod:`trackdiag.functional.pixel_copy`) needs the 1-px grain to repeat; a resampled copy
keeps only a coarser band of it, and the whole-wall (whitened) cross-correlation does not rank its
displacement among its highest peaks (a copy covers ~5 % of the wall; docs/pixel.md, tenth sitting). Here
the displacement is searched **block by block** (``signal``: ``B×H×W`` luminance, ``region``: ``B×H×W``
bool, the wall):

1. :func:`bandpass_grain`: the luminance's band-pass (difference of Gaussians σ ``lo`` − ``hi`` px) on the
   brick faces (pixels whose Sobel magnitude of the σ 1.5-blurred wall is below its median, inside the
   region eroded by 2 px; 0 elsewhere);
2. :func:`block_candidates`: every ``block``-px block of it (step ``stride``, at least ``min_face`` of it
   faces) is matched by normalised cross-correlation against the whole band-pass image under each transform
   (:data:`~trackdiag.functional.pixel_copy.TRANSFORMS`); a block's match counts when it reaches ``level``
   and beats the block's best match more than ``sup`` px away by ``margin`` (a ratio test: a one-
   dimensional structure, a mortar line or a streak, matches all along itself under a flip and is no
   evidence of a copy); displacements that at least ``votes`` blocks within ``reach`` px of each other agree
   on (± ``tol`` px: a resampled copy's displacement drifts over its box) are the candidates. All blocks
   are correlated with the four transformed images in one batched FFT on the faces' bounding box (twelfth
   sitting: 5× less CPU than one FFT per block and transform over the padded frame, the same matches);
3. :func:`bandpass_match`: per candidate, the local normalised correlation (``window`` px) of the faces'
   band-pass with its transform at that displacement, best over ± ``radius`` px (the offsets as one batch
   of cumulative-sum box sums over the region's bounding box);
4. :func:`block_copy_pairs`: pixels ≥ ``match`` (the match beside the displacement, for the ``distinct``
   test, computed only around them) closed over 5 px and opened over ``open_px`` px, components of
   ≥ ``min_area`` px grown by ``grow`` px (the window's reach), each with its partner (a component its
   partner overlaps by more than half is a flip's axis, dropped), as
   :func:`~trackdiag.functional.pixel_copy.copy_pairs` returns them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pixel_copy import TRANSFORMS, _apply, add_pairs
from .pixel_edit import box_sum
from .pixel_phase import _blur
from .pixel_translate import edge_magnitude

__all__ = ["bandpass_grain", "block_candidates", "bandpass_match", "block_copy_pairs"]


def bandpass_grain(signal: torch.Tensor, region: torch.Tensor, *, lo: float = 0.8, hi: float = 2.0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(``g``, ``faces``, ``inner``), each ``B×H×W``: the band-pass of ``signal`` on the faces (0 elsewhere),
    the faces (bool) and the region eroded by 2 px (bool)."""
    x = signal.float()[:, None]
    g = (_blur(x, lo, lo) - _blur(x, hi, hi))[:, 0]
    inner = -F.max_pool2d(-F.pad(region.float()[:, None], (2, 2, 2, 2)), 5, stride=1)[:, 0] > 0.5
    edges = edge_magnitude(_blur(x, 1.5, 1.5)[:, 0])
    faces = torch.zeros_like(inner)
    for i in range(g.shape[0]):
        if bool(inner[i].any()):
            faces[i] = inner[i] & (edges[i] < edges[i][inner[i]].median())
    return torch.where(faces, g, torch.zeros_like(g)), faces, inner


def _fast_len(n: int) -> int:
    """The smallest even ``m ≥ n`` whose prime factors are 2, 3 and 5 (a fast FFT length)."""
    m = n + n % 2
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 2


def _window_fill(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, reach: int, value: float) -> None:
    """In place: ``x[n, cy[n] + i, cx[n] + j] = value`` for ``|i|, |j| ≤ reach`` inside the frame (``x``:
    ``N×H×W``; ``cy``, ``cx``: ``(N,)`` long)."""
    n, h, w = x.shape
    o = torch.arange(-reach, reach + 1, device=x.device)
    yy = (cy[:, None, None] + o[None, :, None]).expand(n, len(o), len(o))
    xx = (cx[:, None, None] + o[None, None, :]).expand(n, len(o), len(o))
    nn = torch.arange(n, device=x.device)[:, None, None].expand_as(yy)
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    x[nn[ok], yy[ok], xx[ok]] = value


def _matches(g: torch.Tensor, faces: torch.Tensor, inner: torch.Tensor, *, block: int, stride: int,
             min_face: float, exclude: int, sup: int, min_inner: float = 0.75,
             chunk_elements: int = 1 << 23) -> torch.Tensor:
    """``N×7`` float: per block and transform ``(transform index, by, bx, dy, dx, ncc, second)`` (one image,
    ``H×W`` each): the best normalised correlation of the block with the transformed band-pass image at
    ``(by + dy, bx + dx)`` and the best more than ``sup`` px from it.

    One batched FFT correlation of the blocks with the four transformed images, on the faces' bounding box
    (``g`` is 0 elsewhere, so every window position that reaches no face reads −1 as before, and no other
    position is missed), at a 2-3-5 FFT length without wrap-around; blocks in chunks of at most
    ``chunk_elements`` correlation values."""
    h, w = g.shape
    k = block
    ok = F.avg_pool2d(inner.float()[None, None], k, stride=stride)[0, 0] >= min_inner
    ok &= F.avg_pool2d(faces.float()[None, None], k, stride=stride)[0, 0] >= min_face
    py, px = (torch.nonzero(ok, as_tuple=True))
    py, px = py * stride, px * stride
    if py.numel() == 0:
        return g.new_zeros(0, 7)
    tb = torch.stack([g[y:y + k, x:x + k] for y, x in zip(py.tolist(), px.tolist(), strict=True)])
    tb = tb / tb.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
    ys, xs = torch.nonzero(faces, as_tuple=True)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    gc = g[y0:y1, x0:x1]
    hc, wc = gc.shape
    # window corners s = -(k-1) .. hc-1 on the crop: a linear correlation needs hc + k - 1 values
    ly, lx = _fast_len(hc + k - 1), _fast_len(wc + k - 1)
    names = range(len(TRANSFORMS))
    imgs = [_apply(gc, name) for name in TRANSFORMS]
    # each image shifted by k - 1 px into a zero frame: index i of the correlation is corner s = i - (k-1),
    # and what wraps around lands in that zero band
    spec_img = torch.stack([torch.fft.rfft2(F.pad(img, (k - 1, 0, k - 1, 0)), s=(ly, lx)) for img in imgs])
    # per transform: the crop's corner in the transformed frame, the window energies, the corner range
    # inside the frame (global corners 0..h-k)
    geo = []
    for t, name in enumerate(TRANSFORMS):
        oy = h - y1 if name in ("flip_y", "rot180") else y0
        ox = w - x1 if name in ("flip_x", "rot180") else x0
        e2 = F.avg_pool2d(F.pad((imgs[t] ** 2)[None, None], (k - 1, k - 1, k - 1, k - 1)), k,
                          stride=1)[0, 0] * (k * k)  # (hc+k-1)×(wc+k-1), index i <-> corner oy-(k-1)+i
        iy0, ix0 = max(0, k - 1 - oy), max(0, k - 1 - ox)
        iy1, ix1 = min(hc + k - 1, h - oy), min(wc + k - 1, w - ox)
        e2 = e2[iy0:iy1, ix0:ix1]
        good = e2 > 1e-10
        inv = torch.where(good, e2.clamp_min(1e-12).rsqrt(), torch.zeros_like(e2))
        bias = torch.where(good, torch.zeros_like(e2), torch.full_like(e2, -1.0))
        geo.append((oy - (k - 1) + iy0, ox - (k - 1) + ix0, iy0, iy1, ix0, ix1, inv, bias))
    per = max(1, chunk_elements // (len(TRANSFORMS) * ly * lx))
    rows: list[list[torch.Tensor]] = [[] for _ in names]
    for a in range(0, len(py), per):
        spec_b = torch.fft.rfft2(tb[a:a + per], s=(ly, lx)).conj()
        corr = torch.fft.irfft2(spec_b[None] * spec_img[:, None], s=(ly, lx))  # 4×n×ly×lx
        cy, cx = py[a:a + per], px[a:a + per]
        for t in names:
            qy0, qx0, iy0, iy1, ix0, ix1, inv, bias = geo[t]
            ncc = torch.addcmul(bias, corr[t, :, iy0:iy1, ix0:ix1], inv)
            hh, ww = ncc.shape[-2:]
            if TRANSFORMS[t] == "identity":  # every block matches itself
                _window_fill(ncc, cy - qy0, cx - qx0, exclude, -1.0)
            val, idx = ncc.reshape(len(cy), -1).max(dim=1)
            ly_, lx_ = idx // ww, idx % ww
            _window_fill(ncc, ly_, lx_, sup, -1.0)
            second = ncc.reshape(len(cy), -1).max(dim=1).values
            rows[t].append(torch.stack([torch.full_like(val, float(t)), cy.float(), cx.float(),
                                        (ly_ + qy0 - cy).float(), (lx_ + qx0 - cx).float(), val,
                                        second.clamp_min(-1.0)], dim=1))
    return torch.cat([torch.cat(r) for r in rows])


def block_candidates(g: torch.Tensor, faces: torch.Tensor, inner: torch.Tensor, *, block: int = 16,
                     stride: int = 8, min_face: float = 0.4, level: float = 0.5, margin: float = 0.2,
                     sup: int = 3, tol: int = 3, reach: int = 40, votes: int = 2, exclude: int = 8,
                     count: int = 6) -> list[list[tuple[str, int, int]]]:
    """Per sample, up to ``count`` ``(transform, dy, dx)`` that at least ``votes`` blocks agree on (most
    votes first; ``g``, ``faces``, ``inner``: ``B×H×W`` from :func:`bandpass_grain`)."""
    out: list[list[tuple[str, int, int]]] = []
    for i in range(g.shape[0]):
        m = _matches(g[i], faces[i], inner[i], block=block, stride=stride, min_face=min_face,
                     exclude=exclude, sup=sup)
        m = m[(m[:, 5] >= level) & (m[:, 5] - m[:, 6] >= margin)]
        found: list[tuple[str, int, int]] = []
        if len(m):
            same = m[:, None, 0] == m[None, :, 0]
            same &= ((m[:, None, 3:5] - m[None, :, 3:5]).abs() <= tol).all(-1)
            same &= ((m[:, None, 1:3] - m[None, :, 1:3]).abs() <= reach).all(-1)
            n = same.sum(dim=1)
            for j in torch.argsort(-n, stable=True).tolist():
                if int(n[j]) < votes or len(found) >= count:
                    break
                name, dy, dx = TRANSFORMS[int(m[j, 0])], int(m[j, 3]), int(m[j, 4])
                if not any(f[0] == name and abs(f[1] - dy) <= tol and abs(f[2] - dx) <= tol for f in found):
                    found.append((name, dy, dx))
        out.append(found)
    return out


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of the True pixels of ``mask`` (``H×W``), None when there are none."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if ys.numel() == 0:
        return None
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def bandpass_match(g: torch.Tensor, faces: torch.Tensor, name: str, dy: int, dx: int, *, window: int = 13,
                   radius: int = 2, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """``H×W``: the normalised correlation over ``window`` px of ``g`` (faces only) with ``T(g)`` at
    ``p + (dy, dx) + δ``, best over ``|δ| ≤ radius``; −1 where under 0.3 of the window has faces at both
    ends, and outside ``box`` (``(y0, y1, x0, x1)``, default the frame: only it is computed). ``g``,
    ``faces``: ``H×W``. The ``(2 radius + 1)²`` offsets run as one batch of cumulative-sum box sums
    (:func:`~trackdiag.functional.pixel_edit.box_sum`) over the box and the window's reach."""
    shifts = [(dy + ey, dx + ex) for ey in range(-radius, radius + 1) for ex in range(-radius, radius + 1)]
    return _best_match(g, faces, name, shifts, window=window, box=box)


def _best_match(g: torch.Tensor, faces: torch.Tensor, name: str, shifts: list[tuple[int, int]], *,
                window: int, box: tuple[int, int, int, int] | None) -> torch.Tensor:
    """:func:`bandpass_match` over the displacements ``shifts`` (``(dy, dx)`` each)."""
    h, w = g.shape
    y0, y1, x0, x1 = box if box is not None else (0, h, 0, w)
    r = window // 2
    ya, yb, xa, xb = max(0, y0 - r), min(h, y1 + r), max(0, x0 - r), min(w, x1 + r)
    pad = max(max(abs(a), abs(b)) for a, b in shifts)
    m = faces.float()
    txp = F.pad(_apply(g, name), (pad, pad, pad, pad))
    tmp = F.pad(_apply(m, name), (pad, pad, pad, pad))
    x, mx = g[ya:yb, xa:xb], m[ya:yb, xa:xb]
    tx = torch.stack([txp[pad + ya + sy:pad + yb + sy, pad + xa + sx:pad + xb + sx] for sy, sx in shifts])
    tm = torch.stack([tmp[pad + ya + sy:pad + yb + sy, pad + xa + sx:pad + xb + sx] for sy, sx in shifts])
    tm = tm * mx
    a, b = x * tm, tx * tm
    sums = box_sum(torch.stack([tm, a * a, b * b, a * b]), window)  # 4×S×h'×w'
    den = (sums[1].clamp_min(0) * sums[2].clamp_min(0)).sqrt()
    ok = (sums[0] > 0.3 * window * window) & (den > 1e-12 * window * window)
    best = torch.where(ok, sums[3] / den.clamp_min(1e-30), torch.full_like(den, -1.0)).amax(dim=0)
    out = torch.full_like(g, -1.0)
    out[y0:y1, x0:x1] = best[y0 - ya:y1 - ya, x0 - xa:x1 - xa]
    return out


def block_copy_pairs(signal: torch.Tensor, region: torch.Tensor, *, match: float = 0.5,
                     distinct: float = 0.25, away: int = 6, min_area: int = 250, grow: int = 4,
                     window: int = 13, open_px: int = 5) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per sample, the pairs ``(component, partner)`` (``H×W`` bool each) whose band-pass grain matches at
    one of the :func:`block_candidates` (``signal``: ``B×H×W``; ``region``: ``B×H×W`` bool).

    A pixel matches where :func:`bandpass_match` reaches ``match`` and beats the match ``away`` px off the
    displacement (4 directions, best over ±1 px) by ``distinct`` (a one-dimensional structure matches all
    along itself); matching pixels closed over 5 px and opened over ``open_px`` px (sparse matches trailing
    off beyond a copy would join it; thirteenth sitting), components of ≥ ``min_area`` px grown by ``grow``
    px (the window reads a copy's border low)."""
    import numpy as np
    from scipy import ndimage

    g, faces, inner = bandpass_grain(signal, region)
    cands = block_candidates(g, faces, inner)
    out: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    for i, cand in enumerate(cands):
        found: list[tuple[torch.Tensor, torch.Tensor]] = []
        box = _bbox(inner[i])
        for name, dy, dx in cand:
            m0 = bandpass_match(g[i], faces[i], name, dy, dx, window=window, box=box)
            hot = (m0 >= match) & inner[i]
            near = _bbox(hot)
            if near is None:
                continue
            # the match beside the displacement, only where the match itself is high enough
            four = ((away, 0), (-away, 0), (0, away), (0, -away))
            beside = [(dy + sy + ey, dx + sx + ex) for sy, sx in four for ey in (-1, 0, 1)
                      for ex in (-1, 0, 1)]
            off = _best_match(g[i], faces[i], name, beside, window=window, box=near)
            keep = (hot & (m0 - off >= distinct)).cpu().numpy()
            hot_np = ndimage.binary_closing(keep, np.ones((5, 5)))
            if open_px > 1:  # sparse matches trailing off beyond the copy do not draw its box
                hot_np = ndimage.binary_opening(hot_np, np.ones((open_px, open_px)))
            add_pairs(found, hot_np, name, dy, dx, min_area=min_area, grow=grow, device=signal.device)
        out.append(found)
    return out
