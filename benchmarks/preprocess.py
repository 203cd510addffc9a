"""Preprocess throughput: the Beam + tf.Transform job against two baselines.

Runs, on the same generated catalog, each in its own process so peak memory
is measured per run:
  beam      ``catalog-tagger preprocess`` (local FnApiRunner profile)
  python    a single-process loop: read, parse, map, and the text graph in batches
  sklearn   scikit-learn ``TfidfVectorizer.fit_transform`` on the same raw texts

and prints videos/s per core, peak RSS and the ratio to the pure-Python loop.

    python benchmarks/preprocess.py --videos 100000 [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

from peers import add_texts_flag  # benchmarks/peers.py (the script dir is on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_loop(catalog: str) -> int:
    """The same parsing and text graph (``transforms.text``), batches of 512, one
    process, no Beam, no vocabulary: the floor under the Beam job."""
    import tensorflow as tf

    from pipelines.components.steps import raw_text
    from transforms.records import (
        RecordError,
        RecordSchema,
        decode_utf8,
        parse_json_object,
        to_canonical,
    )
    from transforms.text import TextConfig, video_words

    schema, config, kept, batch = RecordSchema(), TextConfig(), 0, []
    spec = [tf.TensorSpec([None], tf.string)] * 3
    words = tf.function(lambda *fields: video_words(*fields, config)[0], input_signature=spec)

    def flush() -> int:
        counts = words(*zip(*batch, strict=True)).numpy() if batch else []
        batch.clear()
        return int((counts > 0).sum()) if len(counts) else 0

    with gzip.open(catalog, "rb") as handle:
        for line in handle:
            try:
                batch.append(raw_text(to_canonical(parse_json_object(decode_utf8(line)), schema)))
            except RecordError:
                continue
            if len(batch) == 512:
                kept += flush()
    return kept + flush()


def sklearn_tfidf(catalog: str) -> int:
    from peers import catalog_rows
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [text for text, _ in catalog_rows(catalog)]
    matrix = TfidfVectorizer(min_df=2, max_features=200_000).fit_transform(texts)
    return matrix.shape[0]


def beam_job(catalog: str, workers: int) -> int:
    from pipelines import cli, preprocess

    out = tempfile.mkdtemp(prefix="bench-pre-")
    mode = "in_memory" if workers == 1 else "multi_processing"
    argv = cli.profile_args("local") + [
        "--input", catalog, "--output-dir", out,
        f"--direct_num_workers={workers}", f"--direct_running_mode={mode}",
    ]  # fmt: skip
    return preprocess.run(argv)["records"]["written"]


def _child(kind: str, catalog: str, workers: int) -> None:
    start = time.perf_counter()
    jobs = {"python": python_loop, "sklearn": sklearn_tfidf}
    n = beam_job(catalog, workers) if kind == "beam" else jobs[kind](catalog)
    print(json.dumps({"kind": kind, "videos": n, "seconds": time.perf_counter() - start}))


def measure(kind: str, catalog: str, workers: int = 1) -> dict:
    """Runs one variant in a child process; adds its peak RSS (children included)."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--catalog",
        catalog,
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    result = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["cores"] = workers
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000, help="Unique sample videos.")
    parser.add_argument("--workers", type=int, default=1, help="Beam local workers (cores).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", help=argparse.SUPPRESS)
    add_texts_flag(parser)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.catalog, args.workers)
    sys.path.insert(0, ROOT)
    from pipelines.tools.sample_catalog import write_sample_catalog

    catalog = os.path.join(tempfile.mkdtemp(prefix="bench-cat-"), "catalog.jsonl.gz")
    if args.texts == "sample":
        manifest = write_sample_catalog(catalog, videos=args.videos, seed=0)
        print(f"catalog: {manifest.lines} lines, {manifest.unique_videos} unique videos")
    else:
        from peers import shared_records, write_replicated

        records = shared_records(args.texts, os.path.join(ROOT, "..", "shared", "data"))
        write_replicated(catalog, records, args.videos, "v")
        print(f"catalog: {args.videos} {args.texts} videos ({len(records)} distinct texts)")
    runs = [measure("python", catalog), measure("beam", catalog, args.workers)]
    try:
        import sklearn  # noqa: F401

        runs.append(measure("sklearn", catalog))
    except ImportError:
        print("scikit-learn not installed: sklearn baseline skipped")
    base = runs[0]["videos"] / runs[0]["seconds"]
    print(f"{'run':8} {'videos':>8} {'wall s':>8} {'cpu s':>8} {'cores':>5} "
          f"{'videos/s/core':>14} {'peak MB':>8} {'vs python':>9}")  # fmt: skip
    for r in runs:
        rate = r["videos"] / r["seconds"] / r["cores"]
        print(f"{r['kind']:8} {r['videos']:>8} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
              f"{r['cores']:>5} {rate:>14.0f} {r['peak_mb']:>8.0f} {rate / base:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
