"""sessions.py: what a new session's access token says about its user, on every sign-in path."""

from __future__ import annotations

import pytest

from worker.sessions import access_validity_ms, claims
from worker.settings import Settings
from worker.user_roles import ROLE_CLAIM, roles_from_claims


@pytest.mark.parametrize("verified", [True, False])
def test_the_claims_carry_the_email_its_verification_and_the_roles(verified: bool) -> None:
    payload = claims("ada@example.com", verified, ["editor", "viewer"], 1_700_000_000_000)
    assert payload["email"] == "ada@example.com"
    assert payload["email_verified"] is verified
    assert payload[ROLE_CLAIM] == {"v": ["editor", "viewer"], "t": 1_700_000_000_000}
    assert roles_from_claims(payload) == ("editor", "viewer")  # what the principal will read


def test_a_user_without_roles_still_carries_the_role_claim() -> None:
    # an empty list, not a missing claim: the token states that the user has none
    assert claims("a@b.co", False, [], 1)[ROLE_CLAIM] == {"v": [], "t": 1}


def test_the_access_token_validity_is_the_setting_in_milliseconds_and_never_zero() -> None:
    assert access_validity_ms(Settings(admin_key="k", collections_json="{}")) == 900_000
    assert access_validity_ms(Settings(admin_key="k", collections_json="{}",
                                       auth_access_token_validity=0)) == 1000
