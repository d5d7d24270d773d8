"""context.py: Gateway services are built once, on first use, from settings; Context memoises the caller."""

from __future__ import annotations

import pytest

from tests.support.gateway import ADMIN_KEY, base_settings
from tests.support.scripted_http import ScriptedHttp
from worker.auth import SessionAuthenticator
from worker.context import Context, Gateway
from worker.http import ApiError, Request
from worker.principal import Principal
from worker.settings import from_mapping


def gateway(**settings: str) -> Gateway:
    return Gateway(settings=from_mapping({**base_settings(), **settings}), db=None, http=ScriptedHttp({}))  # type: ignore[arg-type]


def test_services_are_built_once_and_shared() -> None:
    gw = gateway(CENTRIFUGO_API_URL="http://cf.invalid", CENTRIFUGO_API_KEY="k", OUTBOX_DRAIN_PER_REQUEST="7")
    assert gw.collections is gw.collections and gw.collections.get("notes").access == "private"
    assert gw.publisher is gw.publisher and gw.publisher.per_write == 7
    assert gw.centrifugo is not None and gw.centrifugo is gw.centrifugo
    assert gw.health is gw.health and isinstance(gw.authenticator, SessionAuthenticator)


def test_what_is_not_configured_is_absent_or_refused_with_503() -> None:
    gw = gateway()
    assert gw.centrifugo is None
    with pytest.raises(ApiError) as err:
        gw.supertokens  # noqa: B018 - building it is the point
    assert (err.value.status, err.value.code) == (503, "auth_not_configured")


async def test_the_admin_key_needs_no_auth_core() -> None:
    gw = gateway()
    req = Request("GET", "/v1/auth/me", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert await gw.authenticator.authenticate(req) == Principal(None, is_admin=True)


async def test_context_asks_the_authenticator_once_per_request() -> None:
    calls: list[Request] = []

    class Counting:
        async def authenticate(self, request: Request) -> Principal:
            calls.append(request)
            return Principal("alice")

    gw = gateway()
    gw.authenticator = Counting()  # type: ignore[assignment]
    ctx = Context(gw, Request("GET", "/"), {})
    assert await ctx.principal() == await ctx.principal() == Principal("alice")
    assert len(calls) == 1 and ctx.settings is gw.settings and not ctx.publish_after_response


class RecordingSessions:
    """A SessionDatabase that records how each session was opened."""

    def __init__(self) -> None:
        self.opened: list[tuple[str | None, bool]] = []

    def session(self, bookmark: str | None, *, writes: bool = False) -> object:
        self.opened.append((bookmark, writes))
        return object()


@pytest.mark.parametrize(
    ("method", "header", "opened"),
    [
        ("GET", None, (None, False)),
        ("HEAD", "  ", (None, False)),  # blank is no bookmark, as D1's withSession trims
        ("POST", None, (None, True)),  # a request that may write starts at the primary
        ("PATCH", " b-1 ", ("b-1", True)),
    ],
)
def test_the_request_session_is_opened_once_from_the_bookmark_header(
    method: str, header: str | None, opened: tuple[str | None, bool]
) -> None:
    sessions = RecordingSessions()
    gw = Gateway(settings=from_mapping(base_settings()), db=sessions, http=ScriptedHttp({}))  # type: ignore[arg-type]
    headers = {"x-telestack-bookmark": header} if header is not None else {}
    ctx = Context(gw, Request(method, "/", headers=headers), {})
    assert ctx.bookmark() is None  # no session yet: nothing to return
    assert ctx.db is ctx.db
    assert sessions.opened == [opened]
