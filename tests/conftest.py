"""Shared fixtures live in tests/support/, one module per real service."""

pytest_plugins = [
    "tests.support.paths",
    "tests.support.gateway",
    "tests.support.standin",
    "tests.support.centrifugo",
    "tests.support.seaweedfs",
]
