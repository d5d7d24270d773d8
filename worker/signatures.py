"""The signature port: what the auth core needs to check an RS256 access token's signature.

Only the signature differs between runtimes; everything else about a token (its algorithm, ``kid``,
claims, shape, tenant) is checked once, in :mod:`worker.auth`. On Workers the runtime's own WebCrypto
verifies (:mod:`worker.adapters.webcrypto`, no native package to ship); under CPython PyJWT on
``cryptography`` does (:mod:`worker.adapters.pyjwt_signatures`). A key is whatever the adapter's
:meth:`~SignatureVerifier.import_key` returns, kept by the JWKS cache and handed back unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol


class SignatureVerifier(Protocol):
    async def import_key(self, jwk: dict[str, Any]) -> Any | None:
        """An RSA public key (RS256) from a JWK; None when the JWK is not a usable RSA key."""
        ...

    async def verify_rs256(self, key: Any, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is RSASSA-PKCS1-v1_5 with SHA-256 over ``signing_input`` under ``key``."""
        ...
