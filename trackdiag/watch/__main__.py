"""``trackdiag watch FOLDER``: follow a trainer's validation images and log them into MLflow (or any backend).

Examples::

    trackdiag watch runs/my_lora                      # kohya output_dir (sample/ inside), auto-detected
    trackdiag watch runs/my_lora --steps-per-epoch 250   # per-epoch samples e000003 → step 750
    trackdiag watch output/my_job --layout ai-toolkit
    trackdiag watch output/st --layout simpletuner    # validation_media.jsonl (--report_to simpletuner)
    trackdiag watch out --layout pattern --pattern 'val/step{step}_{idx}.png' --run-id 0123abcd
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trackdiag watch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("folder", type=Path, help="the trainer's output folder (or the manifest file)")
    p.add_argument(
        "--layout", choices=["auto", "kohya", "ai-toolkit", "simpletuner", "pattern"], default="auto"
    )
    p.add_argument(
        "--pattern",
        help="for --layout pattern: a path relative to FOLDER with {step} (and {idx}, "
        "{seed}, {epoch}, {name}, *)",
    )
    p.add_argument("--steps-per-epoch", type=int, help="kohya per-epoch samples: the step is epoch × this")
    p.add_argument("--trainer-log", help="kohya per-epoch samples: a log with epoch and step on one line")
    p.add_argument("--mask", type=Path, help="wall mask image (white = wall), the validation images' size")
    p.add_argument("--ref", type=Path, help="reference texture image")
    p.add_argument("--run-id", help="log into this run (default: the run of the last start, else a new one)")
    p.add_argument("--run-name", help="name of a new run (default: the folder's name)")
    p.add_argument("--experiment", default=None)
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default sqlite:///mlruns.db)")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("trackdiag_runs"),
        help="trackdiag's own folder: spool and the watch state (default trackdiag_runs)",
    )
    p.add_argument(
        "--override",
        action="append",
        default=None,
        help="a trackdiag config override (repeatable), e.g. backend=[mlflow,tensorboard]",
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between scans")
    p.add_argument("--settle", type=float, default=1.0, help="a file must be unchanged this long")
    p.add_argument(
        "--group-wait",
        type=float,
        default=30.0,
        help="close a step's group when none of its files changed for this long",
    )
    p.add_argument(
        "--idle-exit", type=float, default=None, help="stop after this many seconds without new files"
    )
    p.add_argument("--once", action="store_true", help="log what is there now and stop")
    p.add_argument("--no-fingerprint", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ..errors import TrackdiagError
    from ..io.images import load_image, load_mask
    from . import Follower, detect_layout, make_layout

    try:
        name = detect_layout(args.folder) if args.layout == "auto" else args.layout
        if args.pattern and args.layout == "auto":
            name = "pattern"
        layout = make_layout(
            name, pattern=args.pattern, steps_per_epoch=args.steps_per_epoch, trainer_log=args.trainer_log
        )
        root = args.folder.parent if args.folder.is_file() else args.folder
        options = {"experiment": args.experiment, "tracking_uri": args.tracking_uri}
        if args.override:
            from .follower import DEFAULT_OVERRIDES

            options["overrides"] = [*DEFAULT_OVERRIDES, *args.override]
        follower = Follower(
            root,
            layout,
            out_dir=args.out_dir,
            run_id=args.run_id,
            run_name=args.run_name,
            mask=load_mask(args.mask) if args.mask else None,
            ref=load_image(args.ref) if args.ref else None,
            settle_s=args.settle,
            group_wait_s=args.group_wait,
            fingerprint=not args.no_fingerprint,
            **{k: v for k, v in options.items() if v is not None},
        )
    except TrackdiagError as exc:
        print(f"trackdiag watch: {exc}", file=sys.stderr)
        return 2
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"trackdiag watch: following {root} ({layout.name}) into run {follower.run_id}", flush=True)
    status = "FINISHED"
    try:
        n = follower.run(
            poll_s=args.poll, idle_exit_s=args.idle_exit, once=args.once, should_stop=lambda: stop["now"]
        )
        if stop["now"]:
            status = "FINISHED"  # stopped by a signal: the run stays resumable
    finally:
        summary = follower.close(status)
    print(
        f"trackdiag watch: {n} new images logged; {len(follower.state.logged)} in total "
        f"({len(follower.state.failed)} unreadable); state {follower.state_path}",
        flush=True,
    )
    del summary
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
