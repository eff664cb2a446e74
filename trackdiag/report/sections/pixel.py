"""``--images IN OUT [IN OUT ...]``: pixel-space diagnostics of input/output pairs (seed section 3.3).

Each pair is an input (or training target) and the model's output for it. ``IN`` and ``OUT`` may also be two
folders: files are then paired by their path relative to the folder, without the suffix. ``--mask``
(defined by the tiling section) is one mask for every pair, or a folder of masks matched to ``IN`` the
same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import InputValueError, TrackdiagError
from ...verdicts import Verdict
from ..folder import Figure, Section
from . import unique_name

__all__ = ["add_arguments", "wanted", "run", "pair_images"]

#: Longest side of the anomaly grid offline: boxes are pixel-exact up to this size.
_OFFLINE_MAP_SIDE = 1024
#: Thresholds of the verdicts live with the rules (trackdiag.analyzers.pixel); re-exported here.
from ...analyzers.pixel import LEAK_PX_WARN as LEAK_PX  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("pixel diagnostics (--images)")
    g.add_argument("--images", nargs="+", metavar="IN OUT", default=None,
                   help="input/output pairs (files, or two folders paired by relative path)")
    g.add_argument("--heatmap-scale", type=float, default=4.0,
                   help="gain of the difference heat map: shown as clamp(|diff| * scale, 0, 1) (default 4)")
    g.add_argument("--max-images", type=int, default=8,
                   help="at most this many pairs get a figure in the report, most anomalous first "
                        "(default 8)")


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "images", None))


@dataclass
class Pair:
    name: str
    inp: Path
    out: Path
    mask: Optional[Path]


def pair_images(items: list[str], mask: Optional[str] = None) -> Iterator[Pair]:
    """Expand ``--images`` (and ``--mask``) into pairs. Raises :class:`InputValueError` on an odd count."""
    if len(items) % 2:
        raise InputValueError(f"--images takes IN OUT pairs; got {len(items)} paths. Give an even number.")
    from ...io.pairing import companion_lookup, stem_index

    mask_path = Path(mask) if mask else None

    def masks_for(root: Optional[Path]) -> Callable[[Path], Optional[Path]]:
        if mask_path is not None and not mask_path.exists():
            return lambda _image: mask_path  # reported per pair when it is loaded
        return companion_lookup(mask_path, what="mask", root=root)

    for a, b in zip(items[0::2], items[1::2], strict=True):
        pa, pb = Path(a), Path(b)
        if pa.is_dir() and pb.is_dir():
            ins, outs = stem_index(pa, recursive=True), stem_index(pb, recursive=True)
            mask_for = masks_for(pa)
            for key in sorted(ins):
                if key in outs:
                    yield Pair(key, ins[key], outs[key], mask_for(ins[key]))
        else:
            # Named after the output (inputs are often shared between pairs); the mask belongs to the input.
            yield Pair(pb.stem, pa, pb, masks_for(None)(pa))


def run(args: argparse.Namespace, out_dir: Path, progress: bool) -> list[Section]:
    import torch

    from ...analyzers.base import StepInputs
    from ...analyzers.pixel import PixelAnalyzer, PixelParams
    from ...io.images import load_image, load_mask
    from ...plots import save_rgb_png
    from ..folder import write_json

    if args.heatmap_scale <= 0:
        raise InputValueError(f"--heatmap-scale must be > 0; got {args.heatmap_scale}.")
    mask = getattr(args, "mask", None)  # defined by the tiling section
    if isinstance(mask, (list, tuple)):
        if len(mask) > 1:
            raise InputValueError("--images takes one --mask (a file, or a folder of masks); "
                                  f"got {len(mask)}.")
        mask = mask[0] if mask else None
    pairs = list(pair_images(list(args.images), str(mask) if mask is not None else None))
    seen: dict[str, int] = {}
    for pair in pairs:  # unique names for tables and figure files
        seen[pair.name] = seen.get(pair.name, 0) + 1
        if seen[pair.name] > 1:
            pair.name = f"{pair.name}#{seen[pair.name]}"
    if not pairs:
        raise InputValueError("--images: no pairs found (folders are paired by relative path and stem).")
    params = PixelParams(heatmap_scale=args.heatmap_scale, map_max_side=_OFFLINE_MAP_SIDE,
                         component_samples=1, max_components=50, target_is_input=True)
    analyzer = PixelAnalyzer(params)
    iterator: Any = pairs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc="pixel", unit="pair")
    per_pair: list[dict[str, Any]] = []
    anomalies: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    results = []
    for pair in iterator:
        try:
            inp = load_image(pair.inp, name=str(pair.inp))[None]
            out = load_image(pair.out, name=str(pair.out))[None]
            mask = load_mask(pair.mask, name=str(pair.mask)) if pair.mask is not None else None
            with torch.no_grad():
                host = {k: v.cpu().numpy() for k, v in
                        analyzer.compute(StepInputs(step=0, pred=out, target=inp, mask=mask)).items()}
            result = analyzer.summarize(0, host, sample_ids=[pair.name])
        except TrackdiagError as exc:
            problems.append({"pair": pair.name, "input": str(pair.inp), "output": str(pair.out),
                             "error": str(exc)})
            continue
        row = {"pair": pair.name, "input": str(pair.inp), "output": str(pair.out),
               "mask": str(pair.mask) if pair.mask else "", **result.metrics, **result.texts}
        per_pair.append(row)
        anomalies.extend({"pair": pair.name,
                          **{k: v for k, v in a.items() if k not in ("step", "sample", "index")}}
                         for a in result.tables["anomalies"])
        results.append((pair, result))

    summary = _aggregate(per_pair)
    summary.update({"pairs": len(pairs), "pairs_failed": len(problems)})
    # Figures: the most anomalous pairs first (stable, so ties keep the command-line order).
    order = sorted(range(len(results)), key=lambda i: -float(results[i][1].metrics["anomaly_area_px"]))
    figures: list[Figure] = []
    used: set[str] = set()
    for i in order[: max(0, int(args.max_images))]:
        pair, result = results[i]
        rgb = analyzer.render(result)["pixel_overlay"]
        rel = f"pixel/{unique_name(pair.name, used, default='pair')}.png"
        save_rgb_png(rgb, out_dir / rel)
        m = result.metrics
        figures.append(Figure(rel, f"{pair.name}: {int(m['anomaly_count'])} anomalies", (
            "Top: input and output; boxes are anomaly regions (red = along a row, cyan = along a column). "
            "Bottom: |difference| and the Sobel gradient difference, both multiplied by --heatmap-scale; "
            "bright outside the wall means the edit leaked.")))
    # The flat summary of a pixel-only run; diagnose replaces it by the combined one when several
    # sections run.
    write_json(summary, out_dir / "summary.json")
    notes = [f"{len(per_pair)} of {len(pairs)} pairs analysed; figures for the {len(figures)} pairs with the "
             "largest anomaly area."]
    _write_csv(anomalies, out_dir / "pixel_anomalies.csv")
    _write_csv(per_pair, out_dir / "pixel_pairs.csv")
    notes.append("Every anomaly is in pixel_anomalies.csv and every pair in pixel_pairs.csv.")
    tables: dict[str, list[dict[str, Any]]] = {"pairs": per_pair, "anomalies": anomalies}
    if problems:
        tables["problems"] = problems
    return [Section(title="Pixel diagnostics", summary=summary, figures=figures, verdicts=_verdicts(summary),
                    tables=tables, notes=notes)]


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """All ``rows`` as CSV (the union of their keys as columns, in first-seen order)."""
    import csv

    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols or ["pair"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in cols})


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric metric over the pairs (NaN-aware); ``anomaly_count_total``; the axis hint."""
    from ...core.values import column_means

    if not rows:
        return {}
    out: dict[str, Any] = dict(column_means(rows))
    out["anomaly_count_total"] = int(sum(r["anomaly_count"] for r in rows))
    out["energy_out_frac_max"] = float(np.nanmax([r["energy_out_frac"] for r in rows])) \
        if any(np.isfinite(r["energy_out_frac"]) for r in rows) else float("nan")
    leaks = [float(r.get("leak_px", float("nan"))) for r in rows]
    out["leak_px_max"] = float(np.nanmax(leaks)) if any(np.isfinite(v) for v in leaks) else float("nan")
    out["pairs_with_leak"] = int(sum(1 for v in leaks if np.isfinite(v) and v >= LEAK_PX))
    out["pairs_with_anomalies"] = int(sum(1 for r in rows if r.get("anomaly_count", 0) > 0))
    hints = [r.get("anomaly_axis_hint", "none") for r in rows]
    out["anomaly_axis_hint"] = max(("rows", "cols"), key=hints.count) if (
        hints.count("rows") + hints.count("cols")) * 2 > len(hints) else "none"
    return out


def _verdicts(s: dict[str, Any]) -> list[Verdict]:
    """The pixel analyzer's registered rules on the aggregate (the same rules as in the training loop)."""
    from ...verdicts import evaluate

    return evaluate("pixel", s)
