"""Options of ``catalog-tagger similar``, and the frozen config built from them.

Beside ``OutputOptions`` (``--output-dir``, ``--wait``) and ``PredictOptions``'
``--model-dir`` (reused: Beam parses every options class in one argparse parser,
so a second definition breaks it). ``--labels`` is Beam's own flag (Dataflow job
labels, ``--labels key=value``), so a bare ``--labels`` (no value after it) is
read here as ``--label-neighbours`` before Beam parses the rest.
"""

from __future__ import annotations

import dataclasses

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from pipelines.components import jobs
from pipelines.components.neighbours import EXACT_BELOW, INDEX_KINDS, IndexSettings
from pipelines.components.options import OutputOptions, run_settings
from pipelines.components.publish import STAGING, RunSettings
from pipelines.components.scoring_options import WRITE_EMBEDDINGS, PredictOptions

LABEL_MODE_FLAG = "--label-neighbours"


class SimilarOptions(PipelineOptions):
    """Similar videos (or labels) by cosine similarity of embeddings."""

    @classmethod
    def _add_argparse_args(cls, parser):
        # --embeddings PATH is PredictOptions' --embeddings (one flag, two jobs)
        parser.add_argument("--k", type=int, default=10, help="Similar videos (labels) per row.")
        parser.add_argument(
            "--video-ids",
            help="Only rows for these videos: a text file, one video_id a line (all videos "
            "stay candidates). Default: a row for every video.",
        )
        parser.add_argument(
            "--index",
            default="auto",
            choices=INDEX_KINDS,
            help=f"hnsw: approximate (faiss HNSW); flat: exact; auto: flat below "
            f"{EXACT_BELOW:,} vectors, else hnsw.",
        )
        parser.add_argument("--exact", action="store_true", help="Exact search: --index flat.")
        parser.add_argument(
            "--ef-search",
            type=int,
            default=IndexSettings().ef_search,
            help="HNSW candidates kept per query: higher is slower with more recall "
            "(the report gives recall@k against exact search).",
        )
        parser.add_argument(
            LABEL_MODE_FLAG,
            action="store_true",
            help="Each label's nearest labels, not videos: with --model-dir M (a train "
            "--model-dir whose export has the label_embeddings signature). Also spelled --labels.",
        )


@dataclasses.dataclass(frozen=True)
class SimilarConfig:
    output_dir: str
    embeddings: str | None = None
    model_dir: str | None = None  # label mode
    k: int = 10
    video_ids: str | None = None
    index: IndexSettings = IndexSettings()
    run: RunSettings = RunSettings()

    @property
    def labels(self) -> bool:
        return self.model_dir is not None

    @property
    def staging_dir(self) -> str:
        return FileSystems.join(self.output_dir, STAGING)

    @property
    def export_dir(self) -> str:
        return FileSystems.join(self.model_dir, artifacts.SAVED_MODEL_DIR)


def split_labels_flag(argv: list[str]) -> list[str]:
    """``argv`` with each bare ``--labels`` (no value follows) as ``--label-neighbours``."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--labels" and (i + 1 == len(out) or out[i + 1].startswith("--")):
            out[i] = LABEL_MODE_FLAG
    return out


def config_from_options(options: PipelineOptions) -> SimilarConfig:
    """Checks the flags (one-line ``JobError``s) and resolves them."""
    opts, output_dir = options.view_as(SimilarOptions), options.view_as(OutputOptions).output_dir
    model_dir = options.view_as(PredictOptions).model_dir
    embeddings = options.view_as(PredictOptions).embeddings
    jobs.require(embeddings != WRITE_EMBEDDINGS, "--embeddings needs a path: a predict output")
    jobs.require(output_dir, "--output-dir is required")
    jobs.require(opts.k >= 1, f"--k must be at least 1, not {opts.k}")
    jobs.require(opts.ef_search >= 1, f"--ef-search must be at least 1, not {opts.ef_search}")
    jobs.require(
        not (opts.exact and opts.index == "hnsw"), "--exact and --index hnsw exclude each other"
    )
    if opts.label_neighbours:
        jobs.require(model_dir, "--labels needs --model-dir")
        jobs.require(not embeddings, "--labels and --embeddings exclude each other")
    else:
        jobs.require(embeddings, "--embeddings (or --model-dir with --labels) is required")
    index = IndexSettings(kind="flat" if opts.exact else opts.index, ef_search=opts.ef_search)
    return SimilarConfig(
        output_dir=output_dir,
        embeddings=None if opts.label_neighbours else embeddings,
        model_dir=model_dir if opts.label_neighbours else None,
        k=opts.k,
        video_ids=opts.video_ids,
        index=index,
        run=run_settings(options),
    )
