"""``trackdiag.logreaders``, moved to :mod:`trackdiag.io.logreaders`; this old path is named by users and
spool files and keeps working."""

from trackdiag.io.logreaders import *  # noqa: F403
from trackdiag.io.logreaders import __all__  # noqa: F401
