"""The user-roles recipe (``rid: userroles``): roles, their permissions, and users' roles.

Request rules and answers follow the core's ``webserver/api/userroles`` handlers:
role and permission names are trimmed and may not be empty (400), an unknown
role is ``200 {"status": "UNKNOWN_ROLE_ERROR"}``, role definitions are per app
(public tenant only, as the core enforces), assignments per tenant. Deleting a
role removes its assignments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.standins.supertokens.server import Call, Endpoint, Reply, bad_request, ok

if TYPE_CHECKING:
    from infra.standins.supertokens.api import Core

_SCHEMA = """
CREATE TABLE IF NOT EXISTS roles (
  app_id TEXT NOT NULL, role TEXT NOT NULL, created_seq INTEGER NOT NULL,
  PRIMARY KEY (app_id, role));
CREATE TABLE IF NOT EXISTS role_permissions (
  app_id TEXT NOT NULL, role TEXT NOT NULL, permission TEXT NOT NULL,
  PRIMARY KEY (app_id, role, permission));
CREATE TABLE IF NOT EXISTS user_roles (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL,
  PRIMARY KEY (app_id, tenant_id, user_id, role));
"""

UNKNOWN_ROLE = {"status": "UNKNOWN_ROLE_ERROR"}


def _name(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise bad_request(f"Field name '{field}' is invalid in JSON input")
    value = value.strip()
    if not value:
        raise bad_request(f"Field name '{field}' cannot be an empty String")
    return value


def _user_and_role(body: dict[str, Any]) -> tuple[str, str]:
    """``userId`` and ``role`` of an add/remove-user-role body, refused as the core refuses them."""
    user_id = body.get("userId")
    if not isinstance(user_id, str):
        raise bad_request("Field name 'userId' is invalid in JSON input")
    return user_id, _name(body, "role")


def _permissions(body: dict[str, Any]) -> list[str] | None:
    value = body.get("permissions")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise bad_request("Field name 'permissions' is invalid in JSON input")
    out = [p.strip() for p in value]
    if any(not p for p in out):
        raise bad_request("Field name 'permissions' cannot contain an empty string")
    return out


class UserRoles:
    def __init__(self, core: Core) -> None:
        self.db = core.store.conn
        self.store = core.store
        self.db.executescript(_SCHEMA)
        core.store.user_tables.append("user_roles")

    def _exists(self, app_id: str, role: str) -> bool:
        row = self.db.execute("SELECT 1 FROM roles WHERE app_id = ? AND role = ?", (app_id, role)).fetchone()
        return row is not None

    async def put_role(self, call: Call) -> Reply:
        body = call.json()
        role = _name(body, "role")
        permissions = _permissions(body) or []
        with self.store.transaction() as c:
            created = not self._exists(call.app_id, role)
            if created:
                seq = c.execute("SELECT COALESCE(MAX(created_seq), 0) + 1 FROM roles WHERE app_id = ?",
                                (call.app_id,)).fetchone()[0]
                c.execute("INSERT INTO roles (app_id, role, created_seq) VALUES (?, ?, ?)",
                          (call.app_id, role, seq))
            c.executemany("INSERT OR IGNORE INTO role_permissions (app_id, role, permission)"
                          " VALUES (?, ?, ?)",
                          [(call.app_id, role, p) for p in permissions])
        return ok({"status": "OK", "createdNewRole": created})

    async def role_permissions(self, call: Call) -> Reply:
        role = call.param("role").strip()
        if not self._exists(call.app_id, role):
            return ok(UNKNOWN_ROLE)
        rows = self.db.execute("SELECT permission FROM role_permissions WHERE app_id = ? AND role = ?"
                               " ORDER BY permission", (call.app_id, role))
        return ok({"status": "OK", "permissions": [r[0] for r in rows]})

    async def remove_role_permissions(self, call: Call) -> Reply:
        body = call.json()
        role = _name(body, "role")
        permissions = _permissions(body)
        with self.store.transaction() as c:
            if not self._exists(call.app_id, role):
                return ok(UNKNOWN_ROLE)
            if permissions is None:  # none given: every permission of the role goes
                c.execute("DELETE FROM role_permissions WHERE app_id = ? AND role = ?", (call.app_id, role))
            else:
                c.executemany("DELETE FROM role_permissions WHERE app_id = ? AND role = ? AND permission = ?",
                              [(call.app_id, role, p) for p in permissions])
        return ok({"status": "OK"})

    async def permission_roles(self, call: Call) -> Reply:
        permission = call.param("permission").strip()
        rows = self.db.execute("SELECT role FROM role_permissions WHERE app_id = ? AND permission = ?"
                               " ORDER BY role", (call.app_id, permission))
        return ok({"status": "OK", "roles": [r[0] for r in rows]})

    async def remove_role(self, call: Call) -> Reply:
        role = _name(call.json(), "role")
        with self.store.transaction() as c:
            existed = c.execute("DELETE FROM roles WHERE app_id = ? AND role = ?",
                                (call.app_id, role)).rowcount > 0
            c.execute("DELETE FROM role_permissions WHERE app_id = ? AND role = ?", (call.app_id, role))
            c.execute("DELETE FROM user_roles WHERE app_id = ? AND role = ?", (call.app_id, role))
        return ok({"status": "OK", "didRoleExist": existed})

    async def roles(self, call: Call) -> Reply:
        rows = self.db.execute("SELECT role FROM roles WHERE app_id = ? ORDER BY created_seq", (call.app_id,))
        return ok({"status": "OK", "roles": [r[0] for r in rows]})

    async def add_user_role(self, call: Call) -> Reply:
        user_id, role = _user_and_role(call.json())
        with self.store.transaction() as c:
            if not self._exists(call.app_id, role):
                return ok(UNKNOWN_ROLE)
            added = c.execute("INSERT OR IGNORE INTO user_roles (app_id, tenant_id, user_id, role)"
                              " VALUES (?, ?, ?, ?)",
                              (call.app_id, call.tenant_id, user_id, role)).rowcount > 0
        return ok({"status": "OK", "didUserAlreadyHaveRole": not added})

    async def remove_user_role(self, call: Call) -> Reply:
        user_id, role = _user_and_role(call.json())
        with self.store.transaction() as c:
            if not self._exists(call.app_id, role):
                return ok(UNKNOWN_ROLE)
            had = c.execute("DELETE FROM user_roles WHERE app_id = ? AND tenant_id = ? AND user_id = ?"
                            " AND role = ?",
                            (call.app_id, call.tenant_id, user_id, role)).rowcount > 0
        return ok({"status": "OK", "didUserHaveRole": had})

    async def user_roles(self, call: Call) -> Reply:
        rows = self.db.execute(
            "SELECT ur.role FROM user_roles ur JOIN roles r ON r.app_id = ur.app_id AND r.role = ur.role"
            " WHERE ur.app_id = ? AND ur.tenant_id = ? AND ur.user_id = ? ORDER BY r.created_seq",
            (call.app_id, call.tenant_id, call.param("userId")))
        return ok({"status": "OK", "roles": [r[0] for r in rows]})

    async def role_users(self, call: Call) -> Reply:
        role = call.param("role").strip()
        if not self._exists(call.app_id, role):
            return ok(UNKNOWN_ROLE)
        rows = self.db.execute("SELECT user_id FROM user_roles WHERE app_id = ? AND tenant_id = ?"
                               " AND role = ? ORDER BY user_id", (call.app_id, call.tenant_id, role))
        return ok({"status": "OK", "users": [r[0] for r in rows]})


def endpoints(core: Core) -> dict[str, Endpoint]:
    r = UserRoles(core)
    return {
        "/recipe/role": Endpoint({"PUT": r.put_role}, public_tenant_only=True),
        "/recipe/role/permissions": Endpoint({"GET": r.role_permissions}, public_tenant_only=True),
        "/recipe/role/permissions/remove": Endpoint({"POST": r.remove_role_permissions},
                                                    public_tenant_only=True),
        "/recipe/permission/roles": Endpoint({"GET": r.permission_roles}, public_tenant_only=True),
        "/recipe/role/remove": Endpoint({"POST": r.remove_role}, public_tenant_only=True),
        "/recipe/roles": Endpoint({"GET": r.roles}, public_tenant_only=True),
        "/recipe/user/role": Endpoint({"PUT": r.add_user_role}),
        "/recipe/user/role/remove": Endpoint({"POST": r.remove_user_role}),
        "/recipe/user/roles": Endpoint({"GET": r.user_roles}),
        "/recipe/role/users": Endpoint({"GET": r.role_users}),
    }
