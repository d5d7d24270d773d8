"""The mail port over SMTP with the standard library (CPython only: Workers have no SMTP client and send
through the stack's mail relay instead, worker/mail_relay.py).

``smtplib`` blocks, so each message is sent in a worker thread. ``starttls`` and
``tls`` verify the server's certificate against the system's trust store;
``none`` sends in clear and is meant for a loopback server (Mailpit).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from worker.mail import MailError, Message
from worker.settings import Settings

log = logging.getLogger("telestack.mail")

SECURITY_MODES = ("starttls", "tls", "none")


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, *, security: str = "starttls", username: str = "",
                 password: str = "", timeout: float = 10.0) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {SECURITY_MODES}")
        self.host, self.port, self.sender = host, port, sender
        self.security, self.username, self._password, self.timeout = security, username, password, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        s = settings
        return cls(s.smtp_host, s.smtp_port, s.smtp_from, security=s.smtp_security, username=s.smtp_username,
                   password=s.smtp_password)

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, message.to, message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail.set_content(message.text)
        context = ssl.create_default_context()
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self._password)
                client.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            # the recipient's domain only: the address is personal data, the body holds a one-time token
            log.warning("mail to *@%s not accepted: %s", message.to.rpartition("@")[2], type(exc).__name__)
            raise MailError(type(exc).__name__) from None
