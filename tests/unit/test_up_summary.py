"""scripts/up_summary.py: the summary lists Mailpit's web UI when the stack has one."""

from __future__ import annotations

from tests.support.script_module import load_script

up_summary = load_script("up_summary")


def test_the_mail_ui_is_listed_only_when_the_stack_has_one() -> None:
    out = {"gateway_url": "http://127.0.0.1:8787", "services": ["gateway", "mailpit"],
           "mail_ui_url": "http://127.0.0.1:8025"}
    assert "mail (Mailpit)  http://127.0.0.1:8025" in up_summary.summary("local", out)
    assert "Mailpit" not in up_summary.summary("local", {**out, "mail_ui_url": ""})
