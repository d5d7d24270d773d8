"""Drive a CDI core with the official SuperTokens backend SDK (supertokens-python), one recipe flow a step.

Runs in the SDK's own virtual environment (scripts/supertokens_sdk_venv.sh), never the project's:

    <sdk venv>/bin/python tests/support/supertokens_sdk_driver.py STEP   (env CDI_URL, CDI_API_KEY)

Each step is one ``@step`` function: it calls the SDK's public ``asyncio`` API and raises
``AssertionError`` when an answer is not what the real core gives; the process exits 0 and prints
``ok STEP`` only when every call succeeded. The SDK's own checks run on every call (it refuses a core
whose ``/apiversion`` lacks its CDI, a response missing a field it reads, an unknown ``status``).
This module imports the SDK only inside :func:`main` and the steps, so the pytest side can import
:data:`STEPS` for its parameters from the project's venv. With ``CDI_EXCHANGES`` set to a file path,
every core call the SDK made is written there when the step ends, passed or failed, one JSON line
each (method, URL, query, body, status, answer), so the test can check each against the CDI spec.

Adding a flow: write ``@step("name") async def name() -> None`` below with the SDK calls and
assertions, and add the recipe's ``init()`` to :func:`_recipes` if the SDK needs it; the test picks
it up from :data:`STEPS`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

Step = Callable[[], Awaitable[None]]
STEPS: dict[str, Step] = {}
TENANT = "public"
PASSWORD = "pw-" + "correct-horse"
NEW_PASSWORD = "pw-" + "battery-staple-2"


def step(name: str) -> Callable[[Step], Step]:
    def register(fn: Step) -> Step:
        STEPS[name] = fn
        return fn
    return register


def _email() -> str:
    return f"sdk-{uuid.uuid4().hex[:12]}@example.com"


def _recipes() -> list[Any]:
    from supertokens_python.recipe import (
        emailpassword,
        emailverification,
        session,
        thirdparty,
        usermetadata,
        userroles,
    )

    # email verification OPTIONAL: sessions carry the st-ev claim (read from the core) but need no proof
    return [emailpassword.init(), emailverification.init(mode="OPTIONAL"), thirdparty.init(), session.init(),
            usermetadata.init(), userroles.init()]


def _init(url: str, api_key: str) -> None:
    from supertokens_python import InputAppInfo, SupertokensConfig, init

    init(app_info=InputAppInfo(app_name="telestack-cdi-check", api_domain="http://127.0.0.1:1",
                               website_domain="http://127.0.0.1:2"),
         supertokens_config=SupertokensConfig(connection_uri=url, api_key=api_key),
         framework="fastapi", mode="asgi", recipe_list=_recipes(), telemetry=False)


def _record_exchanges(into: list[dict[str, Any]]) -> None:
    """Append every core exchange to ``into``.

    ``Querier.api_request`` is the one coroutine through which supertokens-python 0.31.4 sends each
    core request (its network_interceptor sees requests, never answers), so it is wrapped here.
    """
    from supertokens_python.querier import Querier

    send = Querier.api_request

    async def recorded(self: Any, url: str, method: str, attempts: int, *args: Any, **kwargs: Any) -> Any:
        response = await send(self, url, method, attempts, *args, **kwargs)
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        into.append({"method": method, "url": url, "query": kwargs.get("params") or {},
                     "body": kwargs.get("json"), "status": response.status_code, "answer": answer})
        return response

    Querier.api_request = recorded  # type: ignore[method-assign]


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


async def _third_party_user(third_party_id: str, subject: str, email: str, verified: bool) -> Any:
    from supertokens_python.recipe.thirdparty.asyncio import manually_create_or_update_user
    from supertokens_python.recipe.thirdparty.interfaces import ManuallyCreateOrUpdateUserOkResult

    result = await manually_create_or_update_user(TENANT, third_party_id, subject, email, verified)
    assert isinstance(result, ManuallyCreateOrUpdateUserOkResult), result
    return result


async def _refused_token_verification(token: str) -> None:
    from supertokens_python.recipe.emailverification.asyncio import verify_email_using_token
    from supertokens_python.recipe.emailverification.interfaces import VerifyEmailUsingTokenInvalidTokenError

    result = await verify_email_using_token(TENANT, token)
    assert isinstance(result, VerifyEmailUsingTokenInvalidTokenError), result


@step("emailverification")
async def email_verification() -> None:
    from supertokens_python.asyncio import get_user
    from supertokens_python.recipe.emailverification.asyncio import (
        create_email_verification_token,
        is_email_verified,
        revoke_email_verification_tokens,
        unverify_email,
        verify_email_using_token,
    )
    from supertokens_python.recipe.emailverification.interfaces import (
        CreateEmailVerificationTokenEmailAlreadyVerifiedError,
        CreateEmailVerificationTokenOkResult,
        VerifyEmailUsingTokenOkResult,
    )
    from supertokens_python.types import RecipeUserId

    email, user_id = await _signed_up()
    recipe_user = RecipeUserId(user_id)
    assert await is_email_verified(recipe_user, email) is False
    assert await is_email_verified(recipe_user) is False  # the SDK reads the email from GET /user/id
    first = await create_email_verification_token(TENANT, recipe_user, email)
    second = await create_email_verification_token(TENANT, recipe_user)
    assert isinstance(first, CreateEmailVerificationTokenOkResult), first
    assert isinstance(second, CreateEmailVerificationTokenOkResult) and second.token != first.token, second
    await _refused_token_verification("forged-" + first.token[7:])
    verified = await verify_email_using_token(TENANT, first.token)
    assert isinstance(verified, VerifyEmailUsingTokenOkResult), verified
    assert verified.user.recipe_user_id.get_as_string() == user_id and verified.user.email == email
    await _refused_token_verification(first.token)  # spent
    await _refused_token_verification(second.token)  # verifying consumed every token of the pair
    assert await is_email_verified(recipe_user, email) is True
    user = await get_user(user_id)
    assert user is not None and user.login_methods[0].verified is True, user
    assert isinstance(await create_email_verification_token(TENANT, recipe_user, email),
                      CreateEmailVerificationTokenEmailAlreadyVerifiedError)
    # another address of the same user is a pair of its own, still unverified
    assert await is_email_verified(recipe_user, "other-" + email) is False
    await unverify_email(recipe_user, email)
    assert await is_email_verified(recipe_user, email) is False
    user = await get_user(user_id)
    assert user is not None and user.login_methods[0].verified is False, user
    revoked = await create_email_verification_token(TENANT, recipe_user, email)
    assert isinstance(revoked, CreateEmailVerificationTokenOkResult), revoked
    await revoke_email_verification_tokens(TENANT, recipe_user, email)
    await _refused_token_verification(revoked.token)
    assert await is_email_verified(recipe_user, email) is False


@step("password_reset")
async def password_reset() -> None:
    from supertokens_python.recipe.emailpassword.asyncio import (
        consume_password_reset_token,
        create_reset_password_token,
        reset_password_using_token,
        sign_in,
        update_email_or_password,
    )
    from supertokens_python.recipe.emailpassword.interfaces import (
        ConsumePasswordResetTokenOkResult,
        CreateResetPasswordOkResult,
        EmailAlreadyExistsError,
        PasswordResetTokenInvalidError,
        SignInOkResult,
        UnknownUserIdError,
        UpdateEmailOrPasswordOkResult,
        WrongCredentialsError,
    )
    from supertokens_python.types import RecipeUserId

    email, user_id = await _signed_up()
    assert isinstance(await create_reset_password_token(TENANT, str(uuid.uuid4()), email), UnknownUserIdError)
    first = await create_reset_password_token(TENANT, user_id, email)
    second = await create_reset_password_token(TENANT, user_id, email)
    assert isinstance(first, CreateResetPasswordOkResult), first
    assert isinstance(second, CreateResetPasswordOkResult) and second.token != first.token, second
    forged = await reset_password_using_token(TENANT, first.token[:-4] + "AAAA", NEW_PASSWORD)
    assert isinstance(forged, PasswordResetTokenInvalidError), forged
    reset = await reset_password_using_token(TENANT, first.token, NEW_PASSWORD)
    assert isinstance(reset, UpdateEmailOrPasswordOkResult), reset
    assert isinstance(await sign_in(TENANT, email, PASSWORD), WrongCredentialsError)
    signed_in = await sign_in(TENANT, email, NEW_PASSWORD)
    assert isinstance(signed_in, SignInOkResult) and signed_in.user.id == user_id, signed_in
    again = await reset_password_using_token(TENANT, first.token, PASSWORD)  # spent
    assert isinstance(again, PasswordResetTokenInvalidError), again
    # consuming one token spent every token of the user
    spent = await consume_password_reset_token(TENANT, second.token)
    assert isinstance(spent, PasswordResetTokenInvalidError), spent
    assert isinstance(await sign_in(TENANT, email, PASSWORD), WrongCredentialsError)
    # a token names the user and the email it was made for
    third = await create_reset_password_token(TENANT, user_id, email)
    assert isinstance(third, CreateResetPasswordOkResult), third
    consumed = await consume_password_reset_token(TENANT, third.token)
    assert isinstance(consumed, ConsumePasswordResetTokenOkResult), consumed
    assert (consumed.user_id, consumed.email) == (user_id, email)
    # the update the reset ends with (PUT /recipe/user), refused: a taken email, an unknown user
    taken, _ = await _signed_up()
    assert isinstance(await update_email_or_password(RecipeUserId(user_id), email=taken),
                      EmailAlreadyExistsError)
    assert isinstance(await update_email_or_password(RecipeUserId(str(uuid.uuid4())), password=NEW_PASSWORD),
                      UnknownUserIdError)


@step("thirdparty")
async def third_party() -> None:
    from supertokens_python.asyncio import get_user, list_users_by_account_info
    from supertokens_python.recipe.emailverification.asyncio import is_email_verified, unverify_email
    from supertokens_python.recipe.session.asyncio import (
        create_new_session_without_request_response,
        get_session_without_request_response,
    )
    from supertokens_python.recipe.thirdparty.types import ThirdPartyInfo
    from supertokens_python.types import RecipeUserId
    from supertokens_python.types.base import AccountInfoInput

    subject, email = "sub-" + uuid.uuid4().hex, _email()
    created = await _third_party_user("google", subject, email, False)
    user_id = created.user.id
    assert created.created_new_recipe_user and created.recipe_user_id.get_as_string() == user_id
    method = created.user.login_methods[0]
    assert (method.recipe_id, method.email, method.verified) == ("thirdparty", email, False), method.to_json()
    assert method.third_party is not None and (method.third_party.id, method.third_party.user_id) == \
        ("google", subject)
    # the same provider identity again is the same user; isVerified marks its email verified
    again = await _third_party_user("google", subject, email, True)
    assert not again.created_new_recipe_user and again.user.id == user_id
    assert again.user.login_methods[0].verified is True
    assert await is_email_verified(RecipeUserId(user_id)) is True
    later = await _third_party_user("google", subject, email, False)
    assert later.user.id == user_id and later.user.login_methods[0].verified is True  # never un-verified
    # another subject of the provider, or the same subject at another provider, is another user
    other = await _third_party_user("google", "sub-" + uuid.uuid4().hex, email, False)
    assert other.created_new_recipe_user and other.user.id != user_id
    elsewhere = await _third_party_user("github", subject, email, False)
    assert elsewhere.created_new_recipe_user and elsewhere.user.id not in (user_id, other.user.id)
    # an email-password account with the same email is a user of its own (no implicit linking)
    from supertokens_python.recipe.emailpassword.asyncio import sign_up
    from supertokens_python.recipe.emailpassword.interfaces import SignUpOkResult

    password_user = await sign_up(TENANT, email, PASSWORD)
    assert isinstance(password_user, SignUpOkResult), password_user
    sharing = await list_users_by_account_info(TENANT, AccountInfoInput(email=email))
    assert sorted(u.id for u in sharing) == sorted([user_id, other.user.id, elsewhere.user.id,
                                                    password_user.user.id]), [u.to_json() for u in sharing]
    # oldest first (users made within the same millisecond may come in either order)
    assert [u.time_joined for u in sharing] == sorted(u.time_joined for u in sharing)
    found = await list_users_by_account_info(
        TENANT, AccountInfoInput(third_party=ThirdPartyInfo(subject, "google")))
    assert [u.id for u in found] == [user_id]
    assert await list_users_by_account_info(
        TENANT, AccountInfoInput(third_party=ThirdPartyInfo("sub-nobody", "google"))) == []
    # the provider reports a new email: the user keeps its id and takes it, unverified
    new_email = _email()
    moved = await _third_party_user("google", subject, new_email, False)
    assert moved.user.id == user_id and moved.user.emails == [new_email], moved.user.to_json()
    assert moved.user.login_methods[0].verified is False
    assert await is_email_verified(RecipeUserId(user_id), email) is True  # the old pair stays as it was
    await unverify_email(RecipeUserId(user_id), email)
    assert await is_email_verified(RecipeUserId(user_id), email) is False
    fetched = await get_user(user_id)
    assert fetched is not None and fetched.emails == [new_email] and fetched.third_party[0].id == "google"
    # a third-party user holds sessions like any other
    session = await create_new_session_without_request_response(TENANT, RecipeUserId(user_id), {}, {},
                                                                disable_anti_csrf=True)
    token = session.get_all_session_tokens_dangerously()["accessToken"]
    verified = await get_session_without_request_response(token, anti_csrf_check=False, check_database=True)
    assert verified is not None and verified.get_user_id() == user_id


def _descending(text: str) -> tuple[int, ...]:
    """A sort key ordering strings in reverse."""
    return (*(-ord(c) for c in text), 1)


async def _listed(newest_first: bool, recipes: list[str] | None = None) -> list[Any]:
    """Every user the core lists, page by page (two a page, so paging itself is exercised)."""
    from supertokens_python.asyncio import get_users_newest_first, get_users_oldest_first

    fetch = get_users_newest_first if newest_first else get_users_oldest_first
    users: list[Any] = []
    token = None
    while True:
        page = await fetch(TENANT, limit=2, pagination_token=token, include_recipe_ids=recipes)
        assert len(page.users) <= 2
        users += page.users
        token = page.next_pagination_token
        if token is None:
            return users


@step("users")
async def users() -> None:
    """get_user, list, count and delete_user for a third-party and an email-password user."""
    from supertokens_python.asyncio import delete_user, get_user, get_user_count, list_users_by_account_info
    from supertokens_python.recipe.emailpassword.asyncio import create_reset_password_token, sign_in, sign_up
    from supertokens_python.recipe.emailpassword.interfaces import (
        CreateResetPasswordOkResult,
        SignUpOkResult,
        UnknownUserIdError,
        WrongCredentialsError,
    )
    from supertokens_python.recipe.emailverification.asyncio import is_email_verified
    from supertokens_python.recipe.session.asyncio import (
        create_new_session_without_request_response,
        get_all_session_handles_for_user,
        get_session_information,
    )
    from supertokens_python.recipe.thirdparty.types import ThirdPartyInfo
    from supertokens_python.recipe.usermetadata.asyncio import get_user_metadata, update_user_metadata
    from supertokens_python.recipe.userroles.asyncio import (
        add_role_to_user,
        create_new_role_or_add_permissions,
        get_roles_for_user,
    )
    from supertokens_python.types import RecipeUserId
    from supertokens_python.types.base import AccountInfoInput

    role = f"member-{uuid.uuid4().hex[:6]}"
    await create_new_role_or_add_permissions(role, ["read"])
    counts = {r: await get_user_count([r]) for r in ("emailpassword", "thirdparty")}
    total = await get_user_count(None)
    email, password_id = await _signed_up()
    subject, tp_email = "sub-" + uuid.uuid4().hex, _email()
    tp_id = (await _third_party_user("github", subject, tp_email, True)).user.id
    assert await get_user_count(["emailpassword"]) == counts["emailpassword"] + 1
    assert await get_user_count(["thirdparty"]) == counts["thirdparty"] + 1
    assert await get_user_count(None, tenant_id=TENANT) == total + 2
    handles = {}
    for user_id in (password_id, tp_id):
        await update_user_metadata(user_id, {"plan": "pro"})
        await add_role_to_user(TENANT, user_id, role)
        created = await create_new_session_without_request_response(TENANT, RecipeUserId(user_id), {}, {},
                                                                    disable_anti_csrf=True)
        handles[user_id] = created.get_handle()
        fetched = await get_user(user_id)
        assert fetched is not None and fetched.id == user_id, user_id
    assert (await get_user(tp_id)).login_methods[0].recipe_id == "thirdparty"  # type: ignore[union-attr]
    assert (await get_user(password_id)).login_methods[0].recipe_id == "emailpassword"  # type: ignore[union-attr]
    # listing: every user once, in time-joined order either way, filtered by recipe on request
    newest = await _listed(newest_first=True)
    ids = [u.id for u in newest]
    assert len(ids) == len(set(ids)) == total + 2 and {password_id, tp_id} <= set(ids)
    # the core's order: time joined, then user id descending among users who joined in the same ms
    assert ids == [u.id for u in sorted(newest, key=lambda u: (-u.time_joined, _descending(u.id)))]
    oldest = await _listed(newest_first=False)
    assert [u.id for u in oldest] == [u.id for u in sorted(newest, key=lambda u: (u.time_joined,
                                                                                  _descending(u.id)))]
    third_party = await _listed(newest_first=True, recipes=["thirdparty"])
    assert tp_id in {u.id for u in third_party} and password_id not in {u.id for u in third_party}
    assert all(u.login_methods[0].recipe_id == "thirdparty" for u in third_party)
    # a third-party user goes with its sessions, metadata, roles and verified email
    await delete_user(tp_id)
    assert await get_user(tp_id) is None
    assert await get_session_information(handles[tp_id]) is None
    assert await get_all_session_handles_for_user(tp_id) == []
    assert (await get_user_metadata(tp_id)).metadata == {}
    assert (await get_roles_for_user(TENANT, tp_id)).roles == []
    assert await is_email_verified(RecipeUserId(tp_id), tp_email) is False
    assert await list_users_by_account_info(
        TENANT, AccountInfoInput(third_party=ThirdPartyInfo(subject, "github"))) == []
    assert tp_id not in {u.id for u in await _listed(newest_first=True, recipes=["thirdparty"])}
    assert await get_user_count(["thirdparty"]) == counts["thirdparty"]
    assert isinstance(await create_reset_password_token(TENANT, tp_id, tp_email), UnknownUserIdError)
    back = await _third_party_user("github", subject, tp_email, False)  # the identity signs up afresh
    assert back.created_new_recipe_user and back.user.id != tp_id
    assert back.user.login_methods[0].verified is False
    # an email-password user likewise; its email is free again
    await delete_user(password_id)
    assert await get_user(password_id) is None
    assert await get_session_information(handles[password_id]) is None
    assert (await get_user_metadata(password_id)).metadata == {}
    assert (await get_roles_for_user(TENANT, password_id)).roles == []
    assert isinstance(await sign_in(TENANT, email, PASSWORD), WrongCredentialsError)
    assert isinstance(await create_reset_password_token(TENANT, password_id, email), UnknownUserIdError)
    assert await get_user_count(["emailpassword"]) == counts["emailpassword"]
    again = await sign_up(TENANT, email, PASSWORD)
    assert isinstance(again, SignUpOkResult) and again.user.id != password_id
    # a third-party user may get a reset token too (the core ties tokens to any auth user)
    assert isinstance(await create_reset_password_token(TENANT, back.user.id, tp_email),
                      CreateResetPasswordOkResult)
    # an id no auth recipe knows: OK, and like the core it deletes nothing, not even that id's metadata
    stranger = str(uuid.uuid4())
    await update_user_metadata(stranger, {"kept": True})
    await delete_user(stranger)
    assert (await get_user_metadata(stranger)).metadata == {"kept": True}

def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in STEPS:
        print(f"usage: {argv[0]} {{{','.join(STEPS)}}}", file=sys.stderr)
        return 2
    _init(os.environ["CDI_URL"], os.environ.get("CDI_API_KEY", ""))
    exchanges: list[dict[str, Any]] = []
    _record_exchanges(exchanges)
    try:
        asyncio.run(STEPS[argv[1]]())
    finally:  # written on failure too: the test shows the last exchanges
        if os.environ.get("CDI_EXCHANGES"):
            with open(os.environ["CDI_EXCHANGES"], "w", encoding="utf-8") as f:
                f.writelines(json.dumps(e, default=str) + "\n" for e in exchanges)
    print(f"ok {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
