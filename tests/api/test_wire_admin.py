"""The admin API and injected faults on the wire: exact bytes of 429s, a dropped response seen on a raw
socket, admin auth and validation, against a real `localbox serve --memory`."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator

import httpx
import pytest
from harness import LocalServer, running_server

pytestmark = pytest.mark.api
ADMIN = "adm-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with running_server(tmp_path_factory.mktemp("adm") / "data", ["--memory", "--admin-token", ADMIN]) as s:
        yield s


@pytest.fixture()
def admin(srv: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}, trust_env=False) as c:
        yield c
        c.post("/admin/reset", json={})


@pytest.fixture()
def token(admin: httpx.Client) -> str:
    r = admin.post("/admin/accounts", json={"email": "w@example.com"})
    assert r.status_code == 201, r.text
    return str(r.json()["tokens"][0])


def test_admin_needs_its_token(srv: LocalServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN}"}):
        r = httpx.get(f"{srv.url}/admin/faults", headers=headers, trust_env=False)
        assert r.status_code == 401 and "admin token" in r.json()["error"]


def test_fault_crud_and_validation(admin: httpx.Client) -> None:
    r = admin.post("/admin/faults", json={"kind": "latency", "params": {"seconds": "slow"}})
    assert r.status_code == 400 and "seconds" in r.json()["error"]
    r = admin.post("/admin/faults", json=[{"kind": "latency", "id": "mine"}, {"kind": "drop_response"}])
    assert r.status_code == 201 and [f["id"][0] for f in r.json()] == ["m", "f"] and r.json()[0]["id"] == "mine"
    assert admin.get("/admin/faults/mine").json()["params"] == {"seconds": 1.0}
    assert admin.delete("/admin/faults/mine").json() == {"deleted": "mine"}
    assert admin.delete("/admin/faults/mine").status_code == 404
    assert admin.delete("/admin/faults").json() == {"deleted": 1}
    assert "job_stuck" in admin.get("/admin/faults/kinds").json()


def test_429_bytes(srv: LocalServer, admin: httpx.Client, token: str) -> None:
    admin.post("/admin/faults", json={"kind": "too_many_write_operations", "route": "check/user", "times": 1,
                                      "params": {"retry_after": 7}})
    admin.post("/admin/faults", json={"kind": "too_many_requests", "route": "check/user", "times": 1,
                                      "params": {"format": "text"}})
    call = {"url": f"{srv.url}/2/check/user", "content": b'{"query": "q"}', "trust_env": False,
            "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}}
    r = httpx.post(**call)  # type: ignore[arg-type]
    assert (r.status_code, r.headers["content-type"], r.headers["retry-after"]) == (429, "application/json", "7")
    assert r.json() == {"error_summary": "too_many_write_operations/",
                        "error": {"reason": {".tag": "too_many_write_operations"}, "retry_after": 7}}
    r = httpx.post(**call)  # type: ignore[arg-type]
    assert (r.status_code, r.headers["content-type"], r.headers["retry-after"]) == (429, "text/plain; charset=utf-8",
                                                                                    "1")
    assert httpx.post(**call).json() == {"result": "q"}  # type: ignore[arg-type]
    log = admin.get("/admin/requests").json()["requests"]
    assert [(e["status"], e["error"], bool(e["faults"])) for e in log[-3:]] == [
        (429, "too_many_write_operations", True), (429, "too_many_requests", True), (200, None, False)]


def test_dropped_response_sends_not_one_byte(srv: LocalServer, admin: httpx.Client, token: str) -> None:
    admin.post("/admin/faults", json={"kind": "drop_response", "route": "files/create_folder_v2", "times": 1})
    body = json.dumps({"path": "/made"}).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /2/files/create_folder_v2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert s.recv(65536) == b""  # closed with nothing sent
    r = httpx.post(f"{srv.url}/2/files/get_metadata", json={"path": "/made"}, trust_env=False,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.json()[".tag"] == "folder"  # the call itself was applied


def test_reset_forgets_everything(srv: LocalServer, admin: httpx.Client, token: str) -> None:
    admin.post("/admin/faults", json={"kind": "latency"})
    assert admin.post("/admin/reset", json={"account": "nobody@example.com"}).status_code == 404
    assert admin.post("/admin/reset", json={"bogus": 1}).status_code == 400
    assert admin.post("/admin/reset", json={}).json() == {"reset": "all"}
    assert admin.get("/admin/faults").json() == {"faults": []}
    r = httpx.post(f"{srv.url}/2/check/user", json={"query": "q"}, trust_env=False,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
