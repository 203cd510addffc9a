"""tf.Transform over the split records, and the sharded GZIP TFRecord writer.

``AnalyzeAndTransform`` analyzes train only (vocabularies, stems, idf) and
transforms every split with that one graph; ``WriteExamples`` writes a split's
transformed rows as ``tf.train.Example`` shards.
"""

from __future__ import annotations

import apache_beam as beam
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.io.filesystem import CompressionTypes

from transforms.features import TransformConfig, make_preprocessing_fn
from transforms.layout import SHARD_SUFFIX
from transforms.records import SPLITS
from transforms.text import TextConfig


def _raw_features(record: dict, spec: dict) -> dict:
    return {name: record[name] for name in spec}


class AnalyzeAndTransform(beam.PTransform):
    """Analyzes train, transforms every split, writes the ``transform_fn``.

    Returns ``({split: transformed instance dicts}, transformed_metadata, written)``,
    ``written`` being what ``WriteTransformFn`` returns once it has written.
    """

    def __init__(self, config: TransformConfig, text: TextConfig, output_dir: str, temp_dir: str):
        super().__init__()
        self._config, self._text = config, text
        self._output_dir, self._temp_dir = output_dir, temp_dir

    def expand(self, records):
        spec = self._config.raw_feature_spec()
        metadata = tft.DatasetMetadata.from_feature_spec(spec)
        parts = records | "BySplit" >> beam.Partition(lambda r, _: SPLITS.index(r["split"]), 3)
        raw = {
            split: part | f"RawFeatures{split.title()}" >> beam.Map(_raw_features, spec)
            for split, part in zip(SPLITS, parts, strict=True)
        }
        with tft_beam.Context(temp_dir=self._temp_dir):
            (train, transformed_metadata), transform_fn = (
                raw["train"],
                metadata,
            ) | "AnalyzeAndTransformTrain" >> tft_beam.AnalyzeAndTransformDataset(
                make_preprocessing_fn(self._config, self._text)
            )
            outputs = {"train": train}
            for split in SPLITS[1:]:
                outputs[split], _ = (
                    (raw[split], metadata),
                    transform_fn,
                ) | f"Transform{split.title()}" >> tft_beam.TransformDataset()
            written = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(
                self._output_dir
            )
        return outputs, transformed_metadata, written


class WriteExamples(beam.PTransform):
    """Transformed rows to GZIP TFRecord shards of ``tf.train.Example``."""

    def __init__(self, prefix: str, schema, num_shards: int):
        super().__init__()
        self._prefix, self._schema, self._num_shards = prefix, schema, num_shards

    def expand(self, rows):
        coder = tft.coders.ExampleProtoCoder(self._schema)
        return (
            rows
            | "Encode" >> beam.Map(coder.encode)
            | "Write"
            >> beam.io.WriteToTFRecord(
                self._prefix,
                file_name_suffix=SHARD_SUFFIX,
                num_shards=self._num_shards,
                compression_type=CompressionTypes.GZIP,
            )
        )
