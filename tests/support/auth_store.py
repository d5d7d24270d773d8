"""A SuperTokens Core auth store in PostgreSQL for the ops tests: its schema, awkward rows, and a
byte-exact snapshot (binary COPY of every table) to compare a restore with the original."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from tests.support.postgres import PostgresServer

#: the database SuperTokens Core uses on a stack that was never restored
LIVE = "supertokens"

#: SuperTokens Core's tables as supertokens-postgresql-plugin creates them (constraint names shortened)
SCHEMA = """
CREATE TABLE apps (app_id VARCHAR(64) NOT NULL DEFAULT 'public', created_at_time BIGINT,
  CONSTRAINT apps_pkey PRIMARY KEY (app_id));
CREATE TABLE tenants (app_id VARCHAR(64) NOT NULL DEFAULT 'public',
  tenant_id VARCHAR(64) NOT NULL DEFAULT 'public', created_at_time BIGINT,
  CONSTRAINT tenants_pkey PRIMARY KEY (app_id, tenant_id),
  CONSTRAINT tenants_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps (app_id) ON DELETE CASCADE);
CREATE TABLE key_value (app_id VARCHAR(64) DEFAULT 'public', tenant_id VARCHAR(64) DEFAULT 'public',
  name VARCHAR(128), value TEXT, created_at_time BIGINT,
  CONSTRAINT key_value_pkey PRIMARY KEY (app_id, tenant_id, name),
  CONSTRAINT key_value_tenant_id_fkey FOREIGN KEY (app_id, tenant_id) REFERENCES tenants (app_id, tenant_id)
  ON DELETE CASCADE);
CREATE TABLE app_id_to_user_id (app_id VARCHAR(64) NOT NULL DEFAULT 'public', user_id CHAR(36) NOT NULL,
  recipe_id VARCHAR(128) NOT NULL, primary_or_recipe_user_id CHAR(36) NOT NULL,
  is_linked_or_is_a_primary_user BOOLEAN NOT NULL DEFAULT FALSE, time_joined BIGINT NOT NULL DEFAULT 0,
  primary_or_recipe_user_time_joined BIGINT NOT NULL DEFAULT 0,
  CONSTRAINT app_id_to_user_id_pkey PRIMARY KEY (app_id, user_id),
  CONSTRAINT app_id_to_user_id_primary_or_recipe_user_id_fkey FOREIGN KEY (app_id, primary_or_recipe_user_id)
  REFERENCES app_id_to_user_id (app_id, user_id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT app_id_to_user_id_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps (app_id) ON DELETE CASCADE);
CREATE TABLE all_auth_recipe_users (app_id VARCHAR(64) DEFAULT 'public',
  tenant_id VARCHAR(64) DEFAULT 'public', user_id CHAR(36) NOT NULL,
  primary_or_recipe_user_id CHAR(36) NOT NULL,
  is_linked_or_is_a_primary_user BOOLEAN NOT NULL DEFAULT FALSE, recipe_id VARCHAR(128) NOT NULL,
  time_joined BIGINT NOT NULL, primary_or_recipe_user_time_joined BIGINT NOT NULL,
  CONSTRAINT all_auth_recipe_users_pkey PRIMARY KEY (app_id, tenant_id, user_id),
  CONSTRAINT all_auth_recipe_users_tenant_id_fkey FOREIGN KEY (app_id, tenant_id)
  REFERENCES tenants (app_id, tenant_id) ON DELETE CASCADE,
  CONSTRAINT all_auth_recipe_users_user_id_fkey FOREIGN KEY (app_id, user_id)
  REFERENCES app_id_to_user_id (app_id, user_id) ON DELETE CASCADE);
CREATE INDEX all_auth_recipe_users_pagination_index ON all_auth_recipe_users (time_joined DESC, user_id DESC);
CREATE TABLE emailpassword_users (app_id VARCHAR(64) DEFAULT 'public', user_id CHAR(36) NOT NULL,
  email VARCHAR(256) NOT NULL, password_hash VARCHAR(256) NOT NULL, time_joined BIGINT NOT NULL,
  CONSTRAINT emailpassword_users_user_id_fkey FOREIGN KEY (app_id, user_id)
  REFERENCES app_id_to_user_id (app_id, user_id) ON DELETE CASCADE ON UPDATE CASCADE,
  CONSTRAINT emailpassword_users_pkey PRIMARY KEY (app_id, user_id));
CREATE TABLE session_info (app_id VARCHAR(64) DEFAULT 'public', tenant_id VARCHAR(64) DEFAULT 'public',
  session_handle VARCHAR(255) NOT NULL, user_id VARCHAR(128) NOT NULL,
  refresh_token_hash_2 VARCHAR(128) NOT NULL,
  session_data TEXT, expires_at BIGINT NOT NULL, created_at_time BIGINT NOT NULL, jwt_user_payload TEXT,
  use_static_key BOOLEAN NOT NULL,
  CONSTRAINT session_info_pkey PRIMARY KEY (app_id, tenant_id, session_handle),
  CONSTRAINT session_info_tenant_id_fkey FOREIGN KEY (app_id, tenant_id)
  REFERENCES tenants (app_id, tenant_id) ON DELETE CASCADE);
CREATE TABLE user_metadata (app_id VARCHAR(64) DEFAULT 'public', user_id VARCHAR(128) NOT NULL,
  user_metadata TEXT NOT NULL, CONSTRAINT user_metadata_pkey PRIMARY KEY (app_id, user_id),
  CONSTRAINT user_metadata_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps (app_id) ON DELETE CASCADE);
CREATE TABLE webauthn_users (app_id VARCHAR(64) DEFAULT 'public' NOT NULL, user_id CHAR(36) NOT NULL,
  email VARCHAR(256) NOT NULL, rp_id VARCHAR(256) NOT NULL, time_joined BIGINT NOT NULL,
  CONSTRAINT webauthn_users_pkey PRIMARY KEY (app_id, user_id),
  CONSTRAINT webauthn_users_user_id_fkey FOREIGN KEY (app_id, user_id)
  REFERENCES app_id_to_user_id (app_id, user_id) ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE webauthn_credentials (id VARCHAR(256) NOT NULL, app_id VARCHAR(64) DEFAULT 'public' NOT NULL,
  rp_id VARCHAR(256), user_id CHAR(36), counter BIGINT NOT NULL, public_key BYTEA NOT NULL,
  transports TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  CONSTRAINT webauthn_credentials_pkey PRIMARY KEY (app_id, rp_id, id),
  CONSTRAINT webauthn_credentials_user_id_fkey FOREIGN KEY (app_id, user_id)
  REFERENCES webauthn_users (app_id, user_id) ON DELETE CASCADE);
-- not SuperTokens': the types it does not use (yet), so the dump's fidelity is proven for them too
CREATE SCHEMA telestack_probe;
CREATE TABLE telestack_probe.types (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc JSONB,
  blob BYTEA, big BIGINT, at TIMESTAMPTZ, label TEXT);
"""

USER_IDS = [f"{i:08d}-aaaa-4bbb-8ccc-{i:012d}" for i in range(3)]


def fill_auth_store(con: psycopg.Connection[Any]) -> None:
    con.execute("INSERT INTO apps VALUES ('public', 1700000000000)")
    con.execute("INSERT INTO tenants VALUES ('public', 'public', 1700000000000)")
    con.execute(
        "INSERT INTO key_value VALUES ('public','public','refresh_token_key','k€y:ünïcødé ✓',1700000000001)"
    )
    for i, uid in enumerate(USER_IDS):
        joined = 1700000000000 + i
        con.execute(
            "INSERT INTO app_id_to_user_id VALUES ('public',%s,'emailpassword',%s,false,%s,%s)",
            (uid, uid, joined, joined),
        )
        con.execute(
            "INSERT INTO all_auth_recipe_users VALUES ('public','public',%s,%s,false,'emailpassword',%s,%s)",
            (uid, uid, joined, joined),
        )
        con.execute(
            "INSERT INTO emailpassword_users VALUES ('public',%s,%s,%s,%s)",
            (uid, f"u{i}@example.test", f"$argon2id$v=19$m=65536,t=3,p=1$c2FsdA${i}", joined),
        )
        con.execute(
            "INSERT INTO user_metadata VALUES ('public',%s,%s)",
            (uid, json.dumps({"name": f"Üser {i}", "tags": ["a", "ü"][: i + 1]}, ensure_ascii=False)),
        )
    for i in range(2):
        con.execute(
            "INSERT INTO session_info VALUES ('public','public',%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                f"sess-{i}",
                USER_IDS[i],
                "h" * 64,
                '{"k":"ü\\n"}',
                1800000000000,
                1700000000000 + i,
                None if i else "{}",
                bool(i),
            ),
        )
    con.execute(
        "INSERT INTO webauthn_users VALUES ('public',%s,'u0@example.test','example.test',1700000000000)",
        (USER_IDS[0],),
    )
    con.execute(
        "INSERT INTO webauthn_credentials VALUES ('cred-0','public','example.test',%s,7,%s,'usb',1,2)",
        (USER_IDS[0], bytes(range(256)) * 3),
    )
    for doc, blob, big in (
        (json.dumps({"nested": {"a": [1, 2.5, None, True]}, "ü": "✓"}), b"\x00\xff\x00", -(2**63)),
        (None, None, 2**63 - 1),
        ('"just a string"', b"", 0),
    ):
        con.execute(
            "INSERT INTO telestack_probe.types (doc, blob, big, at, label) "
            "VALUES (%s::jsonb, %s, %s, '2026-11-28 18:30:05.123456+00', %s)",
            (doc, blob, big, "tab\there"),
        )


def auth_store_tables(con: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ).fetchall()


def auth_store_snapshot(server: PostgresServer, db: str) -> dict[str, Any]:
    """Every table's rows as PostgreSQL's binary COPY output (ordered), plus the identity sequence."""
    out: dict[str, Any] = {}
    with server.connect(db) as con:
        for schema, table in auth_store_tables(con):
            ncols = con.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema=%s AND table_name=%s",
                (schema, table),
            ).fetchone()[0]
            order = sql.SQL(", ".join(str(i) for i in range(1, ncols + 1)))  # every column, in order
            query = sql.SQL("COPY (SELECT * FROM {}.{} ORDER BY {}) TO STDOUT (FORMAT binary)").format(
                sql.Identifier(schema), sql.Identifier(table), order
            )
            buf = bytearray()
            with con.cursor().copy(query) as copy:
                for chunk in copy:
                    buf += chunk
            out[f"{schema}.{table}"] = bytes(buf)
        out["sequence"] = con.execute(
            "SELECT last_value, is_called FROM telestack_probe.types_id_seq"
        ).fetchone()
    return out


def wipe_auth_store(server: PostgresServer) -> None:
    with server.connect(LIVE) as con:
        names = ", ".join(f'"{s}"."{t}"' for s, t in auth_store_tables(con))
        con.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
