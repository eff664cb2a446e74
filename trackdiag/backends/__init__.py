"""Tracker backends. Each one implements :class:`~trackdiag.backends.base.Backend` in full."""
