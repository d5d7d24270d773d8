"""The smoke runner: ordered checks, one verdict line each, a summary, an exit code, a JSON report.

Pure logic (no HTTP) so its rules are unit-tested: a check passes, fails with a
reason, or is skipped because a check it needs did not pass; the run passes
only when every check passed (a skip is not a pass: something was not proven).
"""

from __future__ import annotations

import enum
import json
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TextIO, TypeVar

Ctx = TypeVar("Ctx")


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


class ExitCode(enum.IntEnum):
    OK = 0  #: every check passed
    FAILED = 1  #: a check failed or was skipped
    USAGE = 2  #: the target could not be described (missing URL/key)
    INTERRUPTED = 130


class CheckFailed(AssertionError):
    """Raised by a check with the one-sentence reason shown on its verdict line."""


@dataclass(frozen=True)
class Check(Generic[Ctx]):
    name: str
    run: Callable[[Ctx], Awaitable[str | None]]  #: returns an optional detail for the PASS line
    needs: tuple[str, ...] = ()
    description: str = ""


@dataclass
class Result:
    name: str
    verdict: Verdict
    detail: str
    duration_ms: float

    def line(self) -> str:
        tag = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.SKIP: "SKIP"}[self.verdict]
        detail = f": {self.detail}" if self.detail else ""
        return f"{tag} {self.name}{detail} ({self.duration_ms:.0f} ms)"


@dataclass
class Report:
    run_id: str
    target: str
    results: list[Result] = field(default_factory=list)
    cleanup: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.verdict is Verdict.FAIL]

    @property
    def skipped(self) -> list[str]:
        return [r.name for r in self.results if r.verdict is Verdict.SKIP]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.verdict is Verdict.PASS for r in self.results)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.passed else ExitCode.FAILED

    def summary(self) -> str:
        n = len(self.results)
        ok = n - len(self.failed) - len(self.skipped)
        text = f"{'PASSED' if self.passed else 'FAILED'}: {ok}/{n} checks passed"
        if self.failed:
            text += f"; failed: {', '.join(self.failed)}"
        if self.skipped:
            text += f"; skipped: {', '.join(self.skipped)}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.target,
            "passed": self.passed,
            "exit_code": int(self.exit_code),
            "summary": self.summary(),
            "failed": self.failed,
            "skipped": self.skipped,
            "checks": [{**asdict(r), "verdict": str(r.verdict)} for r in self.results],
            "cleanup": self.cleanup,
            "started_at": self.started_at,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


async def run_checks(
    checks: list[Check[Ctx]],
    ctx: Ctx,
    report: Report,
    out: TextIO | None = None,
    only: set[str] | None = None,
) -> Report:
    """Run in order; a check whose ``needs`` did not all pass is skipped (its reason names them)."""
    verdicts: dict[str, Verdict] = {}
    for check in checks:
        if only is not None and check.name not in only:
            continue
        t0 = time.monotonic()
        missing = [n for n in check.needs if verdicts.get(n) is not Verdict.PASS]
        if missing:
            result = Result(check.name, Verdict.SKIP, f"needs {', '.join(missing)}", 0.0)
        else:
            try:
                detail = await check.run(ctx)
                result = Result(check.name, Verdict.PASS, detail or "", 0.0)
            except CheckFailed as exc:
                result = Result(check.name, Verdict.FAIL, str(exc), 0.0)
            except Exception as exc:  # an unexpected error fails this check, never the run
                where = traceback.extract_tb(exc.__traceback__)[-1]
                result = Result(
                    check.name,
                    Verdict.FAIL,
                    f"{type(exc).__name__}: {exc} (at {where.name}:{where.lineno})",
                    0.0,
                )
        result.duration_ms = (time.monotonic() - t0) * 1000
        verdicts[check.name] = result.verdict
        report.results.append(result)
        if out is not None:
            print(result.line(), file=out, flush=True)
    return report


def expect(condition: bool, reason: str) -> None:
    """``expect(r.status == 404, f"...got {r.status}")``: fail the current check with ``reason``."""
    if not condition:
        raise CheckFailed(reason)
