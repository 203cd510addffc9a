"""What a run says while it runs: its stages, and a progress line on long runs.

Both go to stderr (stdout keeps the one summary line), and are on by default;
library logs stay behind ``--verbose``. ``Progress`` is a pass-through step that
counts the elements going by; each worker process prints, at most every
``PROGRESS_SECONDS``, one line with every point's count, the rate of the last
point and the elapsed time:

    predict: 51,200 read · 50,944 tagged · 8,420 videos/s · 0:06

On a local runner that is the launcher's console; on a cluster, the workers' logs.
"""

from __future__ import annotations

import sys
import threading
import time
import typing

import apache_beam as beam

PROGRESS_SECONDS = 10.0  # a run shorter than this prints no progress line
_FLUSH_EVERY = 256  # elements counted locally before the shared counts are updated

_lock = threading.Lock()
_state: dict = {"counts": {}, "start": None, "printed": None}


def stage(job: str, message: str) -> None:
    """One stage line on stderr: ``"<job>: <message>"``."""
    print(f"{job}: {message}", file=sys.stderr, flush=True)


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(job: str, counts: dict[str, int], last: str, seconds: float) -> str:
    """The line for ``counts`` (in the order the points were first seen)."""
    parts = [f"{count:,} {what}" for what, count in counts.items()]
    rate = counts.get(last, 0) / seconds if seconds > 0 else 0.0
    return f"{job}: {' · '.join(parts)} · {rate:,.0f} videos/s · {_elapsed(seconds)}"


def _add(job: str, what: str, count: int, now: float) -> str | None:
    """Adds ``count`` to the process's shared counts; the line to print, if one is due."""
    with _lock:
        counts = _state["counts"].setdefault(job, {})
        counts[what] = counts.get(what, 0) + count
        if _state["start"] is None:
            _state["start"] = _state["printed"] = now
        if now - _state["printed"] < PROGRESS_SECONDS:
            return None
        _state["printed"] = now
        return progress_line(job, dict(counts), what, now - _state["start"])


def begin() -> None:
    """A run starts in this process: counts cleared, elapsed time from now."""
    now = time.monotonic()
    with _lock:
        _state.update(counts={}, start=now, printed=now)


class _CountFn(beam.DoFn):
    def __init__(self, job: str, what: str):
        self._job, self._what = job, what

    def start_bundle(self):
        self._pending = 0

    def process(self, element: typing.Any) -> typing.Iterator[typing.Any]:
        self._pending += 1
        if self._pending >= _FLUSH_EVERY:
            self._flush()
        yield element

    def finish_bundle(self):
        if self._pending:
            self._flush()

    def _flush(self):
        line = _add(self._job, self._what, self._pending, time.monotonic())
        self._pending = 0
        if line is not None:
            print(line, file=sys.stderr, flush=True)


class Progress(beam.PTransform):
    """Passes its input through, counting it as ``what`` for ``job``'s progress line."""

    def __init__(self, job: str, what: str):
        super().__init__()
        self._job, self._what = job, what

    def expand(self, pcoll):
        return pcoll | "Count" >> beam.ParDo(_CountFn(self._job, self._what))
