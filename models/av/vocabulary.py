"""The YouTube-8M class vocabulary: ``vocabulary.csv`` to class names and verticals.

The file needs ``Index`` and ``Name`` columns (``Vertical1`` is optional, others
are ignored). Class ``i`` is the row with ``Index == i``; gaps and blank names
become ``class_{i}``, and a name shared by several classes is made unique.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Class names (unique) and first verticals, indexed by class index."""

    names: tuple[str, ...]
    verticals: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)


def read_vocabulary(path: str) -> Vocabulary:
    """Reads a YT-8M ``vocabulary.csv`` (local or GCS).

    Missing indexes and empty names become ``class_{i}``; a name shared by
    several classes becomes ``"Name (index)"`` for each of them.
    """
    with tf.io.gfile.GFile(path, "r") as f:
        reader = csv.DictReader(io.StringIO(f.read()))
        missing = {"Index", "Name"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path} is not a YT-8M vocabulary: no column(s) {sorted(missing)}. "
                f"Received columns: {reader.fieldnames}"
            )
        rows = {}
        for line, row in enumerate(reader, start=2):
            try:
                index = int(row["Index"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: bad Index {row['Index']!r}") from None
            if index < 0 or index in rows:
                raise ValueError(f"{path}:{line}: negative or repeated Index {index}")
            rows[index] = ((row["Name"] or "").strip(), (row.get("Vertical1") or "").strip())
    size = max(rows, default=-1) + 1
    names = [rows.get(i, ("", ""))[0] or f"class_{i}" for i in range(size)]
    verticals = tuple(rows.get(i, ("", ""))[1] for i in range(size))
    return Vocabulary(_unique_names(names), verticals)


def _unique_names(names: list[str]) -> tuple[str, ...]:
    counts = collections.Counter(names)
    out, taken = [], set()
    for i, name in enumerate(names):
        name = f"{name} ({i})" if counts[name] > 1 else name
        while name in taken:  # "A (3)" may itself be a real name
            name = f"{name} ({i})"
        taken.add(name)
        out.append(name)
    return tuple(out)
