"""The signature port on PyJWT's RSA algorithm (``cryptography`` underneath): the CPython runtime's.

Never loaded on Workers: Pyodide would need the native ``cryptography`` package for it, and the
runtime's WebCrypto (:mod:`worker.adapters.webcrypto`) does the same check without one.
"""

from __future__ import annotations

import json
from typing import Any

from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError, PyJWKError

_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


class PyJwtSignatures:
    async def import_key(self, jwk: dict[str, Any]) -> Any | None:
        try:
            key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except (InvalidKeyError, PyJWKError, ValueError, TypeError, KeyError):
            return None
        # a JWK carrying a private exponent still verifies with its public half only
        return key.public_key() if hasattr(key, "private_numbers") else key

    async def verify_rs256(self, key: Any, signing_input: bytes, signature: bytes) -> bool:
        return bool(_RS256.verify(signing_input, key, signature))
