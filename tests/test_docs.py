"""The docs cover what the code defines: routes, settings, config keys, ops subcommands, make targets.

Modelled on Datasette's and sqlite-utils' ``tests/test_docs.py``: each item is
read from the code (never from a list kept here), so a new route, setting or
subcommand fails this suite until its doc names it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml

from infra import environment as infra_environment
from scripts.ops.cli import build_parser
from worker import settings as worker_settings
from worker.app import ROUTES

ROOT = Path(__file__).resolve().parents[1]
API_MD = "docs/api.md"
CONFIGURATION_MD = "docs/configuration.md"
RUNBOOKS_MD = "docs/runbooks.md"


@cache
def doc(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def _documented(term: str, relative: str) -> bool:
    """``term`` has its own table row (first cell exactly `` `term` ``); a mention in prose is not enough."""
    return re.search(rf"^\| `{re.escape(term)}` \|", doc(relative), re.MULTILINE) is not None


# --- (a) routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [f"{r.method} {r.path}" for r in ROUTES])
def test_route_documented(route: str) -> None:
    # literal "METHOD /path", not followed by more path (so "POST /v1/x" does not pass for "POST /v1/x/{id}")
    assert re.search(re.escape(route) + r"(?![\w/{}-])", doc(API_MD)), f"{route} is missing from {API_MD}"


# --- (b) gateway settings -----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(worker_settings.binding_names().values()))
def test_gateway_setting_documented(key: str) -> None:
    assert _documented(key, CONFIGURATION_MD), f"gateway setting {key} is missing from {CONFIGURATION_MD}"


def test_no_stale_gateway_setting_documented() -> None:
    """The reverse check: a settings row in the docs whose key the gateway no longer reads is stale."""
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", doc(CONFIGURATION_MD), re.MULTILINE)
    known = set(worker_settings.binding_names().values())
    stale = [key for key in rows if key not in known and not key.startswith("TELESTACK_")]
    assert (
        not stale
    ), f"{CONFIGURATION_MD} documents gateway settings worker/settings.py does not have: {stale}"


# --- (c) environment-file keys ------------------------------------------------------------------


def _dataclass_of(annotation: object) -> type | None:
    """The dataclass an annotation names, unwrapping ``X | None``; None for a leaf value."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = inner[0] if len(inner) == 1 else None
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


def environment_keys(cls: type = infra_environment.Environment, prefix: str = "") -> Iterator[str]:
    """Every dotted key the environment-file schema (the dataclasses of infra/environment.py) accepts.

    When one dataclass type is used by several fields of the same parent (the ``docker.*``
    container blocks), its keys are documented once under ``<parent>.*.``.
    """
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    nested = {f.name: _dataclass_of(hints[f.name]) for f in fields}
    shared = {t for t in nested.values() if t is not None and list(nested.values()).count(t) > 1}
    seen_shared: set[type] = set()
    for f in fields:
        key = f"{prefix}{f.name}"
        yield key
        child = nested[f.name]
        if child is None:
            continue
        base = next((b for b in shared if child is not b and issubclass(child, b)), None)
        if child in shared:
            if child not in seen_shared:
                seen_shared.add(child)
                yield from environment_keys(child, f"{prefix}*.")
        elif base is not None:  # a shared block with keys of its own (docker.postgres.host_port)
            inherited = {b.name for b in dataclasses.fields(base)}
            yield from (k for k in environment_keys(child, f"{key}.") if k[len(key) + 1 :].split(".")[0]
                        not in inherited)
        else:
            yield from environment_keys(child, f"{key}.")


def test_environment_schema_is_walked() -> None:
    """Guard the walker itself: a nested, a cloud-only and a shared-block key are all found."""
    keys = set(environment_keys())
    assert {"target", "storage.seaweedfs.webdav", "cloudflare.outbox_cron", "docker.*.image.tag",
            "docker.postgres.host_port"} <= keys
    assert "docker.postgres.image.tag" not in keys  # a shared block's keys are documented once, as docker.*


@pytest.mark.parametrize("key", list(environment_keys()))
def test_environment_key_documented(key: str) -> None:
    assert _documented(
        key, CONFIGURATION_MD
    ), f"environment-file key {key} (infra/settings.py) is missing from {CONFIGURATION_MD}"


# --- (d) Pulumi stack config --------------------------------------------------------------------


def pulumi_config_keys() -> list[str]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    return sorted(project.get("config") or {})


def test_pulumi_config_declares_keys() -> None:
    assert "telestack:adminKey" in pulumi_config_keys(), "Pulumi.yaml's config section could not be read"


@pytest.mark.parametrize("key", pulumi_config_keys())
def test_pulumi_config_key_documented(key: str) -> None:
    assert _documented(
        key, CONFIGURATION_MD
    ), f"Pulumi.yaml config key {key} is missing from {CONFIGURATION_MD}"


# --- (e) ops subcommands ------------------------------------------------------------------------


def _subparsers() -> argparse._SubParsersAction:
    """The subcommands of ``scripts/ops/cli.py``'s ``build_parser()`` (argparse has no public accessor)."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise AssertionError("scripts/ops/cli.py build_parser() has no subcommands")


def ops_subcommands() -> list[str]:
    return sorted(_subparsers().choices)


@pytest.mark.parametrize("name", ops_subcommands())
def test_ops_subcommand_documented(name: str) -> None:
    text = doc(RUNBOOKS_MD)
    assert re.search(
        rf"^## {re.escape(name)}(?![\w-])", text, re.MULTILINE
    ), f"ops subcommand {name} has no '## {name}' runbook section in {RUNBOOKS_MD}"
    assert re.search(
        rf"python -m scripts\.ops {re.escape(name)}(?![\w-])", text
    ), f"ops subcommand {name} has no 'python -m scripts.ops {name}' command in {RUNBOOKS_MD}"


@pytest.mark.parametrize("name", ops_subcommands())
def test_ops_subcommand_has_help(name: str) -> None:
    """Like sqlite-utils: every command explains itself in ``-h`` too."""
    helps = {choice.dest: choice.help for choice in _subparsers()._choices_actions}
    assert helps.get(name), f"ops subcommand {name} has no help text in scripts/ops"


# --- (f) make targets ---------------------------------------------------------------------------


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE)}


def _make_references() -> list[tuple[str, str]]:
    found = []
    for relative in ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]:
        for target in sorted(set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", doc(relative), re.MULTILINE))):
            found.append((relative, target))
    return found


def test_readme_names_make_targets() -> None:
    assert {"up", "test", "down"} <= {t for f, t in _make_references() if f == "README.md"}


@pytest.mark.parametrize(("relative", "target"), _make_references())
def test_make_target_exists(relative: str, target: str) -> None:
    assert (
        target in make_targets()
    ), f"{relative} says `make {target}` but the Makefile has no {target} target"


# --- CHANGELOG ----------------------------------------------------------------------------------


def test_changelog_versions_are_dated_and_bullets_cite_an_issue() -> None:
    text = doc("CHANGELOG.md")
    versions = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert versions, "CHANGELOG.md has no '## <version> — <date>' section"
    if versions[0] == "Unreleased":  # changes merged since the last release collect on top
        versions = versions[1:]
    for heading in versions:
        assert re.fullmatch(
            r"\d+\.\d+\.\d+ — \d{4}-\d{2}-\d{2}", heading
        ), f"CHANGELOG.md: {heading!r} is not '<version> — <YYYY-MM-DD>'"
    for line in re.findall(r"^- .+(?:\n  .+)*", text, re.MULTILINE):
        assert re.search(
            r"\(#\d+(?:, #\d+)*\)\s*$", line
        ), f"CHANGELOG.md: bullet cites no issue: {line[:80]!r}"


# --- docs/architecture.md: the module map -----------------------------------------------------------

ARCHITECTURE_MD = "docs/architecture.md"
_MAPPED_TREES = {"worker": "*.py", "infra": "*.py", "scripts/ops": "*.py", "sdk/web/src": "*.ts"}


def _architecture_paths() -> set[str]:
    return set(re.findall(r"`((?:worker|infra|scripts|sdk|tests|config)/[\w./*-]+)`", doc(ARCHITECTURE_MD)))


@pytest.mark.parametrize("path", sorted(_architecture_paths()))
def test_architecture_names_only_existing_modules(path: str) -> None:
    matches = list(ROOT.glob(path.rstrip("/"))) if "*" in path else [ROOT / path]
    assert matches and all(m.exists() for m in matches), f"{ARCHITECTURE_MD} names {path}, which is not there"


def _modules() -> list[str]:
    found = []
    for tree, pattern in _MAPPED_TREES.items():
        for path in sorted((ROOT / tree).rglob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" or "/standins/" in relative or "node_modules" in relative:
                continue
            found.append(relative)
    return found


@pytest.mark.parametrize("module", _modules())
def test_architecture_maps_every_module(module: str) -> None:
    assert module in _architecture_paths(), f"{module} is missing from the module map in {ARCHITECTURE_MD}"
