"""Benchmark: the Web SDK in headless Chromium on a local stack (figures, never pass/fail).

Starts the auth stand-in, Centrifugo and a gateway process (tests/support/browser.py, the stack of
the real-browser tests, without a bucket), builds the SDK's browser bundle and runs
sdk/web/test/browser/bench.mjs: p50/p99 of a local write until its own listener shows it, and of a
write in one browser context until another context's listener shows it. Needs
scripts/browser_setup.sh (Chromium, puppeteer-core) and sdk/web's node_modules.

    .venv/bin/python scripts/bench_sdk_browser.py [--writes 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repository root instead of scripts/, whose secrets.py would shadow the standard library's
sys.path[0] = str(ROOT)

from tests.support.browser import chromium_or_fail, running_stack  # noqa: E402

SDK = ROOT / "sdk" / "web"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sdk-browser-") as tmp:
        work = Path(tmp)
        bundle = work / "telestack.js"
        subprocess.run(["node", "scripts/bundle-browser.mjs", str(bundle)], cwd=SDK, check=True)
        with running_stack(work / "stack", None) as stack:
            env = {
                **os.environ,
                "TELESTACK_GATEWAY_URL": stack.gateway_url,
                "TELESTACK_PAGE_PORT": str(stack.page_port),
                "TELESTACK_SDK_BUNDLE": str(bundle),
                "TELESTACK_CHROMIUM": chromium_or_fail(),
                "BENCH_WRITES": str(args.writes),
            }
            return subprocess.run(["node", "bench.mjs"], cwd=SDK / "test" / "browser", env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
