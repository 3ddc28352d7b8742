"""The README's SDK example runs as written against a real server (only the port and token differ)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import LocalServer

pytestmark = pytest.mark.conformance

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_plain_http_example(server: LocalServer) -> None:
    example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert "127.0.0.1:8080" in example and "<token>" in example
    token = server.new_account().token
    code = example.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}").replace("<token>", token)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "success" in out.stdout and "path_display='/docs/hello.txt'" in out.stdout
    assert "size=11" in out.stdout
