"""The default ranking (``ranking.method=tiered``): verdicts first, then fidelity, then the artifact metrics.

1. **Verdicts.** Each checkpoint's worst verdict severity (0 none/info, 1 warn, 2 bad), from the logged
   ``trackdiag/<analyzer>/verdict/<code>`` metrics, or — where a run logged none (older runs, W&B,
   TensorBoard, local runs) — recomputed from the stored metrics with the analyzer's own rules
   (:func:`trackdiag.verdicts.evaluate`). A checkpoint with a bad verdict never ranks above one without
   (``ranking.severity_first=false`` turns this off).
2. **Fidelity** (``ref_detail_deficit_db``, ``pixel/diff_rmse``; lower is better): a blurry checkpoint has
   no artifacts because it has no detail, so it must not win on artifacts alone. ``ref_detail_deficit_db``
   (:mod:`trackdiag.functional.detail`) is the fine detail missing against the reference, in dB; the older
   ``ref_spectrum_distance`` (energy per octave) is not used: a blur barely moves it, and on photos it can
   even fall as the detail goes. Each fidelity column is
   measured in units of its own noise σ; checkpoints within :data:`TIE_SIGMA` σ of the best of a group
   are a fidelity tie, which the artifact metrics decide.
3. **Artifacts**: the mean rank over the artifact columns, each with its goal.

A column whose spread between checkpoints is within its spread inside a checkpoint (its step-to-step
noise, :func:`trackdiag.functional.changepoint.noise_sigma`; or the bootstrap SE over samples) cannot rank
anything
and is left out with a note. Rows equal in every key are ties and reported as ties.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

from ..core.values import ROOT
from ..functional.changepoint import noise_sigma
from .data import RunData, values_at
from .ranking import average_ranks, fmt
from .table import Comparison

__all__ = ["FIDELITY", "TIE_SIGMA", "severities", "column_noise", "tiered_rank", "is_verdict_key"]

#: Fidelity metrics by preference (short names; lower is better).
FIDELITY = ("ref_detail_deficit_db", "pixel/diff_rmse")
#: Two checkpoints are a fidelity tie when they differ by less than this many σ of the column's noise.
TIE_SIGMA = 2.0
_LEVELS = {"none": 0, "info": 0, "warn": 1, "bad": 2}


def is_verdict_key(key: str) -> bool:
    return key.startswith(ROOT + "/") and "/verdict/" in key


def severities(c: Comparison, runs: Sequence[RunData], *, analyzers: Sequence[str], tolerance: int
               ) -> tuple[np.ndarray, list[list[str]], list[str]]:
    """Per row: the worst verdict level ``(R,)`` int, the warn/bad codes, and notes (where the verdicts
    were recomputed). Logged verdict metrics are used where a run has them, per analyzer."""
    from ..verdicts import evaluate, rules_for

    by_id = {r.run_id: r for r in runs}
    level = np.zeros(len(c), dtype=np.int64)
    codes: list[list[str]] = [[] for _ in range(len(c))]
    notes: list[str] = []
    recomputed: set[str] = set()
    for i in range(len(c)):
        run = by_id[c.run_id[i]]
        step = np.array([c.step[i]])
        for a in analyzers:
            prefix = f"{ROOT}/{a}/"
            logged = [k for k in run.metrics if k.startswith(prefix + "verdict/")]
            if logged:
                for k in logged:
                    v, _ = values_at(run.metrics[k], step, tolerance)
                    if np.isfinite(v[0]) and v[0] >= 1:
                        level[i] = max(level[i], int(v[0]))
                        codes[i].append(f"{a}/{k.rsplit('/', 1)[-1]}")
                continue
            own = {k[len(prefix):]: k for k in run.metrics if k.startswith(prefix)}
            if not own:
                continue
            try:
                rules_for(a)
            except (KeyError, ImportError):
                continue
            summary = {}
            for short, k in own.items():
                v, _ = values_at(run.metrics[k], step, tolerance)
                if np.isfinite(v[0]):
                    summary[short] = float(v[0])
            for verdict in evaluate(a, summary):
                lv = _LEVELS.get(verdict.severity, 0)
                if lv >= 1:
                    level[i] = max(level[i], lv)
                    codes[i].append(f"{a}/{verdict.code}")
            recomputed.add(f"{run.name}:{a}")
    if recomputed:
        notes.append("verdicts recomputed from the stored metrics with the analyzers' own rules (no verdict "
                     f"metrics logged) for: {sorted(recomputed)[:10]}{' …' if len(recomputed) > 10 else ''}.")
    return level, codes, notes


def column_noise(c: Comparison, j: int, runs: Sequence[RunData],
                 within: Optional[Mapping[int, np.ndarray]] = None) -> float:
    """The within-checkpoint spread of column ``j``: the median bootstrap SE over the rows when
    ``within[j]`` (``(R,)``) is given, else the median step-to-step noise σ of each run's series."""
    if within is not None and j in within:
        w = within[j][np.isfinite(within[j])]
        if w.size:
            return float(np.median(w))
    key = c.specs[j].key
    sig = [noise_sigma(r.metrics[key].values[np.isfinite(r.metrics[key].values)])
           for r in runs if key in r.metrics and r.metrics[key].steps.size >= 6]  # fewer: no estimate
    return float(np.median(sig)) if sig else 0.0


def tiered_rank(c: Comparison, runs: Sequence[RunData], *, severity: np.ndarray, codes: list[list[str]],
                severity_first: bool = True, within: Optional[Mapping[int, np.ndarray]] = None,
                intervals: Optional[Mapping[tuple[int, int], tuple[float, float]]] = None) -> Comparison:
    """Fill ``c.rank``, ``c.score`` (the artifact mean rank), ``c.reasons``, ``c.verdict`` and the notes."""
    n = len(c)
    fid_cols = [j for j, s in enumerate(c.specs) if s.weight > 0 and _is_fidelity(s.base)]
    art_cols = [j for j, s in enumerate(c.specs) if s.weight > 0 and j not in fid_cols]
    notes: list[str] = []
    noise = {j: column_noise(c, j, runs, within) for j in fid_cols + art_cols}
    kept = []
    for j in art_cols:
        col = c.values[:, j]
        col = col[np.isfinite(col)]
        between = float(np.std(col)) if col.size > 1 else 0.0
        if col.size > 1 and between <= noise[j]:
            notes.append(f"{c.specs[j].label} left out of the ranking: its spread between checkpoints "
                         f"({fmt(between)}) is within its spread inside a checkpoint ({fmt(noise[j])}).")
        else:
            kept.append(j)
    art_cols = kept
    if not fid_cols:
        notes.append("ranked without fidelity: no ref_detail_deficit_db (log the reference: ref=...) and no "
                     "pixel/diff_rmse (log targets) — a blurry checkpoint may rank high because it has no "
                     "detail to carry artifacts.")
    # fidelity in noise units (oriented: lower is better), averaged over the fidelity columns
    if fid_cols:
        parts = []
        for j in fid_cols:
            v = -c.specs[j].sign * c.values[:, j]
            scale = noise[j] if noise[j] > 0 else max(float(np.nanstd(v)) * 0.01, 1e-12)
            parts.append(np.where(np.isfinite(v), v / scale, np.inf))
        fid = np.mean(parts, axis=0)
    else:
        fid = np.zeros(n)
    if art_cols:
        sign = np.array([c.specs[j].sign for j in art_cols])
        w = np.array([c.specs[j].weight for j in art_cols])
        vals = c.values[:, art_cols]
        oriented = np.where(np.isfinite(vals), -sign[None, :] * vals, np.inf)
        art = (average_ranks(oriented) * w[None, :]).sum(axis=1) / w.sum()
    else:
        art = np.zeros(n)
    tier = severity.astype(np.int64) if severity_first else np.zeros(n, dtype=np.int64)
    # fidelity groups inside each tier: greedy from the best, within TIE_SIGMA of the group's leader
    group = np.zeros(n, dtype=np.int64)
    for t in np.unique(tier):
        rows = np.flatnonzero(tier == t)
        rows = rows[np.argsort(fid[rows], kind="stable")]
        g, leader = 0, None
        for r in rows:
            if leader is None or not (fid[r] - fid[leader] <= TIE_SIGMA):
                g += 1
                leader = r
            group[r] = g
    order = np.lexsort((np.arange(n), fid, art, group, tier))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(1, n + 1)
    c.rank, c.score = position, art
    c.severity = severity
    c.ranked_columns = {"fidelity": [c.specs[j].label for j in fid_cols],
                        "artifacts": [c.specs[j].label for j in art_cols]}
    key = np.stack([tier, group, art, fid], axis=1)
    c.reasons = [_reason(c, i, tier, group, art, fid_cols, codes) for i in range(n)]
    c.verdict = _verdict(c, order, key, tier, codes, fid_cols, art_cols, noise, intervals)
    c.notes = c.notes + notes
    return c


def _is_fidelity(key: str) -> bool:
    return any(key == f"{ROOT}/{f}" or key.endswith("/" + f) for f in FIDELITY)


def _reason(c: Comparison, i: int, tier: np.ndarray, group: np.ndarray, art: np.ndarray,
            fid_cols: Sequence[int], codes: list[list[str]]) -> str:
    sev = {0: "no warn/bad verdict", 1: "warn verdict(s)", 2: "bad verdict(s)"}[int(min(tier[i], 2))]
    parts = [sev + (f" ({', '.join(codes[i][:4])})" if codes[i] else "")]
    for j in fid_cols:
        parts.append(f"{c.specs[j].label} {fmt(c.values[i, j])}")
    parts.append(f"artifact mean rank {art[i]:.2f}")
    return f"#{int(c.rank[i])}: " + "; ".join(parts) + "."


def _verdict(c: Comparison, order: np.ndarray, key: np.ndarray, tier: np.ndarray, codes: list[list[str]],
             fid_cols: Sequence[int], art_cols: Sequence[int], noise: Mapping[int, float],
             intervals: Optional[Mapping[tuple[int, int], tuple[float, float]]]) -> list[str]:
    top = int(order[0])
    lines = []
    tied = [int(r) for r in order[1:] if np.array_equal(key[r], key[top])]
    basis = (("fidelity (" + ", ".join(c.specs[j].label for j in fid_cols) + "), then ") if fid_cols else "")
    basis += f"{len(art_cols)} artifact metric(s)" if art_cols else "no artifact metric"
    head = f"Best checkpoint: {c.row_label(top)}"
    if tied:
        head += " (tied with " + ", ".join(c.row_label(r) for r in tied[:5]) + ")"
    lines.append(head + f" — verdicts first, then {basis}.")
    if len(order) > 1:
        second = next((int(r) for r in order[1:] if int(r) not in tied), None)
        if second is not None:
            apart = _apart(c, top, second, fid_cols, art_cols, noise, intervals)
            tie = "" if apart else (" — cannot be told apart from the best within the noise of the ranked "
                                    "metrics")
            lines.append(f"Runner-up: {c.row_label(second)}{tie}.")
    bad = [int(r) for r in order if tier[r] >= 2]
    if bad:
        lines.append(f"{len(bad)} of {len(c)} checkpoints have a bad verdict and rank last, e.g. "
                     f"{c.row_label(bad[0])}: {', '.join(codes[bad[0]][:4])}.")
    return lines


def _apart(c: Comparison, a: int, b: int, fid_cols: Sequence[int], art_cols: Sequence[int],
           noise: Mapping[int, float], intervals: Optional[Mapping[tuple[int, int], tuple[float, float]]]
           ) -> bool:
    """True when some ranked metric separates rows ``a`` and ``b`` beyond its noise (or their bootstrap
    intervals do not overlap)."""
    if c.severity is not None and c.severity[a] != c.severity[b]:
        return True
    for j in [*fid_cols, *art_cols]:
        va, vb = c.values[a, j], c.values[b, j]
        if not (math.isfinite(va) and math.isfinite(vb)):
            continue
        if intervals is not None and (a, j) in intervals and (b, j) in intervals:
            (la, ha), (lb, hb) = intervals[(a, j)], intervals[(b, j)]
            if ha < lb or hb < la:
                return True
            continue
        if abs(va - vb) > TIE_SIGMA * math.sqrt(2.0) * noise.get(j, 0.0) and noise.get(j, 0.0) > 0:
            return True
    return False

