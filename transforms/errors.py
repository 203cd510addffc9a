"""Fatal, user-facing errors, importable from every layer.

Fatal problems (missing input, unwritable output, mismatched artifacts) raise
:class:`JobError`, which the CLI prints as one line and exits non-zero: users
see the cause, not a traceback. It lives at the bottom of the dependency
graph (``pipelines`` -> ``models`` -> ``transforms``) so that the trainers
raise it without importing a job module.
"""

from __future__ import annotations


class JobError(RuntimeError):
    """A fatal, user-facing problem; its message is one line."""


def require(value, message: str) -> None:
    if not value:
        raise JobError(message)
