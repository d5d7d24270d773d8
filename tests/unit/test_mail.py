"""worker/mail.py and worker/adapters/smtp.py: links, messages, and a refused send that leaks nothing."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.paths import free_port
from worker import mail
from worker.adapters.smtp import SmtpMailer


def test_action_link_adds_action_and_token_and_keeps_the_pages_own_query() -> None:
    link = mail.action_link("https://app.example.com/auth?lang=fr#top", mail.ACTION_RESET, "t/k+n=")
    parts = urlsplit(link)
    assert (parts.netloc, parts.path, parts.fragment) == ("app.example.com", "/auth", "top")
    assert parse_qs(parts.query) == {"lang": ["fr"], "action": ["reset-password"], "token": ["t/k+n="]}


def test_messages_carry_the_link_and_say_what_it_does() -> None:
    verify = mail.verification_message("a@example.com", "https://x/l?token=T", change=False)
    change = mail.verification_message("a@example.com", "https://x/l?token=T", change=True)
    reset = mail.reset_message("a@example.com", "https://x/r?token=R")
    assert "https://x/l?token=T" in verify.text and "verify it" in verify.text
    assert "new address" in change.text
    assert "https://x/r?token=R" in reset.text and reset.subject == "Reset your password"


async def test_a_refused_send_raises_mail_error_and_logs_neither_address_nor_token(
        caplog: pytest.LogCaptureFixture) -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), "from@example.com", security="none", timeout=2)
    message = mail.reset_message("person@private.example", "https://x/r?token=SECRET-TOKEN")
    with caplog.at_level(logging.WARNING), pytest.raises(mail.MailError):
        await mailer.send(message)
    assert "*@private.example" in caplog.text
    assert "person@" not in caplog.text and "SECRET-TOKEN" not in caplog.text


def test_unknown_security_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpMailer("127.0.0.1", 25, "from@example.com", security="ssl")
