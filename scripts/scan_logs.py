"""Scan logs for secrets and tokens: every line of every log against every secret a stack holds.

What is searched for, in each line:
- every secret the stack holds, whole or any 16-character piece of it: the keys of its stack config
  and outputs (admin key, auth API key, Centrifugo keys, S3 keys, their rotation's previous values),
  the auth core's JWT signing keys and refresh-token key (from its store), and the one-time tokens
  of every mail in its Mailpit (verification, reset);
- token-shaped text, whoever issued it: a JWT, a refresh token, a PEM private key, a bearer
  credential, a presigned URL's signature or credential, a token or code in a URL's query.

A finding is reported as ``file:line: what kind of thing``, never with the text that matched, so the
report itself leaks nothing. Exit 1 when anything is found, 2 when there is nothing to scan.

    .venv/bin/python scripts/scan_logs.py --stack local          # <state>/logs/*.log of that stack
    .venv/bin/python scripts/scan_logs.py --logs DIR [--secrets-file F] [--mail-api URL] [--auth-db DB]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repository root instead of scripts/, whose secrets.py would shadow the standard library's
if sys.path and Path(sys.path[0]).resolve() == ROOT / "scripts":
    sys.path[0] = str(ROOT)

import httpx  # noqa: E402

from scripts.ops.stack import Pulumi, resolve  # noqa: E402

#: a secret matches when any piece this long of it is in a line (a log may hold a truncated secret)
PIECE = 16
#: token-shaped text, by the kind of thing it is
TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a JWT", re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")),
    ("a refresh token", re.compile(r"[A-Za-z0-9_-]{20,}\.[0-9a-f]{24}\.V2")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a bearer credential", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}")),
    ("a presigned URL's signature",
     re.compile(r"(?i)x-amz-(?:signature|credential|security-token)=[^&\s\"']{8,}")),
    ("a token in a URL", re.compile(
        r"(?i)[?&](?:token|access_token|refresh_token|id_token|code|password|secret)=[^&\s\"']{8,}")),
)
#: a one-time token as a mail carries it (a link's query value)
_MAILED = re.compile(r"[?&][A-Za-z_]*(?:token|code)=([A-Za-z0-9_-]{16,})")
_PEM_BODY = re.compile(r"-----BEGIN [A-Z ]+-----(.*?)-----END", re.S)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


class Secrets:
    """The secrets to look for, as the set of their pieces (a line is checked in one pass)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._pieces: set[str] = set()
        self._short: set[str] = set()
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        value = value.strip()
        if len(value) < 8:
            return  # too short to be a secret worth the false alarms (an empty "previous" key, a port)
        if len(value) < PIECE:
            self._short.add(value)
        else:
            self._pieces.update(value[i:i + PIECE] for i in range(len(value) - PIECE + 1))

    def __len__(self) -> int:
        return len(self._pieces) + len(self._short)

    def in_line(self, line: str) -> bool:
        pieces = self._pieces
        if any(line[i:i + PIECE] in pieces for i in range(len(line) - PIECE + 1)):
            return True
        return any(short in line for short in self._short)


def scan_lines(path: Path, secrets: Secrets) -> Iterator[Finding]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if secrets.in_line(line):
                yield Finding(path, number, "a secret the stack holds")
                continue
            for kind, shape in TOKEN_SHAPES:
                if shape.search(line):
                    yield Finding(path, number, kind)
                    break


def scan(files: Iterable[Path], secrets: Secrets) -> list[Finding]:
    return [finding for path in files for finding in scan_lines(path, secrets)]


def _line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def log_files(*roots: Path) -> list[Path]:
    """Every ``*.log`` file under ``roots`` (a file given directly counts too)."""
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(sorted(p for p in root.rglob("*.log") if p.is_file()))
    return found


def key_material(auth_db: Path) -> list[str]:
    """The auth core's signing keys (PEM bodies, their shared ASN.1 prefix left out) and refresh-token key."""
    if not auth_db.exists():
        return []
    conn = sqlite3.connect(f"file:{auth_db}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        pems = [r[0] for r in conn.execute("SELECT private_pem FROM signing_keys")] \
            if "signing_keys" in tables else []
        raw = [bytes(r[0]) for r in conn.execute("SELECT value FROM secrets")] if "secrets" in tables else []
    finally:
        conn.close()
    values: list[str] = []
    for pem in pems:
        for body in _PEM_BODY.findall(pem):
            lines = body.split()
            values.append("".join(lines[1:]))  # the first line is the same in every RSA key
    for key in raw:
        values += [key.hex(), base64.b64encode(key).decode(),
                   base64.urlsafe_b64encode(key).decode().rstrip("=")]
    return values


def tokens_in_mail(text: str) -> list[str]:
    """The one-time tokens a mail's links carry (``?token=...``, ``&code=...``)."""
    return _MAILED.findall(text)


def mailed_tokens(api_url: str) -> list[str]:
    """The one-time tokens in every message Mailpit holds (the links of verification and reset mails)."""
    found: list[str] = []
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=10, trust_env=False) as http:
        start = 0
        while True:
            page = http.get("/api/v1/messages", params={"start": start, "limit": 200}).json()
            messages = page.get("messages") or []
            for message in messages:
                full = http.get(f"/api/v1/message/{message['ID']}").json()
                found += tokens_in_mail(f"{full.get('Text', '')}\n{full.get('HTML', '')}")
            start += len(messages)
            if not messages or start >= int(page.get("messages_count", page.get("total", 0))):
                return found


def stack_secrets(stack: str) -> tuple[list[str], Path, str, Path | None]:
    """(secrets, logs folder, Mailpit API URL or "", auth store or None) of a stack, from Pulumi."""
    pulumi = Pulumi()
    target = resolve(stack, pulumi=pulumi)
    values = list(target.secrets())
    shown = pulumi.run("config", "--show-secrets", "--json", "--stack", stack)
    for entry in json.loads(shown.stdout or "{}").values():
        if isinstance(entry, dict) and entry.get("secret") and isinstance(entry.get("value"), str):
            values.append(entry["value"])
            try:  # a JSON secret (the providers' client secrets): each string in it too
                inner = json.loads(entry["value"])
            except ValueError:
                continue
            if isinstance(inner, dict):
                values += [v for v in inner.values() if isinstance(v, str)]
    state = Path(target.state_dir or os.environ.get("TELESTACK_STATE_DIR") or ROOT / ".telestack")
    auth_db = Path(target.auth_db_path) if target.auth_db_path else None
    return values, state / "logs", target.mail_ui_url, auth_db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="scan this stack's logs for its own secrets (Pulumi stack name)")
    parser.add_argument("--logs", type=Path, action="append", default=[],
                        help="a log file or folder (repeatable)")
    parser.add_argument("--secrets-file", type=Path, help="a file of secrets to look for, one per line")
    parser.add_argument("--mail-api", default="",
                        help="Mailpit's HTTP API: its mails' tokens are secrets too")
    parser.add_argument("--auth-db", type=Path,
                        help="the auth stand-in's store: its signing keys are secrets")
    args = parser.parse_args(argv)
    values: list[str] = []
    roots: list[Path] = list(args.logs)
    mail_api, auth_db = args.mail_api, args.auth_db
    if args.stack:
        held, logs, stack_mail, stack_auth = stack_secrets(args.stack)
        values += held
        roots.append(logs)
        mail_api = mail_api or stack_mail
        auth_db = auth_db or stack_auth
    if args.secrets_file:
        values += args.secrets_file.read_text().splitlines()
    if auth_db is not None:
        values += key_material(auth_db)
    if mail_api:
        values += mailed_tokens(mail_api)
    files = log_files(*roots)
    if not files:
        where = ", ".join(map(str, roots)) or "(nothing given)"
        print(f"scan_logs: no log file under {where}", file=sys.stderr)
        return 2
    secrets = Secrets(values)
    findings = scan(files, secrets)
    for finding in findings:
        print(finding, file=sys.stderr)
    lines = sum(_line_count(path) for path in files)
    print(f"scan_logs: {len(files)} log files, {lines} lines, {len(values)} secrets and "
          f"{len(TOKEN_SHAPES)} token shapes: {len(findings)} findings", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
