"""The *history digest* of an MLflow run: every metric point trackdiag logged into it, in one small artifact.

A tracking server answers a history read by building one ORM object per point (~35-40 µs of server CPU
each), so reading 1,000 runs × 20 metrics × 50 checkpoints from it costs tens of seconds of server CPU
whatever the client does. trackdiag knows every point it delivered, so the MLflow backend writes them once,
at ``close()``, as the artifact :data:`ARTIFACT` (an ``.npz`` file: ``keys`` (K,) str, ``key`` (N,) int32
index into ``keys``, ``step`` (N,) int64, ``timestamp`` (N,) int64 ms, ``value`` (N,) float64, ``run_id``,
``version``) and sets the run tag :data:`TAG` to the number of points. ``compare_ckpts`` reading from a
server downloads the digests (one small file per run) and checks each key against the run's latest metric
(:func:`check`) before trusting it; see :mod:`trackdiag.compare.mlflow_digests`.

The digest holds exactly the points the store holds for those keys: identical points are kept once (MLflow
stores an identical ``(key, step, timestamp, value)`` point once), values as logged (NaN kept). The backend
writes it from what it delivered when it created the run and every delivery succeeded; a run that held
points under one of the keys trackdiag logs before it delivered any (a continued run, a run ``trackdiag
sync`` completes) or one with a failed delivery is read back from the store instead
(:meth:`DigestRecorder.needs_readback`).

>>> rec = DigestRecorder()
>>> rec.add([("a", 1, 10, 0.5), ("a", 2, 20, 0.25), ("b", 1, 10, float("nan")), ("a", 2, 20, 0.25)])
>>> data, n = encode("r1", *rec.columns())
>>> d = decode(data)
>>> n, d.run_id, sorted(d.keys), d.points, d.keys["a"][0].tolist()
(3, 'r1', ['a', 'b'], 3, [1, 2])
"""

from __future__ import annotations

import io
import tempfile
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["ARTIFACT", "TAG", "VERSION", "Digest", "DigestRecorder", "DigestError", "encode", "decode",
           "latest", "check", "log_digest", "columns_of"]

#: Artifact path of the digest in the run.
ARTIFACT = "trackdiag/history.npz"
#: Run tag set once the digest is logged: the number of points it holds.
TAG = "trackdiag.history_digest"
VERSION = 1
#: Points a backend keeps in memory for the digest (28 bytes each); a run that logs more gets none.
MAX_POINTS = 5_000_000


class DigestError(ValueError):
    """A digest file that cannot be read (wrong format, version, shapes)."""


Columns = tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Digest:
    """A decoded digest: ``keys``: key → ``(steps, timestamps, values)``, each ``(n_k,)``, sorted the way a
    history read orders them (step, timestamp, value)."""

    run_id: str
    keys: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    points: int


class DigestRecorder:
    """The points one backend delivered, in compact typed buffers (28 bytes a point)."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max_points
        self._index: dict[str, int] = {}
        self._key = array("i")
        self._step = array("q")
        self._ts = array("q")
        self._value = array("d")
        #: A delivery failed: its points may or may not be in the store.
        self.uncertain = False
        #: The last delivery failed: the tracker is down or hung, so ``close()`` does not wait for it once
        #: more for the digest (``trackdiag sync`` writes it when it delivers the rest).
        self.failing = False
        #: The keys the run held before this backend delivered anything (a continued or replayed run).
        self.keys_before: set[str] = set()
        #: More than ``max_points`` points: no digest for this run (readers read its histories).
        self.overflow = False

    def __len__(self) -> int:
        return len(self._step)

    def add(self, points: Iterable[tuple[str, int, int, float]]) -> None:
        """Record delivered ``(key, step, timestamp_ms, value)`` points."""
        for key, step, ts, value in points:
            idx = self._index.setdefault(key, len(self._index))
            if self.overflow:
                continue
            self._key.append(idx)
            self._step.append(int(step))
            self._ts.append(int(ts))
            self._value.append(float(value))
        if len(self) > self.max_points:
            self.overflow = True
            self._key, self._step, self._ts, self._value = array("i"), array("q"), array("q"), array("d")

    def logged_keys(self) -> list[str]:
        return list(self._index)

    def needs_readback(self) -> bool:
        """Whether memory alone may differ from the store: then the digest is read back from it."""
        return self.uncertain or not self.keys_before.isdisjoint(self._index)

    def columns(self) -> Columns:
        """``(keys, key_index, steps, timestamps, values)`` of the recorded points."""
        return (list(self._index), np.frombuffer(self._key, dtype=np.int32).copy(),
                np.frombuffer(self._step, dtype=np.int64).copy(),
                np.frombuffer(self._ts, dtype=np.int64).copy(),
                np.frombuffer(self._value, dtype=np.float64).copy())


def columns_of(rows: Mapping[str, Iterable[tuple[int, int, float]]]) -> Columns:
    """``key -> [(step, timestamp, value), …]`` (a read of the store) as digest columns."""
    keys, idx, st, ts, va = [], [], [], [], []
    for i, (key, pts) in enumerate(rows.items()):
        keys.append(key)
        for s, t, v in pts:
            idx.append(i)
            st.append(s)
            ts.append(t)
            va.append(v)
    return (keys, np.asarray(idx, dtype=np.int32), np.asarray(st, dtype=np.int64),
            np.asarray(ts, dtype=np.int64), np.asarray(va, dtype=np.float64))


def _canonical(values: np.ndarray) -> np.ndarray:
    """The values' bit patterns with every NaN one pattern (so identical NaN points compare equal)."""
    out = np.where(np.isnan(values), np.nan, values).view(np.int64)
    return out


def _sort_value(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), np.inf, values)


def encode(run_id: str, keys: list[str], key: np.ndarray, step: np.ndarray, ts: np.ndarray,
           value: np.ndarray) -> tuple[bytes, int]:
    """The digest file and its number of points: identical points once, ordered by key, step, timestamp,
    value."""
    key, step, ts = (np.asarray(a, dtype=np.int64) for a in (key, step, ts))
    value = np.asarray(value, dtype=np.float64)
    if key.size:
        rows = np.stack([key, step, ts, _canonical(value)], axis=1)
        _, first = np.unique(rows, axis=0, return_index=True)
        key, step, ts, value = key[first], step[first], ts[first], value[first]
        order = np.lexsort((_sort_value(value), ts, step, key))
        key, step, ts, value = key[order], step[order], ts[order], value[order]
    buf = io.BytesIO()
    np.savez_compressed(buf, version=np.int64(VERSION), run_id=np.str_(run_id),
                        keys=np.asarray(keys, dtype=np.str_) if keys else np.zeros(0, dtype="U1"),
                        key=key.astype(np.int32), step=step, timestamp=ts, value=value)
    return buf.getvalue(), int(key.size)


def decode(data: bytes) -> Digest:
    """Read a digest file (never unpickles). Raises :class:`DigestError` for anything malformed."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if int(z["version"]) != VERSION:
                raise DigestError(f"digest version {int(z['version'])}, expected {VERSION}")
            run_id = str(z["run_id"])
            names = [str(k) for k in z["keys"]]
            key, step, ts, value = z["key"], z["step"], z["timestamp"], z["value"]
    except DigestError:
        raise
    except Exception as exc:
        raise DigestError(f"not a trackdiag history digest: {type(exc).__name__}: {exc}") from None
    n = key.shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in (key, step, ts, value)) or \
            (n and (key.min() < 0 or key.max() >= len(names))):
        raise DigestError("digest columns do not match")
    step, ts, value = step.astype(np.int64), ts.astype(np.int64), value.astype(np.float64)
    bounds = np.searchsorted(key, np.arange(len(names) + 1))
    if n and np.any(np.diff(key) < 0):
        raise DigestError("digest points are not grouped by key")
    out = {name: (step[a:b], ts[a:b], value[a:b])
           for name, a, b in zip(names, bounds[:-1], bounds[1:], strict=True) if b > a}
    return Digest(run_id=run_id, keys=out, points=int(n))


def latest(steps: np.ndarray, ts: np.ndarray, values: np.ndarray) -> tuple[int, int, float]:
    """The point MLflow keeps as a key's latest metric: the greatest ``(step, timestamp, value)`` (MLflow
    compares the stored value, NaN stored as 0)."""
    stored = np.where(np.isnan(values), 0.0, values)
    i = int(np.lexsort((stored, ts, steps))[-1])
    return int(steps[i]), int(ts[i]), float(values[i])


def check(points: tuple[np.ndarray, np.ndarray, np.ndarray], server_latest: Any) -> Optional[str]:
    """Why the digest's points of one key cannot stand for the store's history (None: they can).

    ``server_latest``: the run's latest metric of that key (an MLflow ``Metric``: step, timestamp, value).
    A key with an infinite value is never trusted: stores keep infinities differently (SQL stores clamp them
    to ±1.8e308), and only a history read says how this one did.
    """
    steps, ts, values = points
    if steps.size == 0:
        return "no points"
    if np.isinf(values).any():
        return "infinite values"
    s, t, v = latest(steps, ts, values)
    sv = float(server_latest.value)
    same = (v != v and sv != sv) or v == sv
    if (s, t) != (int(server_latest.step), int(server_latest.timestamp)) or not same:
        return (f"stale: the store's latest point is step {int(server_latest.step)} "
                f"(t={int(server_latest.timestamp)}), the digest's step {s} (t={t})")
    return None


def read_back(client: Any, run_id: str, keys: list[str], *, tracking_uri: str) -> Columns:
    """Every stored point of ``keys`` in the run: one bulk read per key (a database or a server,
    :mod:`trackdiag.compare.mlflow_bulk`), else ``get_metric_history`` per key."""
    from ..compare.mlflow_bulk import bulk_reader

    reader = bulk_reader(tracking_uri)
    rows: dict[str, list[tuple[int, int, float]]] = {}
    if reader is not None:
        try:
            for key, got in reader.rows([run_id], keys).items():
                rows[key] = [(s, t, v) for _, s, t, v in got]
        finally:
            reader.close()
    else:
        for key in keys:
            rows[key] = [(int(m.step), int(m.timestamp), float(m.value))
                         for m in client.get_metric_history(run_id, key)]
    return columns_of(rows)


def log_digest(client: Any, run_id: str, recorder: DigestRecorder, *, tracking_uri: str) -> Optional[int]:
    """Log the digest of ``recorder``'s points as :data:`ARTIFACT` of the run, then the tag :data:`TAG`;
    returns its number of points (None: no digest, the run got no metrics or too many)."""
    keys = recorder.logged_keys()
    if recorder.overflow or not keys:
        return None
    cols = read_back(client, run_id, keys, tracking_uri=tracking_uri) if recorder.needs_readback() \
        else recorder.columns()
    data, n = encode(run_id, *cols)
    folder, name = ARTIFACT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path), artifact_path=folder)
    client.set_tag(run_id, TAG, str(n))
    return n
