"""Batched inference of the batch predictor, on Beam ML's ``RunInference``.

``TaggerModelHandler`` is a Beam ML ``ModelHandler``: ``RunInference`` batches
the records (``min_batch``/``max_batch``), loads the export once per worker
process (or once per machine with ``share_across_processes``) and reports the
standard metrics (``num_inferences``, ``inference_batch_latency_micro_secs``,
``load_model_latency_milli_secs`` ...). For a text model a batch of raw records
goes through one call of the export's ``raw`` signature, text cleaning and the
tf.Transform graph included (a fusion model: ``vectorize``, then ``fused`` with
the AV inputs); a YouTube-8M model gets one dense batch (``features``/``frames``).

A batch that fails on its data (``data_errors``) is split in halves and retried
inside ``run_inference``, so one bad video only dead-letters itself; any other
error is a bug and fails the job.
"""

from __future__ import annotations

import typing

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference import base
from apache_beam.transforms.window import GlobalWindows

from pipelines.components.catalog_io import DEAD, EMPTY_TEXT, RECORDS, dead_letter
from pipelines.components.steps import av_inputs, raw_text
from transforms.records import AV_FIELDS, AV_FLAG, RecordError

STATS = "stats"
EMBEDDINGS = "embeddings"
MODES = ("text", "video", "frames")  # a text (or fusion) model; YouTube-8M video- or frame-level


def data_errors() -> tuple[type[Exception], ...]:
    """What a record's content can make inference raise: TF rejecting its input, or a
    value failing our validation. Anything else (TypeError, AttributeError, a missing
    signature ...) is a bug in the job and must fail it, not dead-letter the catalog."""
    import tensorflow as tf

    return tf.errors.InvalidArgumentError, RecordError


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


class Scores(typing.NamedTuple):
    """A record's inference: its label probabilities, and its token counts (text)."""

    probabilities: np.ndarray
    tokens: int = 0
    oov_tokens: int = 0
    has_av: bool = False
    embedding: np.ndarray | None = None  # with ``embeddings=True``: the video's vector


class TopScores(typing.NamedTuple):
    """A wide label space's scores as they leave the graph: the best labels only."""

    indices: np.ndarray  # [k] label ids, best first
    scores: np.ndarray  # [k]


class Failure(typing.NamedTuple):
    """A record whose own data made inference fail: the error's type and message."""

    reason: str
    detail: str


class TaggerModelHandler(base.ModelHandler):
    """The exported SavedModel (``models.serving.LoadedTagger``) as a Beam ML model
    handler: records in, one ``PredictionResult`` per record out, whose ``inference``
    is ``Scores`` or, for a record that failed on its own data, ``Failure``. With
    ``embeddings=True`` (text models with a hidden layer) each ``Scores`` also carries
    the video's embedding, from the same graph call (the ``embed`` signature). With
    ``candidates=k`` (wide label spaces) only each video's ``k`` best labels leave the
    graph (the ``top_k`` signature): ``Scores.probabilities`` is then a ``TopScores``."""

    def __init__(
        self, export_dir: str, mode: str = "text", *, av_sizes: dict | None = None,
        min_batch: int = 16, max_batch: int = 512, share_across_processes: bool = False,
        embeddings: bool = False, candidates: int | None = None,
    ):  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
        if embeddings and mode != "text":
            raise ValueError(f"embeddings need a text model. Received: mode={mode!r}")
        super().__init__(
            min_batch_size=min_batch, max_batch_size=max_batch, large_model=share_across_processes
        )
        self._export_dir, self._mode, self._av_sizes = export_dir, mode, av_sizes
        self._embeddings, self._candidates = embeddings, candidates  # top-k in the graph

    @property
    def mode(self) -> str:
        return self._mode

    def load_model(self):
        from models.serving import LoadedTagger

        return LoadedTagger(self._export_dir)

    def get_metrics_namespace(self) -> str:
        return "predict"

    def run_inference(self, batch, model, inference_args=None):
        del inference_args  # none are taken
        score = self._text if self._mode == "text" else self._dense
        results, failed = [], []
        on_failure = lambda item, err: failed.append((item, err))  # noqa: E731
        for part, scores in run_with_split(
            list(batch), lambda part: score(model, part), on_failure, data_errors()
        ):
            results += [base.PredictionResult(r, s) for r, s in zip(part, scores, strict=True)]
        for record, err in failed:
            reason = err.reason if isinstance(err, RecordError) else type(err).__name__
            failure = Failure(
                reason, (err.detail if isinstance(err, RecordError) else str(err))[:500]
            )
            results.append(base.PredictionResult(record, failure))
        return results

    def _text(self, model, records: list[dict]) -> list[Scores]:
        titles, descriptions, tags = zip(*(raw_text(r) for r in records), strict=True)
        embedded = None
        if self._candidates and not self._embeddings:
            out = model.top_k_raw(titles, descriptions, tags, self._candidates)
            probabilities = [TopScores(i, v) for i, v in
                             zip(out["top_k_indices"], out["top_k_scores"], strict=True)]  # fmt: skip
            has_av = [False] * len(records)
        elif self._embeddings:
            out = model.embed_raw(titles, descriptions, tags)
            probabilities, has_av = out["probabilities"], [False] * len(records)
            embedded = out["embedding"]
        elif not model.is_fusion():
            out = model.score_raw(titles, descriptions, tags)
            probabilities, has_av = out["probabilities"], [False] * len(records)
        else:
            av = [av_inputs(r, self._av_sizes) for r in records]
            out = model.vectorize(titles, descriptions, tags)
            stacked = {name: np.array([a[name] for a in av], np.float32)
                       for name in (*AV_FIELDS, AV_FLAG)}  # fmt: skip
            sparse = (out["indices"], out["values"], out["dense_shape"])
            probabilities = model.predict_fused(*sparse, stacked)
            has_av = [bool(a[AV_FLAG]) for a in av]
        counts = zip(
            out["num_tokens"].tolist(), out["num_oov_tokens"].tolist(), has_av, strict=True
        )
        scores = [Scores(p, *c) for p, c in zip(probabilities, counts, strict=True)]
        if embedded is None:
            return scores
        return [s._replace(embedding=e) for s, e in zip(scores, embedded, strict=True)]

    def _dense(self, model, records: list[dict]) -> list[Scores]:
        from pipelines.components.yt8m_io import stack

        probabilities = model.predict_dense(stack(records, self._mode == "frames"))
        return [Scores(p) for p in probabilities]


class _SplitResultsFn(beam.DoFn):
    """``PredictionResult``s to ``(record, probabilities)``, dead letters and, per
    bundle, the summed token counts (``(("tokens", "total" | "oov"), n)``). A text
    record with no token is marked ``empty_text``."""

    def __init__(self, text_mode: bool):
        self._text_mode = text_mode

    def start_bundle(self):
        self._tokens = self._oov = 0

    def process(self, result: base.PredictionResult) -> typing.Iterator:
        record, inference = result.example, result.inference
        if isinstance(inference, Failure):
            source, offset = record.get("_pos", ("", -1))
            raw = {key: value for key, value in record.items() if key != "_pos"}
            dead = dead_letter("inference", inference.reason, raw, source, offset, inference.detail)
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        self._tokens += inference.tokens
        self._oov += inference.oov_tokens
        if self._text_mode and not inference.tokens and not inference.has_av:
            record = {**record, EMPTY_TEXT: True}  # scored as no words: the model's prior
        if inference.embedding is not None:
            yield beam.pvalue.TaggedOutput(EMBEDDINGS, (record["video_id"], inference.embedding))
        yield record, inference.probabilities

    def finish_bundle(self):
        for key, count in ((("tokens", "total"), self._tokens), (("tokens", "oov"), self._oov)):
            yield beam.pvalue.TaggedOutput(STATS, GlobalWindows.windowed_value((key, count)))


class Inferred(typing.NamedTuple):
    """``RunInference``'s outputs."""

    scores: beam.PCollection  # (record, probabilities)
    dead: beam.PCollection  # inference-stage dead letters
    stats: beam.PCollection  # ((key, kind), count) token counts
    embeddings: beam.PCollection  # (video_id, vector), when the handler embeds


class RunInference(beam.PTransform):
    """Records to ``Inferred``: ``(record, probabilities)``, dead letters, token stats
    and embeddings, through Beam ML's ``RunInference`` with a :class:`TaggerModelHandler`."""

    def __init__(self, handler: TaggerModelHandler):
        super().__init__()
        self._handler = handler

    def expand(self, records):
        split = (
            records
            | "Infer" >> base.RunInference(self._handler)
            | "SplitResults"
            >> beam.ParDo(_SplitResultsFn(self._handler.mode == "text")).with_outputs(
                DEAD, STATS, EMBEDDINGS, main=RECORDS
            )
        )
        return Inferred(split[RECORDS], split[DEAD], split[STATS], split[EMBEDDINGS])
