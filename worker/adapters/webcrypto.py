"""The signature port on the runtime's WebCrypto (``crypto.subtle``, through Pyodide's JS FFI): Workers'.

The JWK's public half is imported once per JWKS refresh (``importKey("jwk", ...)`` as a
non-extractable RSASSA-PKCS1-v1_5/SHA-256 verify key) and each signature is checked with
``crypto.subtle.verify``. Nothing native travels in the Worker bundle for it, unlike PyJWT's RSA,
which needs ``cryptography``. Only the Workers entrypoint imports this module.
"""

from __future__ import annotations

from typing import Any

from js import Object, crypto  # type: ignore[import-not-found]  # Pyodide's JS globals
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

_ALGORITHM = "RSASSA-PKCS1-v1_5"


def _js_object(value: dict[str, Any]) -> Any:
    return to_js(value, dict_converter=Object.fromEntries)


class WebCryptoSignatures:
    async def import_key(self, jwk: dict[str, Any]) -> Any | None:
        n, e = jwk.get("n"), jwk.get("e")
        if jwk.get("kty") != "RSA" or not isinstance(n, str) or not isinstance(e, str):
            return None
        # only the public half, with the one algorithm this key may verify
        public = _js_object({"kty": "RSA", "n": n, "e": e, "alg": "RS256", "ext": True})
        algorithm = _js_object({"name": _ALGORITHM, "hash": "SHA-256"})
        try:
            return await crypto.subtle.importKey("jwk", public, algorithm, False, to_js(["verify"]))
        except JsException:  # malformed base64url, a modulus WebCrypto refuses, ...
            return None

    async def verify_rs256(self, key: Any, signing_input: bytes, signature: bytes) -> bool:
        try:
            return bool(await crypto.subtle.verify(_ALGORITHM, key, to_js(signature), to_js(signing_input)))
        except JsException:
            return False
