"""Drive a CDI core with the official SuperTokens backend SDK (supertokens-python), one recipe flow a step.

Runs in the SDK's own virtual environment (scripts/supertokens_sdk_venv.sh), never the project's:

    <sdk venv>/bin/python tests/support/supertokens_sdk_driver.py STEP   (env CDI_URL, CDI_API_KEY)

Each step is one ``@step`` function: it calls the SDK's public ``asyncio`` API and raises
``AssertionError`` when an answer is not what the real core gives; the process exits 0 and prints
``ok STEP`` only when every call succeeded. The SDK's own checks run on every call (it refuses a core
whose ``/apiversion`` lacks its CDI, a response missing a field it reads, an unknown ``status``).
This module imports the SDK only inside :func:`main` and the steps, so the pytest side can import
:data:`STEPS` for its parameters from the project's venv.

Adding a flow (e.g. email verification, password reset, third-party sign-in/up): write
``@step("name") async def name() -> None`` below with the SDK calls and assertions, and add the
recipe's ``init()`` to :func:`_recipes` if the SDK needs it; the test picks it up from :data:`STEPS`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

Step = Callable[[], Awaitable[None]]
STEPS: dict[str, Step] = {}
TENANT = "public"
PASSWORD = "pw-" + "correct-horse"


def step(name: str) -> Callable[[Step], Step]:
    def register(fn: Step) -> Step:
        STEPS[name] = fn
        return fn
    return register


def _email() -> str:
    return f"sdk-{uuid.uuid4().hex[:12]}@example.com"


def _recipes() -> list[Any]:
    from supertokens_python.recipe import emailpassword, session, usermetadata, userroles

    return [emailpassword.init(), session.init(), usermetadata.init(), userroles.init()]


def _init(url: str, api_key: str) -> None:
    from supertokens_python import InputAppInfo, SupertokensConfig, init

    init(app_info=InputAppInfo(app_name="telestack-cdi-check", api_domain="http://127.0.0.1:1",
                               website_domain="http://127.0.0.1:2"),
         supertokens_config=SupertokensConfig(connection_uri=url, api_key=api_key),
         framework="fastapi", mode="asgi", recipe_list=_recipes(), telemetry=False)


async def _signed_up() -> tuple[str, str]:
    from supertokens_python.recipe.emailpassword.asyncio import sign_up
    from supertokens_python.recipe.emailpassword.interfaces import SignUpOkResult

    email = _email()
    result = await sign_up(TENANT, email, PASSWORD)
    assert isinstance(result, SignUpOkResult), result
    return email, result.user.id


@step("core_version")
async def core_version() -> None:
    from supertokens_python.constants import SUPPORTED_CDI_VERSIONS
    from supertokens_python.querier import Querier

    version = await Querier.get_instance().get_api_version()
    assert version in SUPPORTED_CDI_VERSIONS, version


@step("emailpassword")
async def emailpassword() -> None:
    from supertokens_python.asyncio import get_user
    from supertokens_python.recipe.emailpassword.asyncio import sign_in, sign_up
    from supertokens_python.recipe.emailpassword.interfaces import (
        EmailAlreadyExistsError,
        SignInOkResult,
        WrongCredentialsError,
    )

    email, user_id = await _signed_up()
    assert isinstance(await sign_up(TENANT, email, PASSWORD), EmailAlreadyExistsError)
    signed_in = await sign_in(TENANT, email, PASSWORD)
    assert isinstance(signed_in, SignInOkResult) and signed_in.user.id == user_id, signed_in
    assert signed_in.user.emails == [email]
    assert isinstance(await sign_in(TENANT, email, PASSWORD + "x"), WrongCredentialsError)
    assert isinstance(await sign_in(TENANT, _email(), PASSWORD), WrongCredentialsError)
    user = await get_user(user_id)
    assert user is not None and user.id == user_id and user.emails == [email]
    assert await get_user(str(uuid.uuid4())) is None


@step("session")
async def session() -> None:
    from supertokens_python.recipe.session.asyncio import (
        create_new_session_without_request_response,
        get_all_session_handles_for_user,
        get_session_information,
        get_session_without_request_response,
        merge_into_access_token_payload,
        refresh_session_without_request_response,
        revoke_session,
    )
    from supertokens_python.recipe.session.exceptions import UnauthorisedError
    from supertokens_python.types import RecipeUserId

    _, user_id = await _signed_up()
    created = await create_new_session_without_request_response(
        TENANT, RecipeUserId(user_id), {"app": "telestack"}, {}, disable_anti_csrf=True)
    tokens = created.get_all_session_tokens_dangerously()
    assert created.get_user_id() == user_id
    verified = await get_session_without_request_response(tokens["accessToken"], anti_csrf_check=False,
                                                          check_database=True)
    assert verified is not None and verified.get_handle() == created.get_handle()
    assert verified.get_access_token_payload()["app"] == "telestack"
    assert await merge_into_access_token_payload(created.get_handle(), {"plan": "pro"})
    refreshed = await refresh_session_without_request_response(tokens["refreshToken"], disable_anti_csrf=True)
    new_tokens = refreshed.get_all_session_tokens_dangerously()
    assert new_tokens["refreshToken"] != tokens["refreshToken"]
    assert refreshed.get_access_token_payload()["plan"] == "pro"  # the stored payload rode the refresh
    info = await get_session_information(created.get_handle())
    assert info is not None and info.user_id == user_id
    assert created.get_handle() in await get_all_session_handles_for_user(user_id)
    assert await revoke_session(created.get_handle())
    assert await get_session_information(created.get_handle()) is None
    try:  # the core answers UNAUTHORISED for a revoked session; the SDK raises it
        await get_session_without_request_response(new_tokens["accessToken"], anti_csrf_check=False,
                                                    check_database=True)
    except UnauthorisedError:
        pass
    else:
        raise AssertionError("a revoked session still verified with checkDatabase")


@step("usermetadata")
async def usermetadata() -> None:
    from supertokens_python.recipe.usermetadata.asyncio import (
        clear_user_metadata,
        get_user_metadata,
        update_user_metadata,
    )

    user_id = str(uuid.uuid4())
    assert (await get_user_metadata(user_id)).metadata == {}
    await update_user_metadata(user_id, {"prefs": {"theme": "dark"}, "todo": [1]})
    updated = await update_user_metadata(user_id, {"todo": None, "lang": "de"})
    assert updated.metadata == {"prefs": {"theme": "dark"}, "lang": "de"}, updated.metadata
    await clear_user_metadata(user_id)
    assert (await get_user_metadata(user_id)).metadata == {}


@step("userroles")
async def userroles() -> None:
    from supertokens_python.recipe.session.asyncio import (
        create_new_session_without_request_response,
        get_session_without_request_response,
    )
    from supertokens_python.recipe.userroles.asyncio import (
        add_role_to_user,
        create_new_role_or_add_permissions,
        delete_role,
        get_all_roles,
        get_permissions_for_role,
        get_roles_for_user,
        get_roles_that_have_permission,
        get_users_that_have_role,
        remove_user_role,
    )
    from supertokens_python.recipe.userroles.interfaces import UnknownRoleError
    from supertokens_python.types import RecipeUserId

    role = f"editor-{uuid.uuid4().hex[:6]}"
    assert (await create_new_role_or_add_permissions(role, ["write"])).created_new_role
    assert not (await create_new_role_or_add_permissions(role, ["read"])).created_new_role
    assert role in (await get_all_roles()).roles
    assert sorted((await get_permissions_for_role(role)).permissions) == ["read", "write"]  # type: ignore[union-attr]
    assert role in (await get_roles_that_have_permission("write")).roles
    _, user_id = await _signed_up()
    assert not (await add_role_to_user(TENANT, user_id, role)).did_user_already_have_role  # type: ignore[union-attr]
    assert isinstance(await add_role_to_user(TENANT, user_id, "no-such-role"), UnknownRoleError)
    assert (await get_roles_for_user(TENANT, user_id)).roles == [role]
    assert user_id in (await get_users_that_have_role(TENANT, role)).users  # type: ignore[union-attr]
    # the SDK puts st-role / st-perm claims into new sessions' access tokens from these answers
    created = await create_new_session_without_request_response(TENANT, RecipeUserId(user_id), {}, {},
                                                                disable_anti_csrf=True)
    payload = created.get_access_token_payload()
    assert payload["st-role"]["v"] == [role] and sorted(payload["st-perm"]["v"]) == ["read", "write"], payload
    token = created.get_all_session_tokens_dangerously()["accessToken"]
    verified = await get_session_without_request_response(token, anti_csrf_check=False)
    assert verified is not None and verified.get_access_token_payload()["st-role"]["v"] == [role]
    assert (await remove_user_role(TENANT, user_id, role)).did_user_have_role  # type: ignore[union-attr]
    assert (await get_roles_for_user(TENANT, user_id)).roles == []
    assert (await delete_role(role)).did_role_exist
    assert role not in (await get_all_roles()).roles


@step("delete_user")
async def delete_user() -> None:
    from supertokens_python.asyncio import delete_user as sdk_delete_user
    from supertokens_python.asyncio import get_user

    _, user_id = await _signed_up()
    await sdk_delete_user(user_id)
    assert await get_user(user_id) is None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in STEPS:
        print(f"usage: {argv[0]} {{{','.join(STEPS)}}}", file=sys.stderr)
        return 2
    _init(os.environ["CDI_URL"], os.environ.get("CDI_API_KEY", ""))
    asyncio.run(STEPS[argv[1]]())
    print(f"ok {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
