"""The inside of the ``rclone_copy`` benchmark: runs in a private mount + network namespace (``unshare -mn``).

There, 127.0.0.1:443 and /etc/hosts are ours alone: the Dropbox host names map to loopback in a
bind-mounted copy of /etc/hosts, ``localbox serve --tls`` listens on 443 (its own CA), and Debian's
rclone reaches it unchanged (rclone has no option for the API host). Nothing outside the namespace is
touched, so it cannot collide with other servers on the machine. Prints one JSON object per timed copy.

    unshare --mount --net python -m bench.rclone_netns CONFIG_JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import localbox

HOSTS = "127.0.0.1 localhost\n127.0.0.1 api.dropboxapi.com content.dropboxapi.com notify.dropboxapi.com\n"


def rclone_env(token: str, ca_file: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(
        RCLONE_CONFIG="/dev/null",
        RCLONE_CONFIG_DBX_TYPE="dropbox",
        RCLONE_CONFIG_DBX_TOKEN=json.dumps(
            {"access_token": token, "token_type": "bearer", "expiry": "0001-01-01T00:00:00Z"}
        ),
        RCLONE_CA_CERT=ca_file,
        RCLONE_CACHE_DIR=str(home / "cache"),
        HOME=str(home),
    )
    return env


def main(config: dict[str, Any]) -> None:
    workdir = Path(config["workdir"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = workdir / "hosts"
    hosts.write_text(HOSTS)
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    with localbox(workdir, serve_args=["--tls"], port=443) as lb:
        ca = subprocess.run(
            [sys.executable, "-m", "localbox", "ca", "--data-dir", str(lb.data_dir)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        env = rclone_env(lb.token, ca, workdir / "rclone-home")
        base = ["rclone", "--retries", "1", "--dropbox-batch-mode", "sync"]
        for round_id in range(config["rounds"]):
            variants = config["variants"] if round_id % 2 == 0 else config["variants"][::-1]
            for label, extra in variants:
                dest = f"dbx:bench/r{round_id}/{label.replace(' ', '_').replace('-', '')}"
                start = time.perf_counter()
                out = subprocess.run(
                    [*base, *extra, "copy", config["src"], dest], env=env, capture_output=True, text=True
                )
                seconds = time.perf_counter() - start
                listed = subprocess.run(["rclone", "lsf", dest], env=env, capture_output=True, text=True)
                print(
                    json.dumps(
                        {
                            "label": label,
                            "seconds": seconds,
                            "rc": out.returncode,
                            "files": len(listed.stdout.splitlines()),
                            "stderr": out.stderr[-2000:],
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
