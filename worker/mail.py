"""The mail port and the gateway's messages (email verification, password reset).

The core renders a :class:`Message` and awaits a :class:`Mailer`; sending is the
runtime's (:mod:`worker.adapters.smtp` under CPython). On Python Workers the
gateway has no SMTP client (Pyodide's ``smtplib`` gets no socket there; one over
``cloudflare:sockets`` is not written), so the mail
endpoints work on the local target and on gateways run under CPython. A cloud
stack never gives its Worker ``SMTP_HOST`` (its environment refuses ``mail``), so
there they answer 503 ``mail_not_configured`` (docs/runbooks.md, "Configure SMTP").

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
    return ApiError(503, "mail_not_configured", "this stack sends no mail (SMTP is not configured)")


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
