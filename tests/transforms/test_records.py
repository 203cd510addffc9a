"""Canonical records from JSON objects and CSV rows, incl. Netflix/YouTube quirks."""

from __future__ import annotations

import json

import pytest

from transforms.records import (
    RecordError,
    RecordSchema,
    decode_utf8,
    parse_json_object,
    parse_label_map,
    parse_timestamp,
    parse_vector,
    to_canonical,
)

NETFLIX = RecordSchema.from_flags(
    fields=["video_id=show_id", "categories=listed_in"], separators=["categories=,"]
)


def test_canonical_record_from_json_object():
    row = {
        "video_id": " v1 ",
        "title": "Hello",
        "tags": ["a", "b", "a", " ", "[none]"],
        "categories": "Music|Comedy",
        "split": "Validation",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    assert to_canonical(row, RecordSchema()) == {
        "video_id": "v1",
        "title": "Hello",
        "description": "",
        "tags": ["a", "b"],
        "categories": ["Music", "Comedy"],
        "split": "eval",
        "updated_at": 1767312000.0,
        "group_key": "v1",
    }


def test_netflix_mapping_splits_genres_on_commas():
    row = {
        "show_id": "s2",
        "title": "Blood & Water",
        "listed_in": "International TV Shows, TV Dramas, TV Mysteries",
        "description": "After crossing paths at a party, a Cape Town teen sets out.",
    }
    record = to_canonical(row, NETFLIX)
    assert record["video_id"] == "s2"
    assert record["categories"] == ["International TV Shows", "TV Dramas", "TV Mysteries"]


def test_youtube_tags_label_map_and_trending_date():
    label_map = parse_label_map(
        json.dumps({"items": [{"id": "22", "snippet": {"title": "People & Blogs"}}]})
    )
    schema = RecordSchema.from_flags(
        fields=["categories=category_id", "updated_at=trending_date"],
        label_map=label_map,
        updated_at_format="%y.%d.%m",
        group_key="channel_title",
    )
    row = {
        "video_id": "2kyS6SvSYSE",
        "trending_date": "17.14.11",
        "channel_title": "CaseyNeistat",
        "category_id": "22",
        "tags": '"SHANtell martin"|"casey neistat"',
        "title": "WE WANT TO TALK ABOUT OUR MARRIAGE",
    }
    record = to_canonical(row, schema)
    assert record["tags"] == ["SHANtell martin", "casey neistat"]
    assert record["categories"] == ["People & Blogs"]
    assert record["updated_at"] == 1510617600.0  # 2017-11-14 00:00 UTC
    assert record["group_key"] == "CaseyNeistat"
    row["tags"] = "[none]"
    assert to_canonical(row, schema)["tags"] == []


def test_unmapped_label_is_kept_and_plain_label_map():
    schema = RecordSchema.from_flags(label_map=parse_label_map('{"1": "Film"}'))
    assert to_canonical({"video_id": "x", "categories": ["1", "99"]}, schema)["categories"] == [
        "Film",
        "99",
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"title": "no id"}, "missing_video_id"),
        ({"video_id": "  "}, "missing_video_id"),
        ({"video_id": {"a": 1}}, "bad_field_type"),
        ({"video_id": "v", "title": ["x"]}, "bad_field_type"),
        ({"video_id": "v", "split": "holdout"}, "bad_split"),
        ({"video_id": "v", "updated_at": "yesterday"}, "bad_updated_at"),
        ({"video_id": "v", "description": "x" * 101}, "oversized_field"),
        ({"video_id": "v", "tags": ["y" * 101]}, "oversized_field"),
    ],
)
def test_bad_rows_raise_a_countable_reason(row, reason):
    with pytest.raises(RecordError) as err:
        to_canonical(row, RecordSchema(max_field_chars=100))
    assert err.value.reason == reason


def test_numeric_id_is_stringified():
    assert to_canonical({"video_id": 42}, RecordSchema())["video_id"] == "42"


@pytest.mark.parametrize(
    ("line", "reason"),
    [("{not json", "malformed_json"), ("[1, 2]", "not_an_object"), ('"s"', "not_an_object")],
)
def test_parse_json_object_errors(line, reason):
    with pytest.raises(RecordError) as err:
        parse_json_object(line)
    assert err.value.reason == reason


def test_decode_utf8_is_strict():
    assert decode_utf8("café".encode()) == "café"
    with pytest.raises(RecordError) as err:
        decode_utf8(b'{"video_id": "\xff\xfe"}')
    assert (err.value.reason, err.value.detail) == ("bad_utf8", "invalid byte at offset 14")


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (None, None, None),
        ("", None, None),
        (1700000000, None, 1700000000.0),
        ("1700000000.5", None, 1700000000.5),
        ("2017-11-13T17:13:01.000Z", None, 1510593181.0),
        ("17.14.11", "%y.%d.%m", 1510617600.0),
    ],
)
def test_parse_timestamp(value, fmt, expected):
    assert parse_timestamp(value, fmt) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ["nope=x"]}, "Received: field='nope'"),
        ({"separators": ["title=,"]}, "Received: field='title'"),
        ({"fields": ["video_id"]}, "expects KEY=VALUE"),
    ],
)
def test_schema_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecordSchema.from_flags(**kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ([], None),
        ([1, 2.5, -3], [1.0, 2.5, -3.0]),
        ("0.5 -1,2|3", [0.5, -1.0, 2.0, 3.0]),
    ],
)
def test_parse_vector_accepts_lists_and_delimited_strings(value, expected):
    assert parse_vector(value, "mean_rgb") == expected


@pytest.mark.parametrize("value", ["0.1 abc", [1.0, float("nan")], ["inf"], [[1.0]]])
def test_parse_vector_rejects_non_numbers_and_non_finite(value):
    with pytest.raises(RecordError) as err:
        parse_vector(value, "mean_rgb")
    assert err.value.reason == "bad_feature"


def test_av_fields_reach_the_canonical_record_only_when_present():
    schema = RecordSchema()
    with_av = to_canonical({"video_id": "a", "mean_rgb": [1, 2], "mean_audio": "3 4"}, schema)
    assert with_av["mean_rgb"] == [1.0, 2.0] and with_av["mean_audio"] == [3.0, 4.0]
    assert "mean_rgb" not in to_canonical({"video_id": "b", "title": "x"}, schema)
