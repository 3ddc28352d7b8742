"""Progress bars (rich, on stderr) and the end-of-run summary in text or JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO


class Reporter(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def file_done(self) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


class Quiet:
    """--quiet and --json: nothing while running."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


def _columns() -> list[Any]:
    """Columns that show bytes (size, rate) for the bytes bar and counts for the files bar."""
    from rich.filesize import decimal
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Amount(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.fields.get("unit") == "files":
                return Text(f"{int(task.completed)}/{int(task.total or 0)} files", style="progress.download")
            return Text(f"{decimal(int(task.completed))}/{decimal(int(task.total or 0))}", style="progress.download")

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None:
                return Text("?", style="progress.data.speed")
            if task.fields.get("unit") == "files":
                return Text(f"{speed:.0f} files/s", style="progress.data.speed")
            return Text(f"{decimal(int(speed))}/s", style="progress.data.speed")

    return [Amount(), Rate()]


class Bars:
    """Two bars: bytes (amount, rate, ETA) and files (committed / total, files per second)."""

    def __init__(self, verb: str, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(file=stream or sys.stderr)
        amount, rate = _columns()
        self.progress = Progress(
            TextColumn("{task.description:<9}"), BarColumn(), amount, rate, TimeRemainingColumn(),
            TimeElapsedColumn(), console=self.console, transient=False,
        )
        self.verb = verb
        self.bytes_task: Any = None
        self.files_task: Any = None

    def start(self, files: int, total_bytes: int) -> None:
        self.progress.start()
        self.bytes_task = self.progress.add_task(self.verb, total=total_bytes, unit="bytes")
        self.files_task = self.progress.add_task("files", total=files, unit="files")

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.bytes_task, nbytes)

    def file_done(self) -> None:
        self.progress.advance(self.files_task, 1)

    def note(self, text: str) -> None:
        self.progress.console.print(f"[dim]{text}[/dim]", highlight=False)

    def stop(self) -> None:
        self.progress.stop()


@dataclass(slots=True)
class Summary:
    """What a run did.  `failures` maps a remote (or local) path to its Dropbox error tag."""

    verb: str
    files: int = 0  # transferred
    skipped: int = 0  # already there with the same content hash
    bytes: int = 0
    seconds: float = 0.0
    batches: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"command": self.verb, "files": self.files, "skipped": self.skipped, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "mb_per_s": round(self.rate, 2), "batches": self.batches,
                "failures": [{"path": p, "error": t} for p, t in sorted(self.failures.items())],
                "retries": self.retries, "interrupted": self.interrupted}

    def render(self, as_json: bool, out: TextIO) -> None:
        if as_json:
            print(json.dumps(self.to_json()), file=out)
            return
        line = (f"{self.verb}: {self.files} files, {_size(self.bytes)} in {self.seconds:.1f} s "
                f"({self.rate:.1f} MB/s)")
        if self.skipped:
            line += f"; {self.skipped} unchanged (same content hash) skipped"
        if self.batches:
            line += f"; {self.batches} commit batches"
        print(line, file=out)
        if self.retries:
            print("retries: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.retries.items())), file=out)
        if self.failures:
            print(f"{len(self.failures)} failed:", file=out)
            for path, tag in sorted(self.failures.items())[:50]:
                print(f"  {path}: {tag}", file=out)
            if len(self.failures) > 50:
                print(f"  ... and {len(self.failures) - 50} more (--json lists them all)", file=out)
        if self.interrupted:
            print("interrupted: run the same command with --resume to finish", file=out)


@contextlib.asynccontextmanager
async def accounted_run(summary: Summary, reporter: Reporter,
                        retries: Mapping[str, int]) -> AsyncIterator[set[asyncio.Task[None]]]:
    """The frame shared by upload and download runs.  The body registers its tasks in the yielded set.
    A cancellation (Ctrl-C) stops those tasks and ends the run as `interrupted` instead of propagating,
    so that the caller still prints what was done and how to resume; in every case the progress display
    stops and the summary gets the elapsed time and the retries counted so far."""
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    try:
        yield tasks
    except asyncio.CancelledError:
        summary.interrupted = True
        pending = list(tasks)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    finally:
        reporter.stop()
        summary.seconds = time.monotonic() - started
        summary.retries = dict(retries)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover
