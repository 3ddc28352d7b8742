"""What a handler receives: the decoded argument, the caller, the body stream, the raw request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from localbox.services.accounts import AccountService, Caller
from localbox.services.changes import ChangeFeed
from localbox.services.files import FileService
from localbox.services.jobs import BatchService
from localbox.services.rate_limits import Limiter
from localbox.services.search import SearchService
from localbox.services.teams import TeamPrincipal, TeamService
from localbox.services.tree import TreeService
from localbox.services.upload_sessions import Body, UploadSessionService
from localbox.spec import RouteSpec


@dataclass(frozen=True, slots=True)
class Call:
    route: RouteSpec
    arg: Any
    principal: Caller | None  # None only on noauth routes (list_folder/longpoll)
    body: Body
    request: Request
    team: TeamPrincipal | None = None  # set on team routes (auth "team")

    @property
    def caller(self) -> Caller:
        if self.principal is None:
            raise RuntimeError(f"{self.route.path} is a noauth route: it has no caller")
        return self.principal


@dataclass(frozen=True, slots=True)
class Services:
    """The services handlers use, built once by the composition root."""

    accounts: AccountService
    sessions: UploadSessionService
    batches: BatchService
    files: FileService
    tree: TreeService
    changes: ChangeFeed
    search: SearchService
    teams: TeamService
    limiter: Limiter
    quota: int = 2 * 1024**4
