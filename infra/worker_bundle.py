"""The gateway Worker as Cloudflare sees it: modules, metadata and the multipart upload.

A Python Worker version is a list of modules plus metadata (main module,
compatibility date and flags, bindings). This module turns the repository into
that list, deterministically, so an unchanged tree yields byte-identical inputs
(no Pulumi diff) and any changed ``.py`` file yields a new version:

- every ``.py`` file under ``worker/`` becomes a ``text/x-python`` module named
  by its import path (``worker/app.py`` is ``worker.app``); ``worker/entry.py``
  is the main module;
- each pure-Python distribution pinned in ``requirements/worker.txt`` is
  vendored from the installed site-packages (its ``.py`` files, at their
  import paths), checked against the pin so the bundle matches what the tests
  ran;
- a distribution with native code cannot travel as ``text/x-python``; it must be
  one Pyodide ships (``cryptography``: a Rust extension that Pyodide builds for
  WebAssembly and Python Workers load on request), and is declared as a
  ``text/x-python-requirement`` module, the type wrangler uses for
  ``requirements.txt`` lines.

:func:`multipart_upload` renders the exact ``multipart/form-data`` body of
Cloudflare's Worker (version) upload API, the same data the ``WorkerVersion``
resource sends; the tests check it against the documented metadata format.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKER_DIR = ROOT / "worker"
REQUIREMENTS = ROOT / "requirements" / "worker.txt"
MAIN_MODULE = "worker/entry.py"

#: >= 2025-09-29 selects Pyodide 0.28 / Python 3.13 (python_workers_20250116), the version the
#: Pyodide compatibility test runs; pinned so a redeploy never changes runtime semantics silently.
COMPATIBILITY_DATE = "2025-10-01"
COMPATIBILITY_FLAGS: tuple[str, ...] = ("python_workers",)

PYTHON = "text/x-python"
PYTHON_REQUIREMENT = "text/x-python-requirement"

#: Native distributions the Workers runtime provides from Pyodide's package set (never vendored).
PYODIDE_PROVIDED = frozenset({"cryptography", "cffi", "pycparser"})

BINDING_TYPES = frozenset({"d1", "plain_text", "secret_text", "json"})


class BundleError(ValueError):
    """The Worker cannot be bundled (missing entry, unpinned or native dependency)."""


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def as_args(self) -> dict[str, str]:
        """Keyword arguments of ``cloudflare.WorkerVersionModuleArgs``."""
        return {
            "name": self.name,
            "content_type": self.content_type,
            "content_base64": base64.b64encode(self.content).decode("ascii"),
        }


@dataclass(frozen=True, slots=True)
class Bundle:
    modules: tuple[Module, ...]
    main_module: str = MAIN_MODULE
    compatibility_date: str = COMPATIBILITY_DATE
    compatibility_flags: tuple[str, ...] = COMPATIBILITY_FLAGS

    @property
    def content_hash(self) -> str:
        """sha256 over every module and the runtime pins: equal hashes = same Worker code."""
        digest = hashlib.sha256()
        header = [self.main_module, self.compatibility_date, *self.compatibility_flags]
        digest.update(json.dumps(header).encode())
        for module in self.modules:
            digest.update(f"\n{module.name}\0{module.content_type}\0{module.sha256}".encode())
        return digest.hexdigest()

    def module(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)


def _worker_modules(worker_dir: Path) -> list[Module]:
    root = worker_dir.parent
    files = sorted(p for p in worker_dir.rglob("*.py") if "__pycache__" not in p.parts)
    return [Module(p.relative_to(root).as_posix(), PYTHON, p.read_bytes()) for p in files]


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``name==version`` lines of requirements/worker.txt (comments and blanks skipped)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", line)
        if not match:
            raise BundleError(f"{path.name}:{number}: Worker dependencies must be pinned as name==version")
        pins[match.group(1)] = match.group(2)
    return pins


def _is_pure(dist: importlib.metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    native = any(str(f).endswith((".so", ".pyd", ".dylib")) for f in dist.files or ())
    return "Root-Is-Purelib: true" in wheel and not native


def _vendored_modules(pins: Mapping[str, str], path: Path = REQUIREMENTS) -> list[Module]:
    modules: list[Module] = []
    for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower()):
        if _normalise(name) in PYODIDE_PROVIDED:
            modules.append(Module(_normalise(name), PYTHON_REQUIREMENT, b""))
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise BundleError(f"Worker dependency {name} is not installed (pip install -r {path})") from None
        if dist.version != version:
            raise BundleError(f"Worker dependency {name} is {dist.version} here but pinned to {version}")
        if not _is_pure(dist):
            raise BundleError(f"Worker dependency {name} has native code and is not one Pyodide ships")
        for file in sorted(dist.files or (), key=str):
            rel = file.as_posix()
            if rel.endswith(".py") and ".dist-info/" not in rel and not rel.startswith(".."):
                modules.append(Module(rel, PYTHON, Path(dist.locate_file(file)).read_bytes()))
    return modules


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_bundle(worker_dir: Path = WORKER_DIR, requirements: Path = REQUIREMENTS) -> Bundle:
    """The Worker's modules, sorted by name (worker sources first, then dependencies)."""
    own = _worker_modules(worker_dir)
    if MAIN_MODULE not in {m.name for m in own}:
        raise BundleError(f"{MAIN_MODULE} is missing: the Worker needs its entrypoint")
    deps = _vendored_modules(read_pins(requirements), requirements) if requirements.exists() else []
    clash = {m.name for m in own} & {m.name for m in deps}
    if clash:
        raise BundleError(f"vendored modules shadow worker modules: {sorted(clash)}")
    return Bundle(modules=(*own, *deps))


def binding(name: str, kind: str, value: Any) -> dict[str, Any]:
    """One binding in Cloudflare's metadata shape (also the ``WorkerVersionBindingArgs`` keywords).

    d1 -> ``id``; plain_text and secret_text -> ``text``; json -> ``json`` (JSON text).
    """
    if kind not in BINDING_TYPES:
        raise BundleError(f"unsupported binding type {kind!r} for {name}")
    field = {"d1": "id", "plain_text": "text", "secret_text": "text", "json": "json"}[kind]
    return {"name": name, "type": kind, field: value}


def metadata(bundle: Bundle, bindings: Iterable[Mapping[str, Any]], *, tag: str = "") -> dict[str, Any]:
    """The upload's ``metadata`` part.

    Format: developers.cloudflare.com/workers/configuration/multipart-upload-metadata
    """
    meta: dict[str, Any] = {
        "main_module": bundle.main_module,
        "compatibility_date": bundle.compatibility_date,
        "compatibility_flags": list(bundle.compatibility_flags),
        "bindings": [dict(b) for b in bindings],
    }
    if tag:
        meta["annotations"] = {"workers_tag": tag}
    return meta


def multipart_upload(bundle: Bundle, bindings: Iterable[Mapping[str, Any]]) -> tuple[str, bytes]:
    """(Content-Type header, body) of the Worker upload: a metadata part, then one part per module.

    The boundary derives from the content hash, so the body is reproducible byte for byte.
    """
    boundary = f"telestack-{bundle.content_hash[:32]}"
    meta = metadata(bundle, bindings, tag=bundle.content_hash[:64])
    parts = [_part("metadata", None, "application/json", json.dumps(meta, sort_keys=True).encode())]
    parts += [_part(m.name, m.name, m.content_type, m.content) for m in bundle.modules]
    body = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in parts)
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def _part(name: str, filename: str | None, content_type: str, content: bytes) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"Content-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return head.encode() + content
