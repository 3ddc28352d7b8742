"""The admin API of a localbox server (JSON under /admin/, on the API's own port), for tests:

  GET    /admin/faults            the fault rules, with what each has matched and fired
  POST   /admin/faults            add one rule (a JSON object) or several (a list); 201 with the rules
  GET    /admin/faults/kinds      the fault kinds, their routes and parameters
  GET    /admin/faults/{id}       one rule
  DELETE /admin/faults/{id}       remove one rule
  DELETE /admin/faults            remove them all
  POST   /admin/accounts          {"email", "name"?, "quota"?, "tokens"?, "folders"?, "files"?} as in a seed
                                  file; 201 with its account id and token secrets (one full-scope token
                                  when "tokens" is not given)
  POST   /admin/reset             {} wipes all state (then applies --seed again unless "seed": false),
                                  {"account": email or id} wipes one account and what it owns
  GET    /admin/requests          the request log; ?since=<seq>&wait=<seconds>&limit=<n>

Every call needs `Authorization: Bearer <admin token>` (--admin-token, or the one printed at start).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localbox.faults.calls import RequestLog
from localbox.faults.model import KINDS, FaultBook, FaultError
from localbox.services.admin import AdminService
from localbox.services.seed import SeedError, SeedService, parse_seed

_JSON = "application/json"


def _answer(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, indent=None), status_code=status, media_type=_JSON)


def _error(status: int, message: str) -> Response:
    return _answer({"error": message}, status)


class AdminApi:
    def __init__(self, token: str, book: FaultBook, requests: RequestLog, admin: AdminService,
                 seeder: SeedService) -> None:
        self.token = token
        self.book = book
        self.requests = requests
        self.admin = admin
        self.seeder = seeder

    def routes(self) -> list[Route]:
        def guarded(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
            async def run(request: Request) -> Response:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                # Constant time: the comparison must not tell how much of a guess was right.
                if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
                    return _error(401, "admin token required: Authorization: Bearer <admin token>")
                return await fn(request)

            return run

        return [
            Route("/admin/faults", guarded(self.list_faults), methods=["GET"]),
            Route("/admin/faults", guarded(self.add_faults), methods=["POST"]),
            Route("/admin/faults", guarded(self.clear_faults), methods=["DELETE"]),
            Route("/admin/faults/kinds", guarded(self.kinds), methods=["GET"]),
            Route("/admin/faults/{rule_id}", guarded(self.get_fault), methods=["GET"]),
            Route("/admin/faults/{rule_id}", guarded(self.delete_fault), methods=["DELETE"]),
            Route("/admin/accounts", guarded(self.add_account), methods=["POST"]),
            Route("/admin/reset", guarded(self.reset), methods=["POST"]),
            Route("/admin/requests", guarded(self.list_requests), methods=["GET"]),
        ]

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise FaultError(f"the body is not JSON: {e}") from None

    # -- faults
    async def list_faults(self, request: Request) -> Response:
        return _answer({"faults": [r.to_json() for r in self.book.rules()]})

    async def add_faults(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            items = body if isinstance(body, list) else [body]
            added = [self.book.add(item) for item in items]
        except FaultError as e:
            return _error(400, str(e))
        rules = [r.to_json() for r in added]
        return _answer(rules if isinstance(body, list) else rules[0], 201)

    async def clear_faults(self, request: Request) -> Response:
        return _answer({"deleted": self.book.clear()})

    async def kinds(self, request: Request) -> Response:
        return _answer({name: {"doc": k.doc, "routes": sorted(k.routes) if k.routes is not None else None,
                               "params": {p: default for p, (default, _) in k.params.items()}}
                        for name, k in KINDS.items()})

    async def get_fault(self, request: Request) -> Response:
        rule = self.book.get(request.path_params["rule_id"])
        return _answer(rule.to_json()) if rule is not None else _error(404, "no such fault")

    async def delete_fault(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        return _answer({"deleted": rule_id}) if self.book.delete(rule_id) else _error(404, "no such fault")

    # -- state
    async def add_account(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            if isinstance(body, dict) and "tokens" not in body:
                body = {**body, "tokens": [{}]}
            seed = parse_seed({"accounts": [body]}, Path.cwd())
            [wanted] = seed.accounts
            if await self.admin.find_account(wanted.email) is not None:
                return _error(409, f"an account with email {wanted.email} exists")
            made = await self.seeder.apply(seed)
        except (FaultError, SeedError) as e:
            return _error(400, str(e))
        generated = iter(made.tokens.get(wanted.email, []))
        tokens = [t.secret if t.secret is not None else next(generated) for t in wanted.tokens]
        return _answer({"email": wanted.email, "account_id": made.accounts[wanted.email], "tokens": tokens}, 201)

    async def reset(self, request: Request) -> Response:
        try:
            body = await self._body(request)
        except FaultError as e:
            return _error(400, str(e))
        if not isinstance(body, dict) or set(body) - {"account", "seed"}:
            return _error(400, 'the body is {} or {"account": "<email or account id>"} (and optionally "seed")')
        who = body.get("account")
        if who is None:
            await self.admin.reset_all(reseed=body.get("seed", True) is not False)
            self.book.clear()
            self.requests.clear()
            return _answer({"reset": "all"})
        account = await self.admin.find_account(str(who))
        if account is None:
            return _error(404, f"no account {who}")
        sessions = await self.admin.reset_account(account.account_id)
        return _answer({"reset": account.account_id, "email": account.email, "sessions": sessions})

    async def list_requests(self, request: Request) -> Response:
        q = request.query_params
        try:
            since = int(q.get("since", "0"))
            wait = min(float(q.get("wait", "0")), 60.0)
            limit = max(1, min(int(q.get("limit", "1000")), 10000))
        except ValueError:
            return _error(400, "since and limit are integers, wait a number of seconds")
        entries = await self.requests.wait(since, wait, limit)
        return _answer({"requests": entries, "last": self.requests.last_seq})
