"""Shared by the benchmark scripts: the raw texts the peers (scikit-learn,
fastText) see, read straight from a generated JSONL.gz catalog."""

from __future__ import annotations

import gzip
import json


def catalog_rows(path: str):
    """``(text, categories)`` per JSON-object line: title + description + tags."""
    with gzip.open(path, "rb") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                tags = row.get("tags") or []
                tags = tags if isinstance(tags, list) else [tags]
                text = " ".join([row.get("title") or "", row.get("description") or ""] + tags)
                cats = row.get("categories") or []
                yield " ".join(text.split()), cats if isinstance(cats, list) else [cats]
