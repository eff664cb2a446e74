"""``trackdiag.spool``, moved to :mod:`trackdiag.backends.spool`; this old path is named by users and
spool files and keeps working."""

from trackdiag.backends.spool import *  # noqa: F403
from trackdiag.backends.spool import __all__  # noqa: F401
