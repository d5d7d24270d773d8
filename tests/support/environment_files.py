"""The shipped environment files as documents to break, and the check that a broken one is refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.config_error import StackConfigError
from infra.settings import ROOT, parse_environment

CLOUD = ("dev", "staging", "prod")


def environment_doc(name: str = "dev") -> dict[str, Any]:
    """A shipped environment file as a mutable document."""
    return yaml.safe_load((ROOT / f"config/environments/{name}.yaml").read_text())


def refused(doc: dict[str, Any], match: str) -> None:
    """``doc`` is refused with a message that names the file, then matches ``match``."""
    with pytest.raises(StackConfigError, match=match) as info:
        parse_environment(yaml.safe_dump(doc), "config/environments/bad.yaml")
    assert str(info.value).startswith("config/environments/bad.yaml: "), "the message must name the file"
