"""Reading catalogs (JSONL or CSV, plain or gzip, path or glob) and writing
dead letters.

Uncompressed JSONL is split into byte ranges so one large file spreads across
workers; gzip files and CSV (whose quoted fields may span lines) are read one
file per worker. Every record carries its position (file, offset) so
"last seen" is well defined for deduplication on any runner.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import logging
import typing
import zlib
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.records import (
    RecordError,
    RecordSchema,
    decode_utf8,
    parse_json_object,
    to_canonical,
)

RECORDS = "records"
DEAD = "dead_letters"
# dead-letter reason (preprocess) or output-row flag (scoring jobs): no word left after cleaning
EMPTY_TEXT = "empty_text"
FORMATS = ("auto", "jsonl", "csv")
_RANGE_BYTES = 64 << 20
_MAX_LINE_BYTES = 16 << 20
_MAX_RAW_CHARS = 10_000
csv.field_size_limit(_MAX_LINE_BYTES)


def dead_letter(stage: str, reason: str, raw, source: str = "", offset: int = -1, detail=""):
    """The dead-letter row: what failed, where, and the raw record (truncated)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "backslashreplace")
    elif not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, default=str)
    return {
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "source": source,
        "offset": offset,
        "record": raw[:_MAX_RAW_CHARS],
        "truncated": len(raw) > _MAX_RAW_CHARS,
    }


def file_format(path: str, requested: str = "auto") -> str:
    """``csv`` or ``jsonl``, from the flag or else the file name."""
    if requested != "auto":
        return requested
    name = path.lower().removesuffix(".gz")
    return "csv" if name.endswith((".csv", ".tsv")) else "jsonl"


def split_ranges(metadata, requested_format: str, range_bytes: int = _RANGE_BYTES):
    """Yields ``(path, start, end, format)`` work units for one matched file."""
    path, size = metadata.path, metadata.size_in_bytes
    fmt = file_format(path, requested_format)
    if fmt == "csv" or path.endswith(".gz") or size <= range_bytes:
        yield path, 0, None, fmt
        return
    for start in range(0, size, range_bytes):
        yield path, start, min(start + range_bytes, size), fmt


class ParseCatalogRangeFn(beam.DoFn):
    """Parses one work unit into canonical records, dead-lettering bad ones."""

    def __init__(self, schema: RecordSchema):
        self._schema = schema
        self._parsed = Metrics.counter("catalog", "records_parsed")
        self._bad = Metrics.counter("catalog", "records_dead_lettered_at_read")

    def process(self, unit: tuple[str, int, int, str]) -> typing.Iterator:
        path, start, end, fmt = unit
        rows = _csv_rows(path) if fmt == "csv" else _jsonl_rows(path, start, end)
        count = 0
        for offset, row, raw in rows:
            count += 1
            record, dead = parse_row(row, raw, self._schema, path, offset)
            if dead is not None:
                self._bad.inc()
                yield beam.pvalue.TaggedOutput(DEAD, dead)
                continue
            self._parsed.inc()
            yield record
        logging.info("read %d records from %s [%s, %s)", count, path, start, end or "end")


def parse_row(row, raw, schema: RecordSchema, path: str, offset: int) -> tuple:
    """``(canonical record, None)`` or ``(None, read dead letter)`` for one row of
    ``iter_rows``: the one intake step, in the pipeline and in the launch-time check."""
    try:
        if isinstance(row, RecordError):
            raise row
        record = to_canonical(row, schema)
    except RecordError as err:
        return None, dead_letter("read", err.reason, raw, path, offset, err.detail)
    record["_pos"] = (path, offset)
    return record, None


@contextlib.contextmanager
def open_binary(path: str):
    """A seekable binary stream of the file's content, gunzipped if ``.gz``."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if not path.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


def _unreadable_rest(rows: Iterator[tuple]) -> Iterator[tuple]:
    """``rows``, then one ``unreadable_file`` error where a compressed file stops
    making sense (truncated or corrupt gzip): the rows before it are kept."""
    last = 0
    try:
        for item in rows:
            last = item[0]
            yield item
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        yield last, RecordError("unreadable_file", f"{type(err).__name__}: {err}"), b""


def _jsonl_rows(path: str, start: int, end: int | None) -> Iterator[tuple]:
    """``(offset, dict | RecordError, raw)`` for each line that starts in range."""
    return _unreadable_rest(_jsonl_lines(path, start, end))


def _jsonl_lines(path: str, start: int, end: int | None) -> Iterator[tuple]:
    with open_binary(path) as handle:
        if start:
            handle.seek(start - 1)
            handle.readline()  # the line straddling ``start`` belongs to the previous range
        while True:
            offset = handle.tell()
            if end is not None and offset >= end:
                return
            line = handle.readline(_MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > _MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(_MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield offset, RecordError("oversized_record", f"> {_MAX_LINE_BYTES} bytes"), line
                continue
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield offset, _json_row(line), line


def iter_rows(path: str, requested_format: str = "auto") -> Iterator[tuple]:
    """Every ``(offset, dict | RecordError, raw)`` of one whole file, outside Beam."""
    if file_format(path, requested_format) == "csv":
        return _csv_rows(path)
    return _jsonl_rows(path, 0, None)


def _json_row(line: bytes):
    try:
        return parse_json_object(decode_utf8(line))
    except RecordError as err:
        return err


def _csv_rows(path: str) -> Iterator[tuple]:
    """``(row_number, dict | RecordError, raw)`` for each CSV row of a file."""
    return _unreadable_rest(_csv_lines(path))


def _csv_lines(path: str) -> Iterator[tuple]:
    with open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield reader.line_num, RecordError("malformed_csv", str(err)), ""
                continue
            yield reader.line_num, _checked_csv_row(row), row


def _checked_csv_row(row: dict):
    if None in row or any(value is None for value in row.values()):
        return RecordError("malformed_csv", "wrong number of columns")
    for value in row.values():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return RecordError("bad_utf8", "invalid UTF-8 in a CSV field")
    return row


class ReadCatalog(beam.PTransform):
    """Catalog files to canonical records (main output) and read dead letters.

    Returns a ``DoOutputsTuple``: ``.records`` and ``.dead_letters``.
    """

    def __init__(self, file_pattern: str, schema: RecordSchema, input_format: str = "auto"):
        super().__init__()
        if input_format not in FORMATS:
            raise ValueError(f"input_format must be one of {FORMATS}. Received: {input_format!r}")
        self._pattern = file_pattern
        self._schema = schema
        self._format = input_format

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._pattern)
            | "SplitIntoRanges" >> beam.FlatMap(split_ranges, self._format)
            | "Redistribute" >> beam.Reshuffle()
            | "ParseRecords"
            >> beam.ParDo(ParseCatalogRangeFn(self._schema)).with_outputs(DEAD, main=RECORDS)
        )


class WriteDeadLetters(beam.PTransform):
    """Dead letters as JSONL shards under ``<output_dir>/dead_letters/``."""

    def __init__(self, output_dir: str):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, "dead_letters", "part")

    def expand(self, dead):
        return (
            dead
            | "ToJson" >> beam.Map(json.dumps, ensure_ascii=False, sort_keys=True)
            | "Write" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl")
        )
