"""A route (method, path template, handler) and the matcher over a list of them (``app.ROUTES``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker.http import ApiError, Request, Response

if TYPE_CHECKING:
    from worker.context import Context

Handler = Callable[["Context"], Awaitable[Response]]

_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        # a path parameter is one non-empty segment; its value is validated by the handler
        self.regex = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", self.path) + "$")


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, request: Request) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            m = route.regex.match(request.path)
            if m is None:
                continue
            if route.method == request.method:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here",
                           headers={"allow": ", ".join(sorted(set(allowed)))})
        raise ApiError(404, "not_found", f"no route for {request.path}")
