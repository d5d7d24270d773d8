"""Cloudflare API contract: what our code sends, and what the fake D1 answers, against Cloudflare's OpenAPI.

The contract is tests/contracts/cloudflare/openapi.json, operations kept verbatim from Cloudflare's
published schema (provenance in SOURCE.txt). Requests are captured on the wire: ``scripts/ops/d1_api.py``
through an ``httpx`` response hook, ``worker/adapters/d1_http.py`` through a recording ``HttpClient``,
both talking to the loopback fake D1 (tests/support/cloudflare_d1.py), whose every answer is checked
too. The Worker upload is the multipart body ``infra/worker_bundle.py`` renders.

Validation is schema-level (OpenAPI 3.0 dialect, ``$ref`` resolved, ``allOf`` merged with the later
branch refining a property of the same name, as Cloudflare's envelope + ``result`` pairs are meant) and
stricter than the schema: every object that lists ``properties`` is closed, so an undocumented field
fails. Where Cloudflare's current API differs from the 2024 schema (the newest complete one available
here), the difference is declared below with its source instead of loosening the check.
"""

from __future__ import annotations

import asyncio
import copy
import email.parser
import email.policy
import json
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from infra import worker_bundle
from scripts.ops.d1_api import D1Api
from scripts.ops.d1_restore import import_sql
from tests.support.cloudflare_d1 import FakeD1, serve_fake_d1
from tests.support.ops import migrate_sqlite
from worker.adapters.d1_http import D1HttpDatabase
from worker.adapters.httpx_client import HttpxClient
from worker.database import DatabaseError, Statement
from worker.outbound import HttpResponse

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "tests/contracts/cloudflare/openapi.json"  # verbatim operations, provenance in SOURCE.txt
API_PREFIX = "/client/v4"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-contract-token-0123456789"

#: D1's query body may also be ``{"batch": [{sql, params}, ...]}`` (one transaction), which
#: worker/adapters/d1_http.py sends. Source: developers.cloudflare.com/api/resources/d1/subresources/
#: database/methods/query ("body: object { sql, params } or object { batch }"; component
#: ``d1_batch-query`` of the current schema). The 2024 schema predates it.
QUERY_BODY_NOW = {
    "oneOf": [
        {"$ref": "#/components/schemas/d1_single-query"},
        {
            "properties": {
                "batch": {"items": {"$ref": "#/components/schemas/d1_single-query"}, "type": "array"},
            },
            "required": ["batch"],
            "type": "object",
        },
    ]
}
#: ``params`` is documented as an array of STRINGS (``d1_params``, then and now). Our clients send typed
#: JSON values (numbers, null) so that D1 binds INTEGER/REAL/NULL, as SQLite comparisons with
#: ``json_extract`` and typed columns need; converting them to text would change query results. Whether
#: D1 binds typed JSON values as such can only be verified on a real account (docs/cloud.md). Widened
#: here, and :func:`test_typed_params_are_outside_the_published_contract` keeps the gap visible.
TYPED_PARAMS = {
    "items": {"anyOf": [{"nullable": True, "type": "string"}, {"type": "number"}]},
    "type": "array",
}
#: Python modules travel as ``text/x-python`` parts (the 2024 schema lists only JS/wasm/text/binary
#: types). Source: workers-sdk packages/deploy-helpers/src/deploy/helpers/create-worker-upload-form.ts
#: (``python: "text/x-python"``, ``"python-requirement": "text/x-python-requirement"``).
PYTHON_PART_TYPES = ("text/x-python", "text/x-python-requirement")


@cache
def _raw_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _resolve(node: Any, components: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local ``$ref`` (the kept components have no cycles; one would fail loudly)."""
    if isinstance(node, list):
        return [_resolve(v, components, seen) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        _, _, kind, name = ref.split("/", 3)
        assert ref not in seen, f"cyclic $ref {ref}"
        target = copy.deepcopy(components[kind][name])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **extra}, components, (*seen, ref))
    return {k: _resolve(v, components, seen) for k, v in node.items()}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``allOf: [a, b]`` as one schema: properties united (b refines a), ``required`` united; a ``oneOf``
    branch is distributed (``a`` merged into each alternative)."""
    if set(b) <= {"oneOf", "description"} and "oneOf" in b:
        return {"oneOf": [_merge(a, alt) for alt in b["oneOf"]]}
    out = dict(a)
    for key, value in b.items():
        if key == "properties":
            out["properties"] = {**a.get("properties", {}), **value}
        elif key == "required":
            out["required"] = sorted({*a.get("required", []), *value})
        elif key != "example":
            out[key] = value
    return out


def _normalise(node: Any) -> Any:
    """Merge every ``allOf`` and close every object that lists its properties."""
    if isinstance(node, list):
        return [_normalise(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _normalise(v) for k, v in node.items() if k != "example"}
    if "allOf" in node:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for branch in node["allOf"]:
            merged = _merge(merged, branch)
        node = _normalise(merged)
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    return node


@dataclass(frozen=True)
class Contract:
    """The vendored operations, with the declared differences applied (or not: ``strict``)."""

    spec: dict[str, Any]

    @classmethod
    def load(cls, *, strict: bool = False) -> Contract:
        spec = copy.deepcopy(_raw_spec())
        schemas = spec["components"]["schemas"]
        schemas["d1_single-query"] = {
            "properties": {"params": {"$ref": "#/components/schemas/d1_params"},
                           "sql": {"$ref": "#/components/schemas/d1_sql"}},
            "required": ["sql"],
            "type": "object",
        }
        query = spec["paths"]["/accounts/{account_id}/d1/database/{database_id}/query"]["post"]
        query["requestBody"]["content"]["application/json"]["schema"] = QUERY_BODY_NOW
        if not strict:
            schemas["d1_params"] = TYPED_PARAMS
        return cls(spec)

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(path template, operation, path parameters) for a concrete API path, or a test failure."""
        for template, ops in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
            match = re.match(pattern, path)
            if match and method.lower() in ops:
                return template, ops[method.lower()], match.groupdict()
        pytest.fail(f"{method} {path} is not an operation of the vendored contract")

    def schema(self, node: Any) -> Any:
        return _normalise(_resolve(node, self.spec["components"]))


def _errors(schema: dict[str, Any], value: Any) -> list[str]:
    validator = OAS30Validator(schema, format_checker=oas30_format_checker)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))]


@dataclass
class Exchange:
    """One API call as it went over the wire."""

    method: str
    url: str
    request_body: bytes
    status: int
    response_body: bytes

    @property
    def api_path(self) -> str:
        path = urlsplit(self.url).path
        assert path.startswith(API_PREFIX), self.url
        return path[len(API_PREFIX):]

    def __str__(self) -> str:
        return f"{self.method} {self.api_path} -> {self.status}"


def request_violations(contract: Contract, ex: Exchange) -> list[str]:
    """Method and path template, path parameters, query, JSON body: what the contract does not allow."""
    _, op, path_params = contract.operation(ex.method, ex.api_path)
    problems: list[str] = []
    declared = {p["name"]: p for p in contract.schema(op.get("parameters", []))}
    for name, value in path_params.items():
        problems += [f"path {name}: {e}" for e in _errors(declared[name]["schema"], value)]
    for name, _ in parse_qsl(urlsplit(ex.url).query):
        if declared.get(name, {}).get("in") != "query":
            problems.append(f"query parameter {name} is not documented")
    body = op.get("requestBody")
    if body is None:
        if ex.request_body:
            problems.append("the operation takes no body")
        return problems
    schema = contract.schema(body)["content"]["application/json"]["schema"]
    try:
        payload = json.loads(ex.request_body)
    except ValueError:
        return [*problems, "the body is not JSON"]
    return problems + [f"body {e}" for e in _errors(schema, payload)]


def response_violations(contract: Contract, ex: Exchange) -> list[str]:
    """The answer against the operation's documented response for its status (exact, else ``4XX``)."""
    _, op, _ = contract.operation(ex.method, ex.api_path)
    responses = op["responses"]
    documented = responses.get(str(ex.status)) or responses.get(f"{ex.status // 100}XX")
    if documented is None:
        return [f"status {ex.status} is not documented (documented: {sorted(responses)})"]
    schema = contract.schema(documented)["content"]["application/json"]["schema"]
    return [f"response {e}" for e in _errors(schema, json.loads(ex.response_body))]


# --- capture --------------------------------------------------------------------------------------


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    def hook(self, response: httpx.Response) -> None:
        """httpx response hook: API calls only (the signed R2 URLs are not Cloudflare's API)."""
        response.read()
        if urlsplit(str(response.request.url)).path.startswith(API_PREFIX):
            self.exchanges.append(Exchange(response.request.method, str(response.request.url),
                                           response.request.content, response.status_code, response.content))

    def operations(self) -> set[str]:
        contract = Contract.load()
        return {f"{ex.method} {contract.operation(ex.method, ex.api_path)[0]}" for ex in self.exchanges}


class RecordingHttp:
    """The d1_http adapter's HttpClient: the real httpx adapter, every exchange recorded."""

    def __init__(self, recorder: Recorder) -> None:
        self._inner = HttpxClient()
        self._recorder = recorder

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:  # noqa: ASYNC109
        response = await self._inner.request(method, url, headers=headers, body=body, timeout=timeout)
        self._recorder.exchanges.append(Exchange(method, url, body or b"", response.status, response.body))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def d1(tmp_path: Path) -> Iterator[FakeD1]:
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as server:
        yield server


def _ops_client(d1: FakeD1, recorder: Recorder, token: str = TOKEN) -> D1Api:
    client = httpx.Client(timeout=30, event_hooks={"response": [recorder.hook]})
    return D1Api(ACCOUNT, token, d1.base_url, client=client, poll_seconds=0)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """On a loop of its own, closed after: not the thread's loop, which Pulumi's mocks in this
    directory's other tests hold (pytest-asyncio replacing it would leak theirs)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _assert_all_valid(contract: Contract, recorder: Recorder) -> None:
    assert recorder.exchanges, "nothing was captured"
    problems = [f"{ex}: {p}" for ex in recorder.exchanges
                for p in request_violations(contract, ex) + response_violations(contract, ex)]
    assert not problems, "\n".join(problems)


# --- the ops client -------------------------------------------------------------------------------


def _run_ops_calls(d1: FakeD1, recorder: Recorder, tmp_path: Path) -> None:
    """Every call scripts/ops makes: create, get, query, export (with polls), import (init, ingest, poll),
    and refusals (wrong token, unknown database, bad SQL, a failed import)."""
    d1.export_polls = d1.import_polls = 2
    live = d1.create_database("telestack-dev")
    migrate_sqlite(d1.path(live))
    api = _ops_client(d1, recorder)
    try:
        assert api.get(live)["name"] == "telestack-dev"
        api.query(live, "INSERT INTO outbox (collection, doc_id, version, op, payload, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", ["notes", "d1", 1, "created", "{}", 5])
        assert api.query(live, "SELECT doc_id FROM outbox LIMIT ? OFFSET ?", [10, 0]) == [{"doc_id": "d1"}]
        dump = api.export_sql(live, lambda _: None)
        new = api.create("telestack-dev-restore-1")
        sqlite_copy = tmp_path / "copy.sqlite3"
        sqlite_copy.write_bytes(d1.path(live).read_bytes())
        api.import_sql(new, import_sql(sqlite_copy).encode(), lambda _: None)
        assert "outbox" in dump
        with pytest.raises(Exception, match="could not be found"):
            api.get("00000000-0000-0000-0000-000000000000")
        with pytest.raises(Exception, match="SQLITE_ERROR"):
            api.query(live, "SELEC nothing")
        d1.fail_import = "near \"BOGUS\": syntax error"
        with pytest.raises(Exception, match="BOGUS"):
            api.import_sql(d1.create_database("broken"), b"BOGUS;", lambda _: None)
    finally:
        api.close()
    refused = _ops_client(d1, recorder, token="not-the-token")
    with pytest.raises(Exception, match="Authentication error"):
        refused.get(live)


def test_every_ops_request_and_every_fake_answer_match_the_contract(d1: FakeD1, tmp_path: Path) -> None:
    recorder = Recorder()
    _run_ops_calls(d1, recorder, tmp_path)
    assert recorder.operations() == {
        "POST /accounts/{account_id}/d1/database",
        "GET /accounts/{account_id}/d1/database/{database_id}",
        "POST /accounts/{account_id}/d1/database/{database_id}/query",
        "POST /accounts/{account_id}/d1/database/{database_id}/export",
        "POST /accounts/{account_id}/d1/database/{database_id}/import",
    }
    imports = [ex for ex in recorder.exchanges if ex.url.endswith("/import")]
    actions = {json.loads(ex.request_body).get("action") for ex in imports}
    assert actions == {"init", "ingest", "poll"}
    assert {ex.status for ex in recorder.exchanges} >= {200, 202, 400, 403, 404}
    _assert_all_valid(Contract.load(), recorder)


def test_the_poll_answer_when_nothing_is_importing_is_a_documented_200(d1: FakeD1) -> None:
    """D1's "Not currently importing anything." (a poll after the import ended) fits the 200 schema."""
    recorder = Recorder()
    database_id = d1.create_database("idle")
    api = _ops_client(d1, recorder)
    try:
        api._call("POST", f"/{database_id}/import", "poll", {"action": "poll", "current_bookmark": "bm-x"})
    finally:
        api.close()
    [ex] = recorder.exchanges
    assert ex.status == 200 and json.loads(ex.response_body)["result"]["success"] is False
    _assert_all_valid(Contract.load(), recorder)


# --- the D1 HTTP adapter --------------------------------------------------------------------------


def test_every_d1_http_request_and_answer_match_the_contract(d1: FakeD1) -> None:
    recorder = Recorder()
    database_id = d1.create_database("telestack-dev")

    async def calls() -> None:
        http = RecordingHttp(recorder)
        db = D1HttpDatabase(http, account_id=ACCOUNT, database_id=database_id, api_token=TOKEN,
                            base_url=d1.base_url)
        try:
            await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, note TEXT)")
            await db.execute("INSERT INTO t VALUES (?, ?, ?)", ("a", 1, None))
            results = await db.batch([Statement("INSERT INTO t VALUES (?, ?, ?)", ("b", 2.5, "x")),
                                      Statement("SELECT count(*) AS n FROM t")])
            assert results[1].rows == [{"n": 2}]
            with pytest.raises(DatabaseError) as err:
                await db.execute("INSERT INTO t VALUES (?, ?, ?)", ("a", 3, None))
            assert err.value.constraint
        finally:
            await http.aclose()

    _run(calls())
    bodies = [json.loads(ex.request_body) for ex in recorder.exchanges]
    assert any("batch" in b for b in bodies) and any("sql" in b for b in bodies)
    assert {ex.status for ex in recorder.exchanges} == {200, 400}
    _assert_all_valid(Contract.load(), recorder)


def test_typed_params_are_outside_the_published_contract(d1: FakeD1) -> None:
    """The one declared gap: the published schema types ``params`` as strings; ours are typed values.
    If Cloudflare's schema ever allows them, this fails and TYPED_PARAMS can go."""
    recorder = Recorder()
    database_id = d1.create_database("typed")

    async def call() -> None:
        http = RecordingHttp(recorder)
        db = D1HttpDatabase(http, account_id=ACCOUNT, database_id=database_id, api_token=TOKEN,
                            base_url=d1.base_url)
        try:
            await db.execute("SELECT ? AS n", (1,))
        finally:
            await http.aclose()

    _run(call())
    [ex] = recorder.exchanges
    assert request_violations(Contract.load(), ex) == []
    assert request_violations(Contract.load(strict=True), ex), "the published schema now allows typed params"
    as_text = Exchange(ex.method, ex.url, json.dumps({"sql": "SELECT ? AS n", "params": ["1"]}).encode(),
                       ex.status, ex.response_body)
    assert request_violations(Contract.load(strict=True), as_text) == [], "only the params' type differs"


# --- a request the contract does not allow fails ---------------------------------------------------

MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "poll without current_bookmark": lambda b: b.update(bookmark=b.pop("current_bookmark")),
    "unknown import action": lambda b: b.update(action="status"),
    "undocumented field": lambda b: b.update(wait=True),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_request_the_contract_does_not_allow_is_reported(d1: FakeD1, tmp_path: Path, mutation: str) -> None:
    recorder = Recorder()
    _run_ops_calls(d1, recorder, tmp_path)
    poll = next(ex for ex in recorder.exchanges
                if ex.url.endswith("/import") and json.loads(ex.request_body)["action"] == "poll")
    contract = Contract.load()
    assert request_violations(contract, poll) == []
    body = json.loads(poll.request_body)
    MUTATIONS[mutation](body)
    mutated = Exchange(poll.method, poll.url, json.dumps(body).encode(), poll.status, poll.response_body)
    assert request_violations(contract, mutated), f"{mutation}: {body} passed the contract"


def test_an_undocumented_path_or_account_id_is_reported(d1: FakeD1, tmp_path: Path) -> None:
    recorder = Recorder()
    _run_ops_calls(d1, recorder, tmp_path)
    ex = recorder.exchanges[0]
    long_account = Exchange(ex.method, ex.url.replace(ACCOUNT, ACCOUNT + "ff"), ex.request_body, 200, b"{}")
    assert any("account_id" in p for p in request_violations(Contract.load(), long_account))
    with pytest.raises(pytest.fail.Exception, match="not an operation"):
        Contract.load().operation("POST", f"/accounts/{ACCOUNT}/d1/database/x/raw")


def test_an_answer_outside_the_contract_is_reported(d1: FakeD1, tmp_path: Path) -> None:
    """The fake's answers are checked for real: an envelope without ``messages`` fails."""
    recorder = Recorder()
    _run_ops_calls(d1, recorder, tmp_path)
    ex = next(e for e in recorder.exchanges if e.status == 200)
    envelope = json.loads(ex.response_body)
    del envelope["messages"]
    broken = Exchange(ex.method, ex.url, ex.request_body, ex.status, json.dumps(envelope).encode())
    assert any("messages" in p for p in response_violations(Contract.load(), broken))


# --- the Worker version upload ---------------------------------------------------------------------

VERSIONS_PATH = f"/accounts/{ACCOUNT}/workers/scripts/telestack-gateway/versions"


def _upload_parts() -> tuple[dict[str, Any], list[tuple[str, str | None, str]]]:
    bindings = [worker_bundle.binding("DB", "d1", "4e1c28a9-90e4-41da-8b4b-6cf36e5abb29"),
                worker_bundle.binding("ADMIN_KEY", "secret_text", "not-a-real-key")]
    content_type, body = worker_bundle.multipart_upload(worker_bundle.build_bundle(), bindings)
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = [(p.get_param("name", header="content-disposition"), p.get_filename(), p.get_content_type())
             for p in message.iter_parts()]
    metadata = json.loads(next(p for p in message.iter_parts()
                               if p.get_param("name", header="content-disposition") == "metadata")
                          .get_payload(decode=True))
    return metadata, parts


def upload_violations(metadata: dict[str, Any], parts: list[tuple[str, str | None, str]]) -> list[str]:
    """The version upload's multipart body against ``worker-versions-upload-version``."""
    contract = Contract.load()
    _, op, _ = contract.operation("POST", VERSIONS_PATH)
    form = contract.schema(op["requestBody"])["content"]["multipart/form-data"]
    problems = [f"metadata {e}" for e in _errors(form["schema"]["properties"]["metadata"], metadata)]
    allowed = {t.strip() for t in form["encoding"]["<any part name>"]["contentType"].split(",")}
    allowed |= set(PYTHON_PART_TYPES)
    modules = [(name, filename, ctype) for name, filename, ctype in parts if name != "metadata"]
    problems += [f"part {name}: content type {ctype}" for name, _, ctype in modules if ctype not in allowed]
    if metadata.get("main_module") not in {name for name, _, _ in modules}:
        problems.append(f"main_module {metadata.get('main_module')!r} names no part")
    return problems


def test_worker_version_upload_metadata_matches_the_contract() -> None:
    metadata, parts = _upload_parts()
    assert upload_violations(metadata, parts) == []
    assert parts[0][0] == "metadata" and len(parts) == len(worker_bundle.build_bundle().modules) + 1


@pytest.mark.parametrize("change", ["annotations", "main_module", "unknown_key"])
def test_worker_upload_metadata_the_contract_does_not_allow_is_reported(change: str) -> None:
    metadata, parts = _upload_parts()
    if change == "annotations":  # the key (and length) the bundle used to send
        metadata["annotations"] = {"workers_tag": "f" * 64}
    elif change == "main_module":
        metadata["main_module"] = "worker/missing.py"
    else:
        metadata["placement_mode"] = "smart"
    assert upload_violations(metadata, parts), f"{change} passed the contract"
