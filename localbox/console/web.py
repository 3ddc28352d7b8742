"""The console's pages under /console: server-rendered (Jinja2, autoescaped), htmx for live parts.

Every page but the login form needs a console session (auth.py); every POST needs the session's CSRF
token.  htmx is served from the package (/console/static), so the console works offline.  Pages:
overview, accounts and teams, a file browser per namespace (folders, files with revisions and
downloads), upload sessions in flight, batch jobs (live state, per-entry results), the request log with
filters, and fault rules to add and remove.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from localbox.console.auth import COOKIE, SESSION_SECONDS, ConsoleAuth
from localbox.faults.calls import RequestLog
from localbox.faults.model import KINDS, FaultBook, FaultError
from localbox.services.inspection import InspectService, NotInspectable

HERE = Path(__file__).resolve().parent
Page = Callable[[Request, str], Awaitable[Response]]
MAX_FORM = 64 * 1024


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + "Z"


def _age(seconds: float | None) -> str:
    if not seconds:
        return "-"
    delta = max(0.0, time.time() - seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta / size:.1f}{unit}"
    return f"{delta:.1f}s"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _environment() -> Any:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - Jinja2 is a dependency; a trimmed install says so
        return None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    env.filters.update(when=_when, age=_age, size=_size, q=lambda s: quote(str(s), safe=""))
    return env


class Console:
    def __init__(self, admin_token: str, views: InspectService, book: FaultBook, requests: RequestLog,
                 secure_cookie: bool = False) -> None:
        self.auth = ConsoleAuth(admin_token)
        self.views = views
        self.book = book
        self.requests = requests
        self.secure_cookie = secure_cookie
        self.env = _environment()

    def routes(self) -> list[Route | Mount]:
        page = self._page
        return [
            Route("/console", page(self.overview)),
            Route("/console/", page(self.overview)),
            Route("/console/login", self.login_form, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", page(self.logout), methods=["POST"]),
            Route("/console/accounts", page(self.accounts)),
            Route("/console/files/{namespace_id}", page(self.files)),
            Route("/console/file/{namespace_id}", page(self.file)),
            Route("/console/download/{rev}", page(self.download)),
            Route("/console/sessions", page(self.sessions)),
            Route("/console/jobs", page(self.jobs)),
            Route("/console/jobs/{job_id}", page(self.job)),
            Route("/console/requests", page(self.request_log)),
            Route("/console/faults", page(self.faults)),
            Route("/console/faults", page(self.add_fault), methods=["POST"]),
            Route("/console/faults/{rule_id}/delete", page(self.delete_fault), methods=["POST"]),
            Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
        ]

    # -- plumbing ---------------------------------------------------------------------------
    def _page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if self.env is None:  # pragma: no cover
                return Response("the console needs Jinja2: pip install Jinja2\n", 503, media_type="text/plain")
            nonce = self.auth.session_nonce(request.cookies.get(COOKIE))
            if nonce is None:
                if request.method == "GET" and "hx-request" not in request.headers:
                    return RedirectResponse("/console/login", 303)
                return Response("log in first\n", 401, media_type="text/plain",
                                headers={"HX-Redirect": "/console/login"})
            if request.method == "POST":
                form = await self._form(request)
                given = request.headers.get("x-csrf-token") or form.get("csrf")
                if not self.auth.csrf_ok(nonce, given):
                    return Response("missing or wrong CSRF token\n", 403, media_type="text/plain")
                request.state.form = form
            try:
                return await handler(request, nonce)
            except NotInspectable as e:
                return self._render(request, nonce, "message.html", title="Not available", message=str(e),
                                    status=501)
            except LookupError as e:
                return self._render(request, nonce, "message.html", title="Not found", message=str(e.args[0]),
                                    status=404)

        return run

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        """An urlencoded form (the console's only kind), without python-multipart."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                break
        return {k: v[-1] for k, v in parse_qs(body[:MAX_FORM].decode("utf-8", "replace")).items()}

    def _render(self, request: Request, nonce: str | None, template: str, status: int = 200,
                **context: Any) -> Response:
        partial = "hx-request" in request.headers and "hx-boosted" not in request.headers
        html = self.env.get_template(template).render(
            request=request, csrf=self.auth.csrf_token(nonce) if nonce else "", partial=partial,
            path=request.url.path, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store",
                                                               "X-Frame-Options": "DENY",
                                                               "Referrer-Policy": "same-origin"})

    async def _emails(self) -> dict[str, str]:
        try:
            return {v.account.account_id: v.account.email for v in await self.views.accounts()}
        except NotInspectable:
            return {}

    # -- login ------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        return self._render(request, None, "login.html", error=None)

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        if not self.auth.token_matches(form.get("token", "")):
            return self._render(request, None, "login.html", error="That is not the admin token.", status=401)
        response = RedirectResponse("/console", 303)
        response.set_cookie(COOKIE, self.auth.new_session(), max_age=SESSION_SECONDS, path="/console",
                            httponly=True, samesite="strict", secure=self.secure_cookie)
        return response

    async def logout(self, request: Request, nonce: str) -> Response:
        response = RedirectResponse("/console/login", 303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # -- pages ------------------------------------------------------------------------------
    async def overview(self, request: Request, nonce: str) -> Response:
        sessions, queued, running = await self.views.load()
        try:
            accounts: int | None = len(await self.views.accounts())
        except NotInspectable:
            accounts = None
        return self._render(request, nonce, "overview.html", accounts=accounts, sessions=sessions, queued=queued,
                            running=running, requests=self.requests.last_seq, faults=len(self.book.rules()))

    async def accounts(self, request: Request, nonce: str) -> Response:
        accounts = await self.views.accounts()
        teams = await self.views.teams()
        emails = {v.account.account_id: v.account.email for v in accounts}
        return self._render(request, nonce, "accounts.html", accounts=accounts, teams=teams, emails=emails)

    async def files(self, request: Request, nonce: str) -> Response:
        namespace_id = request.path_params["namespace_id"]
        path = request.query_params.get("path", "").rstrip("/")
        folder, children = await self.views.folder(namespace_id, path.lower())
        crumbs = []
        parts = [p for p in (folder.path_display if folder else "").split("/") if p]
        for i, name in enumerate(parts):
            crumbs.append((name, "/" + "/".join(parts[: i + 1])))
        return self._render(request, nonce, "files.html", namespace_id=namespace_id, folder=folder,
                            children=children, crumbs=crumbs)

    async def file(self, request: Request, nonce: str) -> Response:
        namespace_id = request.path_params["namespace_id"]
        entry, revisions = await self.views.file(namespace_id, request.query_params.get("path", "").lower())
        parent = entry.path_display.rsplit("/", 1)[0]
        return self._render(request, nonce, "file.html", namespace_id=namespace_id, entry=entry,
                            revisions=revisions, parent=parent)

    async def download(self, request: Request, nonce: str) -> Response:
        entry, chunks = await self.views.content(request.path_params["rev"])
        name = quote(entry.name, safe="")
        return StreamingResponse(chunks, media_type="application/octet-stream", headers={
            "Content-Length": str(entry.size), "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Cache-Control": "no-store"})

    async def sessions(self, request: Request, nonce: str) -> Response:
        sessions = await self.views.sessions()
        return self._render(request, nonce, "sessions.html", sessions=sessions, emails=await self._emails(),
                            now=time.time())

    async def jobs(self, request: Request, nonce: str) -> Response:
        jobs = await self.views.jobs()
        return self._render(request, nonce, "jobs.html", jobs=jobs, emails=await self._emails())

    async def job(self, request: Request, nonce: str) -> Response:
        view = await self.views.job(request.path_params["job_id"])
        emails = await self._emails()
        results = view.results or []
        failed = sum(1 for r in results if r.error is not None)
        return self._render(request, nonce, "job.html", view=view, emails=emails, failed=failed,
                            namespace_id=json.loads(view.job.request).get("namespace_id", ""))

    async def request_log(self, request: Request, nonce: str) -> Response:
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("route", "status", "error", "account", "faulted")}
        entries = list(reversed(self.requests.since(0, 100_000)))

        def keep(e: dict[str, Any]) -> bool:
            if filters["route"] and filters["route"] not in e["route"]:
                return False
            if filters["status"] and str(e["status"]) != filters["status"] and not (
                    filters["status"].endswith("xx") and str(e["status"]).startswith(filters["status"][0])):
                return False
            if filters["error"] and filters["error"] not in (e["error"] or ""):
                return False
            if filters["account"] and filters["account"] not in (e["account"] or ""):
                return False
            return not (filters["faulted"] and not e["faults"])

        shown = [e for e in entries if keep(e)][:500]
        return self._render(request, nonce, "requests.html", entries=shown, filters=filters,
                            query=urlencode({k: v for k, v in filters.items() if v}))

    async def faults(self, request: Request, nonce: str, error: str | None = None, status: int = 200) -> Response:
        return self._render(request, nonce, "faults.html", rules=[r.to_json() for r in self.book.rules()],
                            kinds=KINDS, error=error, status=status)

    async def add_fault(self, request: Request, nonce: str) -> Response:
        form: dict[str, str] = request.state.form
        rule: dict[str, Any] = {"kind": form.get("kind", "")}
        try:
            for name in ("route", "account", "path"):
                if form.get(name, "").strip():
                    rule[name] = form[name].strip()
            for name, cast in (("probability", float), ("times", int), ("after", int), ("seed", int)):
                if form.get(name, "").strip():
                    rule[name] = cast(form[name])
            params = form.get("params", "").strip()
            if params:
                rule["params"] = json.loads(params)
            self.book.add(rule)
        except (ValueError, FaultError) as e:
            return await self.faults(request, nonce, error=str(e), status=400)
        return RedirectResponse("/console/faults", 303)

    async def delete_fault(self, request: Request, nonce: str) -> Response:
        self.book.delete(request.path_params["rule_id"])
        return RedirectResponse("/console/faults", 303)
