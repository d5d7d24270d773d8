"""The test tree's shape: helpers shared between test modules live in tests/support/, nowhere else.

A test module importing another test module's helpers couples two suites through private names; a
rename in one then breaks the other at collection time. ``tests/smoke`` is a product (the smoke suite
run against any stack), so tests may import it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
_TEST_PACKAGES = ("unit", "integration", "infra")
_IMPORT = re.compile(rf"^\s*(?:from|import)\s+tests\.({'|'.join(_TEST_PACKAGES)})\b", re.MULTILINE)


def _modules() -> list[str]:
    paths = (p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)
    return sorted(p.relative_to(TESTS).as_posix() for p in paths)


@pytest.mark.parametrize("module", _modules())
def test_no_test_module_imports_another(module: str) -> None:
    found = _IMPORT.findall((TESTS / module).read_text(encoding="utf-8"))
    assert not found, f"tests/{module} imports tests.{found[0]}: move the shared helper to tests/support/"
