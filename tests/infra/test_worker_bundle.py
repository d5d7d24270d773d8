"""The Worker bundle and the exact multipart upload Cloudflare's Workers upload API takes.

The expected metadata shape is Cloudflare's documented one
(developers.cloudflare.com/workers/configuration/multipart-upload-metadata): a
``metadata`` part (JSON) with ``main_module``, ``compatibility_date``,
``compatibility_flags`` and ``bindings`` (``{"type":"d1","name","id"}``,
``{"type":"plain_text"|"secret_text","name","text"}``, ``{"type":"json","name","json"}``), then one
part per module whose part name is the module name the metadata refers to. The request as a whole is
also validated against Cloudflare's OpenAPI contract in tests/infra/test_cloudflare_contract.py.

Where the main module must sit, from the runtime's and wrangler's source:

- workerd ``src/pyodide/python-entrypoint-helper.ts`` (``pyimportMainModule``): the main module's
  name must end in ``.py`` and is imported as ``MAIN_MODULE_NAME.slice(0, -3)``, so
  ``worker/entry.py`` would be ``import worker/entry`` (no such module);
- workerd ``src/pyodide/internal/setupPackages.ts`` (``adjustSysPath``): the uploaded modules are
  mounted at ``/session/metadata``, which is on ``sys.path``, so ``worker/app.py`` is ``worker.app``;
- wrangler ``packages/wrangler/src/deployment-bundle/entry.ts`` (``moduleRoot`` defaults to the main
  module's directory) and ``find-additional-modules.ts`` (module names are paths relative to it):
  the main module wrangler uploads is always top-level.
"""

from __future__ import annotations

import ast
import email.parser
import email.policy
import json
import shutil
from pathlib import Path

import pytest

from infra import worker_bundle as wb

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_BINDING_KEYS = {
    "d1": {"type", "name", "id"},
    "plain_text": {"type", "name", "text"},
    "secret_text": {"type", "name", "text"},
    "json": {"type", "name", "json"},
}


def _parse(content_type: str, body: bytes) -> list[tuple[str, str | None, str, bytes]]:
    """(part name, filename, content type, payload) of each part, read by the stdlib MIME parser."""
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart(), "the upload must be multipart/form-data"
    parts = []
    for part in message.iter_parts():
        assert part.get_content_disposition() == "form-data", part
        name = part.get_param("name", header="content-disposition")
        parts.append((name, part.get_filename(), part.get_content_type(), part.get_payload(decode=True)))
    return parts


def _bindings() -> list[dict[str, object]]:
    return [
        wb.binding("DB", "d1", "4e1c28a9-90e4-41da-8b4b-6cf36e5abb29"),
        wb.binding("S3_BUCKET", "plain_text", "telestack-dev"),
        wb.binding("ADMIN_KEY", "secret_text", "not-a-real-key"),
        wb.binding("FEATURES", "json", json.dumps({"dev_auth": False})),
    ]


def test_upload_matches_the_documented_metadata_format() -> None:
    bundle = wb.build_bundle()
    content_type, body = wb.multipart_upload(bundle, _bindings())
    assert content_type.startswith("multipart/form-data; boundary=")
    parts = _parse(content_type, body)

    name, filename, ctype, payload = parts[0]
    assert (name, filename, ctype) == (
        "metadata",
        None,
        "application/json",
    ), "metadata must be the first part"
    meta = json.loads(payload)
    assert set(meta) <= {
        "main_module",
        "compatibility_date",
        "compatibility_flags",
        "bindings",
        "annotations",
    }
    assert meta["main_module"] == "entry.py"
    assert meta["compatibility_date"] == wb.COMPATIBILITY_DATE
    assert len(meta["compatibility_date"]) == 10 and meta["compatibility_date"][4] == "-"
    assert meta["compatibility_flags"] == ["python_workers"]
    for b in meta["bindings"]:
        assert set(b) == DOCUMENTED_BINDING_KEYS[b["type"]], f"binding {b['name']} has keys {sorted(b)}"
    assert {b["type"] for b in meta["bindings"]} == set(DOCUMENTED_BINDING_KEYS)
    assert meta["annotations"] == {"workers/tag": bundle.content_hash[: wb.VERSION_TAG_LIMIT]}

    modules = {p[0]: p for p in parts[1:]}
    assert meta["main_module"] in modules, "main_module must name an uploaded part"
    assert [p[0] for p in parts[1:]] == [m.name for m in bundle.modules], "one part per module, in order"
    for name, filename, ctype, payload in parts[1:]:
        module = bundle.module(name)
        assert filename == name and ctype == module.content_type and payload == module.content, name
    assert modules["worker/entry.py"][3] == (ROOT / "worker/entry.py").read_bytes()


def test_main_module_is_top_level_and_reexports_the_entrypoint() -> None:
    """workerd imports ``main_module[:-3]`` from ``/session/metadata`` (python-entrypoint-helper.ts):
    the main module must be a top-level ``.py`` whose module defines (here: re-exports) ``Default``."""
    bundle = wb.build_bundle()
    main = bundle.main_module
    assert main.endswith(".py") and "/" not in main, f"{main} cannot be imported as {main[:-3]!r}"
    assert bundle.modules[0].name == main, "the main module is the first module"
    tree = ast.parse(bundle.module(main).content)
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("worker.entry", "Default") in imported
    entry = ast.parse((ROOT / "worker/entry.py").read_text())
    assert "Default" in {n.name for n in entry.body if isinstance(n, ast.ClassDef)}
    names = [m.name for m in bundle.modules]
    assert len(names) == len(set(names)), "module names are unique"


def test_upload_is_reproducible_byte_for_byte() -> None:
    first = wb.multipart_upload(wb.build_bundle(), _bindings())
    second = wb.multipart_upload(wb.build_bundle(), _bindings())
    assert first == second


def test_unknown_binding_type_is_refused() -> None:
    with pytest.raises(wb.BundleError, match="kv_namespace"):
        wb.binding("CACHE", "kv_namespace", "x")


@pytest.fixture
def worker_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "worker"
    shutil.copytree(ROOT / "worker", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_changed_source_changes_the_hash_and_unchanged_does_not(worker_copy: Path) -> None:
    reqs = ROOT / "requirements/worker.txt"
    before = wb.build_bundle(worker_copy, reqs)
    assert wb.build_bundle(worker_copy, reqs).content_hash == before.content_hash
    (worker_copy / "__pycache__").mkdir(exist_ok=True)
    (worker_copy / "__pycache__" / "junk.py").write_text("x = 1\n")
    assert wb.build_bundle(worker_copy, reqs).content_hash == before.content_hash, "__pycache__ is not code"
    with (worker_copy / "app.py").open("a") as f:
        f.write("\n# a change\n")
    after = wb.build_bundle(worker_copy, reqs)
    assert after.content_hash != before.content_hash
    assert after.module("worker/app.py").content != before.module("worker/app.py").content


def test_missing_entrypoint_is_an_error(worker_copy: Path) -> None:
    (worker_copy / "entry.py").unlink()
    with pytest.raises(wb.BundleError, match="worker/entry.py is missing"):
        wb.build_bundle(worker_copy, ROOT / "requirements/worker.txt")


def test_unpinned_or_native_dependencies_are_refused(tmp_path: Path, worker_copy: Path) -> None:
    unpinned = tmp_path / "unpinned.txt"
    unpinned.write_text("PyJWT>=2\n")
    with pytest.raises(wb.BundleError, match=r"unpinned.txt:1: .*name==version"):
        wb.build_bundle(worker_copy, unpinned)
    native = tmp_path / "native.txt"
    native.write_text("PyYAML==6.0.2\n")  # a C extension Pyodide would need to provide
    with pytest.raises(wb.BundleError, match="PyYAML has native code"):
        wb.build_bundle(worker_copy, native)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("PyJWT==1.0.0\n")
    with pytest.raises(wb.BundleError, match="pinned to 1.0.0"):
        wb.build_bundle(worker_copy, wrong)


# --- the settings built from config/ (collections, auth config) travel in the bundle -----------------

#: one Worker environment variable holds at most 5 KB ("Environment variable size",
#: developers.cloudflare.com/workers/platform/limits): what the old ``COLLECTIONS`` plain-text binding hit
PLAIN_TEXT_LIMIT_BYTES = 5000


def _bundled_settings(module: wb.Module) -> dict[str, str]:
    """``SETTINGS`` of an uploaded config module, read as Python reads its literal."""
    tree = ast.parse(module.content)
    [value] = [n.value for n in tree.body if isinstance(n, ast.Assign)
               and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["SETTINGS"]]
    settings = ast.literal_eval(value)
    assert isinstance(settings, dict) and all(isinstance(v, str) for v in settings.values())
    return settings


def _bundled_collections(bundle: wb.Bundle) -> str:
    return _bundled_settings(bundle.module(wb.CONFIG_MODULE))["COLLECTIONS"]


def _big_config(tmp_path: Path) -> Path:
    """config/ plus a collection whose schema alone is far over the 5 KB a plain-text binding holds."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    fields = {f"field_{i}": {"type": "string", "maxLength": 100, "description": "é" * 10} for i in range(200)}
    big = {"access": "private", "schema": {"type": "object", "properties": fields}}
    (config / "collections/big.yaml").write_text(json.dumps(big))  # JSON is YAML
    return config


def test_the_upload_carries_the_config_settings_as_a_module_not_bindings() -> None:
    """What is uploaded, not what is built: the module part of the multipart body holds exactly the
    COLLECTIONS and AUTH_CONFIG texts the local gateway uses (worker/asgi.py takes config_settings)."""
    from worker.adapters.config_files import auth_config_json, collections_json, config_settings

    bundle = wb.build_bundle()
    content_type, body = wb.multipart_upload(bundle, _bindings())
    parts = _parse(content_type, body)
    uploaded = {name: (ctype, payload) for name, _, ctype, payload in parts[1:]}
    ctype, payload = uploaded[wb.CONFIG_MODULE]
    assert ctype == wb.PYTHON
    settings = _bundled_settings(wb.Module(wb.CONFIG_MODULE, ctype, payload))
    assert settings == config_settings(ROOT / "config")
    assert settings["COLLECTIONS"] == collections_json(ROOT / "config")
    assert settings["AUTH_CONFIG"] == auth_config_json(ROOT / "config")
    assert json.loads(settings["AUTH_CONFIG"])["user_metadata"]["schema"], "config/auth.yaml has a schema"
    assert "/" not in wb.CONFIG_MODULE, "top-level: worker/entry.py imports it by its bare name"
    entry = ast.parse((ROOT / "worker/entry.py").read_text())
    imported = {a.name for n in ast.walk(entry) if isinstance(n, ast.Import) for a in n.names}
    assert wb.CONFIG_MODULE.removesuffix(".py") in imported
    assert not set(settings) & {b["name"] for b in json.loads(parts[0][3])["bindings"]}


def test_the_bundled_settings_are_the_ones_the_stack_never_binds() -> None:
    """Each setting the bundle carries is in NOT_FROM_STACK, so no binding can shadow or duplicate it."""
    from infra.gateway_bindings import NOT_FROM_STACK
    from worker import settings as gateway_settings

    names = gateway_settings.binding_names()
    bundled = set(_bundled_settings(wb.build_bundle().module(wb.CONFIG_MODULE)))
    assert bundled == {"COLLECTIONS", "AUTH_CONFIG"}
    assert bundled <= {names[f] for f in NOT_FROM_STACK}


def test_an_auth_config_change_is_a_new_version_and_a_bad_one_fails_the_bundle(tmp_path: Path) -> None:
    from worker.user_metadata import MetadataConfigError

    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "auth.yaml").write_text("user_metadata:\n  max_bytes: 512\n")
    bundle = wb.build_bundle(config_dir=config)
    auth = json.loads(_bundled_settings(bundle.module(wb.CONFIG_MODULE))["AUTH_CONFIG"])
    assert auth == {"user_metadata": {"max_bytes": 512}}
    assert bundle.content_hash != wb.build_bundle().content_hash
    (config / "auth.yaml").write_text("user_metadata:\n  max_bytes: 1\n")
    with pytest.raises(MetadataConfigError, match=r"auth.yaml: user_metadata.max_bytes"):
        wb.build_bundle(config_dir=config)


def test_collections_over_a_bindings_5_kb_are_bundled_whole(tmp_path: Path) -> None:
    from worker.collections import Registry

    config = _big_config(tmp_path)
    bundle = wb.build_bundle(config_dir=config)
    text = _bundled_collections(bundle)
    assert len(text.encode()) > 3 * PLAIN_TEXT_LIMIT_BYTES, "the test set must not fit a plain-text binding"
    big = Registry.from_json(text).get("big")
    assert big.schema is not None and len(big.schema["properties"]) == 200
    assert bundle.content_hash != wb.build_bundle().content_hash, "a collections change is a new version"
    _, body = wb.multipart_upload(bundle, _bindings())
    assert bundle.module(wb.CONFIG_MODULE).content in body


def test_a_collection_the_gateway_refuses_fails_the_bundle_naming_the_file(tmp_path: Path) -> None:
    from worker.collections import CollectionsError

    config = _big_config(tmp_path)
    (config / "collections/bad.yaml").write_text("access: everyone\n")
    with pytest.raises(CollectionsError, match=r"bad.yaml: collection.bad.access"):
        wb.build_bundle(config_dir=config)
