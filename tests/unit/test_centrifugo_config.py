"""infra/centrifugo_config.py: the generated Centrifugo config agrees with the gateway's channel rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import centrifugo_config
from tests.support.paths import CONFIG
from worker.adapters.config_files import load_collections
from worker.collections import Registry


def test_generated_config_matches_the_channel_rules() -> None:
    doc = centrifugo_config.build_config(centrifugo_config.load_collection_access(CONFIG),
                                         centrifugo_config.load_options(CONFIG), port=8123,
                                         allowed_origins=("http://localhost:8787",))
    text = json.dumps(doc)
    assert "key" not in json.dumps(doc["http_api"]) and "hmac" not in text  # no secret in the file
    assert doc["http_server"] == {"address": "127.0.0.1", "port": 8123}
    assert doc["health"] == {"enabled": True}
    assert doc["client"]["allowed_origins"] == ["http://localhost:8787"]
    ns = {n["name"]: n for n in doc["channel"]["namespaces"]}
    assert ns["notes"]["allow_user_limited_channels"] and not ns["notes"]["allow_subscribe_for_client"]
    assert ns["posts"]["allow_subscribe_for_client"] and not ns["posts"]["allow_user_limited_channels"]
    assert not ns["settings"]["allow_subscribe_for_client"]
    assert not ns["settings"]["allow_user_limited_channels"]
    for n in ns.values():
        assert n["force_recovery"] and n["history_size"] > 0 and n["history_ttl"]
        assert not n["allow_publish_for_client"] and not n["allow_subscribe_for_anonymous"]


def test_the_namespaces_come_from_the_gateway_s_own_access_map() -> None:
    """One collection -> access map: what the gateway authorizes is what Centrifugo is configured with."""
    gateway_map = Registry.from_json(json.dumps(load_collections(CONFIG))).access_rules()
    assert centrifugo_config.load_collection_access(CONFIG) == gateway_map
    assert {"notes": "private", "posts": "shared-read", "settings": "admin"}.items() <= gateway_map.items()


@pytest.mark.parametrize(("access", "options", "message"), [
    ({"x": "private"}, {}, "namespace name"),
    ({"notes": "public"}, {}, "access"),
    ({"notes": "private"}, {"history": {"size": 0}, "recovery": True}, "recovery"),
    ({"notes": "private"}, {"history": {"size": 10, "ttl": "soon"}}, "duration"),
])
def test_config_errors_name_the_key(access: dict[str, str], options: dict[str, Any], message: str) -> None:
    with pytest.raises(centrifugo_config.ConfigError, match=message):
        centrifugo_config.build_config(access, options, port=8000)
