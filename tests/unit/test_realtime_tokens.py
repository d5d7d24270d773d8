"""realtime_tokens.py: the HS256 tokens Centrifugo verifies (claims, lifetime, the secret they need)."""

from __future__ import annotations

import jwt
import pytest

from worker.realtime_tokens import TOKEN_TTL_SECONDS, connection_token, subscription_token

SECRET = "realtime-secret-0123456789abcdef0123"


def test_connection_token_carries_the_user_and_expires() -> None:
    token = connection_token(SECRET, "alice", now=1_700_000_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "alice", "iat": 1_700_000_000, "exp": 1_700_000_000 + TOKEN_TTL_SECONDS}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_subscription_token_names_one_channel_for_one_user() -> None:
    token = subscription_token(SECRET, "$admin", "notes:*", ttl=60, now=1_700_000_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "$admin", "channel": "notes:*", "iat": 1_700_000_000, "exp": 1_700_000_060}


def test_tokens_verify_only_with_their_secret_and_expire() -> None:
    token = connection_token(SECRET, "alice")
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-0123456789abcdef01234", algorithms=["HS256"])
    expired = connection_token(SECRET, "alice", ttl=10, now=1_000)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, SECRET, algorithms=["HS256"])


def test_tokens_are_the_ones_pyjwt_would_sign() -> None:
    """The same bytes as before the signer moved to the standard library: clients see no change."""
    assert connection_token(SECRET, "alice", now=1_700_000_000) == jwt.encode(
        {"sub": "alice", "iat": 1_700_000_000, "exp": 1_700_000_600}, SECRET, algorithm="HS256")
    assert subscription_token(SECRET, "alice", "notes:*#alice", ttl=60, now=1_700_000_000.9) == jwt.encode(
        {"sub": "alice", "channel": "notes:*#alice", "iat": 1_700_000_000, "exp": 1_700_000_060},
        SECRET, algorithm="HS256")


def test_no_token_is_signed_without_a_secret() -> None:
    with pytest.raises(ValueError, match="CENTRIFUGO_TOKEN_SECRET"):
        connection_token("", "alice")
    with pytest.raises(ValueError, match="CENTRIFUGO_TOKEN_SECRET"):
        subscription_token("", "alice", "posts:*")
