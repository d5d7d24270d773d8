"""Account deletion across the real services: the stand-in (core), SeaweedFS (storage prefix), the gateway's
SQLite (documents + outbox); interrupted midway, reported as unfinished, then completed by a retry of the
``delete-user`` runbook."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.ops.cli import main as ops_main
from scripts.ops.console import Console
from tests.support.auth_gateway import Gw, serve_gateway
from tests.support.seaweedfs import SeaweedFS, start_seaweedfs
from tests.support.standin import Standin, start_standin

PASSWORD = "correct horse 1"


@dataclass
class Stack:
    gw: Gw
    standin: Standin
    s3: SeaweedFS
    db_path: Path

    def ops(self, monkeypatch: pytest.MonkeyPatch, *argv: str, **override: str) -> tuple[int, Any]:
        env = {"TELESTACK_DB_PATH": str(self.db_path), "TELESTACK_AUTH_URL": self.standin.url,
               "TELESTACK_AUTH_API_KEY": self.standin.api_key, "TELESTACK_S3_ENDPOINT": self.s3.endpoint,
               "TELESTACK_S3_BUCKET": self.s3.bucket, "TELESTACK_S3_ACCESS_KEY_ID": self.s3.access_key,
               "TELESTACK_S3_SECRET_ACCESS_KEY": self.s3.secret_key, **override}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        out = io.StringIO()
        code = ops_main([*argv, "--json"], Console(stdout=out, stderr=io.StringIO()))
        return code, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deletion")
    s3 = start_seaweedfs(tmp, bucket="deletion")
    standin = start_standin(tmp)
    try:
        extra = {"s3_endpoint": s3.endpoint, "s3_bucket": s3.bucket, "s3_access_key_id": s3.access_key,
                 "s3_secret_access_key": s3.secret_key}
        for gw in serve_gateway(tmp, standin, **extra):
            yield Stack(gw, standin, s3, tmp / "gateway.sqlite3")
    finally:
        standin.stop()
        s3.stop()


def _user(stack: Stack, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = stack.gw.post("/v1/auth/signup", {"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def _upload(stack: Stack, token: str, key: str) -> None:
    body = b"file " + key.encode()
    r = stack.gw.post("/v1/storage/upload-url", {"key": key, "size": len(body)}, token)
    assert r.status_code == 200, r.text
    up = httpx.put(r.json()["url"], content=body, headers=r.json()["headers"], timeout=10)
    assert up.status_code in (200, 201, 204), up.text


def _create(stack: Stack, token: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = stack.gw.post("/v1/collections/notes/documents", {"data": {"title": f"note {i}"}}, token)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def _keys(stack: Stack, prefix: str) -> list[str]:
    listing = stack.s3.client().list_objects_v2(Bucket=stack.s3.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def _count(stack: Stack, sql: str, *params: Any) -> int:
    con = sqlite3.connect(stack.db_path)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


def test_an_interrupted_deletion_is_reported_and_a_retry_finishes_it(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    user, other = _user(stack, "leaving@example.com"), _user(stack, "staying@example.com", "other pass 12")
    uid, oid = user["user"]["id"], other["user"]["id"]
    mine = _create(stack, user["access_token"], 150)  # more than one batch of 100
    theirs = _create(stack, other["access_token"], 2)
    for name in ("a.txt", "dir/b.txt", "dir/sub/c.txt"):
        _upload(stack, user["access_token"], f"users/{uid}/{name}")
    _upload(stack, other["access_token"], f"users/{oid}/keep.txt")

    with sqlite3.connect(stack.db_path) as con:  # a collection since removed from config/ still holds one
        con.execute("INSERT INTO documents VALUES ('retired', 'r1', ?, '{}', 1, 0, 0)", (uid,))
    code, dry = stack.ops(monkeypatch, "delete-user", "--user", uid, "--dry-run")
    assert code == 0 and dry["documents"] == 151
    assert _count(stack, "SELECT count(*) FROM documents WHERE owner_id = ?", uid) == 151

    # storage refuses the ops command's keys: the run stops after sessions and documents, before the user
    code, failed = stack.ops(monkeypatch, "delete-user", "--user", uid,
                             TELESTACK_S3_SECRET_ACCESS_KEY="wrong-" + stack.s3.secret_key)
    assert code == 3 and failed["finished"] is False
    assert _count(stack, "SELECT count(*) FROM documents WHERE owner_id = ?", uid) == 0
    assert len(_keys(stack, f"users/{uid}/")) == 3  # not reached
    assert stack.gw.post("/v1/auth/refresh", {"refresh_token": user["refresh_token"]}).status_code == 401
    code, listed = stack.ops(monkeypatch, "account-deletions", "--unfinished")
    assert [d["user_id"] for d in listed["deletions"]] == [uid]
    assert listed["deletions"][0]["documents_deleted"] == 151

    code, done = stack.ops(monkeypatch, "delete-user", "--user", uid)
    assert code == 0 and done["finished"] is True and done["objects_deleted"] == 3
    assert _keys(stack, f"users/{uid}/") == []
    signin = stack.gw.post("/v1/auth/signin", {"email": "leaving@example.com", "password": PASSWORD})
    assert signin.status_code == 401
    code, listed = stack.ops(monkeypatch, "account-deletions", "--unfinished")
    assert listed["deletions"] == []
    code, listed = stack.ops(monkeypatch, "account-deletions")
    assert listed["deletions"][0]["attempts"] == 2 and listed["deletions"][0]["requested_by"] == "admin"
    # every deleted document left a `deleted` event; the other user kept everything
    events = _count(stack, "SELECT count(*) FROM outbox WHERE op = 'deleted' AND owner_id = ?", uid)
    assert events == len(mine) == 150
    assert _count(stack, "SELECT count(*) FROM documents WHERE owner_id = ?", oid) == len(theirs)
    assert _keys(stack, f"users/{oid}/") == [f"users/{oid}/keep.txt"]
    assert stack.gw.post("/v1/auth/signin", {"email": "staying@example.com", "password": "other pass 12"}
                         ).status_code == 200
