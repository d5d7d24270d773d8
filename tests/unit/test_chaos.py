"""scripts/chaos.py: how events and faults are scored (the run itself needs a stack: .ci/run)."""

from __future__ import annotations

from tests.support.script_module import load_script

chaos = load_script("chaos")


def test_an_event_is_delivered_once_counted_once_and_duplicates_reported() -> None:
    w = chaos.Watcher(name="u0", owner="u-0")
    w.received = [("a", 1), ("a", 1), ("a", 2), ("b", 1)]
    result = chaos.score(w, {("a", 1), ("a", 2), ("b", 1)})
    assert (result.expected, result.delivered, result.lost, result.duplicates) == (3, 3, 0, 1)


def test_a_missed_event_is_lost_unless_a_reread_after_a_gap_saw_its_version_or_later() -> None:
    w = chaos.Watcher(name="u0", owner="u-0")
    w.received = [("a", 1)]
    w.reread = {"b": 3}  # read back after Centrifugo said it could not recover
    result = chaos.score(w, {("a", 1), ("b", 2), ("c", 1)})
    assert (result.delivered, result.covered_by_reread, result.lost) == (1, 1, 1)
    assert result.lost_examples == ["c@v1"]


def test_targets_missed_name_what_was_lost_and_slow_recoveries() -> None:
    report = chaos.Report(stack="local", mode="short", components=["gateway"])
    assert report.missed_targets() == []
    report.faults = [chaos.FaultResult("gateway", "kill -9", recovery_s=1.0),
                     chaos.FaultResult("centrifugo", "kill -9", recovery_s=10.5),
                     chaos.FaultResult("auth", "SIGSTOP", recovery_s=None)]
    report.writes_lost, report.batches_partial = 2, 1
    report.subscribers = [chaos.SubscriberResult("u0", lost=3)]
    missed = report.missed_targets()
    assert missed == ["2 acknowledged writes lost", "1 partial batches", "subscriber u0: 3 events lost",
                      "centrifugo kill -9: recovered 10.5 s (target 5 s)",
                      "auth SIGSTOP: recovered never (target 5 s)"]
    assert "MISSED" in report.table()


def test_a_fault_counts_only_the_answers_inside_its_window() -> None:
    result = chaos.FaultResult("auth", "kill -9")
    outcomes = [chaos.Outcome(1.0, 200), chaos.Outcome(2.0, 503, "auth_unavailable"),
                chaos.Outcome(3.0, None), chaos.Outcome(9.0, 500, "internal")]
    chaos.tally(result, outcomes, 1.5, 5.0)
    assert (result.requests, result.answered_5xx, result.no_answer) == (2, 1, 1)
    assert result.statuses_5xx == {"503 auth_unavailable": 1}
