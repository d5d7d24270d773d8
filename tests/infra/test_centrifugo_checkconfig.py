"""Every environment's Centrifugo config, as the stack renders it, passes the pinned binary's ``checkconfig``.

The config is the ``config.json`` file of the Centrifugo service spec the stack deploys: the local
renderer's (``infra.services.centrifugo``) for ``target: local``, the container renderer's
(``infra.cloud_services.centrifugo``: the same file in the pinned image, plus the Redis engine env when
replicated) for ``target: docker``. ``checkconfig --strict`` also refuses unknown keys, so a key
Centrifugo v6 renamed or dropped fails here rather than being ignored at start. The secrets reach
Centrifugo through env in the stack, so they are passed the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra import cloud_services, services
from infra.spec import ServiceSpec
from tests.support.paths import CONFIG, binary
from tests.support.stack_settings import stack_settings

ENVIRONMENTS = sorted(p.stem for p in (CONFIG / "environments").glob("*.yaml"))
def _centrifugo_spec(env_name: str, tmp_path: Path) -> ServiceSpec:
    s = stack_settings({}, env_name=env_name, state=tmp_path)
    return cloud_services.centrifugo(s) if s.environment.target == "docker" else services.centrifugo(s)


def _checkconfig(config: str, spec: ServiceSpec, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.json"
    path.write_text(config)
    env = {"PATH": os.environ.get("PATH", ""), **spec.env, **{k: str(v) for k, v in spec.secret_env.items()}}
    return subprocess.run([binary("centrifugo"), "checkconfig", "--strict", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_every_environment_is_covered() -> None:
    assert {"local", "dev", "staging", "prod"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_generated_config_passes_checkconfig(env_name: str, tmp_path: Path) -> None:
    spec = _centrifugo_spec(env_name, tmp_path)
    config = spec.files["config.json"]
    assert json.loads(config), "an empty config would check nothing"
    result = _checkconfig(config, spec, tmp_path)
    assert result.returncode == 0, f"{env_name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("mutation", ["unknown key", "bad namespace name"])
def test_checkconfig_refuses_a_broken_config(mutation: str, tmp_path: Path) -> None:
    """The check can fail: the same generated config, broken the two ways checkconfig must catch."""
    spec = _centrifugo_spec("dev", tmp_path)
    doc = json.loads(spec.files["config.json"])
    if mutation == "unknown key":
        doc["client"]["allowed_origin"] = ["https://typo.example"]
    else:
        doc.setdefault("channel", {}).setdefault("namespaces", []).append({"name": "no spaces allowed"})
    result = _checkconfig(json.dumps(doc), spec, tmp_path)
    assert result.returncode != 0, f"{mutation} passed checkconfig"
