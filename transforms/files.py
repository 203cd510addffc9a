"""Output directories every layer prepares the same way (on any Beam file system)."""

from __future__ import annotations

import contextlib
import uuid

from apache_beam.io.filesystems import FileSystems

from transforms.errors import JobError


def prepare_output_dir(output_dir: str, owned: tuple[str, ...] = ()) -> None:
    """Checks ``output_dir`` is writable and removes what a previous run of
    this job left there (only the ``owned`` entries)."""
    probe = FileSystems.join(output_dir, f".write-probe-{uuid.uuid4().hex}")
    with contextlib.suppress(OSError):  # exists already, or not creatable: the probe tells
        FileSystems.mkdirs(output_dir)
    try:
        with FileSystems.create(probe) as handle:
            handle.write(b"ok")
        FileSystems.delete([probe])
    except Exception as err:  # noqa: BLE001
        raise JobError(f"output directory {output_dir!r} is not writable: {err}") from None
    for name in owned:
        remove(FileSystems.join(output_dir, name))


def remove(path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])
