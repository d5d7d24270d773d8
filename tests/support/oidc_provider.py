"""A real OpenID Provider on a free loopback port: zitadel/oidc v3's example OP, built from the Go proxy.

The program is tests/support/oidc_op/main.go (our own twenty lines around the library's example
server: loopback issuer, the clients the test names). :func:`oidc_op_binary` builds it in a
throw-away module under ``${TELESTACK_CACHE:-~/.cache/telestack}/build`` and caches the binary in
``bin/oidc-op-<version>-<digest of main.go>/``, so a fresh machine builds it once (about ten seconds
with a warm Go module cache) and every later run reuses it.

What the OP gives the tests: discovery, RS256 ID tokens signed by a key published in its JWKS,
PKCE S256, single-use authorization codes, client_secret_basic, a userinfo endpoint, and a
username/password form a test can post without a browser (:meth:`OidcProvider.log_in`). Its users
are :data:`USERS`: the library example's own user, whose email the OP vouches for, and one whose
email it does not (``email_verified: false``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.support.paths import ROOT, free_port
from tests.support.process import Process, answers, start_process, stop_process

ZITADEL_OIDC_VERSION = "v3.49.2"
MAIN_GO = ROOT / "tests/support/oidc_op/main.go"
#: the example OP's built-in user (storage.NewUserStore) for a 127.0.0.1 issuer
USERNAME = "test-user@127.0.0.1"
PASSWORD = "verysecure"
EMAIL = "test-user@zitadel.ch"
#: a user whose email the OP reports with ``email_verified: false``
UNVERIFIED_USERNAME = "unverified-user@127.0.0.1"
UNVERIFIED_EMAIL = "unverified-user@example.com"
#: the OP's users as the library's storage.User JSON (keyed by subject)
USERS = {
    "id1": {"ID": "id1", "Username": USERNAME, "Password": PASSWORD, "FirstName": "Test", "LastName": "User",
            "Email": EMAIL, "EmailVerified": True, "PreferredLanguage": "de"},
    "id3": {"ID": "id3", "Username": UNVERIFIED_USERNAME, "Password": PASSWORD, "FirstName": "Not",
            "LastName": "Verified", "Email": UNVERIFIED_EMAIL, "EmailVerified": False,
            "PreferredLanguage": "en"},
}
#: the OP's two confidential clients (main.go); tokens for "other" carry another audience
CLIENT_ID = "web"
OTHER_CLIENT_ID = "other"


def _cache() -> Path:
    return Path(os.environ.get("TELESTACK_CACHE", Path.home() / ".cache/telestack"))


def oidc_op_binary() -> Path:
    """The built OP, building it first when this version of main.go has no cached binary."""
    digest = hashlib.sha256(MAIN_GO.read_bytes()).hexdigest()[:12]
    dest = _cache() / "bin" / f"oidc-op-{ZITADEL_OIDC_VERSION}-{digest}"
    binary = dest / "oidc-op"
    if binary.exists():
        return binary
    module = _cache() / "build" / f"oidc-op-{ZITADEL_OIDC_VERSION}"
    module.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MAIN_GO, module / "main.go")
    (module / "go.mod").write_text("module telestack.local/oidc-op\n\ngo 1.25\n")
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -trimpath"}
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for argv in (["go", "get", f"github.com/zitadel/oidc/v3@{ZITADEL_OIDC_VERSION}"],
                 ["go", "build", "-ldflags", "-s -w", "-o", str(tmp / "oidc-op"), "."]):
        done = subprocess.run(argv, cwd=module, env=env, capture_output=True, text=True, timeout=900,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"building the OIDC provider failed: {' '.join(argv)}\n{done.stderr[-2000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)  # whole or not at all: a half-built binary is never cached
    return binary


@dataclass
class OidcProvider:
    issuer: str
    client_secret: str
    process: Process

    def stop(self) -> None:
        stop_process(self.process)

    def log_in(self, authorization_url: str, username: str = USERNAME, password: str = PASSWORD) -> str:
        """Follow the authorization URL as a browser would, posting the login form; the final redirect.

        Returns the URL the OP redirects the user to (the gateway's callback with code and state).
        """
        with httpx.Client(follow_redirects=False, timeout=10, trust_env=False) as http:
            r = http.get(authorization_url)
            assert r.status_code in (302, 303), f"OP authorize: {r.status_code} {r.text[:300]}"
            login_url = urljoin(self.issuer, r.headers["location"])
            request_id = parse_qs(urlsplit(login_url).query)["authRequestID"][0]
            r = http.post(urljoin(self.issuer, "login/username"),
                          data={"id": request_id, "username": username, "password": password})
            assert r.status_code in (302, 303), f"OP login: {r.status_code} {r.text[:300]}"
            r = http.get(urljoin(self.issuer, r.headers["location"]))
            assert r.status_code in (302, 303), f"OP callback: {r.status_code} {r.text[:300]}"
            return r.headers["location"]

    def direct_tokens(self, client_id: str, redirect_uri: str, nonce: str) -> dict[str, str]:
        """A code flow run by the test itself as ``client_id`` (e.g. to hold a token for another audience)."""
        import base64
        import secrets

        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with httpx.Client(timeout=10, trust_env=False) as http:
            config = http.get(self.issuer + ".well-known/openid-configuration").json()
            query = httpx.QueryParams({
                "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                "scope": "openid email", "state": "direct", "nonce": nonce, "code_challenge": challenge,
                "code_challenge_method": "S256"})
            back = self.log_in(f"{config['authorization_endpoint']}?{query}")
            code = parse_qs(urlsplit(back).query)["code"][0]
            r = http.post(config["token_endpoint"], auth=(client_id, self.client_secret), data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier})
            assert r.status_code == 200, r.text
            return r.json()


def start_oidc_provider(workdir: Path, redirect_uris: list[str]) -> OidcProvider:
    binary = oidc_op_binary()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    secret = "op-secret-" + hashlib.sha256(os.urandom(16)).hexdigest()[:24]
    if any("," in u for u in redirect_uris) or not all(re.match(r"^https?://", u) for u in redirect_uris):
        raise ValueError(f"redirect URIs must be http(s) URLs without commas: {redirect_uris}")
    users = workdir / "oidc-op-users.json"
    users.write_text(json.dumps(USERS))
    process = start_process(
        [str(binary), "-port", str(port), "-redirect-uris", ",".join(redirect_uris), "-users", str(users)],
        log=workdir / "oidc-op.log",
        ready=lambda: answers(issuer + ".well-known/openid-configuration"),
        what="OIDC provider",
        env={"PATH": os.environ.get("PATH", ""), "OIDC_OP_CLIENT_SECRET": secret},
    )
    return OidcProvider(issuer=issuer, client_secret=secret, process=process)
