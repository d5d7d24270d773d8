"""``python -m infra.standins.supertokens --host 127.0.0.1 --port 3567 --db PATH`` (api keys from env)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from infra.standins.supertokens import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.standins.supertokens",
        description="SuperTokens CDI stand-in (local/CI only). API keys: env SUPERTOKENS_API_KEYS=k1,k2.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3567, help="port (default 3567, the core's)")
    parser.add_argument("--db", required=True, help="SQLite file holding users, sessions and keys")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--host must be a loopback address: the stand-in is for local use only")
    app = create_app(args.db)
    print(f"supertokens stand-in listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                server_header=False, lifespan="on", ws="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
