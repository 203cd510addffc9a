"""``catalog-tagger nightly``: incremental tagging with a persistent tags table.

Only videos that are new, or whose cleaned text changed (content hash), are
tagged; a new model version retags everything. The tags table (latest row per
video) and the run history live in ``--state-dir``::

    state-dir/tables/<run_id>/part-*.jsonl   one table per successful run
    state-dir/CURRENT                        the run_id of the published table
    state-dir/history.jsonl                  one report per successful run

(``pipelines/components/tables.py`` owns that layout.) A run holds ``state-dir/LOCK`` (``pipelines/components/locks.py``) from launch to publish,
so two runs never race. It writes a new table beside the old one, and the
graph's last step swaps ``CURRENT`` (a write-to-temp and rename of one small
file) only if ``CURRENT`` still names the table the run started from, and only
if the guards pass: a killed or refused run leaves the published table
untouched. Videos gone from the catalog are dropped and counted; a run that
would drop more than ``--max-deleted-fraction`` of the live table (an empty or
partial catalog) is refused unless ``--allow-mass-delete``.
Scoring, tags and the report are predict's (``pipelines/components/scoring.py``):
a video whose text is empty after cleaning is tagged with the model's scores for
an empty bag-of-words (``"empty_text": true`` in its row), and
``thresholds_used.json`` is published beside the run's tags. A YouTube-8M model
reads TFRecord shards, each video fingerprinted by its serialized example.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from models.card import TEXT_KINDS, kind_of
from pipelines.components import guards, jobs, locks, publish, report, tables
from pipelines.components.catalog_io import WriteDeadLetters
from pipelines.components.options import (
    CatalogOptions,
    NightlyOptions,
    OutputOptions,
    PredictOptions,
)
from pipelines.components.progress import Progress
from pipelines.components.scoring import (
    PUBLISHED,
    REPORT_FILE,
    PredictConfig,
    TagVideos,
    check_model,
    config_from_options,
    read_catalog,
    tagging_report,
    thresholds_for,
)
from pipelines.components.tags import ToTags


@dataclasses.dataclass(frozen=True)
class NightlyRun:
    """One nightly run: the predict settings, the state dir and where it starts from."""

    predict: PredictConfig
    state_dir: str
    run_id: str
    started_from: str | None  # the run_id CURRENT named at launch (None: first run)
    retrain: dict | None = None  # the retrain gate's decision, when it ran

    @property
    def table_dir(self) -> str:
        return FileSystems.join(self.state_dir, "tables", self.run_id)


def build_pipeline(p, run: NightlyRun) -> None:
    """Adds the nightly graph; the new table goes to ``tables/<run_id>`` and the
    graph's last step (``PublishNightly``) publishes it."""
    config = run.predict
    labels = artifacts.read_extra(config.export_dir, artifacts.LABELS_FILE)
    card = artifacts.read_extra(config.export_dir, artifacts.CARD_FILE)
    version = card["model_version"]
    intake, mode = read_catalog(p, config, card)
    fingerprinted = intake.records | "Fingerprint" >> beam.Map(tables.with_fingerprint)
    table = tables.read_table(p, tables.table_of(run.state_dir, run.started_from))
    split = (fingerprinted, table) | "SelectChanged" >> tables.SelectChanged(version)
    to_tag = split.tag | "DropKind" >> beam.Map(lambda kind_record: kind_record[1])
    thresholds = thresholds_for(config, labels)
    to_tags = ToTags(labels, thresholds, config.top_k, version, config.tagged_at, hashes=True)
    tagged = to_tag | "Tag" >> TagVideos(config, to_tags, "nightly", mode)
    _ = intake.read | "ProgressRead" >> Progress("nightly", "read")
    new_table = (split.keep, tagged.rows) | "MergeTable" >> beam.Flatten()
    dead = (intake.dead_letters, tagged.failed) | "FlattenDead" >> beam.Flatten()
    written = [
        tables.write_rows(new_table, FileSystems.join(run.table_dir, "part"), "Table"),
        tables.write_rows(
            tagged.rows, FileSystems.join(config.staging_dir, "tags", "part"), "Tagged"
        ),
        dead | "WriteDeadLetters" >> WriteDeadLetters(config.staging_dir),
    ]
    stats = report.intake_stats(intake.read, intake.duplicates, dead) + [
        split.tag | "KindStats" >> beam.Map(lambda kr: (("videos", kr[0]), 1)),
        split.keep | "CountUnchanged" >> report.count_as(("videos", "unchanged")),
        split.deleted | "CountDeleted" >> report.count_as(("videos", "deleted")),
        new_table | "CountTable" >> report.count_as(("videos", "in_table")),
        table | "CountLive" >> report.count_as(("videos", "live")),
        *tagged.stats,
    ]
    used = dict(zip(labels, thresholds.tolist(), strict=True))
    action = PublishNightly(run, version, used)
    publish.publish_stats(stats, action, written)


class PublishNightly:
    """Nightly's publish step: the dead-letter and deletion guards, the run's tags and
    report, then ``CURRENT`` swapped to the new table (only if it still names the
    table this run started from), the history, pruning, and the lock released."""

    def __init__(self, run: NightlyRun, version: str, thresholds_used: dict):
        self._run, self._version, self._thresholds = run, version, thresholds_used

    def __call__(self, stats: dict) -> dict:
        run, config = self._run, self._run.predict
        if tables.current_run_id(run.state_dir) != run.run_id:  # else a retry after the swap
            try:
                publish.publish_once(
                    config.staging_dir, config.output_dir, PUBLISHED,
                    lambda: self.report(stats),
                )  # fmt: skip
            except guards.PublishRefused:
                locks.release(run.state_dir, run.run_id)
                raise
            tables.swap_current(run.state_dir, run.run_id)
        payload = report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
        tables.append_history(run.state_dir, payload)
        tables.prune_tables(run.state_dir, run.run_id)
        locks.release(run.state_dir, run.run_id)
        return payload

    def refusal(self, stats: dict, payload: dict) -> str | None:
        run, records = self._run, payload["records"]
        live, deleted = stats.get("videos", {}).get("live", 0), payload["videos"]["deleted"]
        moved = tables.current_run_id(run.state_dir)
        if moved != run.started_from:
            return (f"refusing to publish: CURRENT moved from {run.started_from} to {moved} "
                    "during this run (another run published); rerun to start from it")  # fmt: skip
        if records["in"] == 0:
            return guards.empty_catalog_refusal(live, run.predict.run.guards)
        return guards.deletion_refusal(live, deleted, run.predict.run.guards)

    def report(self, stats: dict) -> tuple[dict, str | None]:
        run, videos = self._run, stats.get("videos", {})
        kinds = ("new", "changed", "unchanged", "deleted", "in_table")
        payload, dead_letter_refusal = tagging_report(
            run.predict, stats, self._version, self._thresholds,
            run_id=run.run_id, videos={k: videos.get(k, 0) for k in kinds},
            unchanged=videos.get("unchanged", 0),
            previous_table=tables.table_of(run.state_dir, run.started_from), retrain=run.retrain,
        )  # fmt: skip
        return payload, self.refusal(stats, payload) or dead_letter_refusal


def _due_for_retrain(nightly: NightlyOptions) -> bool:
    if nightly.retrain:
        return True
    if nightly.retrain_every_days <= 0:
        return False
    stamps = [json.loads(line)["run_id"][:16] for line in tables.history_lines(nightly.state_dir)
              if json.loads(line).get("retrain")]  # fmt: skip
    if not stamps:
        return True
    last = datetime.datetime.strptime(stamps[-1], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC) - last >= datetime.timedelta(
        nightly.retrain_every_days
    )


def launch(options: PipelineOptions, argv: list[str], run_id: str) -> NightlyRun:
    """Before any work (and holding the lock): the retrain gate, the input's first
    records against the guards, and the model."""
    nightly, decision = options.view_as(NightlyOptions), None
    if _due_for_retrain(nightly):
        from pipelines.components.retrain import retrain

        work = FileSystems.join(nightly.state_dir, "candidates", run_id)
        model_dir = options.view_as(PredictOptions).model_dir
        decision = retrain(argv, nightly.catalog, model_dir, work,
                           nightly.gap_tolerance)  # fmt: skip
    config = config_from_options(options)
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    started_from = tables.current_run_id(nightly.state_dir)
    dead_dir = FileSystems.join(config.staging_dir, publish.DEAD_LETTERS)
    files = jobs.require_input(config.input)
    card = artifacts.read_extra(config.export_dir, artifacts.CARD_FILE)
    text = kind_of(card) in TEXT_KINDS  # YouTube-8M shards have no text records to check
    if text and not guards.preflight(files, config.schema, config.input_format,
                                     config.run.guards, dead_dir, require_records=False):  # fmt: skip
        live = tables.last_table_size(nightly.state_dir) if started_from else 0
        refusal = guards.empty_catalog_refusal(live, config.run.guards)
        if refusal is not None:
            raise guards.PublishRefused(refusal)
    check_model(config.export_dir)
    return NightlyRun(config, nightly.state_dir, run_id, started_from, decision)


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, takes the state dir's lock and runs the job; returns the published
    report, or ``{"submitted": ...}`` when it did not wait for the job."""
    options = PipelineOptions(argv)
    nightly = options.view_as(NightlyOptions)
    jobs.require(nightly.catalog and nightly.state_dir, "--catalog and --state-dir are required")
    options.view_as(CatalogOptions).input = nightly.catalog
    jobs.require_input(nightly.catalog)
    jobs.prepare_output_dir(nightly.state_dir)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
    wait = options.view_as(OutputOptions).wait
    locks.acquire(nightly.state_dir, run_id, nightly.lock_expiry_hours, wait)
    try:
        job = launch(options, list(argv or []), run_id)
        p = beam.Pipeline(options=options)
        build_pipeline(p, job)
        result = publish.run_pipeline(p, job.predict.staging_dir, job.predict.run.wait, "nightly")
    except BaseException:
        locks.release(nightly.state_dir, run_id)
        raise
    if result is None:
        return {"submitted": job.predict.output_dir, "run_id": run_id}
    payload = report.read_json(FileSystems.join(job.predict.output_dir, REPORT_FILE))
    logging.info("nightly done: %s", payload["videos"])
    return payload
