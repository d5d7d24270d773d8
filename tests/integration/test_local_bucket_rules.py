"""infra/bucket_rules.py against a real SeaweedFS: the rules ``pulumi up --stack local`` puts on the bucket.

The provider runs exactly as the engine runs it (create, diff), with the shipped
``config/storage.yaml`` and the local environment's ``allowed_origins``; a browser's CORS
preflight then proves the server enforces them: an allowed origin is answered, any other
is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra import storage_rules
from infra.bucket_rules import BucketRulesProvider
from infra.settings import ROOT, load_environment
from tests.support.seaweedfs import SeaweedFS, private_seaweedfs

pytestmark = pytest.mark.stack

RULES = storage_rules.load_rules(ROOT / "config")
ORIGINS = load_environment("local")[1].allowed_origins


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with private_seaweedfs(tmp_path_factory, "bucket-rules") as server:
        yield server


def _props(server: SeaweedFS, pid: int = 1, origins: tuple[str, ...] = ORIGINS) -> dict[str, Any]:
    return {"endpoint": server.endpoint, "bucket": server.bucket, "region": "us-east-1",
            "access_key": server.access_key, "secret_key": server.secret_key, "rules": RULES,
            "origins": list(origins), "put_cors": True, "server_pid": pid}


def _preflight(server: SeaweedFS, origin: str) -> httpx.Response:
    return httpx.options(f"{server.endpoint}/{server.bucket}/users/u1/photo.png",
                         headers={"Origin": origin, "Access-Control-Request-Method": "PUT"}, trust_env=False)


def test_create_puts_the_files_rules_and_the_server_enforces_them(s3: SeaweedFS, tmp_path: Path) -> None:
    created = BucketRulesProvider().create(_props(s3))
    assert created.outs["cors"] and created.outs["lifecycle"], created.outs["notes"]
    for allowed in ORIGINS:
        ok = _preflight(s3, allowed)
        assert ok.status_code == 200, ok.text
        assert ok.headers.get("access-control-allow-origin") in (allowed, "*")
        assert "PUT" in ok.headers.get("access-control-allow-methods", "")
    refused = _preflight(s3, "http://evil.test")
    assert refused.status_code == 403, refused.headers
    assert "access-control-allow-origin" not in refused.headers
    lifecycle = s3.client().get_bucket_lifecycle_configuration(Bucket=s3.bucket)["Rules"]
    assert {r["ID"] for r in lifecycle} == {rule["id"] for rule in RULES["lifecycle"]}


def test_a_restarted_server_or_changed_rules_put_them_again(s3: SeaweedFS) -> None:
    provider = BucketRulesProvider()
    old = _props(s3)
    assert not provider.diff("bucket-rules", old, _props(s3)).changes
    assert provider.diff("bucket-rules", old, _props(s3, pid=2)).changes
    new = _props(s3, origins=("http://only.test",))
    assert provider.diff("bucket-rules", old, new).changes
    provider.update("bucket-rules", old, new)
    assert _preflight(s3, "http://only.test").status_code == 200
    assert _preflight(s3, ORIGINS[0]).status_code == 403
    provider.update("bucket-rules", new, old)  # the shipped rules again, for whoever runs next
    assert _preflight(s3, ORIGINS[0]).status_code == 200


def test_no_origin_at_all_refuses_every_origin(s3: SeaweedFS) -> None:
    """An empty ``allowed_origins`` must not leave the bucket without rules: SeaweedFS then answers all."""
    provider = BucketRulesProvider()
    none = _props(s3, origins=())
    provider.update("bucket-rules", _props(s3), none)
    for origin in (*ORIGINS, "http://evil.test"):
        assert _preflight(s3, origin).status_code == 403, origin
    provider.update("bucket-rules", none, _props(s3))  # the shipped rules again, for whoever runs next
    assert _preflight(s3, ORIGINS[0]).status_code == 200
