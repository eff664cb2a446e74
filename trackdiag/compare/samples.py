"""Samples mode: one folder of generated images per checkpoint; the analyzers run on each set.

For each checkpoint folder, every image (optionally with its wall mask and a reference tile) goes through
the same analyzers a training session uses (built from ``conf/analyzer/<name>.yaml``, parameters
validated), in batches of same-sized images: ``compute`` on the batch, then ``summarize`` on each image's
slice, so every per-image number is exactly what training-time logging would report for that image.
Per checkpoint, each metric is aggregated over the images: ``mean``, ``median`` and ``worst`` (the mean of
the ``worst_k`` worst images, worst by the metric's goal). The result is one :class:`RunData` per run
(sets are grouped by their ``run``), with one series per ``<key>/<aggregate>`` over the checkpoints' steps.

Unreadable images and images without a mask are reported in the notes and skipped / analysed unmasked; a
folder without any image is a missing checkpoint (``on_missing``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..analyzers.base import Analyzer, StepInputs, is_map_key
from ..config import build_component, resolve
from ..core.checks import normalize_mask, normalize_ref
from ..core.values import metric_key
from ..errors import ConfigError, InputFileError, TrackdiagError
from ..io.images import list_images, load_image, load_mask
from ..io.pairing import companion_lookup
from .data import MissingRunError, RunData, Series

__all__ = ["SampleSet", "parse_sets", "analyze_sets", "aggregate", "build_analyzers", "SamplesResult"]

_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass
class SampleSet:
    """One checkpoint's images: ``name`` (the checkpoint), ``dir``, ``step``, ``run`` and optional masks."""

    name: str
    dir: Path
    step: Optional[int] = None
    run: str = "samples"
    masks: Optional[Path] = None

    @property
    def at(self) -> int:
        """The checkpoint's step, once :func:`parse_sets` has set it."""
        if self.step is None:
            raise ConfigError(f"samples.sets: checkpoint {self.name!r} has no step yet.")
        return int(self.step)


@dataclass
class SamplesResult:
    runs: list[RunData]
    per_image: list[dict[str, Any]] = field(default_factory=list)
    base_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_sets(entries: Sequence[Any], *, run_name: str, masks: Optional[str]) -> list[SampleSet]:
    """``samples.sets`` entries (folder strings or ``{name, dir, masks, step, run}`` mappings) → SampleSets.

    A set without ``step`` takes the last number in its name; when a run's sets do not all have distinct
    numbers, their steps are their positions in the list (0, 1, 2 …) so the given order is kept.
    """
    sets = []
    for k, entry in enumerate(entries):
        if isinstance(entry, (str, Path)):
            path = Path(str(entry))
            sets.append(SampleSet(name=path.name or str(path), dir=path, run=run_name,
                                  masks=Path(masks) if masks else None))
        elif isinstance(entry, Mapping):
            unknown = set(entry) - {"name", "dir", "masks", "step", "run"}
            if unknown or "dir" not in entry:
                raise ConfigError(f"samples.sets[{k}]: an entry is a folder or a mapping with dir (and "
                                  f"optional name, masks, step, run); got keys {sorted(entry)}.")
            path = Path(str(entry["dir"]))
            m = entry.get("masks", masks)
            sets.append(SampleSet(name=str(entry.get("name") or path.name), dir=path,
                                  step=None if entry.get("step") is None else int(entry["step"]),
                                  run=str(entry.get("run") or run_name), masks=Path(str(m)) if m else None))
        else:
            raise ConfigError(f"samples.sets[{k}] must be a folder or a mapping; got {type(entry).__name__}.")
    by_run: dict[str, list[SampleSet]] = {}
    for s in sets:
        by_run.setdefault(s.run, []).append(s)
    for group in by_run.values():
        names = [s.name for s in group]
        if len(set(names)) != len(names):
            raise ConfigError(f"samples.sets: checkpoint names repeat in run {group[0].run!r}: {names}. Give "
                              "each entry a distinct name.")
        numbers = [_NUMBER.search(s.name) for s in group]
        found = [s.step if s.step is not None else (int(m.group(1)) if m else None)
                 for s, m in zip(group, numbers, strict=True)]
        parsed = [p for p in found if p is not None]
        if len(parsed) != len(found) or len(set(parsed)) != len(parsed):
            parsed = [s.step if s.step is not None else i for i, s in enumerate(group)]
            if len(set(parsed)) != len(parsed):
                raise ConfigError(f"samples.sets: steps repeat in run {group[0].run!r}: {parsed}.")
        for s, step in zip(group, parsed, strict=True):
            s.step = int(step)
    return sets


def build_analyzers(names: Sequence[str], params: Mapping[str, Any]) -> list[Analyzer]:
    """The analyzers of ``conf/analyzer/<name>.yaml`` with ``params[<name>]`` merged over their defaults."""
    from omegaconf import OmegaConf

    if not names:
        raise ConfigError("samples.analyzers is empty; give at least one analyzer, e.g. [tiling].")
    unknown = set(params) - set(names)
    if unknown:
        raise ConfigError(f"samples.params names analyzers that are not selected: {sorted(unknown)}.")
    cfg = resolve(overrides=["backend=[]", f"analyzer=[{','.join(names)}]"])
    out = []
    for name in names:
        node = OmegaConf.merge(cfg.analyzer[name], dict(params.get(name) or {}))
        analyzer = build_component(node, allow_external=False, what=f"samples analyzer {name}")
        extra = [f for f in analyzer.requires if f not in ("pred", "mask", "ref")]
        if extra:
            raise ConfigError(f"analyzer {name!r} needs {extra}, which sample folders do not have; samples "
                              "mode runs analyzers that need only images (and masks / a reference), e.g. "
                              "tiling.")
        out.append(analyzer)
    return out


def _mask_lookup(masks: Optional[Path]) -> Callable[[Path], Optional[Path]]:
    """Pairing by stem, as every CLI does it (:mod:`trackdiag.io.pairing`)."""
    if masks is not None and not masks.exists():
        raise MissingRunError(f"samples.masks: {masks} is neither a mask file nor a folder of masks.")
    return companion_lookup(masks, what="mask")


def _per_image_metrics(analyzer: Analyzer, host: Mapping[str, np.ndarray], b: int) -> list[dict[str, float]]:
    """Summarize each image's slice of a batch's host arrays. ``(B,)`` arrays are sliced; ``map/`` keys and
    other arrays go to image 0 only (maps are of sample 0)."""
    out = []
    for i in range(b):
        part = {}
        for key, value in host.items():
            arr = np.asarray(value)
            if not is_map_key(key) and arr.ndim >= 1 and arr.shape[0] == b:
                part[key] = arr[i:i + 1]
            elif arr.ndim == 0 and b == 1:
                part[key] = arr
            elif i == 0 and is_map_key(key):
                part[key] = arr
        result = analyzer.summarize(0, part)
        out.append({k: float(v) for k, v in result.metrics.items()})
    return out


def analyze_sets(sets: Sequence[SampleSet], analyzers: Sequence[Analyzer], *, ref: Optional[str],
                 batch_size: int, on_missing: str = "error",
                 progress: Optional[Callable[[str], None]] = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``analyzers`` on every image of every set. Returns per-image rows (``{"run", "checkpoint",
    "step", "image", <metric key>: value}``) and notes about skipped files."""
    ref_t = load_image(ref, name="samples.ref")[None] if ref else None
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for s in sets:
        if not s.dir.is_dir():
            msg = f"sample folder {s.dir} (checkpoint {s.name!r}) does not exist."
            if on_missing == "error":
                raise MissingRunError(msg)
            notes.append(msg)
            continue
        images = list_images(s.dir)
        mask_of = _mask_lookup(s.masks)
        loaded: list[tuple[Path, torch.Tensor, Optional[torch.Tensor]]] = []
        for path in images:
            if s.masks is not None and s.masks.is_dir() and s.masks.resolve() in path.resolve().parents:
                continue  # a masks folder inside the sample folder
            try:
                img = load_image(path)
                mpath = mask_of(path)
                mask = load_mask(mpath) if mpath is not None else None
            except InputFileError as exc:
                notes.append(f"{s.name}: skipped {path.name}: {exc}")
                continue
            if s.masks is not None and mpath is None:
                notes.append(f"{s.name}: no mask for {path.name} in {s.masks}; analysed the whole image.")
            if mask is not None and tuple(mask.shape) != tuple(img.shape[-2:]):
                notes.append(f"{s.name}: mask of {path.name} is {tuple(mask.shape)}, the image "
                             f"{tuple(img.shape[-2:])}; skipped.")
                continue
            if mask is not None and not bool((mask > 0.5).any()):
                notes.append(f"{s.name}: the mask of {path.name} is empty (no wall); skipped.")
                continue
            loaded.append((path, img, mask))
        if not loaded:
            msg = f"sample folder {s.dir} (checkpoint {s.name!r}) has no readable image."
            if on_missing == "error":
                raise MissingRunError(msg)
            notes.append(msg)
            continue
        # group same-shaped images (and same mask presence) into batches
        groups: dict[tuple, list[int]] = {}
        for k, (_, img, mask) in enumerate(loaded):
            groups.setdefault((tuple(img.shape), mask is not None), []).append(k)
        per_image: dict[int, dict[str, Any]] = {}
        for (_, has_mask), idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                pred = torch.stack([loaded[k][1] for k in chunk])
                b, c, h, w = pred.shape
                masks = [m for k in chunk if (m := loaded[k][2]) is not None]  # all present when has_mask
                mask = normalize_mask(torch.stack(masks)[:, None], batch=b, height=h,
                                      width=w) if has_mask else None
                r = ref_t
                if r is not None and c == 1 and r.shape[1] != 1:  # grey samples, colour reference
                    r = r.mean(dim=1, keepdim=True)
                r = normalize_ref(r, channels=c, name="samples.ref") if r is not None else None
                inputs = StepInputs(step=0, pred=pred, mask=mask, ref=r)
                for analyzer in analyzers:
                    try:
                        with torch.no_grad():
                            out = analyzer.compute(inputs)
                        host = {k: v.detach().cpu().numpy() for k, v in out.items()}
                        metrics = _per_image_metrics(analyzer, host, len(chunk))
                    except TrackdiagError as exc:
                        names = [loaded[k][0].name for k in chunk]
                        notes.append(f"{s.name}: {analyzer.name} failed on {names}: {exc}")
                        continue
                    for k, values in zip(chunk, metrics, strict=True):
                        row = per_image.setdefault(k, {"run": s.run, "checkpoint": s.name, "step": s.step,
                                                       "image": loaded[k][0].name})
                        row.update({metric_key(analyzer.name, key): v for key, v in values.items()})
        rows.extend(per_image[k] for k in sorted(per_image))
        if progress is not None:
            progress(f"{s.name}: {len(per_image)} images")
    return rows, notes


def aggregate(values: np.ndarray, *, goal: str, worst_k: int) -> dict[str, float]:
    """``mean``, ``median`` and ``worst`` of per-image ``values`` ``(N,)`` (NaN ignored; NaN when none).

    ``worst``: the mean of the ``worst_k`` worst finite values — the largest for ``min``/``none`` goals,
    the smallest for ``max``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "worst": float("nan")}
    k = min(worst_k, v.size)
    ordered = np.sort(v)
    worst = ordered[:k] if goal == "max" else ordered[-k:]
    return {"mean": float(v.mean()), "median": float(np.median(v)), "worst": float(worst.mean())}


def to_runs(sets: Sequence[SampleSet], rows: Sequence[Mapping[str, Any]], *, aggregates: Sequence[str],
            worst_k: int, goal_of: Callable[[str], str]) -> tuple[list[RunData], list[str]]:
    """Aggregate per-image rows into one RunData per run: series ``<key>/<aggregate>`` over the sets' steps.
    Returns the runs and the base metric keys (first-seen order)."""
    keys: dict[str, None] = {}
    for row in rows:
        for k in row:
            if k not in ("run", "checkpoint", "step", "image"):
                keys.setdefault(k, None)
    runs: dict[str, RunData] = {}
    for s in sets:
        run = runs.setdefault(s.run, RunData(name=s.run, run_id=s.run, source="samples"))
        run.labels[s.at] = s.name
        mine = [r for r in rows if r["run"] == s.run and r["checkpoint"] == s.name]
        if not mine:
            continue
        run.tags[f"images.{s.name}"] = str(len(mine))
        for key in keys:
            agg = aggregate(np.array([r.get(key, np.nan) for r in mine], dtype=np.float64),
                            goal=goal_of(key), worst_k=worst_k)
            for a in aggregates:
                name = f"{key}/{a}"
                old = run.metrics.get(name)
                steps = [] if old is None else list(old.steps)
                vals = [] if old is None else list(old.values)
                run.metrics[name] = Series(np.array(steps + [s.at]), np.array(vals + [agg[a]]))
    for run in runs.values():  # keep the series sorted by step
        for name, series in run.metrics.items():
            order = np.argsort(series.steps, kind="stable")
            run.metrics[name] = Series(series.steps[order], series.values[order])
    return list(runs.values()), list(keys)
