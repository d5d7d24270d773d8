"""The official SuperTokens backend SDK (supertokens-python) drives the CDI target, one recipe flow a test.

The SDK runs in its own venv (scripts/supertokens_sdk_venv.sh: its pins conflict with pulumi's), so
each flow is a subprocess running tests/support/supertokens_sdk_driver.py; a flow passes when every
SDK call got the answer the real core gives. Every core exchange the SDK made is then checked against
the vendored CDI spec (the operation exists, the request body and query, the answer), with the same
closed schemas, 5.6 overlay and core answers as the contract test (tests/support/cdi_spec.py), and each flow
must have reached the core APIs it is about. ``TELESTACK_CDI_URL`` points it at a real core. A new flow is one
``@step`` in the driver (see its docstring); it shows up here by itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.cdi_spec import response_schema, spec, validate
from tests.support.paths import ROOT
from tests.support.standin import Standin
from tests.support.supertokens_sdk_driver import STEPS

DRIVER = ROOT / "tests/support/supertokens_sdk_driver.py"
_PREFIX = re.compile(r"^(/appid-[a-z0-9-]+)?(/public)?(?=/)")

#: the core APIs a flow exists to exercise: each must have been called, so an SDK that answered from
#: its own state (or skipped the core) fails the flow
MUST_CALL: dict[str, set[tuple[str, str]]] = {
    "emailverification": {("post", "/recipe/user/email/verify/token"), ("post", "/recipe/user/email/verify"),
                          ("get", "/recipe/user/email/verify"), ("post", "/recipe/user/email/verify/remove"),
                          ("post", "/recipe/user/email/verify/token/remove"), ("get", "/user/id")},
    "password_reset": {("post", "/recipe/user/password/reset/token"),
                       ("post", "/recipe/user/password/reset/token/consume"), ("put", "/recipe/user"),
                       ("post", "/recipe/signin")},
    "thirdparty": {("post", "/recipe/signinup"), ("get", "/users/by-accountinfo"), ("get", "/user/id")},
    "users": {("get", "/users"), ("get", "/users/count"), ("post", "/user/remove"), ("get", "/user/id")},
}

#: query parameters the SDK sends that the spec does not document: /apiversion gets the app's domains
#: (the core ignores them); SessionUserAPI reads fetchSessionsForAllLinkedAccounts (default true; it
#: matters only for linked accounts, which neither the stand-in nor our gateway creates)
QUERY_BEYOND_SPEC: dict[tuple[str, str], set[str]] = {
    ("get", "/apiversion"): {"apiDomain", "websiteDomain"},
    ("get", "/recipe/session/user"): {"fetchSessionsForAllLinkedAccounts"},
}


@cache
def sdk_python() -> Path:
    """The SDK venv's python, created on first use (cached under ~/.cache/telestack by version)."""
    out = subprocess.run(["bash", str(ROOT / "scripts/supertokens_sdk_venv.sh")], capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, f"creating the SDK venv failed:\n{out.stderr[-2000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


def _query_names(op: dict[str, Any]) -> set[str]:
    names = set()
    for param in op.get("parameters", []):
        if "$ref" in param:
            param = spec()["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        if param.get("in") == "query":
            names.add(param["name"])
    return names


def check_exchange(exchange: dict[str, Any]) -> tuple[str, str]:
    """Assert one recorded SDK-to-core exchange matches the spec; returns its (method, spec path)."""
    method = exchange["method"].lower()
    key = (method, _PREFIX.sub("", urlsplit(exchange["url"]).path) or "/")
    op = spec()["ops"].get(key)
    assert op is not None, f"the SDK called {key}, which is not in the CDI spec"
    unknown = set(exchange["query"]) - _query_names(op) - QUERY_BEYOND_SPEC.get(key, set())
    assert not unknown, f"{key}: query parameters {sorted(unknown)} are not in the CDI spec"
    if exchange["body"] is not None:
        request_schema = op["requestBody"]["content"]["application/json"]["schema"]
        validate(request_schema, exchange["body"], f"{key} request")
    assert exchange["status"] == 200, f"{key} answered {exchange['status']}: {exchange['answer']}"
    validate(response_schema(op, 200)[1], exchange["answer"], f"{key} 200 response")
    return key


@pytest.mark.parametrize("flow", sorted(STEPS))
def test_official_sdk_flow(cdi: Standin, flow: str, tmp_path: Path) -> None:
    log = tmp_path / "exchanges.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPERTOKENS_", "PYTHON"))}
    env.update({"CDI_URL": cdi.url, "CDI_API_KEY": cdi.api_key, "CDI_EXCHANGES": str(log)})
    out = subprocess.run([str(sdk_python()), str(DRIVER), flow], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=180, check=False)
    exchanges = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert out.returncode == 0 and out.stdout.strip().endswith(f"ok {flow}"), \
        f"SDK flow {flow} failed:\n{out.stdout[-1500:]}\n{out.stderr[-3000:]}\nlast exchanges:\n" + \
        "\n".join(json.dumps(e)[:600] for e in exchanges[-4:])
    called = {check_exchange(e) for e in exchanges}
    missing = MUST_CALL.get(flow, set()) - called
    assert not missing, f"flow {flow} never reached {sorted(missing)}"
