"""The Web SDK and the example app in real headless Chromium (Debian's ``chromium`` driven by
puppeteer-core), against a real gateway process, Centrifugo, SeaweedFS and the auth stand-in, the
page served from another origin than the gateway. The scenarios are in
sdk/web/test/browser/browser.test.mjs; this test starts the services, builds the SDK's browser
bundle, runs them, and checks the example app's screenshot.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.support.browser import BrowserStack, browser_stack, chromium_or_fail

__all__ = ["browser_stack"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "web"
BROWSER_TESTS = SDK / "test" / "browser"
VIEWPORT = (1000, 700)  # the example app's page size in browser.test.mjs


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails when the file is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_sdk_in_chromium(browser_stack: BrowserStack, tmp_path: Path) -> None:
    chromium = chromium_or_fail()
    for folder in (SDK, BROWSER_TESTS):
        if not (folder / "node_modules").is_dir():
            pytest.fail(f"{folder} has no node_modules: run scripts/browser_setup.sh (make test does)")
    bundle = tmp_path / "telestack.js"
    subprocess.run(["node", "scripts/bundle-browser.mjs", str(bundle)], cwd=SDK, check=True, timeout=120)
    shots = tmp_path / "screenshots"
    run = subprocess.run(
        ["node", "--test", "--test-timeout=90000", "browser.test.mjs"],
        cwd=BROWSER_TESTS,
        env={
            **os.environ,
            "TELESTACK_GATEWAY_URL": browser_stack.gateway_url,
            "TELESTACK_PAGE_PORT": str(browser_stack.page_port),
            "TELESTACK_SDK_BUNDLE": str(bundle),
            "TELESTACK_SCREENSHOTS": str(shots),
            "TELESTACK_CHROMIUM": chromium,
        },
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert run.returncode == 0, run.stdout[-10000:] + run.stderr[-4000:]
    declared = (BROWSER_TESTS / "browser.test.mjs").read_text(encoding="utf-8").count("\ntest(")
    assert declared >= 7
    assert f"# pass {declared}\n" in run.stdout, run.stdout[-4000:]
    screenshot = shots / "notes-web.png"
    assert png_size(screenshot) == VIEWPORT
    # a rendered page, not a blank one: a blank 1000x700 PNG compresses to a few hundred bytes
    assert screenshot.stat().st_size > 10_000
