"""``rotate-secrets``: fresh values into encrypted stack config, with an overlap window where possible.

Two phases, so nobody is cut off:

1. ``rotate-secrets`` (start): for each secret, the current value moves to
   ``<key>Previous`` with ``<key>PreviousValidUntil`` = now + ``--overlap``, a
   fresh value becomes ``<key>``, then ``pulumi up`` applies it. New tokens,
   URLs and calls use the new value; the old one is still accepted.
2. ``rotate-secrets --finish`` (after the window): the previous values are
   removed and ``pulumi up`` applies it; from then on old credentials are refused.

What each component supports (hence the overlap per secret):

- Centrifugo token key: native. Centrifugo v6.9.1 has
  ``client.token.hmac_previous_secret_key`` + ``hmac_previous_secret_key_valid_until``
  and reloads token verifiers on SIGHUP without dropping connections; the
  gateway signs with the new key at once, clients holding an old-key token
  still (re)connect until the window ends.
- S3 keys, by the environment file's ``storage.kind`` (read from the stack's
  ``telestack:environment``), always with the gateway signing with the new pair at once:

  - ``seaweedfs``: SeaweedFS accepts both pairs during the window (the current pair
    as its env identity, the previous one as a second identity whose ``-s3.config``
    entry names env vars, so no key is in a file);
  - ``minio``: the pair is an ordinary MinIO user, not MinIO's root (its own
    ``minioRootUser``); the ``minio-bucket`` job keeps the previous pair as a second
    user with the same bucket policy, and removes it on the ``pulumi up`` after ``--finish``;
  - ``external`` (R2, B2, ...): nothing here can mint a key, so the operator creates the
    new key at the provider and hands it over in ``TELESTACK_NEW_S3_ACCESS_KEY_ID`` /
    ``TELESTACK_NEW_S3_SECRET_ACCESS_KEY`` or on stdin (two lines; never argv). The old
    key keeps working at the provider until ``--finish`` tells you to delete it there.

  Presigned URLs signed with the old pair keep working until they expire or the pair
  is removed (no S3 server expires it by itself): choose ``--overlap`` >= the longest
  presign expiry.
- admin key: the gateway accepts ``ADMIN_KEY_PREVIOUS`` until ``ADMIN_KEY_PREVIOUS_UNTIL``.
- auth API key (gateway → SuperTokens Core): the core's ``api_keys`` is a comma-separated
  list; during the window it holds ``new,old`` while the gateway already sends the new one
  (until ``--finish``: the core has no expiry for a key).
- MinIO's root pair (``storage.kind: minio`` only): cut-over (MinIO has one root pair); only the
  ``minio-bucket`` job uses it, so the stack's S3 pair and its presigned URLs are unaffected.
- Centrifugo HTTP API key: cut-over (Centrifugo accepts exactly one ``http_api.key``).
  Its only client is the gateway, restarted with the new key by the same
  ``pulumi up``; events whose publish failed in between stay in the outbox
  and are retried (no event is lost; run ``drain-outbox`` to flush at once).

Not idempotent by nature (every start makes a new key), so a start while a
window is open is refused: it would drop the still-valid previous key.
Values are generated here, passed to ``pulumi config set --secret`` on stdin,
and never printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from scripts.ops.console import Console, ExitStatus, OpsError, Step
from scripts.ops.stack import Pulumi, Target


@dataclass(frozen=True)
class SecretSpec:
    name: str  #: CLI name (--only)
    keys: tuple[str, ...]  #: stack config keys rotated together
    kinds: tuple[str, ...]  #: generator per key
    overlap: bool  #: False = cut-over (no previous value is kept)
    note: str

    def previous(self, key: str) -> str:
        return f"{key}Previous"

    @property
    def until_key(self) -> str:
        return f"{self.keys[0]}PreviousValidUntil"


SPECS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "centrifugo-token",
        ("centrifugoTokenSecret",),
        ("token",),
        True,
        "Centrifugo hmac_previous_secret_key until the window ends",
    ),
    SecretSpec(
        "s3",
        ("s3AccessKeyId", "s3SecretAccessKey"),
        ("access_key", "secret_key"),
        True,
        "SeaweedFS accepts the previous pair too, until `--finish`",  # per storage kind: S3_NOTES
    ),
    SecretSpec("admin", ("adminKey",), ("token",), True, "gateway ADMIN_KEY_PREVIOUS until the window ends"),
    SecretSpec(
        "auth-api",
        ("authApiKey",),
        ("hex",),
        True,
        "SuperTokens api_keys list holds new,old until `--finish`",
    ),
    SecretSpec(
        "centrifugo-api",
        ("centrifugoApiKey",),
        ("token",),
        False,
        "cut-over: one API key in Centrifugo; the outbox retries publishes missed during the restart",
    ),
    SecretSpec(
        "minio-root",
        ("minioRootUser", "minioRootPassword"),
        ("access_key", "secret_key"),
        False,
        "cut-over: MinIO has one root pair and restarts with the new one; only the minio-bucket job "
        "uses it (the stack's S3 pair is an ordinary user and keeps working)",
    ),
)
BY_NAME = {s.name: s for s in SPECS}
#: secrets that exist only for one ``storage.kind`` (others are every stack's)
STORAGE_ONLY = {"minio-root": "minio"}
#: what the "s3" window means per environment ``storage.kind``
S3_NOTES: dict[str, str] = {
    "seaweedfs": "SeaweedFS accepts the previous pair too, until `--finish`",
    "minio": "MinIO keeps the previous pair as a second user (minio-bucket job) until `--finish`",
    "external": "new pair from you; the old key works at your provider until you delete it after `--finish`",
}
#: where the operator hands over a new external S3 pair (or two lines on stdin: id, then secret)
NEW_S3_ENV = ("TELESTACK_NEW_S3_ACCESS_KEY_ID", "TELESTACK_NEW_S3_SECRET_ACCESS_KEY")


def _note(spec: SecretSpec, storage_kind: str) -> str:
    return S3_NOTES.get(storage_kind, spec.note) if spec.name == "s3" else spec.note


def _supplied_by_operator(spec: SecretSpec, storage_kind: str) -> bool:
    """True when no code here can mint the spec's values: an external S3's keys come from its provider."""
    return spec.name == "s3" and storage_kind == "external"


def generate(kind: str) -> str:
    if kind == "access_key":
        return "AK" + secrets.token_hex(9).upper()
    if kind == "secret_key":
        return secrets.token_urlsafe(30)
    if kind == "hex":  # SuperTokens Core: >= 20 chars of [=-A-Za-z0-9] only
        return secrets.token_hex(32)
    return secrets.token_urlsafe(32)


class ConfigStore(Protocol):
    """Encrypted stack config (``pulumi config``) plus applying it (``pulumi up``)."""

    def get(self, key: str) -> str | None: ...

    def set_secret(self, key: str, value: str) -> None: ...

    def set_plain(self, key: str, value: str) -> None: ...

    def remove(self, key: str) -> None: ...

    def apply(self) -> None: ...


@dataclass
class PulumiConfig:
    """Stack config through the Pulumi CLI; read once (``pulumi config --json``), then kept in step."""

    pulumi: Pulumi
    stack: str
    _values: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._values is None:
            proc = self.pulumi.run("config", "--json", "--show-secrets", "--stack", self.stack)
            raw = json.loads(proc.stdout or "{}")
            # Pulumi.yaml declares the optional rotation keys with an empty default (Pulumi refuses a
            # default on a secret key), which `pulumi config --json` lists: empty means unset here
            self._values = {
                k.split(":", 1)[-1]: str(v["value"])
                for k, v in raw.items()
                if isinstance(v, dict) and v.get("value") not in (None, "")
            }
        return self._values

    def get(self, key: str) -> str | None:
        return self._all().get(key)

    def set_secret(self, key: str, value: str) -> None:
        self.pulumi.set_secret(self.stack, key, value)
        self._all()[key] = value

    def set_plain(self, key: str, value: str) -> None:
        self.pulumi.set_plain(self.stack, key, value)
        self._all()[key] = value

    def remove(self, key: str) -> None:
        self.pulumi.remove(self.stack, key)
        self._all().pop(key, None)

    def apply(self) -> None:
        self.pulumi.up(self.stack)


@dataclass
class Outcome:
    name: str
    action: str  #: rotated | cut-over | finished | skipped | would-rotate | would-finish
    detail: str


def _in_window(store: ConfigStore, spec: SecretSpec, now: float) -> float | None:
    if store.get(spec.previous(spec.keys[0])) is None:
        return None
    until = store.get(spec.until_key)
    return float(until) if until else 0.0


def start(
    store: ConfigStore,
    specs: list[SecretSpec],
    overlap_s: int,
    console: Console,
    *,
    dry_run: bool = False,
    now: float | None = None,
    apply: bool = True,
    storage_kind: str = "seaweedfs",
    supplied: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Start a window. ``supplied``: new values the operator brings for keys nothing here can mint
    (an external S3's pair, see :func:`read_new_s3_pair`); checked before any config is written."""
    now = time.time() if now is None else now
    busy = [(s, u) for s in specs if s.overlap and (u := _in_window(store, s, now)) is not None]
    if busy:
        names = ", ".join(f"{s.name} (previous value valid until {_iso(u)})" for s, u in busy)
        raise OpsError(
            f"rotation already in progress for {names}: run `rotate-secrets --finish` after the "
            "window (a second start would drop a previous value clients may still use)"
        )
    if not dry_run:
        for spec in specs:
            if _supplied_by_operator(spec, storage_kind):
                _check_supplied(store, spec, supplied or {})
    until = int(now + overlap_s)
    out: list[Outcome] = []
    for spec in specs:
        note = _note(spec, storage_kind)
        currents = [store.get(k) for k in spec.keys]
        if any(c is None for c in currents):
            raise OpsError(
                f"stack config has no {spec.keys}: generate the stack's secrets first (scripts/secrets)",
                ExitStatus.USAGE,
            )
        if dry_run:
            out.append(Outcome(spec.name, "would-rotate", note))
            continue
        by_operator = _supplied_by_operator(spec, storage_kind)
        for key, kind, current in zip(spec.keys, spec.kinds, currents, strict=True):
            new = (supplied or {})[key] if by_operator else generate(kind)
            console.register_secret(new, current)
            if spec.overlap:
                store.set_secret(spec.previous(key), str(current))
            store.set_secret(key, new)
        if spec.overlap:
            store.set_plain(spec.until_key, str(until))
            out.append(Outcome(spec.name, "rotated", f"old value accepted until {_iso(until)}; {note}"))
        else:
            out.append(Outcome(spec.name, "cut-over", note))
    if not dry_run and apply:
        with Step(console, "applying new secrets (pulumi up)"):
            store.apply()
    return out


def finish(
    store: ConfigStore,
    specs: list[SecretSpec],
    console: Console,
    *,
    force: bool = False,
    dry_run: bool = False,
    now: float | None = None,
    apply: bool = True,
    storage_kind: str = "seaweedfs",
) -> list[Outcome]:
    now = time.time() if now is None else now
    out: list[Outcome] = []
    todo: list[SecretSpec] = []
    for spec in (s for s in specs if s.overlap):
        until = _in_window(store, spec, now)
        if until is None:
            out.append(Outcome(spec.name, "skipped", "no rotation in progress"))
        elif until > now and not force:
            raise OpsError(
                f"{spec.name}: the overlap window runs until {_iso(until)}; clients may still hold "
                "the old value (wait, or pass --force to cut them off now)"
            )
        else:
            todo.append(spec)
    for spec in todo:
        after = _after_finish(store, spec, storage_kind)  # read before the previous values go
        if dry_run:
            out.append(Outcome(spec.name, "would-finish", f"previous value would be removed{after}"))
            continue
        for key in spec.keys:
            store.remove(spec.previous(key))
        store.remove(spec.until_key)
        refused = after or ": old credentials are now refused"
        out.append(Outcome(spec.name, "finished", f"previous value removed{refused}"))
    if todo and not dry_run and apply:
        with Step(console, "removing previous secrets (pulumi up)"):
            store.apply()
    return out


def _check_supplied(store: ConfigStore, spec: SecretSpec, supplied: Mapping[str, str]) -> None:
    missing = [env for key, env in zip(spec.keys, NEW_S3_ENV, strict=True) if not supplied.get(key)]
    if missing:
        raise OpsError(
            f"{spec.name}: storage.kind is external, so the new key pair comes from you: create a key at "
            f"your provider, then pass it in {' and '.join(NEW_S3_ENV)} (or as two lines on stdin: access "
            f"key id, then secret; never as arguments), or leave it out with --only. "
            f"Missing: {', '.join(missing)}",
            ExitStatus.USAGE,
        )
    if supplied[spec.keys[0]] == store.get(spec.keys[0]):
        raise OpsError(
            f"{spec.name}: the new access key id is the current one: create a new key at your provider "
            "(the current key must keep working through the window)",
            ExitStatus.USAGE,
        )


def _after_finish(store: ConfigStore, spec: SecretSpec, storage_kind: str) -> str:
    """What ends the old value besides removing it from config ("" = the next `pulumi up` does)."""
    if spec.name != "s3":
        return ""
    if storage_kind == "external":  # access key ids are not secret (the secret key is never shown)
        old_id = store.get(spec.previous(spec.keys[0])) or "?"
        return f"; NEXT: delete the old key {old_id} at your provider (it works there until you do)"
    if storage_kind == "minio":
        return "; the minio-bucket job removes the old MinIO user on the next `pulumi up`"
    return ""


def read_new_s3_pair(environ: Mapping[str, str], stdin: TextIO | None) -> dict[str, str]:
    """The operator's new external S3 pair: :data:`NEW_S3_ENV`, else two lines piped on stdin.

    Never argv (``ps`` shows it to every user). An interactive stdin is not read: nothing would prompt.
    Returns only what was given; :func:`start` names what is missing.
    """
    access_key_id, secret = (environ.get(name, "").strip() for name in NEW_S3_ENV)
    if not (access_key_id or secret) and stdin is not None and not stdin.isatty():
        lines = [line.strip() for line in stdin.read().splitlines() if line.strip()]
        access_key_id, secret = [*lines, "", ""][:2]
    pair = {"s3AccessKeyId": access_key_id, "s3SecretAccessKey": secret}
    return {k: v for k, v in pair.items() if v}


def stack_storage_kind(store: ConfigStore, stack: str, root: Path, console: Console) -> str:
    """The stack's ``storage.kind``, from the environment file ``telestack:environment`` names (default: the
    stack name), read as `pulumi up` reads it: what rotating "s3" means must match what the stack deploys."""
    from infra.config_error import StackConfigError
    from infra.environment import StorageSettings
    from infra.settings import environment_path, load_environment

    name = store.get("environment") or stack
    try:
        if not environment_path(name, root).exists():
            kind = StorageSettings().kind
            console.warn(
                f"no environment file {name!r} under {root}: rotating S3 keys as storage.kind {kind}"
            )
            return kind
        return load_environment(name, root)[1].storage.kind
    except StackConfigError as exc:
        raise OpsError(f"cannot tell the stack's storage.kind: {exc}", ExitStatus.USAGE) from None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _applies(name: str, storage_kind: str | None) -> bool:
    return storage_kind is None or STORAGE_ONLY.get(name, storage_kind) == storage_kind


def select(only: str | None, storage_kind: str | None = None) -> list[SecretSpec]:
    """``--only``'s specs, or every spec that applies to the stack (``storage_kind``; None: not known yet)."""
    if not only:
        return [s for s in SPECS if _applies(s.name, storage_kind)]
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise OpsError(
            f"--only: unknown secret {unknown[0]!r} (choose from {', '.join(BY_NAME)})", ExitStatus.USAGE
        )
    wrong = [n for n in names if not _applies(n, storage_kind)]
    if wrong:
        raise OpsError(
            f"--only: {wrong[0]} exists only on stacks with storage.kind {STORAGE_ONLY[wrong[0]]} "
            f"(this one: {storage_kind})",
            ExitStatus.USAGE,
        )
    return [BY_NAME[n] for n in names]


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    if not target.stack:
        raise OpsError("rotate-secrets needs --stack (it writes that stack's config)", ExitStatus.USAGE)
    pulumi = Pulumi()
    store = PulumiConfig(pulumi, target.stack)
    kind = "seaweedfs"
    if any(s.name in ("s3", *STORAGE_ONLY) for s in select(args.only)):
        kind = stack_storage_kind(store, target.stack, pulumi.root, console)
    return execute(args, store, console, storage_kind=kind, environ=os.environ, stdin=sys.stdin)


def execute(
    args: argparse.Namespace,
    store: ConfigStore,
    console: Console,
    *,
    storage_kind: str,
    environ: Mapping[str, str],
    stdin: TextIO | None,
) -> ExitStatus:
    """The command on a given config store (tests pass an in-memory one)."""
    specs = select(args.only, storage_kind)
    if args.finish:
        outcomes = finish(
            store,
            specs,
            console,
            force=args.force,
            dry_run=args.dry_run,
            apply=not args.no_apply,
            storage_kind=storage_kind,
        )
    else:
        supplied: dict[str, str] = {}
        if not args.dry_run and any(_supplied_by_operator(s, storage_kind) for s in specs):
            supplied = read_new_s3_pair(environ, stdin)
        outcomes = start(
            store,
            specs,
            args.overlap,
            console,
            dry_run=args.dry_run,
            apply=not args.no_apply,
            storage_kind=storage_kind,
            supplied=supplied,
        )
    if not console.json_mode:
        for o in outcomes:
            console.stdout.write(f"{o.action:<13} {o.name:<17} {o.detail}\n")
    console.result(
        {"outcomes": [o.__dict__ for o in outcomes], "dry_run": args.dry_run},
        f"OK {sum(o.action not in ('skipped',) for o in outcomes)} secret(s) handled",
    )
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "rotate-secrets",
        help="rotate admin/Centrifugo/S3 secrets with an overlap window",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m scripts.ops rotate-secrets --stack local --dry-run\n"
        "  python -m scripts.ops rotate-secrets --stack local --overlap 3600\n"
        "  python -m scripts.ops rotate-secrets --stack local --only centrifugo-token,s3\n"
        "  python -m scripts.ops rotate-secrets --stack local --finish      # after the window\n"
        "  python -m scripts.ops rotate-secrets --stack prod --only s3      # external S3: new pair in\n"
        "      # TELESTACK_NEW_S3_ACCESS_KEY_ID/_SECRET_ACCESS_KEY or on stdin (two lines), never argv",
    )
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BY_NAME)}")
    p.add_argument(
        "--overlap",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long old values stay valid (default 3600; >= presigned URL expiry)",
    )
    p.add_argument("--finish", action="store_true", help="end the window: remove previous values")
    p.add_argument("--force", action="store_true", help="with --finish: end the window before it expires")
    p.add_argument(
        "--no-apply", action="store_true", help="change stack config only; run `pulumi up` yourself"
    )
    p.set_defaults(func=command)
