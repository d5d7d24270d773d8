"""The mail port over HTTP: a :class:`~worker.mail.Message` posted to the stack's mail relay.

The relay is Mailpit's send API (``POST <MAIL_RELAY_URL>/api/v1/send``, basic auth
``telestack:<MAIL_RELAY_KEY>``), run by a cloud stack as a container that relays every
message it accepts to the environment's SMTP provider before it answers
(infra/mail_relay.py). So a 200 means the provider accepted the mail, and a provider's
refusal comes back as a 400 that names it. Sending goes through the gateway's
:class:`~worker.outbound.HttpClient`, so it runs on Python Workers (``fetch``), where
there is no SMTP client, and under CPython (httpx) alike.

The request body is the send API's (tests/contracts/mailpit/send-api.json):
``{"From": {"Email", "Name"}, "To": [{"Email"}], "Subject", "Text"}``.
"""

from __future__ import annotations

import base64
import logging
from email.utils import parseaddr

from worker import jsoncodec
from worker.mail import MailError, Message
from worker.outbound import HttpClient, HttpError
from worker.settings import Settings

log = logging.getLogger("telestack.mail")

#: the send API's user name: the key is the credential (the relay's MP_SEND_API_AUTH is ``telestack:<key>``)
RELAY_USER = "telestack"
SEND_PATH = "/api/v1/send"
#: the whole call's deadline, s: the relay answers only once the provider took the message, and a
#: provider that hangs must cost the request a bounded wait (a 503), not the Worker's whole budget
SEND_TIMEOUT_SECONDS = 10.0


class RelayMailer:
    def __init__(self, http: HttpClient, relay_url: str, key: str, sender: str, *,
                 timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        name, address = parseaddr(sender)
        if not address or "@" not in address:
            raise ValueError("the sender must be an address, optionally with a display name")
        self.http, self.url, self.timeout = http, relay_url.rstrip("/") + SEND_PATH, timeout
        self.sender = {"Email": address, "Name": name}
        credential = base64.b64encode(f"{RELAY_USER}:{key}".encode()).decode("ascii")
        self._authorization = f"Basic {credential}"

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpClient) -> RelayMailer:
        s = settings
        return cls(http, s.mail_relay_url, s.mail_relay_key, s.smtp_from)

    async def send(self, message: Message) -> None:
        body = jsoncodec.dumps_bytes({"From": self.sender, "To": [{"Email": message.to}],
                                      "Subject": message.subject, "Text": message.text})
        headers = {"authorization": self._authorization, "content-type": "application/json"}
        domain = message.to.rpartition("@")[2]
        try:
            r = await self.http.request("POST", self.url, headers=headers, body=body, timeout=self.timeout)
        except HttpError:
            # the recipient's domain only: the address is personal data, the body holds a one-time token
            log.warning("mail to *@%s not sent: the relay did not answer", domain)
            raise MailError("relay unreachable") from None
        if r.status != 200:
            # 401: the relay refused our key; 400: the provider (or the relay) refused the message. The
            # relay's text may quote the recipient, so only the status is logged
            log.warning("mail to *@%s not accepted: the relay answered %d", domain, r.status)
            raise MailError(f"relay answered {r.status}")
