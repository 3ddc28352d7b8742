"""Helpers for the wire tier: raw HTTP against `localbox serve`, exact-byte assertions.

Every assertion here encodes a Dropbox wire fact (see /work/shared/docs/dropbox-api-facts.md):

* JSON 200/401/409 bodies carry exactly ``Content-Type: application/json`` (the SDK compares the string).
* Void results are the body ``null``.
* Route errors are 409 ``{"error_summary": str, "error": <route error union>, "user_message"?}``.
* Bad input is 400 ``text/plain`` starting ``Error in call to API function "<route>": ``.
* Every response carries ``x-dropbox-request-id``.

JSON bodies are decoded with the SDK's own stone validators in **strict** mode, so an unknown field, an
unknown union tag or a constraint violation (rev pattern, timestamp format, ...) fails the test.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from dropbox import stone_serializers as ss
from dropbox import stone_validators as bv

BLOCK = 4 * 1024 * 1024
MiB = 1024 * 1024

REV_RE = re.compile(r"^[0-9a-f]{9,}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")

VOID = bv.Void()


def content_hash(data: bytes) -> str:
    """Dropbox content hash: sha256 over the concatenated sha256 digests of 4 MiB blocks."""
    digests = b"".join(hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, len(data), BLOCK))
    return hashlib.sha256(digests).hexdigest()


def arg_header(obj: Any, *, ascii_only: bool = True) -> bytes:
    """A Dropbox-API-Arg value as the SDK sends it (ensure_ascii) or as rclone sends it (raw UTF-8).

    In raw mode DEL (0x7f) is still escaped: it is not a legal header byte (RFC 9110 field-vchar), Go's
    net/http refuses to send it, and uvicorn's parser drops such a request before the app sees it. DEL
    can only occur inside JSON strings, so the `\\u007f` escape keeps the JSON equivalent."""
    text = json.dumps(obj, ensure_ascii=ascii_only)
    if not ascii_only:
        text = text.replace("\x7f", "\\u007f")
    return text.encode("utf-8")


def describe(resp: httpx.Response) -> str:
    body = resp.content[:800]
    return (f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}\n"
            f"headers={dict(resp.headers)}\nbody={body!r}")


def request_id(resp: httpx.Response) -> str:
    rid = resp.headers.get("x-dropbox-request-id")
    assert rid, f"missing x-dropbox-request-id\n{describe(resp)}"
    return rid


def ok_json(resp: httpx.Response, validator: Any = None, status: int = 200) -> Any:
    """A successful RPC/upload response: exact content type, strict decode with the route's result type."""
    assert resp.status_code == status, describe(resp)
    assert resp.headers.get("content-type") == "application/json", describe(resp)
    request_id(resp)
    body = json.loads(resp.content)
    if validator is not None:
        ss.json_decode(validator, resp.content.decode("utf-8"), strict=True)
    return body


def ok_void(resp: httpx.Response) -> None:
    """A void result: 200, application/json, body exactly `null`."""
    assert resp.status_code == 200, describe(resp)
    assert resp.headers.get("content-type") == "application/json", describe(resp)
    request_id(resp)
    assert resp.content.strip() == b"null", describe(resp)


def tag_path(error: Any) -> list[str]:
    """The chain of union tags in an encoded stone union (follows nested unions, and flattened structs'
    union-valued fields such as UploadWriteFailed.reason)."""
    tags: list[str] = []
    cur = error
    while isinstance(cur, Mapping) and ".tag" in cur:
        tag = cur[".tag"]
        tags.append(tag)
        nxt = cur.get(tag)
        if not (isinstance(nxt, Mapping) and ".tag" in nxt):
            nxt = next((v for k, v in cur.items() if k != ".tag" and isinstance(v, Mapping) and ".tag" in v),
                       None)
        cur = nxt
    return tags


def nested_tag_path(error: Any) -> list[str]:
    tags: list[str] = []
    cur = error
    while isinstance(cur, Mapping) and ".tag" in cur:
        tags.append(cur[".tag"])
        cur = cur.get(cur[".tag"])
    return tags


def route_error(resp: httpx.Response, validator: Any, *tags: str) -> Any:
    """A 409 route error; `tags` is the expected leading tag path of `error`."""
    assert resp.status_code == 409, describe(resp)
    assert resp.headers.get("content-type") == "application/json", describe(resp)
    request_id(resp)
    body = json.loads(resp.content)
    assert isinstance(body, dict), describe(resp)
    assert {"error_summary", "error"} <= set(body) <= {"error_summary", "error", "user_message"}, body
    assert isinstance(body["error_summary"], str), body
    if "user_message" in body:
        um = body["user_message"]
        assert isinstance(um, dict) and isinstance(um.get("text"), str) and isinstance(um.get("locale"), str)
    ss.json_compat_obj_decode(validator, body["error"], strict=True)
    if tags:
        got = tag_path(body["error"])
        assert got[: len(tags)] == list(tags), (got, body)
        # Dropbox's summary is the union tag chain followed by a "/" and filler, e.g. "path/not_found/..".
        # Only unions nested under their tag are required here; whether the summary descends into a
        # flattened struct's union field (UploadWriteFailed.reason) is not pinned down by the docs.
        assert body["error_summary"].startswith("/".join(nested_tag_path(body["error"])) + "/"), body
    return body["error"]


def bad_input(resp: httpx.Response, route: str | None = None) -> str:
    """A 400 bad-input answer: text/plain, Dropbox wording when the route is known."""
    assert resp.status_code == 400, describe(resp)
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("text/plain"), describe(resp)
    request_id(resp)
    text = resp.content.decode("utf-8")
    if route is not None:
        assert text.startswith(f'Error in call to API function "{route}": '), describe(resp)
    return text


def auth_error(resp: httpx.Response, tag: str) -> Any:
    from dropbox import auth

    assert resp.status_code == 401, describe(resp)
    assert resp.headers.get("content-type") == "application/json", describe(resp)
    request_id(resp)
    body = json.loads(resp.content)
    assert {"error_summary", "error"} <= set(body) <= {"error_summary", "error", "user_message"}, body
    assert isinstance(body["error_summary"], str)
    assert body["error_summary"].startswith(tag), body
    ss.json_compat_obj_decode(auth.AuthError_validator, body["error"], strict=True)
    err = body["error"]
    assert (err if isinstance(err, str) else err[".tag"]) == tag, body
    return err


def check_file_metadata(md: Mapping[str, Any], *, path: str | None = None, data: bytes | None = None,
                        tagged: bool = False) -> None:
    """Shape checks on an encoded FileMetadata (beyond what the stone decode already enforces)."""
    from dropbox import files

    if tagged:
        assert md.get(".tag") == "file", md
        ss.json_compat_obj_decode(files.Metadata_validator, dict(md), strict=True)
    else:
        assert ".tag" not in md, f"FileMetadata-typed results carry no .tag: {md}"
        ss.json_compat_obj_decode(files.FileMetadata_validator, dict(md), strict=True)
    assert md["id"].startswith("id:") and len(md["id"]) > 3, md
    assert REV_RE.match(md["rev"]), md
    assert TS_RE.match(md["client_modified"]) and TS_RE.match(md["server_modified"]), md
    assert md.get("is_downloadable", True) is True, md
    assert HASH_RE.match(md["content_hash"]), md
    if path is not None:
        assert md["path_display"] == path, md
        assert md["name"] == path.rsplit("/", 1)[1], md
        if path.isascii():
            assert md["path_lower"] == path.lower(), md
    if data is not None:
        assert md["size"] == len(data), md
        assert md["content_hash"] == content_hash(data), md


class Api:
    """Thin raw-HTTP helpers bound to one token. Nothing here hides the wire: every method returns the
    httpx.Response; the `*_ok` helpers assert success and return the decoded body."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http = http
        self.token = token

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    # -- raw calls ---------------------------------------------------------------------------
    def rpc(self, route: str, arg: Any = None, *, raw: bytes | None = None,
            content_type: str | None = "application/json", headers: Mapping[str, Any] | None = None,
            token: str | None = None, auth: bool = True, params: Mapping[str, str] | None = None
            ) -> httpx.Response:
        h: dict[str, Any] = {}
        if auth:
            h.update(self.auth(token))
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        body = raw if raw is not None else json.dumps(arg).encode()
        return self.http.post(f"/2/{route}", content=body, headers=h, params=params)

    def content(self, route: str, arg: Any = None, data: bytes | Iterable[bytes] = b"", *,
                raw_arg: bytes | str | None = None, ascii_only: bool = True, arg_in: str = "header",
                content_type: str | None = "application/octet-stream",
                headers: Mapping[str, Any] | None = None, token: str | None = None, auth: bool = True,
                header_name: str = "Dropbox-API-Arg") -> httpx.Response:
        h: dict[str, Any] = {}
        if auth:
            h.update(self.auth(token))
        if content_type is not None:
            h["Content-Type"] = content_type
        params = None
        value = raw_arg if raw_arg is not None else arg_header(arg, ascii_only=ascii_only)
        if arg_in == "header":
            h[header_name] = value
        elif arg_in == "url":
            params = {"arg": value.decode() if isinstance(value, bytes) else value}
        h.update(headers or {})
        return self.http.post(f"/2/{route}", content=data, headers=h, params=params)

    def download(self, arg: Any, *, method: str = "POST", headers: Mapping[str, Any] | None = None,
                 url_params: bool = False, ascii_only: bool = True) -> httpx.Response:
        if url_params:
            params = {"arg": json.dumps(arg, ensure_ascii=ascii_only), "authorization": f"Bearer {self.token}"}
            return self.http.request(method, "/2/files/download", params=params, headers=dict(headers or {}))
        h: dict[str, Any] = {**self.auth(), "Dropbox-API-Arg": arg_header(arg, ascii_only=ascii_only)}
        h.update(headers or {})
        return self.http.request(method, "/2/files/download", headers=h)

    # -- asserted helpers --------------------------------------------------------------------
    def upload_ok(self, path: str, data: bytes = b"", **commit: Any) -> dict[str, Any]:
        from dropbox import files

        arg = {"path": path, **commit}
        md = ok_json(self.content("files/upload", arg, data), files.FileMetadata_validator)
        check_file_metadata(md, data=data)
        return md  # type: ignore[no-any-return]

    def start_ok(self, data: bytes = b"", **arg: Any) -> str:
        from dropbox import files

        body = ok_json(self.content("files/upload_session/start", arg, data),
                       files.UploadSessionStartResult_validator)
        assert set(body) == {"session_id"} and isinstance(body["session_id"], str) and body["session_id"]
        return body["session_id"]  # type: ignore[no-any-return]

    def append_ok(self, session_id: str, offset: int, data: bytes, close: bool = False, **arg: Any) -> None:
        ok_void(self.content("files/upload_session/append_v2",
                             {"cursor": {"session_id": session_id, "offset": offset}, "close": close, **arg},
                             data))

    def finish(self, session_id: str, offset: int, path: str, data: bytes = b"",
               **commit: Any) -> httpx.Response:
        arg = {"cursor": {"session_id": session_id, "offset": offset}, "commit": {"path": path, **commit}}
        return self.content("files/upload_session/finish", arg, data)

    def finish_ok(self, session_id: str, offset: int, path: str, data: bytes = b"",
                  **commit: Any) -> dict[str, Any]:
        from dropbox import files

        md = ok_json(self.finish(session_id, offset, path, data, **commit), files.FileMetadata_validator)
        return md  # type: ignore[no-any-return]

    def metadata(self, path: str, **arg: Any) -> httpx.Response:
        return self.rpc("files/get_metadata", {"path": path, **arg})

    def metadata_ok(self, path: str, **arg: Any) -> dict[str, Any]:
        from dropbox import files

        return ok_json(self.metadata(path, **arg), files.Metadata_validator)  # type: ignore[no-any-return]

    def download_bytes(self, path: str) -> bytes:
        r = self.download({"path": path})
        assert r.status_code == 200, describe(r)
        return r.content

    def current_account(self) -> dict[str, Any]:
        from dropbox import users

        return ok_json(self.rpc("users/get_current_account", None),  # type: ignore[no-any-return]
                       users.FullAccount_validator)

    def poll_batch(self, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll finish_batch/check until `complete`; every intermediate body must decode too."""
        from dropbox import files

        deadline = time.monotonic() + timeout
        while True:
            body = ok_json(self.rpc("files/upload_session/finish_batch/check", {"async_job_id": job_id}),
                           files.UploadSessionFinishBatchJobStatus_validator)
            if body[".tag"] == "complete":
                return body  # type: ignore[no-any-return]
            assert body == {".tag": "in_progress"}, body
            assert time.monotonic() < deadline, "finish_batch job did not complete in time"
            time.sleep(0.05)
