"""worker/mail_relay.py: the request it posts, how each answer maps to MailError, and what it never logs.

The real relay (Mailpit, relaying to a second Mailpit) is tests/integration/test_mail_relay.py's.
"""

from __future__ import annotations

import base64
import logging

import pytest

from tests.support.scripted_http import ScriptedHttp
from worker import mail
from worker.context import Gateway
from worker.mail_relay import RELAY_USER, SEND_PATH, SEND_TIMEOUT_SECONDS, RelayMailer
from worker.outbound import HttpError, HttpResponse
from worker.settings import from_mapping

MESSAGE = mail.reset_message("person@private.example", "https://app.example/a?token=SECRET-TOKEN")


async def test_posts_the_message_with_basic_auth_and_the_deadline() -> None:
    http = ScriptedHttp(HttpResponse(200, b'{"ID": "abc"}'))
    mailer = RelayMailer(http, "https://relay.example.com/", "the-key", "Example <no-reply@example.com>")
    await mailer.send(MESSAGE)
    ((method, url, headers),) = http.requests
    assert (method, url) == ("POST", f"https://relay.example.com{SEND_PATH}")
    scheme, credential = headers["authorization"].split(" ", 1)
    assert scheme == "Basic" and base64.b64decode(credential).decode() == f"{RELAY_USER}:the-key"
    assert http.bodies == [{"From": {"Email": "no-reply@example.com", "Name": "Example"},
                            "To": [{"Email": "person@private.example"}], "Subject": MESSAGE.subject,
                            "Text": MESSAGE.text}]
    assert http.timeouts == [SEND_TIMEOUT_SECONDS]


@pytest.mark.parametrize("answer", [HttpResponse(401, b"Unauthorized.\n"),
                                    HttpResponse(400, b'{"Error": "535 person@private.example refused"}'),
                                    HttpResponse(502, b"bad gateway"),
                                    HttpError("POST https://relay.example.com/api/v1/send: refused")])
async def test_any_answer_but_200_is_a_mail_error_that_logs_neither_address_nor_token(
        answer: object, caplog: pytest.LogCaptureFixture) -> None:
    mailer = RelayMailer(ScriptedHttp(answer), "https://relay.example.com", "the-key", "no-reply@example.com")
    with caplog.at_level(logging.WARNING), pytest.raises(mail.MailError):
        await mailer.send(MESSAGE)
    assert "*@private.example" in caplog.text
    assert "person@" not in caplog.text and "SECRET-TOKEN" not in caplog.text and "the-key" not in caplog.text


def test_a_sender_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="sender"):
        RelayMailer(ScriptedHttp({}), "https://relay.example.com", "k", "TelestackDB")


def test_the_gateway_picks_the_relay_when_it_is_configured_and_smtp_otherwise() -> None:
    base = {"ADMIN_KEY": "k" * 20, "COLLECTIONS": '{"collections": {}}', "SMTP_FROM": "no-reply@example.com"}
    both = {**base, "MAIL_RELAY_URL": "https://relay.example.com", "MAIL_RELAY_KEY": "x",
            "SMTP_HOST": "smtp.example.com"}
    relay = Gateway(from_mapping(both), db=None, http=ScriptedHttp({}))  # type: ignore[arg-type]
    assert isinstance(relay.mailer, RelayMailer)
    smtp = Gateway(from_mapping({**base, "SMTP_HOST": "smtp.example.com"}), db=None,  # type: ignore[arg-type]
                   http=ScriptedHttp({}))
    assert type(smtp.mailer).__name__ == "SmtpMailer"
    assert Gateway(from_mapping(base), db=None, http=ScriptedHttp({})).mailer is None  # type: ignore[arg-type]
