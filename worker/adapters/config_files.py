"""Read the gateway's config files on CPython (a Worker reads no files: its bundle carries them).

``config/collections/<name>.yaml`` -> the COLLECTIONS dict, and :func:`collections_json`, its one JSON
text; ``config/auth.yaml`` -> the AUTH_CONFIG dict, and :func:`auth_config_json`, its one JSON text.
:func:`config_settings` holds both: the local gateway's settings and the Worker bundle's generated
module are that dict (the D1 migrations use ``collections_json`` too), so every target parses the same
config. ``config/migrations/*.sql`` -> (name, sql) pairs. Errors name the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from worker import jsoncodec
from worker.collections import CollectionsError, Registry, parse_collection


def load_collections(config_dir: str | Path) -> dict[str, Any]:
    """``{"collections": {stem: spec}}`` from ``<config_dir>/collections/*.yaml``, each spec validated."""
    found: dict[str, Any] = {}
    for path in sorted((Path(config_dir) / "collections").glob("*.y*ml")):
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CollectionsError(f"{path}: not valid YAML: {exc}") from None
        try:
            parse_collection(path.stem, spec, where="collection")
        except CollectionsError as exc:
            raise CollectionsError(f"{path}: {exc}") from None
        found[path.stem] = spec
    doc = {"collections": found}
    try:  # rules may look up other collections: checked once all are read
        Registry.from_dict(doc)
    except CollectionsError as exc:
        name = str(exc).split(".")[1] if str(exc).startswith("collections.") else ""
        raise CollectionsError(f"{Path(config_dir) / 'collections' / name}.yaml: {exc}") from None
    return doc


def collections_json(config_dir: str | Path) -> str:
    """The COLLECTIONS setting's text: :func:`load_collections` as JSON."""
    return jsoncodec.dumps(load_collections(config_dir))


def load_auth_config(config_dir: str | Path) -> dict[str, Any]:
    """``<config_dir>/auth.yaml`` ({} when absent), its ``user_metadata`` rules checked."""
    from worker.user_metadata import MetadataConfigError, MetadataRules

    path = Path(config_dir) / "auth.yaml"
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MetadataConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise MetadataConfigError(f"{path}: must be a mapping")
    unknown = sorted(set(doc) - {"user_metadata"})
    if unknown:
        raise MetadataConfigError(f"{path}: {unknown[0]}: unknown key (allowed: user_metadata)")
    try:
        MetadataRules.parse(doc.get("user_metadata"))
    except MetadataConfigError as exc:
        raise MetadataConfigError(f"{path}: {exc}") from None
    return doc


def auth_config_json(config_dir: str | Path) -> str:
    """The AUTH_CONFIG setting's text: :func:`load_auth_config` as JSON."""
    return jsoncodec.dumps(load_auth_config(config_dir))


def config_settings(config_dir: str | Path) -> dict[str, str]:
    """Every gateway setting built from ``config/`` rather than bound: setting name -> its JSON text."""
    return {"COLLECTIONS": collections_json(config_dir), "AUTH_CONFIG": auth_config_json(config_dir)}


def load_migrations(config_dir: str | Path) -> list[tuple[str, str]]:
    return [
        (p.stem, p.read_text(encoding="utf-8"))
        for p in sorted((Path(config_dir) / "migrations").glob("[0-9]*.sql"))
    ]
