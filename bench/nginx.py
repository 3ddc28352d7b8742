"""The nginx-put baseline: Debian's nginx with the WebDAV module accepting PUT to disk, and serving GET.

``nginx_or_skip(workdir, rec)`` yields a running nginx, or ``None`` after recording why it was skipped, so a
benchmark keeps its other figures when nginx is missing.  When the binary is missing and we run as root,
it is installed once per ``python -m bench`` run with ``apt-get update`` + ``apt-get install -y nginx`` (or
``nginx-light``, whichever apt has a candidate for).  The system service is never used (on Debian images
``policy-rc.d`` keeps apt from starting it): each benchmark runs its own nginx in the foreground
(``nginx -c CONF -p PREFIX -e LOG -g 'daemon off;'``) with a temporary config on 127.0.0.1:<free port>, and
stops it (SIGINT = fast shutdown; then SIGKILL of the pids of that process tree only) at the end.

``worker_processes 1``: localbox serve and raw-ingest are one process with one event loop each, and the
client shares the same 2 cores, so one worker keeps the comparison about the server's work per byte rather
than about process counts (the ceilings document measured no gain from a 2nd worker on this machine with
four curls competing for the cores).

nginx's PUT writes the body to a temp file under ``client_body_temp_path`` (same disk, so the final step is a
rename) and does not fsync.  The benchmarks fsync the file from the client after the PUT and include that in
the time, so the baseline is as durable as raw-ingest and localbox; ``session_1gib`` also reports the PUT
without the fsync.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Server, ServerError, free_port, process_tree
from bench.stats import Recorder

WORKERS = 1
_CANDIDATES = ("nginx", "nginx-light")  # Debian package names; both ship http_dav_module built in
_state: dict[str, str | None] = {}  # "binary" / "reason": the outcome of the one install attempt


@dataclass
class Nginx:
    server: Server
    root: Path  # the document root: PUT /<name> lands in root/<name>

    def fsync(self, name: str) -> None:
        """Makes a PUT file durable, as raw-ingest and localbox do before answering."""
        fd = os.open(self.root / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _has_candidate(package: str) -> bool:
    out = _run(["apt-cache", "policy", package], timeout=60).stdout
    return any(line.strip().startswith("Candidate:") and "(none)" not in line for line in out.splitlines())


def _install() -> str | None:
    """apt-get update, then install the first package with a candidate; returns a reason on failure."""
    if os.geteuid() != 0:
        return "nginx is not installed and installing it needs root (apt-get install nginx)"
    if shutil.which("apt-get") is None:
        return "nginx is not installed and there is no apt-get to install it"
    print("   nginx not found: apt-get update && apt-get install -y nginx (once per run)", flush=True)
    update = _run(["apt-get", "update"])
    if update.returncode != 0:
        return f"apt-get update failed ({update.returncode}): {update.stderr.strip()[-300:]}"
    package = next((name for name in _CANDIDATES if _has_candidate(name)), None)
    if package is None:
        return f"apt has no candidate for {' or '.join(_CANDIDATES)}"
    install = _run(["apt-get", "install", "-y", "--no-install-recommends", package])
    if install.returncode != 0:
        return f"apt-get install {package} failed ({install.returncode}): {install.stderr.strip()[-300:]}"
    return None


def ensure_nginx() -> tuple[str | None, str]:
    """(path of an nginx with the dav module, "") or (None, why not); installs at most once per process."""
    if "binary" not in _state:
        binary, reason = _binary(), ""
        if binary is None:
            try:
                reason = _install() or ""
            except (OSError, subprocess.TimeoutExpired) as exc:
                reason = f"installing nginx failed: {exc}"
            binary = _binary()
            if binary is None and not reason:
                reason = "nginx was installed but no nginx binary is on PATH or in /usr/sbin"
        if binary is not None:
            version = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
            if "--with-http_dav_module" not in version:
                binary, reason = None, f"{binary} is built without --with-http_dav_module"
        _state["binary"], _state["reason"] = binary, reason
    return _state["binary"], _state["reason"] or ""


def _config(prefix: Path, root: Path, port: int) -> str:
    # `user root` only matters when the master runs as root: the workers must write into the 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes {WORKERS};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_max_body_size 0;
    client_body_temp_path {prefix / "body-temp"};
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(binary: str, workdir: Path) -> Iterator[Nginx]:
    """Runs nginx in the foreground with its own config under ``workdir/nginx``; stops it at the end."""
    prefix = workdir / "nginx"
    root = prefix / "root"
    for directory in (root, prefix / "body-temp"):
        directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_config(prefix, root, port))
    log = prefix / "stderr.log"
    argv = [binary, "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = Server("nginx", proc, port, log)
    try:
        server.wait_ready(timeout=20)
        yield Nginx(server, root)
    finally:
        pids = process_tree(proc.pid)
        server.stop()
        _kill_leftovers(pids[1:])


def _kill_leftovers(pids: list[int]) -> None:
    """Workers normally exit with the master; SIGKILL any of those pids still alive after a short wait."""
    deadline = time.monotonic() + 5
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, 9)


@contextlib.contextmanager
def nginx_or_skip(workdir: Path, rec: Recorder) -> Iterator[Nginx | None]:
    """A running nginx, or None with a skip message printed and noted (the benchmark goes on without it)."""
    def skip(why: str) -> None:
        message = f"nginx baseline skipped: {why}"
        print(f"   {message}", flush=True)
        rec.note(message)

    binary, reason = ensure_nginx()
    if binary is None:
        skip(str(reason))
        yield None
        return
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(nginx(binary, workdir))
    except ServerError as exc:
        skip(f"could not start nginx: {exc}")
        yield None
        return
    with stack:
        rec.note(
            f"nginx-put: {binary}, worker_processes {WORKERS}, access_log off, PUT via dav_methods, "
            "client_body_temp_path on the same disk; the client fsyncs each PUT file (timed)"
        )
        yield server
