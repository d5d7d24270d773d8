"""Stand-in settings, read once from the environment (names mirror the core's config.yaml keys).

Secrets (the api keys) come only from the environment, never argv, so they
don't show up in ``ps``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StandinConfig:
    #: core `api_keys`; empty = no check (as in the core)
    api_keys: frozenset[str] = frozenset()
    #: core `access_token_validity` (3600 s)
    access_token_validity_ms: int = 3600 * 1000
    #: core `access_token_validity_jitter` (0.05): lifetimes are shortened at random, never lengthened
    access_token_validity_jitter: float = 0.05
    #: core `refresh_token_validity` (144000 min)
    refresh_token_validity_ms: int = 144000 * 60 * 1000
    #: core `refresh_token_rotation_grace_period` (30 s, CDI 5.6)
    refresh_grace_ms: int = 30 * 1000
    #: core `access_token_dynamic_signing_key_update_interval` (168 h)
    key_rotation_ms: int = 168 * 3600 * 1000
    #: core `argon2_iterations` / `argon2_memory_kb` / `argon2_parallelism`
    argon2_iterations: int = 1
    argon2_memory_kb: int = 87795
    argon2_parallelism: int = 2
    #: core `email_verification_token_lifetime` (1 day)
    email_verification_token_lifetime_ms: int = 24 * 3600 * 1000
    #: core `password_reset_token_lifetime` (1 h)
    password_reset_token_lifetime_ms: int = 3600 * 1000


#: the core refuses to start with other keys (CoreConfig.validate): >= 20 chars of '=', '-', A-Z a-z 0-9
_API_KEY = re.compile(r"^[A-Za-z0-9=-]{20,}$")


def _num(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number") from None


def from_env(env: Mapping[str, str] | None = None) -> StandinConfig:
    env = os.environ if env is None else env
    keys = frozenset(k.strip() for k in env.get("SUPERTOKENS_API_KEYS", "").split(",") if k.strip())
    if any(not _API_KEY.match(k) for k in keys):  # the key itself is never printed
        raise SystemExit("SUPERTOKENS_API_KEYS: each key needs at least 20 characters, only '=', '-' and "
                         "alpha-numeric (the core's rule)")
    d = StandinConfig()
    return StandinConfig(
        api_keys=keys,
        access_token_validity_ms=int(_num(env, "SUPERTOKENS_ACCESS_TOKEN_VALIDITY", 3600) * 1000),
        access_token_validity_jitter=_num(env, "SUPERTOKENS_ACCESS_TOKEN_VALIDITY_JITTER",
                                          d.access_token_validity_jitter),
        refresh_token_validity_ms=int(_num(env, "SUPERTOKENS_REFRESH_TOKEN_VALIDITY", 144000) * 60_000),
        refresh_grace_ms=int(_num(env, "SUPERTOKENS_REFRESH_TOKEN_ROTATION_GRACE_PERIOD", 30) * 1000),
        key_rotation_ms=int(_num(env, "SUPERTOKENS_ACCESS_TOKEN_DYNAMIC_SIGNING_KEY_UPDATE_INTERVAL", 168)
                            * 3600 * 1000),
        argon2_iterations=int(_num(env, "SUPERTOKENS_ARGON2_ITERATIONS", d.argon2_iterations)),
        argon2_memory_kb=int(_num(env, "SUPERTOKENS_ARGON2_MEMORY_KB", d.argon2_memory_kb)),
        argon2_parallelism=int(_num(env, "SUPERTOKENS_ARGON2_PARALLELISM", d.argon2_parallelism)),
        email_verification_token_lifetime_ms=int(_num(env, "SUPERTOKENS_EMAIL_VERIFICATION_TOKEN_LIFETIME",
                                                      d.email_verification_token_lifetime_ms)),
        password_reset_token_lifetime_ms=int(_num(env, "SUPERTOKENS_PASSWORD_RESET_TOKEN_LIFETIME",
                                                  d.password_reset_token_lifetime_ms)),
    )
