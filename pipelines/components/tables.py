"""The nightly job's state: the tags table, its ``CURRENT`` pointer and the run history.

    state-dir/tables/<run_id>/part-*.jsonl   one table per successful run
    state-dir/CURRENT                        the run_id of the published table
    state-dir/history.jsonl                  one report per successful run

Also what decides a video's fate in a run (``SelectChanged``: new, changed,
unchanged or deleted, by content hash and model version).
"""

from __future__ import annotations

import hashlib
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipelines.components import jobs
from pipelines.components.steps import raw_text
from pipelines.components.tags import content_hash

CURRENT = "CURRENT"
HISTORY = "history.jsonl"
KEEP_TABLES = 3  # published tables kept for rollback (point CURRENT at an older run_id)


def current_run_id(state_dir: str) -> str | None:
    """The run whose table is published (``CURRENT``), or None before the first run."""
    pointer = FileSystems.join(state_dir, CURRENT)
    if not FileSystems.exists(pointer):
        return None
    with FileSystems.open(pointer) as handle:
        return handle.read().decode().strip()


def current_table(state_dir: str) -> str | None:
    """The published table's directory, or None before the first run."""
    return table_of(state_dir, current_run_id(state_dir))


def table_of(state_dir: str, run_id: str | None) -> str | None:
    return None if run_id is None else FileSystems.join(state_dir, "tables", run_id)


def last_table_size(state_dir: str) -> int:
    """Videos in the published table, as its run's report counted them."""
    lines = history_lines(state_dir)
    return json.loads(lines[-1])["videos"]["in_table"] if lines else 0


def classify(keyed, version: str):
    """Joins a catalog record with its previous row: what to tag, what to keep."""
    video_id, grouped = keyed
    records, previous = list(grouped["catalog"]), list(grouped["table"])
    old = previous[0] if previous else None
    if not records:
        yield beam.pvalue.TaggedOutput("deleted", video_id)
        return
    record = records[0]
    if old is None:
        yield beam.pvalue.TaggedOutput("tag", ("new", record))
    elif old.get("content_hash") != content_hash(record) or old["model_version"] != version:
        yield beam.pvalue.TaggedOutput("tag", ("changed", record))
    else:
        yield beam.pvalue.TaggedOutput("keep", old)


class SelectChanged(beam.PTransform):
    """Catalog records + previous table -> records to tag, rows to keep, deletions."""

    def __init__(self, version: str):
        super().__init__()
        self._version = version

    def expand(self, inputs):
        catalog, table = inputs
        keyed_catalog = catalog | "KeyCatalog" >> beam.Map(lambda r: (r["video_id"], r))
        keyed_table = table | "KeyTable" >> beam.Map(lambda r: (r["video_id"], r))
        return (
            {"catalog": keyed_catalog, "table": keyed_table}
            | "JoinByVideoId" >> beam.CoGroupByKey()
            | "Classify"
            >> beam.FlatMap(classify, self._version).with_outputs("tag", "keep", "deleted")
        )


def read_table(p, path: str | None):
    if path is None:
        return p | "NoPreviousTable" >> beam.Create([])
    pattern = FileSystems.join(path, "part-*")
    return p | "ReadTable" >> beam.io.ReadFromText(pattern) | "ParseTable" >> beam.Map(json.loads)


def write_rows(rows, prefix: str, label: str):
    return (
        rows
        | f"{label}ToJson" >> beam.Map(json.dumps, ensure_ascii=False, sort_keys=True)
        | f"{label}Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
    )


def with_fingerprint(record: dict) -> dict:
    """The record plus a digest of its raw text, which ``content_hash`` compares: a
    video whose title, description or tags changed is re-scored (the model version is
    compared too, so a new model re-scores all). YouTube-8M records already carry
    theirs: the digest of their serialized example (``yt8m_io``)."""
    if "fingerprint" in record:
        return record
    digest = hashlib.md5("\x1f".join(raw_text(record)).encode(), usedforsecurity=False)
    return {**record, "fingerprint": digest.hexdigest()}


def swap_current(state_dir: str, run_id: str) -> None:
    """Points CURRENT at the new table: write a temp file, then rename it over CURRENT."""
    pointer = FileSystems.join(state_dir, CURRENT)
    temp = FileSystems.join(state_dir, f".{CURRENT}.{run_id}")
    with FileSystems.create(temp) as handle:
        handle.write(run_id.encode())
    jobs.remove(pointer)
    FileSystems.rename([temp], [pointer])


def append_history(state_dir: str, payload: dict) -> None:
    """Adds the run's report to the history, once (the publish step may be retried)."""
    lines = history_lines(state_dir)
    if lines and json.loads(lines[-1])["run_id"] == payload["run_id"]:
        return
    body = "".join(f"{line}\n" for line in lines).encode()
    with FileSystems.create(FileSystems.join(state_dir, HISTORY)) as handle:
        handle.write(body + json.dumps(payload, sort_keys=True).encode() + b"\n")


def prune_tables(state_dir: str, keep: str) -> None:
    """Drops tables older than the last ``KEEP_TABLES`` (and unpublished leftovers)."""
    published = [json.loads(line)["run_id"] for line in history_lines(state_dir)]
    recent = set(published[-KEEP_TABLES:]) | {keep}
    tables = FileSystems.join(state_dir, "tables")
    found = FileSystems.match([FileSystems.join(tables, "*")])[0].metadata_list
    run_ids = {m.path[len(tables) + 1 :].split("/")[0] for m in found}
    for run_id in run_ids - recent:
        jobs.remove(FileSystems.join(tables, run_id))


def history_lines(state_dir: str) -> list[str]:
    path = FileSystems.join(state_dir, HISTORY)
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as handle:
        return handle.read().decode().splitlines()
