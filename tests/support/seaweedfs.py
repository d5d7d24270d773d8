"""A real SeaweedFS (``weed mini``) on loopback, always with an S3 identities config.

Without identities SeaweedFS checks no signature at all, so every test against an
unauthenticated server would pass vacuously; :func:`start_seaweedfs` therefore
refuses to start one without keys. Every port ``weed mini`` opens is a free
loopback port chosen here (master, volume, filer, S3, each with its gRPC twin);
WebDAV, the admin UI, Iceberg, Lance and telemetry are switched off.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import binary, free_port
from tests.support.process import Process, start_process, stop_process


@dataclass
class SeaweedFS:
    """One running ``weed mini``; ``endpoint`` is its S3 API (path-style, region us-east-1)."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    data_dir: Path
    argv: list[str]
    process: Process | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def client(self, *, access_key: str | None = None, secret_key: str | None = None):
        """A boto3 S3 client for this server (path-style, SigV4); keys overridable to test refusals."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def start(
        self, timeout: float = 60.0, *, access_key: str | None = None, secret_key: str | None = None
    ) -> None:
        """Run ``argv`` (again) until the bucket answers a request signed with these keys (default: ours)."""
        workdir = self.data_dir.parent
        client = self.client(access_key=access_key, secret_key=secret_key)

        def bucket_ready() -> bool:
            # after a restart the filer answers before the volume servers have re-registered with
            # the master: existing objects then read as 500 for a moment, so read one back too
            try:
                client.head_bucket(Bucket=self.bucket)
                listed = client.list_objects_v2(Bucket=self.bucket, MaxKeys=1).get("Contents", [])
                if listed:
                    client.get_object(Bucket=self.bucket, Key=listed[0]["Key"])["Body"].read()
            except Exception:
                return False
            return True

        try:
            self.process = start_process(
                self.argv,
                log=workdir / "seaweedfs.log",
                ready=bucket_ready,
                what="weed mini",
                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                cwd=workdir,
                timeout=timeout,
                interval=0.3,
            )
        finally:
            client.close()

    def stop(self) -> None:
        """Stop by PID only (other helpers run the same binary)."""
        stop_process(self.process)


def identities_config(access_key: str, secret_key: str) -> dict[str, object]:
    """The ``-s3.config`` document: one identity allowed everything on every bucket."""
    return {
        "identities": [
            {
                "name": "telestack",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def mini_argv(weed: str, data_dir: Path, config_file: Path, bucket: str, ports: dict[str, int]) -> list[str]:
    """The exact ``weed mini`` command line: every listener on 127.0.0.1 and an explicit port."""
    return [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config_file}",
        f"-bucket={bucket}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={data_dir}/filer.sock",
        f"-s3.localSocket={data_dir}/s3.sock",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={ports['admin_grpc']}",
        "-master.telemetry=false",
    ]


def start_seaweedfs(workdir: Path, *, bucket: str = "telestack-test", timeout: float = 60.0) -> SeaweedFS:
    """Start ``weed mini`` with generated keys and wait until the bucket answers a signed request."""
    data_dir = workdir / "seaweedfs"
    data_dir.mkdir(parents=True, exist_ok=True)
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    config_file = workdir / "s3-identities.json"
    config_file.write_text(json.dumps(identities_config(access_key, secret_key)))
    config_file.chmod(0o600)
    names = (
        "master",
        "master_grpc",
        "volume",
        "volume_grpc",
        "filer",
        "filer_grpc",
        "s3",
        "s3_grpc",
        "admin",
        "admin_grpc",
    )
    ports: dict[str, int] = {}
    for name in names:  # distinct ports, even if the kernel would hand one out twice
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    argv = mini_argv(binary("weed"), data_dir, config_file, bucket, ports)
    server = SeaweedFS(
        endpoint=f"http://127.0.0.1:{ports['s3']}",
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        data_dir=data_dir,
        argv=argv,
        ports=ports,
    )
    server.start(timeout)
    return server


@contextmanager
def private_seaweedfs(tmp_path_factory: pytest.TempPathFactory, bucket: str) -> Iterator[SeaweedFS]:
    """A SeaweedFS of a test module's own: a backup copies the whole bucket, so it must not be shared."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # earlier async tests' loop sockets
        server = start_seaweedfs(tmp_path_factory.mktemp(bucket), bucket=bucket)
        gc.collect()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session (starting one costs seconds)."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()
