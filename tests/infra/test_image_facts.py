"""The containers the cloud program renders, checked against what their images really do.

The facts (entrypoint, default command, shipped binaries, the env var names the entrypoint reads) are in
``tests/contracts/images/images.yaml``, each with the upstream file it was read from (repository, path,
commit): docker-library/postgres ``15/bookworm/Dockerfile`` and ``docker-entrypoint.sh``,
supertokens/supertokens-docker-postgresql ``Dockerfile`` and ``docker-entrypoint.sh``, minio/minio
``Dockerfile.release`` and ``dockerscripts/docker-entrypoint.sh``, seaweedfs/seaweedfs
``docker/Dockerfile.go_build`` and ``docker/entrypoint.sh``, centrifugal/centrifugo ``Dockerfile``,
docker-library/redis ``7.4-rc/debian/Dockerfile`` and ``docker-entrypoint.sh``.

Checked on each rendered ``docker.Container`` of every shipped environment (Pulumi mocks, as
test_cloud_stack.py): the image's own entrypoint stays and receives a command its init handles (the
old rendering replaced PostgreSQL's entrypoint with ``postgres``, skipping initdb and the step down
from root: this test failed on it), health probes run a binary the image ships, and every env var
name is one the image reads (or one our own script or config file in that container reads); an image
that steps down to its own user gets its data volume where it owns the directory.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.settings import ROOT
from tests.support.cloud_stack import (
    ENVIRONMENTS,
    MAIL_VARIANT,
    Registered,
    Stack,
    container_env,
    run_variant,
    unwrap,
)

FACTS_FILE = ROOT / "tests/contracts/images/images.yaml"
FACTS: dict[str, dict[str, Any]] = yaml.safe_load(FACTS_FILE.read_text())["images"]


def repository(ref: str) -> str:
    """``quay.io/minio/minio:RELEASE...@sha256:...`` -> ``quay.io/minio/minio``."""
    return ref.split("@", 1)[0].rsplit(":", 1)[0]


def facts_for(ref: str) -> dict[str, Any]:
    found = [f for f in FACTS.values() if repository(ref) in f["repositories"]]
    assert len(found) == 1, f"{ref}: no entry in {FACTS_FILE.name} (add its facts, with their source)"
    return found[0]


#: every shipped environment, and two in a rotation window (previous keys add env to SeaweedFS and the job)
CASES = [(env, False) for env in (*ENVIRONMENTS, MAIL_VARIANT)] + [("dev", True), ("staging", True)]


@pytest.fixture(scope="module", params=CASES, ids=[f"{e}{'-rotating' if r else ''}" for e, r in CASES])
def stack(request: pytest.FixtureRequest) -> Stack:
    env_name, rotating = request.param
    return run_variant(env_name, rotating=rotating)


def rendered(stack: Stack) -> list[tuple[Registered, str, dict[str, Any]]]:
    """Every container with its image reference and that image's facts."""
    images = {f"sha256:{r.name}": r.inputs["name"]
              for r in stack.recorder.of_type("docker:index/remoteImage:RemoteImage")}
    out = []
    for c in stack.recorder.of_type("docker:index/container:Container"):
        ref = images[c.inputs["image"]]
        out.append((c, ref, facts_for(ref)))
    assert out, "no container rendered"
    return out


def is_job(c: Registered) -> bool:
    return c.inputs.get("restart") == "no"


def test_every_pinned_image_has_sourced_facts() -> None:
    from tests.support.environment_files import MAILPIT_IMAGE

    facts_for(MAILPIT_IMAGE["image"]["repository"])  # the relay's image, pinned by environments with mail
    for env_file in sorted((ROOT / "config/environments").glob("*.yaml")):
        docker = (yaml.safe_load(env_file.read_text()) or {}).get("docker") or {}
        for settings in docker.values():
            if isinstance(settings, dict) and "image" in settings:
                facts_for(settings["image"]["repository"])
    for name, f in FACTS.items():
        assert f["sources"], name
        for src in f["sources"]:
            assert src["repo"].count("/") == 1 and src["path"], f"{name}: {src}"
            assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]), f"{name}: {src}"


def test_containers_keep_the_images_entrypoint_and_its_init(stack: Stack) -> None:
    for c, ref, f in rendered(stack):
        entry = c.inputs.get("entrypoints")
        command = list(c.inputs.get("command") or f["cmd"])
        if not command:  # no command at all: the entrypoint is the server itself (Mailpit, set by env)
            assert entry is None and f["entrypoint"] and not f["init_commands"], f"{c}: nothing to run"
            continue
        if entry is not None:
            # only a one-shot job may replace it (the spec says so), and only with a binary the image has
            assert is_job(c), f"{c}: replaces {ref}'s entrypoint {f['entrypoint']} with {entry}"
            assert entry[0] in f["binaries"], f"{c}: {entry[0]} is not in {ref}"
            continue
        if f["init_commands"]:
            assert command[0] in f["init_commands"], (
                f"{c}: {ref}'s entrypoint {f['entrypoint']} runs its init for {f['init_commands']}, "
                f"not for {command[0]!r}")
        else:
            assert command[0] in f["binaries"], f"{c}: {ref} has no entrypoint and no {command[0]!r}"


def test_health_probes_run_a_binary_the_image_ships(stack: Stack) -> None:
    for c, ref, f in rendered(stack):
        check = c.inputs.get("healthcheck")
        if is_job(c):
            assert not check, f"{c}: a job has no health check"
            continue
        assert check, f"{c}: no health check"
        form, *argv = check["tests"]
        assert form == "CMD", f"{c}: {form} probe {argv}: exec form, so no shell is needed"
        assert argv[0] in f["binaries"], f"{c}: probe {argv[0]!r} is not in {ref} ({f['binaries']})"


def test_env_names_are_ones_the_image_reads(stack: Stack) -> None:
    for c, ref, f in rendered(stack):
        ours = " ".join([*unwrap(c.inputs.get("command") or []),
                         *(u["content"] for u in unwrap(c.inputs.get("uploads") or []))])
        for name in container_env(c):
            read = name in f["env"] or name.startswith(tuple(f["env_prefixes"]))
            # a name our own script or config file in that container reads is read too
            read = read or re.search(rf"\$\{{?{name}\b", ours) is not None
            assert read, f"{c}: {ref} never reads {name}"


def test_data_volumes_of_images_that_step_down_are_where_the_image_owns_the_directory(stack: Stack) -> None:
    """SeaweedFS' entrypoint drops to its ``seaweed`` user and fixes the ownership of ``/data`` only:
    a volume mounted below it is root's, and ``weed`` could not write it."""
    for c, ref, f in rendered(stack):
        owned = f.get("owned_data")
        for volume in c.inputs.get("volumes") or []:
            if owned:
                assert volume["containerPath"] == owned, f"{c}: {ref} owns {owned}, not {volume}"
