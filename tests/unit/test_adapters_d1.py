"""D1Database and D1HttpDatabase against fakes that replay the documented shapes."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from worker import jsoncodec
from worker.adapters.d1 import D1Database
from worker.adapters.d1_http import D1HttpDatabase
from worker.database import DatabaseError, InvalidBookmark, Statement
from worker.outbound import HttpResponse


class JsProxyLike:
    """What the pre-1.3 Workers SDK hands back: an object whose ``to_py`` gives the plain value."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def to_py(self) -> Any:
        return self._value


class FakeD1:
    """``env.DB`` backed by sqlite3, answering like D1: {"results", "success", "meta"}; batch is atomic."""

    def __init__(self, proxied: bool) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.proxied = proxied

    def _wrap(self, value: Any) -> Any:
        return JsProxyLike(value) if self.proxied else value

    def prepare(self, sql: str) -> Any:
        db = self

        class Stmt:
            def __init__(self, params: tuple[Any, ...] = ()) -> None:
                self.params = params

            def bind(self, *params: Any) -> Stmt:
                return Stmt(params)

            def run_now(self) -> dict[str, Any]:
                try:
                    cur = db.conn.execute(sql, self.params)
                except sqlite3.Error as exc:
                    raise RuntimeError(
                        f"D1_ERROR: {exc}: SQLITE_CONSTRAINT"
                        if isinstance(exc, sqlite3.IntegrityError)
                        else f"D1_ERROR: {exc}"
                    ) from None
                rows = [dict(r) for r in cur.fetchall()]
                return {
                    "results": rows,
                    "success": True,
                    "meta": {"changes": db.conn.total_changes, "last_row_id": cur.lastrowid},
                }

            async def all(self) -> Any:
                return db._wrap(self.run_now())

        return Stmt()

    async def batch(self, statements: list[Any]) -> Any:
        self.conn.execute("BEGIN")
        try:
            out = [s.run_now() for s in statements]
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return self._wrap(out)


@pytest.mark.parametrize("proxied", [False, True])
async def test_d1_binding_execute_and_atomic_batch(proxied: bool) -> None:
    db = D1Database(FakeD1(proxied))
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v)")
    r = await db.execute("INSERT INTO t VALUES (?, ?)", ("a", None))
    assert r.last_row_id == 1
    assert (await db.execute("SELECT k, v FROM t")).rows == [{"k": "a", "v": None}]
    results = await db.batch(
        [Statement("INSERT INTO t VALUES ('b', 1)"), Statement("SELECT count(*) AS n FROM t")]
    )
    assert results[1].rows == [{"n": 2}]
    with pytest.raises(DatabaseError) as err:
        await db.batch(
            [Statement("INSERT INTO t VALUES ('c', 1)"), Statement("INSERT INTO t VALUES ('a', 1)")]
        )
    assert err.value.constraint
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows == [{"n": 2}]
    assert await db.batch([]) == []


class FakeHttp:
    """Replays the D1 HTTP API envelope for each POSTed body, executing it on sqlite3."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def _one(self, q: dict[str, Any]) -> dict[str, Any]:
        cur = self.conn.execute(q["sql"], q.get("params", []))
        return {
            "results": [dict(r) for r in cur.fetchall()],
            "success": True,
            "meta": {
                "changes": cur.rowcount if cur.rowcount > 0 else 0,
                "last_row_id": cur.lastrowid,
                "duration": 0.1,
                "rows_read": 0,
                "rows_written": 0,
            },
        }

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 -- the HttpClient port takes a timeout
    ) -> HttpResponse:
        payload = jsoncodec.loads(body or b"{}")
        self.calls.append((method, url, headers or {}, payload))
        try:
            if "batch" in payload:
                self.conn.execute("BEGIN")
                try:
                    result = [self._one(q) for q in payload["batch"]]
                except Exception:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            else:
                result = [self._one(payload)]
        except sqlite3.Error as exc:
            env = {
                "success": False,
                "errors": [
                    {
                        "code": 7500,
                        "message": f"{exc}: SQLITE_CONSTRAINT"
                        if isinstance(exc, sqlite3.IntegrityError)
                        else str(exc),
                    }
                ],
                "messages": [],
                "result": [],
            }
            return HttpResponse(400, jsoncodec.dumps_bytes(env))
        env = {"success": True, "errors": [], "messages": [], "result": result}
        return HttpResponse(200, jsoncodec.dumps_bytes(env))


async def test_d1_http_posts_to_the_query_endpoint_with_bearer_token() -> None:
    http = FakeHttp()
    db = D1HttpDatabase(http, account_id="acct", database_id="dbid", api_token="tok")
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v)")
    await db.execute("INSERT INTO t VALUES (?, ?)", ("a", 1))
    method, url, headers, payload = http.calls[-1]
    assert method == "POST"
    assert url == "https://api.cloudflare.com/client/v4/accounts/acct/d1/database/dbid/query"
    assert headers["authorization"] == "Bearer tok"
    assert payload == {"sql": "INSERT INTO t VALUES (?, ?)", "params": ["a", 1]}
    assert (await db.execute("SELECT v FROM t WHERE k = ?", ("a",))).rows == [{"v": 1}]


async def test_d1_http_batch_is_atomic_and_errors_are_mapped() -> None:
    http = FakeHttp()
    db = D1HttpDatabase(http, account_id="a", database_id="d", api_token="t")
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    res = await db.batch(
        [Statement("INSERT INTO t VALUES (?)", ("a",)), Statement("SELECT count(*) AS n FROM t")]
    )
    assert res[0].changes == 1 and res[1].rows == [{"n": 1}]
    assert "batch" in http.calls[-1][3]
    with pytest.raises(DatabaseError) as err:
        await db.batch([Statement("INSERT INTO t VALUES ('b')"), Statement("INSERT INTO t VALUES ('a')")])
    assert err.value.constraint and "UNIQUE" in str(err.value)
    with pytest.raises(DatabaseError) as err:
        await db.execute("SELEC")
    assert not err.value.constraint
    assert (await db.execute("SELECT count(*) AS n FROM t")).rows == [{"n": 1}]


async def test_d1_http_non_json_answer_is_a_database_error() -> None:
    class Broken:
        async def request(self, *a: Any, **k: Any) -> HttpResponse:
            return HttpResponse(502, b"<html>bad gateway</html>")

    with pytest.raises(DatabaseError, match="502"):
        await D1HttpDatabase(Broken(), account_id="a", database_id="d", api_token="t").execute("SELECT 1")


class SessionD1(FakeD1):
    """FakeD1 plus ``withSession``: the bookmark is the commit count (zero-padded), as D1 keeps it."""

    def __init__(self) -> None:
        super().__init__(proxied=False)
        self.started: list[str] = []

    def withSession(self, start: str) -> Any:
        self.started.append(start)
        d1 = self

        class Session:
            def __init__(self) -> None:
                self.seen: str | None = None if start.startswith("first-") else start

            def _advance(self) -> None:
                now = f"{d1.conn.total_changes:08d}"
                if self.seen is None or now > self.seen:
                    self.seen = now

            def prepare(self, sql: str) -> Any:
                stmt = d1.prepare(sql)
                session = self

                class Tracked:
                    def __init__(self, inner: Any) -> None:
                        self.inner = inner

                    def bind(self, *params: Any) -> Any:
                        return Tracked(self.inner.bind(*params))

                    def run_now(self) -> dict[str, Any]:
                        return self.inner.run_now()

                    async def all(self) -> Any:
                        if "bogus" in (session.seen or ""):
                            raise RuntimeError("D1_ERROR: D1_SESSION_ERROR: invalid bookmark")
                        try:
                            return await self.inner.all()
                        finally:
                            session._advance()

                return Tracked(stmt)

            async def batch(self, statements: list[Any]) -> Any:
                try:
                    return await d1.batch(statements)
                finally:
                    self._advance()

            def getBookmark(self) -> str | None:
                return self.seen

        return Session()


async def test_d1_sessions_start_from_the_bookmark_or_the_right_constraint() -> None:
    fake = SessionD1()
    db = D1Database(fake)
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    reader = db.session(None)
    assert reader.bookmark() is None
    await reader.execute("SELECT count(*) AS n FROM t")
    assert reader.bookmark() is not None
    writer = db.session(None, writes=True)
    await writer.batch([Statement("INSERT INTO t VALUES ('a')")])
    given = writer.bookmark()
    assert given is not None and given > reader.bookmark()  # type: ignore[operator]
    follower = db.session(given)
    assert follower.bookmark() == given
    assert fake.started == ["first-unconstrained", "first-primary", given]


async def test_a_lost_race_moves_the_session_to_the_primary_and_keeps_its_bookmark() -> None:
    fake = SessionD1()
    db = D1Database(fake)
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    await db.execute("INSERT INTO t VALUES ('a')")
    session = db.session("00009999")  # ahead of anything the fake will report
    with pytest.raises(DatabaseError) as err:
        await session.batch([Statement("INSERT INTO t VALUES ('a')")])
    assert err.value.constraint
    assert fake.started == ["00009999", "first-primary"]
    assert session.bookmark() == "00009999"  # the new session's bookmark is not older: never go back
    await session.execute("SELECT 1")
    assert session.bookmark() == "00009999"


@pytest.mark.parametrize("bad", ["has space", "a" * 257, "semi;colon", "newline\n"])
def test_a_header_that_is_no_d1_bookmark_is_a_400_before_d1(bad: str) -> None:
    fake = SessionD1()
    with pytest.raises(InvalidBookmark) as err:
        D1Database(fake).session(bad)
    assert (err.value.status, err.value.code) == (400, "invalid_bookmark")
    assert fake.started == []


async def test_a_bookmark_d1_refuses_is_a_400() -> None:
    with pytest.raises(InvalidBookmark):
        await D1Database(SessionD1()).session("bogus-1").execute("SELECT 1")
