"""The stand-in's ThirdParty recipe: ``POST /recipe/signinup``, what the gateway's OAuth sign-in calls.

As the core does (``ThirdParty.signInUp``): a user is keyed by (``thirdPartyId``, ``thirdPartyUserId``)
within the app; the first call creates it (``createdNewUser: true``), later calls return the same
user and take the email the provider reports now. The email is normalised (trimmed, lower-cased) and
never links two identities: a provider identity sharing an email with an email/password user is a
user of its own (account linking is off, as on a core without the account-linking recipe). Field
checks follow the core's ``InputParser``: a missing or mistyped field is a 400 naming it.

``isVerified: true`` marks the (user, email) pair verified in the email-verification recipe's set, as
the core does; ``verified`` in the answer is read from that set, so ``/recipe/user/email/verify``
and ``/recipe/user/email/verify/remove`` act on third-party users too, and a provider's later
``isVerified: false`` never un-verifies an address.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thirdparty_users (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
  third_party_id TEXT NOT NULL, third_party_user_id TEXT NOT NULL,
  email TEXT NOT NULL, time_joined INTEGER NOT NULL,
  PRIMARY KEY (app_id, user_id), UNIQUE (app_id, third_party_id, third_party_user_id));
"""
#: an earlier layout kept a `verified` column of its own; its verified pairs move to the shared set
_MIGRATE_VERIFIED = (
    "INSERT OR IGNORE INTO verified_emails (app_id, user_id, email)"
    " SELECT app_id, user_id, email FROM thirdparty_users WHERE verified != 0",
    "ALTER TABLE thirdparty_users DROP COLUMN verified",
)


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise bad_request(f"Field name '{name}' is invalid in JSON input")
    return value


class ThirdPartyRecipe:
    def __init__(self, core: Core) -> None:
        self._conn = core.store.conn
        self._store = core.store
        self._now_ms = core.now_ms
        self._conn.executescript(_SCHEMA)
        columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(thirdparty_users)")}
        if "verified" in columns:
            with self._store.transaction() as c:
                for statement in _MIGRATE_VERIFIED:
                    c.execute(statement)
        core.users.register("SELECT app_id, tenant_id, user_id, 'thirdparty' AS recipe_id, email,"
                            " time_joined, third_party_id, third_party_user_id FROM thirdparty_users")
        core.store.user_tables.append("thirdparty_users")  # /user/remove deletes the user itself too
        self._users = core.users

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            "/recipe/signinup": Endpoint({"POST": self.sign_in_up}),
        }

    async def sign_in_up(self, call: Call) -> Reply:
        body = call.json()
        provider = _string(body, "thirdPartyId")
        subject = _string(body, "thirdPartyUserId")
        email_obj = body.get("email")
        if not isinstance(email_obj, dict):
            raise bad_request("Field name 'email' is invalid in JSON input")
        email = _string(email_obj, "id").strip().lower()
        verified = email_obj.get("isVerified")
        if not isinstance(verified, bool):
            raise bad_request("Field name 'isVerified' is invalid in JSON input")
        with self._store.transaction() as c:
            row = self._row(c, call.app_id, provider, subject)
            created = row is None
            if created:
                user_id = str(uuid.uuid4())
                c.execute(
                    "INSERT INTO thirdparty_users (app_id, tenant_id, user_id, third_party_id,"
                    " third_party_user_id, email, time_joined) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (call.app_id, call.tenant_id, user_id, provider, subject, email, self._now_ms()))
            else:
                user_id = row["user_id"]
                # the provider's current email wins; whether it is verified is the (user, email) pair's state
                c.execute("UPDATE thirdparty_users SET email = ? WHERE app_id = ? AND user_id = ?",
                          (email, call.app_id, user_id))
            if verified:
                c.execute("INSERT OR IGNORE INTO verified_emails (app_id, user_id, email) VALUES (?, ?, ?)",
                          (call.app_id, user_id, email))
        user = self._users.user(call.app_id, user_id)
        assert user is not None
        return ok({"status": "OK", "createdNewUser": created, "user": user, "recipeUserId": user_id})

    @staticmethod
    def _row(conn: sqlite3.Connection, app_id: str, provider: str, subject: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM thirdparty_users"
            " WHERE app_id = ? AND third_party_id = ? AND third_party_user_id = ?",
            (app_id, provider, subject)).fetchone()

