"""Schemathesis fuzzes every operation of a real gateway from its own OpenAPI document: no server error,
every answer a documented status with a conforming body, headers and content type.

One round as a signed-in user, one with the admin key; positive and negative data, the coverage,
fuzzing and stateful phases (links follow a created document). The document is the served one
narrowed per collection (tests/support/fuzz_document.py), so valid writes commit and the write
paths are exercised, not only refused. Bounded to a few minutes here; ``scripts/fuzz.py`` is the
long run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import fuzzing
from tests.support.session_gateway import SessionGateway, session_gateway

MAX_EXAMPLES = 25
#: 2xx answers each kind of write must reach in a round (one round commits several hundred writes;
#: the served document alone, unnarrowed, committed about one create per round)
MIN_COMMITTED = {"create": 50, "update": 50, "delete": 10, "batch": 5}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionGateway]:
    with session_gateway(tmp_path_factory.mktemp("fuzz")) as gateway:
        yield gateway


@pytest.mark.parametrize("who", ["user", "admin"])
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(gw: SessionGateway, who: str,
                                                                   tmp_path: Path) -> None:
    st = fuzzing.setup()
    before = fuzzing.statuses(gw)
    kinds_before = fuzzing.by_operation(gw)
    done = fuzzing.run_round(st, gw, who, tmp_path / f"schemathesis-{who}.txt", max_examples=MAX_EXAMPLES,
                             seed=17 if who == "user" else 29)
    answered = fuzzing.statuses(gw) - before
    kinds = fuzzing.by_operation(gw) - kinds_before
    report = done.output.read_text(errors="replace")
    assert done.passed, f"Schemathesis failed as {who} (exit {done.returncode}):\n{report[-8000:]}"
    assert sum(answered.values()) > 300, f"too few requests reached the gateway: {answered}"
    assert not {s: n for s, n in answered.items() if s >= 500 and s not in fuzzing.ALLOWED_5XX}, answered
    # both kinds of answer were exercised: accepted requests and refused ones
    assert any(200 <= s < 300 for s in answered) and any(400 <= s < 500 for s in answered), answered
    # the write paths ran to a commit, not only to a refusal: creates, updates, deletes and batches
    committed = {kind: sum(n for (k, s), n in kinds.items() if k == kind and 200 <= s < 300)
                 for kind in sorted(fuzzing.WRITES)}
    assert all(n >= MIN_COMMITTED[kind] for kind, n in committed.items()), committed
    # every log of the session (gateway, auth stand-in, Mailpit) holds no secret and no token
    findings = fuzzing.log_findings(gw, done.token)
    assert not findings, "secrets or tokens in the fuzz run's logs:\n" + "\n".join(map(str, findings))

