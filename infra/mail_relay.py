"""A cloud stack's mail relay: Mailpit's send API in front of the environment's SMTP provider.

The gateway Worker has no SMTP client, so it posts each message over HTTP
(:mod:`worker.mail_relay`) to this container, published like SuperTokens Core and
reached at ``mail.public_url``. Mailpit (``docker.mailpit``, the version the local
stack builds) is configured entirely by environment (tests/contracts/mailpit/env.yaml):

- ``MP_SEND_API_AUTH`` and ``MP_UI_AUTH`` hold ``telestack:<mailRelayKey>``: the send API
  and everything else on the published port (web UI, message API) need the key;
- ``MP_SMTP_RELAY_ALL`` with ``MP_SMTP_RELAY_*`` naming ``mail.provider``, and
  ``MP_SMTP_RELAY_FWD_SMTP_ERRORS``: each message is relayed before the send API
  answers, and a provider's refusal is the API's answer (the gateway's 503 ``mail_unavailable``);
- its SMTP listener binds the container's loopback only (``mail.smtp_port``): no other
  container can use the stack as an open relay.

Secrets (the key, the provider's user name and password) reach it as secret env only.

What it keeps: Mailpit stores each message it relayed. It cannot keep none
(``MP_MAX_MESSAGES`` 0 means unlimited), so it keeps :data:`MAX_MESSAGES` (the newest), prunes
each minute, drops anything older than :data:`MAX_AGE`, and its database is a temporary file in
the container (no volume): a restart empties it. The stored links are single-use and expire
(reset 1 hour, verification 1 day), and reading them needs the relay key.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.environment import MailSettings
from infra.settings import CloudRefs, StackSettings
from infra.spec import HealthCheck, Port, ServiceSpec
from worker.mail_relay import RELAY_USER

#: messages Mailpit keeps after relaying them (its smallest bound: 0 would keep all)
MAX_MESSAGES = 1
#: and for how long at most (Mailpit's unit is hours; a reset link expires in one)
MAX_AGE = "1h"
#: Mailpit's own switches take "true" (tests/contracts/mailpit/env.yaml enabled_values)
ON = "true"


def relay_env(mail: MailSettings, *, http_listen: str, smtp_listen: str) -> dict[str, str]:
    """Mailpit's plain environment: listeners, retention, and relay-all to ``mail.provider``."""
    provider = mail.provider
    assert provider is not None, "check_cloud_mail requires mail.provider"
    env = {
        "MP_UI_BIND_ADDR": http_listen,
        "MP_SMTP_BIND_ADDR": smtp_listen,
        "MP_DISABLE_VERSION_CHECK": ON,
        "MP_MAX_MESSAGES": str(MAX_MESSAGES),
        "MP_MAX_AGE": MAX_AGE,
        "MP_SMTP_RELAY_ALL": ON,
        "MP_SMTP_RELAY_HOST": provider.host,
        "MP_SMTP_RELAY_PORT": str(provider.port),
        "MP_SMTP_RELAY_AUTH": provider.auth,
        "MP_SMTP_RELAY_FWD_SMTP_ERRORS": ON,
    }
    env["MP_SMTP_RELAY_TLS" if provider.security == "tls" else "MP_SMTP_RELAY_STARTTLS"] = ON
    return env


def relay_secret_env(key: Any, username: Any = None, password: Any = None) -> dict[str, Any]:
    """Mailpit's secret environment: the send-API (and UI) credential, and the provider's login if any.

    ``key`` is a Pulumi secret in a stack; the integration test passes the plain text it runs with.
    """
    credential = (f"{RELAY_USER}:{key}" if isinstance(key, str)
                  else pulumi.Output.concat(RELAY_USER, ":", key))
    env: dict[str, Any] = {"MP_SEND_API_AUTH": credential, "MP_UI_AUTH": credential}
    if username is not None:
        env |= {"MP_SMTP_RELAY_USERNAME": username, "MP_SMTP_RELAY_PASSWORD": password}
    return env


def mail_relay(s: StackSettings, refs: CloudRefs) -> ServiceSpec:
    """The relay container: ``mail.ui_port`` published (the Worker's way in), SMTP on its loopback."""
    mail, docker = s.environment.mail, s.environment.docker
    assert mail is not None and mail.provider is not None and docker is not None and docker.mailpit
    assert s.secrets.mail_relay_key is not None, "load() reads telestack:mailRelayKey with mail"
    login = mail.provider.auth != "none"
    listen = {"http_listen": f"${{host}}:{mail.ui_port}", "smtp_listen": f"127.0.0.1:{mail.smtp_port}"}
    return ServiceSpec(
        name="mail-relay", program="",  # the image's ENTRYPOINT is /mailpit, configured by env alone
        env=relay_env(mail, **listen),
        secret_env=relay_secret_env(s.secrets.mail_relay_key, refs.smtp_username if login else None,
                                    refs.smtp_password if login else None),
        ports=(Port("http", mail.ui_port, "mail.ui_port", public=True),),
        # /readyz answers without credentials; the image's own probe is `/mailpit readyz`
        health=HealthCheck(port="http", path="/readyz",
                           command=("/mailpit", "readyz", "--listen", f"127.0.0.1:{mail.ui_port}")),
        image=docker.mailpit.image.ref,
    )
