"""Server processes under test: ``localbox serve`` and the raw-ingest baseline, plus their memory use.

Each benchmark starts its own servers on a fresh temporary data directory, so no benchmark inherits another's
database, page-cache state or allocator state.  Output of each server goes to a log file whose tail is shown
when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Environment that tunes glibc malloc for ~250 KiB request chunks (performance-ceilings.md: about 2x for
# uvicorn streaming to disk).  `localbox serve` re-execs itself with exactly these settings, so the raw-ingest
# baseline of the localbox benchmarks uses them too; `baselines` also measures raw-ingest without them.
TUNED_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "268435456"}


class ServerError(RuntimeError):
    """A server or admin command failed; the message includes the tail of its output."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    """A running server process."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Waits until the port accepts connections (any HTTP answer will do afterwards)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n{_tail(self.log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise ServerError(
            f"{self.name} did not listen on {self.port} within {timeout:.0f}s:\n{_tail(self.log)}"
        )

    def stop(self) -> None:
        """SIGINT first (uvicorn's graceful shutdown), then SIGKILL of this process only."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self) -> str:
        return _tail(self.log)


def _spawn(
    name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=os.getcwd())


@contextlib.contextmanager
def raw_ingest(workdir: Path, tuned_malloc: bool = False) -> Iterator[Server]:
    """Starts ``python -m bench.raw_ingest`` writing into ``workdir/raw*``."""
    suffix = "-tuned" if tuned_malloc else ""
    port = free_port()
    log = workdir / f"raw-ingest{suffix}.log"
    argv = [
        sys.executable,
        "-m",
        "bench.raw_ingest",
        "--port",
        str(port),
        "--dir",
        str(workdir / f"raw{suffix}"),
    ]
    proc = _spawn("raw-ingest", argv, log, TUNED_MALLOC_ENV if tuned_malloc else None)
    server = Server(f"raw-ingest{suffix}", proc, port, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass
class Localbox:
    server: Server
    token: str
    data_dir: Path


def _admin(argv: list[str], log: Path, env: dict[str, str] | None = None) -> str:
    """Runs a ``python -m localbox`` admin command; returns the last non-empty line it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "localbox", *argv], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )
    with log.open("a") as out:
        out.write(f"$ localbox {' '.join(argv)}\n{result.stdout}{result.stderr}")
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise ServerError(f"localbox {argv[0]} {argv[1]} failed ({result.returncode}):\n{_tail(log)}")
    return lines[-1]


@contextlib.contextmanager
def localbox(
    workdir: Path,
    email: str = "bench@example.com",
    prepare: Callable[[Path, str], None] | None = None,
    serve_args: Sequence[str] = (),
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Localbox]:
    """Creates an account and token in a fresh data dir, then runs ``localbox serve`` on a free port.

    ``prepare(data_dir, email)``, if given, runs after the account exists and before the server starts
    (e.g. to seed the metadata store through localbox's library). ``serve_args`` are extra flags of
    ``localbox serve`` (e.g. TLS); ``port`` replaces the free port (e.g. 443 inside a network namespace).
    ``env`` is added to the environment of the admin commands and the server (e.g. LOCALBOX_DATABASE_URL).
    """
    data_dir = workdir / "localbox-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = workdir / "localbox.log"
    _admin(["account", "create", email, "--data-dir", str(data_dir)], log, env)
    token = _admin(["token", "create", email, "--data-dir", str(data_dir)], log, env)
    if prepare is not None:
        prepare(data_dir, email)
    port = port or free_port()
    argv = [sys.executable, "-m", "localbox", "serve", "--data-dir", str(data_dir)]
    argv += ["--host", "127.0.0.1", "--port", str(port), *serve_args]
    server = Server("localbox", _spawn("localbox", argv, log, env), port, log)
    try:
        server.wait_ready()
        yield Localbox(server, token, data_dir)
    finally:
        server.stop()


# --- memory -------------------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a server may fork workers), from /proc/*/stat parent ids."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces or parentheses: the fields we need follow the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (``clear_refs`` 5, Linux >= 4.0), so the peak is this upload's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples the summed VmRSS of a process tree in a thread; backs up VmHWM if it cannot be reset.

    Sampling every 20 ms costs the client a little CPU; uploads it watches last far longer than that.
    """

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_kib = 0

    def _run(self) -> None:
        pids = process_tree(self._root)
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(status_kib(pid, "VmRSS") for pid in pids))
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def malloc_env(pid: int) -> dict[str, str]:
    """The MALLOC_* variables a running process actually has (localbox may set them by re-exec'ing)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs if key.startswith("MALLOC_")}
