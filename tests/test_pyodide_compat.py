"""The gateway really runs on the Python Workers runtime: worker/ served under Pyodide, through entry.py.

CPython tests cannot show this: Pyodide lacks modules CPython has (sqlite3, sockets, threads), the
``workers`` SDK converts requests, responses and D1 results across a JS FFI, and D1 refuses things
SQLite allows (BEGIN/COMMIT, >100 bound parameters). So tests/pyodide/runner.mjs boots npm
``pyodide`` (0.28 = Python 3.13, the Workers runtime's version) in Node, installs the Worker's
real ``workers-runtime-sdk`` (what the runtime provides), and runs the upload, not the repo: the
EXACT module list ``infra/worker_bundle.py`` produces (names, content types, vendored packages) is
laid out at ``/session/metadata`` as workerd lays it out, and the main module is imported the way
workerd imports it, as its name minus ``.py`` (src/pyodide/python-entrypoint-helper.ts). A bundle
that cannot import fails here. Then it plays workerd: each request constructs ``entry.Default(ctx, env)``
and awaits ``fetch`` with ``env.DB`` a D1-shaped binding over a real SQLite file (better-sqlite3), with
D1's Sessions API and one read replica that can lag. Session tokens are RS256-signed here and verified
in the Worker by Node's WebCrypto against a JWKS served on loopback; ``cryptography`` is not there.
Offline: no CDN, no network beyond loopback.

Needs ``scripts/pyodide_setup.sh`` (npm packages and wheels, cached outside the repo).
Cold-start import time and memory are printed, not asserted: they are DESIGN.md budgets, measured
and reported, never timed tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra import worker_bundle
from tests.support.centrifugo import Centrifugo, start_centrifugo
from tests.support.hostile_json import NASTY
from tests.support.mailpit import ACTION_URL as MAIL_ACTION_URL
from tests.support.mailpit import SENDER as MAIL_SENDER
from tests.support.mailpit import Mailpit, self_signed_certificate, start_mailpit, start_relay_to
from tests.support.oidc_provider import CLIENT_ID as OIDC_CLIENT_ID
from tests.support.oidc_provider import OidcProvider, start_oidc_provider
from tests.support.own_loop import run_on_own_loop
from tests.support.paths import CONFIG, ROOT
from tests.support.realtime_client import Subscriber
from tests.support.standin import start_standin

CACHE = Path(os.environ.get("TELESTACK_PYODIDE_CACHE", Path.home() / ".cache/telestack/pyodide"))
RUNNER = ROOT / "tests/pyodide/runner.mjs"
#: the packages the Workers runtime itself provides (the workers SDK), installed from wheels
RUNTIME = ROOT / "tests/pyodide/requirements.txt"
ADMIN_KEY = "pyodide-compat-admin-key-0123456789"
#: modules the Worker must never load (the core imports no runtime; Pyodide has no sqlite3 by default;
#: PyJWT is CPython-only: it imports ssl, which npm Pyodide lacks)
FORBIDDEN = ("sqlite3", "httpx", "uvicorn", "yaml", "jwt", "worker.asgi", "worker.adapters.sqlite",
             "worker.adapters.httpx_client", "worker.adapters.config_files",
             "worker.adapters.pyjwt_signatures")
#: third-party packages whose import at cold start is reported (each costs start-up time)
DEPENDENCIES = ("fastjsonschema", "cryptography", "workers")
REPLY_TIMEOUT_S = 120.0
#: what tests/pyodide/workers_host.py reports about the waitUntil work a response left behind
WAIT_UNTIL = "x-harness-wait-until"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class PyodideWorker:
    """A running runner.mjs: send one JSON line, read one JSON line back."""

    def __init__(self, proc: subprocess.Popen[str], stderr_path: Path) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self.requests = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def next_message(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=REPLY_TIMEOUT_S)
        except queue.Empty:
            pytest.fail(f"no reply from the Pyodide runner in {REPLY_TIMEOUT_S}s; stderr:\n{self.stderr()}")
        if line is None:
            pytest.fail(f"the Pyodide runner exited ({self.proc.poll()}); stderr:\n{self.stderr()}")
        return json.loads(line)

    def call(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        reply = self.next_message()
        if "error" in reply:
            pytest.fail(f"runner error on {msg.get('op')}: {reply['error']}\nstderr:\n{self.stderr()}")
        return reply

    def request(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
                admin: bool = True) -> Reply:
        hdrs = {"authorization": f"Bearer {ADMIN_KEY}"} if admin else {}
        text = None
        if body is not None:
            hdrs["content-type"] = "application/json"
            text = body if isinstance(body, str) else json.dumps(body)
        hdrs.update(headers or {})
        r = self.call(op="request", method=method, path=path, headers=hdrs, body=text)
        self.requests += 1
        assert not r["wait_until_errors"], r["wait_until_errors"]
        return Reply(r["status"], r["headers"], r["body"])

    def sql(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.call(op="sql", sql=sql, params=list(params))["rows"]

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text()[-6000:]
        return ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


def _collections_json(config_dir: Path = CONFIG) -> str:
    from worker.adapters.config_files import collections_json

    return collections_json(config_dir)


#: a collection whose schema alone is several times the 5 KB a Worker's plain-text binding holds: the
#: collections reach the Worker in its bundle (the generated ``telestack_config`` module)
BIG_FIELDS = 150


def _config_with_a_big_collection(tmp: Path) -> Path:
    config = tmp / "config"
    shutil.copytree(CONFIG, config)
    fields = {f"field_{i}": {"type": "string", "maxLength": 40, "description": f"field {i} of a large form"}
              for i in range(BIG_FIELDS)}
    # admin access: no user channel, so the other tests' realtime grants stay those of config/
    big = {"access": "admin", "schema": {"type": "object", "properties": fields}}
    (config / "collections/big.yaml").write_text(json.dumps(big))  # JSON is YAML
    assert len(_collections_json(config)) > 2 * 5000
    return config


def _migrations() -> list[tuple[str, str]]:
    from worker.adapters.config_files import load_migrations

    return load_migrations(CONFIG)


def _require_setup() -> tuple[str, list[str]]:
    """node, and the wheels of what the runtime itself provides (the workers SDK): the Worker's own
    dependencies are not installed, they travel in the bundle like on Cloudflare."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (needed for the Pyodide compatibility test)")
    if not (CACHE / "node/.stamp").exists() or not (CACHE / "wheels/.stamp").exists():
        pytest.fail(f"Pyodide harness not installed in {CACHE}: run scripts/pyodide_setup.sh")
    # only what the runtime provides: a wheel older pins left in the cache (a package the Worker no
    # longer vendors) must not make that package importable in the isolate
    provided = _requirement_names(RUNTIME)
    vendored = {_dist_key(name) for name in worker_bundle.read_pins()}
    assert not provided & vendored, f"vendored and runtime-provided at once: {provided & vendored}"
    wheels = sorted(
        str(p) for p in (CACHE / "wheels").glob("*.whl") if _dist_key(p.name.split("-")[0]) in provided
    )
    missing = provided - {_dist_key(Path(w).name.split("-")[0]) for w in wheels}
    if missing:
        pytest.fail(f"wheels missing from {CACHE}/wheels: {sorted(missing)}: run scripts/pyodide_setup.sh")
    return node, wheels


def _requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file pins, as :func:`_dist_key` spells them."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {_dist_key(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]) for line in lines if line}


def _dist_key(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()


def _uploaded_modules(bundle: worker_bundle.Bundle) -> list[dict[str, str]]:
    return [{"name": m.name, "content_type": m.content_type,
             "content_base64": base64.b64encode(m.content).decode("ascii")} for m in bundle.modules]


class AuthCore:
    """The auth core's JWKS as the gateway fetches it (``GET {AUTH_URL}/.well-known/jwks.json`` with a
    ``Cache-Control: max-age``), on loopback, and the RSA key that signs its session tokens."""

    KID = "d-pyodide-1"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": self.KID, "alg": "RS256", "use": "sig"}]}
        self.fetches = 0
        core = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                core.fetches += 1
                body = json.dumps(core.jwks).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", "max-age=300")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def session_token(self, sub: str, *, key: Any = None, headers: dict[str, Any] | None = None,
                      algorithm: str = "RS256", **claims: Any) -> str:
        """A SuperTokens session access token (CDI 5.x claims, header ``kid`` and ``version``)."""
        now = int(time.time())
        payload = {"sub": sub, "iat": now, "exp": now + 600, "tId": "public", "rsub": sub,
                   "sessionHandle": f"h-{sub}", "refreshTokenHash1": "ab" * 32,
                   "parentRefreshTokenHash1": None, "antiCsrfToken": None, **claims}
        header = {"kid": self.KID, "version": "5", **(headers or {})}
        return jwt.encode(payload, self.key if key is None else key, algorithm=algorithm, headers=header)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: the browser origin the test Worker allows (its CORS_ALLOWED_ORIGINS binding)
APP_ORIGIN = "https://app.telestack.test"


def _start(tmp: Path, db_path: Path, realtime: Centrifugo | None, main_module: str | None = None,
           auth_url: str | None = None, config_dir: Path = CONFIG,
           extra_bindings: dict[str, str] | None = None) -> tuple[PyodideWorker, dict[str, Any]]:
    """The runner over the upload of infra/worker_bundle.py built from ``config_dir``; ``main_module``
    overrides the bundle's. No COLLECTIONS binding: the Worker reads the bundle's collections module."""
    node, wheels = _require_setup()
    bundle = worker_bundle.build_bundle(config_dir=config_dir)
    # a real Centrifugo: publishing and the cron drain go through the Workers fetch adapter
    bindings = {}
    if realtime is not None:
        bindings = {"CENTRIFUGO_API_URL": realtime.api_url, "CENTRIFUGO_API_KEY": realtime.api_key,
                    "CENTRIFUGO_TOKEN_SECRET": realtime.token_secret, "CENTRIFUGO_WS_URL": realtime.ws_url}
    if auth_url is not None:  # session tokens are verified against this core's JWKS
        bindings["AUTH_URL"] = auth_url
    bindings.update(extra_bindings or {})
    spec = {
        "cacheDir": str(CACHE / "node"),
        "packageCacheDir": str(CACHE / "pyodide-packages"),
        "wheels": wheels,
        "modules": _uploaded_modules(bundle),
        "mainModule": main_module or bundle.main_module,
        "entrypoint": worker_bundle.ENTRYPOINT,
        "ownPackages": ["worker"],
        "baseUrl": "https://gateway.telestack.test",
        "dbPath": str(db_path),
        "d1Binding": "DB",
        "bindings": {"ADMIN_KEY": ADMIN_KEY, "CORS_ALLOWED_ORIGINS": APP_ORIGIN, **bindings},
        # what the ops path (D1 migrations) passes: the same collections, for their indexes
        "collections": _collections_json(config_dir),
        "migrations": _migrations(),
        "watchModules": list(FORBIDDEN),
        "reportModules": list(DEPENDENCIES),
    }
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    stderr_path = tmp / "runner.stderr"
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(
            [node, str(RUNNER), str(spec_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err, text=True, cwd=tmp,
        )
    worker = PyodideWorker(proc, stderr_path)
    return worker, worker.next_message()


@pytest.fixture(scope="module")
def realtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centrifugo]:
    """The real Centrifugo the Worker publishes to (through its fetch adapter)."""
    server = start_centrifugo(tmp_path_factory.mktemp("centrifugo"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def auth_core() -> Iterator[AuthCore]:
    core = AuthCore()
    try:
        yield core
    finally:
        core.stop()


@pytest.fixture(scope="module")
def booted(
    tmp_path_factory: pytest.TempPathFactory, realtime: Centrifugo, auth_core: AuthCore
) -> Iterator[tuple[PyodideWorker, dict[str, Any], Path]]:
    tmp = tmp_path_factory.mktemp("pyodide")
    db_path = tmp / "d1.sqlite"
    worker, ready = _start(tmp, db_path, realtime, auth_url=auth_core.url,
                           config_dir=_config_with_a_big_collection(tmp))
    try:
        yield worker, ready, db_path
    finally:
        worker.close()


@pytest.fixture(scope="module")
def migrated(booted: tuple[PyodideWorker, dict[str, Any], Path]) -> dict[str, Any]:
    """Schema via the gateway's D1 adapter (the ops path); the outcome is asserted by its own test."""
    worker, ready, db_path = booted
    if not ready["ready"]:
        pytest.fail(f"the bundle's main module failed to import under Pyodide: {ready['import_error']}")
    worker.proc.stdin.write(json.dumps({"op": "migrate"}) + "\n")  # type: ignore[union-attr]
    worker.proc.stdin.flush()  # type: ignore[union-attr]
    first = worker.next_message()
    if "error" in first:  # keep the document tests meaningful: same SQL, applied from CPython
        from worker.adapters.sqlite import SqliteDatabase
        from worker.collections import Registry
        from worker.migrations import migrate

        async def _fallback() -> None:
            db = SqliteDatabase(str(db_path))
            try:
                bundled = _collections_json(db_path.parent / "config")
                await migrate(db, _migrations(), Registry.from_json(bundled))
            finally:
                close = getattr(db, "close", None)
                if close is not None:
                    result = close()
                    if hasattr(result, "__await__"):
                        await result

        run_on_own_loop(_fallback())
    return first


@pytest.fixture
def worker(booted: tuple[PyodideWorker, dict[str, Any], Path], migrated: dict[str, Any]) -> PyodideWorker:
    return booted[0]


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def test_gateway_imports_under_pyodide_and_reports_cold_start(
    booted: tuple[PyodideWorker, dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    worker, ready, _ = booted
    assert ready["ready"], f"import entry (main module) failed:\n{ready['import_error']}\n{worker.stderr()}"
    v = ready["versions"]
    assert v["pyodide"].startswith("0.28."), v
    assert v["python"].startswith("3.13."), v
    assert {"entry", "worker.entry"} <= set(ready["loaded_modules"])
    # workerd ignores text/x-python-requirement modules: the bundle must not rely on one
    assert ready["ignored_modules"] == [], ready["ignored_modules"]
    assert ready["other_modules"] == [], f"runtime-only modules in the Worker: {ready['other_modules']}"
    t, m = ready["timings_ms"], ready["memory"]
    heap_growth = m["after_import"]["wasm_sbrk_bytes"] - m["before_import"]["wasm_sbrk_bytes"]
    with capsys.disabled():
        print(
            "\n[pyodide-compat] "
            f"node {v['node']}, pyodide {v['pyodide']}, python {v['python']}, sqlite {v['sqlite']}\n"
            f"[pyodide-compat] cold start: pyodide boot {t['pyodide_boot']:.0f} ms, "
            f"install wheels+bundle {t['install_packages']:.0f} ms, "
            f"import workers SDK {t['import_workers_sdk']:.0f} ms, "
            f"import entry {t['import_main_module']:.0f} ms "
            f"({len(ready['loaded_modules'])} gateway modules loaded; dependencies imported at start: "
            f"{sorted({n.split('.')[0] for n in ready['dependency_modules']})})\n"
            f"[pyodide-compat] memory: wasm heap in use {_mb(m['after_boot']['wasm_sbrk_bytes'])} "
            "after boot, "
            f"{_mb(m['after_import']['wasm_sbrk_bytes'])} after import (+{_mb(heap_growth)} for the "
            f"gateway); linear memory {_mb(m['after_import']['wasm_heap_bytes'])}; "
            f"node rss {_mb(m['after_import']['node_rss_bytes'])}"
        )


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HMAC-signed token keyed with ``secret`` (PyJWT refuses a PEM key as a secret; forgers don't)."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_session_tokens_are_verified_with_webcrypto_under_pyodide(
    worker: PyodideWorker, auth_core: AuthCore
) -> None:
    """RS256 session tokens through the Workers entry, checked by the runtime's WebCrypto.

    ``cryptography`` is not in the upload (workerd would ignore a requirement module for it) and not
    loadable in this Pyodide: a valid token is accepted all the same, and every forgery is refused.
    The JWKS comes from a loopback core over the Workers fetch adapter, as from SuperTokens.
    """
    def create(token: str, doc_id: str) -> Reply:
        return worker.request("POST", "/v1/collections/notes/documents", admin=False,
                              body={"id": doc_id, "data": {"title": "mine"}},
                              headers={"authorization": f"Bearer {token}"})

    valid = auth_core.session_token("user-py")
    r = create(valid, "tok-1")
    assert r.status == 201, r.body
    assert r.json()["owner_id"] == "user-py"
    assert create(valid, "tok-2").status == 201  # the same token again: served by the verified-token cache
    assert auth_core.fetches == 1  # the JWKS was fetched once and cached
    assert worker.call(op="verified_tokens")["entries"] == 1

    header, payload, signature = valid.split(".")
    other_payload = auth_core.session_token("someone-else").split(".")[1]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = auth_core.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = jwt.encode({"sub": "user-py"}, None, algorithm="none", headers={"kid": AuthCore.KID})
    forgeries = {
        "tampered payload": (f"{header}.{other_payload}.{signature}", "invalid_token"),
        "tampered signature": (f"{header}.{payload}.{signature[:-4]}AAAA", "invalid_token"),
        "another key, same kid": (auth_core.session_token("user-py", key=other_key), "invalid_token"),
        "expired": (auth_core.session_token("user-py", exp=int(time.time()) - 3600), "token_expired"),
        "alg none": (unsigned, "invalid_token"),
        # the classic confusion: HMAC keyed with the public key's PEM
        "HS256 with the public key": (_hs256(jwt.decode(valid, options={"verify_signature": False}),
                                             public_pem, AuthCore.KID), "invalid_token"),
        "unknown kid": (auth_core.session_token("user-py", headers={"kid": "nope"}), "invalid_token"),
        "not a session token": (auth_core.session_token("user-py", iss="https://elsewhere"), "invalid_token"),
    }
    for name, (token, code) in forgeries.items():
        r = create(token, f"forged-{len(code)}")
        assert r.status == 401, f"{name}: {r.status} {r.body}"
        assert r.json()["error"]["code"] == code, f"{name}: {r.body}"
    assert worker.sql("SELECT id FROM documents WHERE id LIKE 'forged-%'") == []
    assert worker.call(op="verified_tokens")["entries"] == 1  # failures are never cached

    python = worker.call(op="modules", prefixes=["cryptography", "jwt"], importable=["cryptography"])
    assert python["importable"] == {"cryptography": False}, "the test must run without cryptography"
    assert python["loaded"] == [], f"token verification loaded {python['loaded']}"


def test_realtime_tokens_are_signed_under_pyodide_and_centrifugo_accepts_them(
    worker: PyodideWorker, auth_core: AuthCore, realtime: Centrifugo
) -> None:
    """POST /v1/realtime/token through the Workers entry: HS256 signed with the standard library.

    PyJWT is not in the upload (it imports ``ssl``, which npm Pyodide lacks): the tokens must still
    verify with CENTRIFUGO_TOKEN_SECRET, and the real Centrifugo must accept them.
    """
    path = "/v1/realtime/token"
    refused = worker.request("POST", path, admin=False)
    assert refused.status == 401, refused.body
    assert refused.json()["error"]["code"] == "unauthenticated"

    session = {"authorization": f"Bearer {auth_core.session_token('user-rt')}"}
    r = worker.request("POST", path, admin=False, headers=session)
    assert r.status == 200, r.body
    grant = r.json()
    assert grant["user"] == "user-rt" and grant["url"] == realtime.ws_url
    # the rules examples (lists, tasks, teams) get user-limited collection channels like private notes
    assert {g["channel"]: g["token"] for g in grant["channels"]} == {
        "notes:*#user-rt": None, "posts:*": None, "lists:*#user-rt": None, "tasks:*#user-rt": None,
        "teams:*#user-rt": None}
    claims = jwt.decode(grant["token"], realtime.token_secret, algorithms=["HS256"])
    assert claims["sub"] == "user-rt" and claims["exp"] - claims["iat"] == 600
    assert claims["exp"] == grant["expires_at"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(grant["token"], "another-secret-0123456789abcdef01234", algorithms=["HS256"])
    forbidden = worker.request("POST", path, admin=False, headers=session, body={"channels": ["notes:*#bob"]})
    assert forbidden.status == 403, forbidden.body

    admin = worker.request("POST", path, body={"channels": ["notes:*"]})
    assert admin.status == 200, admin.body
    [channel] = admin.json()["channels"]
    sub_claims = jwt.decode(channel["token"], realtime.token_secret, algorithms=["HS256"])
    assert sub_claims["channel"] == "notes:*" and sub_claims["sub"] == admin.json()["user"]

    async def connect_and_subscribe() -> None:
        async with Subscriber(realtime.ws_url, grant["token"]) as user:
            await user.subscribe("notes:*#user-rt")
        async with Subscriber(realtime.ws_url, admin.json()["token"]) as operator:
            await operator.subscribe("notes:*", channel["token"])

    run_on_own_loop(connect_and_subscribe())

    python = worker.call(op="modules", prefixes=["jwt", "ssl"], importable=["jwt"])
    assert python["importable"] == {"jwt": False}, "PyJWT must not travel in the upload"
    assert python["loaded"] == [], f"signing loaded {python['loaded']}"


def test_a_main_module_workerd_cannot_import_fails_the_boot(tmp_path: Path) -> None:
    """The same upload with ``main_module = "worker/entry.py"`` (the bundle's old main module): workerd
    imports it as ``worker/entry`` (python-entrypoint-helper.ts), which no finder resolves; the runner,
    importing the same way, must refuse to start."""
    worker, ready = _start(tmp_path, tmp_path / "d1.sqlite", None, main_module="worker/entry.py")
    try:
        assert not ready["ready"]
        assert "No module named 'worker/entry'" in ready["import_error"], ready["import_error"]
    finally:
        worker.close()


def test_unknown_path_is_a_json_404_through_the_workers_entry(worker: PyodideWorker) -> None:
    r = worker.request("GET", "/v1/no-such-thing")
    assert r.status == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "not_found"


def test_cors_preflight_and_marked_responses_through_the_workers_entry(worker: PyodideWorker) -> None:
    """The comma-separated CORS_ALLOWED_ORIGINS binding, and the headers crossing the FFI both ways."""
    asks = {"origin": APP_ORIGIN, "access-control-request-method": "POST"}
    r = worker.request("OPTIONS", "/v1/collections/notes/query", headers=asks, admin=False)
    assert r.status == 204 and r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert r.headers["access-control-allow-methods"] == "POST"
    refused = worker.request("OPTIONS", "/v1/collections/notes/query",
                             headers={**asks, "origin": "https://evil.telestack.test"}, admin=False)
    assert refused.status == 405 and "access-control-allow-origin" not in refused.headers
    error = worker.request("GET", "/v1/collections/notes/documents/x", headers={"origin": APP_ORIGIN},
                           admin=False)
    assert error.status == 401 and error.headers["access-control-allow-origin"] == APP_ORIGIN


def test_migrations_apply_through_the_d1_adapter_and_are_idempotent(
    worker: PyodideWorker, migrated: dict[str, Any]
) -> None:
    assert "error" not in migrated, f"worker.migrations over the D1 adapter failed: {migrated.get('error')}"
    assert {"0001_documents", "0002_outbox"} <= set(migrated["applied"])
    assert worker.call(op="migrate")["applied"] == []
    tables = {r["name"] for r in worker.sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"documents", "outbox", "_migrations"} <= tables


def test_health_reports_the_database_ok(worker: PyodideWorker) -> None:
    r = worker.request("GET", "/v1/health", admin=False)
    assert r.status == 200, r.body
    assert r.json()["checks"]["db"]["status"] == "ok"


def test_requests_without_credentials_or_with_bad_json_get_json_errors(worker: PyodideWorker) -> None:
    r = worker.request("POST", "/v1/collections/notes/documents", body={"data": {"title": "x"}}, admin=False)
    assert r.status == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    r = worker.request("POST", "/v1/collections/notes/documents", body="{not json")
    assert r.status == 400
    assert r.json()["error"]["code"] == "invalid_json"
    r = worker.request("GET", "/v1/collections/nope/documents/x")
    assert r.status == 404


def test_hostile_bodies_get_the_cpython_answer_through_the_workers_entry(worker: PyodideWorker) -> None:
    """The nastiest bodies, as raw bytes through entry.Default.fetch: 400 invalid_json, nothing written,
    and the security headers and request id on each answer, as under CPython."""
    before = worker.sql("SELECT count(*) AS n FROM documents")[0]["n"]
    for what, body in NASTY:
        r = worker.call(op="request", method="POST", path="/v1/collections/notes/documents",
                        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json",
                                 "x-request-id": f"pyodide-{len(what):04d}"},
                        body=None, body_base64=base64.b64encode(body).decode("ascii"))
        assert r["status"] == 400, (what, r["body"][:300])
        error = json.loads(r["body"])["error"]
        assert error["code"] == "invalid_json", (what, error)
        assert error["request_id"] == r["headers"]["x-request-id"] == f"pyodide-{len(what):04d}"
        assert r["headers"]["x-content-type-options"] == "nosniff"
        assert r["headers"]["cache-control"] == "no-store"
    assert worker.sql("SELECT count(*) AS n FROM documents")[0]["n"] == before
    edge = {"data": {"title": "edge", "meta": {"n": 2**53 - 1, "f": 1.5e300}}}
    r = worker.request("POST", "/v1/collections/notes/documents", body=edge)
    assert r.status == 201 and r.json()["data"] == edge["data"]
    spec = worker.request("GET", "/v1/openapi.json", admin=False)
    assert spec.status == 200 and spec.json()["openapi"].startswith("3.1")


def test_document_create_read_query_update_delete_land_in_sqlite(worker: PyodideWorker) -> None:
    data = {"title": "hello", "status": "open", "tags": ["x", "é"]}
    body = {"id": "n-1", "owner_id": "user-a", "data": data}
    r = worker.request("POST", "/v1/collections/notes/documents", body=body)
    assert r.status == 201, r.body
    assert r.headers["etag"] == '"1"'
    created = r.json()
    assert created["data"] == body["data"]
    assert created["owner_id"] == "user-a"

    # the row really is in the SQLite file behind the D1 binding, with its outbox event
    [row] = worker.sql(
        "SELECT owner_id, data, version FROM documents WHERE collection = 'notes' AND id = ?", "n-1"
    )
    assert row["owner_id"] == "user-a"
    assert row["version"] == 1
    assert json.loads(row["data"]) == body["data"]
    [event] = worker.sql("SELECT op, version, payload FROM outbox WHERE doc_id = ?", "n-1")
    assert (event["op"], event["version"]) == ("created", 1)

    r = worker.request("GET", "/v1/collections/notes/documents/n-1")
    assert r.status == 200
    assert r.json()["data"] == body["data"]

    worker.request("POST", "/v1/collections/notes/documents",
                   body={"id": "n-2", "owner_id": "user-a", "data": {"title": "other", "status": "done"}})
    r = worker.request("POST", "/v1/collections/notes/query",
                       body={"where": [["status", "==", "open"]], "count": True})
    assert r.status == 200, r.body
    result = r.json()
    assert [d["id"] for d in result["documents"]] == ["n-1"]
    assert result["count"] == 1

    r = worker.request("PATCH", "/v1/collections/notes/documents/n-1", body={"data": {"status": "done"}},
                       headers={"if-match": '"1"'})
    assert r.status == 200, r.body
    assert r.json()["version"] == 2
    r = worker.request("PATCH", "/v1/collections/notes/documents/n-1", body={"data": {"status": "open"}},
                       headers={"if-match": '"1"'})
    assert r.status == 412
    status = worker.sql("SELECT json_extract(data, '$.status') AS s FROM documents WHERE id = 'n-1'")
    assert status == [{"s": "done"}]

    r = worker.request("DELETE", "/v1/collections/notes/documents/n-1")
    assert r.status == 204
    assert worker.sql("SELECT id FROM documents WHERE id = 'n-1'") == []


def test_collections_over_a_bindings_5_kb_are_served_from_the_bundled_module(worker: PyodideWorker) -> None:
    """The Worker has no COLLECTIONS binding here: ``big`` (several times 5 KB of schema) is known only
    through the bundle's ``telestack_config`` module, imported by the Workers entry under Pyodide."""
    last = f"field_{BIG_FIELDS - 1}"
    ok = {"id": "big-1", "data": {"field_0": "a", last: "z" * 40}}
    r = worker.request("POST", "/v1/collections/big/documents", body=ok)
    assert r.status == 201, r.body
    too_long = {"id": "big-2", "data": {last: "z" * 41}}
    r = worker.request("POST", "/v1/collections/big/documents", body=too_long)
    assert r.status == 422, r.body
    assert r.json()["error"]["code"] == "schema_violation"
    loaded = worker.call(op="modules", prefixes=["telestack_config"], importable=[])["loaded"]
    assert loaded == ["telestack_config"], loaded


def test_a_document_without_owner_binds_null_through_the_ffi(worker: PyodideWorker) -> None:
    """Python None must reach D1 as SQL NULL (not JS undefined, which D1 refuses)."""
    r = worker.request("POST", "/v1/collections/settings/documents", body={"id": "site", "data": {"x": 1}})
    assert r.status == 201, r.body
    assert r.json()["owner_id"] is None
    assert worker.sql("SELECT owner_id FROM documents WHERE collection = 'settings' AND id = 'site'") == [
        {"owner_id": None}
    ]


def test_batch_is_all_or_nothing_through_d1_batch(worker: PyodideWorker) -> None:
    before = worker.sql("SELECT count(*) AS n FROM documents")[0]["n"]
    writes = [
        {"op": "create", "collection": "notes", "id": "b-1", "owner_id": "user-b", "data": {"title": "ok"}},
        {"op": "create", "collection": "notes", "id": "b-2", "owner_id": "user-b", "data": {"nope": 1}},
    ]
    r = worker.request("POST", "/v1/batch", body={"writes": writes})
    assert 400 <= r.status < 500, r.body
    assert worker.sql("SELECT count(*) AS n FROM documents")[0]["n"] == before
    r = worker.request("POST", "/v1/batch", body={"writes": writes[:1]})
    assert r.status == 200, r.body
    assert worker.sql("SELECT id FROM documents WHERE id = 'b-1'") == [{"id": "b-1"}]


def test_a_team_change_writes_its_tasks_events_in_the_d1_batch(worker: PyodideWorker) -> None:
    """The dependents' stage, events and cleanup (worker/dependent_events.py) run inside D1's batch."""
    data = {"name": "t", "members": ["m1", "m2"], "editors": []}
    team = {"id": "py-t1", "owner_id": "user-t", "data": data}
    assert worker.request("POST", "/v1/collections/teams/documents", body=team).status == 201
    task = {"id": "py-k1", "owner_id": "user-t", "data": {"title": "k", "team_id": "py-t1"}}
    assert worker.request("POST", "/v1/collections/tasks/documents", body=task).status == 201
    moved = {"data": {"members": ["m2", "m3"]}}
    r = worker.request("PATCH", "/v1/collections/teams/documents/py-t1", body=moved)
    assert r.status == 200, r.body
    rows = worker.sql("SELECT op, readers, prior_readers FROM outbox WHERE doc_id = 'py-k1' ORDER BY seq")
    assert rows == [{"op": "created", "readers": '["m1","m2"]', "prior_readers": None},
                    {"op": "updated", "readers": '["m3"]', "prior_readers": '["m1"]'}]
    assert worker.sql("SELECT count(*) AS n FROM dependent_readers") == [{"n": 0}]


def test_d1_constraint_errors_map_to_409_and_other_readers_see_commits(
    worker: PyodideWorker, booted: tuple[PyodideWorker, dict[str, Any], Path]
) -> None:
    """A duplicate id fails inside D1's batch; the adapter must recognise D1's error text as a conflict."""
    doc = {"id": "dup-1", "owner_id": "user-c", "data": {"title": "first"}}
    assert worker.request("POST", "/v1/collections/notes/documents", body=doc).status == 201
    again = {**doc, "data": {"title": "second"}}
    r = worker.request("POST", "/v1/collections/notes/documents", body=again)
    assert r.status == 409, r.body
    assert r.json()["error"]["code"] == "already_exists"
    # an independent reader of the SQLite file (not the runner's connection) sees the one committed row
    with contextlib.closing(sqlite3.connect(booted[2])) as conn:
        rows = conn.execute(
            "SELECT json_extract(data, '$.title') FROM documents WHERE id = 'dup-1'"
        ).fetchall()
        events = conn.execute("SELECT count(*) FROM outbox WHERE doc_id = 'dup-1'").fetchone()
    assert rows == [("first",)]
    assert events == (1,)


BOOKMARK = "x-telestack-bookmark"


def test_the_bookmark_round_trips_through_d1_sessions_and_reads_your_writes(worker: PyodideWorker) -> None:
    """D1 read replication through the Workers entry: env.DB.withSession, a lagging replica, bookmarks.

    tests/pyodide/d1shim.mjs keeps one read replica; with replication paused it lags. A read without
    a bookmark may be served by it (stale), a read with the bookmark of the client's own write never
    is; the header the gateway returns advances with the write.
    """
    path = "/v1/collections/notes/documents"
    r = worker.request("POST", path, body={"id": "bm-1", "owner_id": "u-bm", "data": {"title": "one"}})
    assert r.status == 201, r.body
    first = r.headers[BOOKMARK]
    assert re.fullmatch(r"[0-9a-f]{8}-0{8}-0{8}-[0-9a-f]{32}", first), first
    assert worker.request("GET", f"{path}/bm-1").status == 200  # the replica has caught up with bm-1
    worker.call(op="replication", paused=True)
    try:
        r = worker.request("POST", path, body={"id": "bm-2", "owner_id": "u-bm", "data": {"title": "two"}},
                           headers={BOOKMARK: first})
        assert r.status == 201, r.body
        written = r.headers[BOOKMARK]
        assert written > first
        reads = worker.call(op="replication")["reads"]
        stale = worker.request("GET", f"{path}/bm-2")  # no bookmark: the lagging replica may answer
        assert stale.status == 404, stale.body
        assert stale.headers[BOOKMARK] < written
        mine = worker.request("GET", f"{path}/bm-2", headers={BOOKMARK: written})
        assert mine.status == 200, mine.body  # read-your-writes
        assert mine.headers[BOOKMARK] >= written
        older = worker.request("GET", f"{path}/bm-1", headers={BOOKMARK: first})
        assert older.status == 200 and older.headers[BOOKMARK] >= first
        after = worker.call(op="replication")["reads"]
        # the stale read and the bm-1 read were the replica's; reading your write took the primary
        assert (after["replica"] - reads["replica"], after["primary"] - reads["primary"]) == (2, 1)
    finally:
        worker.call(op="replication", paused=False)

    for bad in ("two words", "00000001-00000000-00000000-" + "0" * 32):  # not a token; another database's
        r = worker.request("GET", f"{path}/bm-1", headers={BOOKMARK: bad})
        assert r.status == 400, r.body
        assert r.json()["error"]["code"] == "invalid_bookmark"


def test_memory_after_serving_requests(worker: PyodideWorker, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last: the isolate's footprint once the routes above were exercised (printed, not asserted)."""
    for i in range(20):
        body = {"id": f"m-{i}", "owner_id": "user-m", "data": {"title": f"t{i}", "status": "open"}}
        assert worker.request("POST", "/v1/collections/notes/documents", body=body).status == 201
    r = worker.request("POST", "/v1/collections/notes/query", body={"where": [["$owner_id", "==", "user-m"]]})
    assert r.status == 200, r.body
    assert len(r.json()["documents"]) == 20
    mem = worker.call(op="stats")["memory"]
    with capsys.disabled():
        print(f"\n[pyodide-compat] after {worker.requests} requests: wasm heap in use "
              f"{_mb(mem['wasm_sbrk_bytes'])}, linear memory {_mb(mem['wasm_heap_bytes'])}, "
              f"node rss {_mb(mem['node_rss_bytes'])}")


def test_committed_write_is_published_and_cron_drains_under_pyodide(worker: PyodideWorker) -> None:
    body = {"id": "rt-1", "data": {"title": "published"}, "owner_id": "u-rt"}
    r = worker.request("POST", "/v1/collections/notes/documents", body=body)
    assert r.status == 201, r.body
    # the publish was handed to ctx.waitUntil and had not run when the response was returned ...
    assert r.headers[WAIT_UNTIL] == "1 registered, 1 running"
    # ... and ran after it (the runner settles waitUntil work before answering): published to the real
    # Centrifugo through the Workers fetch adapter
    [event] = worker.sql("SELECT seq, sent_at, attempts FROM outbox WHERE doc_id = ?", "rt-1")
    assert event["sent_at"] is not None, event
    assert worker.request("GET", "/v1/collections/notes/documents/rt-1").headers[WAIT_UNTIL] == (
        "0 registered, 0 running")  # a read leaves nothing to publish

    # a publish that failed leaves the row pending; the cron trigger (scheduled) drains it
    worker.call(op="sql", sql="UPDATE outbox SET sent_at = NULL WHERE seq = ?", params=[event["seq"]])
    reply = worker.call(op="scheduled")
    assert not reply["wait_until_errors"], reply["wait_until_errors"]
    [after] = worker.sql("SELECT sent_at FROM outbox WHERE seq = ?", event["seq"])
    assert after["sent_at"] is not None


def test_a_hung_centrifugo_costs_the_publish_its_fetch_timeout(
    worker: PyodideWorker, realtime: Centrifugo
) -> None:
    """The Workers fetch adapter honours its timeout (AbortSignal.timeout): the hung call is aborted.

    Were it ignored, the publish would wait until the outbox's own deadline cancelled it, recording
    nothing; aborted, the drain records the failure and the row waits for the cron.
    """
    body = {"id": "hung-1", "data": {"title": "held"}, "owner_id": "u-rt"}
    with realtime.hung():
        r = worker.request("POST", "/v1/collections/notes/documents", body=body)
        assert r.status == 201, r.body
        assert r.headers[WAIT_UNTIL] == "1 registered, 1 running"
        [row] = worker.sql("SELECT sent_at, attempts, last_error FROM outbox WHERE doc_id = ?", "hung-1")
        assert row["sent_at"] is None and row["attempts"] == 1, row
        assert row["last_error"].startswith("centrifugo unreachable"), row
    reply = worker.call(op="scheduled")  # Centrifugo is back: the cron publishes what the write could not
    assert not reply["wait_until_errors"], reply["wait_until_errors"]
    [row] = worker.sql("SELECT sent_at FROM outbox WHERE doc_id = ?", "hung-1")
    assert row["sent_at"] is not None



def test_a_hung_auth_core_is_a_503_within_the_call_deadline_under_pyodide(
    worker: PyodideWorker, auth_core: AuthCore
) -> None:
    """The request path's deadline on Workers: the fetch adapter's AbortSignal ends a hung core call.

    The core's port keeps accepting connections that nobody answers (as a SIGSTOP'd core does);
    the sign-in is a 503 ``auth_unavailable`` after the CDI call's deadline, not a hang.
    """
    from worker import supertokens

    port = auth_core.server.server_address[1]
    handler = auth_core.server.RequestHandlerClass
    auth_core.stop()
    try:
        with socket.socket() as silent:
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            silent.bind(("127.0.0.1", port))
            silent.listen(16)
            started = time.monotonic()
            r = worker.request("POST", "/v1/auth/signin", admin=False,
                               body={"email": "hung@example.com", "password": "correct horse battery"})
            elapsed = time.monotonic() - started
        assert (r.status, r.json()["error"]["code"]) == (503, "auth_unavailable"), r.body
        # generous slack: the point is that the call is aborted at all (Pyodide in Node is slow to start)
        assert elapsed < supertokens.CALL_TIMEOUT_SECONDS + 10, f"signin took {elapsed:.1f}s"
    finally:  # the core answers again on the same port for whatever runs after
        auth_core.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=auth_core.server.serve_forever, daemon=True).start()


# --- OAuth / OpenID Connect sign-in under Pyodide ------------------------------------------------

OAUTH_APP = "https://app.telestack.test/signed-in"


@dataclass
class OAuthWorker:
    worker: PyodideWorker
    op: OidcProvider


@pytest.fixture(scope="module")
def oauth_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorker]:
    """A second Worker whose providers' calls, ID-token signatures and session JWKS all go through the
    Workers adapters: fetch to a real OpenID Provider and the CDI stand-in, WebCrypto for RS256."""
    tmp = tmp_path_factory.mktemp("pyodide-oauth")
    base = "https://gateway.telestack.test"  # the runner's baseUrl
    standin = start_standin(tmp)
    op = start_oidc_provider(tmp, [f"{base}/v1/auth/oauth/corp/callback", OAUTH_APP])
    worker = None
    try:
        worker, ready = _start(tmp, tmp / "d1.sqlite", None, auth_url=standin.url, extra_bindings={
            "AUTH_API_KEY": standin.api_key,
            "OAUTH_PROVIDERS": json.dumps({"corp": {"issuer": op.issuer, "client_id": OIDC_CLIENT_ID}}),
            "OAUTH_CLIENT_SECRETS": json.dumps({"corp": op.client_secret}),
            "OAUTH_REDIRECT_URIS": OAUTH_APP, "OAUTH_CALLBACK_BASE_URL": base})
        if not ready["ready"]:
            pytest.fail(f"the bundle failed to import under Pyodide: {ready['import_error']}")
        worker.call(op="migrate")
        yield OAuthWorker(worker, op)
    finally:
        if worker is not None:
            worker.close()
        op.stop()
        standin.stop()


def _oidc_sign_in(oauth_worker: OAuthWorker) -> tuple[Reply, str, str]:
    """A whole sign-in through the Worker: (the token exchange's reply, the one-time code, the verifier)."""
    worker, op = oauth_worker.worker, oauth_worker.op
    verifier = base64.urlsafe_b64encode(os.urandom(40)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    started = worker.request("POST", "/v1/auth/oauth/corp/start", admin=False,
                             body={"redirect_uri": OAUTH_APP, "code_challenge": challenge})
    assert started.status == 200, started.body
    landed = op.log_in(started.json()["authorization_url"])
    back = worker.request("GET", landed.removeprefix("https://gateway.telestack.test"), admin=False)
    assert back.status == 302, back.body
    location = back.headers["location"]
    assert location.startswith(OAUTH_APP + "?code="), location
    code = location.split("?code=", 1)[1].split("&", 1)[0]
    tokens = worker.request("POST", "/v1/auth/oauth/token", admin=False,
                            body={"code": code, "code_verifier": verifier})
    assert tokens.status == 200, tokens.body
    return tokens, code, verifier


def test_oidc_sign_in_runs_under_pyodide_with_webcrypto_and_fetch(oauth_worker: OAuthWorker) -> None:
    worker = oauth_worker.worker
    tokens, code, verifier = _oidc_sign_in(oauth_worker)
    me = worker.request("GET", "/v1/auth/me", admin=False,
                        headers={"authorization": f"Bearer {tokens.json()['access_token']}"})
    assert me.status == 200 and me.json()["user"]["id"] == tokens.json()["user"]["id"], me.body
    assert me.json()["user"]["email_verified"] is True, "the OP vouches for this user's email"
    replay = worker.request("POST", "/v1/auth/oauth/token", admin=False,
                            body={"code": code, "code_verifier": verifier})
    assert replay.status == 400 and replay.json()["error"]["code"] == "invalid_code"
    python = worker.call(op="modules", prefixes=["cryptography", "jwt"], importable=["cryptography"])
    assert python["importable"] == {"cryptography": False}, "the ID token must be checked without it"
    assert python["loaded"] == [], f"the sign-in loaded {python['loaded']}"



def test_the_bundled_auth_config_is_enforced_under_pyodide(oauth_worker: OAuthWorker) -> None:
    """No AUTH_CONFIG binding here: config/auth.yaml's metadata schema (``display_name`` a string of at
    most 100) reaches the Worker only through the bundle's ``telestack_config`` module. The gateway's
    default is no schema, so a 422 shows the bundled config in force."""
    from worker.adapters.config_files import load_auth_config

    schema = load_auth_config(CONFIG)["user_metadata"]["schema"]
    assert schema["properties"]["display_name"] == {"type": "string", "maxLength": 100}
    worker = oauth_worker.worker
    tokens, _, _ = _oidc_sign_in(oauth_worker)
    bearer = {"authorization": f"Bearer {tokens.json()['access_token']}"}
    for refused in ({"display_name": 42}, {"display_name": "x" * 101}):
        r = worker.request("PATCH", "/v1/auth/me/metadata", admin=False, headers=bearer, body=refused)
        assert r.status == 422 and r.json()["error"]["code"] == "schema_violation", r.body
    r = worker.request("PATCH", "/v1/auth/me/metadata", admin=False, headers=bearer,
                       body={"display_name": "Ada"})
    assert r.status == 200 and r.json()["metadata"]["display_name"] == "Ada", r.body
    r = worker.request("GET", "/v1/auth/me/metadata", admin=False, headers=bearer)
    assert r.status == 200 and r.json()["metadata"] == {"display_name": "Ada"}, r.body


# --- verification and reset mail under Pyodide: through the relay, over fetch ----------------------

RELAY_KEY = "pyodide-relay-key-0123456789abcdefghij"
RELAY_LOGIN = ("provider-user", "provider-password-0123")


@dataclass
class MailWorker:
    worker: PyodideWorker
    provider: Mailpit


@pytest.fixture(scope="module")
def mail_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailWorker]:
    """A Worker whose mail goes as it does on a cloud stack: fetch to a Mailpit relay (run with the
    relay container's rendered environment), which relays it to a second Mailpit, the SMTP provider."""
    tmp = tmp_path_factory.mktemp("pyodide-mail")
    standin = start_standin(tmp)
    provider = start_mailpit(tmp, smtp_login=RELAY_LOGIN, tls=self_signed_certificate(tmp))
    (tmp / "relay").mkdir()
    relay = start_relay_to(provider, tmp / "relay", RELAY_KEY, RELAY_LOGIN)
    worker = None
    try:
        worker, ready = _start(tmp, tmp / "d1.sqlite", None, auth_url=standin.url, extra_bindings={
            "AUTH_API_KEY": standin.api_key, "MAIL_RELAY_URL": relay.api_url, "MAIL_RELAY_KEY": RELAY_KEY,
            "SMTP_FROM": MAIL_SENDER, "AUTH_ACTION_URL": MAIL_ACTION_URL})
        if not ready["ready"]:
            pytest.fail(f"the bundle failed to import under Pyodide: {ready['import_error']}")
        worker.call(op="migrate")
        yield MailWorker(worker, provider)
    finally:
        if worker is not None:
            worker.close()
        for server in (relay, provider, standin):
            server.stop()


def test_reset_and_verification_mail_go_through_the_relay_under_pyodide(mail_worker: MailWorker) -> None:
    """Before the relay, these endpoints answered 503 mail_not_configured on Workers (no SMTP client)."""
    worker, provider = mail_worker.worker, mail_worker.provider
    email = f"pyodide-{os.urandom(4).hex()}@example.com"
    up = worker.request("POST", "/v1/auth/signup", admin=False,
                        body={"email": email, "password": "correct horse battery"})
    assert up.status == 201, up.body
    forgot = worker.request("POST", "/v1/auth/password/forgot", admin=False, body={"email": email})
    assert forgot.status == 202, forgot.body
    link = provider.link_to(email)
    assert link.startswith(MAIL_ACTION_URL + "?action=reset-password&token="), link
    reset = worker.request("POST", "/v1/auth/password/reset", admin=False,
                           body={"token": link.split("token=", 1)[1], "new_password": "a new password here"})
    assert reset.status == 200, reset.body
    verification = worker.request("POST", "/v1/auth/email/verification", admin=False,
                                  headers={"authorization": f"Bearer {up.json()['access_token']}"})
    assert verification.status == 202, verification.body
    assert "action=verify-email" in provider.link_to(email, count=2)
    python = worker.call(op="modules", prefixes=["smtplib", "ssl", "worker.adapters.smtp"])
    assert python["loaded"] == [], f"mail under Workers loaded {python['loaded']}"


if __name__ == "__main__":  # pragma: no cover - convenience: python tests/test_pyodide_compat.py
    sys.exit(pytest.main([__file__, "-v", "-s"]))
