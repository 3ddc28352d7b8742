"""README "Use it with your client": every recipe runs as written (only ports, paths and the token differ),
against `localbox serve --tls-port` (HTTP and HTTPS from one process); what it did is checked on the server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clients_harness import JS_DIR, REPO, clean_env, dropbox_content_hash, require, run_node
from harness import LocalServer, free_port, make_sdk, running_server

README = REPO / "README.md"
BIN = str(Path(sys.executable).parent)  # where `localbox` is installed, as the recipes call it


def recipe(name: str) -> str:
    m = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no recipe {name!r}"
    return m.group(1)


def python_https_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    found = [b for b in blocks if "DROPBOX_API_HOST" in b and "create_session" in b]
    assert len(found) == 1, "README's Python HTTPS snippet"
    return found[0]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


class Setup:
    def __init__(self, server: LocalServer, https_port: int, cwd: Path) -> None:
        self.server, self.https_port, self.cwd = server, https_port, cwd
        email = "ann@example.com"
        server.cli("account", "create", email)
        self.token = server.new_token(email)
        self.ca = server.cli("ca").strip()

    def ports(self, text: str) -> str:
        return text.replace("127.0.0.1:8080", f"127.0.0.1:{self.server.port}").replace(
            "127.0.0.1:8443", f"127.0.0.1:{self.https_port}")

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(TOKEN=self.token, PATH=f"{BIN}:{os.environ['PATH']}", **extra)

    def sh(self, script: str) -> str:
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                             env=self.env(), cwd=self.cwd, timeout=120)
        assert out.returncode == 0, f"{out.stderr}\n{out.stdout}\n--- server log\n{self.server.log()[-2000:]}"
        return out.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    cwd = tmp_path_factory.mktemp("readme")
    https_port = free_port()
    # ./localbox-data is the default data dir, so the recipes' bare `localbox ca` finds this server's CA.
    with running_server(cwd / "localbox-data", ["--tls-port", str(https_port)]) as srv:
        wait_port(https_port)
        yield Setup(srv, https_port, cwd)


def test_server_recipe_is_the_one_the_tests_run() -> None:
    assert "localbox serve --tls-port 8443 &" in README.read_text()


def test_curl_over_http(setup: Setup) -> None:
    out = setup.sh(setup.ports(recipe("curl-http")))
    # Like Dropbox, answers carry no trailing newline: the two JSON documents and the body run together.
    upload, end = json.JSONDecoder().raw_decode(out)
    listing, end2 = json.JSONDecoder().raw_decode(out, end)
    assert upload["path_display"] == "/notes/hello.txt"
    assert "hello.txt" in [e["name"] for e in listing["entries"]]
    assert out[end2:] == "hello from curl"
    _, resp = make_sdk(setup.server, setup.token).files_download("/notes/hello.txt")
    assert resp.content == b"hello from curl"


def test_curl_over_https_upload_session(setup: Setup) -> None:
    md = json.loads(setup.sh(setup.ports(recipe("curl-https"))))
    assert (md["path_display"], md["size"]) == ("/notes/secure.txt", 15)
    assert md["content_hash"] == dropbox_content_hash(b"sent over https")
    _, resp = make_sdk(setup.server, setup.token).files_download("/notes/secure.txt")
    assert resp.content == b"sent over https"


def test_python_sdk_over_https(setup: Setup) -> None:
    code = setup.ports(python_https_snippet()).replace('"ca.pem"', repr(setup.ca)).replace("<token>", setup.token)
    code += "print(dbx.files_upload(b'from python', '/notes/py.txt').path_display)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=setup.env(),
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "/notes/py.txt"


def test_js_sdk(setup: Setup, tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    script = tmp_path / "hello.mjs"
    script.write_text(setup.ports(recipe("js")))
    out = run_node(script, setup.env(NODE_EXTRA_CA_CERTS=setup.ca))
    assert out.returncode == 0, out.stderr
    data = b"hello from node\n"
    lines = out.stdout.splitlines()
    assert lines[0] == f"/notes/from node.txt {len(data)} {dropbox_content_hash(data)}"
    assert "from node.txt" in lines[1].split(", ")
    assert lines[2:] == ["hello from node", ""]  # the file ends with a newline, console.log adds one
    _, resp = make_sdk(setup.server, setup.token).files_download("/notes/from node.txt")
    assert resp.content == data


def test_rclone_with_etc_hosts_in_a_private_network_namespace(tmp_path: Path) -> None:
    """The /etc/hosts + port 443 recipe, inside `unshare --mount --net`: the namespace has its own loopback
    and a bind-mounted copy of /etc/hosts, so the machine's port 443 and /etc/hosts are never touched."""
    require("rclone", "apt-get install -y rclone; .ci/run does it")
    require("unshare", "util-linux")
    photos = tmp_path / "photos"
    (photos / "2024" / "summer").mkdir(parents=True)
    files = {"a.jpg": os.urandom(3000), "2024/summer/b é.jpg": os.urandom(70_000), "2024/empty.txt": b""}
    for rel, data in files.items():
        (photos / rel).write_bytes(data)
    data_dir = tmp_path / "localbox-data"
    srv = LocalServer(data_dir)  # not started here: only its admin CLI, on the recipe's data dir
    srv.cli("account", "create", "ann@example.com")
    token = srv.new_token("ann@example.com")
    script = "\n".join([
        "ip link set lo up",
        'cp /etc/hosts "$PWD/hosts" && mount --bind "$PWD/hosts" /etc/hosts',
        recipe("rclone-server"),
        "SERVER=$!; trap 'kill $SERVER; wait $SERVER || true' EXIT",
        "for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && break; sleep 0.1; done",
        recipe("rclone"),
    ])
    out = subprocess.run(["unshare", "--mount", "--net", "bash", "-euo", "pipefail", "-c", script],
                         capture_output=True, text=True, cwd=tmp_path, timeout=180,
                         env=clean_env(TOKEN=token, PATH=f"{BIN}:{os.environ['PATH']}", HOME=str(tmp_path)))
    assert out.returncode == 0, f"{out.stderr[-5000:]}\n{out.stdout[-2000:]}"
    assert "0 differences found" in out.stderr and f"{len(files)} matching files" in out.stderr
    lsjson = re.search(r"^\[$.*^\]$", out.stdout, re.M | re.S)  # stdout also has the server's banner
    assert lsjson, out.stdout
    listed = {e["Path"]: e for e in json.loads(lsjson.group(0))}
    assert {p for p, e in listed.items() if not e["IsDir"]} == set(files)

    with running_server(data_dir) as server:  # the files are there for any client, not only rclone
        dbx = make_sdk(server, token)
        for rel, data in files.items():
            md = dbx.files_get_metadata(f"/photos/{rel}")
            assert (md.path_display, md.size, md.content_hash) == (
                f"/photos/{rel}", len(data), dropbox_content_hash(data))
