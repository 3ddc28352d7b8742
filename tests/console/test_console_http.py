"""The console over plain HTTP: login, the session cookie, CSRF, no secrets in pages or URLs."""

from __future__ import annotations

import re

import httpx

from localbox.testing import LocalboxServer


def client(box: LocalboxServer) -> httpx.Client:
    return httpx.Client(base_url=box.url, trust_env=False, follow_redirects=False)


def log_in(box: LocalboxServer, c: httpx.Client) -> None:
    r = c.post("/console/login", data={"token": box.admin_token})
    assert r.status_code == 303 and r.headers["location"] == "/console"


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert m, html[:500]
    return m.group(1)


def test_pages_need_a_login(box: LocalboxServer) -> None:
    with client(box) as c:
        for page in ("/console", "/console/accounts", "/console/jobs", "/console/faults", "/console/requests"):
            r = c.get(page)
            assert (r.status_code, r.headers["location"]) == (303, "/console/login"), page
        assert c.get("/console", headers={"HX-Request": "true"}).status_code == 401
        assert c.get("/console/login").status_code == 200
        assert c.get("/console/static/htmx-2.0.4.min.js").status_code == 200  # served by the package, no CDN


def test_login_sets_a_strict_http_only_cookie_and_keeps_the_token_out_of_it(box: LocalboxServer) -> None:
    with client(box) as c:
        bad = c.post("/console/login", data={"token": "guess"})
        assert bad.status_code == 401 and "not the admin token" in bad.text and "set-cookie" not in bad.headers
        r = c.post("/console/login", data={"token": box.admin_token})
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert box.admin_token not in cookie
        page = c.get("/console/accounts")
        assert page.status_code == 200 and box.admin_token not in page.text and box.token not in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert box.email in page.text


def test_forged_cookies_do_not_pass(box: LocalboxServer) -> None:
    with client(box) as c:
        c.cookies.set("localbox_console", "9999999999.abc.0123", path="/console")
        assert c.get("/console/jobs").status_code == 303


def test_posts_need_the_csrf_token(box: LocalboxServer) -> None:
    box.clear_faults()
    with client(box) as c:
        log_in(box, c)
        token = csrf_of(c.get("/console/faults").text)
        assert c.post("/console/faults", data={"kind": "drop_response"}).status_code == 403
        assert c.post("/console/faults", data={"kind": "drop_response", "csrf": "0" * 64}).status_code == 403
        assert box.faults() == []
        r = c.post("/console/faults", data={"kind": "drop_response", "times": "1", "route": "files/upload",
                                            "csrf": token})
        assert r.status_code == 303
        [rule] = box.faults()
        assert (rule["kind"], rule["times"], rule["route"]) == ("drop_response", 1, "files/upload")
        bad = c.post("/console/faults", data={"kind": "no_such_kind", "csrf": token})
        assert bad.status_code == 400 and "kind must be one of" in bad.text
        assert c.post(f"/console/faults/{rule['id']}/delete", headers={"X-CSRF-Token": token}).status_code == 303
        assert box.faults() == []
        # Logging out ends the session in this browser.
        c.post("/console/logout", data={"csrf": token})
        assert c.get("/console/faults").status_code == 303


def test_pages_escape_what_clients_wrote(box: LocalboxServer) -> None:
    dbx = box.client()
    dbx.files_upload(b"x", "/<img src=x onerror=alert(1)>.txt")
    with client(box) as c:
        log_in(box, c)
        accounts = c.get("/console/accounts").text
        ns = re.search(r'/console/files/(\d+)', accounts).group(1)  # type: ignore[union-attr]
        page = c.get(f"/console/files/{ns}").text
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.txt" in page
        assert c.get(f"/console/files/{ns}?path=/nope").status_code == 404
        assert c.get("/console/jobs/dbjid:nope").status_code == 404
