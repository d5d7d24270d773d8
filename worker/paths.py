"""Document field paths: client text -> a tuple of checked keys -> SQL, in one place.

A path is dotted text (``"address.city"``, ``"tags.0"``); each key must match
``[A-Za-z_][A-Za-z0-9_]*`` or be a non-negative integer index. Only a parsed
path is ever rendered, so an inlined path can hold nothing but those characters.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_INDEX = re.compile(r"(0|[1-9][0-9]{0,5})\Z")
MAX_DEPTH = 16


class PathError(ValueError):
    """The text is not a valid field path."""


def parse_path(text: object) -> Path:
    if not isinstance(text, str) or not text:
        raise PathError("a field path must be a non-empty string")
    parts = text.split(".")
    if len(parts) > MAX_DEPTH:
        raise PathError(f"field path {text!r} is deeper than {MAX_DEPTH}")
    keys: list[str | int] = []
    for part in parts:
        if _KEY.match(part):
            keys.append(part)
        elif _INDEX.match(part) and keys:
            keys.append(int(part))
        else:
            raise PathError(f"field path {text!r}: segment {part!r} is not a name or an array index")
    return tuple(keys)


def json_path(path: Path) -> str:
    """``('a', 0, 'b')`` -> ``$.a[0].b`` (SQLite JSON1 path syntax)."""
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


def extract_sql(path: Path) -> str:
    """The inlined expression an expression index is declared with; queries must spell it identically."""
    return f"json_extract(data, '{json_path(path)}')"


def dotted(path: Path) -> str:
    return ".".join(str(k) for k in path)
