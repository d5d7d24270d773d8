"""The email-password recipe's account changes: reset tokens, and updating a user's email or password.

As the core does it (``EmailPassword`` in supertokens-core): a reset token is
random, stored only as its SHA-256, valid for ``password_reset_token_lifetime``
(1 hour by default) and tied to the email it was issued for; consuming one
deletes every reset token of that user and answers the user id and email, and
the caller then sets the new password with ``PUT /recipe/user``. An unknown
user id gets ``UNKNOWN_USER_ID_ERROR`` (the gateway never tells a client that).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok
from infra.standins.supertokens.tokens import issue_one_time_token, sha256hex

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core

_SCHEMA = """
CREATE TABLE IF NOT EXISTS password_reset_tokens (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, email TEXT NOT NULL,
  token_hash TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, token_hash));
CREATE INDEX IF NOT EXISTS password_reset_tokens_user ON password_reset_tokens (app_id, user_id);
"""


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise bad_request(f"Field name '{name}' is invalid in JSON input")
    return value


class Passwords:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.conn = core.store.conn
        self.conn.executescript(_SCHEMA)
        core.store.user_tables.append("password_reset_tokens")  # /user/remove takes them with the user

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            "/recipe/user/password/reset/token": Endpoint({"POST": self.create_token}),
            "/recipe/user/password/reset/token/consume": Endpoint({"POST": self.consume_token}),
            "/recipe/user": Endpoint({"PUT": self.update_user}),
        }

    def _user(self, app_id: str, user_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM users WHERE app_id = ? AND user_id = ?",
                                 (app_id, user_id)).fetchone()

    async def create_token(self, call: Call) -> Reply:
        body = call.json()
        user_id = _str(body, "userId")
        email = (_str(body, "email") or "").strip().lower()
        assert user_id is not None
        # any auth recipe's user may get one (the core's token row only references app_id_to_user_id); setting
        # the password afterwards (PUT /recipe/user) needs an email-password user
        if self.core.users.user(call.app_id, user_id) is None:
            return ok({"status": "UNKNOWN_USER_ID_ERROR"})
        expires_at = self.core.now_ms() + self.core.config.password_reset_token_lifetime_ms
        token = issue_one_time_token(self.conn, "password_reset_tokens", call.app_id, call.tenant_id,
                                     user_id, email, expires_at)
        return ok({"status": "OK", "token": token})

    async def consume_token(self, call: Call) -> Reply:
        body = call.json()
        token = _str(body, "token")
        assert token is not None
        with self.core.store.transaction() as c:
            row = c.execute("SELECT user_id, email, expires_at, tenant_id FROM password_reset_tokens"
                            " WHERE app_id = ? AND token_hash = ?",
                            (call.app_id, sha256hex(token))).fetchone()
            if row is None or row["tenant_id"] != call.tenant_id:
                return ok({"status": "RESET_PASSWORD_INVALID_TOKEN_ERROR"})
            # single use: the user's every reset token goes, this one included, expired or not
            c.execute("DELETE FROM password_reset_tokens WHERE app_id = ? AND user_id = ?",
                      (call.app_id, row["user_id"]))
            if row["expires_at"] <= self.core.now_ms():
                return ok({"status": "RESET_PASSWORD_INVALID_TOKEN_ERROR"})
        return ok({"status": "OK", "userId": row["user_id"], "email": row["email"]})

    async def update_user(self, call: Call) -> Reply:
        body = call.json()
        user_id = _str(body, "recipeUserId")
        email = _str(body, "email", required=False)
        password = _str(body, "password", required=False)
        assert user_id is not None
        if password == "":
            raise bad_request("Password cannot be an empty string")
        if email is None and password is None:
            raise bad_request("You have to provide either email or password.")
        password_hash = await asyncio.to_thread(self.core.hasher.hash, password) if password else None
        with self.core.store.transaction() as c:
            if self._user(call.app_id, user_id) is None:
                return ok({"status": "UNKNOWN_USER_ID_ERROR"})
            if email is not None:
                try:
                    c.execute("UPDATE users SET email = ? WHERE app_id = ? AND user_id = ?",
                              (email.strip().lower(), call.app_id, user_id))
                except sqlite3.IntegrityError:
                    return ok({"status": "EMAIL_ALREADY_EXISTS_ERROR"})
            if password_hash is not None:
                c.execute("UPDATE users SET password_hash = ? WHERE app_id = ? AND user_id = ?",
                          (password_hash, call.app_id, user_id))
        return ok({"status": "OK"})
