"""Where each trainer writes its validation images, and how to read the training step from it.

A layout scans a folder and returns :class:`Sample` entries (path, step, prompt index, seed). Built in:

* :class:`KohyaLayout` — kohya sd-scripts ``output_dir/sample/``:
  ``[<output_name>_]<step:06d>_<idx:02d>_<%Y%m%d%H%M%S>[_<seed>].png``, or ``e<epoch:06d>`` instead of the
  step for per-epoch samples. An epoch maps to a step with ``steps_per_epoch`` or with the trainer's log
  (:func:`epoch_steps_from_log`); without either the epoch *is* the step (``step_unit == "epoch"``).
* :class:`AiToolkitLayout` — ai-toolkit ``<training_folder>/<name>/samples/``:
  ``<time>__<step:09d>_<count>.<ext>`` (``rank<r>_sample<i>_`` prefix for distributed sampling).
* :class:`SimpleTunerLayout` — SimpleTuner's ``validation_media.jsonl`` (``--report_to simpletuner``): one
  JSON
  record per image with ``step``, ``label``, ``index`` and ``path`` (relative to the output dir); a line that
  is still being written (no trailing newline, or not JSON yet) is read on a later poll.
* :class:`PatternLayout` — a generic pattern relative to the folder with ``{step}`` (and optionally ``{idx}``,
  ``{seed}``, ``{epoch}``, ``{name}``, ``*``), e.g. ``"val/step{step}_{idx}.png"``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Protocol

from ..errors import ConfigError, InputFileError

__all__ = [
    "Sample",
    "Layout",
    "KohyaLayout",
    "AiToolkitLayout",
    "SimpleTunerLayout",
    "PatternLayout",
    "detect_layout",
    "epoch_steps_from_log",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Sample:
    """One validation image: its file, training step and which prompt (``key``) of the validation set."""

    path: Path
    step: int
    key: str
    seed: Optional[int] = None
    epoch: Optional[int] = None

    def rel(self, root: Path) -> str:
        try:
            return self.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(self.path)


class Layout(Protocol):
    name: str

    @property
    def step_unit(self) -> Literal["step", "epoch"]: ...

    def scan(self, root: Path) -> list[Sample]: ...


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


_KOHYA = re.compile(
    r"^(?:(?P<name>.*)_)?(?:e(?P<epoch>\d{6})|(?P<step>\d{6}))_(?P<idx>\d{2})_(?P<ts>\d{14})"
    r"(?:_(?P<seed>\d+))?\.png$"
)


def epoch_steps_from_log(path: Path) -> dict[int, int]:
    """``epoch -> last global step of that epoch`` from a trainer's log.

    Reads lines that carry both an epoch and a step: JSON lines (``{"epoch": 3, "step": 1200}``, also
    ``global_step``), CSV with ``epoch`` and ``step`` columns, or text such as ``epoch 3/10 … step 1200`` /
    ``epoch=3 global_step=1200``. Raises :class:`InputFileError` when no such line is found.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputFileError(f"cannot read the trainer log {path}: {exc}") from exc
    out: dict[int, int] = {}
    lines = text.splitlines()
    header: Optional[list[str]] = None
    if lines and "," in lines[0] and "epoch" in lines[0].lower():
        header = [h.strip().lower() for h in lines[0].split(",")]
    rx = re.compile(r"epoch\W{0,3}(\d+).*?(?:global_step|step)\W{0,3}(\d+)", re.IGNORECASE)
    for line in lines[1:] if header else lines:
        e = s = None
        if header:
            cells = [c.strip() for c in line.split(",")]
            row = dict(zip(header, cells[: len(header)], strict=False))
            e, s = row.get("epoch"), row.get("step", row.get("global_step"))
        elif line.lstrip().startswith("{"):
            try:
                rec = json.loads(line)
                e, s = rec.get("epoch"), rec.get("step", rec.get("global_step"))
            except ValueError:
                continue
        else:
            m = rx.search(line)
            if m:
                e, s = m.group(1), m.group(2)
        try:
            ei, si = int(float(e)), int(float(s))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        out[ei] = max(out.get(ei, si), si)
    if not out:
        raise InputFileError(
            f"no line with both an epoch and a step in the trainer log {path}; pass "
            "--steps-per-epoch instead."
        )
    return out


class KohyaLayout:
    """kohya sd-scripts: ``<root>/sample/`` (or ``<root>`` itself when it holds the images)."""

    name = "kohya"

    def __init__(self, *, steps_per_epoch: Optional[int] = None, log: Optional[Path] = None) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.log = Path(log) if log is not None else None
        self._epoch_steps: dict[int, int] = {}
        self.saw_epochs = False

    @property
    def step_unit(self) -> Literal["step", "epoch"]:
        if self.saw_epochs and self.steps_per_epoch is None and self.log is None:
            return "epoch"
        return "step"

    def _epoch_to_step(self, epoch: int) -> Optional[int]:
        if self.steps_per_epoch is not None:
            return epoch * int(self.steps_per_epoch)
        if self.log is not None:
            if epoch not in self._epoch_steps and self.log.exists():
                self._epoch_steps = epoch_steps_from_log(self.log)
            return self._epoch_steps.get(epoch)  # None: the log has not reached that epoch yet
        return epoch

    def scan(self, root: Path) -> list[Sample]:
        folder = root / "sample" if (root / "sample").is_dir() else root
        out = []
        for p in _images(folder):
            m = _KOHYA.match(p.name)
            if not m:
                continue
            seed = int(m["seed"]) if m["seed"] else None
            key = f"{m['idx']}" if seed is None else f"{m['idx']}_seed{seed}"
            if m["epoch"] is not None:
                self.saw_epochs = True
                epoch = int(m["epoch"])
                step = self._epoch_to_step(epoch)
                if step is None:
                    continue
                out.append(Sample(p, step, key, seed, epoch))
            else:
                out.append(Sample(p, int(m["step"]), key, seed))
        return out


_AITK = re.compile(
    r"^(?:rank(?P<rank>\d+)_sample(?P<sample>\d+)_)?(?P<ts>\d+)__(?P<step>\d+)_(?P<idx>\d+)"
    r"\.(?:png|jpg|jpeg|webp)$",
    re.IGNORECASE,
)


class AiToolkitLayout:
    """ai-toolkit: ``<root>/samples/`` (or ``<root>`` itself)."""

    name = "ai-toolkit"
    step_unit: Literal["step", "epoch"] = "step"

    def scan(self, root: Path) -> list[Sample]:
        folder = root / "samples" if (root / "samples").is_dir() else root
        out = []
        for p in _images(folder):
            m = _AITK.match(p.name)
            if m:
                key = m["idx"] if m["sample"] is None else f"{m['sample']}"
                out.append(Sample(p, int(m["step"]), key))
        return out


class SimpleTunerLayout:
    """SimpleTuner: ``<output_dir>/validation_media.jsonl`` (images only)."""

    name = "simpletuner"
    step_unit: Literal["step", "epoch"] = "step"
    manifest = "validation_media.jsonl"

    def scan(self, root: Path) -> list[Sample]:
        path = root / self.manifest if root.is_dir() else root
        base = path.parent
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        complete = data[: data.rfind(b"\n") + 1]  # the last line may still be being written
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if (
                not isinstance(rec, dict)
                or rec.get("type", "image") != "image"
                or not isinstance(rec.get("path"), str)
            ):
                continue
            p = (base / rec["path"]).resolve()
            if not p.is_relative_to(base.resolve()):  # never read outside the watched folder
                continue
            label = str(rec.get("label", ""))
            key = f"{label}_{int(rec.get('index', 0))}" if label else str(int(rec.get("index", 0)))
            try:
                out.append(Sample(p, int(rec["step"]), re.sub(r"[^A-Za-z0-9_.-]+", "_", key)))
            except (KeyError, TypeError, ValueError):
                continue
        return out


class PatternLayout:
    """A pattern relative to the folder with ``{step}`` (and ``{idx}``, ``{seed}``, ``{epoch}``, ``{name}``,
    ``*``)."""

    name = "pattern"
    step_unit: Literal["step", "epoch"] = "step"
    _FIELDS = {
        "step": r"(?P<step>\d+)",
        "idx": r"(?P<idx>\d+)",
        "seed": r"(?P<seed>\d+)",
        "epoch": r"(?P<epoch>\d+)",
        "name": r"(?P<name>[^/]*?)",
    }

    def __init__(self, pattern: str) -> None:
        if "{step}" not in pattern:
            raise ConfigError(
                f"the pattern must contain {{step}}; got {pattern!r} (e.g. 'val/{{step}}_{{idx}}.png')"
            )
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            raise ConfigError(f"the pattern must be relative to the watched folder; got {pattern!r}")
        rx = ""
        for part in re.split(r"(\{[a-z]+\}|\*)", pattern):
            if part == "*":
                rx += r"[^/]*"
            elif part.startswith("{") and part.endswith("}"):
                field = part[1:-1]
                if field not in self._FIELDS:
                    raise ConfigError(f"unknown field {part} in pattern; known: {sorted(self._FIELDS)}")
                rx += self._FIELDS[field]
            else:
                rx += re.escape(part)
        self.pattern = pattern
        self.regex = re.compile(rx + "$")
        self.glob = re.sub(r"\{[a-z]+\}", "*", pattern)

    def scan(self, root: Path) -> list[Sample]:
        out = []
        for p in sorted(root.glob(self.glob)):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            m = self.regex.match(p.relative_to(root).as_posix())
            if not m:
                continue
            g = m.groupdict()
            key = "_".join(v for k, v in g.items() if k in ("name", "idx") and v) or p.stem
            out.append(
                Sample(
                    p,
                    int(g["step"]),
                    key,
                    int(g["seed"]) if g.get("seed") else None,
                    int(g["epoch"]) if g.get("epoch") else None,
                )
            )
        return out


def detect_layout(root: Path) -> str:
    """The built-in layout that fits ``root`` (``"kohya"``, ``"ai-toolkit"``, ``"simpletuner"``)."""
    if (root / SimpleTunerLayout.manifest).exists() or root.name == SimpleTunerLayout.manifest:
        return "simpletuner"
    if (root / "samples").is_dir() or any(_AITK.match(p.name) for p in _images(root)):
        return "ai-toolkit"
    return "kohya"
