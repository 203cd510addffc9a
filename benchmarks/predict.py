"""Predict throughput: the Beam batch predictor against a naive DoFn and two peers.

A model is built once (sample catalog of 5,000 videos -> preprocess -> train,
5 epochs) in a setup process, then each variant runs in its own process on the
same generated catalog so peak memory is measured per run:
  beam      ``catalog-tagger predict`` (local FnApiRunner profile); the time
            includes pipeline start-up and model load, the honest batch-job cost
  naive     a Beam DoFn that loads the model in every ``start_bundle`` and
            scores one densified video at a time (first --naive-videos videos)
  sklearn   tf-idf + one-vs-rest logistic regression: read, transform,
            ``predict_proba`` in chunks of 10k and top-20 per video
  fasttext  ``fasttext`` supervised (one-vs-all), top-20 per video, if installed

Only the predict phase is timed (not imports nor the peers' unpickling); cpu s
is its CPU, children included. Prints videos/s per core, peak RSS, ratio to sklearn.

    python benchmarks/predict.py [--videos 100000] [--workers 1] [--naive-videos 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from peers import (  # benchmarks/peers.py (the script dir is on sys.path)
    add_texts_flag,
    catalog_rows,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_VIDEOS, TOP_K, CHUNK = 5000, 20, 10_000
KINDS = ("beam", "naive", "sklearn", "fasttext")


class Clock:
    """Wall and CPU seconds (this process and its reaped children) since creation."""

    def __init__(self):
        self._wall, self._cpu = time.perf_counter(), self._cpu_now()

    @staticmethod
    def _cpu_now() -> float:
        usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in usage)

    def stop(self, videos: int, **extra) -> dict:
        wall, cpu = time.perf_counter() - self._wall, self._cpu_now() - self._cpu
        return {"videos": videos, "seconds": wall, "cpu_seconds": cpu, **extra}


def build_project_model(work: str) -> None:
    from models.text.model import HParams
    from models.text.train import TrainConfig, train
    from pipelines import cli, preprocess
    from pipelines.tools.sample_catalog import write_sample_catalog

    small, pre = os.path.join(work, "small.jsonl.gz"), os.path.join(work, "pre")
    if not os.path.exists(small):  # --texts youtube|netflix wrote it already
        write_sample_catalog(small, videos=TRAIN_VIDEOS, seed=1)
    preprocess.run(cli.profile_args("local") + ["--input", small, "--output-dir", pre])
    train(TrainConfig(pre, os.path.join(work, "model"), HParams(epochs=5)))


def build_peers(work: str) -> None:
    """Fits the peers on the small catalog's texts and labels; saves them in ``work``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MultiLabelBinarizer

    rows = [r for r in catalog_rows(os.path.join(work, "small.jsonl.gz")) if r[1]]
    texts, cats = [t for t, _ in rows], [c for _, c in rows]
    binarizer = MultiLabelBinarizer()
    labels = binarizer.fit_transform(cats)
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2)
    classifier = OneVsRestClassifier(LogisticRegression(max_iter=200))
    model = make_pipeline(vectorizer, classifier).fit(texts, labels)
    with open(os.path.join(work, "sklearn.pkl"), "wb") as handle:
        pickle.dump((model, list(binarizer.classes_)), handle)
    try:
        import fasttext
    except ImportError:
        return
    path = os.path.join(work, "fasttext.txt")
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as handle:
        for text, row_cats in rows:
            tags = " ".join("__label__" + "_".join(c.split()) for c in row_cats)
            handle.write(f"{tags} {text}\n")
    ft = fasttext.train_supervised(
        path, loss="ova", epoch=25, lr=0.5, wordNgrams=2, thread=1, verbose=0
    )
    ft.save_model(os.path.join(work, "fasttext.bin"))


def write_naive_subset(work: str, limit: int) -> int:
    """The catalog's first ``limit`` valid lines (parsable records), for ``naive``."""
    kept, source = 0, os.path.join(work, "catalog.jsonl.gz")
    with gzip.open(source, "rb") as lines, open(os.path.join(work, "naive.jsonl"), "wb") as out:
        for line in lines:
            try:
                valid = kept < limit and any(_naive_text(line.decode("utf-8")))
            except UnicodeDecodeError:  # ReadFromText decodes strictly
                continue
            if valid:
                out.write(line if line.endswith(b"\n") else line + b"\n")
                kept += 1
    return kept


def beam_job(work: str, workers: int) -> dict:
    from pipelines import cli, predict

    mode = "in_memory" if workers == 1 else "multi_processing"
    argv = cli.profile_args("local") + [
        "--input", os.path.join(work, "catalog.jsonl.gz"),
        "--model-dir", os.path.join(work, "model"), "--output-dir", os.path.join(work, "tags"),
        f"--direct_num_workers={workers}", f"--direct_running_mode={mode}",
    ]  # fmt: skip
    clock = Clock()
    report = predict.run(argv)
    load = report["beam_metrics"].get("load_model_latency_milli_secs", {})
    notes = f"run_seconds {report['run_seconds']}, model_load_ms {load.get('mean', '?')}"
    return clock.stop(report["records"]["tagged"], notes=notes)


def naive_dofn(export_dir: str):
    """Loads the model every bundle; one video, densified, per call."""
    import apache_beam as beam
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's text ops)
    from apache_beam.metrics import Metrics

    class NaivePredict(beam.DoFn):
        def __init__(self):
            self._videos = Metrics.counter("naive", "videos")
            self._loads = Metrics.counter("naive", "model_loads")

        def start_bundle(self):
            self._model = tf.saved_model.load(export_dir)
            self._loads.inc()

        def process(self, keyed):
            video_id, text = keyed
            fields = dict(zip(("title", "description", "tags"), text, strict=True))
            bow = self._model.signatures["vectorize"](
                **{name: tf.constant([value]) for name, value in fields.items()}
            )
            sparse = tf.SparseTensor(bow["indices"], bow["values"], bow["dense_shape"])
            dense = tf.sparse.to_dense(tf.sparse.reorder(sparse))  # [1, input_dim]
            # The export's Keras model was traced for sparse input only, so the
            # densified row goes back through from_dense before the call.
            logits = self._model.model(tf.sparse.from_dense(dense), training=False)
            scores = tf.sigmoid(logits).numpy()[0]
            self._videos.inc()
            yield video_id, np.argsort(-scores)[:TOP_K].tolist()

    return NaivePredict()


def _naive_text(line: str):
    from pipelines.components.steps import raw_text
    from transforms.records import RecordError, RecordSchema, parse_json_object, to_canonical

    try:
        record = to_canonical(parse_json_object(line), RecordSchema())
    except RecordError:
        return
    yield record["video_id"], raw_text(record)


def naive_job(work: str, workers: int) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import cli

    dofn = naive_dofn(os.path.join(work, "model", "saved_model"))
    clock = Clock()
    p = beam.Pipeline(options=PipelineOptions(cli.profile_args("local")))
    lines = p | "Read" >> beam.io.ReadFromText(os.path.join(work, "naive.jsonl"))
    _ = lines | "Parse" >> beam.FlatMap(_naive_text) | "Predict" >> beam.ParDo(dofn)
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    return clock.stop(counters["videos"], notes=f"model loads {counters['model_loads']}")


def sklearn_job(work: str, workers: int) -> dict:
    import numpy as np

    with open(os.path.join(work, "sklearn.pkl"), "rb") as handle:
        model, classes = pickle.load(handle)
    clock, videos = Clock(), 0
    texts = [text for text, _ in catalog_rows(os.path.join(work, "catalog.jsonl.gz"))]
    for begin in range(0, len(texts), CHUNK):
        scores = model.predict_proba(texts[begin : begin + CHUNK])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
        videos += len(top)
    return clock.stop(videos, notes=f"{len(classes)} labels")


def fasttext_job(work: str, workers: int) -> dict:
    import fasttext

    model = fasttext.load_model(os.path.join(work, "fasttext.bin"))
    clock, videos = Clock(), 0
    for text, _ in catalog_rows(os.path.join(work, "catalog.jsonl.gz")):
        # model.f.predict, as in quality.py: model.predict trips on numpy 2.
        videos += bool(model.f.predict(text + "\n", TOP_K, 0.0, "strict"))
    return clock.stop(videos, notes=f"{len(model.labels)} labels")


def _child(kind: str, work: str, workers: int, naive_videos: int) -> None:
    if kind == "setup":
        clock = Clock()
        build_project_model(work)
        build_peers(work)
        return print(json.dumps(clock.stop(write_naive_subset(work, naive_videos))))
    jobs = {"beam": beam_job, "naive": naive_job, "sklearn": sklearn_job, "fasttext": fasttext_job}
    print(json.dumps({"kind": kind, **jobs[kind](work, workers)}))


def measure(kind: str, work: str, workers: int = 1, naive_videos: int = 0) -> dict:
    """Runs one variant in a child process; adds its peak RSS (children included)."""
    cmd = [sys.executable, __file__, "--child", kind, "--work", work,
           "--workers", str(workers), "--naive-videos", str(naive_videos)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        sys.exit(f"{kind} failed ({status}); rerun: {__file__} --child {kind} --work {work}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    result["cores"] = workers
    return result


def print_table(runs: list[dict]) -> None:
    rate = {r["kind"]: r["videos"] / r["seconds"] / r["cores"] for r in runs}
    base = rate.get("sklearn")
    print(f"{'run':8} {'videos':>8} {'wall s':>8} {'cpu s':>8} {'cores':>5} "
          f"{'videos/s/core':>14} {'peak MB':>8} {'vs sklearn':>10}")  # fmt: skip
    for r in runs:
        ratio = f"{rate[r['kind']] / base:>10.3f}" if base else f"{'-':>10}"
        print(f"{r['kind']:8} {r['videos']:>8} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
              f"{r['cores']:>5} {rate[r['kind']]:>14.0f} {r['peak_mb']:>8.0f} {ratio}")  # fmt: skip
    for r in runs:
        print(f"  {r['kind']}: {r['notes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000, help="Unique sample videos.")
    parser.add_argument("--workers", type=int, default=1, help="Beam local workers (cores).")
    parser.add_argument("--naive-videos", type=int, default=2000, help="Videos for naive.")
    add_texts_flag(parser)  # the model trains on 5,000 of them, predict reads --videos
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.work, args.workers, args.naive_videos)
    sys.path.insert(0, ROOT)
    from pipelines.tools.sample_catalog import write_sample_catalog

    work = tempfile.mkdtemp(prefix="bench-predict-")
    catalog = os.path.join(work, "catalog.jsonl.gz")
    if args.texts == "sample":
        manifest = write_sample_catalog(catalog, args.videos, seed=0)
        print(f"catalog: {manifest.lines} lines, {manifest.unique_videos} unique videos")
    else:
        from peers import shared_records, write_replicated

        records = shared_records(args.texts, os.path.join(ROOT, "..", "shared", "data"))
        write_replicated(os.path.join(work, "small.jsonl.gz"), records, TRAIN_VIDEOS, "t")
        write_replicated(catalog, records, args.videos, "v")
        chars = sum(len(r["title"] + r["description"] + " ".join(r["tags"])) for r in records)
        print(f"catalog: {args.videos} {args.texts} videos ({len(records)} distinct texts, "
              f"{chars / len(records):.0f} characters each on average)")  # fmt: skip
    setup = measure("setup", work, naive_videos=args.naive_videos)
    print(f"model built on {TRAIN_VIDEOS} videos in {setup['seconds']:.0f} s; "
          f"naive gets the first {setup['videos']} valid videos")  # fmt: skip
    has_fasttext = os.path.exists(os.path.join(work, "fasttext.bin"))  # setup imported it
    if not has_fasttext:
        print("fasttext not installed: skipped")
    kinds = KINDS[: 3 + has_fasttext]
    print_table([measure(k, work, args.workers if k == "beam" else 1) for k in kinds])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
