"""Analyzers: pure torch math in functional modules, wrapped by thin stateful classes.

Each analyzer module holds its math as pure functions and one :class:`~trackdiag.analyzers.base.Analyzer`
subclass that the session schedules.
"""
