"""Mail through a cloud stack's relay, with real servers: the gateway's HTTP mailer posts to a Mailpit run
with exactly the environment infra/mail_relay.py renders for the relay container, which relays each
message over STARTTLS, with a login, to a second Mailpit playing the environment's SMTP provider.

What reaches the provider is what a user would get; what the relay refuses never does. The refused
callers: a wrong relay key (401, nothing relayed or kept), no key at all for the relay's stored copies,
a provider that refuses the relay's login (the provider's refusal comes back as MailError, nothing
delivered), a relay that is down or hangs (MailError within the mailer's deadline).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.auth_gateway import Gw, serve_gateway
from tests.support.mailpit import (
    ACTION_URL,
    SENDER,
    Mailpit,
    self_signed_certificate,
    start_mailpit,
    start_relay_to,
)
from tests.support.own_loop import run_on_own_loop
from tests.support.paths import free_port
from tests.support.process import silent_url
from tests.support.standin import start_standin
from worker import mail
from worker.adapters.httpx_client import HttpxClient
from worker.mail_relay import RelayMailer

KEY = "relay-key-" + "k" * 33
PROVIDER_LOGIN = ("provider-user", "provider-password-0123")
PASSWORD = "correct horse 1"


@dataclass
class Servers:
    provider: Mailpit
    relay: Mailpit
    #: a relay whose provider login is wrong (the provider refuses it)
    refused_relay: Mailpit


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("mail-relay")
    provider = start_mailpit(tmp, smtp_login=PROVIDER_LOGIN, tls=self_signed_certificate(tmp))
    started = [provider]
    try:
        for name, login in (("relay", PROVIDER_LOGIN), ("refused", (PROVIDER_LOGIN[0], "not-the-password"))):
            directory = tmp / name
            directory.mkdir()
            started.append(start_relay_to(provider, directory, KEY, login))
        yield Servers(provider, started[1], started[2])
    finally:
        for server in started:
            server.stop()


def _address() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _send(url: str, message: mail.Message, *, key: str = KEY, timeout: float = 10.0) -> None:
    async def go() -> None:
        http = HttpxClient()
        try:
            await RelayMailer(http, url, key, SENDER, timeout=timeout).send(message)
        finally:
            await http.aclose()

    run_on_own_loop(go())


def test_a_reset_mail_reaches_the_provider_through_the_relay(servers: Servers) -> None:
    to = _address()
    link = mail.action_link(ACTION_URL, mail.ACTION_RESET, "one-time-token")
    _send(servers.relay.api_url, mail.reset_message(to, link))
    (delivered,) = servers.provider.wait_for(to)
    assert delivered["Subject"] == "Reset your password"
    assert link in delivered["Text"]
    assert delivered["From"] == {"Name": "TelestackDB", "Address": "no-reply@telestack.test"}
    assert [a["Address"] for a in delivered["To"]] == [to]


def test_a_wrong_key_is_refused_and_nothing_is_relayed_or_kept(servers: Servers) -> None:
    to = _address()
    kept = servers.relay.count()
    with pytest.raises(mail.MailError, match="relay answered 401"):
        _send(servers.relay.api_url, mail.reset_message(to, "https://x.test/?token=t"), key="not-the-key")
    time.sleep(0.5)  # a relayed message would have arrived by now (they arrive in milliseconds above)
    assert servers.provider.messages_to(to) == []
    assert servers.relay.count() == kept


def test_the_relays_stored_mail_needs_the_key(servers: Servers) -> None:
    """The relay keeps what it relayed (pruned to the newest MAX_MESSAGES): its API is not open."""
    for auth in (None, ("telestack", "not-the-key")):
        r = httpx.get(f"{servers.relay.api_url}/api/v1/messages", auth=auth, timeout=10)
        assert r.status_code == 401, r.text
    assert servers.relay.count() >= 0  # with the key it answers


def test_a_provider_refusing_the_relays_login_is_a_mail_error_and_nothing_is_delivered(
    servers: Servers,
) -> None:
    to = _address()
    with pytest.raises(mail.MailError, match="relay answered 400"):
        _send(servers.refused_relay.api_url, mail.reset_message(to, "https://x.test/?token=t"))
    time.sleep(0.5)
    assert servers.provider.messages_to(to) == []
    assert servers.refused_relay.count() == 0, "a message the provider refused is not kept"


def test_a_relay_that_is_down_or_hangs_is_a_mail_error_within_the_deadline() -> None:
    message = mail.reset_message(_address(), "https://x.test/?token=t")
    with pytest.raises(mail.MailError, match="relay unreachable"):
        _send(f"http://127.0.0.1:{free_port()}", message)  # nothing listens
    with silent_url() as url:
        started = time.monotonic()
        with pytest.raises(mail.MailError, match="relay unreachable"):
            _send(url, message, timeout=1.0)
        elapsed = time.monotonic() - started
    # the deadline is the point, not a speed: generous slack over the 1 s given
    assert elapsed < 5, f"a hung relay held the send for {elapsed:.1f}s"


# --- through the gateway's endpoints --------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, servers: Servers) -> Iterator[Gw]:
    tmp = tmp_path_factory.mktemp("relay-gateway")
    standin = start_standin(tmp)
    try:
        yield from serve_gateway(tmp, standin, mail_relay_url=servers.relay.api_url, mail_relay_key=KEY,
                                 smtp_from=SENDER, auth_action_url=ACTION_URL)
    finally:
        standin.stop()


def _signup(gw: Gw) -> tuple[str, str]:
    email = _address()
    r = gw.post("/v1/auth/signup", {"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email, r.json()["access_token"]


def test_forgot_password_and_verification_mail_reach_the_provider_and_the_links_work(
    gateway: Gw, servers: Servers
) -> None:
    email, access = _signup(gateway)
    r = gateway.post("/v1/auth/password/forgot", {"email": email})
    assert r.status_code == 202, r.text
    link = servers.provider.link_to(email)
    token = link.split("token=", 1)[1]
    r = gateway.post("/v1/auth/password/reset", {"token": token, "new_password": "a brand new password"})
    assert r.status_code == 200, r.text
    signin = gateway.post("/v1/auth/signin", {"email": email, "password": "a brand new password"})
    assert signin.status_code == 200, signin.text
    r = gateway.post("/v1/auth/email/verification", token=access)
    assert r.status_code == 202, r.text
    verify = servers.provider.link_to(email, count=2)
    assert "action=verify-email" in verify
    r = gateway.post("/v1/auth/email/verify", {"token": verify.split("token=", 1)[1]})
    assert r.status_code == 200, r.text


def test_the_gateway_answers_503_mail_unavailable_when_the_relay_refuses(
    tmp_path: Path, servers: Servers
) -> None:
    standin = start_standin(tmp_path)
    try:
        for gw in serve_gateway(tmp_path, standin, mail_relay_url=servers.relay.api_url,
                                mail_relay_key="not-the-key", smtp_from=SENDER, auth_action_url=ACTION_URL):
            email, _ = _signup(gw)
            r = gw.post("/v1/auth/password/forgot", {"email": email})
            assert (r.status_code, r.json()["error"]["code"]) == (503, "mail_unavailable"), r.text
            assert "not-the-key" not in r.text and KEY not in r.text
    finally:
        standin.stop()
