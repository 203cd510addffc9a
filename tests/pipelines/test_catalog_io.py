"""Reading catalogs: JSONL byte ranges, CSV quirks, gzip, globs."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pytest
from apache_beam.io.filesystem import FileMetadata
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.components.catalog_io import (
    ReadCatalog,
    _csv_rows,
    _jsonl_rows,
    file_format,
    split_ranges,
)
from tests.helpers import local_options
from transforms.records import RecordSchema

pytestmark = pytest.mark.slow  # runs Beam pipelines


def _write_jsonl(path, n: int) -> list[str]:
    ids = [f"v{i:04d}" for i in range(n)]
    lines = [json.dumps({"video_id": v, "title": "x" * (i % 37)}) for i, v in enumerate(ids)]
    path.write_text("\n".join(lines) + "\n")
    return ids


@pytest.mark.parametrize("range_bytes", [1, 7, 100, 1000, 10**9])
def test_byte_ranges_cover_every_line_exactly_once(tmp_path, range_bytes):
    path = tmp_path / "c.jsonl"
    ids = _write_jsonl(path, 120)
    meta = FileMetadata(str(path), path.stat().st_size)
    seen = []
    for _, start, end, _ in split_ranges(meta, "auto", range_bytes):
        seen += [row["video_id"] for _, row, _ in _jsonl_rows(str(path), start, end)]
    assert seen == ids


def test_formats_by_name():
    assert [file_format(p) for p in ("a.csv", "a.CSV.gz", "a.jsonl", "a.json.gz", "a")] == [
        "csv", "csv", "jsonl", "jsonl", "jsonl",
    ]  # fmt: skip
    assert file_format("a.txt", "csv") == "csv"
    meta = FileMetadata("big.jsonl.gz", 10**9)
    assert list(split_ranges(meta, "auto", 100)) == [("big.jsonl.gz", 0, None, "jsonl")]


def test_csv_rows_with_multiline_quotes_bad_columns_and_bad_utf8(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(
        b"video_id,title,description\n"
        b'a,"Hello, world","two\nlines"\n'
        b"b,only two\n"
        b'c,"bad \xff byte",x\n'
        b"d,fine,also fine\n"
    )
    rows = list(_csv_rows(str(path)))
    assert rows[0][1] == {"video_id": "a", "title": "Hello, world", "description": "two\nlines"}
    assert rows[1][1].reason == "malformed_csv"
    assert rows[2][1].reason == "bad_utf8"
    assert rows[3][1]["video_id"] == "d"
    assert [r[0] for r in rows] == [3, 4, 5, 6]  # physical line numbers


def test_read_catalog_glob_of_jsonl_gz_and_csv(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(
        gzip.compress(b'{"video_id": "j1", "title": "t"}\n{"oops"\n')
    )
    (tmp_path / "b.csv").write_text("video_id,title,tags\nc1,Title,x|y\n,missing,\n")
    with TestPipeline(options=local_options()) as p:
        out = p | ReadCatalog(str(tmp_path / "*"), RecordSchema())
        ids = out.records | beam.Map(lambda r: (r["video_id"], r["tags"], r["_pos"][1]))
        reasons = out.dead_letters | beam.Map(lambda d: (d["reason"], d["offset"]))
        assert_that(ids, equal_to([("j1", [], 0), ("c1", ["x", "y"], 2)]), label="Records")
        assert_that(
            reasons, equal_to([("malformed_json", 33), ("missing_video_id", 3)]), label="Dead"
        )
