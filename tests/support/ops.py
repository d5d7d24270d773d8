"""An in-memory ``scripts.ops.rotate.ConfigStore`` for the ops tests (no Pulumi, no stack)."""

from __future__ import annotations


class MemoryConfig:
    """``pulumi config`` stand-in: secret and plain values; ``apply`` counts ``pulumi up`` calls."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.applied = 0

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set_secret(self, key: str, value: str) -> None:
        self.values[key] = value

    def set_plain(self, key: str, value: str) -> None:
        self.values[key] = value

    def remove(self, key: str) -> None:
        self.values.pop(key, None)

    def apply(self) -> None:
        self.applied += 1
