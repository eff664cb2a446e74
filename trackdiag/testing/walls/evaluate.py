"""Measure the tiling diagnosis against ground truth on generated scenes or on real-dev's ``cases.json``.

Usage::

    from trackdiag.testing.walls.evaluate import sample_specs, run, metrics, format_table
    specs = sample_specs(n_per_cause=20, seed=0)                 # N per cause + clean (and clean twins)
    records = run(specs, cache="/tmp/walls_cache", workers=2)    # generate (cached) + diagnose each scene
    m = metrics(records); print(format_table(m))

    records = run_real_dev("../shared/bench/real-dev")          # the development sample

A *record* is ``{"id", "truth": Truth.to_dict(), "verdicts": [{"code", "severity"}...], "summary": {key:
float},
"seconds"}``. :func:`metrics` scores them: a cause is found when a verdict with its code has severity warn or
bad; info verdicts count only for ``perspective`` and ``aperiodic``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .scene import GENERATOR_VERSION, Scene, make_scene, scene_id
from .truth import REAL_DEV_NAMES, TARGET_CAUSES, Truth

__all__ = [
    "COMBOS",
    "TARGETS",
    "SceneSpec",
    "diagnose_scene",
    "format_table",
    "get_scene",
    "load_scene",
    "metrics",
    "run",
    "run_real_dev",
    "sample_specs",
    "save_scene",
]

#: issue 11's targets (checked by :func:`metrics`, reported under ``"targets"``).
TARGETS = {"f1_min": 0.9, "clean_false_alarm_max": 0.05, "exact_set_min": 0.85, "period_within5_min": 0.95,
           "ref_period_within5_min": 0.95, "perspective_angled_min": 0.9, "perspective_fronto_max": 0.1}
#: causes whose clean twin is a hard negative (added to the clean scenes by :func:`sample_specs`).
TWINNED = ("checkerboard", "aliasing", "period_doubled", "period_halved")


@dataclass(frozen=True)
class SceneSpec:
    """Everything :func:`~.scene.make_scene` needs; ``cause="clean"`` for none."""

    cause: str
    seed: int
    angled: bool
    kind: str = "random"
    twin: bool = False
    size: tuple[int, int] | None = None
    with_ref: bool | None = None

    @property
    def causes(self) -> list[str]:
        return [] if self.cause == "clean" else self.cause.split("+")

    @property
    def id(self) -> str:
        base = scene_id(self.causes, self.kind, self.angled, self.seed, self.twin)
        return base if self.size is None else f"{base}_{self.size[0]}x{self.size[1]}"

    def make(self) -> Scene:
        return make_scene(kind=self.kind, cause=self.causes, seed=self.seed, size=self.size,
                          angled=self.angled,
                          with_ref=self.with_ref, twin=self.twin)


#: two-cause combinations (one resampling or image-level cause with a texture-level one).
COMBOS = ("checkerboard+doubled_zone", "grid_s8+bands_rows", "grid_s8+period_doubled",
          "checkerboard+bands_cols",
          "grid_s8+aliasing", "checkerboard+period_halved")


def sample_specs(*, causes: Sequence[str] = TARGET_CAUSES, n_per_cause: int = 20, seed: int = 0,
                 twins: bool = True, size: tuple[int, int] | None = None, combos: int = 0,
                 combo_list: Sequence[str] = COMBOS) -> list[SceneSpec]:
    """``n_per_cause`` scenes of each cause and of clean walls, half fronto-parallel and half angled; with
    ``twins``, the clean twins of every second scene of :data:`TWINNED` causes are added (as clean scenes);
    ``combos`` scenes of each two-cause combination of ``combo_list``."""
    specs: list[SceneSpec] = []
    for c in (*combo_list,) if combos else ():
        for i in range(combos):
            specs.append(SceneSpec(cause=c, seed=seed * 100_003 + 50_000 + i, angled=bool(i % 2), size=size))
    for c in ("clean", *causes):
        for i in range(n_per_cause):
            s = SceneSpec(cause=c, seed=seed * 100_003 + i, angled=bool(i % 2), size=size)
            specs.append(s)
            if twins and c in TWINNED and i % 2 == 0:
                specs.append(SceneSpec(cause=c, seed=s.seed, angled=s.angled, twin=True, size=size))
    return specs


# ------------------------------------------------------------------------------------------------------
# cache on disk: <id>.jpg, <id>_mask.png, <id>_ref.png, <id>.json
# ------------------------------------------------------------------------------------------------------
def save_scene(scene: Scene, folder: str | Path, name: str | None = None) -> None:
    """Write the scene as ``<name>.jpg`` (the exact JPEG), ``_mask.png``, ``_ref.png`` and ``.json``
    (truth)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or scene.truth.id
    (folder / f"{name}.jpg").write_bytes(scene.jpeg_bytes)
    Image.fromarray(scene.mask.astype(np.uint8) * 255).save(folder / f"{name}_mask.png")
    if scene.ref is not None:
        Image.fromarray(scene.ref).save(folder / f"{name}_ref.png")
    tmp = folder / f".{name}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(scene.truth.to_dict()))
    tmp.replace(folder / f"{name}.json")  # written last: its presence means the scene is complete


def load_scene(folder: str | Path, name: str) -> Scene | None:
    """The cached scene ``name`` in ``folder``, or None when it is not (completely) there."""
    from PIL import Image

    folder = Path(folder)
    meta = folder / f"{name}.json"
    if not meta.exists():
        return None
    truth = Truth.from_dict(json.loads(meta.read_text()))
    if truth.params.get("generator", 1) != GENERATOR_VERSION:
        return None  # made by another version of the generator: stale
    data = (folder / f"{name}.jpg").read_bytes()
    pred = np.asarray(Image.open(folder / f"{name}.jpg").convert("RGB"))
    mask = np.asarray(Image.open(folder / f"{name}_mask.png")) > 127
    refp = folder / f"{name}_ref.png"
    ref = np.asarray(Image.open(refp).convert("RGB")) if refp.exists() else None
    return Scene(pred=pred, mask=mask, ref=ref, truth=truth, jpeg_bytes=data)


def get_scene(spec: SceneSpec, cache: str | Path | None = None) -> Scene:
    """The scene of ``spec``, from ``cache`` when it is there (generated and stored otherwise)."""
    if cache is not None:
        got = load_scene(cache, spec.id)
        if got is not None:
            return got
    scene = spec.make()
    if cache is not None:
        save_scene(scene, cache, spec.id)
    return scene


# ------------------------------------------------------------------------------------------------------
# diagnosis of one scene
# ------------------------------------------------------------------------------------------------------
def _scalars(summary: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if k == "verdicts":
            continue
        if isinstance(v, (bool, int, float, np.floating, np.integer)):
            f = float(v)
            out[k] = f if math.isfinite(f) else None
        elif isinstance(v, str):
            out[k] = v
    return out


def _verdicts_of(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    raw = summary.get("verdicts")
    if raw is None:  # an older summary: recompute the verdicts from its keys
        from ...verdicts import evaluate

        raw = [v.to_dict() for v in evaluate("tiling", summary)]
    out = []
    for v in raw:
        d = v.to_dict() if hasattr(v, "to_dict") else dict(v)
        out.append({"code": str(d["code"]), "severity": str(d["severity"])})
    return out


def diagnose_scene(pred: Any, mask: Any, ref: Any) -> tuple[list[dict[str, str]], dict[str, Any], float]:
    """Run ``trackdiag.diagnose`` → (verdicts as ``{"code", "severity"}``, scalar summary, seconds)."""
    import trackdiag

    fn = getattr(trackdiag.diagnose, "diagnose", trackdiag.diagnose)  # the function (the module is callable)
    kwargs: dict[str, Any] = {}
    if "value_range" in inspect.signature(fn).parameters:
        kwargs["value_range"] = "0-255"  # the scenes are uint8 JPEG decodes (say so: no guessing, no warning)
    t0 = time.perf_counter()
    summary = fn(pred, mask=mask, ref=ref, **kwargs)
    dt = time.perf_counter() - t0
    return _verdicts_of(summary), _scalars(summary), dt


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _one(spec: SceneSpec, cache: str | None, diagnose: bool) -> dict[str, Any]:
    scene = get_scene(spec, cache)
    rec: dict[str, Any] = {"id": spec.id, "truth": scene.truth.to_dict()}
    if diagnose:
        try:
            v, s, dt = diagnose_scene(scene.pred, scene.mask.astype(np.float32), scene.ref)
            rec.update(verdicts=v, summary=s, seconds=dt)
        except Exception as exc:
            rec.update(verdicts=[], summary={}, seconds=0.0, error=f"{type(exc).__name__}: {exc}")
    return rec


def run(specs: Iterable[SceneSpec], *, cache: str | Path | None = None, workers: int = 1,
        diagnose: bool = True, progress: bool = False) -> list[dict[str, Any]]:
    """Generate (or load from ``cache``) every scene of ``specs`` and diagnose it; ``workers`` processes.

    Returns one record per spec, in the order of ``specs``. With ``diagnose=False`` only the scenes are
    generated (to fill the cache).
    """
    specs = list(specs)
    cache_s = str(cache) if cache is not None else None
    out: list[dict[str, Any]] = []
    if workers <= 1:
        _init_worker()
        for i, s in enumerate(specs):
            out.append(_one(s, cache_s, diagnose))
            if progress:
                print(f"[{i + 1}/{len(specs)}] {s.id}", flush=True)
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        futs = [pool.submit(_one, s, cache_s, diagnose) for s in specs]
        for i, f in enumerate(futs):
            out.append(f.result())
            if progress:
                print(f"[{i + 1}/{len(specs)}] {specs[i].id}", flush=True)
    return out


def _real_dev_one(folder: str, case: dict[str, Any]) -> dict[str, Any]:
    from PIL import Image

    root = Path(folder)
    pred = np.asarray(Image.open(root / case["pred"]).convert("RGB"))
    mask = (np.asarray(Image.open(root / case["mask"]).convert("L")) > 127).astype(np.float32)
    ref = np.asarray(Image.open(root / case["ref"]).convert("RGB")) if case.get("ref") else None
    causes = [REAL_DEV_NAMES.get(c, c) for c in case.get("causes", []) if c != "clean"]
    truth = Truth(id=case["id"], causes=causes, context=list(case.get("context", [])),
                  texture=case.get("texture", ""), size=list(case.get("size", pred.shape[:2])),
                  jpeg_q=int(case.get("jpeg_q") or 0), period_px=case.get("period_px"),
                  period_approx=bool(case.get("period_approx",
                                              False)), ref_period_px=case.get("ref_period_px"),
                  perspective_label=case.get("perspective_label"), period_change=float("nan"),
                  true_trend_x=float(case.get("true_trend_x") or 0.0),
                  true_trend_y=float(case.get("true_trend_y") or 0.0), band_axis=case.get("band_axis"),
                  angled=bool(case.get("perspective_label")), twin_of=case.get("twin_of"),
                  params=dict(case.get("params") or {}))
    rec: dict[str, Any] = {"id": case["id"], "truth": truth.to_dict()}
    try:
        v, s, dt = diagnose_scene(pred, mask, ref)
        rec.update(verdicts=v, summary=s, seconds=dt)
    except Exception as exc:
        rec.update(verdicts=[], summary={}, seconds=0.0, error=f"{type(exc).__name__}: {exc}")
    return rec


def run_real_dev(folder: str | Path, *, workers: int = 1, limit: int | None = None) -> list[dict[str, Any]]:
    """Diagnose every case of ``folder/cases.json`` (real-dev's truth names mapped to verdict codes)."""
    cases = json.loads((Path(folder) / "cases.json").read_text())
    if limit is not None:
        cases = cases[:limit]
    if workers <= 1:
        _init_worker()
        return [_real_dev_one(str(folder), c) for c in cases]
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker) as pool:
        return list(pool.map(_real_dev_one, [str(folder)] * len(cases), cases))


# ------------------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------------------
def _found(rec: Mapping[str, Any]) -> set[str]:
    return {v["code"] for v in rec.get("verdicts", []) if v["severity"] in ("warn", "bad")}


def _fired(rec: Mapping[str, Any], code: str) -> bool:
    return any(v["code"] == code for v in rec.get("verdicts", []))


def _rate(k: float, n: int) -> float | None:
    return k / n if n else None


def _within(est: Any, true: Any, tol: float) -> bool:
    if est is None or true is None:
        return False
    est = float(est)
    return math.isfinite(est) and abs(est - float(true)) <= tol * float(true)


def metrics(records: Sequence[Mapping[str, Any]], *, causes: Sequence[str] | None = None,
            tol: float = 0.05) -> dict[str, Any]:
    """Score diagnosis records against their truth (see the module docstring for the rules).

    Returns ``{"n", "per_cause": {code: {tp, fp, fn, precision, recall, f1, n_true}}, "clean": {n,
    false_alarm_rate, codes}, "exact_set_rate", "period": {...}, "ref_period": {...}, "perspective": {...},
    "aperiodic": {...}, "misses": [...], "confusion": {true: {found: count}}, "errors", "targets": {...}}``.
    """
    recs = [r for r in records if "verdicts" in r]
    if causes is None:
        present = {c for r in recs for c in r["truth"]["causes"]}
        causes = [c for c in TARGET_CAUSES if c in present] + sorted(present - set(TARGET_CAUSES))
    per: dict[str, Any] = {}
    for c in causes:
        tp = sum(1 for r in recs if c in r["truth"]["causes"] and c in _found(r))
        fn = sum(1 for r in recs if c in r["truth"]["causes"] and c not in _found(r))
        fp = sum(1 for r in recs if c not in r["truth"]["causes"] and c in _found(r))
        p = _rate(tp, tp + fp)
        rc = _rate(tp, tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else None
        per[c] = {"n_true": tp + fn, "tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": rc, "f1": f1}
    clean = [r for r in recs if not r["truth"]["causes"]]
    alarms: dict[str, int] = {}
    for r in clean:
        for c in _found(r):
            alarms[c] = alarms.get(c, 0) + 1
    n_alarm = sum(1 for r in clean if _found(r))
    exact = sum(1 for r in recs if _found(r) == set(r["truth"]["causes"]))

    def period_block(key: str, truth_key: str, subset: list[Mapping[str, Any]]) -> dict[str, Any]:
        rows = [r for r in subset if r["truth"].get(truth_key) is not None
                and not r["truth"].get("period_approx", False)]
        ok = [r for r in rows if _within(r.get("summary", {}).get(key), r["truth"][truth_key], tol)]
        approx = [r for r in subset
                  if r["truth"].get(truth_key) is not None and r["truth"].get("period_approx")]
        ok_approx = [r for r in approx if _within(r.get("summary", {}).get(key), r["truth"][truth_key], 0.1)]
        return {"n": len(rows), "within": _rate(len(ok), len(rows)),
                "n_approx": len(approx), "within10_approx": _rate(len(ok_approx), len(approx)),
                "wrong": [{"id": r["id"], "true": r["truth"][truth_key],
                           "est": r.get("summary", {}).get(key)} for r in rows if r not in ok]}

    fro = [r for r in recs if not r["truth"].get("angled")]
    ang = [r for r in recs if r["truth"].get("angled")]
    period = period_block("fundamental_period_px", "period_px", recs)
    period["fronto"] = period_block("fundamental_period_px", "period_px", fro)["within"]
    period["angled"] = period_block("fundamental_period_px", "period_px", ang)["within"]
    ref_period = period_block("ref_period_px", "ref_period_px", recs)
    pos = [r for r in recs if r["truth"].get("perspective_label") is True]
    neg = [r for r in recs if r["truth"].get("perspective_label") is False]
    persp = {"n_angled": len(pos), "n_fronto": len(neg),
             "rate_angled": _rate(sum(_fired(r, "perspective") for r in pos), len(pos)),
             "rate_fronto": _rate(sum(_fired(r, "perspective") for r in neg), len(neg))}
    aper = [r for r in recs if "aperiodic" in r["truth"].get("context", [])]
    peri = [r for r in recs if r["truth"].get("period_px") is not None]
    aperiodic = {"n": len(aper),
                 "rate_aperiodic": _rate(sum(_fired(r, "aperiodic") for r in aper), len(aper)),
                 "rate_periodic": _rate(sum(_fired(r, "aperiodic") for r in peri), len(peri))}
    misses = []
    confusion: dict[str, dict[str, int]] = {}
    for r in recs:
        truth = set(r["truth"]["causes"])
        found = _found(r)
        key = "+".join(sorted(truth)) or "clean"
        row = confusion.setdefault(key, {})
        fk = "+".join(sorted(found)) or "none"
        row[fk] = row.get(fk, 0) + 1
        if found != truth:
            misses.append({"id": r["id"], "texture": r["truth"].get("texture"), "truth": sorted(truth),
                           "found": sorted(found), "missing": sorted(truth - found),
                           "extra": sorted(found - truth)})
    m: dict[str, Any] = {
        "n": len(recs), "per_cause": per,
        "clean": {"n": len(clean), "false_alarm_rate": _rate(n_alarm, len(clean)), "codes": alarms},
        "exact_set_rate": _rate(exact, len(recs)), "period": period, "ref_period": ref_period,
        "perspective": persp, "aperiodic": aperiodic, "misses": misses, "confusion": confusion,
        "errors": [{"id": r["id"], "error": r["error"]} for r in records if r.get("error")],
        "seconds_mean": _rate(sum(float(r.get("seconds", 0.0)) for r in recs), len(recs)),
    }
    m["targets"] = _check_targets(m)
    return m


def _check_targets(m: Mapping[str, Any]) -> dict[str, Any]:
    t = TARGETS

    def ge(x: Any, lo: float) -> bool | None:
        return None if x is None else bool(x >= lo)

    def le(x: Any, hi: float) -> bool | None:
        return None if x is None else bool(x <= hi)

    out: dict[str, Any] = {f"f1_{c}": ge(v["f1"], t["f1_min"]) for c, v in m["per_cause"].items()}
    out["clean_false_alarm"] = le(m["clean"]["false_alarm_rate"], t["clean_false_alarm_max"])
    out["exact_set"] = ge(m["exact_set_rate"], t["exact_set_min"])
    out["period_within5"] = ge(m["period"]["within"], t["period_within5_min"])
    out["ref_period_within5"] = ge(m["ref_period"]["within"], t["ref_period_within5_min"])
    out["perspective_angled"] = ge(m["perspective"]["rate_angled"], t["perspective_angled_min"])
    out["perspective_fronto"] = le(m["perspective"]["rate_fronto"], t["perspective_fronto_max"])
    out["all_met"] = all(v is not False for v in out.values())
    return out


def _f(x: Any) -> str:
    return "  n/a" if x is None else f"{x:5.2f}"


def format_table(m: Mapping[str, Any], *, max_misses: int = 30) -> str:
    """A readable report of :func:`metrics`' output."""
    lines = [f"scenes: {m['n']}   mean diagnosis time: {_f(m['seconds_mean'])} s", "",
             f"{'cause':<16}{'n':>4}{'tp':>5}{'fp':>5}{'fn':>5}{'prec':>7}{'recall':>7}{'F1':>7}  target"]
    for c, v in m["per_cause"].items():
        ok = m["targets"].get(f"f1_{c}")
        lines.append(f"{c:<16}{v['n_true']:>4}{v['tp']:>5}{v['fp']:>5}{v['fn']:>5}{_f(v['precision']):>7}"
                     f"{_f(v['recall']):>7}{_f(v['f1']):>7}  "
                     f"{'ok' if ok else '--' if ok is None else 'MISS'}")
    cl = m["clean"]
    per, ref, persp, aper = m["period"], m["ref_period"], m["perspective"], m["aperiodic"]
    codes = dict(sorted(cl["codes"].items(), key=lambda kv: -kv[1]))
    lines += ["",
              f"clean walls with a warn/bad verdict: {_f(cl['false_alarm_rate'])} of {cl['n']}  (codes: "
              f"{codes})",
              f"exact verdict set: {_f(m['exact_set_rate'])}",
              (f"base period within 5 %: {_f(per['within'])} of {per['n']} (fronto {_f(per['fronto'])}, "
               f"angled {_f(per['angled'])}; photo within 10 %: {_f(per['within10_approx'])} of "
               f"{per['n_approx']})"),
              f"reference period within 5 %: {_f(ref['within'])} of {ref['n']}",
              (f"perspective fires: angled {_f(persp['rate_angled'])} of {persp['n_angled']}, "
               f"fronto {_f(persp['rate_fronto'])} of {persp['n_fronto']}"),
              (f"aperiodic fires: aperiodic walls {_f(aper['rate_aperiodic'])} of {aper['n']}, "
               f"periodic walls {_f(aper['rate_periodic'])}"),
              f"targets met: {m['targets']['all_met']}"]
    if m["errors"]:
        lines += ["",
                  f"errors ({len(m['errors'])}):"] + [f"  {e['id']}: {e['error']}" for e in m["errors"][:10]]
    lines += ["", "confusion (truth → found warn/bad set: count):"]
    for t, row in m["confusion"].items():
        lines.append(f"  {t:<16} " + ", ".join(f"{k}: {n}" for k, n in sorted(row.items(),
                                                                              key=lambda kv: -kv[1])))
    if m["misses"]:
        lines += ["", f"misses ({len(m['misses'])}, first {max_misses}):"]
        for x in m["misses"][:max_misses]:
            lines.append(f"  {x['id']:<40} missing {x['missing']} extra {x['extra']}")
    return "\n".join(lines)
