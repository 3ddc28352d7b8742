"""The team tables of the PostgreSQL metadata store (MetadataTx's team methods, stores/base.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from localbox.domain.teams import NamespaceKind, Team, TeamMember, TeamNamespace, TeamToken, TransportUsage

TEAM = "team_id, name, root_namespace_id, created, transport_limit"
MEMBER = "team_member_id, team_id, account_id, is_admin, joined, removed, suspended"
TEAM_NS = "namespace_id, team_id, kind, name, team_member_id"


def _team(row: Any) -> Team | None:
    return None if row is None else Team(row[0], row[1], row[2], row[3], row[4])


def _member(row: Any) -> TeamMember | None:
    return None if row is None else TeamMember(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])


def _namespace(row: Any) -> TeamNamespace | None:
    return None if row is None else TeamNamespace(row[0], row[1], NamespaceKind(row[2]), row[3], row[4])


class PgTeamTxMixin:
    def _x(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> Any:
        raise NotImplementedError

    def _row(self, sql: str, *args: Any) -> Any:
        return self._x(sql, args).fetchone()

    def insert_team(self, t: Team) -> None:
        self._x(f"INSERT INTO teams ({TEAM}) VALUES (%s,%s,%s,%s,%s)",
                (t.team_id, t.name, t.root_namespace_id, t.created, t.transport_limit))

    def get_team(self, team_id: str) -> Team | None:
        return _team(self._row(f"SELECT {TEAM} FROM teams WHERE team_id=%s", team_id))

    def get_team_by_name(self, name: str) -> Team | None:
        return _team(self._row(f"SELECT {TEAM} FROM teams WHERE lower(name)=lower(%s)", name))

    def set_team_transport_limit(self, team_id: str, limit: int | None) -> None:
        self._x("UPDATE teams SET transport_limit=%s WHERE team_id=%s", (limit, team_id))

    def insert_team_member(self, m: TeamMember) -> None:
        self._x(f"INSERT INTO team_members ({MEMBER}) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (m.team_member_id, m.team_id, m.account_id, int(m.is_admin), m.joined, m.removed, m.suspended))

    def get_team_member(self, team_member_id: str) -> TeamMember | None:
        return _member(self._row(f"SELECT {MEMBER} FROM team_members WHERE team_member_id=%s", team_member_id))

    def team_member_of_account(self, account_id: str) -> TeamMember | None:
        return _member(self._row(f"SELECT {MEMBER} FROM team_members WHERE account_id=%s AND removed IS NULL",
                                 account_id))

    def list_team_members(self, team_id: str, *, after: str, limit: int, include_removed: bool) -> list[TeamMember]:
        where = "" if include_removed else " AND removed IS NULL"
        rows = self._x(f"SELECT {MEMBER} FROM team_members WHERE team_id=%s AND team_member_id > %s{where} "
                       "ORDER BY team_member_id LIMIT %s", (team_id, after, limit)).fetchall()
        return [m for m in map(_member, rows) if m is not None]

    def count_team_members(self, team_id: str) -> int:
        return int(self._row("SELECT COUNT(*) FROM team_members WHERE team_id=%s AND removed IS NULL", team_id)[0])

    def set_team_member_suspended(self, team_member_id: str, when: float | None) -> None:
        self._x("UPDATE team_members SET suspended=%s WHERE team_member_id=%s", (when, team_member_id))

    def remove_team_member(self, team_member_id: str, when: float) -> None:
        self._x("UPDATE team_members SET removed=%s WHERE team_member_id=%s AND removed IS NULL",
                (when, team_member_id))

    def insert_team_namespace(self, n: TeamNamespace) -> None:
        self._x(f"INSERT INTO team_namespaces ({TEAM_NS}) VALUES (%s,%s,%s,%s,%s) ON CONFLICT (namespace_id) "
                "DO UPDATE SET team_id=EXCLUDED.team_id, kind=EXCLUDED.kind, name=EXCLUDED.name, "
                "team_member_id=EXCLUDED.team_member_id",
                (n.namespace_id, n.team_id, n.kind.value, n.name, n.team_member_id))

    def delete_team_namespace(self, namespace_id: str) -> None:
        self._x("DELETE FROM team_namespaces WHERE namespace_id=%s", (namespace_id,))

    def get_team_namespace(self, namespace_id: str) -> TeamNamespace | None:
        return _namespace(self._row(f"SELECT {TEAM_NS} FROM team_namespaces WHERE namespace_id=%s", namespace_id))

    def list_team_namespaces(self, team_id: str, *, after: str, limit: int) -> list[TeamNamespace]:
        rows = self._x(f"SELECT {TEAM_NS} FROM team_namespaces WHERE team_id=%s AND namespace_id > %s "
                       "ORDER BY namespace_id LIMIT %s", (team_id, after, limit)).fetchall()
        return [n for n in map(_namespace, rows) if n is not None]

    def insert_team_token(self, t: TeamToken) -> None:
        self._x("INSERT INTO team_tokens (token_key, team_id, admin_member_id, scopes, created) "
                "VALUES (%s,%s,%s,%s,%s)", (t.token_key, t.team_id, t.admin_member_id, " ".join(sorted(t.scopes)),
                                            t.created))

    def get_team_token(self, key: str) -> TeamToken | None:
        row = self._row("SELECT token_key, team_id, admin_member_id, scopes, created FROM team_tokens "
                        "WHERE token_key=%s", key)
        return None if row is None else TeamToken(row[0], row[1], row[2], frozenset(row[3].split()), row[4])

    def set_token_rate_limit(self, key: str, per_second: float | None) -> None:
        if per_second is None:
            self._x("DELETE FROM token_rate_limits WHERE token_key=%s", (key,))
        else:
            self._x("INSERT INTO token_rate_limits (token_key, per_second) VALUES (%s,%s) "
                    "ON CONFLICT (token_key) DO UPDATE SET per_second=EXCLUDED.per_second", (key, per_second))

    def admit_rate(self, key: str, per_second: float) -> int | None:
        # One statement, so concurrent calls on any node see each other's takes; the ON CONFLICT
        # expressions all read the row as it was, and EXCLUDED.stamp is the database's clock now.
        row = self._x(
            "INSERT INTO rate_buckets AS b (bucket_key, level, stamp, admitted) "
            "VALUES (%(k)s, %(cap)s - 1, extract(epoch FROM clock_timestamp())::float8, true) "
            "ON CONFLICT (bucket_key) DO UPDATE SET "
            "level = LEAST(%(cap)s, b.level + (EXCLUDED.stamp - b.stamp) * %(rate)s) "
            "  - CASE WHEN LEAST(%(cap)s, b.level + (EXCLUDED.stamp - b.stamp) * %(rate)s) >= 1 THEN 1 ELSE 0 END, "
            "stamp = EXCLUDED.stamp, "
            "admitted = LEAST(%(cap)s, b.level + (EXCLUDED.stamp - b.stamp) * %(rate)s) >= 1 "
            "RETURNING level, admitted",
            {"k": key, "cap": max(per_second, 1.0), "rate": per_second}).fetchone()
        level, admitted = float(row[0]), bool(row[1])
        return None if admitted else max(1, math.ceil((1.0 - level) / per_second))

    def get_token_rate_limit(self, key: str) -> float | None:
        row = self._row("SELECT per_second FROM token_rate_limits WHERE token_key=%s", key)
        return None if row is None else float(row[0])

    def count_transport_call(self, team_id: str, month: str, limit: int | None) -> bool:
        self._x("INSERT INTO transport_usage (team_id, month, calls, denied) VALUES (%s,%s,0,0) "
                "ON CONFLICT DO NOTHING", (team_id, month))
        row = self._x("UPDATE transport_usage SET calls = calls + 1 WHERE team_id=%s AND month=%s "
                      "AND (%s::bigint IS NULL OR calls < %s::bigint) RETURNING calls",
                      (team_id, month, limit, limit)).fetchone()
        if row is not None:
            return True
        self._x("UPDATE transport_usage SET denied = denied + 1 WHERE team_id=%s AND month=%s", (team_id, month))
        return False

    def transport_usage(self, team_id: str, month: str) -> TransportUsage:
        row = self._row("SELECT calls, denied FROM transport_usage WHERE team_id=%s AND month=%s", team_id, month)
        return TransportUsage(team_id, month, int(row[0]) if row else 0, int(row[1]) if row else 0)
