"""Hyperparameter fields that carry their own help text.

A frozen settings dataclass (``HParams``, ``AVParams``, ``AVTrainParams``)
declares each field with :func:`param`, so its default and its one-line help
are written once, next to each other; the CLI turns every field into a flag
with that help (``pipelines.components.flags``). It lives at the bottom of the
dependency graph so that every layer can declare such fields.
"""

from __future__ import annotations

import dataclasses


def param(default, help: str):
    """A dataclass field with ``default`` and its flag's ``help`` (``metadata["help"]``)."""
    return dataclasses.field(default=default, metadata={"help": help})
