"""examples/conductor: the workflow definition's HTTP tasks, replayed in order against localbox with a plain
HTTP client (httpx), resolving `${...}` expressions and the DO_WHILE loop condition the way Conductor does for
this definition.  Proves the headers, bodies and polling are what localbox (and Dropbox) expect."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from localbox.testing import LocalboxServer

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "conductor" / "upload_finish_batch.json"
_EXPR = re.compile(r"\$\{([^}]+)\}")


class Replay:
    def __init__(self, inputs: dict[str, Any], http: httpx.Client, wait_scale: float = 1.0) -> None:
        self.context: dict[str, Any] = {"workflow": {"input": inputs}}
        self.http = http
        self.wait_scale = wait_scale
        self.calls: list[tuple[str, int]] = []
        self.iterations: dict[str, int] = {}

    def lookup(self, path: str) -> Any:
        value: Any = self.context
        for key in path.split("."):
            value = value[key]
        return value

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            whole = _EXPR.fullmatch(value)
            if whole:  # a lone expression keeps its type (numbers stay numbers)
                return self.lookup(whole.group(1))
            return _EXPR.sub(lambda m: str(self.lookup(m.group(1))), value)
        return value

    def run(self, tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            kind = task["type"]
            if kind == "HTTP":
                self.http_task(task)
            elif kind == "WAIT":
                seconds = float(task["inputParameters"]["duration"].split()[0])
                time.sleep(seconds * self.wait_scale)
            elif kind == "DO_WHILE":
                self.do_while(task)
            else:
                raise AssertionError(f"task type {kind} is not used by this example")

    def http_task(self, task: dict[str, Any]) -> None:
        req = self.resolve(task["inputParameters"]["http_request"])
        headers = {**req.get("headers", {}), "Content-Type": req["contentType"], "Accept": req["accept"]}
        body = req.get("body")
        content = json.dumps(body).encode() if req["contentType"] == "application/json" else str(body).encode()
        response = self.http.request(req["method"], req["uri"], headers=headers, content=content)
        self.calls.append((req["uri"].split("/2/", 1)[1], response.status_code))
        assert response.status_code == 200, (task["taskReferenceName"], response.status_code, response.text)
        self.context[task["taskReferenceName"]] = {"output": {"response": {
            "statusCode": response.status_code, "body": response.json(), "headers": dict(response.headers)}}}

    def do_while(self, task: dict[str, Any]) -> None:
        # The condition, `if (<expr>) { true; } else { false; }`, over `$.<ref>['...']` outputs.
        m = re.fullmatch(r"if \((.+)\) \{ true; \} else \{ false; \}", task["loopCondition"])
        assert m, task["loopCondition"]
        expr = re.sub(r"\$\.(\w+)", r"out['\1']['output']", m.group(1))
        assert re.fullmatch(r"[\w\[\]'. =!]+", expr), expr  # nothing but lookups and comparisons
        ref = task["taskReferenceName"]
        self.iterations[ref] = 0
        while True:
            self.iterations[ref] += 1
            self.run(task["loopOver"])
            if not eval(expr, {"__builtins__": {}}, {"out": self.context}):
                return
            assert self.iterations[ref] < 60, "the job never completed"


def workflow() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(WORKFLOW.read_text())
    return definition


def test_definition_is_a_conductor_workflow() -> None:
    w = workflow()
    assert {"name", "version", "schemaVersion", "tasks", "inputParameters", "ownerEmail"} <= set(w)
    assert w["schemaVersion"] == 2
    refs = [t["taskReferenceName"] for t in w["tasks"]]
    assert refs == ["start_a", "start_b", "finish_batch", "poll"] and len(set(refs)) == len(refs)
    for task in w["tasks"]:
        if task["type"] == "HTTP":
            assert set(task["inputParameters"]["http_request"]) >= {"uri", "method", "headers", "body"}


def test_replayed_workflow_uploads_and_commits_through_finish_batch(tmp_path: Path) -> None:
    with LocalboxServer() as box, httpx.Client(trust_env=False, timeout=30) as http:
        box.add_fault("job_stuck", seconds=1.5)  # the job stays in_progress: the loop must poll again
        a, b = "first file\n", "second, longer file\n" * 10
        replay = Replay({"api_url": box.url, "content_url": box.url, "token": box.token, "folder": "/conductor",
                         "name_a": "a.txt", "content_a": a, "size_a": len(a.encode()),
                         "name_b": "b.txt", "content_b": b, "size_b": len(b.encode())}, http, wait_scale=0.5)
        replay.run(workflow()["tasks"])

        assert [r for r, _ in replay.calls[:3]] == ["files/upload_session/start", "files/upload_session/start",
                                                    "files/upload_session/finish_batch"]
        assert replay.iterations["poll"] >= 2  # in_progress first, then complete
        entries = replay.resolve(workflow()["outputParameters"])["entries"]
        assert [(e[".tag"], e["path_display"], e["size"]) for e in entries] == [
            ("success", "/conductor/a.txt", len(a)), ("success", "/conductor/b.txt", len(b))]
        dbx = box.client()
        assert dbx.files_download("/conductor/b.txt")[1].content == b.encode()
        assert [r["route"] for r in box.requests()].count("files/upload_session/finish_batch/check") >= 2
