"""Read what a backend wrote back from the tracker's own storage, in one shape for every backend.

* local: the run folder; MLflow: ``MlflowClient`` (metric history, artifacts, params, tags, status);
* W&B: the offline run folder, decoded with wandb's protobuf classes
  (:func:`trackdiag.io.logreaders.read_wandb_offline` / ``iter_wandb_records``) and its media files;
* TensorBoard: TensorBoard's own ``EventAccumulator``.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image


@dataclass
class Readback:
    metrics: dict[str, dict[int, float]] = field(default_factory=dict)  # key → step → value
    images: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # key → step → H×W×3
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # key → rows in order
    params: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, set[str]] = field(default_factory=dict)  # name → relative file paths
    status: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_metric(self, key: str, step: int, value: float) -> None:
        steps = self.metrics.setdefault(key, {})
        assert step not in steps or _same(steps[step], value), f"{key} step {step} written twice"
        steps[step] = value


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def read_local(run_dir: Path) -> Readback:
    out = Readback()
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for k, v in rec["metrics"].items():
                out.add_metric(k, rec["step"], float(v))
    for png in sorted((run_dir / "images").rglob("*.png")):
        key = png.parent.relative_to(run_dir / "images").as_posix()
        step = int(png.stem.split("_")[1])
        out.images.setdefault(key, {})[step] = np.asarray(Image.open(png).convert("RGB"))
    for jl in sorted((run_dir / "tables").rglob("*.jsonl")):
        key = jl.relative_to(run_dir / "tables").with_suffix("").as_posix()
        out.tables[key] = [json.loads(x) for x in jl.read_text().splitlines() if x.strip()]
    if (run_dir / "params.json").exists():
        out.params = json.loads((run_dir / "params.json").read_text())
    for d in (run_dir / "artifacts").glob("*") if (run_dir / "artifacts").exists() else []:
        out.artifacts[d.name] = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    if (run_dir / "status.json").exists():
        out.status = json.loads((run_dir / "status.json").read_text())["status"]
    return out


_MLFLOW_IMAGE = re.compile(r"^images/(?P<key>.+?)\+step\+(?P<step>\d+)\+timestamp\+\d+\+[0-9a-f-]+\.png$")


def read_mlflow(tracking_uri: str, run_id: str, *, tmp: Path) -> Readback:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    out = Readback(params=dict(run.data.params), status=run.info.status)
    out.extra["tags"] = dict(run.data.tags)
    for key in run.data.metrics:
        for m in client.get_metric_history(run_id, key):
            out.add_metric(key, m.step, m.value)

    def walk(path: Optional[str]) -> list[str]:
        files = []
        for info in client.list_artifacts(run_id, path):
            files += walk(info.path) if info.is_dir else [info.path]
        return files

    files = walk(None)
    out.extra["files"] = files
    for f in files:
        m = _MLFLOW_IMAGE.match(f)
        if m:
            local = client.download_artifacts(run_id, f, str(tmp))
            key = m["key"].replace("~", "/")
            out.images.setdefault(key, {})[int(m["step"])] = np.asarray(Image.open(local).convert("RGB"))
        elif f.startswith("tables/") and f.endswith(".json"):
            data = json.loads(Path(client.download_artifacts(run_id, f, str(tmp))).read_text())
            key = f[len("tables/"):-len(".json")]
            out.tables[key] = [dict(zip(data["columns"], row, strict=True)) for row in data["data"]]
        elif "/" in f and not f.startswith(("images/", "tables/")):
            name, _, rel = f.partition("/")
            out.artifacts.setdefault(name, set()).add(rel)
    return out


def wandb_run_dir(root: Path) -> Path:
    runs = sorted(p for p in Path(root).rglob("*run-*") if p.is_dir() and any(p.glob("*.wandb")))
    assert len(runs) == 1, f"expected one W&B run folder under {root}, found {runs}"
    return runs[0]


def read_wandb(run_dir: Path, *, step_metric: str = "trackdiag/step") -> Readback:
    from trackdiag.io.logreaders import iter_wandb_records, wait_for_wandb_run

    # A run trackdiag finished is complete already (the backend's close() waits for W&B's exit record); a
    # run the user's code finished (attach) may still be flushing.
    run = wait_for_wandb_run(run_dir)
    assert run.exit_code is not None and not run.truncated, run.warnings
    out = Readback(params={k: v for k, v in run.config.items() if not k.startswith("_")})
    out.extra["run"] = run
    files = Path(run_dir) / "files"
    increments: dict[str, list[tuple[int, Path]]] = {}
    for row in run.history:
        if step_metric not in row:
            continue
        step = int(row[step_metric])
        for key, value in row.items():
            if key.startswith("_") or key == step_metric:
                continue
            if isinstance(value, dict) and value.get("_type") == "image-file":
                image = np.asarray(Image.open(files / value["path"]).convert("RGB"))
                out.images.setdefault(key, {})[step] = image
            elif isinstance(value, dict) and "table" in str(value.get("_type")):
                part = (int(value.get("increment_num", 0)), files / value["path"])
                increments.setdefault(key, []).append(part)
            elif isinstance(value, (int, float)) or value in ("NaN", "nan"):
                out.add_metric(key, step, float(value))
    for key, parts in increments.items():
        rows: list[dict[str, Any]] = []
        for _, path in sorted(parts):
            data = json.loads(path.read_text())
            rows += [dict(zip(data["columns"], r, strict=True)) for r in data["data"]]
        out.tables[key] = rows
    for rec in iter_wandb_records(run_dir):
        if rec.WhichOneof("record_type") == "artifact" and rec.artifact.type == "trackdiag-report":
            out.artifacts[rec.artifact.name] = {c.path for c in rec.artifact.manifest.contents}
        if rec.WhichOneof("record_type") == "metric":
            out.extra.setdefault("define_metric", []).append(rec.metric)
    out.status = None if run.exit_code is None else ("FINISHED" if run.exit_code == 0 else "FAILED")
    return out


def _md_rows(text: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    header, body = cells[0], cells[2:]
    return [dict(zip(header, [c.strip() for c in row], strict=True)) for row in body]


def read_tensorboard(log_dir: Path) -> Readback:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out = Readback()
    for tag in tags["scalars"]:
        for e in acc.Scalars(tag):
            out.add_metric(tag, e.step, e.value)
    for tag in tags["images"]:
        out.images[tag] = {e.step: _png(e.encoded_image_string) for e in acc.Images(tag)}
    for tag in tags["tensors"]:
        events = acc.Tensors(tag)
        if tag == "custom_scalars__config__":
            from tensorboard.plugins.custom_scalar import layout_pb2

            layout = layout_pb2.Layout()
            layout.ParseFromString(events[-1].tensor_proto.string_val[0])
            out.extra["layout"] = layout
            continue
        if not tag.endswith("/text_summary"):
            continue
        key = tag[: -len("/text_summary")]
        texts = [e.tensor_proto.string_val[0].decode() for e in events]
        if key == "trackdiag/config":
            out.params = {r["param"]: r["value"] for r in _md_rows(texts[-1])}
        elif key == "trackdiag/status":
            out.status = texts[-1]
        elif key.startswith("trackdiag/artifacts/"):
            name = key[len("trackdiag/artifacts/"):]
            out.artifacts[name] = {p.relative_to(log_dir / "artifacts" / name).as_posix()
                                   for p in (log_dir / "artifacts" / name).rglob("*") if p.is_file()}
        else:
            out.extra.setdefault("texts", {})[key] = texts
            out.tables[key] = [r for t in texts for r in _md_rows(t)]
    return out
