"""Field documentation of the configuration dataclasses, read from their source.

A parameter is described once, by the ``#:`` comment lines just above its field (the Sphinx convention);
:func:`field_docs` reads them, and :func:`describe` walks a dataclass (nested dataclasses included) into
``(dotted key, default, doc)`` rows, from which the ``--help`` texts and the docs are written.

A comment line ending in ``...`` continues into the next field's comment (``a ...`` / ``... b``): the
second field then documents itself with the rest of the sentence. A field without comment has the doc of
the nearest documented field before it in the same group of lines (no blank line between them), so
``#: Periods searched: from min_period_px to max_period_frac`` above two fields describes both.

>>> from trackdiag.core.schedule import Schedule
>>> row = [r for r in describe(Schedule) if r.key == "every"][0]
>>> row.default, row.doc
('100', 'kind "every": the number of steps between two runs.')
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from collections.abc import Iterator
from typing import Any, NamedTuple, get_type_hints

__all__ = ["FieldDoc", "field_docs", "describe", "format_rows"]


class FieldDoc(NamedTuple):
    """One parameter: its dotted key, its default as text and its description."""

    key: str
    default: str
    doc: str


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``field name -> doc`` from the ``#:`` comments above each field of ``cls`` and of its bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        # a subclass that changes a field's default without a comment keeps its base's description
        out.update({k: v for k, v in _own_docs(klass).items() if v or k not in out})
    return out


def _own_docs(klass: type) -> dict[str, str]:
    try:
        lines, _ = inspect.getsourcelines(klass)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    body = ast.parse(source).body[0]
    text = source.splitlines()
    out: dict[str, str] = {}
    previous = ""
    last_line = -2
    for node in getattr(body, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        row = node.lineno - 1
        comment: list[str] = []
        j = row - 1
        while j >= 0 and text[j].strip().startswith("#:"):
            comment.insert(0, text[j].strip()[2:].strip())
            j -= 1
        doc = " ".join(comment).strip()
        if not doc and previous and j == last_line:
            doc = previous  # a field of a group documented once, just above the group
        out[node.target.id] = doc
        previous, last_line = doc, (node.end_lineno or node.lineno) - 1
    return out


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "???"


def describe(cls: type, prefix: str = "") -> Iterator[FieldDoc]:
    """Rows ``(dotted key, default, doc)`` of ``cls``'s fields, nested dataclasses expanded in place."""
    docs = field_docs(cls)
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        kind = hints.get(f.name)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            yield from describe(kind, key + ".")
            continue
        yield FieldDoc(key, _shown(_default(f)), docs.get(f.name, ""))


def _shown(value: Any) -> str:
    """A default as YAML writes it: ``null``, ``true``, ``[a, b]``, ``{k: v}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_rows(rows: Iterator[FieldDoc] | list[FieldDoc], *, width: int = 108, key_width: int = 22,
                indent: int = 2, defaults: bool = True, max_default: int = 40) -> list[str]:
    """``rows`` as an indented two-column text (key, doc wrapped to ``width``), as in a ``--help``; each
    doc ends with its default unless that is empty or longer than ``max_default`` characters."""
    out: list[str] = []
    pad = " " * (indent + key_width)
    for row in rows:
        doc = row.doc
        if defaults and row.default not in ("", "[]", "{}") and len(row.default) <= max_default:
            doc = f"{doc} (default: {row.default})" if doc else f"default: {row.default}"
        head = " " * indent + row.key
        wrapped = textwrap.wrap(doc, width=width - len(pad)) or [""]
        if len(head) + 2 <= len(pad):
            out.append(head.ljust(len(pad)) + wrapped[0])
        else:
            out.append(head)
            out.append(pad + wrapped[0])
        out += [pad + line for line in wrapped[1:]]
    return out
