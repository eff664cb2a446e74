"""TensorBoard event files (``events.out.tfevents.*``), read with TensorBoard's own reader after a check of
every record's framing."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import InputFileError, MissingDependencyError
from ._common import ScalarSeries, _check_file, _Collector, _truncated


def _tfrecord_check(path: Path) -> tuple[int, Optional[str]]:
    """Walk the TFRecord framing of an event file: (complete records, problem or None).

    The length header's masked CRC-32C is checked (it tells corruption from a cut); payload CRCs are left
    to TensorBoard's reader.
    """
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = path.read_bytes()
    pos, count = 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            return count, f"truncated: the record header at byte {pos} is incomplete"
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked_crc32c(data[pos:pos + 8]) != crc:
            return count, f"corrupt: bad record header at byte {pos} (not a TensorBoard event file?)"
        end = pos + 12 + length + 4
        if end > len(data):
            return count, f"truncated: the record at byte {pos} ends after the end of the file"
        pos, count = end, count + 1
    return count, None


def read_tensorboard(path: str | Path, *, allow_truncated: bool = False,
                     warnings: Optional[list[str]] = None) -> dict[str, ScalarSeries]:
    """Scalar series of a TensorBoard log folder (searched recursively) or one event file.

    Series of event files in sub-folders get the sub-folder as a prefix (``sub/tag``) when there are
    several folders. Uses tensorboard's ``EventAccumulator`` (scalars and scalar tensors).
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util
    except ImportError:  # pragma: no cover - optional dependency
        raise MissingDependencyError("tensorboard", "tensorboard", "reading TensorBoard logs") from None
    root = Path(path)
    _check_file(root)
    warnings = warnings if warnings is not None else []
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("events.out.tfevents.*") if p.is_file())
    if not files:
        raise InputFileError(f"{root}: no TensorBoard event files (events.out.tfevents.*) below this folder.")
    for f in files:
        if f.stat().st_size == 0:
            warnings.append(f"{f}: empty event file, skipped.")
            continue
        count, problem = _tfrecord_check(f)
        if problem is not None:
            if problem.startswith("corrupt"):
                raise InputFileError(f"{f}: {problem}.")
            _truncated(str(f), f"event file {problem}", allow_truncated, warnings, count)
    base = root if root.is_dir() else root.parent
    dirs = sorted({f.parent for f in files})
    col = _Collector()
    for d in dirs:
        prefix = "" if len(dirs) == 1 or d == base else d.relative_to(base).as_posix() + "/"
        target = str(root) if root.is_file() else str(d)
        acc = EventAccumulator(target, size_guidance={"scalars": 0, "tensors": 0})
        try:
            acc.Reload()
        except Exception as exc:  # tensorboard raises assorted errors on damaged files
            raise InputFileError(f"{d}: TensorBoard could not read the events ({type(exc).__name__}: "
                                 f"{exc}).") \
                from None
        tags = acc.Tags()
        for tag in tags.get("scalars", []):
            for ev in acc.Scalars(tag):
                col.add(prefix + tag, ev.step, ev.value)
        for tag in tags.get("tensors", []):
            for ev in acc.Tensors(tag):
                try:
                    arr = tensor_util.make_ndarray(ev.tensor_proto)
                except Exception:
                    break
                if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
                    break
                col.add(prefix + tag, ev.step, float(arr.reshape(-1)[0]))
    return col.series()


