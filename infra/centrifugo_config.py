"""Centrifugo v6 config.json from config/: one namespace per collection, identical for every target.

``client.allowed_origins`` is the environment's ``allowed_origins``, the list the
gateway's CORS and the bucket's CORS rules are built from too.

:func:`build_config` is a pure function of (collections' access rules, realtime
options, port, bind address, allowed origins); :func:`render` gathers those from a
stack's settings and ``config/`` and returns the JSON text both renderers write.

Secrets are never in the file. Centrifugo reads them from the environment
(CF ``internal/config/config.go``: every option is also ``CENTRIFUGO_<PATH>``):

- ``CENTRIFUGO_HTTP_API_KEY`` -> ``http_api.key`` (the gateway's ``X-API-Key``)
- ``CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY`` -> ``client.token.hmac_secret_key``
  (verifies the HS256 connection and subscription tokens the gateway signs)
- ``CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY`` -> the previous key, accepted
  alongside during a rotation.

Namespace options per access rule (see worker/channels.py for the channel names). A collection with
``rules`` gets the class its read rule implies (``collections.realtime_class``): ``private`` (user-limited
channels of the readers each event lists), ``shared-read`` or ``admin``:

- ``private``: ``allow_user_limited_channels`` only. ``c:{id}#{owner}`` and
  ``c:*#{owner}`` admit the listed user and nobody else; ``c:*`` (admin firehose)
  needs a subscription token, which only the admin key obtains.
- ``shared-read``: ``allow_subscribe_for_client``: any authenticated connection.
- ``admin``: neither: every subscription needs a token (admin only).

Anonymous connections are impossible: no ``allow_anonymous_connect_without_token``,
and the gateway never signs a token with an empty ``sub``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ACCESS_RULES = ("private", "shared-read", "admin")
#: Centrifugo's namespace name rule (CF internal/config/validate.go namePattern)
_NAMESPACE = re.compile(r"[-a-zA-Z0-9_.]{2,}\Z")
_DURATION = re.compile(r"\d+(ms|s|m|h)\Z")

DEFAULT_OPTIONS: dict[str, Any] = {
    "history": {"size": 100, "ttl": "600s", "meta_ttl": "24h"},
    "recovery": True,
    "presence": False,
    "log_level": "info",
}


class ConfigError(ValueError):
    """A collection or realtime option cannot become a valid Centrifugo config (names the key)."""


def namespace(name: str, access: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The Centrifugo namespace of one collection."""
    if not _NAMESPACE.match(name):
        raise ConfigError(f"collections.{name}: a realtime namespace name must match {_NAMESPACE.pattern}")
    if access not in ACCESS_RULES:
        raise ConfigError(f"collections.{name}.access: must be one of {', '.join(ACCESS_RULES)}")
    history = options.get("history") or {}
    ns: dict[str, Any] = {
        "name": name,
        "allow_user_limited_channels": access == "private",
        "allow_subscribe_for_client": access == "shared-read",
        "allow_subscribe_for_anonymous": False,
        "allow_publish_for_client": False,
        "allow_publish_for_subscriber": False,
        "allow_history_for_subscriber": True,
        "presence": bool(options.get("presence", False)),
    }
    size = int(history.get("size", 0))
    if size > 0:
        ttl, meta_ttl = str(history.get("ttl", "")), str(history.get("meta_ttl", "24h"))
        for key, value in (("ttl", ttl), ("meta_ttl", meta_ttl)):
            if not _DURATION.match(value):
                raise ConfigError(f"realtime.history.{key}: a duration like 600s, 10m or 24h")
        ns.update({"history_size": size, "history_ttl": ttl, "history_meta_ttl": meta_ttl,
                   "force_recovery": bool(options.get("recovery", True))})
    elif options.get("recovery"):
        raise ConfigError("realtime.recovery: needs realtime.history.size > 0 (recovery replays history)")
    return ns


def build_config(access_by_collection: Mapping[str, str], options: Mapping[str, Any], *, port: int,
                 address: str = "127.0.0.1",
                 allowed_origins: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The whole config.json document (no secret in it)."""
    merged = {**DEFAULT_OPTIONS, **options}
    return {
        "log": {"level": str(merged.get("log_level", "info"))},
        "http_server": {"address": address, "port": int(port)},
        "health": {"enabled": True},
        "client": {
            "allowed_origins": list(allowed_origins),
            "allow_anonymous_connect_without_token": False,
        },
        "http_api": {},
        "channel": {
            "without_namespace": {"allow_subscribe_for_client": False},
            "namespaces": [namespace(name, access, merged)
                           for name, access in sorted(access_by_collection.items())],
        },
    }


def load_collection_access(config_dir: Path) -> dict[str, str]:
    """Collection -> access rule from ``config/collections/*.yaml``: the gateway's own map, so both agree."""
    from worker.adapters.config_files import load_collections
    from worker.collections import Registry

    return Registry.from_dict(load_collections(config_dir)).access_rules()


def load_options(config_dir: Path) -> dict[str, Any]:
    """``config/realtime.yaml`` (absent = defaults)."""
    import yaml

    path = config_dir / "realtime.yaml"
    if not path.exists():
        return dict(DEFAULT_OPTIONS)
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ConfigError("realtime.yaml: must be a mapping")
    return doc


def render(s: Any, *, address: str = "${host}") -> str:
    """config.json text for a stack (``s``: infra.settings.StackSettings); the renderer fills ``${host}``."""
    config_dir = Path(s.root) / "config"
    env = s.environment
    doc = build_config(load_collection_access(config_dir), load_options(config_dir),
                       port=env.realtime.port, address=address, allowed_origins=env.allowed_origins)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
