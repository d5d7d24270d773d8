"""Shared fixtures live in tests/support/, one module per real service."""

pytest_plugins = [
    "tests.support.paths",
]
