"""Batched, sparse inference steps of the batch predictor.

``Vectorize`` runs a batch of token lists through the export's embedded
tf.Transform graph (``vectorize`` signature) and ``Predict`` feeds the result
as one ``tf.SparseTensor`` (indices, values, dense_shape) to the ``sparse``
signature. The model is loaded once per worker process in ``setup()`` and
shared by its threads (optionally by all its processes). A batch that fails on
its data (``data_errors``) is split in halves and retried, so one bad video only
dead-letters itself; any other error is a bug and fails the job.
"""

from __future__ import annotations

import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import multi_process_shared, shared

from pipelines.catalog_io import DEAD, RECORDS, dead_letter
from transforms.records import AV_FIELDS, AV_FLAG, RecordError

STATS = "stats"


def data_errors() -> tuple[type[Exception], ...]:
    """What a record's content can make inference raise: TF rejecting its input, or a
    value failing our validation. Anything else (TypeError, AttributeError, a missing
    signature ...) is a bug in the job and must fail it, not dead-letter the catalog."""
    import tensorflow as tf

    return tf.errors.InvalidArgumentError, RecordError


class ModelHandle:
    """How a DoFn gets the process-wide ``LoadedTagger`` (picklable)."""

    def __init__(self, export_dir: str, across_processes: bool = False):
        self.export_dir = export_dir
        self.across_processes = across_processes
        self._shared = shared.Shared()

    def acquire(self):
        from models.serving import LoadedTagger

        def load():
            return LoadedTagger(self.export_dir)

        if self.across_processes:
            return multi_process_shared.MultiProcessShared(
                load, tag=f"catalog-tagger:{self.export_dir}", always_proxy=True
            ).acquire()
        return self._shared.acquire(load, tag=self.export_dir)


def run_with_split(items: list, fn, on_failure, errors: tuple = (RecordError,)):
    """Applies ``fn`` to ``items``; on one of ``errors``, to each half, down to single items.

    Yields ``(items, result)`` for every part that succeeded and calls
    ``on_failure(item, error)`` for each item that fails on its own. Other
    exceptions propagate.
    """
    try:
        yield items, fn(items)
    except errors as err:
        if len(items) == 1:
            on_failure(items[0], err)
            return
        middle = len(items) // 2
        yield from run_with_split(items[:middle], fn, on_failure, errors)
        yield from run_with_split(items[middle:], fn, on_failure, errors)


class _BatchFn(beam.DoFn):
    """Base: acquires the model in ``setup()`` and dead-letters failed items."""

    def __init__(self, handle: ModelHandle):
        self._handle = handle
        self._dead = Metrics.counter("predict", "inference_dead_letters")
        self._latency = Metrics.distribution("predict", "inference_latency_ms")
        self._load_ms = None

    def setup(self):
        start = time.monotonic()
        self._model = self._handle.acquire()
        self._errors = data_errors()
        self._load_ms = int((time.monotonic() - start) * 1000)

    def start_bundle(self):
        if self._load_ms is not None:  # reported once, from the first bundle
            Metrics.distribution("predict", "model_load_ms").update(self._load_ms)
            self._load_ms = None

    def _run(self, items, fn):
        failed = []
        yield from run_with_split(items, fn, lambda i, e: failed.append((i, e)), self._errors)
        for item, err in failed:
            self._dead.inc()
            record = {"video_id": item["video_id"], "tokens": item.get("tokens")}
            yield None, dead_letter("inference", type(err).__name__, record, detail=str(err)[:500])


class VectorizeFn(_BatchFn):
    """A batch of cleaned records to one vectorized batch (sparse parts)."""

    def __init__(self, handle: ModelHandle):
        super().__init__(handle)
        self._tokens = Metrics.counter("predict", "tokens")
        self._oov = Metrics.counter("predict", "oov_tokens")
        self._batch = Metrics.distribution("predict", "batch_size")

    def process(self, batch):
        self._batch.update(len(batch))
        vectorize = lambda part: self._model.vectorize([r["tokens"] for r in part])  # noqa: E731
        for part, out in self._run(batch, vectorize):
            if part is None:
                yield beam.pvalue.TaggedOutput(DEAD, out)
                continue
            tokens, oov = int(out["num_tokens"].sum()), int(out["num_oov_tokens"].sum())
            self._tokens.inc(tokens)
            self._oov.inc(oov)
            yield beam.pvalue.TaggedOutput(STATS, (("tokens", "total"), tokens))
            yield beam.pvalue.TaggedOutput(STATS, (("tokens", "oov"), oov))
            yield {"records": part, **out}


def _split_rows(batch: dict, rows: list[int]) -> dict:
    """The vectorized sub-batch made of ``rows`` (re-numbered from 0)."""
    if rows == list(range(int(batch["dense_shape"][0]))):
        return batch  # the whole batch: the common case, no copy
    keep = np.isin(batch["indices"][:, 0], rows)
    renumber = {old: new for new, old in enumerate(rows)}
    indices = batch["indices"][keep].copy()
    indices[:, 0] = [renumber[r] for r in indices[:, 0]]
    return {"indices": indices, "values": batch["values"][keep],
            "dense_shape": np.array([len(rows), batch["dense_shape"][1]], np.int64)}  # fmt: skip


class PredictFn(_BatchFn):
    """One sparse batch through the ``sparse`` signature (or, for a fusion model,
    ``fused`` with the records' AV inputs); per-video scores out."""

    def setup(self):
        super().setup()
        self._fusion = self._model.is_fusion()

    def process(self, batch):
        records = batch["records"]
        positions = [{"video_id": r["video_id"], "tokens": r["tokens"], "row": i}
                     for i, r in enumerate(records)]  # fmt: skip

        def predict(part):
            rows = [p["row"] for p in part]
            sub = _split_rows(batch, rows)
            start = time.monotonic()
            if self._fusion:
                av = {name: np.array([records[r][name] for r in rows], np.float32)
                      for name in (*AV_FIELDS, AV_FLAG)}  # fmt: skip
                scores = self._model.predict_fused(
                    sub["indices"], sub["values"], sub["dense_shape"], av
                )
            else:
                scores = self._model.predict_sparse(
                    sub["indices"], sub["values"], sub["dense_shape"]
                )
            self._latency.update(int((time.monotonic() - start) * 1000))
            return scores

        for part, out in self._run(positions, predict):
            if part is None:
                yield beam.pvalue.TaggedOutput(DEAD, out)
                continue
            for position, scores in zip(part, out, strict=True):
                yield records[position["row"]], scores


class RunInference(beam.PTransform):
    """Cleaned records to ``(record, probabilities)``, dead letters, and token stats
    (``(("tokens", "total" | "oov"), n)`` pairs, for the report's OOV rate)."""

    def __init__(self, handle: ModelHandle, min_batch: int, max_batch: int):
        super().__init__()
        self._handle, self._min, self._max = handle, min_batch, max_batch

    def expand(self, records):
        batches = records | "Batch" >> beam.BatchElements(
            min_batch_size=self._min, max_batch_size=self._max
        )
        vectors = batches | "Vectorize" >> beam.ParDo(VectorizeFn(self._handle)).with_outputs(
            DEAD, STATS, main=RECORDS
        )
        scores = vectors.records | "Predict" >> beam.ParDo(PredictFn(self._handle)).with_outputs(
            DEAD, main=RECORDS
        )
        dead = (vectors.dead_letters, scores.dead_letters) | "FlattenDead" >> beam.Flatten()
        return scores.records, dead, vectors[STATS]
