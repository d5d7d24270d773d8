"""GET /v1/openapi.json: the OpenAPI 3.1 document of the route table it is served from (public).

Built once per isolate. The ``collection`` path parameter lists the collections this gateway
serves, so a client generator or a fuzzer addresses real ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker import jsoncodec, openapi
from worker.http import JSON, Response
from worker.operations import Operation, documented
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

OPENAPI = Operation("this document: the gateway's OpenAPI 3.1 description", "none",
                    {200: {"type": "object", "required": ["openapi", "paths"]}})


def routes(table: list[Route]) -> list[Route]:
    """The route serving ``table``'s document (append it to ``table``: the document lists itself)."""
    cached: list[bytes] = []

    @documented(OPENAPI)
    async def get_openapi(ctx: Context) -> Response:
        if not cached:
            names = sorted(c.name for c in ctx.gateway.collections)
            cached.append(jsoncodec.dumps_bytes(with_collections(openapi.document(table), names)))
        return Response(200, cached[0], {"content-type": JSON})

    return [Route("GET", "/v1/openapi.json", get_openapi)]


def with_collections(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``doc`` with every ``collection`` path parameter restricted to ``names``."""
    for methods in doc["paths"].values():
        for op in methods.values():
            for param in op["parameters"]:
                if param["in"] == "path" and param["name"] == "collection" and names:
                    param["schema"] = {"type": "string", "enum": names}
    return doc
