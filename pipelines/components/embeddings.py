"""Video embeddings on disk: ``OUTPUT/embeddings/part-*.parquet``.

One row per video, two columns: ``video_id: string`` and ``embedding:
list<float32>`` (every row of one output has the same length). Parquet, because
the three places embeddings go all read it natively:

- BigQuery loads it as is (``bq load --source_format=PARQUET
  --parquet_enable_list_inference``: ``embedding`` becomes ``ARRAY<FLOAT64>``;
  the lists are written in the standard, "compliant" nested layout for that);
- numpy / pandas read it with pyarrow (``pyarrow.parquet.read_table(path)``,
  then ``np.stack(table["embedding"].to_numpy(zero_copy_only=False))``);
- Beam reads it with ``ReadFromParquet`` (here: :class:`ReadEmbeddings`).

:class:`WriteEmbeddings` writes ``(video_id, vector)`` pairs (float32 numpy
vectors) as such shards under ``<output_dir>/embeddings/``; :class:`ReadEmbeddings`
gives the same pairs back from that directory, from the directory above it (a
predict ``--output-dir``), from a directory of ``*.parquet`` files, or from a glob.
:class:`CollectVectorsFn` gathers pairs into one matrix, or says in one line why
they cannot be one (dimensions differ, empty or NaN/inf vectors).
"""

from __future__ import annotations

import typing

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import ReadAllFromParquetBatched, WriteToParquetBatched

EMBEDDINGS_DIR = "embeddings"
ID_COLUMN, VECTOR_COLUMN = "video_id", "embedding"
SCHEMA = pa.schema(
    [
        pa.field(ID_COLUMN, pa.string(), nullable=False),
        pa.field(VECTOR_COLUMN, pa.list_(pa.float32()), nullable=False),
    ]
)
# rows a row group: ~8 MB of 256-d vectors; big enough for Parquet, small for a worker
_MIN_ROWS, _MAX_ROWS = 256, 8192


def to_table(pairs: list[tuple[str, np.ndarray]]) -> pa.Table:
    """``(video_id, vector)`` pairs -> one Arrow table of :data:`SCHEMA`."""
    vectors = [np.asarray(vector, np.float32).reshape(-1) for _, vector in pairs]
    offsets = np.zeros(len(vectors) + 1, np.int32)
    np.cumsum([len(vector) for vector in vectors], out=offsets[1:])
    values = np.concatenate(vectors) if vectors else np.zeros(0, np.float32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float32()))
    ids = pa.array([str(video_id) for video_id, _ in pairs], pa.string())
    return pa.Table.from_arrays([ids, lists], schema=SCHEMA)


def from_table(table: pa.Table) -> typing.Iterator[tuple[str, np.ndarray]]:
    """An Arrow table (a row group) -> its ``(video_id, float32 vector)`` pairs.

    A null embedding comes back as an empty vector (whose dimension, 0, the reader
    then rejects); a null ``video_id`` is an error."""
    ids = table.column(ID_COLUMN).to_pylist()
    lists = table.column(VECTOR_COLUMN).combine_chunks()
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    offsets = lists.offsets.to_numpy()
    offsets = offsets - offsets[0]
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    for row, video_id in enumerate(ids):
        if video_id is None:
            raise ValueError(f"an embeddings row without a {ID_COLUMN} (row {row})")
        vector = values[offsets[row] : offsets[row + 1]] if valid[row] else values[:0]
        yield video_id, vector.copy()


def vector_kind(vector: np.ndarray) -> int | str:
    """A usable vector's dimension, or what is wrong with it."""
    if vector.ndim != 1 or not vector.size:
        return "empty"
    return vector.size if np.isfinite(vector).all() else "non-finite"


def describe(groups: dict) -> str:
    """``{kind: (ids, vectors)}`` with more than one kind, or a bad one, as one line."""
    order = sorted(groups, key=lambda kind: (isinstance(kind, str), str(kind).zfill(9)))
    parts = [
        f"{len(groups[kind][0]):,} embeddings "
        + (f"have {kind} values" if isinstance(kind, int) else f"are {kind}")
        + f" (e.g. {min(groups[kind][0])!r})"
        for kind in order
    ]
    dims = sum(isinstance(kind, int) for kind in groups)
    return ("dimension mismatch" if dims > 1 else "unusable embeddings") + ": " + ", ".join(parts)


class CollectVectorsFn(beam.CombineFn):
    """``(id, vector)`` pairs -> ``(ids, matrix, None)``: rows sorted by id, as read;
    or ``([], empty, problem)`` when the vectors differ in dimension or some are empty
    or hold NaN/inf (``problem``: one line with counts and an example id of each)."""

    def create_accumulator(self):
        return {}  # {dimension or problem: (ids, vectors)}

    def add_input(self, accumulator, pair):
        video_id, vector = pair
        vector = np.asarray(vector, np.float32)
        kind = vector_kind(vector)
        ids, vectors = accumulator.setdefault(kind, ([], []))
        ids.append(video_id)
        if isinstance(kind, int):
            vectors.append(vector)
        return accumulator

    def merge_accumulators(self, accumulators):
        merged: dict = {}
        for accumulator in accumulators:
            for kind, (ids, vectors) in accumulator.items():
                into = merged.setdefault(kind, ([], []))
                into[0].extend(ids)
                into[1].extend(vectors)
        return merged

    def extract_output(self, accumulator):
        if len(accumulator) > 1 or any(isinstance(kind, str) for kind in accumulator):
            return [], np.zeros((0, 0), np.float32), describe(accumulator)
        ids, vectors = next(iter(accumulator.values()), ([], []))
        order = sorted(range(len(ids)), key=ids.__getitem__)
        matrix = np.stack([vectors[i] for i in order]) if ids else np.zeros((0, 0), np.float32)
        return [ids[i] for i in order], matrix, None


class WriteEmbeddings(beam.PTransform):
    """``(video_id, vector)`` pairs -> ``<output_dir>/embeddings/part-*.parquet``;
    the written file names (for ``Publish``)."""

    def __init__(self, output_dir: str, num_shards: int = 0):
        super().__init__()
        self._prefix = FileSystems.join(output_dir, EMBEDDINGS_DIR, "part")
        self._shards = num_shards

    def expand(self, pairs):
        return (
            pairs
            | "Batch" >> beam.BatchElements(min_batch_size=_MIN_ROWS, max_batch_size=_MAX_ROWS)
            | "ToTable" >> beam.Map(to_table)
            | "Write"
            >> WriteToParquetBatched(
                self._prefix,
                SCHEMA,
                codec="snappy",
                use_compliant_nested_type=True,  # LIST/element: what BigQuery infers lists from
                file_name_suffix=".parquet",
                num_shards=self._shards,
            )
        )


def embeddings_pattern(path: str) -> str:
    """The files ``path`` names: a glob or a ``.parquet`` file as is; a directory
    holding ``embeddings/`` (a predict output): its ``part-*.parquet``; any other
    directory: its ``*.parquet``."""
    if any(char in path for char in "*?[") or path.endswith(".parquet"):
        return path
    below = FileSystems.join(path, EMBEDDINGS_DIR)
    if FileSystems.exists(below):
        return FileSystems.join(below, "part-*.parquet")
    return FileSystems.join(path, "*.parquet")


class ReadEmbeddings(beam.PTransform):
    """Embedding files (see :func:`embeddings_pattern`) -> ``(video_id, vector)``
    pairs, or ``(file_name, (video_id, vector))`` with ``with_filename``."""

    def __init__(self, file_pattern_or_dir: str, with_filename: bool = False):
        super().__init__()
        self._path, self._with_filename = file_pattern_or_dir, with_filename

    def expand(self, pbegin):
        tables = (
            pbegin
            | "Pattern" >> beam.Create([embeddings_pattern(self._path)])
            | "ReadParquet"
            >> ReadAllFromParquetBatched(columns=[ID_COLUMN, VECTOR_COLUMN], with_filename=True)
        )
        return tables | "ToPairs" >> beam.FlatMap(_pairs, self._with_filename)


def _pairs(named_table, with_filename: bool):
    name, table = named_table
    for pair in from_table(table):
        yield (name, pair) if with_filename else pair
