"""The routes localbox serves, as the pinned SDK defines them, plus the scope each requires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dropbox import check, files, team, users

# Dropbox's per-route scopes (from the API reference; the SDK does not carry them).
_SCOPES: dict[str, str] = {
    "files/upload": "files.content.write",
    "files/upload_session/start": "files.content.write",
    "files/upload_session/start_batch": "files.content.write",
    "files/upload_session/append": "files.content.write",
    "files/upload_session/append_v2": "files.content.write",
    "files/upload_session/append_batch": "files.content.write",
    "files/upload_session/finish": "files.content.write",
    "files/upload_session/finish_batch": "files.content.write",
    "files/upload_session/finish_batch_v2": "files.content.write",
    "files/upload_session/finish_batch/check": "files.content.write",
    "files/download": "files.content.read",
    "files/get_metadata": "files.metadata.read",
    "files/list_folder": "files.metadata.read",
    "files/list_folder/continue": "files.metadata.read",
    "files/list_folder/get_latest_cursor": "files.metadata.read",
    "files/list_folder/longpoll": "",  # noauth: the cursor is the credential
    "files/list_revisions": "files.metadata.read",
    "files/restore": "files.content.write",
    "files/search_v2": "files.metadata.read",
    "files/search/continue_v2": "files.metadata.read",
    "files/create_folder_v2": "files.content.write",
    "files/create_folder_batch": "files.content.write",
    "files/create_folder_batch/check": "files.content.write",
    "files/delete_v2": "files.content.write",
    "files/delete_batch": "files.content.write",
    "files/delete_batch/check": "files.content.write",
    "files/move_v2": "files.content.write",
    "files/copy_v2": "files.content.write",
    "files/move_batch_v2": "files.content.write",
    "files/copy_batch_v2": "files.content.write",
    "files/move_batch/check_v2": "files.content.write",
    "files/copy_batch/check_v2": "files.content.write",
    "users/get_current_account": "account_info.read",
    "users/get_space_usage": "account_info.read",
    "users/get_account": "sharing.read",
    "users/get_account_batch": "sharing.read",
    "users/features/get_values": "account_info.read",
    "check/user": "account_info.read",
    # team routes (auth "team"): the ones a Business app calls first
    "team/get_info": "team_info.read",
    "team/features/get_values": "team_info.read",
    "team/token/get_authenticated_admin": "team_info.read",
    "team/members/list_v2": "members.read",
    "team/members/list/continue_v2": "members.read",
    "team/members/get_info_v2": "members.read",
    "team/namespaces/list": "team_data.member",
    "team/namespaces/list/continue": "team_data.member",
}

# Routes that accept Dropbox-API-Select-Admin, and in which mode (the spec's `select_admin_mode`
# attribute, stone_cfg.stone; the SDK's generated ROUTES do not carry it): `whole_team` reads reach
# every member's content, `team_admin` routes reach team-owned content only.
_WHOLE_TEAM = ("files/download", "files/get_metadata", "files/list_folder", "files/list_folder/continue",
               "files/list_folder/get_latest_cursor", "files/list_revisions", "users/get_current_account")
_SELECT_ADMIN: dict[str, str] = {
    **{p: "whole_team" for p in _WHOLE_TEAM},
    **{p: "team_admin" for p, scope in _SCOPES.items()
       if p.startswith("files/") and scope == "files.content.write"},
}


@dataclass(frozen=True, slots=True)
class RouteSpec:
    path: str  # "files/upload_session/append_v2"
    style: str  # "rpc" | "upload" | "download"
    arg: Any
    result: Any
    error: Any
    scope: str  # "" for noauth routes
    auth: str  # "user" | "team" | "noauth" (the SDK's route attribute)
    select_admin_mode: str | None = None  # "team_admin" | "whole_team"; None: no Select-Admin


def _spec(namespace: str, module: Any) -> dict[str, RouteSpec]:
    out: dict[str, RouteSpec] = {}
    for route in module.ROUTES.values():
        path = f"{namespace}/{route.name}" + (f"_v{route.version}" if route.version > 1 else "")
        if path in _SCOPES:
            out[path] = RouteSpec(path, route.attrs.get("style") or "rpc", route.arg_type, route.result_type,
                                  route.error_type, _SCOPES[path],
                                  route.attrs.get("auth") or "user", _SELECT_ADMIN.get(path))
    return out


ROUTES: dict[str, RouteSpec] = {**_spec("files", files), **_spec("users", users), **_spec("check", check),
                                 **_spec("team", team)}

# Routes whose calls count as data transport calls for teams with a monthly limit (the SDK's route
# docstrings say so for exactly these).
DATA_TRANSPORT: frozenset[str] = frozenset({
    "files/upload", "files/upload_session/start", "files/upload_session/start_batch",
    "files/upload_session/append", "files/upload_session/append_v2", "files/upload_session/append_batch",
    "files/upload_session/finish", "files/upload_session/finish_batch", "files/upload_session/finish_batch_v2",
})
