"""Sign-in and sign-up limits through the gateway and a real stand-in: 429 + Retry-After, no enumeration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess_gateway import AuthGateway, open_gateway
from tests.support.standin import Standin, start_standin
from worker.rate_limits import POLICIES

PASSWORD = "correct horse 1"


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    s = start_standin(tmp_path_factory.mktemp("core"))
    yield s
    s.stop()


@pytest.fixture
async def gw(tmp_path: Path, core: Standin) -> AsyncIterator[AuthGateway]:
    g = await open_gateway(tmp_path, core)
    yield g
    await g.close()


def _email() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}@example.com"


async def test_signin_over_the_account_window_is_429_alike_for_real_and_unknown_accounts(
        gw: AuthGateway) -> None:
    real = _email()
    assert (await gw.call("POST", "/v1/auth/signup", {"email": real, "password": PASSWORD})).status == 201
    limit = POLICIES["signin"].account.limit
    answers = {}
    for email in (real, _email()):
        seen = []
        for i in range(limit + 1):  # each from its own address: only the account window can fill
            a = await gw.call("POST", "/v1/auth/signin", {"email": email, "password": "wrong password"},
                              address=f"203.0.113.{i + 1}")
            seen.append(a)
        answers[email] = seen
    for email, seen in answers.items():
        assert [a.status for a in seen] == [401] * limit + [429], email
        last = seen[-1]
        assert last.body["error"]["code"] == "rate_limited"
        assert 1 <= int(last.headers["retry-after"]) <= POLICIES["signin"].account.seconds
    real_answers, unknown_answers = answers.values()
    # same 401 body, but for the request's own id: nothing tells them apart
    assert _without_request_id(real_answers[0].body) == _without_request_id(unknown_answers[0].body)
    # the right password is refused too while the window is full: guessing cannot go on
    ok = await gw.call("POST", "/v1/auth/signin", {"email": real, "password": PASSWORD},
                       address="203.0.113.99")
    assert ok.status == 429


async def test_signin_over_the_address_window_is_429_for_any_account(gw: AuthGateway) -> None:
    limit = POLICIES["signin"].address.limit
    for _ in range(limit):
        a = await gw.call("POST", "/v1/auth/signin", {"email": _email(), "password": "wrong password"},
                          address="192.0.2.44")
        assert a.status == 401
    refused = await gw.call("POST", "/v1/auth/signin", {"email": _email(), "password": "x" * 9},
                            address="192.0.2.44")
    assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1
    other = await gw.call("POST", "/v1/auth/signin", {"email": _email(), "password": "x" * 9},
                          address="192.0.2.45")
    assert other.status == 401


async def test_signup_is_limited_per_address(gw: AuthGateway) -> None:
    limit = POLICIES["signup"].address.limit
    for _ in range(limit):
        a = await gw.call("POST", "/v1/auth/signup", {"email": _email(), "password": PASSWORD},
                          address="2001:db8:5:6::1")
        assert a.status == 201
    # another address in the same /64 shares the window
    refused = await gw.call("POST", "/v1/auth/signup", {"email": _email(), "password": PASSWORD},
                            address="2001:db8:5:6::ffff")
    assert refused.status == 429 and refused.body["error"]["code"] == "rate_limited"


async def test_a_malformed_request_is_refused_before_it_is_counted(gw: AuthGateway) -> None:
    email = _email()
    for _ in range(POLICIES["signin"].account.limit + 3):
        assert (await gw.call("POST", "/v1/auth/signin", {"email": email})).status == 400
    wrong = await gw.call("POST", "/v1/auth/signin", {"email": email, "password": "wrong pass"})
    assert wrong.status == 401


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}
