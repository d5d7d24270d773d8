"""Exit codes, output streams and subcommand wiring shared by every runbook command.

Data goes to stdout (``--json``), messages and progress to stderr, so a CI
job can pipe the result while an operator still sees what happens.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


class ExitStatus(enum.IntEnum):
    OK = 0  #: the command did what it said
    FAILED = 1  #: it could not (the message says why)
    USAGE = 2  #: bad flags or arguments (argparse uses 2 too)
    DEPENDENCY_UNHEALTHY = 3  #: a service it needs is down or refuses us
    VERIFICATION_FAILED = 4  #: a checksum, count or post-condition did not hold
    INTERRUPTED = 130  #: Ctrl-C


class OpsError(Exception):
    """A runbook step failed; ``status`` is the exit code the CLI returns."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Console:
    """The two streams plus the ``--json`` switch; tests swap the streams."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    json_mode: bool = False
    quiet: bool = False
    _secrets: list[str] = field(default_factory=list)

    def register_secret(self, *values: str | None) -> None:
        """Never echo these values, whatever message they end up in."""
        for value in values:
            if value and len(value) >= 4 and value not in self._secrets:
                self._secrets.append(value)

    def redact(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, "***")
        return text

    def progress(self, message: str) -> None:
        if not self.quiet:
            print(self.redact(f"[ops] {message}"), file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        print(self.redact(f"[ops] WARNING: {message}"), file=self.stderr, flush=True)

    def error(self, message: str) -> None:
        print(self.redact(f"[ops] ERROR: {message}"), file=self.stderr, flush=True)

    def result(self, payload: dict[str, Any], human: str) -> None:
        """The command's outcome: JSON on stdout with ``--json``, else one human line."""
        if self.json_mode:
            print(self.redact(json.dumps(payload, indent=2, sort_keys=True, default=str)), file=self.stdout)
        else:
            print(self.redact(human), file=self.stdout)


class Step:
    """``with console_step(c, "backing up"):`` prints start and elapsed time on stderr."""

    def __init__(self, console: Console, what: str) -> None:
        self.console, self.what = console, what

    def __enter__(self) -> Step:
        self.t0 = time.monotonic()
        self.console.progress(f"{self.what} ...")
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        took = time.monotonic() - self.t0
        if exc_type is None:
            self.console.progress(f"{self.what}: done ({took:.1f}s)")


def add_command(
    sub: Any,
    name: str,
    func: Callable[..., ExitStatus],
    doc: str | None,
    *,
    help: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """Register one runbook subcommand; ``func(args, target, console)`` runs it.

    ``doc`` (the runbook module's docstring) is the ``-h`` description, and each of
    ``examples`` is a command line after ``python -m scripts.ops``, shown in the epilog.
    """
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(f"  python -m scripts.ops {e}" for e in examples),
    )
    p.set_defaults(func=func)
    return p
