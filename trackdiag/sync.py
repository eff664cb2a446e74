"""Replay a spool into its trackers: ``python -m trackdiag.sync SPOOL``.

``SPOOL`` is the folder ``finish()`` printed (``trackdiag_runs/spool/<run>``), its ``spool.jsonl``, or a
parent folder (every spool below it is replayed). Each backend is rebuilt from the spool's description,
re-attached to the same run (the MLflow run id, the W&B run id, the TensorBoard folder), and every
undelivered item is sent in its original order, including items the tracker refused before (fix the cause
first). Delivered items are acknowledged in the spool, so running the command twice sends nothing twice.
A ``close`` item finishes the run with its recorded status. Exit status: 0 when nothing is left undelivered.

Run it after the training process has ended (the spool has one writer at a time).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .backends.spool import Spool, apply, find_spools
from .errors import ConfigError, TrackdiagError

__all__ = ["sync", "SyncResult", "main"]

log = logging.getLogger("trackdiag")


@dataclass
class SyncResult:
    delivered: dict[str, int] = field(default_factory=dict)  # backend → items delivered
    failed: dict[str, str] = field(default_factory=dict)  # backend → last error
    remaining: int = 0  # items still undelivered in all the spools

    @property
    def ok(self) -> bool:
        return self.remaining == 0


def _build(meta: dict[str, Any], *, allow_external: bool) -> Any:
    from omegaconf import OmegaConf

    from .backends.base import RunInfo
    from .config import build_component

    run = dict(meta.get("run") or {})
    info = RunInfo(experiment=run.get("experiment", "trackdiag"), run_name=run.get("run_name"),
                   tags=dict(run.get("tags") or {}), out_dir=Path(run.get("out_dir", "trackdiag_runs")))
    node = OmegaConf.create({"_target_": meta["target"], **(meta.get("params") or {})})
    return build_component(node, allow_external=allow_external, what=f"spooled backend {meta['backend']}",
                           extra={"run": info})


def _sync_backend(spool: Spool, name: str, *, allow_external: bool, result: SyncResult) -> None:
    meta = spool.meta(name)
    if meta is None:
        result.failed[name] = "the spool does not describe this backend (no 'meta' line)"
        return
    backend = _build(meta, allow_external=allow_external)
    backend.open()
    closed = False
    try:
        for entry in spool.pending(name, include_rejected=True):
            payload = spool.load(entry)
            try:
                apply(backend, entry.kind, payload)
            except Exception as exc:
                transient = backend.is_transient(exc)
                result.failed[name] = f"{type(exc).__name__}: {exc}"
                if transient:
                    log.error("trackdiag.sync: %s is unreachable (%s); stopping, the rest stays in the spool",
                              name, exc)
                    return
                spool.reject(entry.id, f"{type(exc).__name__}: {exc}", backend=name)
                spool.commit()
                continue
            spool.ack(entry.id, name, commit=True)  # durable at once: a second sync sends nothing twice
            result.delivered[name] = result.delivered.get(name, 0) + 1
            closed = closed or entry.kind == "close"
    finally:
        if not closed:
            backend.release()


def sync(path: str | Path, *, backends: Optional[Sequence[str]] = None, allow_external: bool = False
         ) -> SyncResult:
    """Replay every undelivered item of the spool(s) at ``path``. See the module docstring."""
    spools = find_spools(path)
    if not spools:
        from .errors import InputFileError

        raise InputFileError(f"{path}: no trackdiag spool here (expected a folder with spool.jsonl).")
    result = SyncResult()
    for folder in spools:
        spool = Spool.open(folder)
        try:
            for name in spool.backends():
                if backends and name not in backends:
                    continue
                try:
                    _sync_backend(spool, name, allow_external=allow_external, result=result)
                except (TrackdiagError, ImportError) as exc:
                    result.failed[name] = f"{type(exc).__name__}: {exc}"
                    log.error("trackdiag.sync: %s: %s", name, exc)
                except Exception as exc:  # open() failed: the tracker is still unreachable or misconfigured
                    result.failed[name] = f"{type(exc).__name__}: {exc}"
                    log.error("trackdiag.sync: could not open %s: %s", name, exc)
            result.remaining += sum(1 for e in spool.pending() if not backends or e.backend in backends)
        finally:
            spool.close()
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trackdiag.sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spool", help="spool folder (as printed by finish()), its spool.jsonl, or a parent")
    parser.add_argument("--backend", action="append", default=[], help="only this backend (repeatable)")
    parser.add_argument("--list", action="store_true", help="show what is undelivered and exit")
    parser.add_argument("--allow-external-targets", action="store_true",
                        help="allow backend classes outside trackdiag (as the run's allow_external_targets)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list:
        for folder in find_spools(args.spool):
            spool = Spool.open(folder)
            for entry in spool.pending():
                if args.backend and entry.backend not in args.backend:
                    continue
                state = f"refused: {entry.rejected}" if entry.rejected else entry.error
                print(f"{folder}  #{entry.id:<6} {entry.backend:<12} {entry.kind:<9} {state}")
            spool.close()
        return 0
    try:
        result = sync(args.spool, backends=args.backend or None, allow_external=args.allow_external_targets)
    except (ConfigError, TrackdiagError) as exc:
        print(f"trackdiag.sync: {exc}", file=sys.stderr)
        return 2
    for name, n in result.delivered.items():
        print(f"{name}: {n} items delivered")
    for name, err in result.failed.items():
        print(f"{name}: failed: {err}", file=sys.stderr)
    print(f"{result.remaining} items still undelivered" if result.remaining else "nothing left undelivered")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
