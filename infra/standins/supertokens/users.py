"""The users of every auth recipe, as the core answers them: by id, by account info, listed and counted.

The core builds each user's ``authRecipeUser`` from its recipe's table and joins ``verified`` in from
the email-verification recipe's verified set, per (user, email) (``GeneralQueries`` and the recipes'
``getUsersInfoUsingIdList``). Here each auth recipe registers one SELECT of its users in the common
columns :data:`COLUMNS`; every lookup runs over their union. Account linking is off, so a user has one
login method and ``isPrimaryUser`` is false. Request rules follow ``webserver/api/core`` (``UsersAPI``,
``UsersCountAPI``, ``ListUsersByAccountInfoAPI``, ``GetUserByIdAPI``).
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Callable
from typing import Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok

#: what a recipe's registered SELECT yields, in this order
COLUMNS = ("app_id", "tenant_id", "user_id", "recipe_id", "email", "time_joined", "third_party_id",
           "third_party_user_id")
#: the core's RECIPE_ID names of auth recipes; passwordless and webauthn users exist nowhere here
RECIPE_IDS = frozenset({"emailpassword", "thirdparty", "passwordless", "webauthn"})
#: AuthRecipe.USER_PAGINATION_LIMIT; UsersAPI's default page is 100
PAGE_LIMIT = 1000
DEFAULT_PAGE = 100


class AuthUsers:
    def __init__(self, conn: sqlite3.Connection, now_ms: Callable[[], int]) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self._selects: list[str] = []

    def register(self, select: str) -> None:
        """An auth recipe's users as one SELECT of :data:`COLUMNS` (SQL written in code, never from input)."""
        self._selects.append(select)

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            "/user/id": Endpoint({"GET": self.by_id}, public_tenant_only=True),
            "/users/by-accountinfo": Endpoint({"GET": self.by_account_info}),
            "/users": Endpoint({"GET": self.list_users}),
            "/users/count": Endpoint({"GET": self.count}),
        }

    def _rows(self, where: str, params: tuple[Any, ...], tail: str = "") -> list[sqlite3.Row]:
        union = " UNION ALL ".join(self._selects)
        sql = (f"SELECT u.*, v.email IS NOT NULL AS verified FROM ({union}) AS u"  # noqa: S608 - code-made SQL
               " LEFT JOIN verified_emails AS v"
               " ON v.app_id = u.app_id AND v.user_id = u.user_id AND v.email = u.email"
               f" WHERE {where}{tail}")
        return list(self.conn.execute(sql, params))

    def user(self, app_id: str, user_id: str) -> dict[str, Any] | None:
        """The user's ``authRecipeUser`` JSON, whichever recipe made it; None when no recipe has it."""
        rows = self._rows("u.app_id = ? AND u.user_id = ?", (app_id, user_id))
        return user_json(rows[0]) if rows else None

    # --- endpoints -----------------------------------------------------------------------
    async def by_id(self, call: Call) -> Reply:
        user = self.user(call.app_id, call.param("userId"))
        if user is None:
            return ok({"status": "UNKNOWN_USER_ID_ERROR"})
        return ok({"status": "OK", "user": user})

    async def by_account_info(self, call: Call) -> Reply:
        union = call.param("doUnionOfAccountInfo")
        if union not in ("true", "false"):
            raise bad_request("'doUnionOfAccountInfo' should be either 'true' or 'false'")
        q = call.query
        if ("thirdPartyId" in q) != ("thirdPartyUserId" in q):
            raise bad_request("If 'thirdPartyId' is provided, 'thirdPartyUserId' must also be provided, "
                              "and vice versa")
        conditions: list[str] = []
        params: list[Any] = []
        if "email" in q:
            conditions.append("u.email = ?")
            params.append(q["email"].strip().lower())
        if "thirdPartyId" in q:
            conditions.append("(u.third_party_id = ? AND u.third_party_user_id = ?)")
            params += [q["thirdPartyId"], q["thirdPartyUserId"]]
        if "phoneNumber" in q or "webauthnCredentialId" in q:
            conditions.append("0")  # no user here has a phone number or a passkey
        if not conditions:
            return ok({"status": "OK", "users": []})
        joined = (" OR " if union == "true" else " AND ").join(conditions)
        rows = self._rows(f"u.app_id = ? AND u.tenant_id = ? AND ({joined})",
                          (call.app_id, call.tenant_id, *params), " ORDER BY u.time_joined")
        return ok({"status": "OK", "users": [user_json(r) for r in rows]})

    async def list_users(self, call: Call) -> Reply:
        recipes = _recipe_ids(call)
        if {"email", "phone", "provider"} & call.query.keys():
            # the core's dashboard search (DashboardSearchTags): refused loudly rather than ignored
            raise bad_request("the stand-in does not search users by email, phone or provider")
        order = call.query.get("timeJoinedOrder", "ASC")
        if order not in ("ASC", "DESC"):
            raise bad_request("timeJoinedOrder can be either ASC OR DESC")
        limit = _int(call, "limit", DEFAULT_PAGE)
        if limit > PAGE_LIMIT:
            raise bad_request(f"max limit allowed is {PAGE_LIMIT}")
        if limit < 1:
            raise bad_request("limit must a positive integer with min value 1")
        where, params = "u.app_id = ? AND u.tenant_id = ?", [call.app_id, call.tenant_id]
        if recipes:
            where += f" AND u.recipe_id IN ({','.join('?' * len(recipes))})"
            params += recipes
        token = call.query.get("paginationToken")
        if token is not None:
            # the token names the first user of the next page (UserPaginationToken: base64 "id;timeJoined")
            first_id, first_joined = _page_start(token)
            where += f" AND (u.time_joined {'>' if order == 'ASC' else '<'} ?" \
                     " OR (u.time_joined = ? AND u.user_id <= ?))"
            params += [first_joined, first_joined, first_id]
        rows = self._rows(where, tuple(params),
                          f" ORDER BY u.time_joined {order}, u.user_id DESC LIMIT {limit + 1}")
        body: dict[str, Any] = {"status": "OK", "users": [user_json(r) for r in rows[:limit]]}
        if len(rows) > limit:
            following = rows[limit]
            body["nextPaginationToken"] = base64.b64encode(
                f"{following['user_id']};{following['time_joined']}".encode()).decode()
        return ok(body)

    async def count(self, call: Call) -> Reply:
        recipes = _recipe_ids(call)
        all_tenants = call.query.get("includeAllTenants", "").lower() == "true"
        where, params = "u.app_id = ?", [call.app_id]
        if not all_tenants:
            where += " AND u.tenant_id = ?"
            params.append(call.tenant_id)
        if recipes:
            where += f" AND u.recipe_id IN ({','.join('?' * len(recipes))})"
            params += recipes
        union = " UNION ALL ".join(self._selects)
        sql = f"SELECT COUNT(DISTINCT u.user_id) FROM ({union}) AS u WHERE {where}"  # noqa: S608 - code-made
        body: dict[str, Any] = {"status": "OK", "count": self.conn.execute(sql, tuple(params)).fetchone()[0]}
        if call.query.get("allowApproximate", "").lower() == "true" and _at_least(call.cdi_version, (5, 6)):
            # CDI 5.6 opt-in: the core may serve a cached count; this one is always exact, and says so
            body.update(approximate=False, asOf=self.now_ms())
        return ok(body)


def _recipe_ids(call: Call) -> list[str]:
    raw = call.query.get("includeRecipeIds")
    if raw is None:
        return []
    recipes = [r.strip() for r in raw.strip().split(",") if r.strip()]
    for recipe in recipes:
        if recipe not in RECIPE_IDS:
            raise bad_request(f"Unknown recipe ID: {recipe}")
    return recipes


def _at_least(version: str, wanted: tuple[int, int]) -> bool:
    major, minor = version.split(".")
    return (int(major), int(minor)) >= wanted


def _int(call: Call, name: str, default: int) -> int:
    raw = call.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Field name '{name}' must be an int in the GET request") from None


def _page_start(token: str) -> tuple[str, int]:
    try:
        user_id, joined = base64.b64decode(token, validate=True).decode().split(";")
        return user_id, int(joined)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("invalid pagination token") from None


def user_json(row: sqlite3.Row) -> dict[str, Any]:
    """`authRecipeUser` (CDI >= 4; `webauthn` from 5.3) of a one-login-method user."""
    method: dict[str, Any] = {
        "tenantIds": [row["tenant_id"]], "recipeUserId": row["user_id"], "verified": bool(row["verified"]),
        "timeJoined": row["time_joined"], "recipeId": row["recipe_id"], "email": row["email"],
        "webauthn": {"credentialIds": []},
    }
    third_party = []
    if row["third_party_id"] is not None:
        method["thirdParty"] = {"id": row["third_party_id"], "userId": row["third_party_user_id"]}
        third_party.append(method["thirdParty"])
    return {
        "id": row["user_id"], "isPrimaryUser": False, "tenantIds": [row["tenant_id"]],
        "timeJoined": row["time_joined"], "emails": [row["email"]], "phoneNumbers": [],
        "thirdParty": third_party, "webauthn": {"credentialIds": []}, "loginMethods": [method],
    }
