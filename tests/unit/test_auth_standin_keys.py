"""Stand-in signing keys: a new dynamic key per interval; old ones kept until their tokens expire."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from infra.standins.supertokens.config import from_env
from infra.standins.supertokens.store import Store
from infra.standins.supertokens.tokens import SigningKeys, sign_access_token

HOUR = 3600 * 1000


def test_rotation_keeps_old_keys_until_their_tokens_expire(tmp_path: Path) -> None:
    store = Store(tmp_path / "st.sqlite3")
    keys = SigningKeys(store, rotation_ms=24 * HOUR, max_token_ms=HOUR)
    t0 = 1_700_000_000_000
    first = keys.current(t0)
    assert first.kid == f"d-{t0}"
    token = sign_access_token(first, {"sub": "u", "exp": (t0 + HOUR) // 1000, "iat": t0 // 1000})

    t1 = t0 + 24 * HOUR  # rotation due
    second = keys.current(t1)
    assert second.kid == f"d-{t1}"
    assert {k["kid"] for k in keys.jwks(t1)} == {first.kid, second.kid}
    old = jwt.PyJWK(next(k for k in keys.jwks(t1) if k["kid"] == first.kid)).key
    assert jwt.decode(token, old, algorithms=["RS256"], options={"verify_exp": False})["sub"] == "u"

    # the last token `first` could sign (at t1) expires at t1 + 1h; after that the key is dropped
    assert {k["kid"] for k in keys.jwks(t1 + HOUR - 1)} == {first.kid, second.kid}
    assert {k["kid"] for k in keys.jwks(t1 + HOUR + 1)} == {second.kid}


def test_keys_survive_a_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "st.sqlite3")
    kid = SigningKeys(store, rotation_ms=HOUR, max_token_ms=HOUR).current(1_000).kid
    store.close()
    again = SigningKeys(Store(tmp_path / "st.sqlite3"), rotation_ms=HOUR, max_token_ms=HOUR)
    assert again.current(2_000).kid == kid


def test_static_key_is_separate(tmp_path: Path) -> None:
    keys = SigningKeys(Store(tmp_path / "st.sqlite3"), rotation_ms=HOUR, max_token_ms=HOUR)
    static = keys.current(1_000, dynamic=False)
    assert static.kid.startswith("s-") and keys.current(1_000).kid.startswith("d-")


def test_api_keys_follow_the_cores_rules() -> None:
    one, two = "a" * 20, "B-=" + "9" * 17
    assert from_env({"SUPERTOKENS_API_KEYS": f"{one}, {two}"}).api_keys == {one, two}
    assert from_env({}).api_keys == frozenset()  # no keys: no check, as in the core
    for bad in ("short-key", "has_underscore_0123456789", "spaces are not allowed 0123"):
        with pytest.raises(SystemExit):
            from_env({"SUPERTOKENS_API_KEYS": bad})
