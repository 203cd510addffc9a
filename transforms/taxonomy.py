"""Taxonomy roll-up: fine labels (e.g. YouTube-8M entities) to generic categories.

A :class:`Taxonomy` maps the model's fine labels (in model order) onto sorted
generic categories, e.g. the 25 YouTube-8M verticals of ``vocabulary.csv``. A
fine label may belong to no category (it is *unmapped*) or to several. Scores
roll up by ``max`` or noisy-OR (``1 - prod(1 - p)``); labels roll up by "any
member is positive". Pure Python + numpy, so it runs in Beam workers and tests
without TensorFlow.

Matching is by name with surrounding whitespace ignored (the real vocabulary has
``" Nova"``), and every fine class with a given name gets that name's categories
(duplicate names share them). A blank name identifies nothing: blank labels in a
roll-up are skipped and a blank fine label is never mapped.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
from collections.abc import Callable, Iterable, Sequence

import numpy as np

METHODS = ("max", "noisy_or")
DEFAULT_COLUMN = "Vertical1"


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """Fine labels, sorted categories, and the fine indices in each category.

    ``unknown_labels`` counts distinct roll-up labels the model does not know
    (they are ignored).
    """

    fine: tuple[str, ...]
    categories: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    unknown_labels: int = 0

    def __post_init__(self) -> None:
        if len(self.members) != len(self.categories):
            raise ValueError(
                f"Expected one member tuple per category. Received: "
                f"{len(self.members)} member tuples for {len(self.categories)} categories"
            )

    @classmethod
    def from_pairs(cls, fine_labels: Sequence[str], pairs: Iterable[tuple[str, str]]) -> Taxonomy:
        """Builds a taxonomy from ``(fine label, category)`` pairs.

        Pairs with a blank label are skipped; labels the model lacks are counted
        in ``unknown_labels``. Raises ``ValueError`` on a blank category or when
        no fine label gets a category.
        """
        fine = tuple(fine_labels)
        index: dict[str, list[int]] = {}
        for i, name in enumerate(fine):
            if name.strip():
                index.setdefault(name.strip(), []).append(i)
        grouped: dict[str, set[int]] = {}
        unknown: set[str] = set()
        for label, category in pairs:
            label = label.strip()
            if not label:
                continue
            category = (category or "").strip()
            if not category:
                raise ValueError(f"Empty category name for label {label!r}.")
            if label not in index:
                unknown.add(label)
                continue
            grouped.setdefault(category, set()).update(index[label])
        if not grouped:
            raise ValueError(
                f"The roll-up maps none of the model's {len(fine)} labels "
                f"({len(unknown)} unknown roll-up labels)."
            )
        categories = tuple(sorted(grouped))
        members = tuple(tuple(sorted(grouped[c])) for c in categories)
        return cls(fine, categories, members, unknown_labels=len(unknown))

    @functools.cached_property
    def matrix(self) -> np.ndarray:
        """Boolean membership matrix ``[len(fine), len(categories)]``."""
        out = np.zeros((len(self.fine), len(self.categories)), dtype=bool)
        for c, idx in enumerate(self.members):
            out[list(idx), c] = True
        return out

    @functools.cached_property
    def categories_by_label(self) -> dict[str, tuple[str, ...]]:
        """Fine label name to its sorted categories (mapped labels only)."""
        found: dict[str, set[str]] = {}
        for category, idx in zip(self.categories, self.members, strict=True):
            for i in idx:
                found.setdefault(self.fine[i], set()).add(category)
        return {name: tuple(sorted(cats)) for name, cats in found.items()}

    @property
    def unmapped(self) -> int:
        """Number of fine labels that belong to no category."""
        return int(np.count_nonzero(~self.matrix.any(axis=1)))


def _read_text(path: str, opener: Callable) -> str:
    """The file's text; ``opener(path, "rb")`` may return bytes or str."""
    with opener(path, "rb") as handle:
        data = handle.read()
    return data.decode("utf-8-sig") if isinstance(data, bytes) else data


def _pairs(header: list[str], rows: Iterable[list[str]], column: str, path: str):
    """``(label, category)`` pairs from either supported CSV layout."""
    lowered = [h.lower() for h in header]
    if "Name" in header:
        wanted = [c.strip() for c in column.split(",") if c.strip()]
        missing = [c for c in wanted if c not in header]
        if not wanted or missing:
            raise ValueError(
                f"Roll-up {path!r} lacks column(s) {missing or column!r}. Received: header {header}"
            )
        name, cols = header.index("Name"), [header.index(c) for c in wanted]
        index = header.index("Index") if "Index" in header else None

        def label(row: list[str]) -> str:  # a blank Name is class_<Index>, as the reader names it
            if row[name].strip() or index is None or len(row) <= index:
                return row[name].strip()
            return f"class_{row[index].strip()}"

        # In vocabulary.csv a blank vertical cell means "no (further) category".
        return [
            (label(row), row[c].strip())
            for row in rows
            for c in cols
            if len(row) > max(cols + [name]) and row[c].strip()
        ]
    if "label" in lowered and "category" in lowered:
        label, cat = lowered.index("label"), lowered.index("category")
        pairs = []
        for line, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(label, cat) or not row[cat].strip():
                raise ValueError(f"Empty category name in {path!r} line {line}. Received: {row}")
            pairs.append((row[label].strip(), row[cat].strip()))
        return pairs
    raise ValueError(
        f"Roll-up {path!r} needs columns Name and {column} (YouTube-8M vocabulary.csv) "
        f"or label,category. Received: header {header}"
    )


def read_rollup(
    path: str,
    fine_labels: Sequence[str],
    column: str = DEFAULT_COLUMN,
    opener: Callable = open,
) -> Taxonomy:
    """Reads a roll-up CSV into a :class:`Taxonomy` over ``fine_labels``.

    Two layouts: a YouTube-8M ``vocabulary.csv`` (header with ``Name`` and the
    category ``column``, or a comma list such as ``"Vertical1,Vertical2,Vertical3"``
    whose blank cells are skipped), or a ``label,category`` CSV with one pair per
    line (a label may repeat). ``opener(path, "rb")`` opens the file: ``open`` by
    default, ``tf.io.gfile.GFile`` or ``lambda p, _: FileSystems.open(p)`` for GCS.
    """
    reader = csv.reader(io.StringIO(_read_text(path, opener), newline=""))
    header = [h.strip() for h in next(reader, [])]
    return Taxonomy.from_pairs(fine_labels, _pairs(header, reader, column, path))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")


def _check_matrix(values: np.ndarray, taxonomy: Taxonomy, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != len(taxonomy.fine):
        raise ValueError(
            f"{what} must have shape [n, {len(taxonomy.fine)}]. Received: shape={values.shape}"
        )
    return values


def rollup_scores(scores: np.ndarray, taxonomy: Taxonomy, method: str = "max") -> np.ndarray:
    """Category scores ``[n, categories]`` from fine scores ``[n, fine]``.

    ``max`` takes the best member score; ``noisy_or`` is ``1 - prod(1 - p_i)``
    over members (scores are assumed to be probabilities). A category without
    members scores 0.
    """
    _check_method(method)
    scores = _check_matrix(scores, taxonomy, "scores")
    dtype = np.result_type(scores.dtype, np.float32)
    out = np.zeros((scores.shape[0], len(taxonomy.categories)), dtype=dtype)
    for c, idx in enumerate(taxonomy.members):
        if not idx:
            continue
        part = scores[:, list(idx)].astype(dtype, copy=False)
        out[:, c] = part.max(axis=1) if method == "max" else 1.0 - np.prod(1.0 - part, axis=1)
    return out


def rollup_labels(labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Multi-hot categories ``[n, categories]``: positive if any member is.

    The result has the dtype of ``labels``.
    """
    labels = _check_matrix(labels, taxonomy, "labels")
    hits = (labels != 0).astype(np.float32) @ taxonomy.matrix.astype(np.float32)
    return (hits > 0).astype(labels.dtype)


def rollup_listed(
    listed: Iterable[tuple[str, float]], taxonomy: Taxonomy, method: str = "max"
) -> list[tuple[str, float]]:
    """Category scores from a row's listed ``(label, score)`` pairs, best first.

    Only categories with a listed member appear; ties sort by name. Unlisted
    members count as score 0, which is exact for ``max`` when the listed set is
    the top-k (the best member is listed) and a lower bound for ``noisy_or``.
    Unknown labels are ignored; a label listed twice keeps its highest score.
    """
    _check_method(method)
    best: dict[str, float] = {}
    for name, score in listed:
        if name in taxonomy.categories_by_label:
            best[name] = max(float(score), best.get(name, float("-inf")))
    agg: dict[str, float] = {}  # max score, or prod(1 - p) for noisy-OR
    for name, score in best.items():
        for category in taxonomy.categories_by_label[name]:
            if method == "max":
                agg[category] = max(score, agg.get(category, float("-inf")))
            else:
                agg[category] = agg.get(category, 1.0) * (1.0 - score)
    if method == "noisy_or":
        agg = {category: 1.0 - rest for category, rest in agg.items()}
    return sorted(agg.items(), key=lambda item: (-item[1], item[0]))


def rollup_names(names: Iterable[str], taxonomy: Taxonomy) -> list[str]:
    """Sorted categories that any of ``names`` (e.g. a row's predictions) belongs to."""
    found = {c for name in names for c in taxonomy.categories_by_label.get(name, ())}
    return sorted(found)
