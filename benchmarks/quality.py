"""Quality bar: the project's tagger against linear text peers on the real catalogs.

For each catalog under ``../shared/data`` the preprocess job runs once, the
project's model trains on its output, and peers (tf-idf + one-vs-rest logistic
regression, tf-idf + linear SVM, fastText if installed) are fit on exactly the
same videos and splits (video ids read back from the preprocess shards, text
and labels re-read with the project's record mapping). Every model is scored
with ``models.metrics`` on test; peer thresholds and C are tuned on eval.

    python benchmarks/quality.py [--catalog netflix|youtube|youtube_random|all]
        [--output PATH] [--reuse-dir DIR] [--seeds 3] [--tune-trials 16]
        [--budget-minutes M] [--hidden-units N] [--epochs N] [--dropout X] ...

The defaults run ``--seeds`` times (different seeds: mean and spread), then
``train --tune`` once; the peers tune C on eval.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
SPLITS = ("train", "eval", "test")
HPARAM_FLAGS = ("hidden_units", "epochs", "dropout", "learning_rate", "batch_size")
CATALOGS = {
    "netflix": [
        "--input", f"{DATA}/netflix_titles/netflix_titles.csv",
        "--field", "video_id=show_id", "--field", "categories=listed_in",
        "--list-separator", "categories=,",
    ],
    "youtube": [
        "--input", f"{DATA}/youtube_trending_us/USvideos.csv",
        "--field", "categories=category_id", "--field", "updated_at=trending_date",
        "--updated-at-format", "%y.%d.%m",
        "--label-map", f"{DATA}/youtube_trending_us/US_category_id.json",
        "--split-key", "channel_title",
    ],
}  # fmt: skip
# The same YouTube videos, split at random by video id instead of by channel.
CATALOGS["youtube_random"] = CATALOGS["youtube"][:-2]  # no --split-key: video-id hash


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", choices=(*CATALOGS, "all"), default="all")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks/results/quality.json"))
    parser.add_argument("--reuse-dir", help="Keep/reuse preprocess outputs in DIR/<catalog>.")
    parser.add_argument("--no-peers", action="store_true", help="Only train the project model.")
    parser.add_argument("--seeds", type=int, default=3, help="Runs of the defaults (mean, std).")
    parser.add_argument(
        "--tune-trials", type=int, default=16, help="train --tune trials (0: skip)."
    )
    parser.add_argument("--budget-minutes", type=float, help="train --tune time budget.")
    for name, kind in zip(HPARAM_FLAGS, (int, int, float, float, int), strict=True):
        parser.add_argument("--" + name.replace("_", "-"), type=kind)
    return parser.parse_args(argv)


def preprocess_catalog(name: str, out: str, extra: tuple = ()) -> dict:
    """Runs the preprocess job (``extra`` flags added) into ``out`` unless a finished
    run is already there."""
    from pipelines import cli, preprocess
    from transforms.layout import PREPROCESS_REPORT_FILE

    report_path = os.path.join(out, PREPROCESS_REPORT_FILE)
    if os.path.exists(report_path):
        print(f"[{name}] reusing preprocess output in {out}")
        return json.loads(pathlib.Path(report_path).read_text("utf-8"))
    start = time.monotonic()
    flags = CATALOGS[name] + list(extra) + ["--output-dir", out]
    report = preprocess.run(cli.profile_args("local") + flags)
    print(f"[{name}] preprocess: {time.monotonic() - start:.1f} s")
    return report


def train_project(name: str, out: str, hparams, tuning=None, with_job: bool = True) -> dict:
    from models.text.train import TrainConfig, train

    with tempfile.TemporaryDirectory(prefix="quality-model-") as model_dir:
        summary = train(TrainConfig(out, model_dir, hparams, tuning))
        job = evaluate_job(name, model_dir, os.path.join(model_dir, "evaluate")) if with_job else {}
    result = {
        **summary["metrics"]["test"],
        "train_seconds": summary["wall_seconds"],
        "params": {**summary["hparams"], "best_epoch": summary["best_epoch"]},
    }
    if job:
        result["evaluate_job"] = job
    if tuning is not None:
        result["tuning"] = {k: summary["tuning"][k] for k in ("best", "config", "seconds")}
        result["tuning"]["trials"] = len(summary["tuning"]["trials"])
    return result


def project_over_seeds(name: str, out: str, hparams, seeds: int) -> dict:
    """The defaults trained with ``seeds`` different seeds: mean, spread and each run."""
    import numpy as np

    runs = [
        train_project(name, out, dataclasses.replace(hparams, seed=100 * s), with_job=s == 0)
        for s in range(seeds)
    ]
    keys = ("gap@20", "hit@1", "map", "micro_f1", "train_seconds")
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    spread = {k: float(np.std([r[k] for r in runs])) for k in keys}
    return {**runs[0], **mean, "std": spread, "runs": runs}


def evaluate_job(name: str, model_dir: str, work: str) -> dict:
    """The same model's test metrics from the product path: ``predict`` over the
    raw catalog (every label listed), then ``evaluate --split test`` on Beam."""
    from pipelines import cli, evaluate, predict

    labels = pathlib.Path(model_dir, "saved_model/assets.extra/labels.txt").read_text("utf-8")
    mapping, local = CATALOGS[name], cli.profile_args("local")
    top_k = ["--top-k", str(len(labels.splitlines()))]
    predict.run(local + mapping + ["--model-dir", model_dir, "--output-dir", work, *top_k])
    catalog = ["--catalog" if flag == "--input" else flag for flag in mapping]
    report = evaluate.run(local + catalog + [
        "--predictions", work, "--model-dir", model_dir, "--split", "test",
        "--output-dir", os.path.join(work, "report"),
    ])  # fmt: skip
    return {key: report["metrics"][key] for key in ("gap@20", "hit@1", "map")}


def split_ids(out: str) -> dict[str, list[str]]:
    """The video ids of each split, in shard order, from the preprocess output."""
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = {"video_id": tft.TFTransformOutput(out).transformed_feature_spec()["video_id"]}
    ids = {}
    for split in SPLITS:
        files = sorted(glob.glob(f"{out}/data/{split}/*.tfrecord.gz"))
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024)
        ids[split] = [
            v.decode()
            for batch in dataset
            for v in tf.io.parse_example(batch, spec)["video_id"].numpy()
        ]
    return ids


def latest_records(name: str) -> dict[str, dict]:
    """One canonical record per video id, as the pipeline's Deduplicate keeps it."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.components.options import CatalogOptions, record_schema
    from transforms.records import RecordError, to_canonical

    options = PipelineOptions(CATALOGS[name])
    schema = record_schema(options)  # RecordSchema.from_flags over the very same flags
    csv.field_size_limit(16 << 20)
    latest: dict[str, dict] = {}
    when = lambda r: -float("inf") if r["updated_at"] is None else r["updated_at"]  # noqa: E731
    path = options.view_as(CatalogOptions).input
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        for row in csv.DictReader(handle):
            try:  # rows the pipeline dead-letters: wrong column count, bad UTF-8, RecordError
                if None in row or None in row.values():
                    raise RecordError("malformed_csv")
                "".join(row.values()).encode("utf-8")
                record = to_canonical(row, schema)
            except (RecordError, UnicodeEncodeError):
                continue
            best = latest.get(record["video_id"])
            if best is None or when(record) >= when(best):
                latest[record["video_id"]] = record  # latest wins; ties: the last row
    return latest


def peer_data(name: str, out: str) -> dict:
    """Texts and multi-hot labels per split, label space = the project's vocabulary."""
    import tensorflow_transform as tft
    from sklearn.preprocessing import MultiLabelBinarizer

    classes = [v.decode() for v in tft.TFTransformOutput(out).vocabulary_by_name("labels")]
    binarizer, known = MultiLabelBinarizer(classes=classes), set(classes)
    records, data = latest_records(name), {"classes": classes}
    for split, ids in split_ids(out).items():
        rows = [records[video_id] for video_id in ids]
        data[split] = (
            [" ".join([r["title"], r["description"], " ".join(r["tags"])]) for r in rows],
            binarizer.fit_transform([[c for c in r["categories"] if c in known] for r in rows]),
        )
    return data


def ovr_scores(fit, features: dict, labels, score) -> tuple:
    """Fits on the train columns that have a positive; the rest score below every other."""
    import numpy as np

    active = labels.sum(axis=0) > 0
    start = time.monotonic()
    model = fit(features["train"], labels[:, active])
    seconds = time.monotonic() - start
    out = {}
    for split in ("eval", "test"):
        raw = score(model, features[split])
        full = np.full((raw.shape[0], labels.shape[1]), raw.min() - 1.0 if raw.size else 0.0)
        full[:, active] = raw
        out[split] = full
    return out, seconds


def sklearn_peer(make, grid, data: dict, features: dict, score) -> dict:
    """Tunes C on eval GAP@20, reports test for the best C."""
    from sklearn.multiclass import OneVsRestClassifier

    from models import metrics

    best, tuning = None, {}
    for c in grid:
        fit = lambda x, y, c=c: OneVsRestClassifier(make(c)).fit(x, y)  # noqa: E731
        scores, seconds = ovr_scores(fit, features, data["train"][1], score)
        tuning[c] = metrics.gap_at_k(scores["eval"], data["eval"][1])
        if best is None or tuning[c] > tuning[best[0]]:
            best = (c, scores, seconds)
    c, scores, seconds = best
    params = {"C": c, "eval_gap@20": tuning}
    return {**peer_metrics(scores, data), "train_seconds": seconds, "params": params}


def peer_metrics(scores: dict, data: dict) -> dict:
    from models import metrics

    thresholds = metrics.tune_thresholds(scores["eval"], data["eval"][1])
    return metrics.evaluate(scores["test"], data["test"][1], thresholds)


def run_sklearn_peers(data: dict) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    start = time.monotonic()
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
    features = {"train": vectorizer.fit_transform(data["train"][0])}
    vector_seconds = time.monotonic() - start
    features.update({s: vectorizer.transform(data[s][0]) for s in ("eval", "test")})
    logreg, svc = (lambda c: LogisticRegression(C=c, max_iter=1000)), (lambda c: LinearSVC(C=c))
    proba, decision = (lambda m, x: m.predict_proba(x)), (lambda m, x: m.decision_function(x))
    results = {
        "tfidf+logreg": sklearn_peer(logreg, (1, 4, 16, 64), data, features, proba),
        "tfidf+linearsvc": sklearn_peer(svc, (0.05, 0.1, 0.2, 0.5, 1), data, features, decision),
    }
    for result in results.values():
        result["train_seconds"] += vector_seconds
    return results


def run_fasttext(data: dict) -> dict:
    try:
        import fasttext
    except ImportError:
        print("fasttext not installed: skipped")
        return {}
    import numpy as np

    names = {"__label__" + "_".join(c.split()): j for j, c in enumerate(data["classes"])}
    label_of = {j: n for n, j in names.items()}
    flat = lambda text: " ".join(text.split())  # noqa: E731  (one line per video)
    with tempfile.TemporaryDirectory(prefix="quality-fasttext-") as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
            for text, row in zip(*data["train"], strict=True):
                tags = " ".join(label_of[j] for j in np.flatnonzero(row))
                handle.write(f"{tags} {flat(text)}\n")
        start = time.monotonic()
        model = fasttext.train_supervised(
            path, loss="ova", epoch=25, lr=0.5, wordNgrams=2, thread=1, verbose=0
        )
        seconds = time.monotonic() - start
    scores = {}
    for split in ("eval", "test"):
        matrix = np.zeros(data[split][1].shape)
        for i, text in enumerate(map(flat, data[split][0])):
            # model.predict(text, k=-1, threshold=0.0) without its numpy-2 bugs: a str
            # fails on np.array(copy=False), a list repeats the top prob for every label.
            for prob, label in model.f.predict(text + "\n", -1, 0.0, "strict"):
                matrix[i, names[label]] = prob
        scores[split] = matrix
    params = {"loss": "ova", "epoch": 25, "lr": 0.5, "wordNgrams": 2}
    return {"fasttext": {**peer_metrics(scores, data), "train_seconds": seconds, "params": params}}


def run_catalog(name: str, args: argparse.Namespace, work: str) -> dict:
    from models.text.model import HParams
    from models.text.tune import TuneConfig

    out = os.path.join(work, name)
    written = preprocess_catalog(name, out)["records"]["written_per_split"]
    splits = {s: written[s] for s in SPLITS}
    overrides = {k: getattr(args, k) for k in HPARAM_FLAGS if getattr(args, k) is not None}
    hparams = HParams(**overrides)
    models = {"project": project_over_seeds(name, out, hparams, args.seeds)}
    if args.tune_trials:
        tuning = TuneConfig(trials=args.tune_trials, budget_minutes=args.budget_minutes)
        models["project --tune"] = train_project(name, out, hparams, tuning, with_job=False)
    if not args.no_peers:
        data = peer_data(name, out)
        sizes = {s: len(data[s][0]) for s in SPLITS}
        assert sizes == splits, f"peers see {sizes}, the pipeline wrote {splits}"
        models.update(run_sklearn_peers(data))
        models.update(run_fasttext(data))
    return {"splits": splits, "models": models}


def print_table(name: str, result: dict) -> None:
    print(f"\n### {name}  (videos per split: {result['splits']})\n")
    print("| model | GAP@20 | Hit@1 | mAP | micro-F1 | train s |")
    print("|---|---|---|---|---|---|")
    for model, m in result["models"].items():
        row = " | ".join(f"{m[k]:.4f}" for k in ("gap@20", "hit@1", "map", "micro_f1"))
        spread = m.get("std", {}).get("gap@20")
        if spread is not None:  # the defaults over seeds: GAP@20 mean ± std
            row = row.replace(f"{m['gap@20']:.4f}", f"{m['gap@20']:.4f} ± {spread:.4f}", 1)
        print(f"| {model} | {row} | {m['train_seconds']:.1f} |")
    job = result["models"]["project"].get("evaluate_job")
    if job:
        print(f"\nevaluate job on the project model (predict + evaluate --split test): {job}")


def write_results(path: str, results: dict) -> None:
    """Merges into an existing results file so one catalog can be re-run alone."""
    previous = json.loads(pathlib.Path(path).read_text("utf-8")) if os.path.exists(path) else {}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        merged = {**previous}
        for name, result in results.items():  # keeps peers measured earlier (--no-peers)
            models = {**previous.get(name, {}).get("models", {}), **result["models"]}
            merged[name] = {**result, "models": models}
        json.dump(merged, handle, indent=2, sort_keys=True)
        handle.write("\n")
    print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    args = parse_args(argv)
    names = list(CATALOGS) if args.catalog == "all" else [args.catalog]
    results = {}
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        work = os.path.abspath(args.reuse_dir) if args.reuse_dir else tmp
        for name in names:
            results[name] = run_catalog(name, args, work)
    for name, result in results.items():
        print_table(name, result)
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
