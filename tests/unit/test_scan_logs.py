"""scripts/scan_logs.py: finds a planted secret or token in a log, names file and line, never echoes it."""

from __future__ import annotations

import base64
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts import scan_logs
from tests.support.paths import ROOT

#: what a clean gateway, stand-in and Centrifugo log holds: none of it is a finding
CLEAN = """\
2026-12-03 14:05:30,344 INFO telestack.gateway request_id=2c5ed4adbea449703a18f3f613f1c3ac GET /v1/me -> 200
2026-12-03 14:05:31,001 INFO telestack.gateway request_id=req-from-sdk-1 POST /v1/auth/signin -> 401
2026-12-03 14:05:31,002 WARNING telestack.outbox request_id=- publish failed: centrifugo unavailable
{"level":"info","client":"8d1f0b3e-6b8e-4d2c-9d6a-2f4f5a0e9c11","user":"u-1234","message":"client connected"}
127.0.0.1 - "POST /recipe/signin HTTP/1.1" 200 - sessionHandle d8c0a3b2-2a44-4d5a-a0d1-4f0a2bd1b0e7
"""


def _logs(tmp_path: Path, planted: str, where: int = 3) -> Path:
    lines = CLEAN.splitlines()
    lines.insert(where - 1, planted)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "gateway.log").write_text("\n".join(lines) + "\n")
    (logs / "centrifugo.log").write_text(CLEAN)
    return logs


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = scan_logs.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _echoes(report: str, value: str) -> bool:
    """Whether any 8 characters of ``value`` are in ``report``."""
    return any(value[i:i + 8] in report for i in range(len(value) - 7))


def test_clean_logs_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = _logs(tmp_path, "2026-12-03 INFO telestack.gateway request_id=- GET /v1/openapi.json -> 200")
    known = tmp_path / "secrets.txt"
    known.write_text("admin-" + secrets.token_hex(16) + "\n")
    code, report = _run(capsys, "--logs", str(logs), "--secrets-file", str(known))
    assert code == 0, report
    assert "2 log files" in report and "0 findings" in report


def test_a_planted_secret_is_found_by_file_and_line_and_never_echoed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin_key = "admin-" + secrets.token_hex(16)
    known = tmp_path / "secrets.txt"
    known.write_text(f"{admin_key}\n")
    logs = _logs(tmp_path, f"2026-12-03 ERROR telestack.auth request_id=x refused key {admin_key}", where=4)
    code, report = _run(capsys, "--logs", str(logs), "--secrets-file", str(known))
    assert code == 1
    assert f"{logs / 'gateway.log'}:4: a secret the stack holds" in report
    assert "centrifugo.log" not in report
    assert not _echoes(report, admin_key)


def test_a_truncated_secret_is_found_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3_secret = secrets.token_urlsafe(30)
    known = tmp_path / "secrets.txt"
    known.write_text(f"{s3_secret}\n")
    logs = _logs(tmp_path, f"signing with {s3_secret[5:25]}...")
    code, report = _run(capsys, "--logs", str(logs), "--secrets-file", str(known))
    assert code == 1 and "gateway.log:3: a secret the stack holds" in report
    assert not _echoes(report, s3_secret)


@pytest.mark.parametrize(("planted", "kind"), [
    (jwt.encode({"sub": "u1", "exp": 2_000_000_000}, secrets.token_hex(16), algorithm="HS256"), "a JWT"),
    (f"{base64.urlsafe_b64encode(secrets.token_bytes(60)).decode().rstrip('=')}.{secrets.token_hex(12)}.V2",
     "a refresh token"),
    ("-----BEGIN PRIVATE KEY-----", "a private key"),
    (f"authorization: Bearer {secrets.token_urlsafe(24)}", "a bearer credential"),
    (f"PUT /files/a.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={secrets.token_hex(32)}",
     "a presigned URL's signature"),
    (f"GET /auth/action?mode=reset&token={secrets.token_urlsafe(48)}", "a token in a URL"),
])
def test_token_shaped_text_is_found_though_nobody_said_it_was_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], planted: str, kind: str) -> None:
    logs = _logs(tmp_path, f"2026-12-03 DEBUG something request_id=- {planted}")
    code, report = _run(capsys, "--logs", str(logs))
    assert code == 1
    assert f"gateway.log:3: {kind}" in report
    assert not _echoes(report, planted.rsplit("=", 1)[-1].rsplit(" ", 1)[-1])


def test_the_auth_stores_signing_keys_and_refresh_key_are_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    refresh_key = secrets.token_bytes(32)
    db = tmp_path / "supertokens.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE signing_keys (kid TEXT, kind TEXT, private_pem TEXT, created_at INTEGER)")
        conn.execute("INSERT INTO signing_keys VALUES ('d-1', 'dynamic', ?, 1)", (pem,))
        conn.execute("CREATE TABLE secrets (name TEXT, value BLOB)")
        conn.execute("INSERT INTO secrets VALUES ('refresh_token_key', ?)", (refresh_key,))
    conn.close()
    middle_line = pem.splitlines()[10]  # a line of the key, without its BEGIN marker
    logs = _logs(tmp_path, f"loaded key material {middle_line}")
    code, report = _run(capsys, "--logs", str(logs), "--auth-db", str(db))
    assert code == 1 and "gateway.log:3: a secret the stack holds" in report
    assert not _echoes(report, middle_line)
    logs = _logs(tmp_path, f"aead key {refresh_key.hex()}")
    code, report = _run(capsys, "--logs", str(logs), "--auth-db", str(db))
    assert code == 1 and "gateway.log:3: a secret the stack holds" in report


def test_a_mails_one_time_tokens_are_what_its_links_carry() -> None:
    token, code = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
    text = (f"Verify: http://localhost:5173/auth/action?mode=verifyEmail&token={token}\n"
            f"<a href=\"https://app.example/cb?state=s&code={code}\">sign in</a>\n"
            "https://app.example/?page=2 and no token here")
    assert scan_logs.tokens_in_mail(text) == [token, code]


def test_nothing_to_scan_is_an_error_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(capsys, "--logs", str(tmp_path / "missing"))
    assert code == 2 and "no log file" in report


def test_the_script_runs_from_its_own_folder(tmp_path: Path) -> None:
    """As .ci/run calls it, ``python scripts/scan_logs.py``: scripts/secrets.py shadows no module."""
    logs = _logs(tmp_path, f"token={secrets.token_urlsafe(20)}&x=1 ?token={secrets.token_urlsafe(20)}")
    done = subprocess.run([sys.executable, str(ROOT / "scripts/scan_logs.py"), "--logs", str(logs)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert "gateway.log:3: a token in a URL" in done.stderr
