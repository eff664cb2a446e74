"""Follow a folder of validation images while training runs and log each new image once, at its step.

The follower polls the folder with a :mod:`layout <trackdiag.watch.layouts>`, waits until a file is complete
(same size and modification time on two polls at least ``settle_s`` apart, and it decodes), collects the
images of one step (a step is complete when a later step appears, when no file of it changed for
``group_wait_s``, or at the end) and logs them with one :meth:`Session.log
<trackdiag.core.session.Session.log>`
call: the analyzers' diagnosis (with the wall mask and reference when given), the images themselves, a row
per file in the ``trackdiag/watch/files`` table, ``trackdiag/watch/logged/<key>`` = 1 at the step of each
image and the fingerprint of the step (:mod:`trackdiag.analyzers.fingerprint`).

It never logs an image twice after a restart, even one killed (SIGKILL) at any point: a state file
(``<out_dir>/watch/<folder>-<hash>/state.json``, replaced atomically) holds the run id (the run is resumed),
the fingerprint's "since when", the files delivered and, written *before* a step's group is logged, the files
being logged (``pending``). The watcher's sessions keep their spools next to it (``<state dir>/spool/``). On
a restart the follower

1. replays the spools of earlier sessions (:func:`trackdiag.sync.sync`: every item that was journaled and
   not acknowledged is delivered once; an image the MLflow run already holds, delivered just before the
   kill and not yet acknowledged, is acknowledged instead of sent again), then
2. reconciles each pending file with what those spools journaled: its image was journaled → delivered (it is
   not logged again); only its ``trackdiag/watch/logged/<key>`` marker was journaled → its image alone is
   logged; nothing of it was journaled → it is logged again, without the diagnosis when the diagnosis of its
   step was journaled.

It needs no change to the trainer and never writes into the watched folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from ..analyzers.fingerprint import FingerprintTracker
from ..errors import InputFileError, TrackdiagError
from .layouts import Layout, Sample

__all__ = ["WatchState", "Follower", "state_dir_for", "DEFAULT_OVERRIDES"]

log = logging.getLogger("trackdiag.watch")

#: The analyzers a watcher runs: tiling on every image (the images are the validation set, already sparse).
DEFAULT_OVERRIDES: tuple[str, ...] = ("analyzer=[tiling]", "analyzer.tiling.schedule.every=1")


def state_dir_for(root: Path, out_dir: Path) -> Path:
    """``<out_dir>/watch/<folder name>-<hash of its absolute path>``."""
    root = root.resolve()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return out_dir / "watch" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', root.name) or 'root'}-{digest}"


@dataclass
class WatchState:
    """What survives a restart: the run, the files delivered (``rel path -> {step, key}``), the files being
    logged when the state was written (``pending``, same form), failures."""

    run_id: Optional[str] = None
    logged: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    step_unit: str = "step"

    @classmethod
    def load(cls, path: Path) -> WatchState:
        if not path.exists():
            return cls()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputFileError(
                f"cannot read the watch state {path}: {exc}. Move it away to start over "
                "(images would then be logged again)."
            ) from exc
        return cls(
            run_id=d.get("run_id"),
            logged=dict(d.get("logged", {})),
            pending=dict(d.get("pending", {})),
            failed=dict(d.get("failed", {})),
            fingerprint=dict(d.get("fingerprint", {})),
            step_unit=str(d.get("step_unit", "step")),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "run_id": self.run_id,
                    "logged": self.logged,
                    "pending": self.pending,
                    "failed": self.failed,
                    "fingerprint": self.fingerprint,
                    "step_unit": self.step_unit,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # when this (size, mtime) was first seen
    load_errors: int = 0


def _key(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


class Follower:
    """Polls ``root`` with ``layout`` and logs new images through a trackdiag session.

    Args:
        root: the watched folder (kohya ``output_dir``, ai-toolkit job folder, SimpleTuner ``output_dir`` …).
        layout: a :class:`~trackdiag.watch.layouts.Layout`.
        out_dir: trackdiag's output folder (spool, state); nothing is written elsewhere.
        run_id: log into this run; default: the run of the previous start, else a new run named after the
            folder.
        run_name: the new run's name (default: the folder's name; ``…/sample`` → its parent's name).
        mask / ref: the wall mask (``H×W``) and reference texture (``C×h×w``), tensors in [0, 1].
        settle_s: a file must be unchanged this long before it is read.
        group_wait_s: a step's group is closed when no file of it changed for this long.
        session_options: more keyword options for :class:`trackdiag.Session` (``tracking_uri``,
            ``experiment``,
            ``backend``, ``overrides`` …).
    """

    def __init__(
        self,
        root: Path,
        layout: Layout,
        *,
        out_dir: Path = Path("trackdiag_runs"),
        run_id: Optional[str] = None,
        run_name: Optional[str] = None,
        mask: Optional[torch.Tensor] = None,
        ref: Optional[torch.Tensor] = None,
        settle_s: float = 1.0,
        group_wait_s: float = 30.0,
        fingerprint: bool = True,
        **session_options: Any,
    ) -> None:
        from ..core.session import Session

        self.root = Path(root)
        if not self.root.exists():
            raise InputFileError(f"the watched folder {self.root} does not exist.")
        self.layout = layout
        self.out_dir = Path(out_dir)
        self.state_path = state_dir_for(self.root, self.out_dir) / "state.json"
        #: the sessions' spools: all of them belong to this watcher (a restart replays them)
        self.spool_dir = self.state_path.parent / "spool"
        self.state = WatchState.load(self.state_path)
        self.mask, self.ref = mask, ref
        self.settle_s, self.group_wait_s = float(settle_s), float(group_wait_s)
        self.fingerprint = FingerprintTracker(strides=() if not fingerprint else (8, 16, 32))
        self.fingerprint.load_state_dict(self.state.fingerprint)
        self._seen: dict[str, _Seen] = {}
        self._pending: dict[str, tuple[Sample, torch.Tensor, float]] = {}
        self.logged_now = 0
        journaled = self._replay_spools()
        images_only = self._reconcile(journaled)
        name = run_name or (
            self.root.resolve().parent.name
            if self.root.name in ("sample", "samples")
            else self.root.resolve().name
        )
        overrides = list(session_options.pop("overrides", DEFAULT_OVERRIDES))
        # the state decides what is logged again, also at steps the resumed run already holds
        session_options.setdefault("on_resume", "log")
        rid = run_id or self.state.run_id
        if rid is None:  # a start killed before it saved the new run's id finds that run again by this key
            key = hashlib.sha1(str(self.state_path.resolve()).encode()).hexdigest()
            session_options.setdefault("run_key", key)
        self.session = Session(
            None, overrides=overrides, run_name=name, run_id=rid, out_dir=str(self.state_path.parent),
            **session_options
        )
        self.session.flush(60.0)
        self.run_id = rid or next(
            (getattr(b, "run_id", None) for b in self.session.backends if getattr(b, "run_id", None)), None
        )
        if self.run_id != self.state.run_id:
            self.state.run_id = self.run_id
            self.state.save(self.state_path)
        self.session.log_params({"watch.folder": str(self.root.resolve()), "watch.layout": layout.name})
        for step in sorted({step for step, _ in images_only.values()}):
            self._log_images_only(step, {rel: key for rel, (st, key) in images_only.items() if st == step})

    # -- one poll --------------------------------------------------------------------------------------
    def poll(self, *, final: bool = False) -> int:
        """Scan once, log every complete step group; ``final`` closes all groups. Returns images logged."""
        now = time.time()
        samples = self.layout.scan(self.root)
        max_step_seen = max((s.step for s in samples), default=-1)
        for s in samples:
            rel = s.rel(self.root)
            if rel in self.state.logged or rel in self.state.failed or rel in self._pending:
                continue
            try:
                st = s.path.stat()
            except FileNotFoundError:
                continue
            seen = self._seen.get(rel)
            if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._seen[rel] = _Seen(st.st_size, st.st_mtime_ns, now)
                if not final:
                    continue
                seen = self._seen[rel]
            if not final and (now - seen.since < self.settle_s or now - st.st_mtime_ns / 1e9 < self.settle_s):
                continue
            try:
                img = _load_rgb(s.path)
            except InputFileError as exc:  # half-written or corrupt: retry, give up after a while
                seen.load_errors += 1
                if (
                    final
                    or seen.load_errors >= 5
                    and now - st.st_mtime_ns / 1e9 > 10 * max(self.settle_s, 1.0)
                ):
                    self.state.failed[rel] = str(exc)
                    log.warning("trackdiag watch: skipping %s: %s", rel, exc)
                continue
            self._pending[rel] = (s, img, st.st_mtime_ns / 1e9)
        n = 0
        for step in sorted({s.step for s, _, _ in self._pending.values()}):
            group = {rel: v for rel, v in self._pending.items() if v[0].step == step}
            newest = max(v[2] for v in group.values())
            if final or max_step_seen > step or now - newest >= self.group_wait_s:
                n += self._log_group(step, group)
            else:
                break  # steps go up: a later group waits for this one
        self.logged_now += n
        return n

    def _log_group(self, step: int, group: dict[str, tuple[Sample, torch.Tensor, float]]) -> int:
        from ..integrations.validation import log_validation_images

        items = sorted(group.items(), key=lambda kv: kv[1][0].key)
        rows = [
            {"step": step, "file": rel, "key": _key(smp.key), "seed": smp.seed, "epoch": smp.epoch}
            for rel, (smp, _, _) in items
        ]
        # files whose diagnosis the run holds (a restart): left out when the whole group is such
        diagnosed = all(rel in self._diagnosed for rel in group)
        for rel, (sample, _, _) in items:  # the intent, durable before anything is logged
            self.state.pending[rel] = {"step": step, "key": _key(sample.key), "diagnosed": diagnosed}
        self.state.save(self.state_path)
        log_validation_images(
            [img for _, (_, img, _) in items],
            step,
            session=self.session,
            keys=[_key(smp.key) for _, (smp, _, _) in items],
            mask=self.mask,
            ref=self.ref,
            fingerprint=self.fingerprint,
            rows=rows,
            diagnose=not diagnosed,
        )
        s = self.session
        if not s.flush(120.0):
            log.warning(
                "trackdiag watch: the tracker did not confirm step %d yet; it stays in the spool", step
            )
        for rel, (sample, _, _) in group.items():
            self.state.logged[rel] = {"step": step, "key": _key(sample.key)}
            self.state.pending.pop(rel, None)
            self._diagnosed.discard(rel)
            self._pending.pop(rel, None)
            self._seen.pop(rel, None)
        self.state.fingerprint = self.fingerprint.state_dict()
        if self.layout.step_unit == "epoch" and self.state.step_unit != "epoch":
            log.warning(
                "trackdiag watch: per-epoch samples without --steps-per-epoch or --trainer-log: the "
                "epoch is logged as the step (run param watch.step_unit=epoch)"
            )
            s.log_params({"watch.step_unit": "epoch"})
        self.state.step_unit = self.layout.step_unit
        self.state.save(self.state_path)
        return len(group)

    # -- restart -------------------------------------------------------------------------------------------
    def _replay_spools(self) -> _Journaled:
        """Deliver what earlier sessions journaled and did not deliver (the spools in :attr:`spool_dir`);
        return what they journaled of the watched images."""
        from ..backends.spool import Spool, find_spools
        from ..sync import sync

        journaled = _Journaled()
        for path in find_spools(self.spool_dir):
            journaled.read(path)
            try:
                _ack_images_the_run_holds(path)
                result = sync(path)
            except Exception as exc:  # the tracker is down: the spool waits for the next start (or sync)
                log.warning("trackdiag watch: could not replay %s yet: %s", path, exc)
                continue
            if not result.remaining:
                spool = Spool.open(path)
                spool.close()
                spool.remove_if_done()
        return journaled

    def _reconcile(self, journaled: _Journaled) -> dict[str, tuple[int, str]]:
        """Settle the files that were being logged when the last session stopped (see the module docstring).
        Returns the files whose image alone is still to be logged (``rel -> (step, key)``)."""
        images_only: dict[str, tuple[int, str]] = {}
        self._diagnosed: set[str] = set()
        for rel, entry in sorted(self.state.pending.items()):
            step, key = int(entry["step"]), str(entry["key"])
            if (f"trackdiag/watch/{key}", step) in journaled.images:
                self.state.logged[rel] = {"step": step, "key": key}
            elif entry.get("image_only") or (f"trackdiag/watch/logged/{key}", step) in journaled.markers:
                images_only[rel] = (step, key)
                entry["image_only"] = True  # the spool that says so may be gone at the next start
            elif entry.get("diagnosed") or step in journaled.diagnosed and not any(
                int(v["step"]) == step for r, v in self.state.logged.items() if r not in self.state.pending
            ):
                self._diagnosed.add(rel)  # its diagnosis is in the run: log the rest of it only
                entry["diagnosed"] = True
        if self.state.pending:
            log.info(
                "trackdiag watch: %d file(s) were being logged when the last session stopped: %d delivered, "
                "%d need their image, %d are logged again",
                len(self.state.pending),
                sum(1 for r in self.state.pending if r in self.state.logged),
                len(images_only),
                sum(1 for r in self.state.pending if r not in self.state.logged and r not in images_only),
            )
            # kept while their flags matter (the spool that told may be gone at the next start)
            self.state.pending = {r: v for r, v in self.state.pending.items()
                                  if r in images_only or r in self._diagnosed}
            self.state.save(self.state_path)
        return images_only

    def _log_images_only(self, step: int, files: dict[str, str]) -> None:
        """Log the images of ``files`` (``rel -> key``) at ``step``: the rest of their group is in the run."""
        from ..core.worker import Record
        from ..integrations.validation import watch_pictures

        names, tensors = [], []
        for rel, key in sorted(files.items()):
            try:
                tensors.append(_load_rgb(self.root / rel))
                names.append(key)
            except (InputFileError, OSError) as exc:
                self.state.failed[rel] = f"its image could not be logged after a restart: {exc}"
                self.state.pending.pop(rel, None)
        if names:
            pictures = watch_pictures(names, tensors)
            self.session.worker.submit(Record(step=int(step), figures=[lambda: pictures]))
            if not self.session.flush(120.0):
                log.warning("trackdiag watch: the tracker did not confirm step %d yet; it stays in the spool",
                            step)
        for rel, key in files.items():
            if rel in self.state.pending:
                self.state.logged[rel] = {"step": step, "key": key}
                self.state.pending.pop(rel)
        self.state.save(self.state_path)

    # -- the loop --------------------------------------------------------------------------------------
    def run(
        self,
        *,
        poll_s: float = 2.0,
        idle_exit_s: Optional[float] = None,
        once: bool = False,
        should_stop: Any = None,
    ) -> int:
        """Poll until stopped (``should_stop()`` true), idle for ``idle_exit_s``, or once (``once``)."""
        if once:
            return self.poll(final=True)
        last_new = time.time()
        total = 0
        while not (should_stop is not None and should_stop()):
            try:
                n = self.poll()
            except TrackdiagError as exc:
                log.warning("trackdiag watch: %s", exc)
                n = 0
            total += n
            if n or self._pending or any(v.since > last_new for v in self._seen.values()):
                last_new = time.time()
            if idle_exit_s is not None and time.time() - last_new >= idle_exit_s:
                total += self.poll(final=True)
                break
            time.sleep(poll_s)
        return total

    def close(self, status: str = "FINISHED") -> Any:
        """Finish the session (the run stays resumable)."""
        return self.session.finish(status)


@dataclass
class _Journaled:
    """What spools journaled of the watched images: ``(image key, step)``, ``(marker key, step)`` and the
    steps with a diagnosis (metrics other than ``trackdiag/watch/…`` and ``trackdiag/fingerprint/…``)."""

    images: set[tuple[str, int]] = field(default_factory=set)
    markers: set[tuple[str, int]] = field(default_factory=set)
    diagnosed: set[int] = field(default_factory=set)

    def read(self, folder: Path) -> None:
        from ..backends.spool import iter_lines

        for line in iter_lines(folder):
            if line.get("op") != "put" or "step" not in line.get("payload", {}):
                continue
            payload, step = line["payload"], int(line["payload"]["step"])
            if line.get("kind") == "image":
                self.images.add((str(payload.get("key")), step))
            elif line.get("kind") == "metrics":
                keys = [str(k) for k in payload.get("metrics", {})]
                self.markers.update((k, step) for k in keys if k.startswith("trackdiag/watch/logged/"))
                if any(not k.startswith(("trackdiag/watch/", "trackdiag/fingerprint/")) for k in keys):
                    self.diagnosed.add(step)


def _ack_images_the_run_holds(folder: Path) -> None:
    """Acknowledge the unacknowledged images of an MLflow run's spool that the run already holds: delivered
    just before the process was killed, before the spool recorded it. Sending them again would duplicate
    them (MLflow names every image file uniquely)."""
    from ..backends.spool import Spool

    spool = Spool.open(folder)
    try:
        for name in spool.backends():
            meta = spool.meta(name) or {}
            params = meta.get("params", {})
            if not str(meta.get("target", "")).endswith("MlflowBackend") or not params.get("run_id"):
                continue
            images = [e for e in spool.pending(name, include_rejected=False) if e.kind == "image"]
            if not images:
                continue
            held = _mlflow_images(str(params["tracking_uri"]), str(params["run_id"]))
            done = [e.id for e in images
                    if (str(e.payload.get("key", "")).replace("/", "~"), int(e.payload["step"])) in held]
            if done:
                spool.ack(done, name, commit=True)
    finally:
        spool.close()


def _mlflow_images(tracking_uri: str, run_id: str) -> set[tuple[str, int]]:
    """``(key as MLflow writes it in file names, step)`` of every image ``log_image`` stored in the run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    held = set()
    for art in client.list_artifacts(run_id, "images"):
        name = posixpath.basename(art.path)
        m = re.match(r"(.+)\+step\+(\d+)\+timestamp\+\d+\+[^+]+\.png$", name)
        if m:
            held.add((m.group(1), int(m.group(2))))
    return held


def _load_rgb(path: Path) -> torch.Tensor:
    """``3×H×W`` float in [0, 1]; raises :class:`InputFileError` for a half-written or corrupt file."""
    from ..io.images import load_image

    img = load_image(path, name=str(path.name))
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img[:3].contiguous()
