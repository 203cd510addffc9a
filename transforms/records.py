"""Catalog records: mapping any source schema onto the canonical fields.

Pure functions shared by every pipeline that reads a catalog (preprocess,
predict, nightly, evaluate). A source row (a JSON object or a CSV row) becomes
a canonical record, a plain ``dict`` with these keys::

    video_id: str            required, non-empty
    title, description: str  may be empty
    tags, categories: list   of non-empty strings, order kept, duplicates removed
    split: str | None        "train" | "eval" | "test" when the source says so
    updated_at: float | None seconds since the epoch, for deduplication
    group_key: str           what the hash split groups on (default: video_id)
    mean_rgb, mean_audio     optional audio/visual features: lists of floats
                             (JSON arrays, or numbers separated by spaces,
                             commas or ``|``), present only when the row has them

Anything that cannot become such a record raises :class:`RecordError` with a
stable ``reason`` so the pipeline can dead-letter and count it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Mapping

import orjson

AV_FIELDS = ("mean_rgb", "mean_audio")
AV_FLAG = "has_av"  # 1.0 when a record carries audio/visual features
CANONICAL_FIELDS = (
    "video_id", "title", "description", "tags", "categories", "split", "updated_at", *AV_FIELDS
)  # fmt: skip
TEXT_FIELDS = ("title", "description")
LIST_FIELDS = ("tags", "categories")
SPLITS = ("train", "eval", "test")
_SPLIT_ALIASES = {"validation": "eval", "valid": "eval", "val": "eval", "dev": "eval"}
_NULL_LIST_ITEMS = frozenset({"", "[none]", "none", "null", "nan"})


class RecordError(ValueError):
    """A record that cannot be used; ``reason`` is a stable, countable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class RecordSchema:
    """How a source schema maps onto canonical fields.

    Attributes:
      field_map: ``(canonical, source_column)`` pairs; unmapped canonical fields
        are read from the column of the same name.
      list_separators: ``(canonical, separator)`` pairs used when a list field
        arrives as a delimited string.
      label_map: ``(raw_label, name)`` pairs applied to categories (e.g. the
        YouTube category id "22" to "People & Blogs"). Unmapped labels are kept.
      updated_at_format: a ``strptime`` format for ``updated_at``; without it,
        epoch seconds or ISO 8601 are accepted.
      group_key: source column the hash split groups on; default ``video_id``.
      max_field_chars: a text or tag field longer than this is dead-lettered.
    """

    field_map: tuple[tuple[str, str], ...] = ()
    list_separators: tuple[tuple[str, str], ...] = (("tags", "|"), ("categories", "|"))
    label_map: tuple[tuple[str, str], ...] = ()
    updated_at_format: str | None = None
    group_key: str | None = None
    max_field_chars: int = 100_000

    def __post_init__(self) -> None:
        for canonical, _ in self.field_map + self.list_separators:
            if canonical not in CANONICAL_FIELDS:
                raise ValueError(
                    f"Unknown canonical field; expected one of {CANONICAL_FIELDS}. "
                    f"Received: field={canonical!r}"
                )
        for canonical, _ in self.list_separators:
            if canonical not in LIST_FIELDS:
                raise ValueError(
                    f"Only {LIST_FIELDS} take a list separator. Received: field={canonical!r}"
                )
        if self.max_field_chars < 1:
            raise ValueError(f"max_field_chars must be >= 1. Received: {self.max_field_chars}")

    def source(self, canonical: str) -> str:
        """The source column that holds ``canonical``."""
        return dict(self.field_map).get(canonical, canonical)

    def separator(self, canonical: str) -> str:
        return dict(self.list_separators).get(canonical, "|")

    @classmethod
    def from_flags(
        cls,
        fields: list[str] | None = None,
        separators: list[str] | None = None,
        label_map: Mapping[str, str] | None = None,
        **kwargs,
    ) -> RecordSchema:
        """Builds a schema from ``canonical=source`` style command-line flags."""
        seps = dict(cls.list_separators)
        seps.update(_parse_pairs(separators or [], "--list-separator"))
        return cls(
            field_map=tuple(_parse_pairs(fields or [], "--field").items()),
            list_separators=tuple(sorted(seps.items())),
            label_map=tuple(sorted((label_map or {}).items())),
            **kwargs,
        )


def _parse_pairs(flags: list[str], flag_name: str) -> dict[str, str]:
    pairs = {}
    for flag in flags:
        key, sep, value = flag.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag_name} expects KEY=VALUE. Received: {flag!r}")
        pairs[key.strip()] = value if flag_name == "--list-separator" else value.strip()
    return pairs


def parse_label_map(text: str) -> dict[str, str]:
    """Parses a label map: a JSON object ``{raw: name}`` or a YouTube
    ``videoCategoryListResponse`` (``items[].id`` to ``items[].snippet.title``)."""
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return {str(item["id"]): str(item["snippet"]["title"]) for item in data["items"]}
    if isinstance(data, dict) and all(not isinstance(v, dict | list) for v in data.values()):
        return {str(k): str(v) for k, v in data.items()}
    raise ValueError("label map must be a JSON object {raw: name} or a YouTube category list")


def decode_utf8(raw: bytes) -> str:
    """Strict UTF-8 decoding; bad bytes are a record error, never silently replaced."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError("bad_utf8", f"invalid byte at offset {err.start}") from None


def parse_json_object(line: str) -> dict:
    """Parses one JSONL line that must hold a JSON object (orjson: strict RFC 8259,
    so NaN, Infinity and integers beyond 64 bits are malformed too)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise RecordError("malformed_json", err.msg) from None
    if not isinstance(obj, dict):
        raise RecordError("not_an_object", type(obj).__name__)
    return obj


def to_canonical(row: Mapping, schema: RecordSchema) -> dict:
    """Maps one source row onto a canonical record (see the module docstring)."""
    video_id = _scalar(row.get(schema.source("video_id")), "video_id").strip()
    if not video_id:
        raise RecordError("missing_video_id", f"column {schema.source('video_id')!r}")
    record = {"video_id": video_id}
    for name in TEXT_FIELDS:
        record[name] = _checked_text(row.get(schema.source(name)), name, schema)
    for name in LIST_FIELDS:
        items = _split_list(row.get(schema.source(name)), schema.separator(name), name)
        for item in items:
            _check_size(item, name, schema)
        record[name] = items
    if schema.label_map:
        labels = dict(schema.label_map)
        record["categories"] = _unique([labels.get(c, c) for c in record["categories"]])
    record["split"] = _split_name(row.get(schema.source("split")))
    record["updated_at"] = parse_timestamp(
        row.get(schema.source("updated_at")), schema.updated_at_format
    )
    for name in AV_FIELDS:
        vector = parse_vector(row.get(schema.source(name)), name)
        if vector is not None:
            record[name] = vector
    group_column = schema.group_key or schema.source("video_id")
    record["group_key"] = _scalar(row.get(group_column), group_column).strip() or video_id
    return record


def parse_vector(value, name: str) -> list[float] | None:
    """An audio/visual feature vector: ``None`` when absent or empty, else finite
    floats (a ``bad_feature`` RecordError otherwise)."""
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list) else str(value).replace("|", " ").replace(",", " ")
    items = items if isinstance(items, list) else items.split()
    try:
        vector = [float(item) for item in items]
    except (TypeError, ValueError):
        raise RecordError("bad_feature", f"{name} holds a non-number") from None
    if not all(math.isfinite(x) for x in vector):
        raise RecordError("bad_feature", f"{name} holds NaN or infinity")
    return vector


def _scalar(value, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        raise RecordError("bad_field_type", f"{name} is {type(value).__name__}")
    return str(value)


def _checked_text(value, name: str, schema: RecordSchema) -> str:
    return _check_size(_scalar(value, name), name, schema)


def _check_size(text: str, name: str, schema: RecordSchema) -> str:
    if len(text) > schema.max_field_chars:
        raise RecordError("oversized_field", f"{name} has {len(text)} chars")
    return text


def _split_list(value, separator: str, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        items = [_scalar(v, name) for v in value]
    else:
        items = _scalar(value, name).split(separator)
    return _unique([item.strip().strip('"').strip() for item in items])


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item.lower() not in _NULL_LIST_ITEMS:
            seen.setdefault(item, None)
    return list(seen)


def _split_name(value) -> str | None:
    name = _scalar(value, "split").strip().lower()
    if not name:
        return None
    name = _SPLIT_ALIASES.get(name, name)
    if name not in SPLITS:
        raise RecordError("bad_split", f"{name!r} is not one of {SPLITS}")
    return name


def parse_timestamp(value, fmt: str | None = None) -> float | None:
    """``updated_at`` as epoch seconds: a number, ISO 8601, or ``fmt``."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _scalar(value, "updated_at").strip()
    try:
        if fmt:
            parsed = datetime.datetime.strptime(text, fmt)
        else:
            try:
                return float(text)
            except ValueError:
                parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise RecordError("bad_updated_at", repr(text[:64])) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()
