"""Finding users by account info (``GET /users/by-accountinfo``): here, email-password users by email."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok
from infra.standins.supertokens.store import User

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core


class UserLookup:
    def __init__(self, core: Core, render: Callable[[str, User], dict[str, Any]]) -> None:
        self.core = core
        #: (app id, user) -> the core's `authRecipeUser` JSON of the user
        self.render = render

    def endpoints(self) -> dict[str, Endpoint]:
        return {"/users/by-accountinfo": Endpoint({"GET": self.by_account_info})}

    async def by_account_info(self, call: Call) -> Reply:
        if call.param("doUnionOfAccountInfo") not in ("true", "false"):
            raise bad_request("Field name 'doUnionOfAccountInfo' is invalid in GET request")
        email = call.query.get("email")
        if email is None:
            return ok({"status": "OK", "users": []})  # phone and third-party identities live nowhere here
        user = self.core.store.user_by_email(call.app_id, call.tenant_id, email.strip().lower())
        return ok({"status": "OK", "users": [self.render(call.app_id, user)] if user else []})
