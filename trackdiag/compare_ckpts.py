"""``python -m trackdiag.compare_ckpts``: compare and rank checkpoints across runs.

Two modes, one output:

* **tracker mode**: runs from MLflow (by experiment + filter, or run ids / names), W&B offline folders,
  TensorBoard log folders or local run folders; the diagnostic metrics at the chosen checkpoints (a list
  of steps, every logged step, or the last one), each from the nearest logged step within ``tolerance``;
* **samples mode**: one folder of generated images per checkpoint; the analyzers (tiling by default) run
  on each set and each metric is aggregated per checkpoint (mean, median, worst k).

Output: a table (one row per run and checkpoint; deltas against a baseline; the best value of each column
marked; regressions flagged against the config's thresholds), a ranking with its reason in words, trend
plots, a report folder (``comparison.csv``/``.json``/``.md``, self-contained ``index.html``,
``comparison.pdf``) and a "comparison" run in the tracker. ``--help`` explains every key.

From Python::

    from trackdiag.compare_ckpts import compare
    result = compare(overrides=["mlflow.experiment=lora", "steps=all", "publish.to=none"])
    print(result.comparison.verdict[0])
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .compare.config import compose, validate
from .compare.table import Comparison
from .config import to_dict
from .errors import TrackdiagError

__all__ = ["compare", "run", "main", "CompareResult"]


@dataclass
class CompareResult:
    """What :func:`compare` returns: the judged and ranked comparison, the files written and where the
    trackers show it."""

    comparison: Comparison
    files: dict[str, Path]
    published: dict[str, str] = field(default_factory=dict)
    config: Any = None

    @property
    def best(self) -> str:
        """``run @ checkpoint`` of the best row."""
        c = self.comparison
        return c.row_label(int(c.rank.argmin()))


def compare(config: Any = None, *, overrides: Iterable[str] = (),
            progress: Optional[Callable[[str], None]] = None) -> CompareResult:
    """Compose the configuration (``conf/compare/config.yaml`` + ``overrides`` + ``config``, a mapping
    merged last) and run the comparison. Raises :class:`~trackdiag.errors.TrackdiagError` subclasses with
    the fix in the message."""
    from omegaconf import OmegaConf

    cfg = compose(overrides)
    if config is not None:
        data = dict(config) if isinstance(config, Mapping) else OmegaConf.to_container(config, resolve=True)
        cfg = validate(OmegaConf.merge(cfg, data))
    return run(cfg, progress=progress)


def _selector(cfg: Any, box: dict[str, Any]) -> Callable[[Sequence[Sequence[str]]], list[str]]:
    """The metric selection, from the keys each run logged.

    ``metrics`` given: exactly those (each must name a logged key). ``metrics`` empty: the ``key_metrics``
    that every run logged (a short name matching several analyzers' keys takes them all); when the runs
    logged none of them, every ``trackdiag/*`` key that every run logged. What was left out goes in a note.
    """
    from .compare.data import MissingMetricError
    from .compare.metrics import candidates, default_keys, label_of, resolve_key

    def select(per_run: Sequence[Sequence[str]]) -> list[str]:
        available = list(dict.fromkeys(k for keys in per_run for k in keys))
        box["available"] = available
        notes = box.setdefault("notes", [])
        if not available:
            raise MissingMetricError("the selected runs logged no metric at all.")
        if cfg.metrics:
            keys = list(dict.fromkeys(resolve_key(str(m), available) for m in cfg.metrics))
        else:
            common = [k for k in available if all(k in set(r) for r in per_run)]
            keys = list(dict.fromkeys(k for m in cfg.key_metrics for k in candidates(str(m), common)))
            missing = [str(m) for m in cfg.key_metrics if not candidates(str(m), common)]
            if keys and missing:
                notes.append(f"key metrics not logged by every run, left out: {missing}.")
            if not keys:
                keys = default_keys(common)
                if keys:
                    notes.append("none of key_metrics was logged by every run; compared every trackdiag "
                                 "metric they all logged.")
            partial = [label_of(k) for k in default_keys(available) if k not in common]
            if partial:
                notes.append(f"logged by only some runs, left out: {partial[:20]}; name them in metrics=[…] "
                             "to compare them.")
            if not keys:
                raise MissingMetricError(f"no metric was logged by every run; logged by some: "
                                         f"{partial[:20]}. Choose with metrics=[…].")
        box["keys"] = keys
        from .compare.since import LOSS_KEYS
        from .compare.sources import KeyPlan
        from .core.values import ROOT

        extra = [k for k in _extra_keys(cfg, per_run) if k not in keys]
        # an analyzer's own metrics serve to recompute its verdicts: not needed from runs that logged them
        prefixes = tuple(f"{ROOT}/{a}/" for a in cfg.ranking.verdict_analyzers)
        return KeyPlan(keys + extra, only_without_verdicts=[
            k for k in extra if k.startswith(prefixes) and "/verdict/" not in k and k not in LOSS_KEYS])

    return select


def _extra_keys(cfg: Any, per_run: Sequence[Sequence[str]]) -> list[str]:
    """Keys read besides the columns: verdict severities, every metric of the verdict analyzers (to
    recompute verdicts where none were logged) and the training loss ("since when")."""
    from .compare.since import LOSS_KEYS
    from .core.values import ROOT

    available = list(dict.fromkeys(k for keys in per_run for k in keys))
    if str(cfg.ranking.method) != "tiered":
        return []
    prefixes = tuple(f"{ROOT}/{a}/" for a in cfg.ranking.verdict_analyzers)
    out = [k for k in available if k.startswith(ROOT + "/") and "/verdict/" in k]
    out += [k for k in available if k.startswith(prefixes) and "/verdict/" not in k]
    out += [k for k in LOSS_KEYS if k in available][:1]
    return list(dict.fromkeys(out))


def _spec_goals(keys: Sequence[str]) -> tuple[dict[str, str], dict[str, float]]:
    """Goals and warn limits of ``keys`` from the analyzers' metric specs (:mod:`trackdiag.metricspec`):
    the one source of directions and limits shared with ``diagnose``."""
    from .core.values import ROOT
    from .metricspec import specs_for

    goals: dict[str, str] = {}
    warns: dict[str, float] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != ROOT:
            continue
        sp = specs_for(parts[1]).get("/".join(parts[2:]))
        if sp is None:
            continue
        goals[key] = sp.goal
        if sp.warn is not None and sp.goal != "none":
            warns[key] = float(sp.warn)
    return goals, warns


def _uncovered(spec: Mapping[str, Any], table: Mapping[str, Any], available: Sequence[str]) -> dict[str, Any]:
    """The entries of ``spec`` whose key no entry of ``table`` names (by its full or its short name)."""
    from .compare.metrics import candidates

    names = [str(n) for n in table]
    named: set[str] = set()
    for name in names:
        named.update(candidates(name, available))
    return {k: v for k, v in spec.items()
            if k not in named and not any(k == n or k.endswith("/" + n) for n in names)}


def _specs(cfg: Any, keys: Sequence[str], available: Sequence[str], *, aggregates: Sequence[str] = (),
           rank_by: str = "") -> list:
    from .compare.config import shipped_map_keys
    from .compare.metrics import build_specs

    spec_goals, spec_warns = _spec_goals(keys)
    # the config (shipped defaults and the user's overrides) wins over the specs for every key it names
    goals = {**_uncovered(spec_goals, dict(cfg.goals), available), **dict(cfg.goals)}
    limits = {**_uncovered(spec_warns, dict(cfg.limits), available), **dict(cfg.limits)}
    return build_specs(keys, goals=goals, default_goal=cfg.default_goal, weights=dict(cfg.weights),
                       tolerances=dict(cfg.regression.abs), limits=limits, available=available,
                       aggregates=aggregates, rank_by=rank_by, strict_settings=True,
                       defaults=shipped_map_keys())


def _goal_of(cfg: Any, available: Sequence[str]) -> Callable[[str], str]:
    from .compare.metrics import goal_of

    return lambda key: goal_of(key, dict(cfg.goals), cfg.default_goal, available)[0]


def run(cfg: Any, *, progress: Optional[Callable[[str], None]] = None) -> CompareResult:
    """Run a comparison from a validated config node (see :func:`compare`)."""

    from .compare.outputs import write_outputs
    from .compare.publish import publish, targets
    from .compare.ranking import rank
    from .compare.table import build_table
    from .config import flatten

    notes: list[str] = []
    extra_files: dict[str, Any] = {}
    if cfg.samples.sets:
        mode, source = "samples", "samples"
        runs, specs, per_image, sample_notes = _samples(cfg, progress)
        notes += sample_notes
        extra_files["per_image"] = per_image
        steps: Any = "all"
    else:
        mode, source = "runs", str(cfg.backend)
        from .compare.sources import read_runs

        box: dict[str, Any] = {}
        runs = read_runs(source, runs=list(cfg.runs), mlflow=cfg.mlflow, select=_selector(cfg, box))
        notes += box.get("notes", [])
        specs = _specs(cfg, box["keys"], box["available"])
        steps = cfg.steps if isinstance(cfg.steps, str) else list(cfg.steps)
    c = build_table(runs, specs, steps=steps, tolerance=int(cfg.tolerance), baseline=str(cfg.baseline),
                    rel_tolerance=float(cfg.regression.rel), on_missing=str(cfg.on_missing))
    c.mode = mode
    c.notes = notes + c.notes
    if mode == "samples" and extra_files.get("per_image"):
        from .compare.bootstrap import sample_intervals

        extra_files["within"], extra_files["intervals"] = sample_intervals(c, extra_files["per_image"])
    if cfg.ranking.method == "tiered":
        if mode == "samples":  # a few checkpoints, no series to segment: regressions against the baseline
            rank(c, method="mean_rank", flagged_last=True, explain=int(cfg.ranking.explain))
            worse, found = [v for v in c.verdict if v.startswith("Got worse")], c.onsets
        _tiered(c, runs, cfg, within=extra_files.get("within"), intervals=extra_files.get("intervals"))
        if mode == "samples":
            c.onsets = found
            c.verdict += worse + _interval_lines(c, extra_files.get("intervals") or {})
    else:
        rank(c, method=cfg.ranking.method, flagged_last=bool(cfg.ranking.flagged_last),
             explain=int(cfg.ranking.explain))
    plain = to_dict(cfg)
    names, publish_notes = targets(plain["publish"]["to"], source=source)
    c.notes += publish_notes
    out_dir = Path(cfg.output.dir)
    files, images = write_outputs(c, out_dir, formats=list(cfg.output.formats), plots=bool(cfg.output.plots),
                                  pdf_rows=int(cfg.output.pdf_rows), config=plain)
    if extra_files.get("per_image"):
        files["per_image"] = _write_per_image(extra_files["per_image"], out_dir / "per_image.csv")
    local_root = Path(str(runs[0].run_id)).parent if source == "local" and runs else None
    project = runs[0].tags.get("project") if source == "wandb" and runs else None
    experiment = cfg.publish.experiment or project or f"{cfg.mlflow.experiment}-comparisons"
    where = publish(c, names, out_dir=out_dir, images=images, params=flatten(plain, "compare."),
                    experiment=experiment,
                    run_name=cfg.publish.run_name, tracking_uri=cfg.mlflow.tracking_uri,
                    local_root=local_root, log_images=bool(cfg.publish.images),
                    backend_overrides=list(cfg.publish.overrides))
    return CompareResult(comparison=c, files=files, published=where, config=cfg)


def _tiered(c: Any, runs: Sequence[Any], cfg: Any, *, within: Any = None, intervals: Any = None) -> None:
    """The default ranking and "since when" (see :mod:`trackdiag.compare.tiered`, :mod:`.compare.since`)."""
    import numpy as np

    from .compare import since as sw
    from .compare.data import Series
    from .compare.tiered import severities, tiered_rank

    tol = int(cfg.tolerance)
    level, codes, notes = severities(c, runs, analyzers=list(cfg.ranking.verdict_analyzers), tolerance=tol)
    c.notes += notes
    tiered_rank(c, runs, severity=level, codes=codes, severity_first=bool(cfg.ranking.severity_first),
                within=within, intervals=intervals)
    c.onsets = []
    if not cfg.ranking.since or c.mode == "samples":
        return
    checkpoints = {rid: np.sort(c.step[np.array(c.run_id) == rid]) for rid in dict.fromkeys(c.run_id)}
    # recomputed verdict series (runs without verdict metrics): one 0/1/2 series per code over the checkpoints
    vseries: dict[str, dict[str, Series]] = {}
    for rid in checkpoints:
        rows = np.flatnonzero(np.array(c.run_id) == rid)
        rows = rows[np.argsort(c.step[rows], kind="stable")]
        allc = sorted({code for r in rows for code in codes[r]})
        for code in allc:
            run = next(r for r in runs if r.run_id == rid)
            if any(k.endswith("/verdict/" + code.split("/")[-1]) for k in run.metrics):
                continue
            vals = [1.0 if code in codes[r] else 0.0 for r in rows]
            vseries.setdefault(rid, {})[f"{code.split('/')[0]}/verdict/{code.split('/')[-1]}"] = Series(
                c.step[rows], np.array([max(v, 0.0) * (2.0 if level[r] >= 2 else 1.0)
                                        for v, r in zip(vals, rows, strict=True)]))
    columns = [(s.key, s.sign, s.limit) for s in c.specs if s.sign != 0]
    found = sw.onsets(runs, columns=columns, checkpoints=checkpoints, verdict_series=vseries,
                      loss_samples=_loss_samples(cfg) if cfg.backend == "mlflow" else None)
    c.onsets = found
    bad_start = {}
    for rid, ck in checkpoints.items():
        rows = np.flatnonzero((np.array(c.run_id) == rid) & (c.step == ck[0]))
        if rows.size and level[rows[0]] >= 1:
            bad_start[c.run[rows[0]]] = f"step {int(ck[0])}: {', '.join(codes[rows[0]][:3])}"
    c.verdict += sw.summary_lines(found, list(dict.fromkeys(c.run)), bad_start)


def _interval_lines(c: Any, intervals: Any) -> list[str]:
    """The bootstrap 95 % intervals of the best two rows, per ranked column that has them."""
    import numpy as np

    order = np.argsort(c.rank, kind="stable")[:2]
    lines = []
    for j, s in enumerate(c.specs):
        parts = [f"{c.row_label(int(i))} [{intervals[(int(i), j)][0]:.4g}, {intervals[(int(i), j)][1]:.4g}]"
                 for i in order if (int(i), j) in intervals]
        if parts:
            lines.append(f"Bootstrap 95 % interval of {s.label} over the samples: " + "; ".join(parts) + ".")
    return lines


def _loss_samples(cfg: Any) -> Callable[[Any, int, int], list[dict]]:
    """Reads the loss analyzer's ``events`` table of an MLflow run (the samples of each loss event)."""
    def read(run: Any, lo: int, hi: int) -> list[dict]:
        import json
        import tempfile

        try:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
            with tempfile.TemporaryDirectory(prefix="trackdiag_loss_events_") as tmp:
                path = client.download_artifacts(run.run_id, "tables/trackdiag/loss/events.json", tmp)
                table = json.loads(Path(path).read_text(encoding="utf-8"))
        except Exception:
            return []
        cols = table.get("columns", []) if isinstance(table, dict) else []
        rows = [dict(zip(cols, r, strict=False)) for r in table.get("data", [])] if cols else []
        return [r for r in rows if r.get("step") is not None and lo <= int(r["step"]) <= hi]

    return read


def _samples(cfg: Any, progress: Optional[Callable[[str], None]]) -> tuple[list, list, list, list[str]]:
    from .compare import samples as sm

    s = cfg.samples
    sets = sm.parse_sets(list(s.sets), run_name=s.run_name, masks=s.masks)
    analyzers = sm.build_analyzers(list(s.analyzers), dict(s.params))
    rows, notes = sm.analyze_sets(sets, analyzers, ref=s.ref, batch_size=int(s.batch_size),
                                  on_missing=str(cfg.on_missing), progress=progress)
    if not rows:
        from .compare.data import MissingRunError

        raise MissingRunError("no sample image could be analysed: " + "; ".join(notes[:5]))
    fixed = ("run", "checkpoint", "step", "image")
    available = list(dict.fromkeys(k for r in rows for k in r if k not in fixed))
    box: dict[str, Any] = {}
    keys = _selector(cfg, box)([available])
    notes = notes + box.get("notes", [])
    goal_of = _goal_of(cfg, available)
    runs, _ = sm.to_runs(sets, rows, aggregates=list(s.aggregates), worst_k=int(s.worst_k), goal_of=goal_of)
    specs = _specs(cfg, keys, available, aggregates=list(s.aggregates), rank_by=str(s.rank_by))
    return runs, specs, rows, notes


def _write_per_image(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    from .io.tables import write_csv

    return write_csv(path, rows)


def _summary(result: CompareResult) -> str:
    from .compare.outputs import comparison_verdicts
    from .core.findings import console_text

    c = result.comparison
    lines = list(c.verdict[:1])
    problems = [v for v in comparison_verdicts(c) if v.is_problem]
    where = f"where to look: the trend plots in {result.files['html']}" if "html" in result.files else ""
    lines.append(console_text(problems, title="findings", where=where if problems else ""))
    if "html" in result.files:
        lines.append(f"report: {result.files['html']}")
    lines += [f"{name}: {where}" for name, where in result.published.items()]
    if c.notes:
        lines.append(f"{len(c.notes)} note(s), e.g.: {c.notes[0]}")
    return "\n".join(lines)


def main() -> None:
    """The Hydra entry point (``python -m trackdiag.compare_ckpts key=value ...``)."""
    import hydra

    from .compare.config import _register, compare_config_dir, map_overrides

    _register()
    sys.argv[1:] = map_overrides(sys.argv[1:])

    @hydra.main(config_path=compare_config_dir(), config_name="config", version_base=None)
    def app(cfg: Any) -> None:
        try:
            result = run(validate(cfg), progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        except TrackdiagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        print(_summary(result))

    app()


if __name__ == "__main__":  # pragma: no cover
    main()
