"""Access tokens (RS256, SuperTokens V5 layout), signing-key rotation, opaque refresh tokens.

Dynamic keys are named ``d-<createdAtMillis>`` and rotate every
``rotation_ms``; a retired key stays in the JWKS until every token it could
have signed has expired (retired_at + max access-token validity). The static
key ``s-<uuid>`` signs sessions created with ``useDynamicSigningKey: false``.
Refresh tokens are ``<AES-GCM(sessionHandle, parentHash2)>.<nonce>.V2``: opaque
to clients, but they let the stand-in find the session of a stale token and
revoke it (theft detection).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.standins.supertokens.store import Store

#: claims the core owns; userDataInJWT may not use them (AccessTokenInfo requiredAndProtectedPropsV5)
PROTECTED_CLAIMS = frozenset({
    "sub", "exp", "iat", "tId", "rsub", "sessionHandle", "refreshTokenHash1",
    "parentRefreshTokenHash1", "antiCsrfToken",
})


def sha256hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


#: the tables of single-use tokens, each with its INSERT
_ONE_TIME_COLUMNS = " (app_id, tenant_id, user_id, email, token_hash, expires_at) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_ONE_TIME_TOKEN = {
    "email_verification_tokens": "INSERT INTO email_verification_tokens" + _ONE_TIME_COLUMNS,
    "password_reset_tokens": "INSERT INTO password_reset_tokens" + _ONE_TIME_COLUMNS,
}


def issue_one_time_token(conn: Any, table: str, app_id: str, tenant_id: str, user_id: str, email: str,
                         expires_at: int) -> str:
    """A new single-use token (verification, reset): only its hash is stored, as the core does."""
    token = secrets.token_urlsafe(48)
    conn.execute(_INSERT_ONE_TIME_TOKEN[table],
                 (app_id, tenant_id, user_id, email, sha256hex(token), expires_at))
    return token


def hash2(refresh_token: str) -> str:
    """What the session row stores: sha256hex(sha256hex(RT)) (core Session.createNewSession)."""
    return sha256hex(sha256hex(refresh_token))


@dataclass(slots=True)
class _Key:
    kid: str
    kind: str
    private: RSAPrivateKey
    created_at: int


class SigningKeys:
    def __init__(self, store: Store, rotation_ms: int, max_token_ms: int) -> None:
        self.store = store
        self.rotation_ms = rotation_ms
        self.max_token_ms = max_token_ms
        self._keys: dict[str, _Key] = {}
        for row in store.signing_keys():
            private = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
            assert isinstance(private, RSAPrivateKey)
            self._keys[row["kid"]] = _Key(row["kid"], row["kind"], private, row["created_at"])

    def _new(self, kind: str, now_ms: int) -> _Key:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = f"d-{now_ms}" if kind == "dynamic" else f"s-{uuid.uuid4()}"
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        self.store.insert_signing_key(kid, kind, pem, now_ms)
        key = self._keys[kid] = _Key(kid, kind, private, now_ms)
        return key

    def current(self, now_ms: int, *, dynamic: bool = True) -> _Key:
        """The key that signs now; rotates the dynamic key when it is older than the interval."""
        kind = "dynamic" if dynamic else "static"
        mine = [k for k in self._keys.values() if k.kind == kind]
        newest = max(mine, key=lambda k: k.created_at, default=None)
        if newest is None or (dynamic and now_ms - newest.created_at >= self.rotation_ms):
            newest = self._new(kind, now_ms)
        self._prune(now_ms)
        return newest

    def _prune(self, now_ms: int) -> None:
        dynamic = sorted((k for k in self._keys.values() if k.kind == "dynamic"), key=lambda k: k.created_at)
        for older, newer in itertools.pairwise(dynamic):
            # `older` stopped signing when `newer` was made; its last token dies max_token_ms later
            if newer.created_at + self.max_token_ms < now_ms:
                del self._keys[older.kid]
                self.store.delete_signing_key(older.kid)

    def jwks(self, now_ms: int) -> list[dict[str, str]]:
        self.current(now_ms)  # make sure a key exists and expired ones are gone
        out = []
        for key in sorted(self._keys.values(), key=lambda k: -k.created_at):
            numbers = key.private.public_key().public_numbers()
            out.append({"kty": "RSA", "kid": key.kid, "n": _b64uint(numbers.n), "e": _b64uint(numbers.e),
                        "alg": "RS256", "use": "sig"})
        return out

    def public_key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        return key.private.public_key() if key else None

    def signing_key(self, kid: str) -> _Key | None:
        return self._keys.get(kid)

    def seconds_until_rotation(self, now_ms: int) -> int:
        newest = self.current(now_ms)
        return max(1, (newest.created_at + self.rotation_ms - now_ms) // 1000)


def sign_access_token(key: _Key, payload: dict[str, Any]) -> str:
    """RS256 with the V5 header: {"alg","typ","kid","version":"5"}."""
    return jwt.encode(payload, key.private, algorithm="RS256",
                      headers={"kid": key.kid, "version": "5"}, sort_headers=False)


class RefreshTokens:
    """Opaque, authenticated-encrypted refresh tokens that name their session."""

    def __init__(self, store: Store) -> None:
        self._aead = AESGCM(store.secret("refresh_token_key", lambda: AESGCM.generate_key(bit_length=256)))

    def issue(self, session_handle: str, parent_hash2: str | None) -> str:
        nonce = secrets.token_bytes(12)
        plain = json.dumps({"sessionHandle": session_handle, "parent": parent_hash2,
                            "r": secrets.token_hex(16)}).encode()
        sealed = self._aead.encrypt(nonce, plain, b"V2")
        return f"{_b64(sealed)}.{nonce.hex()}.V2"

    def open(self, token: str) -> dict[str, Any] | None:
        """The token's payload, or None when it was not issued by this stand-in."""
        try:
            sealed, nonce, version = token.split(".")
            if version != "V2":
                return None
            plain = self._aead.decrypt(bytes.fromhex(nonce), _unb64(sealed), b"V2")
            data = json.loads(plain)
        except Exception:  # any malformed or forged token is simply "not ours"
            return None
        return data if isinstance(data, dict) and isinstance(data.get("sessionHandle"), str) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))
