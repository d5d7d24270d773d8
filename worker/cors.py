"""CORS for browser apps: preflights answered from the route table, actual responses marked for their origin.

The allowed origins are the environment's ``allowed_origins`` (the gateway setting
``CORS_ALLOWED_ORIGINS``), the same list Centrifugo and the bucket's CORS rules get.
A request from any other origin, or without one, is served exactly as before: no
CORS header is added, and an ``OPTIONS`` that is not an allowed preflight still
meets the router's ``405``.

No ``Access-Control-Allow-Credentials``: the API authenticates with a bearer token
the app sends in ``Authorization``, never with cookies or HTTP authentication, so
browsers need not (and must not) attach credentials to these requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from worker.http import Request, Response
from worker.routing import Router

#: request headers an app may send: the token, JSON bodies, ``If-Match``, the read bookmark, a request id
ALLOWED_HEADERS = ("authorization", "content-type", "if-match", "x-telestack-bookmark", "x-request-id")
#: response headers an app may read besides the CORS-safelisted ones
EXPOSED_HEADERS = ("etag", "location", "x-telestack-bookmark", "x-request-id")
#: how long a browser may reuse a preflight's answer, s (Chromium caps it at 7200, Firefox at 86400)
MAX_AGE_SECONDS = 7200
#: the configured origin that stands for every origin (accepted by the local environment only)
ANY_ORIGIN = "*"


class CorsPolicy:
    """The allowed origins of one gateway, and the headers a response to each gets."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)
        self.any_origin = ANY_ORIGIN in self.origins

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allowed_origin(self, request: Request) -> str | None:
        """The request's ``Origin`` when it is allowed (echoed even under ``*``), else None."""
        origin = request.header("origin")
        if not origin or not (self.any_origin or origin in self.origins):
            return None
        return origin

    def preflight(self, router: Router, request: Request) -> Response | None:
        """The answer to an allowed origin's preflight; None for any other request (it is dispatched).

        The methods are those the route table has for the path, whatever method was asked for: the
        browser refuses a method the list lacks. A path no route has is left to the router (404).
        """
        if request.method != "OPTIONS" or not request.header("access-control-request-method"):
            return None
        origin = self.allowed_origin(request)
        if origin is None:
            return None
        methods = sorted({route.method for route in router.routes if route.regex.match(request.path)})
        if not methods:
            return None
        return Response(status=204, headers={
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ", ".join(methods),
            "access-control-allow-headers": ", ".join(ALLOWED_HEADERS),
            "access-control-max-age": str(MAX_AGE_SECONDS),
            "vary": "Origin",
        })

    def mark(self, request: Request, response: Response) -> None:
        """Add the CORS headers of an actual response (errors included) for an allowed origin.

        ``Vary: Origin`` goes on every response once any origin is configured: a response cached for a
        request without an Origin must not be reused for a cross-origin one, and vice versa.
        """
        if not self.enabled:
            return
        vary = response.headers.get("vary")
        if vary is None:
            response.headers["vary"] = "Origin"
        elif "origin" not in {v.strip().lower() for v in vary.split(",")}:
            response.headers["vary"] = f"{vary}, Origin"
        origin = self.allowed_origin(request)
        if origin is None:
            return
        response.headers["access-control-allow-origin"] = origin
        response.headers["access-control-expose-headers"] = ", ".join(EXPOSED_HEADERS)


@lru_cache(maxsize=8)
def policy(origins: tuple[str, ...]) -> CorsPolicy:
    """The policy of a settings value (one per isolate in practice: settings are read once)."""
    return CorsPolicy(origins)
