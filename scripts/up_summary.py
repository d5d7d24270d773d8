"""Print what runs where after `scripts/up`: reads `pulumi stack output --json` (no secrets) on stdin.

Example::

    pulumi stack output --stack local --json | python scripts/up_summary.py local
"""

from __future__ import annotations

import json
import sys


def summary(stack: str, out: dict[str, object]) -> str:
    rows = [
        ("gateway", out.get("gateway_url")),
        ("centrifugo ws", out.get("centrifugo_ws_url")),
        ("centrifugo api", out.get("centrifugo_api_url")),
        ("s3", f"{out.get('s3_endpoint')}  bucket {out.get('s3_bucket')}"),
        ("auth (CDI)", out.get("auth_url")),
        ("mail (Mailpit)", out.get("mail_ui_url")),
        ("logs", out.get("logs_dir")),
    ]
    services = ", ".join(str(s) for s in out.get("services", []) or [])  # type: ignore[union-attr]
    lines = [f"TelestackDB stack {stack!r} is up: {services}"]
    lines += [f"  {name:<15} {value}" for name, value in rows if value]
    lines += [
        f"secrets: scripts/bootstrap_env.sh pulumi stack output --show-secrets --stack {stack}",
        "stop:    scripts/down   (make down)",
        "example: http://127.0.0.1:3000/ once served (examples/notes-web/README.md): (cd sdk/web && npm ci"
        " && node scripts/bundle-browser.mjs) && python3 -m http.server 3000 --bind 127.0.0.1"
        " --directory examples/notes-web",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(sys.argv[1] if len(sys.argv) > 1 else "local", json.load(sys.stdin)))
