"""The mail port and the gateway's messages (email verification, password reset).

The core renders a :class:`Message` and awaits a :class:`Mailer`. Two adapters send it:
:mod:`worker.mail_relay` posts it over the gateway's HTTP port to the stack's mail relay
(Mailpit's send API, which relays it to the environment's SMTP provider): that is how a
cloud stack's Worker sends mail, since Python Workers have no SMTP client; and
:mod:`worker.adapters.smtp` speaks SMTP under CPython (the local stack, to its Mailpit).
A gateway with neither (no ``MAIL_RELAY_URL``, no ``SMTP_HOST``) answers the mail endpoints
with 503 ``mail_not_configured`` (docs/runbooks.md, "Configure SMTP").

A message never carries more than the link's one-time token; the token is never
logged (a failed send logs the recipient's domain only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from worker.http import ApiError

#: the ``action`` a mailed link names
ACTION_VERIFY_EMAIL = "verify-email"
ACTION_RESET = "reset-password"


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    text: str


class MailError(Exception):
    """The mail server refused or could not be reached (the message was not accepted)."""


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Hand ``message`` to the mail server; raises :class:`MailError` if it was not accepted."""
        ...


def not_configured() -> ApiError:
    return ApiError(503, "mail_not_configured", "this stack sends no mail (no mail relay or SMTP is set)")


def action_link(action_url: str, action: str, token: str) -> str:
    """``action_url`` with ``action`` and ``token`` added to its query (an existing query is kept)."""
    parts = urlsplit(action_url)
    query = "&".join(q for q in (parts.query, urlencode({"action": action, "token": token})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def verification_message(to: str, link: str, *, change: bool) -> Message:
    what = "make it your account's new address" if change else "verify it"
    return Message(to=to, subject="Verify your email address", text=(
        f"Open this link to {what}:\n\n{link}\n\n"
        "The link works once. If you did not ask for this, ignore this mail.\n"))


def reset_message(to: str, link: str) -> Message:
    return Message(to=to, subject="Reset your password", text=(
        f"Open this link to choose a new password:\n\n{link}\n\n"
        "The link works once and expires within an hour. If you did not ask for this, ignore this mail: "
        "your password stays as it is.\n"))
