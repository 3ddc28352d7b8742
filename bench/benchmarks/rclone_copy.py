"""rclone_copy: wall time of Debian's ``rclone copy`` of 1000 files of 1 KiB to localbox, batch mode sync.

rclone uploads every file as upload_session/start + append_v2 (data) + append_v2 (close), and commits them
with finish_batch_v2 in batches of ``--dropbox-batch-size`` (0 = ``--transfers``, i.e. 4 by default); in
sync mode each transfer waits for its batch. Two settings: the defaults (``--transfers 4``) and
``--transfers 16`` (batches of 16). A batch size above ``--transfers`` is slower in sync mode: the batch never
fills (every transfer waits for it), so each one waits out the 500 ms idle timeout (measured: 75 s for
``--transfers 16 --dropbox-batch-size 1000`` against 40 s for the defaults).
``localbox serve --tls`` listens on 443 inside a private network namespace (bench/rclone_netns.py), so
rclone talks to it directly, with no proxy in the path. Needs root, ``unshare`` and ``rclone`` (``apt-get
install -y rclone``); otherwise the benchmark is skipped with a note.
No baseline: the figure is the end-to-end time a user sees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.config import Config
from bench.stats import Recorder

FILES = 1000
FILE_SIZE = 1024
VARIANTS = [
    ("--transfers 4", []),
    ("--transfers 16", ["--transfers", "16"]),
]
def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a private network namespace with unshare)"
    for tool in ("rclone", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed" + (" (apt-get install -y rclone)" if tool == "rclone" else "")
    return None


def run(cfg: Config, rec: Recorder, workdir: Path) -> None:
    why = _missing()
    if why:
        rec.note(f"rclone_copy skipped: {why}")
        print(f"   rclone_copy skipped: {why}", flush=True)
        return
    version = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    rec.note(f"{version}; {FILES} files of {FILE_SIZE} B; --dropbox-batch-mode sync; median of rounds")
    src = workdir / "src"
    src.mkdir()
    for i in range(FILES):
        (src / f"f{i:04d}.txt").write_bytes(os.urandom(FILE_SIZE))
    config = {"workdir": str(workdir), "src": str(src), "rounds": cfg.rounds, "variants": VARIANTS}
    proc = subprocess.Popen(
        ["unshare", "--mount", "--net", sys.executable, "-m", "bench.rclone_netns", json.dumps(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        r = json.loads(line)
        if r["rc"] != 0 or r["files"] != FILES:
            rec.errors.append(f"rclone copy {r['label']}: exit {r['rc']}, {r['files']} files\n{r['stderr']}")
            continue
        rec.add(f"rclone copy {FILES} x 1 KiB, {r['label']}", r["seconds"], "s", False)
        rec.add(f"rclone copy files/s, {r['label']}", FILES / r["seconds"], "files/s")
        print(f"   rclone copy {FILES} x 1 KiB, {r['label']}: {r['seconds']:.2f} s", flush=True)
    if proc.wait() != 0:
        rec.errors.append(f"bench.rclone_netns exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
