"""One nightly run at a time per state dir: a lock object created only if absent.

``<state-dir>/LOCK`` holds the run id, host, process id and an expiry. It is
created atomically: on a local (or mounted) file system by hard-linking a fully
written temp file (``link`` fails if the name exists), on Cloud Storage with a
generation precondition (``if_generation_match=0``). A second run fails with a
one-line error naming the holder. A stale lock is taken over: one whose expiry
has passed, or one whose launcher waited for its job on this host and is gone
(killed). It is removed under a precondition (a rename on local disks,
``if_generation_match`` on GCS) so that two runs cannot both take it. Other
file systems have no atomic create-if-absent in Beam's API; there the lock is
written and read back, which narrows the race but does not close it (logged).

The lock is released by the run's publish step (inside the pipeline) or, when
the launcher sees the run fail, by the launcher; only its holder removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import socket
import uuid

from apache_beam.io.filesystems import FileSystems

from transforms.errors import JobError

LOCK_FILE = "LOCK"


@dataclasses.dataclass(frozen=True)
class Lock:
    """What ``LOCK`` holds: who took it, and until when."""

    run_id: str
    host: str
    pid: int
    expires_at: str  # ISO 8601, UTC
    waits: bool = True  # the launcher waits for the job (so the job lives only as long)

    @classmethod
    def new(cls, run_id: str, expiry_hours: float, waits: bool = True) -> Lock:
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=expiry_hours)
        return cls(run_id, socket.gethostname(), os.getpid(), expires.isoformat(), waits)

    @classmethod
    def parse(cls, data: bytes) -> Lock | None:
        try:
            return cls(**json.loads(data.decode("utf-8")))
        except (ValueError, TypeError):
            return None  # unreadable: treated as expired

    def stale(self) -> bool:
        """Past its expiry, or held by a waiting launcher on this host that has died
        (killed runs free the state dir at once; a detached job's lock waits for expiry)."""
        now = datetime.datetime.now(datetime.UTC)
        if datetime.datetime.fromisoformat(self.expires_at) <= now:
            return True
        return self.waits and self.host == socket.gethostname() and not _alive(self.pid)

    def encode(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode("utf-8")

    def describe(self) -> str:
        return f"run {self.run_id} on {self.host} (pid {self.pid}), until {self.expires_at}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def acquire(state_dir: str, run_id: str, expiry_hours: float, waits: bool = True) -> None:
    """Takes ``state_dir``'s lock for ``run_id`` or raises a one-line :class:`JobError`."""
    lock, path = Lock.new(run_id, expiry_hours, waits), FileSystems.join(state_dir, LOCK_FILE)
    store = _store(path)
    for _ in range(3):  # create; else take over a stale lock and create again
        if store.create(lock.encode()):
            return
        holder, token = store.read()
        if holder is not None and not holder.stale():
            raise JobError(
                f"state dir {state_dir!r} is locked by nightly {holder.describe()}; "
                f"another run is in progress (or delete {path} if it is known dead)"
            )
        store.remove_if(token)
    raise JobError(f"could not take the lock {path}: it keeps changing hands")


def release(state_dir: str, run_id: str) -> None:
    """Removes the lock if ``run_id`` holds it (idempotent)."""
    store = _store(FileSystems.join(state_dir, LOCK_FILE))
    holder, token = store.read()
    if holder is not None and holder.run_id == run_id:
        store.remove_if(token)


def _store(path: str):
    if path.startswith("gs://"):
        return _GcsStore(path)
    if "://" not in path:
        return _LocalStore(path)
    return _FileSystemsStore(path)


class _LocalStore:
    def __init__(self, path: str):
        self.path = path

    def create(self, data: bytes) -> bool:
        temp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
        try:
            os.link(temp, self.path)  # atomic; fails if the lock exists
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(temp)

    def read(self):
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None, None
        return Lock.parse(data), data

    def remove_if(self, token) -> None:
        """Removes the lock if it still holds ``token`` (its content)."""
        aside = f"{self.path}.{uuid.uuid4().hex}.old"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self.path, aside)  # only one remover gets it
            with open(aside, "rb") as handle:
                if handle.read() != token:  # not the lock we meant: put it back if we can
                    with contextlib.suppress(FileExistsError):
                        os.link(aside, self.path)
            os.remove(aside)


class _GcsStore:
    def __init__(self, path: str):
        from google.cloud import storage

        bucket, _, name = path[len("gs://") :].partition("/")
        self.blob = storage.Client().bucket(bucket).blob(name)

    def create(self, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self.blob.upload_from_string(data, if_generation_match=0)
            return True
        except PreconditionFailed:
            return False

    def read(self):
        from google.api_core.exceptions import NotFound

        try:
            self.blob.reload()
            generation = self.blob.generation
            data = self.blob.download_as_bytes(if_generation_match=generation)
        except NotFound:
            return None, None
        return Lock.parse(data), generation

    def remove_if(self, token) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with contextlib.suppress(NotFound, PreconditionFailed):
            self.blob.delete(if_generation_match=token)


class _FileSystemsStore:
    """Any other Beam file system: write, then read back (not atomic; logged)."""

    def __init__(self, path: str):
        self.path = path

    def create(self, data: bytes) -> bool:
        logging.warning("%s: no atomic create on this file system; the lock narrows, but "
                        "does not close, the race between concurrent runs", self.path)  # fmt: skip
        if FileSystems.exists(self.path):
            return False
        with FileSystems.create(self.path) as handle:
            handle.write(data)
        return self.read()[1] == data

    def read(self):
        if not FileSystems.exists(self.path):
            return None, None
        with FileSystems.open(self.path) as handle:
            data = handle.read()
        return Lock.parse(data), data

    def remove_if(self, token) -> None:
        if self.read()[1] == token:
            FileSystems.delete([self.path])
