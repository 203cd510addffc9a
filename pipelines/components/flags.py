"""Command-line flags from a frozen settings dataclass, and their values back.

Each field declared with ``transforms.params.param`` becomes ``--field-name``
with the field's default, its type (``true``/``false`` for a bool) and the
help attached to the field, so a setting and its help are written once.
"""

from __future__ import annotations

import argparse
import dataclasses


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls``: ``--name`` (``_`` -> ``-``), typed by its default."""
    for field in dataclasses.fields(cls):
        flag, kind = "--" + field.name.replace("_", "-"), type(field.default)
        parser.add_argument(
            flag,
            type=boolean if kind is bool else kind,
            default=field.default,
            help=field.metadata["help"],
        )


def pop_dataclass_args(args: dict, cls: type) -> dict:
    """Removes the values of ``cls``'s fields from parsed ``vars(args)``; returns them."""
    return {field.name: args.pop(field.name) for field in dataclasses.fields(cls)}


def boolean(text: str) -> bool:
    """A bool flag's value: true/false, 1/0 or yes/no (any case)."""
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")
