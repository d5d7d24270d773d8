"""The backup archive: one tar, a manifest (counts + sha256 per member), a ``.sha256`` sidecar.

Layout::

    telestack-<stack>-<UTC stamp>.tar.gz        # manifest.json, database/…, auth/…, objects/<key>
    telestack-<stack>-<UTC stamp>.tar.gz.sha256 # sha256sum format, checked before anything is read

A restore trusts nothing it has not re-hashed: the sidecar covers the archive,
the manifest covers each member, and the counts cover the restored databases.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from scripts.ops.console import ExitStatus, OpsError
from scripts.ops.stores import sha256_file

FORMAT = "telestack-backup/1"
MANIFEST = "manifest.json"
DATABASE_MEMBER = "database/gateway.sqlite3"
AUTH_MEMBER = "auth/auth.sqlite3"
OBJECTS_PREFIX = "objects/"
#: auth-store tables that hold one row per user, most specific first
USER_TABLES = ("emailpassword_users", "users", "all_auth_recipe_users")
#: gzip's own default: tarfile's 9 costs ~1.7x the CPU on SQLite pages for a <1% smaller archive
GZIP_LEVEL = 6


@dataclass
class Manifest:
    stack: str
    created_at: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    @property
    def documents(self) -> int:
        return int(self.counts.get("database", {}).get("documents", 0))

    @property
    def users(self) -> int:
        auth = self.counts.get("auth", {})
        return next((int(auth[t]) for t in USER_TABLES if t in auth), 0)

    @property
    def objects(self) -> int:
        return sum(1 for m in self.members.values() if m["kind"] == "object")

    @property
    def empty(self) -> bool:
        """Nothing a user created: no document, no object, no user (schema alone is not data)."""
        return self.documents == 0 and self.objects == 0 and self.users == 0

    def summary(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "users": self.users,
            "objects": self.objects,
            "empty": self.empty,
        }

    def to_json(self) -> bytes:
        body = {
            "format": self.format,
            "stack": self.stack,
            "created_at": self.created_at,
            "members": self.members,
            "counts": self.counts,
            "summary": self.summary(),
        }
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        body = json.loads(raw)
        if body.get("format") != FORMAT:
            raise OpsError(
                f"unknown archive format {body.get('format')!r} (expected {FORMAT})",
                ExitStatus.VERIFICATION_FAILED,
            )
        return cls(
            stack=body["stack"], created_at=body["created_at"], members=body["members"], counts=body["counts"]
        )


def count_differences(restored: dict[str, int], archived: dict[str, int]) -> dict[str, tuple[Any, Any]]:
    """Table -> (restored count, archived count) wherever a restored store disagrees with the manifest."""
    return {
        t: (restored.get(t, "missing"), archived.get(t, "not in the archive"))
        for t in sorted(restored.keys() | archived.keys())
        if restored.get(t) != archived.get(t)
    }


def object_member(key: str) -> str:
    return OBJECTS_PREFIX + key


def write(archive: Path, staging: Path, manifest: Manifest) -> str:
    """Tar ``staging``'s members plus the manifest; write the sidecar; return the archive's sha256."""
    tmp = archive.with_name(archive.name + ".partial")
    with tarfile.open(tmp, "w:gz", compresslevel=GZIP_LEVEL) as tar:
        info = tarfile.TarInfo(MANIFEST)
        raw = manifest.to_json()
        info.size = len(raw)
        info.mode = 0o600
        tar.addfile(info, io.BytesIO(raw))
        for name in sorted(manifest.members):
            tar.add(staging / name, arcname=name, recursive=False)
    tmp.chmod(0o600)
    digest = sha256_file(tmp)
    tmp.replace(archive)
    sidecar(archive).write_text(f"{digest}  {archive.name}\n")
    return digest


def sidecar(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def verify_and_extract(archive: Path, dest: Path, *, require_sidecar: bool = True) -> Manifest:
    """Check the sidecar, extract, re-hash every member against the manifest; raise on any mismatch."""
    if not archive.is_file():
        raise OpsError(f"archive {archive} does not exist", ExitStatus.USAGE)
    side = sidecar(archive)
    if side.exists():
        expected = side.read_text().split()[0] if side.read_text().strip() else ""
        actual = sha256_file(archive)
        if actual != expected:
            raise OpsError(
                f"archive checksum mismatch: {archive.name} has sha256 {actual[:12]}…, "
                f"{side.name} says {expected[:12]}… — refusing to restore",
                ExitStatus.VERIFICATION_FAILED,
            )
    elif require_sidecar:
        raise OpsError(
            f"{side.name} is missing: cannot prove the archive is intact "
            "(pass --no-sidecar to rely on the manifest's per-member checksums)",
            ExitStatus.VERIFICATION_FAILED,
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
            for name in names:
                p = PurePosixPath(name)
                if p.is_absolute() or ".." in p.parts:
                    raise OpsError(
                        f"archive member {name!r} escapes the archive", ExitStatus.VERIFICATION_FAILED
                    )
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OpsError(
            f"archive {archive.name} is unreadable: {exc}", ExitStatus.VERIFICATION_FAILED
        ) from None
    if MANIFEST not in names:
        raise OpsError(f"archive {archive.name} has no {MANIFEST}", ExitStatus.VERIFICATION_FAILED)
    manifest = Manifest.from_json((dest / MANIFEST).read_bytes())
    extra = sorted(set(names) - set(manifest.members) - {MANIFEST})
    if extra:
        raise OpsError(
            f"archive has members not in its manifest: {extra[:3]}", ExitStatus.VERIFICATION_FAILED
        )
    for name, meta in manifest.members.items():
        path = dest / name
        if not path.is_file():
            raise OpsError(f"archive member {name} is missing", ExitStatus.VERIFICATION_FAILED)
        digest = sha256_file(path)
        if digest != meta["sha256"] or path.stat().st_size != meta["bytes"]:
            raise OpsError(
                f"checksum mismatch for {name}: archive is corrupt — refusing to restore",
                ExitStatus.VERIFICATION_FAILED,
            )
    return manifest


def member_meta(path: Path, kind: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "bytes": path.stat().st_size, "sha256": sha256_file(path), **extra}


def content_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
