"""Nearest neighbours by cosine similarity with faiss: the index is built once,
then queried a batch at a time on the workers.

Vectors are L2-normalised, so faiss's inner-product metric is the cosine.
``BuildIndex``: every ``(id, vector)`` pair meets in one ``CombineGlobally``
(``CollectVectorsFn``, which also checks the dimensions: a problem refuses to
publish); one worker builds the index, saves it (with the ids, rows sorted by id)
to a file under the job's staging directory and measures the index's recall@k
against exact search. The file's path and that report are one small element, a
side input of ``QueryIndexFn``, which loads the file once per worker process
(``apache_beam.utils.shared``) and answers a whole batch with one ``index.search``.

Index kinds (:class:`IndexSettings`):

- ``flat``: ``IndexFlatIP``, exact (brute force: queries x vectors x dim flops);
- ``hnsw``: ``IndexHNSWFlat`` (inner product), approximate. ``M = 32`` links per
  node (memory ~ 4 x dim + 8 x M bytes a vector; recall rises with M),
  ``efConstruction = 200`` (a better graph for a slower build: on 30,000 random
  256-d vectors, the hard case, recall@10 at efSearch 128 is 0.93, against 0.81
  with 100 and 0.66 with faiss's 40, for a 2-5x longer build), ``efSearch = 128``
  (candidates kept per query, never below k + 1; ``--ef-search`` trades speed
  for recall: 0.90 at 64, 0.96 at 256 in that case). Real embeddings, with
  fewer intrinsic dimensions, do better; the report measures it;
- ``auto`` (the default): ``flat`` below ``EXACT_BELOW`` (50,000) vectors, else
  ``hnsw``. Exact all-pairs search costs n^2 x dim multiply-adds, spread over the
  workers; an HNSW graph is built on one worker. Measured on 2 busy cores, dim 256:
  30,000 vectors, exact 16 s against an HNSW build of 50-100 s; 100,000 vectors,
  exact 233 s against build 337 s + queries 101 s. Below 50,000 exact is as fast
  and loses nothing; above, its n^2 grows past HNSW's ~n log n.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
import typing
import uuid

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from pipelines.components.embeddings import CollectVectorsFn

EXACT_BELOW = 50_000
RECALL_QUERIES = 1_000
INDEX_KINDS = ("auto", "hnsw", "flat")


@dataclasses.dataclass(frozen=True)
class IndexSettings:
    """Which index, and its HNSW parameters (see the module docstring)."""

    kind: str = "auto"
    m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    exact_below: int = EXACT_BELOW
    recall_queries: int = RECALL_QUERIES

    def resolved(self, vectors: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if vectors < self.exact_below else "hnsw"


class IndexRef(typing.NamedTuple):
    path: str | None  # the saved index (None: no vectors)
    info: dict  # the report's "index" section


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32, C order); all-zero rows stay zero."""
    matrix = np.ascontiguousarray(matrix, np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), np.float32)


def build_index(matrix: np.ndarray, settings: IndexSettings):
    """The faiss index of ``matrix`` (normalised rows) of the kind ``settings`` resolve to."""
    import faiss

    dim = matrix.shape[1]
    if settings.resolved(len(matrix)) == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, settings.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
    index.add(matrix)
    return index


def search(index, queries: np.ndarray, query_ids: list[str], ids: list[str], k: int) -> list:
    """Each query's ``[(id, score), ...]``: its k best, itself left out, best first."""
    return ranked(*index.search(queries, k + 1), query_ids, ids, k)


def ranked(scores, rows, query_ids: list[str], ids: list[str], k: int) -> list:
    """faiss's ``(scores, rows)`` of ``k + 1`` results -> :func:`search`'s lists."""
    found = []
    for query_id, row_scores, row_ids in zip(
        query_ids, scores.tolist(), rows.tolist(), strict=True
    ):
        pairs = [(ids[r], s) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
        found.append([(other, s) for other, s in pairs if other != query_id][:k])
    return found


def sample_rows(ids: list[str], count: int) -> list[int]:
    """The recall sample: the ``count`` ids with the smallest MD5 digests (any runner,
    any input order: the same queries)."""
    digest = [hashlib.md5(video_id.encode("utf-8")).hexdigest() for video_id in ids]
    return sorted(range(len(ids)), key=digest.__getitem__)[:count]


def measure_recall(index, matrix: np.ndarray, ids: list[str], k: int, count: int) -> dict:
    """recall@k of ``index`` against exact search, on the :func:`sample_rows` queries:
    ``value``, the mean share of each query's exact k neighbours the index also
    returned, and ``lower_bound``, 3 standard errors below it (the whole catalog's
    recall is above it in all but ~1 run in 700)."""
    import faiss

    rows = sample_rows(ids, count)
    queries, query_ids = matrix[rows], [ids[r] for r in rows]
    approximate = search(index, queries, query_ids, ids, k)
    found = faiss.knn(queries, matrix, min(k + 1, len(ids)), faiss.METRIC_INNER_PRODUCT)
    exact = ranked(*found, query_ids, ids, k)
    shares = [
        len({o for o, _ in a} & {o for o, _ in e}) / len(e)
        for a, e in zip(approximate, exact, strict=True)
        if e
    ]
    mean = float(np.mean(shares)) if shares else 1.0
    spread = float(np.std(shares) / np.sqrt(len(shares))) if len(shares) > 1 else 0.0
    return {"value": round(mean, 4), "lower_bound": round(max(mean - 3 * spread, 0.0), 4),
            "queries": len(shares), "exact": False}  # fmt: skip


def save_index(path: str, index, ids: list[str]) -> None:
    import faiss

    encoded = [video_id.encode("utf-8") for video_id in ids]
    offsets = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, index=faiss.serialize_index(index), offsets=offsets,
             ids=np.frombuffer(b"".join(encoded), np.uint8))  # fmt: skip
    with FileSystems.create(path) as handle:
        handle.write(buffer.getvalue())


class LoadedIndex:
    """An index file loaded: ``index`` (faiss) and ``ids`` (its rows' video ids)."""

    def __init__(self, path: str, ef_search: int):
        import faiss

        self.path = path
        with FileSystems.open(path) as handle:
            saved = np.load(io.BytesIO(handle.read()))
        self.index = faiss.deserialize_index(saved["index"])
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = ef_search
        blob, offsets = saved["ids"].tobytes(), saved["offsets"].tolist()
        self.ids = [blob[a:b].decode("utf-8") for a, b in zip(offsets, offsets[1:], strict=False)]


def ef_search(settings: IndexSettings, k: int) -> int:
    return max(settings.ef_search, k + 1)


def build_and_save(collected, staging_dir: str, settings: IndexSettings, k: int) -> IndexRef:
    """``(ids, matrix, problem)`` -> the index saved under ``staging_dir``, and its report."""
    ids, matrix, problem = collected
    if not ids:
        return IndexRef(None, {"vectors": 0, **({"problem": problem} if problem else {})})
    started = time.monotonic()
    matrix = normalise(matrix)
    index = build_index(matrix, settings)
    kind = settings.resolved(len(ids))
    info = {"kind": kind, "vectors": len(ids), "dim": int(matrix.shape[1]),
            "build_seconds": round(time.monotonic() - started, 3)}  # fmt: skip
    if kind == "hnsw":
        index.hnsw.efSearch = ef_search(settings, k)
        info |= {"m": settings.m, "ef_construction": settings.ef_construction,
                 "ef_search": index.hnsw.efSearch}  # fmt: skip
        info["recall"] = measure_recall(index, matrix, ids, k, settings.recall_queries)
    else:
        info["recall"] = {"value": 1.0, "lower_bound": 1.0, "queries": 0, "exact": True}
    path = FileSystems.join(staging_dir, "index", f"index-{uuid.uuid4().hex}.npz")
    save_index(path, index, ids)
    return IndexRef(path, info)


class BuildIndex(beam.PTransform):
    """``(id, vector)`` pairs (unique ids) -> one :class:`IndexRef`."""

    def __init__(self, staging_dir: str, settings: IndexSettings, k: int):
        super().__init__()
        self._staging, self._settings, self._k = staging_dir, settings, k

    def expand(self, pairs):
        return (
            pairs
            | "CollectVectors" >> beam.CombineGlobally(CollectVectorsFn())
            | "BuildAndSave" >> beam.Map(build_and_save, self._staging, self._settings, self._k)
        )


class QueryIndexFn(beam.DoFn):
    """A batch of ``(id, vector)`` queries -> one output row each:
    ``{"video_id", "similar": [{"video_id", "score"}, ...]}`` (scores to 6 places)."""

    def __init__(self, k: int, ef: int):
        self._k, self._ef = k, ef
        self._shared = shared.Shared()  # one loaded index per worker process

    def setup(self):
        self._loaded = None
        self._queries = Metrics.counter("similar", "queries")
        self._batches = Metrics.counter("similar", "search_batches")

    def process(self, batch: list, ref: IndexRef) -> typing.Iterator[dict]:
        if ref.path is not None:  # None: nothing indexed, the publish step refuses
            yield from self._rows(batch, ref)

    def _rows(self, batch: list, ref: IndexRef) -> typing.Iterator[dict]:
        if self._loaded is None or self._loaded.path != ref.path:
            self._loaded = self._shared.acquire(
                lambda: LoadedIndex(ref.path, self._ef), tag=ref.path
            )
        query_ids = [video_id for video_id, _ in batch]
        queries = normalise(np.stack([vector for _, vector in batch]))
        found = search(self._loaded.index, queries, query_ids, self._loaded.ids, self._k)
        self._queries.inc(len(batch))
        self._batches.inc()
        for video_id, pairs in zip(query_ids, found, strict=True):
            similar = [{"video_id": o, "score": round(float(s), 6)} for o, s in pairs]
            yield {"video_id": video_id, "similar": similar}
