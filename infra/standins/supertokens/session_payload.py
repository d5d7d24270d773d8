"""A session's access-token payload (``/recipe/jwt/data``): read it, or replace it for the next refresh.

As in the core, a new payload changes no token already issued: the session's
next refresh signs it into the new access token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok
from infra.standins.supertokens.tokens import PROTECTED_CLAIMS

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core


class SessionPayload:
    def __init__(self, core: Core) -> None:
        self.core = core

    def endpoints(self) -> dict[str, Endpoint]:
        return {"/recipe/jwt/data": Endpoint({"GET": self.get, "PUT": self.put})}

    def _live(self, app_id: str, handle: str) -> bool:
        s = self.core.store.session(app_id, handle)
        return s is not None and s.expires_at > self.core.now_ms()

    async def get(self, call: Call) -> Reply:
        handle = call.param("sessionHandle")
        s = self.core.store.session(call.app_id, handle)
        if s is None or s.expires_at <= self.core.now_ms():
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK", "userDataInJWT": s.user_data_jwt})

    async def put(self, call: Call) -> Reply:
        body = call.json()
        handle, data = body.get("sessionHandle"), body.get("userDataInJWT")
        if not isinstance(handle, str):
            raise bad_request("Field name 'sessionHandle' is invalid in JSON input")
        if not isinstance(data, dict):
            raise bad_request("Field name 'userDataInJWT' is invalid in JSON input")
        if PROTECTED_CLAIMS & data.keys():
            raise bad_request("The user payload contains protected field")
        with self.core.store.transaction() as c:
            if not self._live(call.app_id, handle):
                return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
            c.execute("UPDATE sessions SET user_data_jwt = ? WHERE app_id = ? AND handle = ?",
                      (json.dumps(data), call.app_id, handle))
        return ok({"status": "OK"})
