"""``--latents PATH``: latent diagnostics of saved latent files (seed sections 3.2, 4, 7.1).

Every ``.safetensors``, ``.npy``/``.npz`` and ``.pt`` file below ``PATH`` (natural order: ``step_2`` before
``step_10``) is loaded safely (:mod:`trackdiag.io.latents`) and fed, in that order, through the same
:class:`~trackdiag.analyzers.latent.LatentAnalyzer` as the training loop: each file is one batch, so the
drift is measured from file to file. Writes into the report folder:

* ``latents.csv``: one row per file and latent name with the metrics and flags;
* ``latents/<file>__<name>_channels.png`` and ``..._stats.png`` for the first ``--max-images`` files
  (flagged files first), and ``latent_drift.png``.

A file that cannot be read is listed with its reason and the others are still done; when no file can be
read the section fails with :class:`~trackdiag.errors.InputFileError`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ...analyzers.base import StepInputs
from ...analyzers.latent import LatentAnalyzer, LatentParams
from ...errors import InputFileError, TrackdiagError
from ...io.latents import list_latent_files, load_latents
from ...io.tables import write_csv
from ...verdicts import Verdict
from ..folder import Figure, Section

__all__ = ["add_arguments", "wanted", "run", "ROW_KEYS"]

#: Per-name metrics copied into latents.csv (prefixed by the latent name in the analyzer's metrics).
ROW_KEYS = ("nonfinite_share", "std_mean", "abs_mean_max", "kurtosis_max", "stripe_rows_max",
            "stripe_cols_max", "stripe_excess", "stripe_z", "stripe_channel", "periodic_excess", "period_px",
            "periodic_channel", "periodic_share", "periodic_channels", "drift", "drift_excess", "drift_delta",
            "drift_channel")


def _add_shared(group: Any, flag: str, **kwargs: Any) -> None:
    """Add ``flag`` unless another section already defined it (the seed's flags are shared)."""
    try:
        group.add_argument(flag, **kwargs)
    except argparse.ArgumentError:
        pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("latent diagnostics (--latents)")
    g.add_argument("--latents", type=Path, default=None,
                   help="a latent file or a folder of them (.safetensors, .npy, .npz, .pt); a dict in a file "
                        "keeps its keys, e.g. {'in': z_t, 'out': unet_out}")
    g.add_argument("--periodic-p-bin", type=float, default=None,
                   help="false-alarm probability of one spectral bin for the latent periodic peaks "
                        "(default 1e-8; the threshold adapts to the batch size)")
    _add_shared(g, "--max-images", type=int, default=8,
                help="at most this many files get figures (default 8)")


def wanted(args: argparse.Namespace) -> bool:
    return getattr(args, "latents", None) is not None


def _params(args: argparse.Namespace) -> LatentParams:
    kwargs: dict[str, Any] = {}
    if getattr(args, "periodic_p_bin", None) is not None:
        kwargs["periodic_p_bin"] = float(args.periodic_p_bin)
    return LatentParams(**kwargs)


def run(args: argparse.Namespace, out_dir: Path, progress: bool = True) -> list[Section]:
    from ...plots import save_rgb_png
    from ...plots.latent import channel_montage, channel_stats_figure, drift_figure

    root = Path(args.latents)
    files = list_latent_files(root)
    if not files:
        raise InputFileError(f"{root}: no latent files (.safetensors, .npy, .npz, .pt) below this folder.")
    params = _params(args)
    analyzer = LatentAnalyzer(params)
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    results: list[tuple[Path, Any]] = []
    iterator: Any = files
    if progress and len(files) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(files, desc="latent files", unit="file", leave=False)
    for index, path in enumerate(iterator):
        rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
        try:
            latents = load_latents(path)
            import torch

            with torch.no_grad():
                computed = analyzer.compute(StepInputs(step=index, latents=latents))
            host = {k: v.numpy() for k, v in computed.items()}
            res = analyzer.summarize(index, host)
        except TrackdiagError as exc:
            failed.append({"file": rel, "error": str(exc)})
            continue
        results.append((path, res))
        for ev in res.tables.get("events", []):
            events.append({"file": rel, **{k: v for k, v in ev.items() if k != "step"}})
        for name, x in latents.items():
            safe = _safe_key(name)
            row: dict[str, Any] = {"file": rel, "latent": name, "shape": "x".join(str(s) for s in x.shape)}
            row.update({k: res.metrics.get(f"{safe}/{k}", math.nan) for k in ROW_KEYS})
            row["flags"] = res.texts.get(f"{safe}/flags", "none")
            rows.append(row)
    if not results:
        raise InputFileError(f"{root}: none of the {len(files)} latent files could be read; first problem: "
                             f"{failed[0]['error']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "latents.csv", rows, columns=["file", "latent", "shape", *ROW_KEYS, "flags"],
              float_format=".6g")
    figures: list[Figure] = []
    max_images = int(getattr(args, "max_images", 8) or 8)
    flagged_first = sorted(results, key=lambda pr: (pr[1].metrics.get("flag_count", 0.0) == 0,
                                                    files.index(pr[0])))
    fig_dir = out_dir / "latents"
    for path, res in flagged_first[:max_images]:
        stem = path.relative_to(root).with_suffix("").as_posix() if root.is_dir() else path.stem
        stem = stem.replace("/", "__")
        stats = {}
        for key, value in res.maps.items():
            if "/" in key:
                stats[key.split("/", 1)[0]] = value
                continue
            name = f"latents/{stem}__{key}_channels.png"
            save_rgb_png(channel_montage(value, title=f"{stem}: latents[{key!r}], sample 0"), out_dir / name)
            figures.append(Figure(name, f"{stem}: {key} channels",
                                  "Sample 0, one panel per channel. Regular bands across a panel are "
                                  "stripes; a repeating grid of blobs is a periodic structure."))
        if stats:
            name = f"latents/{stem}__stats.png"
            save_rgb_png(channel_stats_figure(stats), out_dir / name)
            figures.append(Figure(name, f"{stem}: per-channel statistics",
                                  "Mean, std, skew and excess kurtosis per channel (before and after the "
                                  "UNet when both are saved), stripe energies and period scores."))
    fig_dir.mkdir(exist_ok=True)
    names = sorted({r["latent"] for r in rows})
    labels = [p.stem for p, _ in results]
    drift = {n: [res.metrics.get(f"{_safe_key(n)}/drift_excess", math.nan) for _, res in results]
             for n in names}
    flagged = {n: ["drift" in res.texts.get(f"{_safe_key(n)}/flags", "").split(",") for _, res in results]
               for n in names}
    if len(results) > 1:
        save_rgb_png(drift_figure(labels, drift, threshold=1.0, flagged=flagged),
                     out_dir / "latent_drift.png")
        figures.append(Figure("latent_drift.png", "latent drift from file to file",
                              "The drift scan's -log10 p over its per-batch limit (>= 1: drift): a change of "
                              "per-channel mean or spread against the earlier files."))
    kinds = {k: sorted({e["file"] for e in events if e["kind"] == k}) for k in
             ("nonfinite", "stripes", "periodic", "drift")}
    summary = {"latent_files": len(files), "latent_files_read": len(results),
               "latent_files_failed": len(failed),
               "latent_names": ",".join(names),
               **{f"files_{k}": len(v) for k, v in kinds.items()},
               "latents_csv": "latents.csv"}
    verdicts = _verdicts(results, files, root)
    tables: dict[str, Any] = {"latents": rows}
    if events:
        tables["latent events"] = events
    if failed:
        tables["unreadable files"] = failed
    notes = [f"{len(results)} of {len(files)} latent files from {root}, analysed in natural order (each file "
             "is one batch; drift is measured from file to file)."]
    return [Section(title="latent", summary=summary, figures=figures, verdicts=verdicts, tables=tables,
                    notes=notes)]


def _safe_key(name: str) -> str:
    from ...analyzers.latent import _safe

    return _safe(name)


def _verdicts(results: list[tuple[Path, Any]], files: list[Path], root: Path) -> list[Verdict]:
    """The latent rules on every file's metrics; one verdict per code (the worst), with the files it hit."""
    from ...verdicts import evaluate

    by_code: dict[str, list[tuple[str, Verdict]]] = {}
    for path, res in results:
        rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
        for v in evaluate("latent", {**res.metrics, **res.texts}):
            by_code.setdefault(v.code, []).append((rel, v))
    out: list[Verdict] = []
    for code, hits in sorted(by_code.items()):
        worst = max(hits, key=lambda h: (h[1].severity == "bad", h[1].severity == "warn"))
        rel, v = worst
        out.append(Verdict(code=code, severity=v.severity, title=v.title,
                           evidence={**v.evidence, "files": len({h[0] for h in hits}), "first": hits[0][0],
                                     "shown": rel}, fix=v.fix))
    if not out:
        out.append(Verdict(code="latent_ok", severity="info", title="No anomaly in the latents",
                           evidence={"files": len(results)}, fix="Nothing to do on the latent side."))
    return out
