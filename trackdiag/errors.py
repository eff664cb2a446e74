"""Exception types. One type per kind of problem; every message says how to fix it."""

from __future__ import annotations


class TrackdiagError(Exception):
    """Base class of every error trackdiag raises on purpose."""

    #: Short stable name used to group warnings and skip counters (``"shape"``, ``"value"`` ...).
    kind: str = "error"


class NotInitializedError(TrackdiagError, RuntimeError):
    kind = "not_initialized"


class StepOrderError(TrackdiagError, ValueError):
    kind = "step_order"


class ShapeError(TrackdiagError, ValueError):
    """A tensor has the wrong number of dimensions or the wrong sizes."""

    kind = "shape"


class InputValueError(TrackdiagError, ValueError):
    """A value is out of range, non-finite where that is not allowed, or of the wrong type."""

    kind = "value"


class MaskError(TrackdiagError, ValueError):
    """A mask is empty, full of non-finite values, or does not match its image."""

    kind = "mask"


class InputFileError(TrackdiagError, OSError):
    """A file could not be read or decoded (missing, corrupt, unsupported, unsafe)."""

    kind = "input_file"


class ConfigError(TrackdiagError, ValueError):
    kind = "config"


class BackendError(TrackdiagError, RuntimeError):
    kind = "backend"


class AnalyzerError(TrackdiagError, RuntimeError):
    """An analyzer failed on inputs that passed the checks (the cause is chained; please report it)."""

    kind = "analyzer"


class SpoolError(TrackdiagError, OSError):
    """The write-ahead spool could not be written (disk full, read-only folder)."""

    kind = "spool"


class MissingDependencyError(TrackdiagError, ImportError):
    kind = "dependency"

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f"pip install 'trackdiag[{extra}]'" if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is required{what} but is not installed. Install it with: {hint}")
