"""Launcher helpers shared by every job: fail-fast checks and config files.

Fatal problems (missing input, unwritable output, mismatched artifacts) raise
:class:`JobError`, which the CLI prints as one line and exits non-zero: users
see the cause, not a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import typing

from apache_beam.io.filesystems import FileSystems

from transforms.errors import JobError, require
from transforms.files import prepare_output_dir, remove

# defined lower down (transforms), re-exported for the jobs
__all__ = ["JobError", "prepare_output_dir", "remove", "require"]


def require_input(pattern: str) -> list[str]:
    """The files matching ``pattern``; a clear error if there are none."""
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except Exception as err:  # noqa: BLE001 - any filesystem failure is fatal here
        raise JobError(f"cannot read input {pattern!r}: {err}".splitlines()[0]) from None
    if not matches:
        raise JobError(f"no input file matches {pattern!r}")
    return sorted(m.path for m in matches)


def to_jsonable(config) -> dict:
    """A frozen config dataclass (nested) as a JSON-ready dict."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_jsonable(cls, payload: dict):
    """Rebuilds a (nested) frozen config dataclass written by :func:`to_jsonable`."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in payload:
            continue
        value = payload[field.name]
        field_type = _resolve(cls, field)
        if dataclasses.is_dataclass(field_type):
            value = from_jsonable(field_type, value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[field.name] = value
    return cls(**kwargs)


def _resolve(cls, field):
    return typing.get_type_hints(cls).get(field.name, field.type)
