"""The team tables of the SQLite metadata store (new tables only: existing ones stay as they are)."""

from __future__ import annotations

import sqlite3
from typing import Any

from localbox.domain.teams import NamespaceKind, Team, TeamMember, TeamNamespace, TeamToken, TransportUsage

TEAM_SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    team_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, root_namespace_id TEXT NOT NULL,
    created REAL NOT NULL, transport_limit INTEGER);
CREATE TABLE IF NOT EXISTS team_members (
    team_member_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, account_id TEXT NOT NULL, is_admin INTEGER NOT NULL,
    joined REAL NOT NULL, removed REAL);
CREATE UNIQUE INDEX IF NOT EXISTS team_members_account ON team_members (account_id) WHERE removed IS NULL;
CREATE INDEX IF NOT EXISTS team_members_team ON team_members (team_id, team_member_id);
CREATE TABLE IF NOT EXISTS team_namespaces (
    namespace_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    team_member_id TEXT);
CREATE INDEX IF NOT EXISTS team_namespaces_team ON team_namespaces (team_id, namespace_id);
CREATE TABLE IF NOT EXISTS team_tokens (
    token_key TEXT PRIMARY KEY, team_id TEXT NOT NULL, admin_member_id TEXT, scopes TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS token_rate_limits (token_key TEXT PRIMARY KEY, per_second REAL NOT NULL);
CREATE TABLE IF NOT EXISTS transport_usage (
    team_id TEXT NOT NULL, month TEXT NOT NULL, calls INTEGER NOT NULL DEFAULT 0,
    denied INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (team_id, month));
"""


def _team(row: Any) -> Team | None:
    return None if row is None else Team(row[0], row[1], row[2], row[3], row[4])


MEMBER = "team_member_id, team_id, account_id, is_admin, joined, removed, suspended"


def _member(row: Any) -> TeamMember | None:
    return None if row is None else TeamMember(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])


def _namespace(row: Any) -> TeamNamespace | None:
    return None if row is None else TeamNamespace(row[0], row[1], NamespaceKind(row[2]), row[3], row[4])


class TeamTxMixin:
    """MetadataTx's team methods (see stores/base.py), over the connection of the transaction."""

    db: sqlite3.Connection

    def _row(self, sql: str, *args: Any) -> Any:
        return self.db.execute(sql, args).fetchone()

    # -- teams
    def insert_team(self, t: Team) -> None:
        self.db.execute("INSERT INTO teams VALUES (?,?,?,?,?)",
                        (t.team_id, t.name, t.root_namespace_id, t.created, t.transport_limit))

    def get_team(self, team_id: str) -> Team | None:
        return _team(self._row("SELECT * FROM teams WHERE team_id=?", team_id))

    def get_team_by_name(self, name: str) -> Team | None:
        return _team(self._row("SELECT * FROM teams WHERE name=?", name))

    def set_team_transport_limit(self, team_id: str, limit: int | None) -> None:
        self.db.execute("UPDATE teams SET transport_limit=? WHERE team_id=?", (limit, team_id))

    # -- members
    def insert_team_member(self, m: TeamMember) -> None:
        self.db.execute(f"INSERT INTO team_members ({MEMBER}) VALUES (?,?,?,?,?,?,?)",
                        (m.team_member_id, m.team_id, m.account_id, int(m.is_admin), m.joined, m.removed,
                         m.suspended))

    def get_team_member(self, team_member_id: str) -> TeamMember | None:
        return _member(self._row(f"SELECT {MEMBER} FROM team_members WHERE team_member_id=?", team_member_id))

    def team_member_of_account(self, account_id: str) -> TeamMember | None:
        return _member(self._row(f"SELECT {MEMBER} FROM team_members WHERE account_id=? AND removed IS NULL",
                                 account_id))

    def list_team_members(self, team_id: str, *, after: str, limit: int, include_removed: bool) -> list[TeamMember]:
        where = "" if include_removed else " AND removed IS NULL"
        rows = self.db.execute(
            f"SELECT {MEMBER} FROM team_members WHERE team_id=? AND team_member_id > ?{where} "
            "ORDER BY team_member_id LIMIT ?",
            (team_id, after, limit)).fetchall()
        return [m for m in map(_member, rows) if m is not None]

    def count_team_members(self, team_id: str) -> int:
        return int(self._row("SELECT COUNT(*) FROM team_members WHERE team_id=? AND removed IS NULL", team_id)[0])

    def set_team_member_suspended(self, team_member_id: str, when: float | None) -> None:
        self.db.execute("UPDATE team_members SET suspended=? WHERE team_member_id=?", (when, team_member_id))

    def remove_team_member(self, team_member_id: str, when: float) -> None:
        self.db.execute("UPDATE team_members SET removed=? WHERE team_member_id=? AND removed IS NULL",
                        (when, team_member_id))

    # -- namespaces of the team space
    def insert_team_namespace(self, n: TeamNamespace) -> None:
        self.db.execute("INSERT OR REPLACE INTO team_namespaces VALUES (?,?,?,?,?)",
                        (n.namespace_id, n.team_id, n.kind.value, n.name, n.team_member_id))

    def delete_team_namespace(self, namespace_id: str) -> None:
        self.db.execute("DELETE FROM team_namespaces WHERE namespace_id=?", (namespace_id,))

    def get_team_namespace(self, namespace_id: str) -> TeamNamespace | None:
        return _namespace(self._row("SELECT * FROM team_namespaces WHERE namespace_id=?", namespace_id))

    def list_team_namespaces(self, team_id: str, *, after: str, limit: int) -> list[TeamNamespace]:
        rows = self.db.execute(
            "SELECT * FROM team_namespaces WHERE team_id=? AND namespace_id > ? ORDER BY namespace_id LIMIT ?",
            (team_id, after, limit)).fetchall()
        return [n for n in map(_namespace, rows) if n is not None]

    # -- team tokens and per-token rate limits
    def insert_team_token(self, t: TeamToken) -> None:
        self.db.execute("INSERT INTO team_tokens VALUES (?,?,?,?,?)",
                        (t.token_key, t.team_id, t.admin_member_id, " ".join(sorted(t.scopes)), t.created))

    def get_team_token(self, key: str) -> TeamToken | None:
        row = self._row("SELECT * FROM team_tokens WHERE token_key=?", key)
        return None if row is None else TeamToken(row[0], row[1], row[2], frozenset(row[3].split()), row[4])

    def set_token_rate_limit(self, key: str, per_second: float | None) -> None:
        if per_second is None:
            self.db.execute("DELETE FROM token_rate_limits WHERE token_key=?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO token_rate_limits VALUES (?,?)", (key, per_second))

    def get_token_rate_limit(self, key: str) -> float | None:
        row = self._row("SELECT per_second FROM token_rate_limits WHERE token_key=?", key)
        return None if row is None else float(row[0])

    # -- data transport calls
    def count_transport_call(self, team_id: str, month: str, limit: int | None) -> bool:
        """Count one call if the team is under `limit` this month (True), else count a denial (False)."""
        self.db.execute("INSERT OR IGNORE INTO transport_usage VALUES (?,?,0,0)", (team_id, month))
        row = self.db.execute(
            "UPDATE transport_usage SET calls = calls + 1 WHERE team_id=? AND month=? AND (? IS NULL OR calls < ?) "
            "RETURNING calls", (team_id, month, limit, limit)).fetchone()
        if row is not None:
            return True
        self.db.execute("UPDATE transport_usage SET denied = denied + 1 WHERE team_id=? AND month=?",
                        (team_id, month))
        return False

    def transport_usage(self, team_id: str, month: str) -> TransportUsage:
        row = self._row("SELECT calls, denied FROM transport_usage WHERE team_id=? AND month=?", team_id, month)
        return TransportUsage(team_id, month, int(row[0]) if row else 0, int(row[1]) if row else 0)
