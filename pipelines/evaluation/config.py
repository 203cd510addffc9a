"""The evaluate job's settings: the frozen config resolved from its flags
(``EvaluateOptions``, in ``pipelines.components.options``) and from the model
(text settings, schema, labels, roll-up), shared with ``tune-thresholds``."""

from __future__ import annotations

import dataclasses

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from models import artifacts
from models.card import TEXT, TEXT_KINDS, kind_of
from pipelines.components import jobs, report
from pipelines.components import options as flags
from pipelines.components.preprocessing import PreprocessConfig
from pipelines.components.scoring import THRESHOLDS_USED_FILE
from transforms.records import RecordSchema
from transforms.splits import SplitConfig
from transforms.text import TextConfig


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    predictions: str
    catalog: str
    output_dir: str
    schema: RecordSchema = RecordSchema()
    split: str | None = None
    split_config: SplitConfig = SplitConfig()
    text: TextConfig = TextConfig()
    input_format: str = "auto"
    num_bins: int = 1000
    exact: bool = True
    baseline: str | None = None
    label_names: tuple = ()  # the model's labels (YouTube-8M catalogs hold class ids)
    rollup: tuple | None = None  # (Taxonomy, method): metrics per generic category too
    av_sizes: dict | None = None  # fusion models: AV-only videos are evaluated too
    thresholds: dict = dataclasses.field(default_factory=dict)
    baseline_thresholds: dict = dataclasses.field(default_factory=dict)

    def sources(self) -> dict[str, str]:
        """Predict outputs to join: ``predictions`` and, if any, ``baseline``."""
        found = {"predictions": self.predictions, "baseline": self.baseline}
        return {name: path for name, path in found.items() if path}


def config_from_options(options: PipelineOptions) -> EvaluateConfig:
    opts, catalog = options.view_as(flags.EvaluateOptions), options.view_as(flags.CatalogOptions)
    labelled = options.view_as(flags.NightlyOptions).catalog
    model_dir = options.view_as(flags.PredictOptions).model_dir
    output_dir = options.view_as(flags.OutputOptions).output_dir
    jobs.require(opts.predictions and labelled and output_dir,
                 "--predictions, --catalog and --output-dir are required")  # fmt: skip
    jobs.require(opts.num_bins >= 1, "--num-bins must be >= 1")
    jobs.require(model_dir or ".tfrecord" not in labelled,
                 "a YouTube-8M catalog needs --model-dir (label names)")  # fmt: skip
    try:
        text, schema, model = TextConfig(), flags.record_schema(options), {}
        if model_dir:
            model = _model_facts(options, model_dir)
            mapped = catalog.field or catalog.list_separator or catalog.label_map
            text, schema = model.pop("text", text), schema if mapped else model.pop("schema")
        yt8m = model.get("kind", TEXT) not in TEXT_KINDS  # the model says what it reads
        return EvaluateConfig(
            predictions=opts.predictions, catalog=labelled, output_dir=output_dir,
            schema=schema, split=opts.split, split_config=flags.split_config(options), text=text,
            input_format="yt8m" if yt8m else catalog.input_format, num_bins=opts.num_bins,
            exact=not opts.binned, baseline=opts.baseline, label_names=model.get("labels", ()),
            rollup=model.get("rollup"), av_sizes=model.get("av_sizes"),
        )  # fmt: skip
    except (ValueError, OSError) as err:
        raise jobs.JobError(str(err).splitlines()[0]) from None


def _model_facts(options, model_dir: str) -> dict:
    """Text settings, schema, labels and roll-up (``--rollup``) of the model."""
    from pipelines.components.scoring import rollup_config

    export_dir = FileSystems.join(model_dir, artifacts.SAVED_MODEL_DIR)
    labels = tuple(artifacts.read_extra(export_dir, artifacts.LABELS_FILE))
    card = artifacts.read_extra(export_dir, artifacts.CARD_FILE)
    facts = {"labels": labels, "schema": RecordSchema(), "kind": kind_of(card)}
    config_file = FileSystems.join(
        export_dir, artifacts.EXTRA_DIR, artifacts.PREPROCESS_CONFIG_FILE
    )
    if FileSystems.exists(config_file):
        trained = artifacts.read_extra(export_dir, artifacts.PREPROCESS_CONFIG_FILE)
        trained = jobs.from_jsonable(PreprocessConfig, trained)
        facts |= {"text": trained.text, "schema": trained.schema,
                  "av_sizes": trained.transform.av_sizes}  # fmt: skip
    rollup = rollup_config(options, export_dir)
    if rollup is not None:
        facts["rollup"] = (rollup.load(labels), rollup.method)
    return facts


def used_thresholds(predictions: str) -> dict:
    """The per-category thresholds a predict run applied (``{}`` if it did not say)."""
    path = FileSystems.join(predictions, THRESHOLDS_USED_FILE)
    return report.read_json(path) if FileSystems.exists(path) else {}
