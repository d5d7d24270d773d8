"""centrifugo.py: the server-API client's requests, and how each kind of failure is reported."""

from __future__ import annotations

import pytest

from tests.support.scripted_http import ScriptedHttp
from worker.centrifugo import API_TIMEOUT_SECONDS, CentrifugoApi, CentrifugoError, api_base
from worker.outbound import HttpError, HttpResponse
from worker.settings import Settings

KEY = "api-key-never-in-errors"


@pytest.mark.parametrize("url", ["http://cf:8000", "http://cf:8000/", "http://cf:8000/api", "http://cf:8000/api/"])
def test_the_api_url_may_be_the_root_or_the_api_prefix(url: str) -> None:
    assert api_base(url) == "http://cf:8000/api"


async def test_a_call_posts_json_with_the_api_key_and_its_timeout() -> None:
    http = ScriptedHttp({"result": {}})
    assert await CentrifugoApi(http, "http://cf:8000", KEY).call("info", {"x": 1}) == {"result": {}}
    [(method, url, headers)] = http.requests
    assert (method, url) == ("POST", "http://cf:8000/api/info")
    assert headers == {"content-type": "application/json", "x-api-key": KEY}
    assert http.bodies == [{"x": 1}] and http.timeouts == [API_TIMEOUT_SECONDS]
    await CentrifugoApi(http, "http://cf:8000", KEY).info(time_limit=0.5)
    assert http.timeouts[-1] == 0.5


@pytest.mark.parametrize(("answer", "message"), [
    (HttpError("connect refused"), "centrifugo unreachable: HttpError"),
    (HttpResponse(401, b"unauthorized"), r"refused the API key \(401\)"),
    (HttpResponse(503, b""), "answered HTTP 503"),
    (HttpResponse(200, b"not json"), "invalid JSON"),
    (HttpResponse(200, b"[1]"), "non-object"),
])
async def test_every_failure_is_a_centrifugo_error_without_the_key(answer: object, message: str) -> None:
    with pytest.raises(CentrifugoError, match=message) as err:
        await CentrifugoApi(ScriptedHttp(answer), "http://cf:8000", KEY).call("info", {})
    assert KEY not in str(err.value)


async def test_batch_sends_ordered_commands_and_checks_one_reply_each() -> None:
    http = ScriptedHttp({"replies": [{"publish": {}}, {"publish": {}}]})
    commands = [{"publish": {"channel": "a", "data": {}}}, {"publish": {"channel": "b", "data": {}}}]
    assert len(await CentrifugoApi(http, "http://cf:8000", KEY).batch(commands)) == 2
    assert http.bodies == [{"commands": commands, "parallel": False}]
    short = ScriptedHttp({"replies": [{"publish": {}}]})
    with pytest.raises(CentrifugoError, match="does not match"):
        await CentrifugoApi(short, "http://cf:8000", KEY).batch(commands)


async def test_info_reports_an_api_error() -> None:
    http = ScriptedHttp({"error": {"code": 100, "message": "internal"}})
    with pytest.raises(CentrifugoError, match="info failed"):
        await CentrifugoApi(http, "http://cf:8000", KEY).info()


def test_no_client_without_a_url_and_a_key() -> None:
    http = ScriptedHttp({})
    assert CentrifugoApi.from_settings(Settings(admin_key="k", collections_json="{}"), http) is None
    only_url = Settings(admin_key="k", collections_json="{}", centrifugo_api_url="http://cf:8000")
    assert CentrifugoApi.from_settings(only_url, http) is None
    both = Settings(admin_key="k", collections_json="{}", centrifugo_api_url="http://cf:8000",
                    centrifugo_api_key=KEY)
    assert isinstance(CentrifugoApi.from_settings(both, http), CentrifugoApi)
