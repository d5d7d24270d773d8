"""A gateway's log after a realistic session holds no secret: no token, password, key or signature.

A real gateway process (INFO: one line per request, plus its warnings) in front of the CDI stand-in
goes through sign-up, sign-in, writes, a realtime token, storage URLs, refresh, reuse of a spent
refresh token, forged and expired tokens and other errors; then every credential it was given and
every token it handed out is searched for in its log, whole and as any 12-character slice.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.session_gateway import SessionGateway, session_gateway

PASSWORD = "hunter2-correct-horse-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> SessionGateway:
    with session_gateway(tmp_path_factory.mktemp("logscan")) as gateway:
        yield gateway


def _session(gw: SessionGateway) -> list[str]:
    """Run the session; return every secret value the log must not hold."""
    seen: list[str] = [PASSWORD, *gw.secrets.values()]
    http = httpx.Client(base_url=gw.url, timeout=30, trust_env=False)
    email = f"log-{uuid.uuid4().hex[:8]}@example.com"
    up = http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert up.status_code == 201, up.text
    s1 = http.post("/v1/auth/signin", json={"email": email, "password": PASSWORD}).json()
    seen += [up.json()["access_token"], up.json()["refresh_token"], s1["access_token"], s1["refresh_token"]]
    user = {"authorization": f"Bearer {s1['access_token']}"}
    admin = {"authorization": f"Bearer {gw.admin_key}"}
    assert http.post("/v1/auth/signin", json={"email": email, "password": PASSWORD + "x"}).status_code == 401
    assert http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).status_code == 409
    docs = "/v1/collections/notes/documents"
    created = http.post(docs, json={"data": {"title": "secret plans"}}, headers=user)
    assert created.status_code == 201, created.text
    doc = f"{docs}/{created.json()['id']}"
    v1 = {**user, "if-match": '"1"'}
    assert http.patch(doc, json={"data": {"body": "x"}}, headers=v1).status_code == 200
    assert http.put(doc, json={"data": {"title": "t"}}, headers=v1).status_code == 412
    writes = [{"op": "create", "collection": "posts", "data": {"title": "p"}}]
    assert http.post("/v1/batch", json={"writes": writes}, headers=user).status_code == 200
    assert http.post("/v1/batch", json={"writes": writes}, headers=admin).status_code == 200
    assert http.post(docs.replace("notes", "settings"), json={"data": {}}, headers=user).status_code == 403
    rt = http.post("/v1/realtime/token", headers=user)
    assert rt.status_code == 200, rt.text
    seen.append(rt.json()["token"])
    rt_admin = http.post("/v1/realtime/token", headers=admin).json()
    seen += [rt_admin["token"], *(c["token"] for c in rt_admin["channels"] if c["token"])]
    uid = up.json()["user"]["id"]
    put = http.post("/v1/storage/upload-url", json={"key": f"users/{uid}/a.png", "size": 3}, headers=user)
    get = http.post("/v1/storage/download-url", json={"key": f"users/{uid}/a.png"}, headers=user)
    assert put.status_code == get.status_code == 200, (put.text, get.text)
    for signed in (put.json()["url"], get.json()["url"]):
        seen.append(parse_qs(urlsplit(signed).query)["X-Amz-Signature"][0])
    assert http.post("/v1/storage/upload-url", json={"key": "users/other/a", "size": 1},
                     headers=user).status_code == 403
    s2 = http.post("/v1/auth/refresh", json={"refresh_token": s1["refresh_token"]}).json()
    seen += [s2["access_token"], s2["refresh_token"]]
    http.post("/v1/auth/refresh", json={"refresh_token": s2["refresh_token"]})
    reuse = http.post("/v1/auth/refresh", json={"refresh_token": s1["refresh_token"]})
    assert reuse.status_code == 401
    forged = s2["access_token"][:-6] + "AAAAAA"
    assert http.get("/v1/auth/me", headers={"authorization": f"Bearer {forged}"}).status_code == 401
    assert http.get("/v1/auth/me", headers={"authorization": f"Bearer {gw.admin_key}x"}).status_code == 401
    signout = http.post("/v1/auth/signout", headers={"authorization": f"Bearer {s2['access_token']}"})
    assert signout.status_code == 200
    lone_surrogate = b'{"data":{"title":"\\ud800"}}'
    lone = http.post(docs, content=lone_surrogate, headers={**user, "content-type": "application/json"})
    assert lone.status_code == 400
    http.close()
    return seen


def test_no_secret_or_token_in_any_log_line(gw: SessionGateway) -> None:
    seen = _session(gw)
    log = _wait_for_lines(gw.log)
    lines = log.splitlines()
    # the scan has something to scan: a line per request, each with its request id
    assert sum(" -> " in line for line in lines) >= 23, log[-2000:]
    assert all("request_id=" in line for line in lines if " telestack." in line)
    for value in seen:
        assert len(value) >= 12, "a secret too short to scan for"
        for start in range(0, len(value) - 11, 6):
            piece = value[start:start + 12]
            assert piece not in log, f"a slice of a secret ({value[:4]}...) is in the gateway log"


def _wait_for_lines(log: Path) -> str:
    """The log as written so far (each request's line is written before its answer is sent)."""
    return re.sub(r"\r", "", log.read_text(errors="replace"))
