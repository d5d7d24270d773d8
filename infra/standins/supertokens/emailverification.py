"""The email-verification recipe: one-time tokens per (user, email), and the verified set.

As the core does it (``EmailVerification`` in supertokens-core): a token is a
random string stored only as its SHA-256, valid for
``email_verification_token_lifetime`` (1 day by default), and verifying with it
consumes every token of that (user, email); asking for a token for an address
already verified answers ``EMAIL_ALREADY_VERIFIED_ERROR``. Verification belongs
to the pair, so after an email change the new address starts unverified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok
from infra.standins.supertokens.tokens import issue_one_time_token, sha256hex

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core

_SCHEMA = """
CREATE TABLE IF NOT EXISTS email_verification_tokens (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, email TEXT NOT NULL,
  token_hash TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, token_hash));
CREATE INDEX IF NOT EXISTS email_verification_tokens_user ON email_verification_tokens (app_id, user_id);
CREATE TABLE IF NOT EXISTS verified_emails (
  app_id TEXT NOT NULL, user_id TEXT NOT NULL, email TEXT NOT NULL,
  PRIMARY KEY (app_id, user_id, email));
"""


def _str(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise bad_request(f"Field name '{name}' is invalid in JSON input")
    return value


def _email(body: dict[str, object]) -> str:
    return _str(body, "email").strip().lower()


class EmailVerification:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.conn = core.store.conn
        self.conn.executescript(_SCHEMA)
        # /user/remove deletes the user's tokens and verified addresses with the user, in one transaction
        core.store.user_tables += ["email_verification_tokens", "verified_emails"]

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            "/recipe/user/email/verify/token": Endpoint({"POST": self.create_token}),
            "/recipe/user/email/verify/token/remove": Endpoint({"POST": self.remove_tokens}),
            "/recipe/user/email/verify": Endpoint({"POST": self.verify, "GET": self.is_verified}),
            "/recipe/user/email/verify/remove": Endpoint({"POST": self.unverify}, public_tenant_only=True),
        }

    def is_email_verified(self, app_id: str, user_id: str, email: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM verified_emails WHERE app_id = ? AND user_id = ? AND email = ?",
            (app_id, user_id, email)).fetchone()
        return row is not None

    async def create_token(self, call: Call) -> Reply:
        body = call.json()
        user_id, email = _str(body, "userId"), _email(body)
        if self.is_email_verified(call.app_id, user_id, email):
            return ok({"status": "EMAIL_ALREADY_VERIFIED_ERROR"})
        expires_at = self.core.now_ms() + self.core.config.email_verification_token_lifetime_ms
        token = issue_one_time_token(self.conn, "email_verification_tokens", call.app_id, call.tenant_id,
                                     user_id, email, expires_at)
        return ok({"status": "OK", "token": token})

    async def remove_tokens(self, call: Call) -> Reply:
        body = call.json()
        self.conn.execute(
            "DELETE FROM email_verification_tokens WHERE app_id = ? AND user_id = ? AND email = ?",
            (call.app_id, _str(body, "userId"), _email(body)))
        return ok({"status": "OK"})

    async def verify(self, call: Call) -> Reply:
        body = call.json()
        method = body.get("method")
        if method is not None and method != "token":
            raise bad_request("Unsupported method for email verification")
        token_hash = sha256hex(_str(body, "token"))
        with self.core.store.transaction() as c:
            row = c.execute("SELECT user_id, email, expires_at, tenant_id FROM email_verification_tokens"
                            " WHERE app_id = ? AND token_hash = ?", (call.app_id, token_hash)).fetchone()
            if row is None or row["tenant_id"] != call.tenant_id:
                return ok({"status": "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"})
            # single use: every token of this (user, email) goes, the expired one included
            c.execute("DELETE FROM email_verification_tokens WHERE app_id = ? AND user_id = ? AND email = ?",
                      (call.app_id, row["user_id"], row["email"]))
            if row["expires_at"] <= self.core.now_ms():
                return ok({"status": "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"})
            c.execute("INSERT OR IGNORE INTO verified_emails (app_id, user_id, email) VALUES (?, ?, ?)",
                      (call.app_id, row["user_id"], row["email"]))
        return ok({"status": "OK", "userId": row["user_id"], "email": row["email"]})

    async def is_verified(self, call: Call) -> Reply:
        email = call.param("email").strip().lower()
        verified = self.is_email_verified(call.app_id, call.param("userId"), email)
        return ok({"status": "OK", "isVerified": verified})

    async def unverify(self, call: Call) -> Reply:
        body = call.json()
        self.conn.execute("DELETE FROM verified_emails WHERE app_id = ? AND user_id = ? AND email = ?",
                          (call.app_id, _str(body, "userId"), _email(body)))
        return ok({"status": "OK"})
