"""The layout of a preprocess output, which the trainer and retraining read back.

OUT/data/{train,eval,test}/part-*.tfrecord.gz   transformed examples (GZIP)
OUT/transform_fn/, OUT/transformed_metadata/    the tf.Transform graph
OUT/preprocess_config.json                      the settings (PreprocessConfig)
OUT/preprocess_report.json                      counts, vocabulary, labels
"""

import posixpath

PREPROCESS_CONFIG_FILE = "preprocess_config.json"  # also carried in the export's assets.extra
PREPROCESS_REPORT_FILE = "preprocess_report.json"
DATA_DIR = "data"
SHARD_SUFFIX = ".tfrecord.gz"


def shard_prefix(output_dir: str, split: str) -> str:
    """The prefix the writer gives a split's shards (``part-00000-of-00004...``)."""
    return posixpath.join(output_dir, DATA_DIR, split, "part")


def shard_pattern(output_dir: str, split: str) -> str:
    """A glob that matches every shard of ``split``."""
    return posixpath.join(output_dir, DATA_DIR, split, "*" + SHARD_SUFFIX)
