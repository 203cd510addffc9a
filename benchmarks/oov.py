"""OOV buckets: none (the default) against buckets, with and without ``--oov-rate``.

Each catalog is preprocessed twice (no buckets; ``--oov-buckets B``): the
splits are the same, since they hang on the cleaned text. The defaults train
on each, and test GAP@20 is reported on all test videos and on the OOV-heavy
quarter: the test videos whose share of words unseen in train is highest.

    python benchmarks/oov.py [--catalog netflix|youtube|youtube_random|all]
        [--reuse-dir DIR] [--buckets 1000] [--oov-rate 0.1] [--seeds 1]
        [--output benchmarks/results/oov.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.quality import CATALOGS, preprocess_catalog  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", choices=(*CATALOGS, "all"), default="all")
    parser.add_argument("--reuse-dir", help="Keep/reuse preprocess outputs in DIR.")
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--oov-rate", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=1, help="train --seeds of each model.")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks/results/oov.json"))
    return parser.parse_args(argv)


def oov_share(data_dir: str) -> dict[str, float]:
    """video id -> share of its words outside the train vocabulary (test split)."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from models.text.data import shard_files

    full = tft.TFTransformOutput(data_dir).transformed_feature_spec()
    spec = {k: full[k] for k in ("video_id", "num_tokens", "num_oov_tokens")}
    out = {}
    records = tf.data.TFRecordDataset(shard_files(data_dir, "test"), compression_type="GZIP")
    for batch in records.batch(1024):
        rows = tf.io.parse_example(batch, spec)
        for vid, n, oov in zip(*(rows[k].numpy() for k in spec), strict=True):
            out[vid.decode()] = oov / max(n, 1)
    return out


def test_scores(data_dir: str, hparams) -> tuple:
    """Trains ``hparams``; ``(video ids, test probabilities, test labels)`` from the
    exported SavedModel's ``sparse`` signature."""
    import tensorflow as tf

    from models.text.data import make_dataset
    from models.text.train import TrainConfig, load_training_data, train

    data = load_training_data(data_dir)
    ids, scores, labels = [], [], []
    with tempfile.TemporaryDirectory(prefix="oov-model-") as model_dir:
        train(TrainConfig(data_dir, model_dir, hparams))
        serve = tf.saved_model.load(os.path.join(model_dir, "saved_model")).signatures["sparse"]
        for features, y in make_dataset(data.files["test"], data.output, data.spec, 256):
            bow = features["bow"]
            out = serve(indices=bow.indices, values=bow.values, dense_shape=bow.dense_shape)
            ids += [v.decode() for v in features["video_id"].numpy()]
            scores.append(out["probabilities"].numpy())
            labels.append(y.numpy())
    return ids, np.concatenate(scores), np.concatenate(labels)


def run_catalog(name: str, args, work: str) -> dict:
    from models import metrics
    from models.text.model import HParams

    plain, bucketed = os.path.join(work, name), os.path.join(work, f"{name}-oov{args.buckets}")
    preprocess_catalog(name, plain)
    preprocess_catalog(name, bucketed, ("--oov-buckets", str(args.buckets)))
    share = oov_share(bucketed)
    base = HParams(seeds=args.seeds)
    variants = {
        "no buckets (default)": (plain, base),
        f"{args.buckets} buckets": (bucketed, base),
        f"{args.buckets} buckets + oov_rate {args.oov_rate}": (
            bucketed, dataclasses.replace(base, oov_rate=args.oov_rate)),
    }  # fmt: skip
    cut = np.quantile(list(share.values()), 0.75)
    result = {"oov_heavy_quarter_min_share": float(cut), "variants": {}}
    for label, (data_dir, hp) in variants.items():
        ids, scores, labels = test_scores(data_dir, hp)
        heavy = np.array([share[i] >= cut for i in ids])
        result["variants"][label] = {
            "all": metrics.gap_at_k(scores, labels),
            "oov_heavy_quarter": metrics.gap_at_k(scores[heavy], labels[heavy]),
            "videos": len(ids), "heavy_videos": int(heavy.sum()),
        }  # fmt: skip
        print(f"[{name}] {label}: {result['variants'][label]}", flush=True)
    return result


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    names = list(CATALOGS) if args.catalog == "all" else [args.catalog]
    previous = {}
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as handle:
            previous = json.load(handle)
    with tempfile.TemporaryDirectory(prefix="oov-") as tmp:
        work = os.path.abspath(args.reuse_dir) if args.reuse_dir else tmp
        for name in names:
            settings = {k: v for k, v in vars(args).items() if k not in ("output", "reuse_dir")}
            previous[name] = {**run_catalog(name, args, work), "settings": settings}
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(previous, handle, indent=2, sort_keys=True)
        handle.write("\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
