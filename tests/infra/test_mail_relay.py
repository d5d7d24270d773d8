"""infra/mail_relay.py: the relay container a cloud stack with mail renders, against Mailpit's contract.

The contract is tests/contracts/mailpit/ (Mailpit v1.33.1's env names and value rules, and its send API
from the swagger; SOURCE.txt says where each was read). Rendered through the cloud program under Pulumi
mocks, as tests/infra/test_cloud_stack.py does. tests/integration/test_mail_relay.py runs the real
Mailpit with this same environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import fastjsonschema
import pulumi
import pytest
import yaml

from infra import cloud_stack, mail_relay
from infra.config_error import StackConfigError
from infra.environment import Environment, SmtpProviderSettings
from infra.secret_keys import MAIL_SECRET_KEYS, SMTP_SECRET_KEYS
from infra.settings import ROOT, CloudRefs
from tests.support.cloud_stack import (
    SECRETS,
    Stack,
    cloud_stack_settings,
    containers,
    is_secret,
    run_stack,
    unwrap,
    walk_plain,
    with_mail,
    worker_bindings,
)
from tests.support.environment_files import CLOUD_MAIL, environment_doc, with_cloud_mail
from tests.support.script_module import load_script
from worker.mail import Message
from worker.mail_relay import RELAY_USER, RelayMailer

CONTRACT = ROOT / "tests/contracts/mailpit"
ENV_CONTRACT: dict[str, Any] = yaml.safe_load((CONTRACT / "env.yaml").read_text())
SEND_API: dict[str, Any] = json.loads((CONTRACT / "send-api.json").read_text())


def _provider(**changes: Any) -> Any:
    def change(environment: Environment) -> Environment:
        env = with_mail(environment)
        assert env.mail and env.mail.provider
        provider = dataclasses.replace(env.mail.provider, **changes)
        return dataclasses.replace(env, mail=dataclasses.replace(env.mail, provider=provider))
    return change


@pytest.fixture(scope="module")
def stack() -> Stack:
    return run_stack("dev", with_mail)


def relay_container(stack: Stack) -> Any:
    (found,) = [c for name, c in containers(stack).items() if name.endswith("-mail-relay")]
    return found


def relay_env(container: Any) -> dict[str, str]:
    """The container's env, secret entries unwrapped."""
    return dict(unwrap(entry).split("=", 1) for entry in unwrap(container.inputs["envs"]))


def plain_texts(container: Any) -> list[str]:
    """Every string of the container's inputs a Pulumi secret does not hide."""
    return [text for _, text in walk_plain(container.inputs)]


#: the relay's credentials: secret env (a Pulumi secret), never readable in the container's inputs
CREDENTIALS = ("MP_SEND_API_AUTH", "MP_UI_AUTH", "MP_SMTP_RELAY_USERNAME", "MP_SMTP_RELAY_PASSWORD")


def test_the_relay_runs_the_pinned_mailpit_by_its_own_entrypoint_set_by_env_alone(stack: Stack) -> None:
    c = relay_container(stack)
    images = {f"sha256:{r.name}": r.inputs["name"]
              for r in stack.recorder.of_type("remoteImage:RemoteImage")}
    assert images[c.inputs["image"]] == "axllent/mailpit:v1.33.1", c
    assert not c.inputs.get("command") and c.inputs.get("entrypoints") is None, f"{c}: /mailpit runs as is"
    assert not c.inputs.get("uploads") and not c.inputs.get("volumes"), f"{c}: no file, no volume"
    assert c.inputs["healthcheck"]["tests"] == ["CMD", "/mailpit", "readyz", "--listen",
                                                f"127.0.0.1:{CLOUD_MAIL.get('ui_port', 8025)}"]


def test_every_env_name_is_one_mailpit_reads_and_every_value_follows_its_rules(stack: Stack) -> None:
    plain = relay_env(relay_container(stack))
    for name in plain:
        assert name in ENV_CONTRACT["env"], f"Mailpit v1.33.1 never reads {name}"
    on = set(ENV_CONTRACT["enabled_values"])
    for switch in ("MP_SMTP_RELAY_ALL", "MP_SMTP_RELAY_FWD_SMTP_ERRORS", "MP_SMTP_RELAY_STARTTLS",
                   "MP_DISABLE_VERSION_CHECK"):
        assert plain.get(switch) in on, f"{switch}={plain.get(switch)!r} is not on for Mailpit"
    assert not {*ENV_CONTRACT["relay_exclusive_switches"]} <= set(plain), "TLS and STARTTLS both set"
    assert plain["MP_SMTP_RELAY_AUTH"] in ENV_CONTRACT["relay_auth_values"]
    assert re.match(ENV_CONTRACT["max_age_pattern"], plain["MP_MAX_AGE"]), plain["MP_MAX_AGE"]
    assert int(plain["MP_MAX_MESSAGES"]) >= 1, "below 1 Mailpit keeps every message"
    provider = CLOUD_MAIL["provider"]
    assert plain["MP_SMTP_RELAY_HOST"] == provider["host"]
    assert plain["MP_SMTP_RELAY_PORT"] == str(provider["port"])
    # SMTP on the container's loopback: nothing on the network can use the relay without the key
    assert plain["MP_SMTP_BIND_ADDR"].startswith("127.0.0.1:"), plain["MP_SMTP_BIND_ADDR"]
    assert plain["MP_UI_BIND_ADDR"] == f"0.0.0.0:{8025}"


def test_credentials_are_secret_env_only_and_in_mailpits_credential_format(stack: Stack) -> None:
    """Secret-ness is the spec's (render_docker wraps each ``secret_env`` entry as a Pulumi secret; Pulumi
    then hides the container's whole env list, so the rendered inputs cannot tell entries apart)."""
    refs = CloudRefs(account_id="a", zone_id=None, api_token="t", postgres_password="p",
                     smtp_username=SECRETS["smtpUsername"], smtp_password=SECRETS["smtpPassword"])
    spec = mail_relay.mail_relay(cloud_stack_settings("dev", stack.environment), refs)
    assert set(spec.secret_env) == set(CREDENTIALS) and not set(spec.env) & set(CREDENTIALS)
    assert not any(value in text for value in SECRETS.values() for text in spec.env.values())
    c = relay_container(stack)
    env = relay_env(c)
    assert not any(value in text for value in SECRETS.values() for text in plain_texts(c))
    key = SECRETS["mailRelayKey"]
    for name in ENV_CONTRACT["credential_variables"]:
        if name in env:  # one whitespace-free user:password entry: the key and nothing else
            assert env[name] == f"{RELAY_USER}:{key}" and not re.search(r"\s", env[name]), name
    assert (env["MP_SMTP_RELAY_USERNAME"], env["MP_SMTP_RELAY_PASSWORD"]) == (
        SECRETS["smtpUsername"], SECRETS["smtpPassword"])


def test_the_worker_gets_the_relay_url_plain_and_its_key_as_a_secret_binding(stack: Stack) -> None:
    bindings = worker_bindings(stack)
    assert bindings["MAIL_RELAY_URL"] == {"name": "MAIL_RELAY_URL", "type": "plain_text",
                                          "text": CLOUD_MAIL["public_url"]}
    assert bindings["MAIL_RELAY_KEY"]["type"] == "secret_text"
    assert bindings["MAIL_RELAY_KEY"]["text"] == SECRETS["mailRelayKey"]
    version = stack.recorder.one("workerVersion:WorkerVersion")
    raw = version.inputs["bindings"]
    assert is_secret(raw) or is_secret(next(b for b in raw if b["name"] == "MAIL_RELAY_KEY")["text"])
    assert "SMTP_HOST" not in bindings and "SMTP_PASSWORD" not in bindings  # the Worker speaks no SMTP


def test_implicit_tls_and_no_login_render_as_mailpit_reads_them() -> None:
    stack = run_stack("dev", _provider(security="tls", port=465, auth="none"),
                      config={"telestack:smtpUsername": "", "telestack:smtpPassword": ""})
    env = relay_env(relay_container(stack))
    assert env["MP_SMTP_RELAY_TLS"] in ENV_CONTRACT["enabled_values"] and "MP_SMTP_RELAY_STARTTLS" not in env
    assert (env["MP_SMTP_RELAY_PORT"], env["MP_SMTP_RELAY_AUTH"]) == ("465", "none")
    assert not {"MP_SMTP_RELAY_USERNAME", "MP_SMTP_RELAY_PASSWORD"} & set(env), "no login with auth none"


@pytest.mark.parametrize(("key", "message"), [
    ("telestack:smtpPassword", r"telestack:smtpPassword: not set \(mail\.provider\.auth is not none\)"),
    ("telestack:mailRelayKey", r"telestack:mailRelayKey: not set \(mail needs it\): run scripts/secrets\.py"),
])
def test_a_missing_mail_secret_is_named(key: str, message: str) -> None:
    with pytest.raises(StackConfigError, match=message):
        run_stack("dev", with_mail, config={key: ""})


def test_the_body_the_gateway_posts_is_the_send_api_request_mailpit_documents() -> None:
    """The HTTP mailer's request against the vendored swagger's schema of ``POST /api/v1/send``."""
    operation = SEND_API["paths"][mail_relay_send_path()]["post"]
    (body,) = [p for p in operation["parameters"] if p["in"] == "body"]
    validate = fastjsonschema.compile(body["schema"])
    sent: list[tuple[str, str, dict[str, str], bytes]] = []

    class Recording:
        async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                          body: bytes | None = None, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
            from worker.outbound import HttpResponse

            sent.append((method, url, headers or {}, body or b""))
            return HttpResponse(200, b'{"ID": "x"}')

    mailer = RelayMailer(Recording(), "https://relay.example.com/", "k" * 43,
                         "Example <no-reply@example.com>")
    asyncio.run(mailer.send(Message(to="user@example.org", subject="Reset your password", text="link")))
    (method, url, headers, raw) = sent[0]
    assert (method, url) == ("POST", "https://relay.example.com" + mail_relay_send_path())
    assert headers["content-type"] in operation["consumes"]
    request = json.loads(raw)
    validate(request)
    assert request["From"] == {"Email": "no-reply@example.com", "Name": "Example"}
    assert request["To"] == [{"Email": "user@example.org"}]
    assert set(request) <= set(body["schema"]["properties"]), "only fields the API documents"
    assert "ID" in json.dumps(SEND_API["responses"]["SendMessageResponse"])


def mail_relay_send_path() -> str:
    from worker.mail_relay import SEND_PATH

    assert SEND_PATH in SEND_API["paths"], f"{SEND_PATH} is not in the vendored swagger"
    return SEND_PATH


def test_provider_settings_map_one_to_one_onto_mailpits_relay_switches() -> None:
    """Each security mode sets exactly one of Mailpit's two TLS switches (it refuses both at once)."""
    base = with_mail(run_stack("dev").environment)
    assert base.mail
    for security, switch in (("starttls", "MP_SMTP_RELAY_STARTTLS"), ("tls", "MP_SMTP_RELAY_TLS")):
        mail = dataclasses.replace(base.mail, provider=SmtpProviderSettings(host="smtp.example.com",
                                                                             security=security))
        env = mail_relay.relay_env(mail, http_listen="0.0.0.0:1", smtp_listen="127.0.0.1:2")
        assert [k for k in ENV_CONTRACT["relay_exclusive_switches"] if k in env] == [switch]
    credential = mail_relay.relay_secret_env(pulumi.Output.secret("k"))["MP_SEND_API_AUTH"]
    assert isinstance(credential, pulumi.Output)


def test_the_stack_outputs_the_relay_url_and_its_key_as_a_secret(stack: Stack) -> None:
    """What the smoke suite reads the relay's stored mail with (scripts/ops/stack.py Target)."""
    assert stack.outputs["mail_ui_url"] == CLOUD_MAIL["public_url"]
    assert stack.outputs["mail_relay_key"] == SECRETS["mailRelayKey"]

    async def secret() -> bool:  # the Outputs are made on the loop that awaits them, as Pulumi requires
        settings = cloud_stack_settings("dev", stack.environment)
        return await cloud_stack.mail_outputs(settings)["mail_relay_key"].is_secret()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(secret()), "mail_relay_key must be a Pulumi secret output"
    finally:
        loop.close()
    assert cloud_stack.mail_outputs(cloud_stack_settings("dev", run_stack("dev").environment)) == {}


def test_the_relay_key_is_generated_for_stacks_with_mail_and_the_provider_login_never(tmp_path: Path) -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in (*MAIL_SECRET_KEYS, *SMTP_SECRET_KEYS):  # cloud-only: an empty default (Pulumi.yaml's rule)
        entry = declared[f"telestack:{key}"]
        assert entry["default"] == "" and not entry.get("secret") and entry["description"], key
    script = load_script("secrets", "telestack_secrets_script")
    with_mail_file = tmp_path / "dev-mail.yaml"
    with_mail_file.write_text(yaml.safe_dump(with_cloud_mail(environment_doc("dev"))))
    wanted = set(script.wanted_keys("dev", str(with_mail_file)))
    assert set(MAIL_SECRET_KEYS) <= wanted
    assert not set(SMTP_SECRET_KEYS) & wanted, "the provider login comes from the provider"
    assert not set(MAIL_SECRET_KEYS) & set(script.wanted_keys("dev", None)), "no mail, no relay key"
