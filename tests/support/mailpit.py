"""Mailpit (real SMTP server + HTTP API) on free loopback ports, for tests that read the gateway's mail.

The binary comes from scripts/toolchain.sh (built from the Go module proxy, cached). Messages are
read through Mailpit's HTTP API (``/api/v1/search``, ``/api/v1/message/{id}``), as a developer would
read them in its web UI.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra import mail_relay
from infra.environment import MailSettings, SmtpProviderSettings
from tests.support.paths import free_port
from tests.support.process import Process, answers, start_process, stop_process

_LINK = re.compile(r"https?://\S+")


def mailpit_binary() -> str:
    cache = Path(os.environ.get("TELESTACK_CACHE", Path.home() / ".cache/telestack"))
    found = shutil.which("mailpit") or str(cache / "bin/current/mailpit")
    if not Path(found).exists():
        raise RuntimeError("mailpit is not built: run scripts/toolchain.sh")
    return found


@dataclass
class Mailpit:
    smtp_port: int
    api_url: str
    process: Process
    #: basic auth its web UI / API asks for (a mail relay's); None = open
    auth: tuple[str, str] | None = None

    def stop(self) -> None:
        stop_process(self.process)

    def messages_to(self, address: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.api_url}/api/v1/search", params={"query": f'to:"{address}"'}, timeout=10,
                      auth=self.auth)
        r.raise_for_status()
        return r.json()["messages"] or []

    def count(self) -> int:
        """Every message it holds."""
        r = httpx.get(f"{self.api_url}/api/v1/messages", timeout=10, auth=self.auth)
        r.raise_for_status()
        return int(r.json()["messages_count"])

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The full messages to ``address`` once there are ``count`` of them (newest first)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages_to(address)
            if len(found) >= count:
                urls = [f"{self.api_url}/api/v1/message/{m['ID']}" for m in found]
                return [httpx.get(url, timeout=10, auth=self.auth).json() for url in urls]
            assert time.monotonic() < deadline, f"no mail to {address} after {timeout}s"
            time.sleep(0.05)

    def link_to(self, address: str, count: int = 1) -> str:
        """The link in the newest message to ``address``."""
        text = self.wait_for(address, count)[0]["Text"]
        match = _LINK.search(text)
        assert match, f"no link in the mail: {text!r}"
        return match.group(0)


def start_mailpit(data_dir: Path, *, smtp_login: tuple[str, str] | None = None,
                  tls: tuple[Path, Path] | None = None) -> Mailpit:
    """A Mailpit accepting any SMTP login, or only ``smtp_login`` (user, password); with ``tls`` (cert,
    key) it offers STARTTLS, as an SMTP provider does on port 587."""
    smtp, http = free_port(), free_port()
    api = f"http://127.0.0.1:{http}"
    auth = ["--smtp-auth-accept-any"] if smtp_login is None else []
    env = {**os.environ, "MP_SMTP_AUTH": ":".join(smtp_login)} if smtp_login else None
    if tls is not None:
        auth += ["--smtp-tls-cert", str(tls[0]), "--smtp-tls-key", str(tls[1])]
    proc = start_process(
        [mailpit_binary(), "--smtp", f"127.0.0.1:{smtp}", "--listen", f"127.0.0.1:{http}",
         "--database", str(data_dir / "mailpit.db"), "--disable-version-check", *auth,
         "--smtp-auth-allow-insecure"],
        log=data_dir / "mailpit.log", ready=lambda: answers(f"{api}/api/v1/info"), what="mailpit", env=env,
    )
    return Mailpit(smtp, api, proc)


def start_mail_relay(data_dir: Path, env: dict[str, str], http_port: int, smtp_port: int,
                     key: str) -> Mailpit:
    """Mailpit as a cloud stack's mail relay: configured by ``env`` alone (infra/mail_relay.py renders it),
    as the container is, with its database in ``data_dir`` instead of the container's temporary one."""
    from worker.mail_relay import RELAY_USER

    api = f"http://127.0.0.1:{http_port}"
    proc = start_process(
        [mailpit_binary()],
        env={"PATH": os.environ.get("PATH", ""), "TMPDIR": str(data_dir), **env},
        log=data_dir / "relay.log", ready=lambda: answers(f"{api}/readyz"), what="mail relay",
    )
    return Mailpit(smtp_port, api, proc, auth=(RELAY_USER, key))


@pytest.fixture(scope="module")
def mailpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailpit]:
    m = start_mailpit(tmp_path_factory.mktemp("mailpit"))
    yield m
    m.stop()


#: what the relay's rendered settings say (neither reaches the relay's own environment)
SENDER = "TelestackDB <no-reply@telestack.test>"
ACTION_URL = "https://app.telestack.test/auth/action"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for the provider's STARTTLS (the relay skips verifying it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("smtp.provider.test")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def relay_env(provider: Mailpit, http_port: int, smtp_port: int, key: str,
              login: tuple[str, str]) -> dict[str, str]:
    """The relay container's environment, rendered by infra/mail_relay.py for a provider on loopback."""
    settings = MailSettings(action_url=ACTION_URL, from_address=SENDER, smtp_port=smtp_port,
                            ui_port=http_port, public_url="https://mail-relay.telestack.test",
                            provider=SmtpProviderSettings(host="127.0.0.1", port=provider.smtp_port,
                                                          security="starttls", auth="plain"))
    env = mail_relay.relay_env(settings, http_listen=f"127.0.0.1:{http_port}",
                               smtp_listen=f"127.0.0.1:{smtp_port}")
    env |= mail_relay.relay_secret_env(key, *login)
    # the one addition: the provider's certificate is self-signed here (a real provider's is not)
    return env | {"MP_SMTP_RELAY_ALLOW_INSECURE": "true"}


def start_relay_to(provider: Mailpit, data_dir: Path, key: str, login: tuple[str, str]) -> Mailpit:
    """A mail relay (send API key ``key``) relaying everything to ``provider`` with ``login``."""
    http_port, smtp_port = free_port(), free_port()
    return start_mail_relay(data_dir, relay_env(provider, http_port, smtp_port, key, login), http_port,
                            smtp_port, key)
