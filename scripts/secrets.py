"""Generate every missing secret of a stack, once, into its encrypted Pulumi config.

Each value goes to ``pulumi config set --secret`` on stdin: it is never on a
command line, in a file in plain text, or printed. Existing values are kept,
so re-running is a no-op (rotation is ``scripts/ops``'s job).

Examples::

    python scripts/secrets.py --stack local
    python scripts/secrets.py --stack dev --dry-run     # list what would be generated

Run it with the Pulumi environment set (scripts/bootstrap does that).
Exit status: 0 ok, 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import enum
import json
import random
import string
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file shadows the stdlib `secrets` for anything importing it from scripts/: put the repo first instead.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "scripts":
    sys.path[0] = str(ROOT)
_RNG = random.SystemRandom()  # os.urandom underneath, like `secrets`

from infra.config_error import StackConfigError  # noqa: E402
from infra.secret_keys import SECRET_KEYS, cloud_secret_keys  # noqa: E402
from infra.settings import load_environment  # noqa: E402


class ExitStatus(enum.IntEnum):
    OK = 0  # every secret present
    FAILED = 1  # pulumi refused (message on stderr)
    USAGE = 2  # bad arguments


def generate(kind: str) -> str:
    """A fresh value: S3 key pairs in AWS's shapes, everything else 256 random bits (alphanumeric)."""
    if kind == "access_key":
        return "TS" + "".join(_RNG.choice(string.ascii_uppercase + string.digits) for _ in range(18))
    # alphanumeric only: SuperTokens accepts api keys of [A-Za-z0-9=-] (>= 20 chars); 43 chars = 256 bits
    length = 40 if kind == "secret_key" else 43
    return "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(length))


def wanted_keys(stack: str, environment: str | None) -> dict[str, tuple[str, str]]:
    """Secrets of every stack, plus the cloud ones when the stack's environment targets docker
    (with ``storage.kind: minio``, MinIO's own root pair too)."""
    keys = dict(SECRET_KEYS)
    try:
        _, env = load_environment(environment or stack)
    except StackConfigError:
        return keys  # `pulumi up` reports the environment file's problem, naming it
    if env.target == "docker":
        keys.update(cloud_secret_keys(env))
    return keys


def is_set(entry: dict[str, object] | None) -> bool:
    """A secret counts as present only when it holds a value.

    Keys declared in Pulumi.yaml with ``default: ""`` (Pulumi allows no default on a
    secret key) appear in ``pulumi config --json`` as ``{"value": "", "secret": false}``.
    """
    return bool(entry) and bool(entry.get("secret") or entry.get("value"))


def _pulumi(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["pulumi", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="local", help="stack whose secrets to generate (default local)")
    parser.add_argument("--dry-run", action="store_true", help="list the missing secrets, set nothing")
    args = parser.parse_args(argv)
    try:
        config = json.loads(_pulumi("config", "--stack", args.stack, "--json") or "{}")
        environment = (config.get("telestack:environment") or {}).get("value")
        keys = wanted_keys(args.stack, environment)
        missing = [k for k in keys if not is_set(config.get(f"telestack:{k}"))]
        for key in missing:
            if args.dry_run:
                print(f"telestack:{key}")
                continue
            _pulumi(
                "config",
                "set",
                "--secret",
                "--stack",
                args.stack,
                f"telestack:{key}",
                stdin=generate(keys[key][1]),
            )
            print(f"[secrets] {args.stack}: generated telestack:{key}", file=sys.stderr)
    except RuntimeError as exc:
        print(f"[secrets] {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    if not missing:
        print(f"[secrets] {args.stack}: all secrets present", file=sys.stderr)
    return ExitStatus.OK


if __name__ == "__main__":
    raise SystemExit(main())
