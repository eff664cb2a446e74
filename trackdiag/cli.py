"""The ``trackdiag`` console command: one entry point with a subcommand per tool.

``trackdiag <subcommand> [args...]`` runs the same code as ``python -m trackdiag.<module> [args...]``;
the ``python -m`` forms stay. Each subcommand is registered in :data:`SUBCOMMANDS` as
``name -> (module, help)``; the module's ``main`` is called with the remaining arguments (Hydra-based
tools read ``sys.argv``, which is set to match).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Optional

__all__ = ["SUBCOMMANDS", "main"]

#: subcommand -> (module whose ``main`` runs it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "diagnose": ("trackdiag.diagnose", "diagnose images, latents and loss logs; write a report folder"),
    "dataset": ("trackdiag.dataset.__main__", "check a dataset of images and masks"),
    "compare": ("trackdiag.compare_ckpts", "rank checkpoints and runs from a tracker or sample folders"),
    "sync": ("trackdiag.sync", "replay what a run left in its spool to the trackers"),
    "watch": ("trackdiag.watch.__main__", "follow a trainer's validation images and log each at its step"),
    "ui": ("trackdiag.ui", "start the MLflow UI on the store a run used (on 127.0.0.1)"),
}


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    rows = "\n".join(f"  {n.ljust(width)}  {h}" for n, (_, h) in SUBCOMMANDS.items())
    return (f"usage: trackdiag <command> [args...]\n\ncommands:\n{rows}\n\n"
            "Run 'trackdiag <command> --help' for the command's own options.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a subcommand; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name in ("-V", "--version"):
        from ._version import __version__

        print(f"trackdiag {__version__}")
        return 0
    if name not in SUBCOMMANDS:
        print(f"trackdiag: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sys.argv = [f"trackdiag {name}", *rest]
    try:
        rc = module.main(rest) if _takes_argv(module.main) else module.main()
    except SystemExit as exc:  # argparse / Hydra exit codes
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return int(rc or 0)


def _takes_argv(fn: object) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
