"""Label spaces of 1,000 to 100,000 topics: full sigmoid/softmax vs sampled softmax.

For each label count N a synthetic catalog (``catalog-tagger sample --labels N``:
Zipf label frequencies, 1-3 labels a video, learnable topic words) of
``min(20 N, --max-videos)`` videos is written and preprocessed once with the
project's preprocess job; then each run trains in its own process (peak RSS
from ``wait4``) through ``models.text.train.train`` with the defaults except
one seed, no refit, no wide path (at 100k labels it would be vocabulary x labels
weights, so it is off for every loss to compare like with like) and a fixed
number of epochs (``--epochs``, no early stop: the best epoch on eval is kept)
of ``--steps-per-epoch`` batches of 64 (a fresh shuffle each epoch; 0: full
passes). A run is a loss, or ``loss/lazy``: the same loss with
``models.optimizers.LazyAdam`` instead of Adam (a control: how much of the
speed comes from updating only the vocabulary rows a batch holds, which
sampled training does too). Reported per run: train seconds per epoch (median
of the epochs' training time, eval excluded) and per full pass over train
(extrapolated from the seconds per step), peak RSS, test GAP@20 and recall@20
(above 4,096 labels from each video's top 20: ``models.loop.TOP_K_EVAL_ABOVE``),
and predict videos/s of the export signature the batch predictor calls (``raw``,
or above 4,096 labels ``top_k`` with 100 candidates: ``scoring.TOP_K_ABOVE``;
both are timed and kept in the JSON): the best of 5 passes over 4,096 videos
in batches of 512, after a warm-up batch (the best pass, as ``timeit`` does,
since the shared machine's load only ever slows a pass down).
Zipf catalogs do not use every label: the table gives the label vocabulary the
model was trained on.

    python benchmarks/labels.py [--labels 1000,10000,100000]
        [--runs sigmoid,softmax,sampled_softmax,sigmoid/lazy] [--epochs 3]
        [--steps-per-epoch 250] [--max-videos 100000] [--num-sampled 1024]
        [--work-dir DIR] [--output benchmarks/results/labels.json]

Writes ``benchmarks/results/labels.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

from peers import measure_child  # benchmarks/peers.py (the script dir is on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PREDICT_BATCH, PREDICT_VIDEOS, PREDICT_PASSES = 512, 4096, 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="1000,10000,100000", help="Comma-separated.")
    parser.add_argument("--runs", default="sigmoid,softmax,sampled_softmax,sigmoid/lazy")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=250, help="0: full passes.")
    parser.add_argument("--videos-per-label", type=int, default=20)
    parser.add_argument("--max-videos", type=int, default=100_000)
    parser.add_argument("--num-sampled", type=int, default=1024)
    parser.add_argument("--work-dir", help="Keep catalogs and preprocess outputs here.")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks/results/labels.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one run, as JSON settings
    return parser.parse_args(argv)


def prepare(labels: int, videos: int, work: str) -> dict:
    """The catalog and its preprocess output under ``work/labels-N`` (reused if there)."""
    from pipelines import cli, preprocess
    from pipelines.tools.sample_labels import write_label_catalog
    from transforms.layout import PREPROCESS_REPORT_FILE

    base = os.path.join(work, f"labels-{labels}")
    catalog, out = os.path.join(base, "catalog.jsonl"), os.path.join(base, "preprocessed")
    report_path = os.path.join(out, PREPROCESS_REPORT_FILE)
    if not os.path.exists(report_path):
        start = time.monotonic()
        write_label_catalog(catalog, labels=labels, videos=videos, seed=0)
        preprocess.run(cli.profile_args("local") + ["--input", catalog, "--output-dir", out])
        print(f"[{labels} labels] catalog + preprocess: {time.monotonic() - start:.0f} s")
    report = json.loads(pathlib.Path(report_path).read_text("utf-8"))
    return {"catalog": catalog, "data_dir": out, "records": report["records"]}


def patch_for(settings: dict) -> None:
    """The run's departures from ``train``: the optimizer, and epochs of N steps."""
    from models import loop, optimizers
    from models.text import train

    if settings["lazy"]:
        loop.make_optimizer = lambda loss, rate: optimizers.LazyAdam(rate)
    steps, make = settings["steps_per_epoch"], train.make_datasets

    def with_steps(data, hp):
        datasets = make(data, hp)
        return datasets | {"train": datasets["train"].repeat().take(steps)}

    if steps:
        train.make_datasets = with_steps


def run_child(settings: dict) -> dict:
    """In the child process: train, then time the export's scoring signatures."""
    from models.text.model import HParams
    from models.text.train import TrainConfig, train

    patch_for(settings)
    hparams = HParams(loss=settings["loss"], epochs=settings["epochs"],
                      patience=settings["epochs"], seeds=1, refit=False, wide=False,
                      num_sampled=settings["num_sampled"])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="labels-model-") as model_dir:
        start = time.monotonic()
        summary = train(TrainConfig(settings["data_dir"], model_dir, hparams))
        wall = time.monotonic() - start
        predict = predict_rate(os.path.join(model_dir, "saved_model"), settings["catalog"])
    epochs = summary["history"]["epoch_seconds"]
    test, train_videos = summary["metrics"]["test"], settings["train_videos"]
    steps = settings["steps_per_epoch"] or -(-train_videos // hparams.batch_size)
    full_pass = statistics.median(epochs) / steps * -(-train_videos // hparams.batch_size)
    return {
        "steps_per_epoch": steps,
        "full_pass_seconds": round(full_pass, 1),
        "epoch_seconds": round(statistics.median(epochs), 2),
        "epoch_seconds_each": [round(s, 2) for s in epochs],
        "train_wall_seconds": round(wall, 1),
        "best_epoch": summary["best_epoch"],
        "test": {k: round(v, 4) for k, v in test.items()},
        "predict_videos_per_second": round(predict["rate"], 1),
        "signature_videos_per_second": {k: round(v, 1) for k, v in predict["rates"].items()},
        "label_vocabulary": predict["labels"],
    }


def predict_rate(export_dir: str, catalog: str) -> dict:
    """Videos/s of the export's ``raw`` and ``top_k`` signatures on the catalog's
    first videos; ``rate`` is the one the batch predictor calls for this label
    space (``top_k`` with ``TOP_K_CANDIDATES`` above ``TOP_K_ABOVE`` labels)."""
    from models.serving import LoadedTagger
    from pipelines.components.scoring import TOP_K_ABOVE, TOP_K_CANDIDATES
    from pipelines.components.steps import raw_text
    from transforms.records import RecordSchema, parse_json_object, to_canonical

    with open(catalog, encoding="utf-8") as handle:
        lines = list(itertools.islice(handle, PREDICT_BATCH + PREDICT_VIDEOS))
    lines = list(itertools.islice(itertools.cycle(lines), PREDICT_BATCH + PREDICT_VIDEOS))
    rows = [raw_text(to_canonical(parse_json_object(line), RecordSchema())) for line in lines]
    tagger = LoadedTagger(export_dir)
    batches = [list(map(list, zip(*rows[i : i + PREDICT_BATCH], strict=True)))
               for i in range(0, len(rows), PREDICT_BATCH)]  # fmt: skip
    paths = {"raw": tagger.score_raw,
             "top_k": lambda *text: tagger.top_k_raw(*text, TOP_K_CANDIDATES)}  # fmt: skip
    rates = {}
    for name, call in paths.items():
        call(*batches[0])  # warm-up
        passes = []
        for _ in range(PREDICT_PASSES):
            start = time.monotonic()
            for batch in batches[1:]:
                call(*batch)
            passes.append(time.monotonic() - start)
        rates[name] = PREDICT_VIDEOS / min(passes)
    wide = len(tagger.labels) > TOP_K_ABOVE
    return {"rate": rates["top_k" if wide else "raw"], "rates": rates, "labels": len(tagger.labels)}


def measure(settings: dict, log: str) -> dict:
    """One run in a child process; its peak RSS from ``wait4``."""
    result_path = log + ".json"
    pathlib.Path(result_path).unlink(missing_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           json.dumps({**settings, "result": result_path})]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    return measure_child(cmd, env, log, result_path, ROOT)


def machine() -> dict:
    from importlib.metadata import version

    lines = pathlib.Path("/proc/cpuinfo").read_text("utf-8").splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "")
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "load_average_start": os.getloadavg(), "python": platform.python_version(),
            "versions": {p: version(p) for p in ("tensorflow", "tf_keras", "apache-beam")}}  # fmt: skip


def goal(runs: list[dict]) -> dict:
    """The issue's goals at the largest label count: sampled vs full sigmoid
    training, and the sampled model's predict rate against the smallest count's."""
    done = [r for r in runs if "error" not in r]
    if not done:
        return {}
    largest, smallest = max(r["labels"] for r in done), min(r["labels"] for r in done)
    by_loss = {r["loss"]: r for r in done if r["labels"] == largest}
    small = {r["loss"]: r for r in done if r["labels"] == smallest}
    if not {"sigmoid", "sampled_softmax"} <= set(by_loss) or "sampled_softmax" not in small:
        return {}
    full, sampled = by_loss["sigmoid"], by_loss["sampled_softmax"]
    speedup = full["epoch_seconds"] / sampled["epoch_seconds"]
    gap = sampled["test"]["gap@20"] - full["test"]["gap@20"]
    slowdown = (
        small["sampled_softmax"]["predict_videos_per_second"] / sampled["predict_videos_per_second"]
    )
    return {"labels": largest, "speedup_per_epoch": round(speedup, 2),
            "gap@20_sampled_minus_sigmoid": round(gap, 4),
            "training_met": speedup >= 5 and gap >= -0.01,
            f"predict_slowdown_vs_{smallest}": round(slowdown, 2),
            "predict_met": slowdown <= 2}  # fmt: skip


def table(runs: list[dict]) -> str:
    head = ("| labels asked (vocabulary) | videos | run | s / epoch | s / full pass | peak RSS MB "
            "| test GAP@20 | test recall@20 | predict videos/s | raw, top_k videos/s |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    lines = [head]
    for r in runs:
        name = f"{r['labels']:,} ({r.get('label_vocabulary', 0):,})"
        if "error" in r:
            lines.append(f"| {name} | {r['videos']:,} | {r['loss']} | {r['error']} |||||||")
            continue
        test, sig = r["test"], r.get("signature_videos_per_second", {})
        lines.append(f"| {name} | {r['videos']:,} | {r['loss']} | {r['epoch_seconds']:.1f} "
                     f"| {r['full_pass_seconds']:,.0f} "
                     f"| {r['peak_rss_mb']:,.0f} | {test['gap@20']:.4f} | {test['recall@20']:.4f} "
                     f"| {r['predict_videos_per_second']:,.0f} "
                     f"| {sig.get('raw', 0):,.0f}, {sig.get('top_k', 0):,.0f} |")  # fmt: skip
    return "\n".join(lines)


def run(args, work: str) -> dict:
    results = {"machine": machine(), "settings": {k: v for k, v in vars(args).items()
                                                   if k not in ("child", "work_dir")}}  # fmt: skip
    runs, start = results.setdefault("runs", []), time.monotonic()
    for labels in (int(n) for n in args.labels.split(",")):
        videos = min(args.videos_per_label * labels, args.max_videos)
        data = prepare(labels, videos, work)
        for name in args.runs.split(","):
            loss, _, optimizer = name.partition("/")
            settings = {"loss": loss, "lazy": optimizer == "lazy", "epochs": args.epochs,
                        "steps_per_epoch": args.steps_per_epoch, "num_sampled": args.num_sampled,
                        "train_videos": data["records"]["written_per_split"]["train"],
                        "data_dir": data["data_dir"], "catalog": data["catalog"]}  # fmt: skip
            print(f"[{time.strftime('%H:%M:%S')}] {labels} labels, {name}", flush=True)
            log = os.path.join(work, f"labels-{labels}", f"{name.replace('/', '-')}.log")
            runs.append({"labels": labels, "videos": videos, "loss": name,
                         "split_records": data["records"].get("written_per_split"),
                         **measure(settings, log)})  # fmt: skip
            write(args.output, results)
    results["goal"] = goal(runs)
    results["total_seconds"] = round(time.monotonic() - start, 1)
    results["machine"]["load_average_end"] = os.getloadavg()
    write(args.output, results)
    return results


def write(path: str, results: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(results, indent=1) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        settings = json.loads(args.child)
        pathlib.Path(settings["result"]).write_text(json.dumps(run_child(settings)), "utf-8")
        return 0
    if args.work_dir:
        results = run(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="labels-bench-") as work:
            results = run(args, work)
    print(table(results["runs"]))
    print(json.dumps(results.get("goal", {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
