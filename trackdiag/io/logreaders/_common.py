"""What every log reader shares: the series collector, the loss/timestep name guesses, the file checks and
:class:`LossLog`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import InputFileError
from ..series import Series

#: Loss names tried first, in order (compared case-insensitively).
LOSS_TAG_PREFERENCE = ("train_loss", "train/loss", "loss/train", "training_loss", "train/loss_step",
                       "train_loss_step", "loss", "train/loss_epoch", "train_loss_epoch")
#: Timestep series names (compared case-insensitively, also as the last ``/``-segment).
TIMESTEP_TAGS = ("timestep", "timesteps", "t")
#: Step columns/keys of CSV and JSONL logs, in order.
STEP_KEYS = ("step", "global_step", "_step", "trainer/global_step", "iteration", "iter")
_EVAL_WORDS = re.compile(r"(^|[/_.\-])(val|valid|validation|eval|test)([/_.\-]|$)", re.IGNORECASE)


#: The one series type (:class:`trackdiag.io.series.Series`), under the name this module always gave it.
ScalarSeries = Series


@dataclass
class LossLog:
    """The loss series of one log, with its timesteps aligned on the steps (NaN where none was logged)."""

    source: str
    format: str
    tag: str
    steps: np.ndarray
    values: np.ndarray
    timesteps: Optional[np.ndarray] = None
    timestep_tag: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------
# Series helpers
# ------------------------------------------------------------------------------------------------------
class _Collector:
    """Accumulates ``(step, value)`` points per key; duplicates keep the last value written."""

    def __init__(self) -> None:
        self.points: dict[str, dict[int, float]] = {}
        self.duplicates: dict[str, int] = {}

    def add(self, key: str, step: int, value: float) -> None:
        series = self.points.setdefault(key, {})
        if step in series:
            self.duplicates[key] = self.duplicates.get(key, 0) + 1
        series[int(step)] = float(value)

    def series(self) -> dict[str, ScalarSeries]:
        out = {}
        for key, pts in self.points.items():
            if not pts:
                continue
            steps = np.fromiter(pts.keys(), dtype=np.int64, count=len(pts))
            values = np.fromiter(pts.values(), dtype=np.float64, count=len(pts))
            order = np.argsort(steps, kind="stable")
            out[key] = ScalarSeries(steps[order], values[order], self.duplicates.get(key, 0))
        return out


def _number(value: Any) -> Optional[float]:
    """A float for JSON/CSV numbers (NaN/Inf included), None for anything else (bools included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _norm(tag: str) -> str:
    return tag.strip().lower()


def guess_loss_tag(tags: Iterable[str]) -> Optional[str]:
    """The training-loss series among ``tags``, or None.

    Order: the names in :data:`LOSS_TAG_PREFERENCE`; then a tag whose last segment is one of them; then
    any tag containing ``loss`` that is not a validation/eval/test series, preferring ones with ``train``,
    then the shortest name.
    """
    tags = list(tags)
    by_norm = {_norm(t): t for t in tags}
    for name in LOSS_TAG_PREFERENCE:
        if name in by_norm:
            return by_norm[name]
    for name in LOSS_TAG_PREFERENCE:
        for t in tags:
            if _norm(t).rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1] and not _EVAL_WORDS.search(t):
                return t
    cands = [t for t in tags if "loss" in _norm(t) and not _EVAL_WORDS.search(t)]
    if not cands:
        return None
    cands.sort(key=lambda t: (0 if "train" in _norm(t) else 1, len(t), t))
    return cands[0]


def guess_timestep_tag(tags: Iterable[str]) -> Optional[str]:
    """A timestep series among ``tags`` (``timestep``, ``timesteps``, ``t``, also as the last segment)."""
    tags = list(tags)
    for name in TIMESTEP_TAGS:
        for t in tags:
            if _norm(t) == name:
                return t
    for name in TIMESTEP_TAGS:
        for t in tags:
            if _norm(t).rsplit("/", 1)[-1] == name:
                return t
    return None


def _resolve_tag(tag: str, tags: Sequence[str], source: str) -> str:
    if tag in tags:
        return tag
    for t in tags:
        if _norm(t) == _norm(tag):
            return t
    raise InputFileError(f"{source}: no series named {tag!r}. Available numeric series: "
                         f"{_listing(tags)}. Pass one of them with --loss-tag.")


def _listing(tags: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(t) for t in sorted(tags)[:limit])
    more = f" … ({len(tags) - limit} more)" if len(tags) > limit else ""
    return (shown + more) if tags else "none"


def _select(series: Mapping[str, ScalarSeries], *, source: str, fmt: str, tag: Optional[str],
            timestep_tag: Optional[str], warnings: list[str]) -> LossLog:
    tags = sorted(series)
    if not tags:
        raise InputFileError(f"{source}: the {fmt} log holds no numeric series (empty, or nothing logged "
                             "yet).")
    if tag:
        loss_tag = _resolve_tag(tag, tags, source)
    else:
        guessed = guess_loss_tag(tags)
        if guessed is None:
            raise InputFileError(f"{source}: no loss series found in the {fmt} log. Available numeric "
                                 f"series: {_listing(tags)}. Pass the loss name with --loss-tag.")
        loss_tag = guessed
    loss = series[loss_tag]
    if loss.steps.size == 0:
        raise InputFileError(f"{source}: the loss series {loss_tag!r} is empty.")
    if loss.duplicates:
        warnings.append(f"{source}: {loss.duplicates} {loss_tag!r} points were logged again at an existing "
                        "step (a resumed run?); the last value of each step was kept.")
    t_tag = _resolve_tag(timestep_tag, tags, source) if timestep_tag else guess_timestep_tag(
        [t for t in tags if t != loss_tag])
    timesteps = None
    if t_tag is not None:
        ts = series[t_tag]
        idx = np.searchsorted(ts.steps, loss.steps)
        idx_c = np.clip(idx, 0, max(ts.steps.size - 1, 0))
        hit = (idx < ts.steps.size) & (ts.steps[idx_c] == loss.steps) if ts.steps.size else np.zeros(
            loss.steps.size, bool)
        timesteps = np.where(hit, ts.values[idx_c] if ts.steps.size else np.nan, np.nan)
        if not hit.any():
            warnings.append(f"timestep series {t_tag!r} shares no step with {loss_tag!r}; not used.")
            timesteps, t_tag = None, None
    return LossLog(source=source, format=fmt, tag=loss_tag, steps=loss.steps, values=loss.values,
                   timesteps=timesteps, timestep_tag=t_tag, tags=tags, warnings=warnings)


def _truncated(source: str, what: str, allow: bool, warnings: list[str], complete: int) -> None:
    msg = (f"{source}: {what} (the run crashed or is still writing); {complete} complete records before "
           "the cut")
    if not allow:
        raise InputFileError(msg + ". Pass --allow-truncated-logs (allow_truncated=True) to read them.")
    warnings.append(msg + " were read.")


def _read_text(path: Path) -> str:
    """The UTF-8 text of a log file (a BOM is dropped), with a clear error when it cannot be read."""
    _check_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read as UTF-8 text ({exc}).") from None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder.")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty.")


