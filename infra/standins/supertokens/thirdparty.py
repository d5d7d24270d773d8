"""The stand-in's ThirdParty recipe: ``POST /recipe/signinup``, what the gateway's OAuth sign-in calls.

As the core does (``ThirdParty.signInUp``): a user is keyed by (``thirdPartyId``, ``thirdPartyUserId``)
within the app; the first call creates it (``createdNewUser: true``), later calls return the same
user and take the email the provider reports now. The email is normalised (trimmed, lower-cased) and
never links two identities: a provider identity sharing an email with an email/password user is a
user of its own (account linking is off, as on a core without the account-linking recipe). Field
checks follow the core's ``InputParser``: a missing or mistyped field is a 400 naming it.

Verification is the email-verification recipe's, as in the core: ``isVerified: true`` marks the
(user, email) pair verified there, and a login method's ``verified`` is that recipe's answer, so an
address verified later by a mailed token counts too.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok
from infra.standins.supertokens.store import Store

if TYPE_CHECKING:
    from infra.standins.supertokens.emailverification import EmailVerification

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thirdparty_users (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
  third_party_id TEXT NOT NULL, third_party_user_id TEXT NOT NULL,
  email TEXT NOT NULL, verified INTEGER NOT NULL, time_joined INTEGER NOT NULL,
  PRIMARY KEY (app_id, user_id), UNIQUE (app_id, third_party_id, third_party_user_id));
"""


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise bad_request(f"Field name '{name}' is invalid in JSON input")
    return value


class ThirdPartyRecipe:
    def __init__(self, store: Store, now_ms: Any, verification: EmailVerification) -> None:
        self._conn = store.conn
        self._verification = verification
        self._store = store
        self._now_ms = now_ms
        self._conn.executescript(_SCHEMA)

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
                c.execute(
                    "INSERT INTO thirdparty_users (app_id, tenant_id, user_id, third_party_id,"
                    " third_party_user_id, email, verified, time_joined) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (call.app_id, call.tenant_id, str(uuid.uuid4()), provider, subject, email, int(verified),
                     self._now_ms()))
            else:
                # the provider's current email wins; the same email, once verified, stays verified
                now_verified = verified or (row["email"] == email and bool(row["verified"]))
                c.execute("UPDATE thirdparty_users SET email = ?, verified = ?"
                          " WHERE app_id = ? AND user_id = ?",
                          (email, int(now_verified), call.app_id, row["user_id"]))
            row = self._row(c, call.app_id, provider, subject)
            assert row is not None
            if verified:
                self._verification.mark_verified(c, call.app_id, row["user_id"], email)
        verified_now = self._verification.is_email_verified(call.app_id, row["user_id"], email)
        return ok({"status": "OK", "createdNewUser": created, "user": _user_json(row, verified_now),
                   "recipeUserId": row["user_id"]})

    @staticmethod
    def _row(conn: sqlite3.Connection, app_id: str, provider: str, subject: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM thirdparty_users"
            " WHERE app_id = ? AND third_party_id = ? AND third_party_user_id = ?",
            (app_id, provider, subject)).fetchone()


def _user_json(row: sqlite3.Row, verified: bool) -> dict[str, Any]:
    """`authRecipeUser` for a third-party login method (CDI >= 4; `webauthn` from 5.3)."""
    third_party = {"id": row["third_party_id"], "userId": row["third_party_user_id"]}
    return {
        "id": row["user_id"], "isPrimaryUser": False, "tenantIds": [row["tenant_id"]],
        "timeJoined": row["time_joined"], "emails": [row["email"]], "phoneNumbers": [],
        "thirdParty": [third_party], "webauthn": {"credentialIds": []},
        "loginMethods": [{"tenantIds": [row["tenant_id"]], "recipeUserId": row["user_id"],
                          "verified": verified, "timeJoined": row["time_joined"],
                          "recipeId": "thirdparty", "email": row["email"], "thirdParty": third_party,
                          "webauthn": {"credentialIds": []}}],
    }
