"""A SuperTokens Core stand-in for local and CI use: the CDI subset TelestackDB calls.

SuperTokens Core is not installable from any registry our machines reach, so
the local stack and the tests run this instead; cloud stacks run the real core.
It is judged by one thing: a client of the real core cannot tell the
difference for the subset implemented (see tests/integration/test_cdi_contract.py,
which can also be pointed at a real core).

    SUPERTOKENS_API_KEYS=<key> python -m infra.standins.supertokens \
        --host 127.0.0.1 --port 3567 --db .telestack/supertokens.sqlite3
"""

from __future__ import annotations

from pathlib import Path

from infra.standins.supertokens.config import StandinConfig


def create_app(db_path: str | Path, config: StandinConfig | None = None):  # -> ASGI callable
    """The ASGI app over the SQLite file at ``db_path`` (created if missing)."""
    from infra.standins.supertokens import config as config_module
    from infra.standins.supertokens.api import Core
    from infra.standins.supertokens.recipes import RECIPES, all_endpoints
    from infra.standins.supertokens.server import StandinApp
    from infra.standins.supertokens.store import Store
    from infra.standins.supertokens.thirdparty import ThirdPartyRecipe

    config = config or config_module.from_env()
    core = Core(config, Store(db_path))
    third_party = ThirdPartyRecipe(core)
    return StandinApp(config, all_endpoints(core, (*RECIPES, lambda _core: third_party.endpoints())))
