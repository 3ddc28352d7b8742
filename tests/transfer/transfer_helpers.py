"""Helpers of the transfer tier: run the `localbox` CLI against a test server, read its request log, make trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localbox.testing import LocalboxServer


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return result


def localbox(box: LocalboxServer, *args: str, timeout: float = 120) -> Run:
    env = {**os.environ, "LOCALBOX_URL": box.url, "DROPBOX_TOKEN": box.token}
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    out = subprocess.run([sys.executable, "-m", "localbox", *args], capture_output=True, text=True,
                         timeout=timeout, env=env)
    return Run(out.returncode, out.stdout, out.stderr)


def routes(box: LocalboxServer, since: int = 0) -> list[str]:
    return [r["route"] for r in box.requests(since=since, limit=10000)]


def make_tree(root: Path, files: int, *, big: Sequence[int] = (), seed: int = 0) -> dict[str, bytes]:
    """`files` small files in a few sub-folders plus one file per size in `big`; relative path -> bytes."""
    content: dict[str, bytes] = {}
    for i in range(files):
        content[f"d{i % 7}/sub{i % 3}/f{i:05d}.txt"] = f"{seed}:{i}\n".encode() * (1 + i % 13)
    for n, size in enumerate(big):
        content[f"big/b{n}.bin"] = os.urandom(size)
    for rel, data in content.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return content
