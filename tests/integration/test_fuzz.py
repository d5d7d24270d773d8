"""Schemathesis fuzzes every operation of a real gateway from its own OpenAPI document: no server error,
every answer a documented status with a conforming body, headers and content type.

One round as a signed-in user, one with the admin key; positive and negative data, the coverage,
fuzzing and stateful phases (links follow a created document). Bounded to about two minutes here;
``python -m scripts.fuzz`` is the long run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import fuzzing
from tests.support.session_gateway import SessionGateway, session_gateway

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionGateway]:
    with session_gateway(tmp_path_factory.mktemp("fuzz")) as gateway:
        yield gateway


@pytest.mark.parametrize("who", ["user", "admin"])
def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(gw: SessionGateway, who: str,
                                                                   tmp_path: Path) -> None:
    st = fuzzing.setup()
    before = fuzzing.statuses(gw)
    done = fuzzing.run_round(st, gw, who, tmp_path / f"schemathesis-{who}.txt", max_examples=MAX_EXAMPLES,
                             seed=17 if who == "user" else 29)
    answered = fuzzing.statuses(gw) - before
    report = done.output.read_text(errors="replace")
    assert done.passed, f"Schemathesis failed as {who} (exit {done.returncode}):\n{report[-8000:]}"
    assert sum(answered.values()) > 300, f"too few requests reached the gateway: {answered}"
    assert not {s: n for s, n in answered.items() if s >= 500 and s not in fuzzing.ALLOWED_5XX}, answered
    # both kinds of answer were exercised: accepted requests and refused ones
    assert any(200 <= s < 300 for s in answered) and any(400 <= s < 500 for s in answered), answered
    log = gw.log.read_text(errors="replace")
    for secret in (done.token, *gw.secrets.values()):
        assert secret[-16:] not in log, "a token or secret of the fuzz run is in the gateway log"
