"""Roles on the principal: the st-role claim read strictly; role names checked."""

from __future__ import annotations

from typing import Any

import pytest

from worker.http import ApiError
from worker.user_roles import check_role, role_claim, roles_from_claims


def test_roles_come_from_the_st_role_claim() -> None:
    assert roles_from_claims({"st-role": role_claim(["admin", "editor"], 1)}) == ("admin", "editor")
    assert role_claim(["a"], 5) == {"v": ["a"], "t": 5}


@pytest.mark.parametrize("claims", [{}, {"st-role": ["admin"]}, {"st-role": {"v": "admin"}},
                                    {"st-role": {"v": ["a", 1]}}, {"st-role": None}])
def test_a_missing_or_malformed_claim_gives_no_roles(claims: dict[str, Any]) -> None:
    assert roles_from_claims(claims) == ()


@pytest.mark.parametrize("name", ["", "-a", "a b", "a/b", "x" * 65, "é"])
def test_role_names_outside_the_alphabet_are_400(name: str) -> None:
    with pytest.raises(ApiError) as info:
        check_role(name)
    assert info.value.status == 400


def test_role_names_inside_it_pass() -> None:
    assert check_role("org:editor.v2_x-1") == "org:editor.v2_x-1"
