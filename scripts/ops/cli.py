"""One entrypoint, one subcommand per runbook: ``python -m scripts.ops <subcommand> --stack local``.

Exit codes (ExitStatus): 0 ok, 1 failed, 2 usage, 3 dependency unhealthy,
4 verification failed, 130 interrupted. Progress goes to stderr, ``--json``
prints the result on stdout, ``--dry-run`` writes nothing. No command prints a
secret: every credential of the stack is masked in every message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import httpx
from botocore.exceptions import BotoCoreError

from scripts.ops import backup, delete_user, drain, health, migrate, restore, roles, rotate, seed, stack
from scripts.ops.console import Console, ExitStatus, OpsError

EPILOG = """\
examples:
  python -m scripts.ops health --stack local
  python -m scripts.ops status --stack local --json
  python -m scripts.ops migrate --stack local --dry-run
  python -m scripts.ops backup --stack local
  python -m scripts.ops restore --stack local .telestack/backups/telestack-local-<stamp>.tar.gz
  python -m scripts.ops rotate-secrets --stack local --overlap 3600
  python -m scripts.ops drain-outbox --stack local
  python -m scripts.ops seed --stack local

exit codes: 0 ok, 1 failed, 2 usage, 3 dependency unhealthy, 4 verification failed, 130 interrupted
Without --stack, the stack is described by TELESTACK_* environment variables
(TELESTACK_GATEWAY_URL, TELESTACK_ADMIN_KEY, TELESTACK_DB_PATH, ...)."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stack", help="Pulumi stack to operate on (e.g. local); default: TELESTACK_* env only"
    )
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--dry-run", action="store_true", help="show what would happen; write nothing")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser = argparse.ArgumentParser(
        prog="python -m scripts.ops",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="<subcommand>",
        parser_class=lambda **kw: argparse.ArgumentParser(parents=[common], **kw),
    )
    migrate.add_parser(sub)
    backup.add_parser(sub)
    restore.add_parser(sub)
    rotate.add_parser(sub)
    drain.add_parser(sub)
    health.add_parsers(sub)
    seed.add_parser(sub)
    delete_user.add_parser(sub)
    roles.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = console or Console()
    console.json_mode, console.quiet = args.json, args.quiet
    try:
        target = stack.resolve(args.stack)
        console.register_secret(*target.secrets())
        return int(args.func(args, target, console))
    except OpsError as exc:
        console.error(str(exc))
        if console.json_mode:
            console.result({"error": console.redact(str(exc)), "status": int(exc.status)}, "")
        return int(exc.status)
    except (OSError, httpx.TransportError, BotoCoreError) as exc:  # refused, DNS, timeouts
        console.error(f"a dependency is unreachable: {type(exc).__name__}: {exc}")
        return int(ExitStatus.DEPENDENCY_UNHEALTHY)
    except KeyboardInterrupt:
        console.error("interrupted")
        return int(ExitStatus.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
