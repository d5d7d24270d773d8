"""oauth.py and oidc_providers.py: PKCE, ID-token checks one by one, provider config, the GitHub leg.

ID tokens here are signed by a local RSA key (PyJWT) and served through a fake provider on the
outbound port, so each claim rule can be broken alone; the real provider runs in
tests/integration/test_oauth_oidc.py. The GitHub leg talks to a fake speaking GitHub's API shape
(its token endpoint, ``GET /user``, ``GET /user/emails``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.paths import CONFIG
from worker import migrations
from worker.adapters.config_files import load_migrations
from worker.adapters.pyjwt_signatures import PyJwtSignatures
from worker.adapters.sqlite import SqliteDatabase
from worker.collections import Registry
from worker.http import ApiError
from worker.oauth import FlowError, OAuthFlows, SignedIn, s256, valid_challenge, valid_verifier
from worker.oidc_providers import OidcProvider, ProviderConfigError, parse_providers
from worker.outbound import HttpResponse

ISSUER = "https://id.example.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "alg": "RS256"}
APP = "https://app.example.com/signed-in"
CORP = {"kind": "oidc", "issuer": ISSUER, "client_id": "c"}


class FakeProviders:
    """An HttpClient answering by URL, recording what was sent (a provider, or GitHub's API)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:  # noqa: ASYNC109
        self.sent.append((method, url, dict(headers or {}), body))
        answer = self.routes[url.split("?", 1)[0]]
        if isinstance(answer, HttpResponse):
            return answer
        return HttpResponse(200, json.dumps(answer).encode())


def _oidc_routes() -> dict[str, Any]:
    return {
        f"{ISSUER}/.well-known/openid-configuration": {
            "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks", "userinfo_endpoint": f"{ISSUER}/userinfo",
            "code_challenge_methods_supported": ["S256"]},
        f"{ISSUER}/jwks": {"keys": [JWK]},
    }


def _config(**entries: Any) -> dict[str, Any]:
    return parse_providers(json.dumps(entries), json.dumps({name: "s3cret" for name in entries}))


def _flows(db: Any, http: FakeProviders, **entries: Any) -> OAuthFlows:
    return OAuthFlows(db, http, PyJwtSignatures(), _config(**entries), (APP,), "https://gw.example.com")


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = SqliteDatabase(tmp_path / "gw.sqlite3")
    await migrations.migrate(database, load_migrations(CONFIG), Registry.from_json('{"collections": {}}'))
    yield database
    database.close()


def _token(claims: dict[str, Any], key: Any = KEY, **header: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "client-1", "sub": "u-1", "iat": now, "exp": now + 300, "nonce": "n-1",
            **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=header.pop("alg", "RS256"), headers={"kid": "k1", **header})


# --- PKCE -----------------------------------------------------------------------------------

def test_s256_matches_the_rfc_7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifier_and_challenge_shapes() -> None:
    assert valid_verifier("a" * 43) and valid_verifier("A-._~" * 20) and not valid_verifier("a" * 42)
    assert not valid_verifier("a" * 129) and not valid_verifier("a" * 42 + "/") and not valid_verifier(None)
    assert valid_challenge(s256("x" * 43)) and not valid_challenge(s256("x" * 43) + "=")


# --- ID tokens ------------------------------------------------------------------------------

async def _verify(db: Any, token: str, nonce: str = "n-1", clock: float | None = None) -> dict[str, Any]:
    flows = _flows(db, FakeProviders(_oidc_routes()), corp={"kind": "oidc", "issuer": ISSUER,
                                                             "client_id": "client-1"})
    if clock is not None:
        flows.clock = lambda: clock
    provider = OidcProvider(flows.provider("corp"), FakeProviders(_oidc_routes()), PyJwtSignatures())
    return await flows.verify_id_token(provider, token, nonce, APP)


async def test_a_valid_id_token_is_accepted(db: Any) -> None:
    assert (await _verify(db, _token({"aud": ["client-1"], "email": "a@b.co"})))["email"] == "a@b.co"


@pytest.mark.parametrize(("claims", "why"), [
    ({"iss": "https://evil.example.com"}, "issued by someone else"),
    ({"iss": None}, "issued by someone else"),
    ({"aud": "client-2"}, "meant for another client"),
    ({"aud": None}, "meant for another client"),
    ({"aud": ["client-2", "client-1"]}, "authorized party"),  # several audiences need azp = us
    ({"aud": ["client-1"], "azp": "client-2"}, "authorized party"),
    ({"exp": -31}, "expired"),  # times relative to now, added when the test runs (not at collection)
    ({"exp": None}, "exp or iat missing"),
    ({"iat": 120}, "issued in the future"),
    ({"nonce": "n-2"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"sub": ""}, "no subject"),
])
async def test_each_claim_rule_refuses_alone(db: Any, claims: dict[str, Any], why: str) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "iat") and isinstance(v, int) else v for k, v in claims.items()}
    with pytest.raises(FlowError, match=why) as caught:
        await _verify(db, _token(claims))
    assert caught.value.code == "invalid_id_token" and caught.value.redirect_uri == APP


async def test_signature_kid_and_algorithm_are_checked(db: Any) -> None:
    for token, why in [
        (_token({}, OTHER_KEY), "bad signature"),
        (_token({}, kid="k-unknown"), "bad signature"),
        (_token({}, key="hmac-secret", alg="HS256"), "algorithm"),
        (_token({}, ec.generate_private_key(ec.SECP256R1()), alg="ES256"), "algorithm"),
        (jwt.encode({"sub": "u-1"}, None, algorithm="none"), "algorithm"),
        ("not.a.jwt", "malformed"),
    ]:
        with pytest.raises(FlowError, match=why):
            await _verify(db, token)


async def test_expiry_allows_the_leeway_and_no_more(db: Any) -> None:
    token = _token({"exp": 1_000_000, "iat": 999_000})
    assert (await _verify(db, token, clock=1_000_029))["sub"] == "u-1"
    with pytest.raises(FlowError, match="expired"):
        await _verify(db, token, clock=1_000_030)


async def test_discovery_for_another_issuer_is_refused(db: Any) -> None:
    routes = _oidc_routes()
    routes[f"{ISSUER}/.well-known/openid-configuration"]["issuer"] = "https://other.example.com"
    flows = _flows(db, FakeProviders(routes), corp=CORP)
    with pytest.raises(ApiError) as caught:
        await flows.start("corp", APP, s256("v" * 43))
    assert (caught.value.status, caught.value.code) == (502, "oauth_provider_error")


# --- the stored flow ------------------------------------------------------------------------

async def test_start_stores_only_a_digest_of_the_state_and_a_flow_works_once(db: Any) -> None:
    flows = _flows(db, FakeProviders(_oidc_routes()), corp=CORP)
    url, expires_at = await flows.start("corp", APP, s256("v" * 43))
    state = parse_qs(url.split("?", 1)[1])["state"][0]
    stored = (await db.execute("SELECT * FROM oauth_flows")).rows
    assert len(stored) == 1 and state not in json.dumps(stored) and expires_at > time.time()
    with pytest.raises(ApiError, match="unknown"):
        await flows.take_flow("other", state)  # a state for one provider is not another's
    with pytest.raises(ApiError, match="unknown"):
        await flows.take_flow("corp", state)  # ... and the failed try spent it


async def test_an_expired_flow_and_an_expired_code_are_refused(db: Any) -> None:
    flows = _flows(db, FakeProviders(_oidc_routes()), corp=CORP)
    url, expires_at = await flows.start("corp", APP, s256("v" * 43))
    flows.clock = lambda: expires_at
    with pytest.raises(ApiError, match="expired"):
        await flows.take_flow("corp", parse_qs(url.split("?", 1)[1])["state"][0])
    flows.clock = time.time
    code = await flows.issue_code(SignedIn("u", "a@b.co", 1, True), {"app_challenge": s256("v" * 43)})
    flows.clock = lambda: time.time() + 61
    with pytest.raises(ApiError, match="expired"):
        await flows.redeem(code, "v" * 43)


# --- GitHub ---------------------------------------------------------------------------------

GITHUB = {"github": {"client_id": "gh-client", "authorization_url": "https://gh.test/login/oauth/authorize",
                     "token_url": "https://gh.test/login/oauth/access_token",
                     "api_base_url": "https://api.gh.test"}}
FLOW = {"code_verifier": "v" * 43, "redirect_uri": APP, "nonce": "n", "app_challenge": "c"}


def _github(emails: Any, token: Any = None) -> FakeProviders:
    return FakeProviders({
        "https://gh.test/login/oauth/access_token": token or {"access_token": "gho_abc",
                                                              "token_type": "bearer"},
        "https://api.gh.test/user": {"id": 4242, "login": "octo"},
        "https://api.gh.test/user/emails": emails,
    })


async def test_github_identity_is_the_primary_verified_email(db: Any) -> None:
    http = _github([{"email": "old@x.co", "verified": False, "primary": False},
                    {"email": "Octo@X.co", "verified": True, "primary": True}])
    identity = await _flows(db, http, **GITHUB).identify("github", FLOW, "the-code")
    assert (identity.subject, identity.email, identity.email_verified) == ("4242", "octo@x.co", True)
    method, url, headers, body = http.sent[0]
    form = parse_qs(body.decode())
    assert (method, url) == ("POST", "https://gh.test/login/oauth/access_token")
    assert form["client_secret"] == ["s3cret"] and form["code_verifier"] == ["v" * 43]  # client_secret_post
    assert headers["accept"] == "application/json" and "authorization" not in headers
    assert http.sent[1][2]["authorization"] == "Bearer gho_abc"


async def test_github_without_a_verified_email_is_refused(db: Any) -> None:
    http = _github([{"email": "someone@x.co", "verified": False, "primary": True}])
    with pytest.raises(FlowError) as caught:
        await _flows(db, http, **GITHUB).identify("github", FLOW, "the-code")
    assert caught.value.code == "email_required"


async def test_github_refusing_the_code_sends_the_user_back(db: Any) -> None:
    http = _github([], token={"error": "bad_verification_code"})  # GitHub answers 200 with an error field
    with pytest.raises(FlowError) as caught:
        await _flows(db, http, **GITHUB).identify("github", FLOW, "replayed")
    assert caught.value.code == "provider_code_refused"


# --- configuration --------------------------------------------------------------------------

def test_presets_fill_in_and_the_deployment_wins() -> None:
    providers = _config(google={"client_id": "g"},
                        github={"client_id": "h", "api_base_url": "http://127.0.0.1:1"},
                        corp={"kind": "oidc", "issuer": ISSUER, "client_id": "c",
                              "scopes": ["openid", "email"]})
    assert providers["google"].issuer == "https://accounts.google.com" and providers["google"].kind == "oidc"
    assert providers["github"].kind == "github" and providers["github"].api_base_url == "http://127.0.0.1:1"
    assert providers["corp"].token_auth == "client_secret_basic"
    assert providers["corp"].client_secret == "s3cret"


@pytest.mark.parametrize(("entries", "secrets", "names"), [
    ({"corp": {"kind": "oidc", "client_id": "c"}}, {"corp": "s"}, "OAUTH_PROVIDERS.corp.issuer"),
    ({"corp": {"kind": "oidc", "issuer": ISSUER, "client_id": "c"}}, {}, "OAUTH_CLIENT_SECRETS.corp"),
    ({"corp": {"kind": "saml", "client_id": "c"}}, {"corp": "s"}, "OAUTH_PROVIDERS.corp.kind"),
    ({"Corp": {"preset": "google", "client_id": "c"}}, {"Corp": "s"}, "OAUTH_PROVIDERS.Corp"),
    ({"g": {"preset": "google", "client_id": "c", "scopes": ["email"]}}, {"g": "s"}, "scopes"),
    ({"g": {"preset": "google", "client_id": "c", "colour": 1}}, {"g": "s"}, "OAUTH_PROVIDERS.g.colour"),
    ({"g": {"preset": "nope", "client_id": "c"}}, {"g": "s"}, "OAUTH_PROVIDERS.g.preset"),
])
def test_bad_provider_config_names_the_key(entries: Any, secrets: Any, names: str) -> None:
    with pytest.raises(ProviderConfigError, match=names.replace(".", r"\.")) as caught:
        parse_providers(json.dumps(entries), json.dumps(secrets))
    assert "s3cret" not in str(caught.value)


async def test_starting_a_flow_clears_expired_flows_and_codes(db: Any) -> None:
    flows = _flows(db, FakeProviders(_oidc_routes()), corp=CORP)
    await flows.start("corp", APP, s256("v" * 43))
    await flows.issue_code(SignedIn("u", "a@b.co", 1, True), {"app_challenge": s256("v" * 43)})
    flows.clock = lambda: time.time() + 3600  # both have expired
    await flows.start("corp", APP, s256("v" * 43))
    assert len((await db.execute("SELECT * FROM oauth_flows")).rows) == 1  # only the new one
    assert (await db.execute("SELECT * FROM oauth_codes")).rows == []
