"""Which recipe modules the stand-in serves beside the core's own APIs (``api.Core``).

A recipe module is one file with ``endpoints(core: Core) -> dict[str, Endpoint]``: it may create its
own tables on ``core.store`` and name the ones keyed by user in ``core.store.user_tables`` (so
``/user/remove`` clears them). Adding a recipe is one line in :data:`RECIPES`; a path served twice
is an error at start-up, never a silent override.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.standins.supertokens import user_roles
from infra.standins.supertokens.api import Core
from infra.standins.supertokens.server import Endpoint

Recipe = Callable[[Core], dict[str, Endpoint]]

RECIPES: tuple[Recipe, ...] = (
    user_roles.endpoints,
)


def all_endpoints(core: Core, recipes: tuple[Recipe, ...] = RECIPES) -> dict[str, Endpoint]:
    """The core's endpoints plus every recipe's; refuses a path two of them claim."""
    served = core.endpoints()
    for recipe in recipes:
        for path, endpoint in recipe(core).items():
            if path in served:
                raise ValueError(f"stand-in path {path} is registered twice ({recipe.__module__})")
            served[path] = endpoint
    return served
