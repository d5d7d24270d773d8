"""Request bodies a careless or hostile client sends: each one a documented 400, on both runtimes.

Shared by the dispatcher's tests (tests/unit/test_input_limits.py) and the Workers entry's under
Pyodide (tests/test_pyodide_compat.py). Each is a document create body (``{"data": ...}``).
"""

from __future__ import annotations

#: (what, body): each must be answered 400 invalid_json on every route that reads a body
NASTY: list[tuple[str, bytes]] = [
    ("deep nesting", b'{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("nesting just past the limit", b'{"data":{"a":' + b"[" * 31 + b"]" * 31 + b"}}"),
    ("duplicate key", b'{"data":{"title":"a","title":"b"}}'),
    ("duplicate top-level key", b'{"data":{"title":"a"},"data":{"title":"b"}}'),
    ("unsafe integer", b'{"data":{"title":"a","n":9007199254740992}}'),
    ("huge integer", b'{"data":{"title":"a","n":' + b"9" * 5000 + b"}}"),
    ("overflowing float", b'{"data":{"title":"a","n":1e400}}'),
    ("NaN literal", b'{"data":{"title":"a","n":NaN}}'),
    ("Infinity literal", b'{"data":{"title":"a","n":-Infinity}}'),
    ("invalid UTF-8", b'{"data":{"title":"\xff\xfe"}}'),
    ("encoded surrogate", b'{"data":{"title":"\xed\xa0\x80"}}'),
    ("lone surrogate escape", b'{"data":{"title":"\\ud800"}}'),
    ("lone surrogate key", b'{"data":{"\\udc00":"x"}}'),
    ("UTF-16 body", '{"data":{"title":"a"}}'.encode("utf-16")),
]
