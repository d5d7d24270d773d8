"""The shipped environment files as documents to break, and the check that a broken one is refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.config_error import StackConfigError
from infra.settings import ROOT, parse_environment

CLOUD = ("dev", "staging", "prod")

#: a cloud environment's mail: the relay's public URL and image, and the SMTP provider it relays to
CLOUD_MAIL = {"action_url": "https://app.example.com/auth/action",
              "from_address": "Example <no-reply@example.com>",
              "public_url": "https://mail-relay.example.com",
              "provider": {"host": "smtp.example.com", "port": 587, "security": "starttls", "auth": "plain"}}
MAILPIT_IMAGE = {"image": {"repository": "axllent/mailpit", "tag": "v1.33.1"}, "cpus": 0.25, "memory_mb": 64}


def environment_doc(name: str = "dev") -> dict[str, Any]:
    """A shipped environment file as a mutable document."""
    return yaml.safe_load((ROOT / f"config/environments/{name}.yaml").read_text())


def with_cloud_mail(doc: dict[str, Any]) -> dict[str, Any]:
    """A cloud environment document with :data:`CLOUD_MAIL` and the relay's image added."""
    doc["mail"], doc["docker"]["mailpit"] = dict(CLOUD_MAIL), dict(MAILPIT_IMAGE)
    return doc


def refused(doc: dict[str, Any], match: str) -> None:
    """``doc`` is refused with a message that names the file, then matches ``match``."""
    with pytest.raises(StackConfigError, match=match) as info:
        parse_environment(yaml.safe_dump(doc), "config/environments/bad.yaml")
    assert str(info.value).startswith("config/environments/bad.yaml: "), "the message must name the file"
