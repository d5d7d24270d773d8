"""The smoke runner's rules: verdicts, skips from failed prerequisites, exit code, JSON report."""

from __future__ import annotations

import io
import json

from tests.smoke.runner import Check, CheckFailed, ExitCode, Report, Verdict, expect, run_checks


async def _ok(ctx: list[str]) -> str:
    ctx.append("ok")
    return "fine"


async def _fail(ctx: list[str]) -> None:
    ctx.append("fail")
    expect(False, "user B read A's document (200)")


async def _crash(ctx: list[str]) -> None:
    ctx.append("crash")
    raise KeyError("user")


async def _run(checks: list[Check[list[str]]], only: set[str] | None = None) -> tuple[Report, list[str], str]:
    calls: list[str] = []
    out = io.StringIO()
    report = await run_checks(checks, calls, Report("run-1", "local"), out, only)
    return report, calls, out.getvalue()


async def test_all_pass_exits_zero_with_one_line_per_check() -> None:
    report, calls, text = await _run([Check("a", _ok), Check("b", _ok, ("a",))])
    assert calls == ["ok", "ok"]
    assert report.passed and report.exit_code == ExitCode.OK == 0
    assert [line.split(" ")[:2] for line in text.splitlines()] == [["PASS", "a:"], ["PASS", "b:"]]
    assert report.summary() == "PASSED: 2/2 checks passed"


async def test_a_failure_is_named_and_its_dependents_are_skipped_not_run() -> None:
    checks = [Check("health", _ok), Check("rls", _fail), Check("after", _ok, ("rls",)), Check("free", _ok)]
    report, calls, text = await _run(checks)
    assert calls == ["ok", "fail", "ok"]  # "after" never ran
    assert report.exit_code == ExitCode.FAILED
    assert report.failed == ["rls"] and report.skipped == ["after"]
    assert "FAIL rls: user B read A's document (200)" in text
    assert "SKIP after: needs rls" in text
    assert report.summary() == "FAILED: 2/4 checks passed; failed: rls; skipped: after"


async def test_an_unexpected_exception_fails_only_that_check() -> None:
    report, _, text = await _run([Check("boom", _crash), Check("next", _ok)])
    assert [r.verdict for r in report.results] == [Verdict.FAIL, Verdict.PASS]
    assert "KeyError" in report.results[0].detail and "_crash" in report.results[0].detail
    assert text.splitlines()[1].startswith("PASS next")


async def test_a_run_with_no_check_is_not_a_pass() -> None:
    report, _, _ = await _run([Check("a", _ok)], only={"nothing"})
    assert not report.passed and report.exit_code == ExitCode.FAILED


async def test_only_selects_checks_and_missing_prerequisites_skip() -> None:
    report, calls, _ = await _run([Check("a", _ok), Check("b", _ok, ("a",))], only={"b"})
    assert calls == [] and report.skipped == ["b"]


async def test_json_report_is_what_ci_reads() -> None:
    report, _, _ = await _run([Check("a", _ok), Check("b", _fail)])
    report.cleanup = {"removed": {"docs": 1}, "left": []}
    doc = json.loads(report.dumps())
    assert doc["passed"] is False and doc["exit_code"] == 1 and doc["failed"] == ["b"]
    assert [(c["name"], c["verdict"]) for c in doc["checks"]] == [("a", "pass"), ("b", "fail")]
    assert doc["run_id"] == "run-1" and doc["cleanup"]["removed"] == {"docs": 1}
    assert set(doc["checks"][0]) == {"name", "verdict", "detail", "duration_ms"}


def test_expect_raises_check_failed_with_the_reason() -> None:
    try:
        expect(1 == 2, "why")
    except CheckFailed as exc:
        assert str(exc) == "why"
    else:
        raise AssertionError("expect did not raise")
