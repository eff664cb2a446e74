"""Score the defects-inside-an-edit steps of the pixel diagnosis on generated pairs with known truth.

    PYTHONPATH=. python benchmarks/eval_pixel_edit.py --step boxes --seeds 201 202 203 204 --n 12
    PYTHONPATH=. python benchmarks/eval_pixel_edit.py --step bands --seeds 9311 --n 12 --cache /tmp/pairs

Per seed, ``--n`` iterations each make (in this order) one stripe pair (rows/cols alternating, amplitude
0.08/0.12/0.16), one offset box, one misplaced box and one clean edit (``trackdiag.testing.pairs``,
re-textured walls). The steps run alone, as the pixel judge runs them on an edited sample:

* ``boxes``: the judge's phase boxes (:func:`~trackdiag.functional.pixel_phase.phase_departure`,
  :func:`~trackdiag.functional.pixel_phase.departure_boxes` and the weak boxes kept by their lattice-translate
  support, :mod:`trackdiag.functional.pixel_translate`) with the judge's defaults (``--no-support``: the
  strong boxes alone); found = a box with IoU >= 0.5 with the planted one; false = the pair has a box matching
  nothing (clean: any box);
* ``translate`` (a measured alternative, not used by the judge): the lattice-translate residual of the
  output's gradient magnitude, ``r_t(x)`` = RMS over a 7-px window of ``E(x) - E(x + t + δ)`` (``δ`` the
  best of ±2 px, the photo's perspective), for ``t`` = ±t1, ±t2 (:func:`~trackdiag.functional.pixel_texture.
  lattice_vectors`), each as a robust z over the wall (median / 1.4826 MAD); pixels with ``z > --hot`` are
  voted at ``x + t/2`` (the cut lies between ``x`` and ``x + t``: a box's votes form a frame centred on its
  border, ±|t|/2 wide), closed over 5 px, components of >= 150 px, each box shrunk by half the largest
  ``|t_y|``, ``|t_x|``; scored like ``boxes``;
* ``probe`` (eighth sitting, measured alternatives for misplaced patches, none used by the judge): per
  misplaced pair and clean edit, three signals a flipped copy might leave where its lattice phase matches:
  ``shape``, the mirror-sensitive phase ``arg(z2 · conj(z1)²)`` of the fundamental ``z1`` and its 2nd
  harmonic ``z2`` (:func:`~trackdiag.functional.pixel_phase.demodulate`; a translation leaves it, a mirror
  negates it), its mean departure phasor over 6 px from the wall's mean (in-box median vs the clean walls'
  99th percentile); ``orphan``, mortar pixels (bright-ridge response ``-∂²`` at σ 1.5, ≥ 0.4 of its 95th
  percentile) none of whose lattice translates (±t1, ±t2, ±(t1 ± t2), at least 3 inside the wall) meets
  mortar within ±2 px, as a density over σ 6 px (in-box max vs the rest of the wall's max); ``cut``, the
  straight step across a box border (a step of one sign over 2–5 px each side, so a thin mortar ridge
  gives 0), averaged over 28 px along it (the four borders' mid-points vs the wall's 99th percentile);
* ``bands``: :func:`~trackdiag.functional.pixel_judge.edited_band_level` (the luminance's
  :func:`~trackdiag.functional.pixel_edit.band_level` of its
  :func:`~trackdiag.functional.pixel_edit.matched_lattice_residual`, or the chroma level scaled;
  ``--chroma-level 0``: luminance alone), level >= 0.06; found = a band with the right axis on the planted
  lines (± 2 px); false = any other band.

``--cohort realistic`` (tenth sitting) replaces the cohorts by misplaced patches copied the way an inpainting
model would (``trackdiag.testing.pairs.COPY_STYLES``), per seed ``--n`` iterations each making one misplaced
pair (cycling ``resampled``, ``blended``, ``inpainted`` and an exact copy whose output is re-compressed as
JPEG at q 70–90) and one clean edit (every other one re-compressed at q 70–90), from ``default_rng((seed,
18))``; only the ``boxes`` step reads it. The block search for copies processed after the copy
(:mod:`trackdiag.functional.pixel_blocks`, eleventh sitting) is on, as in the judge since the twelfth sitting;
``--no-blocks`` leaves it out.

Prints each miss (and each false find) and the counts ``[found, n, false]`` per kind as JSON. With
``--cache`` the pairs are stored there (pickle, written and read only by this script).
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage

from trackdiag.functional.pixel_judge import _phase_score, edited_band_level, judge_against_input
from trackdiag.functional.pixel_texture import lattice_vectors
from trackdiag.functional.pixel_translate import _residual, edge_magnitude
from trackdiag.testing.pairs import Pair, make_pair

KINDS = ("stripe", "offset", "misplaced", "clean")


def cohort(seed: int, n: int, cache: Path | None) -> dict[str, list[Pair]]:
    path = cache / f"pairs_{seed}_{n}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)  # written by this script
    rng = np.random.default_rng(seed)
    out: dict[str, list[Pair]] = {k: [] for k in KINDS}
    for i in range(n):
        axis: Literal["rows", "cols"] = "rows" if i % 2 == 0 else "cols"
        stripe = (axis, 0.08 + 0.04 * (i % 3))
        out["stripe"].append(make_pair(rng, edited=True, stripe=stripe))
        out["offset"].append(make_pair(rng, edited=True, box="offset"))
        out["misplaced"].append(make_pair(rng, edited=True, box="misplaced"))
        out["clean"].append(make_pair(rng, edited=True))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(out, fh)
    return out


REALISTIC = ("resampled", "blended", "inpainted", "jpeg")


def realistic_cohort(seed: int, n: int, cache: Path | None) -> dict[str, list[Pair]]:
    """Misplaced patches copied as an inpainting model would, and clean edits (half re-compressed)."""
    path = cache / f"realistic_{seed}_{n}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)  # written by this script
    rng = np.random.default_rng((seed, 18))
    out: dict[str, list[Pair]] = {"misplaced": [], "clean": []}
    for i in range(n):
        style = REALISTIC[i % len(REALISTIC)]
        q = int(rng.integers(70, 91)) if style == "jpeg" else None
        p = make_pair(rng, edited=True, box="misplaced", copy_style="exact" if q else style, jpeg_quality=q)
        p.kind = f"edited/{style}"
        out["misplaced"].append(p)
        q = int(rng.integers(70, 91)) if i % 2 else None
        out["clean"].append(make_pair(rng, edited=True, jpeg_quality=q))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump(out, fh)
    return out


def _prep(p: Pair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
    inp = torch.from_numpy(np.ascontiguousarray(p.inp)).permute(2, 0, 1)[None].float()
    unclipped = ((out > 0.01) & (out < 0.99) & (inp > 0.01) & (inp < 0.99)).all(dim=1)
    mask = torch.from_numpy(p.mask)[None]
    return out.mean(dim=1), mask & unclipped, mask


def _out_region(p: Pair) -> torch.Tensor:
    """``1×H×W``: the mask less the output's clipped pixels (the judge's region for the block search)."""
    out = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
    return torch.from_numpy(p.mask)[None] & ((out > 0.01) & (out < 0.99)).all(dim=1)


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _defaults() -> dict[str, Any]:
    kw = judge_against_input.__kwdefaults__ or {}
    return {k: kw[k] for k in ("phase_deg", "phase_min_area", "phase_coherent", "phase_edge_floor",
                               "phase_weak_deg", "phase_support", "band_level_edited", "band_kappa",
                               "band_chroma_level", "band_chroma_z", "band_chroma_along", "copy_level",
                               "copy_blocks", "copy_reach")}


def score_boxes(p: Pair, d: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    own, region, mask = _prep(p)
    score = _phase_score(own, mask, phase_deg=d["phase_deg"], min_area=d["phase_min_area"], floor=1.0,
                         peak=1.0, coherent=d["phase_coherent"], edge_floor=d["phase_edge_floor"],
                         weak_deg=d["phase_weak_deg"], support=d["phase_support"],
                         vectors=lattice_vectors(own, region), support_region=region,
                         copy_level=d["copy_level"],
                         block_region=_out_region(p) if d["copy_blocks"] else None,
                         copy_reach=d["copy_reach"])
    keep = (score[0] > 0).numpy()
    lab, _ = ndimage.label(keep, structure=np.ones((3, 3)))
    return [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(lab) if s]


def score_translate(p: Pair, hot: float) -> list[tuple[int, int, int, int]]:
    own, region, _ = _prep(p)
    vec = lattice_vectors(own, region)[0]
    e, reg = edge_magnitude(own)[0], region[0]
    ts = [(round(float(v[0])) * s, round(float(v[1])) * s) for v in vec for s in (1, -1)]
    votes = np.zeros(tuple(reg.shape), bool)
    for t in ts:
        r = _residual(e, reg, t, 2, 7)
        ok = torch.isfinite(r) & reg
        med = r[ok].median()
        z = torch.where(ok, (r - med) / (1.4826 * (r[ok] - med).abs().median()).clamp_min(1e-9), 0.0)
        votes |= ndimage.shift((z > hot).numpy().astype(np.uint8), (-t[0] / 2, -t[1] / 2), order=0) > 0
    votes = ndimage.binary_closing(votes, np.ones((5, 5)))
    lab, _ = ndimage.label(votes, structure=np.ones((3, 3)))
    hy, hx = max(abs(t[0]) for t in ts) / 2, max(abs(t[1]) for t in ts) / 2
    out = []
    for j, s in enumerate(ndimage.find_objects(lab)):
        if s is None or int((lab[s] == j + 1).sum()) < 150:
            continue
        b = (int(s[1].start + hx), int(s[0].start + hy), int(s[1].stop - hx), int(s[0].stop - hy))
        if b[2] - b[0] >= 8 and b[3] - b[1] >= 8:
            out.append(b)
    return out


def score_bands(p: Pair, d: dict[str, Any]) -> list[tuple[str, int, int, float]]:
    own, region, _ = _prep(p)
    rgb = torch.from_numpy(np.ascontiguousarray(p.out)).permute(2, 0, 1)[None].float()
    vec = lattice_vectors(own, region)
    out = []
    for axis in ("rows", "cols"):
        lv = edited_band_level(rgb, region, vec, axis=axis, kappa=d["band_kappa"],
                               level=d["band_level_edited"], chroma_level=d["band_chroma_level"],
                               chroma_z=d["band_chroma_z"], chroma_along=d["band_chroma_along"])[0].numpy()
        lab, n = ndimage.label(lv >= d["band_level_edited"])
        for j in range(1, n + 1):
            idx = np.nonzero(lab == j)[0]
            out.append((axis, int(idx[0]), int(idx[-1]) + 1, float(lv[idx].max())))
    return out


def _probe(p: Pair) -> dict[str, float]:
    """The ``probe`` step's three signals for one pair (see the module docstring)."""
    from trackdiag.functional.pixel_phase import _blur, demodulate, fundamental_frequency

    own, region, _ = _prep(p)
    img, reg = own[0].double().numpy(), region[0].numpy()
    box = np.zeros_like(reg)
    if p.boxes:
        x0, y0, x1, y1 = p.boxes[0]
        box[y0:y1, x0:x1] = True
    inner = ndimage.binary_erosion(box, np.ones((13, 13)))
    near = ndimage.binary_dilation(box, np.ones((25, 25)))
    out: dict[str, float] = {}
    k = fundamental_frequency(own, region)[0]
    if bool(torch.isfinite(k).all()):  # shape: arg(z2 conj(z1)^2), negated by a mirror
        z1, ok1 = demodulate(own[0], region[0], k)
        z2, ok2 = demodulate(own[0], region[0], 2 * k)
        bis = torch.where(ok1 & ok2, z2 * z1.conj() ** 2, torch.zeros_like(z1))
        good = (ok1 & ok2) & (bis.abs() > 0.2 * bis.abs()[ok1 & ok2].median())
        u = torch.where(good, bis / bis.abs().clamp_min(1e-12), torch.zeros_like(bis))
        ref = u[good].mean()
        d = u * ref.conj() / ref.abs()
        sm = _blur(torch.stack([d.real, d.imag, good.float()])[None], 6.0, 6.0)[0]
        dep = torch.rad2deg(torch.angle(torch.complex(sm[0], sm[1])).abs()).numpy()
        ok = reg & (sm[2].numpy() > 0.3)
        out["theta_wall"] = float(np.degrees(np.angle(complex(ref))))
        out["shape_in"] = float(np.median(dep[ok & inner])) if (ok & inner).any() else 0.0
        out["shape_wall"] = float(np.quantile(dep[ok & ~near], 0.99)) if (ok & ~near).any() else 0.0
    s = 1.0 if ((img[reg] - img[reg].mean()) ** 3).mean() > 0 else -1.0  # mortar brighter than faces
    ridge = np.maximum(-s * ndimage.gaussian_filter(img, 1.5, order=(2, 0)),
                       -s * ndimage.gaussian_filter(img, 1.5, order=(0, 2))).clip(0)
    joint = (ridge >= 0.4 * np.quantile(ridge[reg], 0.95)) & reg
    joint_d = ndimage.binary_dilation(joint, np.ones((5, 5)))
    t1, t2 = ((round(float(c)) for c in v) for v in lattice_vectors(own, region)[0])
    (a, b), (c, e) = t1, t2
    n_in = np.zeros(reg.shape, int)
    n_hit = np.zeros(reg.shape, int)
    for dy, dx in [(a, b), (c, e), (a + c, b + e), (a - c, b - e)]:
        for sy, sx in ((dy, dx), (-dy, -dx)):
            r_at = ndimage.shift(reg, (-sy, -sx), order=0, cval=False)
            n_in += r_at
            n_hit += r_at & ndimage.shift(joint_d, (-sy, -sx), order=0, cval=False)
    dens = ndimage.gaussian_filter((joint & (n_in >= 3) & (n_hit == 0)).astype(float), 6.0)
    wall = ndimage.binary_erosion(reg, np.ones((9, 9)))
    out["orphan_in"] = float(dens[box & wall].max()) if (box & wall).any() else 0.0
    out["orphan_wall"] = float(dens[wall & ~near].max()) if (wall & ~near).any() else 0.0
    smooth = ndimage.gaussian_filter(img, 0.7)
    cut = []
    for axis in (1, 0):  # axis 1: a vertical border (step across x), averaged along y
        v = np.stack([np.roll(smooth, -(d - 1), axis=axis) - np.roll(smooth, d, axis=axis)
                      for d in (2, 3, 4, 5)])
        step = np.where((v > 0).all(0) | (v < 0).all(0), np.abs(v).min(0), 0.0)
        inside = ndimage.binary_erosion(p.mask, np.ones((13, 13)))
        kern = np.ones(28) / 28
        num = ndimage.convolve1d(step * inside, kern, axis=1 - axis, mode="constant")
        den = ndimage.convolve1d(inside.astype(float), kern, axis=1 - axis, mode="constant")
        cut.append(np.where(den > 0.95, num / np.maximum(den, 1e-6), 0.0))
    grown = ndimage.binary_dilation(box, np.ones((7, 7)))
    both = np.maximum(*cut)
    out["cut_wall"] = float(np.quantile(both[inside & ~grown], 0.99))
    if p.boxes:
        x0, y0, x1, y1 = p.boxes[0]
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        out["cut_in"] = float(np.mean([cut[0][cy, x0], cut[0][cy, min(x1, 255)], cut[1][y0, cx],
                                       cut[1][min(y1, 255), cx]]))
    return out


def probe(seeds: list[int], n: int, cache: Path | None) -> dict[str, list[int]]:
    """Prints the ``probe`` signals per pair; returns per signal ``[misplaced pairs above the same seed's
    clean walls' largest level, misplaced pairs]``."""
    tally: dict[str, list[int]] = {}
    for seed in seeds:
        pairs = cohort(seed, n, cache)
        clean = [_probe(p) for p in pairs["clean"]]
        top = {key: max(c.get(f"{key}_wall", 0.0) for c in clean) for key in ("shape", "orphan", "cut")}
        for c in clean:
            print(seed, "clean", {k: round(v, 3) for k, v in c.items()}, flush=True)
        for i, p in enumerate(pairs["misplaced"]):
            m = _probe(p)
            print(seed, "misplaced", i, {k: round(v, 3) for k, v in m.items()}, flush=True)
            for key in ("shape", "orphan", "cut"):
                t = tally.setdefault(key, [0, 0])
                t[0] += m.get(f"{key}_in", 0.0) > top[key]
                t[1] += 1
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", choices=("boxes", "translate", "bands", "probe"), required=True)
    ap.add_argument("--no-support", action="store_true", help="boxes: the strong phase boxes alone")
    ap.add_argument("--no-copy", action="store_true", help="boxes: without the copied-grain boxes")
    ap.add_argument("--no-blocks", action="store_true", help="boxes: without the block search")
    ap.add_argument("--copy-reach", type=int, default=None,
                    help="boxes: cut phase boxes touching a copy box to this reach of it (0: off)")
    ap.add_argument("--band-level", type=float, default=None, help="bands: override the band level")
    ap.add_argument("--chroma-level", type=float, default=None, help="bands: chroma band level (0: off)")
    ap.add_argument("--chroma-along", type=float, default=None,
                    help="bands: the chroma level's guard against the spread along a line (0: off)")
    ap.add_argument("--hot", type=float, default=3.0, help="z level of the translate step")
    ap.add_argument("--cohort", choices=("default", "realistic"), default="default")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    d = _defaults()
    if args.band_level is not None:
        d["band_level_edited"] = args.band_level
    if args.chroma_level is not None:
        d["band_chroma_level"] = args.chroma_level
    if args.chroma_along is not None:
        d["band_chroma_along"] = args.chroma_along
    if args.copy_reach is not None:
        d["copy_reach"] = args.copy_reach
    if args.no_support:
        d["phase_weak_deg"] = 0.0
    if args.no_copy:
        d["copy_level"] = 0.0
    if args.no_blocks:
        d["copy_blocks"] = False
    if args.step == "probe":
        print(json.dumps(probe(args.seeds, args.n, args.cache)))
        return 0
    tally: dict[str, list[int]] = {}
    for seed in args.seeds:
        if args.cohort == "realistic":
            pairs = realistic_cohort(seed, args.n, args.cache)
            kinds: tuple[str, ...] = ("misplaced", "clean")
        else:
            pairs = cohort(seed, args.n, args.cache)
            kinds = ("stripe", "clean") if args.step == "bands" else ("offset", "misplaced", "clean")
        for kind in kinds:
            for i, p in enumerate(pairs[kind]):
                if args.step != "bands":
                    boxes = score_boxes(p, d) if args.step == "boxes" else score_translate(p, args.hot)
                    ious = [_iou(b, p.boxes[0]) for b in boxes] if p.boxes else []
                    found = any(v >= 0.5 for v in ious) if p.boxes else not boxes
                    false = any(v < 0.5 for v in ious) if p.boxes else bool(boxes)
                    detail = f"truth {p.boxes} boxes {boxes} ious {np.round(ious, 2).tolist()}"
                else:
                    bands = score_bands(p, d)
                    on = [b for b in bands if kind == "stripe" and b[0] == p.stripe_axis and p.stripe_band
                          and b[1] < p.stripe_band[1] + 2 and b[2] > p.stripe_band[0] - 2]
                    found = bool(on) if kind == "stripe" else not bands
                    false = len(bands) > len(on)
                    detail = f"truth {p.stripe_axis} {p.stripe_band} bands {bands}"
                name = p.kind.split("/")[1] if args.cohort == "realistic" and kind == "misplaced" else kind
                t = tally.setdefault(name, [0, 0, 0])
                t[0] += found
                t[1] += 1
                t[2] += false
                if not found or false:
                    print(seed, name, i, "found" if found else "MISS", detail, flush=True)
    print(json.dumps(tally))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
