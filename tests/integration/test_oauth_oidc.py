"""OpenID Connect sign-in end to end: the gateway (uvicorn, ``worker.asgi``) against a real OpenID Provider.

The provider is zitadel/oidc's example OP built from the Go module proxy (tests/support/oidc_provider.py):
real discovery, RS256 ID tokens and JWKS, PKCE, single-use codes. The user's browser is played by
httpx (the OP's login form is posted), the app by the test. The core is the CDI stand-in.

The refused cases that need a token the OP would not issue to this flow (tampered, for another
audience, with another nonce) or a clock past the token's expiry alter the one response in flight:
:class:`Intercept` wraps the gateway's outbound HTTP port and, when armed, rewrites the OP's token
response on its way back to the gateway (the OP issued every token involved; only the splice is ours).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from tests.support.oidc_provider import (
    CLIENT_ID,
    EMAIL,
    OTHER_CLIENT_ID,
    UNVERIFIED_EMAIL,
    UNVERIFIED_USERNAME,
    USERNAME,
    OidcProvider,
    start_oidc_provider,
)
from tests.support.paths import CONFIG, free_port
from tests.support.standin import Standin, start_standin
from worker.adapters.config_files import load_collections
from worker.asgi import create_app
from worker.outbound import HttpClient, HttpResponse

ADMIN_KEY = "gateway-admin-key-" + uuid.uuid4().hex
APP_REDIRECT = "http://127.0.0.1:9/app/signed-in"
PROVIDER = "corp"
#: the shipped collections plus two whose create rule needs what a session's claims say
RULE_COLLECTIONS = {
    "verified_only": {"rules": {"read": "auth.id == doc.owner_id", "create": "auth.email_verified"}},
    "editors_only": {"rules": {"read": "auth.id == doc.owner_id", "create": "'editor' in auth.roles"}},
}


class Intercept:
    """The gateway's outbound port, passing every call through; when armed, rewrites token responses."""

    def __init__(self, inner: HttpClient) -> None:
        self.inner = inner
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:  # noqa: ASYNC109
        resp = await self.inner.request(method, url, headers=headers, body=body, timeout=timeout)
        token_response = method == "POST" and url.endswith("/oauth/token") and resp.status == 200
        if self.rewrite is not None and token_response:
            resp = HttpResponse(resp.status, json.dumps(self.rewrite(json.loads(resp.body))).encode(),
                                resp.headers)
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()  # type: ignore[attr-defined]


@dataclass
class Stack:
    url: str
    http: httpx.Client
    op: OidcProvider
    intercept: Intercept
    app: Any
    standin: Standin

    def start(self, redirect_uri: str = APP_REDIRECT) -> tuple[str, str]:
        """A new sign-in: (the OP authorization URL, the app's PKCE verifier)."""
        verifier = secrets.token_urlsafe(48)
        r = self.http.post(f"/v1/auth/oauth/{PROVIDER}/start",
                           json={"redirect_uri": redirect_uri, "code_challenge": _s256(verifier)})
        assert r.status_code == 200, r.text
        return r.json()["authorization_url"], verifier

    def callback(self, url: str) -> httpx.Response:
        """The browser arriving at the gateway's callback (``url`` is where the OP redirected it)."""
        assert url.startswith(self.url), url
        return self.http.get(url[len(self.url):])

    def sign_in(self, username: str = USERNAME) -> tuple[dict[str, str], str]:
        """A whole flow up to the app's redirect: (its query parameters, the app's verifier)."""
        authorization_url, verifier = self.start()
        r = self.callback(self.op.log_in(authorization_url, username))
        return _app_redirect(r), verifier

    def session(self, username: str = USERNAME) -> dict[str, Any]:
        """A whole sign-in as ``username``, through to the app's session tokens."""
        back, verifier = self.sign_in(username)
        r = self.exchange(back["code"], verifier)
        assert r.status_code == 200, r.text
        return r.json()

    def me(self, access_token: str) -> dict[str, Any]:
        r = self.http.get("/v1/auth/me", headers={"authorization": f"Bearer {access_token}"})
        assert r.status_code == 200, r.text
        return r.json()

    def create(self, collection: str, access_token: str) -> httpx.Response:
        return self.http.post(f"/v1/collections/{collection}/documents", json={"data": {"n": 1}},
                              headers={"authorization": f"Bearer {access_token}"})

    def exchange(self, code: str, verifier: str) -> httpx.Response:
        return self.http.post("/v1/auth/oauth/token", json={"code": code, "code_verifier": verifier})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _app_redirect(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 302, f"{r.status_code} {r.text[:300]}"
    location = r.headers["location"]
    assert location.startswith(APP_REDIRECT + "?"), location
    assert r.headers["cache-control"] == "no-store"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _serve(tmp: Path, standin: Standin) -> Iterator[Stack]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    op = start_oidc_provider(tmp, [f"{base}/v1/auth/oauth/{PROVIDER}/callback", APP_REDIRECT])
    providers = {PROVIDER: {"kind": "oidc", "issuer": op.issuer, "client_id": CLIENT_ID}}
    env = {"TELESTACK_ADMIN_KEY": ADMIN_KEY, "TELESTACK_AUTH_URL": standin.url,
           "TELESTACK_AUTH_API_KEY": standin.api_key, "TELESTACK_DB_PATH": str(tmp / "gateway.sqlite3"),
           "TELESTACK_OAUTH_PROVIDERS": json.dumps(providers),
           "TELESTACK_OAUTH_CLIENT_SECRETS": json.dumps({PROVIDER: op.client_secret}),
           "TELESTACK_OAUTH_REDIRECT_URIS": f"{APP_REDIRECT},http://127.0.0.1:9/other",
           "TELESTACK_OAUTH_CALLBACK_BASE_URL": base}
    collections = load_collections(CONFIG)
    env["TELESTACK_COLLECTIONS"] = json.dumps({"collections": {**collections["collections"],
                                                               **RULE_COLLECTIONS}})
    app = create_app(env)
    intercept = Intercept(app.gateway.http)
    app.gateway.http = intercept  # before the first request builds the services that hold it
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", ws="none", loop="asyncio", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    client = httpx.Client(base_url=base, timeout=30, trust_env=False)
    try:
        yield Stack(base, client, op, intercept, app, standin)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)
        op.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("oauth")
    s = start_standin(tmp)
    try:
        yield from _serve(tmp, s)
    finally:
        s.stop()


@pytest.fixture(autouse=True)
def _disarm(stack: Stack) -> Iterator[None]:
    yield
    stack.intercept.rewrite = None
    stack.app.gateway.oauth.clock = time.time


# --- the flow ------------------------------------------------------------------------------

def test_full_flow_signs_in_and_the_session_works_with_a_stable_user_id(stack: Stack) -> None:
    assert stack.http.get("/v1/auth/oauth/providers").json() == {"providers": [PROVIDER]}
    authorization_url, verifier = stack.start()
    params = _query(authorization_url)
    assert authorization_url.startswith(stack.op.issuer)
    assert params["code_challenge_method"] == "S256" and params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == f"{stack.url}/v1/auth/oauth/{PROVIDER}/callback"
    assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
    back = _app_redirect(stack.callback(stack.op.log_in(authorization_url)))
    assert set(back) == {"code", "provider"}  # a one-time code, never a token, in the URL
    r = stack.exchange(back["code"], verifier)
    assert r.status_code == 200, r.text
    signed_in = r.json()
    user = signed_in["user"]
    assert user["email"] == EMAIL and user["new_user"] is True  # from the OP's userinfo
    me = stack.http.get("/v1/auth/me", headers={"authorization": f"Bearer {signed_in['access_token']}"})
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"], me.text
    note = stack.http.post("/v1/collections/notes/documents", json={"data": {"title": "from OIDC"}},
                           headers={"authorization": f"Bearer {signed_in['access_token']}"})
    assert note.status_code == 201 and note.json()["owner_id"] == user["id"], note.text

    again, verifier2 = stack.sign_in()
    second = stack.exchange(again["code"], verifier2).json()["user"]
    assert second["id"] == user["id"] and second["new_user"] is False


# --- what the session says: email_verified and roles, as for email/password sessions ---------

def test_an_email_the_provider_vouches_for_is_verified_and_passes_a_verified_only_rule(stack: Stack) -> None:
    signed_in = stack.session()
    me = stack.me(signed_in["access_token"])
    assert me["user"] == {"id": signed_in["user"]["id"], "email": EMAIL, "email_verified": True}
    assert me["roles"] == []
    assert _claims(signed_in["access_token"])["email_verified"] is True
    r = stack.create("verified_only", signed_in["access_token"])
    assert r.status_code == 201, r.text


def test_an_email_the_provider_does_not_vouch_for_is_unverified_and_refused_by_the_rule(stack: Stack) -> None:
    signed_in = stack.session(UNVERIFIED_USERNAME)
    user_id = signed_in["user"]["id"]
    assert signed_in["user"]["email"] == UNVERIFIED_EMAIL
    assert stack.me(signed_in["access_token"])["user"]["email_verified"] is False
    r = stack.create("verified_only", signed_in["access_token"])
    assert r.status_code == 403, r.text

    # verified later through the core's email-verification recipe (what the mailed link spends):
    # the next sign-in's session says so, whatever the provider keeps reporting
    cdi = httpx.Client(base_url=stack.standin.url, trust_env=False, timeout=10, headers={
        "api-key": stack.standin.api_key, "cdi-version": "5.6", "rid": "emailverification"})
    with cdi:
        pair = {"userId": user_id, "email": UNVERIFIED_EMAIL}
        token = cdi.post("/recipe/user/email/verify/token", json=pair)
        assert token.json()["status"] == "OK", token.text
        spent = cdi.post("/recipe/user/email/verify",
                         json={"method": "token", "token": token.json()["token"]})
        assert spent.json()["status"] == "OK", spent.text
    again = stack.session(UNVERIFIED_USERNAME)
    assert again["user"]["id"] == user_id
    assert stack.me(again["access_token"])["user"]["email_verified"] is True
    assert stack.create("verified_only", again["access_token"]).status_code == 201


def test_roles_assigned_by_the_admin_reach_an_oauth_session_at_refresh_and_at_sign_in(stack: Stack) -> None:
    signed_in = stack.session()
    user_id, access = signed_in["user"]["id"], signed_in["access_token"]
    assert stack.create("editors_only", access).status_code == 403
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    assert stack.http.put("/v1/auth/roles/editor", headers=admin).status_code in (200, 201)
    r = stack.http.put(f"/v1/auth/users/{user_id}/roles/editor", headers=admin)
    assert r.status_code == 200 and r.json()["sessions_updated"] >= 1, r.text
    assert stack.me(access)["roles"] == []  # a token keeps the roles it was signed with
    refreshed = stack.http.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new_access = refreshed.json()["access_token"]
    assert stack.me(new_access)["roles"] == ["editor"]
    assert stack.create("editors_only", new_access).status_code == 201
    # a later sign-in reads the roles from the core when it opens the session
    assert stack.me(stack.session()["access_token"])["roles"] == ["editor"]
    assert stack.http.delete(f"/v1/auth/users/{user_id}/roles/editor", headers=admin).status_code == 200
    assert stack.me(stack.session()["access_token"])["roles"] == []


def test_the_callback_refuses_a_state_it_did_not_issue(stack: Stack) -> None:
    authorization_url, _ = stack.start()
    landed = stack.op.log_in(authorization_url)
    forged = landed.replace(f"state={_query(landed)['state']}", f"state={secrets.token_urlsafe(32)}")
    r = stack.callback(forged)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_state"
    no_state = stack.http.get(f"/v1/auth/oauth/{PROVIDER}/callback?code=x")
    assert no_state.status_code == 400 and no_state.json()["error"]["code"] == "invalid_state"


def test_a_state_works_once(stack: Stack) -> None:
    authorization_url, _ = stack.start()
    landed = stack.op.log_in(authorization_url)
    _app_redirect(stack.callback(landed))
    replay = stack.callback(landed)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "invalid_state"


def test_a_spent_provider_code_is_refused_by_the_provider(stack: Stack) -> None:
    first_url, _ = stack.start()
    landed = stack.op.log_in(first_url)
    _app_redirect(stack.callback(landed))
    second_url, _ = stack.start()  # a fresh, valid state carrying the already redeemed code
    reused = landed.replace(f"state={_query(landed)['state']}", f"state={_query(second_url)['state']}")
    assert _app_redirect(stack.callback(reused)) == {"error": "provider_code_refused"}


def test_the_one_time_code_works_once_and_only_with_the_apps_verifier(stack: Stack) -> None:
    back, verifier = stack.sign_in()
    assert stack.exchange(back["code"], verifier).status_code == 200
    replay = stack.exchange(back["code"], verifier)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "invalid_code"

    stolen, verifier = stack.sign_in()
    wrong = stack.exchange(stolen["code"], secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_code"
    assert stack.exchange(stolen["code"], verifier).status_code == 400  # a failed try spends it
    for body in ({"code": "nope", "code_verifier": verifier}, {"code": stolen["code"]}, {}):
        assert stack.http.post("/v1/auth/oauth/token", json=body).status_code == 400


def test_a_tampered_id_token_is_refused(stack: Stack) -> None:
    def tamper(tokens: dict[str, Any]) -> dict[str, Any]:
        header, payload, signature = tokens["id_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "someone-else"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return {**tokens, "id_token": f"{header}.{forged}.{signature}"}

    stack.intercept.rewrite = tamper
    authorization_url, _ = stack.start()
    assert _app_redirect(stack.callback(stack.op.log_in(authorization_url))) == {"error": "invalid_id_token"}


def test_an_expired_id_token_is_refused(stack: Stack) -> None:
    def later(tokens: dict[str, Any]) -> dict[str, Any]:
        claims = _claims(tokens["id_token"])
        # the gateway's clock moves past the token's exp (+ leeway) once the OP has issued it
        stack.app.gateway.oauth.clock = lambda: claims["exp"] + 31
        return tokens

    stack.intercept.rewrite = later
    authorization_url, _ = stack.start()
    assert _app_redirect(stack.callback(stack.op.log_in(authorization_url))) == {"error": "invalid_id_token"}


def test_an_id_token_for_another_client_is_refused(stack: Stack) -> None:
    authorization_url, _ = stack.start()
    nonce = _query(authorization_url)["nonce"]
    other = stack.op.direct_tokens(OTHER_CLIENT_ID, APP_REDIRECT, nonce)["id_token"]
    assert _claims(other)["aud"] == [OTHER_CLIENT_ID] and _claims(other)["nonce"] == nonce
    stack.intercept.rewrite = lambda tokens: {**tokens, "id_token": other}
    assert _app_redirect(stack.callback(stack.op.log_in(authorization_url))) == {"error": "invalid_id_token"}


def test_an_id_token_with_another_nonce_is_refused(stack: Stack) -> None:
    authorization_url, _ = stack.start()
    mine = stack.op.direct_tokens(CLIENT_ID, APP_REDIRECT, secrets.token_urlsafe(32))["id_token"]
    assert _claims(mine)["aud"] == [CLIENT_ID]  # right audience, signed by the OP: only the nonce is wrong
    stack.intercept.rewrite = lambda tokens: {**tokens, "id_token": mine}
    assert _app_redirect(stack.callback(stack.op.log_in(authorization_url))) == {"error": "invalid_id_token"}


def test_start_refuses_unlisted_redirect_uris_and_bad_challenges(stack: Stack) -> None:
    challenge = _s256(secrets.token_urlsafe(48))
    start = f"/v1/auth/oauth/{PROVIDER}/start"
    for uri in ("http://evil.example/cb", APP_REDIRECT + "/x", APP_REDIRECT + "?next=/", "http://127.0.0.1:9/"):
        r = stack.http.post(start, json={"redirect_uri": uri, "code_challenge": challenge})
        assert r.status_code == 400 and r.json()["error"]["code"] == "redirect_uri_not_allowed", uri
    plain = {"redirect_uri": APP_REDIRECT, "code_challenge": challenge, "code_challenge_method": "plain"}
    for body in ({"redirect_uri": APP_REDIRECT, "code_challenge": "short"}, plain):
        r = stack.http.post(start, json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code_challenge"
    r = stack.http.post("/v1/auth/oauth/nobody/start",
                        json={"redirect_uri": APP_REDIRECT, "code_challenge": challenge})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_provider"


def test_the_user_declining_at_the_provider_returns_an_error_to_the_app(stack: Stack) -> None:
    authorization_url, _ = stack.start()
    state = _query(authorization_url)["state"]
    r = stack.http.get(f"/v1/auth/oauth/{PROVIDER}/callback",
                       params={"state": state, "error": "access_denied"})
    assert _app_redirect(r) == {"error": "access_denied"}


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
