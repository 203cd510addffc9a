"""``catalog-tagger similar``: each video's most similar videos, by cosine similarity
of its embedding (a predict ``--embeddings`` output), on Beam.

ReadEmbeddings -> KeepOnePerVideo (an id found twice keeps the row of the file whose
path sorts last, e.g. the later of two runs under one glob; within one file, the
larger vector bytewise, so the choice never depends on the runner) -> BuildIndex
(one ``CombineGlobally``: faiss HNSW or exact, saved under ``_staging``, recall@k
measured against exact search; ``pipelines/components/neighbours.py``) -> the
queries (every video, or the ``--video-ids``) -> BatchElements -> QueryIndex (the
index loaded once per worker, one ``index.search`` a batch) -> ``similar/part-*.jsonl``
rows ``{"video_id", "similar": [{"video_id", "score"}, ...]}``, best first, never
the video itself. The last step publishes them with ``similar_report.json`` and
``_SUCCESS`` (``pipelines/components/publish.py``).

``--labels --model-dir M`` lists each label's nearest labels in the model's label
embeddings (the export's ``label_embeddings`` signature) instead: small, so
without Beam, exact, published the same way under ``labels/``.
"""

from __future__ import annotations

import sys

import apache_beam as beam
import numpy as np
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import jobs, progress, publish, report
from pipelines.components.embeddings import ReadEmbeddings, embeddings_pattern
from pipelines.components.neighbours import (
    BuildIndex,
    IndexSettings,
    QueryIndexFn,
    build_index,
    ef_search,
    normalise,
    search,
)
from pipelines.components.publish import Publish
from pipelines.components.similar_options import (
    SimilarConfig,
    config_from_options,
    split_labels_flag,
)

SIMILAR_DIR, LABELS_DIR = "similar", "labels"
REPORT_FILE, LABELS_REPORT_FILE = "similar_report.json", "label_neighbours_report.json"
PUBLISHED = (SIMILAR_DIR, REPORT_FILE)  # report last
LABELS_PUBLISHED = (LABELS_DIR, LABELS_REPORT_FILE)
LABELS_SIGNATURE = "label_embeddings"
_MIN_BATCH, _MAX_BATCH = 64, 1024  # queries per index.search


def _keep_one(grouped):
    video_id, copies = grouped
    _, vector = max(copies, key=lambda copy: (copy[0], copy[1].tobytes()))
    yield video_id, vector


class KeepOnePerVideo(beam.PTransform):
    """``(file, (id, vector))`` -> one ``(id, vector)`` per id, and a duplicates stat."""

    def expand(self, read):
        grouped = (
            read
            | "KeyById" >> beam.Map(lambda named: (named[1][0], (named[0], named[1][1])))
            | "GroupById" >> beam.GroupByKey()
        )
        duplicates = grouped | "CountCopies" >> beam.Map(
            lambda kv: (("records", "duplicates_removed"), len(kv[1]) - 1)
        )
        return grouped | "KeepOne" >> beam.FlatMap(_keep_one), duplicates


def select_queries(p, pairs, config: SimilarConfig):
    """The videos to answer for, and the stat of listed ids without an embedding."""
    if not config.video_ids:
        return pairs, []
    wanted = (
        p
        | "ReadVideoIds" >> beam.io.ReadFromText(config.video_ids)
        | "StripIds" >> beam.Map(str.strip)
        | "DropBlank" >> beam.Filter(bool)
        | "KeyWanted" >> beam.Map(lambda video_id: (video_id, True))
    )
    joined = {"vectors": pairs, "wanted": wanted} | "JoinVideoIds" >> beam.CoGroupByKey()
    queries = joined | "Wanted" >> beam.FlatMap(
        lambda kv: [(kv[0], kv[1]["vectors"][0])] if kv[1]["wanted"] and kv[1]["vectors"] else []
    )
    missing = joined | "WithoutEmbedding" >> beam.FlatMap(
        lambda kv: [(("records", "ids_without_embedding"), 1)] if not kv[1]["vectors"] else []
    )
    return queries, [missing]


def _json_line(row: dict) -> str:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


def build_pipeline(p: beam.Pipeline, config: SimilarConfig) -> None:
    """Adds the similar graph to ``p``: staged under ``staging_dir``, then published by
    its last step (``Publish``)."""
    read = p | "ReadEmbeddings" >> ReadEmbeddings(config.embeddings, with_filename=True)
    pairs, duplicates = read | "KeepOnePerVideo" >> KeepOnePerVideo()
    index = pairs | "BuildIndex" >> BuildIndex(config.staging_dir, config.index, config.k)
    queries, missing = select_queries(p, pairs, config)
    rows = (
        queries
        | "Batch" >> beam.BatchElements(min_batch_size=_MIN_BATCH, max_batch_size=_MAX_BATCH)
        | "QueryIndex"
        >> beam.ParDo(
            QueryIndexFn(config.k, ef_search(config.index, config.k)),
            beam.pvalue.AsSingleton(index),
        )
    )
    prefix = FileSystems.join(config.staging_dir, SIMILAR_DIR, "part")
    written = [
        rows
        | "ToJson" >> beam.Map(_json_line)
        | "WriteRows" >> beam.io.WriteToText(prefix, ".jsonl")
    ]
    stats = [
        read | "CountRead" >> report.count_as(("records", "in")),
        duplicates,
        queries | "CountQueries" >> report.count_as(("records", "queries")),
        rows | "CountRows" >> report.count_as(("records", "rows")),
        *missing,
    ]
    summed = stats | "FlattenStats" >> beam.Flatten() | "SumStats" >> report.SumStats()
    _ = (
        summed
        | "AddIndex" >> beam.Map(_with_index, beam.pvalue.AsSingleton(index))
        | "Publish" >> Publish(PublishSimilar(config), written)
    )


def _with_index(stats: dict, ref) -> dict:
    return stats | {"index": ref.info}


class PublishSimilar:
    """The publish step: refuses an empty result, then the report, ``_SUCCESS`` last."""

    def __init__(self, config: SimilarConfig):
        self._config = config

    def __call__(self, stats: dict) -> dict:
        config = self._config
        return publish.publish_once(
            config.staging_dir, config.output_dir, PUBLISHED, lambda: self.report(stats)
        )

    def report(self, stats: dict) -> tuple[dict, str | None]:
        config, found = self._config, stats.get("records", {})
        records = {
            key: found.get(key, 0) for key in ("in", "duplicates_removed", "queries", "rows")
        }
        records["videos"] = stats["index"].get("vectors", 0)
        if config.video_ids:
            records["ids_without_embedding"] = found.get("ids_without_embedding", 0)
        records["balanced"] = (
            records["in"] == records["videos"] + records["duplicates_removed"]
            and records["rows"] == records["queries"]
        )
        payload = {"records": records, "index": stats["index"], "k": config.k,
                   "embeddings": config.embeddings, "video_ids": config.video_ids,
                   "run_seconds": config.run.seconds()}  # fmt: skip
        refusal = None
        if stats["index"].get("problem"):
            refusal = f"refusing to publish: {stats['index']['problem']}"
        elif not records["videos"]:
            refusal = "refusing to publish: the embeddings hold no vectors"
        elif config.video_ids and not records["queries"]:
            refusal = f"refusing to publish: no id in {config.video_ids} has an embedding"
        return payload, refusal


def load_label_embeddings(export_dir: str) -> tuple[list[str], np.ndarray]:
    """The export's label embedding table: ``(labels, [L, D] float32)``."""
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(export_dir).signatures[LABELS_SIGNATURE]
    except KeyError:
        raise jobs.JobError(
            f"the model in {export_dir!r} has no {LABELS_SIGNATURE} signature"
        ) from None
    except OSError as err:
        message = f"cannot load a model from {export_dir!r}: {err}".splitlines()[0]
        raise jobs.JobError(message) from None
    out = signature()
    labels = [name.decode("utf-8") for name in out["labels"].numpy().tolist()]
    matrix = np.asarray(out["embeddings"].numpy(), np.float32)
    jobs.require(
        matrix.ndim == 2 and matrix.shape[0] == len(labels) and matrix.shape[1] > 0,
        f"dimension mismatch: {len(labels)} labels but embeddings of shape {list(matrix.shape)}",
    )
    return labels, matrix


def label_rows(labels: list[str], matrix: np.ndarray, k: int) -> list[dict]:
    """Each label's ``k`` nearest labels (exact cosine), itself left out."""
    index = build_index(normalise(matrix), IndexSettings(kind="flat"))
    found = search(index, normalise(matrix), labels, labels, k)
    return [{"label": label, "similar": [{"label": o, "score": round(float(s), 6)} for o, s in pairs]}
            for label, pairs in zip(labels, found, strict=True)]  # fmt: skip


def run_labels(config: SimilarConfig) -> dict:
    """Label mode: rows staged, then published with their report, ``_SUCCESS`` last."""
    jobs.require(
        FileSystems.exists(config.export_dir), f"no exported model in {config.model_dir!r}"
    )
    labels, matrix = load_label_embeddings(config.export_dir)
    jobs.require(len(set(labels)) == len(labels), "the model's label table repeats a label")
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    rows = label_rows(labels, matrix, config.k)
    path = FileSystems.join(config.staging_dir, LABELS_DIR, "part-00000-of-00001.jsonl")
    with FileSystems.create(path) as handle:
        handle.write("".join(_json_line(row) + "\n" for row in rows).encode("utf-8"))
    payload = {"records": {"labels": len(labels), "rows": len(rows)}, "dim": int(matrix.shape[1]),
               "k": config.k, "model_dir": config.model_dir, "run_seconds": config.run.seconds()}  # fmt: skip
    return publish.publish_once(
        config.staging_dir, config.output_dir, LABELS_PUBLISHED, lambda: (payload, None)
    )


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, runs the job; returns the published report, or ``{"submitted":
    ...}`` when it did not wait for the job."""
    argv = split_labels_flag(sys.argv[1:] if argv is None else argv)
    options = PipelineOptions(argv)
    config = config_from_options(options)
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise jobs.JobError("similar needs faiss: pip install '.[similar]'") from None
    if config.labels:
        return run_labels(config)
    jobs.require_input(embeddings_pattern(config.embeddings))
    if config.video_ids:
        jobs.require_input(config.video_ids)
    jobs.prepare_output_dir(config.output_dir, (publish.STAGING,))
    p = beam.Pipeline(options=options)
    build_pipeline(p, config)
    if publish.run_pipeline(p, config.staging_dir, config.run.wait, "similar") is None:
        return {"submitted": config.output_dir}
    payload = report.read_json(FileSystems.join(config.output_dir, REPORT_FILE))
    recall = payload["index"]["recall"]
    if not recall["exact"]:
        progress.stage("similar", f"HNSW recall@{config.k} {recall['value']} against exact "
                       f"search, on {recall['queries']:,} sampled videos")  # fmt: skip
    return payload
