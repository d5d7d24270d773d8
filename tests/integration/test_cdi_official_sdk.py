"""The official SuperTokens backend SDK (supertokens-python) drives the CDI target, one recipe flow a test.

The SDK runs in its own venv (scripts/supertokens_sdk_venv.sh: its pins conflict with pulumi's), so
each flow is a subprocess running tests/support/supertokens_sdk_driver.py; a flow passes when every
SDK call got the answer the real core gives. ``TELESTACK_CDI_URL`` points it at a real core. A new
flow is one ``@step`` in the driver (see its docstring); it shows up here by itself.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.standin import Standin
from tests.support.supertokens_sdk_driver import STEPS

DRIVER = ROOT / "tests/support/supertokens_sdk_driver.py"


@cache
def sdk_python() -> Path:
    """The SDK venv's python, created on first use (cached under ~/.cache/telestack by version)."""
    out = subprocess.run(["bash", str(ROOT / "scripts/supertokens_sdk_venv.sh")], capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, f"creating the SDK venv failed:\n{out.stderr[-2000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("flow", sorted(STEPS))
def test_official_sdk_flow(cdi: Standin, flow: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPERTOKENS_", "PYTHON"))}
    env.update({"CDI_URL": cdi.url, "CDI_API_KEY": cdi.api_key})
    out = subprocess.run([str(sdk_python()), str(DRIVER), flow], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0 and out.stdout.strip().endswith(f"ok {flow}"), \
        f"SDK flow {flow} failed:\n{out.stdout[-1500:]}\n{out.stderr[-3000:]}"
