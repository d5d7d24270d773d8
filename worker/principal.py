"""Who is calling: the value every access decision is made from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    #: the owner id documents are scoped by; None only for the admin key
    user_id: str | None
    is_admin: bool = False
    session_handle: str | None = None
    #: read by access rules as ``auth.email``, ``auth.email_verified``, ``auth.roles``
    #: the address the session's access token names (its ``email`` claim); None for the admin key
    email: str | None = None
    #: True once the core verified ``email``: the token's ``email_verified`` claim, set at sign-in and after
    #: a verification (sessions carry it from their next refresh; see worker/account.py)
    email_verified: bool = False
    #: the user's roles as the access token's ``st-role`` claim lists them (see worker/user_roles.py)
    roles: tuple[str, ...] = ()
