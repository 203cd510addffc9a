"""``catalog-tagger nightly``: incremental tagging with a persistent tags table.

Only videos that are new, or whose cleaned text changed (content hash), are
tagged; a new model version retags everything. The tags table (latest row per
video) and the run history live in ``--state-dir``::

    state-dir/tables/<run_id>/part-*.jsonl   one table per successful run
    state-dir/CURRENT                        the run_id of the published table
    state-dir/history.jsonl                  one report per successful run

A run writes a new table beside the old one and then swaps ``CURRENT`` (a
write-to-temp and rename of one small file), so a killed run leaves the
published table untouched. Videos gone from the catalog are dropped and counted.
A video whose text is empty after cleaning is tagged with the model's scores
for an empty bag-of-words (``"empty_text": true`` in its row), as in predict.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import export
from pipelines import jobs, predict, report
from pipelines.catalog_io import ReadCatalog, WriteDeadLetters
from pipelines.inference import ModelHandle, RunInference
from pipelines.options import CatalogOptions, NightlyOptions, PredictOptions
from pipelines.steps import CleanAndTokenize, Deduplicate

CURRENT = "CURRENT"
HISTORY = "history.jsonl"
KEEP_TABLES = 3  # published tables kept for rollback (point CURRENT at an older run_id)


def current_table(state_dir: str) -> str | None:
    """The published table's directory, or None before the first run."""
    pointer = FileSystems.join(state_dir, CURRENT)
    if not FileSystems.exists(pointer):
        return None
    with FileSystems.open(pointer) as handle:
        run_id = handle.read().decode().strip()
    return FileSystems.join(state_dir, "tables", run_id)


def _classify(keyed, version: str):
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
    elif old.get("content_hash") != predict.content_hash(record) or old["model_version"] != version:
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
            >> beam.FlatMap(_classify, self._version).with_outputs("tag", "keep", "deleted")
        )


def _read_table(p, path: str | None):
    if path is None:
        return p | "NoPreviousTable" >> beam.Create([])
    pattern = FileSystems.join(path, "part-*")
    return p | "ReadTable" >> beam.io.ReadFromText(pattern) | "ParseTable" >> beam.Map(json.loads)


def _write_rows(rows, prefix: str, label: str):
    return (
        rows
        | f"{label}ToJson" >> beam.Map(json.dumps, ensure_ascii=False, sort_keys=True)
        | f"{label}Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
    )


def build_pipeline(p, config: predict.PredictConfig, state_dir: str, run_id: str) -> None:
    """Adds the nightly graph; the new table goes to ``tables/<run_id>``."""
    labels = export.read_extra(config.export_dir, export.LABELS_FILE)
    version = export.read_extra(config.export_dir, export.CARD_FILE)["model_version"]
    read = p | "ReadCatalog" >> ReadCatalog(config.input, config.schema, config.input_format)
    unique = read.records | "Deduplicate" >> Deduplicate()
    clean = CleanAndTokenize(config.text, config.av_sizes, keep_empty_text=True)
    cleaned = unique.records | "CleanAndTokenize" >> clean
    table = _read_table(p, current_table(state_dir))
    split = (cleaned.records, table) | "SelectChanged" >> SelectChanged(version)
    handle = ModelHandle(config.export_dir, config.share_across_processes)
    to_tag = split.tag | "DropKind" >> beam.Map(lambda kind_record: kind_record[1])
    scores, failed = to_tag | "RunInference" >> RunInference(
        handle, config.min_batch, config.max_batch
    )
    thresholds = predict.thresholds_for(config, labels)
    to_tags = predict.ToTags(labels, thresholds, config.top_k, version, config.tagged_at, True)
    tagged = scores | "ToTags" >> beam.ParDo(to_tags)
    new_table = (split.keep, tagged) | "MergeTable" >> beam.Flatten()
    _write_rows(new_table, FileSystems.join(state_dir, "tables", run_id, "part"), "Table")
    _write_rows(tagged, FileSystems.join(config.staging_dir, "tags", "part"), "Tagged")
    dead = (read.dead_letters, cleaned.dead_letters, failed) | "FlattenDead" >> beam.Flatten()
    _ = dead | "WriteDeadLetters" >> WriteDeadLetters(config.staging_dir)
    stats = report.intake_stats(read.records, unique.duplicates, dead) + [
        split.tag | "KindStats" >> beam.Map(lambda kr: (("videos", kr[0]), 1)),
        split.keep | "CountUnchanged" >> report.count_as(("videos", "unchanged")),
        split.deleted | "CountDeleted" >> report.count_as(("videos", "deleted")),
        new_table | "CountTable" >> report.count_as(("videos", "in_table")),
        *report.tagged_stats(tagged),
    ]
    _ = (
        stats
        | "FlattenStats" >> beam.Flatten()
        | "WriteStats" >> report.WriteStats(config.staging_dir)
    )


def publish_table(state_dir: str, run_id: str, payload: dict) -> None:
    """Points CURRENT at the new table (atomic rename), then records the run."""
    pointer = FileSystems.join(state_dir, CURRENT)
    temp = FileSystems.join(state_dir, f".{CURRENT}.{run_id}")
    with FileSystems.create(temp) as handle:
        handle.write(run_id.encode())
    jobs.remove(pointer)
    FileSystems.rename([temp], [pointer])
    history = FileSystems.join(state_dir, HISTORY)
    lines = "".join(f"{line}\n" for line in _history_lines(state_dir)).encode()
    with FileSystems.create(history) as handle:
        handle.write(lines + json.dumps(payload, sort_keys=True).encode() + b"\n")
    _prune_tables(state_dir, run_id)


def _prune_tables(state_dir: str, keep: str) -> None:
    """Drops tables older than the last ``KEEP_TABLES`` (and unpublished leftovers)."""
    published = [json.loads(line)["run_id"] for line in _history_lines(state_dir)]
    recent = set(published[-KEEP_TABLES:]) | {keep}
    tables = FileSystems.join(state_dir, "tables")
    found = FileSystems.match([FileSystems.join(tables, "*")])[0].metadata_list
    run_ids = {m.path[len(tables) + 1 :].split("/")[0] for m in found}
    for run_id in run_ids - recent:
        jobs.remove(FileSystems.join(tables, run_id))


def _history_lines(state_dir: str) -> list[str]:
    path = FileSystems.join(state_dir, HISTORY)
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as handle:
        return handle.read().decode().splitlines()


def _report(config, state_dir: str, run_id: str, seconds: float) -> dict:
    stats = report.read_json(FileSystems.join(config.staging_dir, report.STATS_FILE))
    videos = stats.get("videos", {})
    return {
        "run_id": run_id,
        "videos": {k: videos.get(k, 0) for k in ("new", "changed", "unchanged", "deleted", "in_table")},
        "records": report.record_counts(stats, unchanged=videos.get("unchanged", 0)),
        "dead_letters": stats.get("dead_letters", {}),
        "model_version": export.read_extra(config.export_dir, export.CARD_FILE)["model_version"],
        "previous_table": current_table(state_dir),
        "run_seconds": round(seconds, 3),
    }  # fmt: skip


def _due_for_retrain(nightly: NightlyOptions) -> bool:
    if nightly.retrain:
        return True
    if nightly.retrain_every_days <= 0:
        return False
    stamps = [json.loads(line)["run_id"][:16] for line in _history_lines(nightly.state_dir)
              if json.loads(line).get("retrain")]  # fmt: skip
    if not stamps:
        return True
    last = datetime.datetime.strptime(stamps[-1], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - last >= datetime.timedelta(
        nightly.retrain_every_days
    )


def run(argv: list[str] | None = None) -> dict:
    options = PipelineOptions(argv)
    nightly = options.view_as(NightlyOptions)
    jobs.require(nightly.catalog and nightly.state_dir, "--catalog and --state-dir are required")
    options.view_as(CatalogOptions).input = nightly.catalog
    jobs.require_input(nightly.catalog)
    jobs.prepare_output_dir(nightly.state_dir)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
    decision = None
    if _due_for_retrain(nightly):
        from pipelines.retrain import retrain

        work = FileSystems.join(nightly.state_dir, "candidates", run_id)
        model_dir = options.view_as(PredictOptions).model_dir
        decision = retrain(list(argv or []), nightly.catalog, model_dir, work,
                           nightly.gap_tolerance)  # fmt: skip
    config = predict.config_from_options(options)
    predict.check_model(config.export_dir)
    jobs.prepare_output_dir(config.output_dir, ("_staging",))
    start = time.monotonic()
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, config, nightly.state_dir, run_id)
    payload = _report(config, nightly.state_dir, run_id, time.monotonic() - start)
    payload["retrain"] = decision
    report.write_json(FileSystems.join(config.staging_dir, predict.REPORT_FILE), payload)
    predict.publish(config.staging_dir, config.output_dir)
    publish_table(nightly.state_dir, run_id, payload)
    logging.info("nightly done: %s", payload["videos"])
    return payload
