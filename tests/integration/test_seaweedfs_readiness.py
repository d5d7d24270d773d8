"""The local stack's SeaweedFS counts as started only once its stored objects read back.

The product's own spec (infra/services.py) and start/stop (infra/local_process.py) run a real
``weed mini``: objects are stored, then it is restarted the way `pulumi up` restarts it (a
rotation, an operator's restart), and every object is read the moment ``start`` returns. A
thread samples the S3 port's ``/healthz`` and one object's GET throughout each start: a sample
with ``/healthz`` at 200 while the GET answers 500 is a moment the old check (``/healthz``
alone) would have called the service started. Such a moment needs the volume server's first
heartbeat to reach the restarted master before it has won its election (the volume server then
retries after its 5 s pulse while ``weed mini`` starts the filer and S3 anyway); on this machine
that was about one restart in fifteen, so the samples are printed, not asserted.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from infra import local_process, render_local, services
from tests.support.local_mocks import mocked_local_settings
from tests.support.paths import free_port

pytestmark = pytest.mark.stack

RESTARTS = 4
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _status(url: str) -> int | None:
    try:
        with _NO_PROXY.open(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def _seaweedfs_props(tmp_path: Path, key_id: str, secret: str) -> dict[str, Any]:
    """The product's SeaweedFS process inputs, on free ports, with this test's S3 pair."""
    names = ("s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
             "webdav", "admin", "admin_grpc")
    ports = {name: free_port() for name in names}
    weed = ", ".join(f"{name}: {port}" for name, port in ports.items())
    env_text = f"target: local\nstorage: {{bucket: ready, port: {free_port()}, seaweedfs: {{{weed}}}}}\n"
    s = mocked_local_settings(tmp_path, env_text)
    spec = services.seaweedfs(s)
    paths = render_local.LocalPaths(root=s.root, state_dir=tmp_path, host="127.0.0.1", start_timeout=60)
    props = render_local.process_props(spec, paths)
    props["secret_env"] = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    assert props["ready"], "the spec declares a readiness check beyond /healthz"
    return props


@dataclasses.dataclass
class Samples:
    """``(S3 /healthz, GET of a stored object)`` statuses seen while a start is under way."""

    seen: list[tuple[int | None, int | None]] = dataclasses.field(default_factory=list)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def run(self, healthz: str, url: str) -> None:
        while not self.stop.is_set():
            self.seen.append((_status(healthz), _status(url)))
            time.sleep(0.02)

    def old_check_passed_too_early(self) -> int:
        return sum(1 for health, get in self.seen if health == 200 and get == 500)


def test_a_restarted_seaweedfs_is_started_only_when_stored_objects_read(tmp_path: Path) -> None:
    key_id, secret = "AK" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    props = _seaweedfs_props(tmp_path, key_id, secret)
    s3_port = props["ports"]["s3"]["number"]
    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
        aws_access_key_id=key_id, aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}, proxies={}),
    )
    local_process.start(props)
    try:
        s3.create_bucket(Bucket="second")  # another collection: its own volumes
        keys = [("ready", f"users/u{i}/f.txt") for i in range(4)] + [("second", "g.txt")]
        for bucket, key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        urls = [s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": k}, ExpiresIn=3600)
                for b, k in keys]
        too_early, seconds = [], []
        for _ in range(RESTARTS):
            local_process.stop(props)
            samples = Samples()
            sampler = threading.Thread(
                target=samples.run, args=(f"http://127.0.0.1:{s3_port}/healthz", urls[0]), daemon=True
            )
            sampler.start()
            began = time.monotonic()
            try:
                local_process.start(props)
            finally:
                seconds.append(round(time.monotonic() - began, 2))
                samples.stop.set()
                sampler.join()
            statuses = [_status(url) for url in urls]  # the moment the product calls it started
            assert statuses == [200] * len(urls), f"stored objects right after the start: {statuses}"
            too_early.append(samples.old_check_passed_too_early())
        print(f"start seconds per restart: {seconds}; samples where /healthz alone passed while a "
              f"stored object read 500: {too_early}")
    finally:
        s3.close()
        local_process.stop(props)
