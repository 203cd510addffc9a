"""YouTube-8M: the project's audio/visual models against a scikit-learn baseline.

Data: ``../shared/data/yt8m`` (40 video-level shards, 11,790 videos, 3,862
classes), split by a hash of the video id (80/10/10, as the trainer).
  sklearn   one-vs-rest LogisticRegression on standardized concat(mean_rgb,
            mean_audio) for the classes with a train positive (others score 0);
            C tuned on eval GAP@20 fitting only the TUNE_CLASSES most frequent
  others    ``models.av.train.train_av`` with SPECS; float16 weights and
            checkpoint averaging via ``models.av.tools``, logistic+moe ensemble
Test metrics: ``models.metrics``, thresholds tuned on eval. Throughput: the Beam
predictor (``pipelines.predict.run`` on all shards, start-up and model load
included) and sklearn (read + score + top-20), each pinned to ONE core. Each
part runs in its own process; peak RSS is that of its largest process.

Every model trains through the CLI users run (``catalog-tagger train --features
yt8m``, SPECS' flags over the defaults: the "moe" entry IS the README command).

``--holdout-shards N`` (train only): the models and sklearn see only the first
40 - N shards (split there by id hash as usual: train, eval for early stopping
and C, test); the last N shards never take part in choosing anything and are
scored whole ("holdout"). Results go to the file's ``holdout`` section.

    python benchmarks/yt8m.py [--models logistic,moe,moe_nogate] [--epochs N]
        [--skip-sklearn] [--train-only] [--holdout-shards N] [--work-dir DIR]
        [--output PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import pathlib
import platform
import resource
import shutil
import sys
import tempfile
import time

from peers import measure_child  # benchmarks/peers.py (the script dir is on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "yt8m"))
SHARDS, VOCABULARY = os.path.join(DATA, "*.tfrecord"), os.path.join(DATA, "vocabulary.csv")
TOP_K, C_GRID, TUNE_CLASSES = 20, (0.003, 0.01, 0.03), 200
PINNED = ("predict", "sklearn-predict")  # throughput parts: one core
ADAM = {"batch_size": 128, "epochs": 15}  # early stopping: patience 3 on eval GAP@20
NO_GATES = {"input_context_gating": False, "output_context_gating": False}
MOE2 = {"model": "moe", "num_mixtures": 2}
SPECS = {  # name: (AVParams overrides, AVTrainParams overrides over the CLI defaults)
    "logistic": ({"model": "logistic"}, {**ADAM, "learning_rate": 0.01}),
    "moe": (MOE2, {}),  # README: train --features yt8m --model moe --num-mixtures 2
    "moe_nogate": ({**MOE2, **NO_GATES}, {}),
    "moe4": ({"model": "moe", "num_mixtures": 4}, {}),
    # the learning-rate / batch sweep (run with --holdout-shards 8 and fewer --epochs)
    "moe_lr002_b128": (MOE2, {"learning_rate": 0.002, "batch_size": 128}),
    "moe_lr005_b128": (MOE2, {"learning_rate": 0.005, "batch_size": 128}),
    "moe_lr01_b128": (MOE2, {"learning_rate": 0.01, "batch_size": 128}),
    "moe_lr005_b256": (MOE2, {"learning_rate": 0.005, "batch_size": 256}),
    "moe_lr01_b512": (MOE2, {"learning_rate": 0.01, "batch_size": 512}),
}  # fmt: skip


def clock():
    """``stop(**extra)``: wall and CPU seconds (reaped children included) since this call."""
    cpu = lambda: sum(  # noqa: E731
        u.ru_utime + u.ru_stime
        for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    wall0, cpu0 = time.perf_counter(), cpu()
    return lambda **extra: {"seconds": round(time.perf_counter() - wall0, 3),
                            "cpu_seconds": round(cpu() - cpu0, 3), **extra}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks/results/yt8m.json"))
    parser.add_argument("--models", default="logistic,moe,moe_nogate", help=f"Of {list(SPECS)}.")
    parser.add_argument("--epochs", type=int, help="Override every model's epochs.")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--train-only", action="store_true", help="No predict/tools parts.")
    parser.add_argument("--work-dir", help="Keep models in DIR; reuse them if settings match.")
    parser.add_argument("--holdout-shards", type=int, default=0, help="Hold out the last N.")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.train_only = args.train_only or bool(args.holdout_shards)
    if set(args.models) - set(SPECS):
        parser.error(f"unknown models {sorted(set(args.models) - set(SPECS))}; of {list(SPECS)}")
    return args


def spec(name: str, epochs: int | None = None, holdout: int = 0) -> dict:
    """The settings of ``name``; a model's are resolved over the CLI defaults."""
    extra = {"holdout_shards": holdout} if holdout else {}
    if name == "sklearn":
        return {"C_grid": list(C_GRID), "tune_classes": TUNE_CLASSES, "max_iter": 300, **extra}
    from models.av.train import AVTrainParams

    model, train = SPECS[name]
    train = {
        **dataclasses.asdict(AVTrainParams()),
        **train,
        **({"epochs": epochs} if epochs else {}),
    }
    del train["max_frames"]  # video-level models
    return {"model": model, "train": train, "cli_flags": cli_flags(SPECS[name]), **extra}


def cli_flags(settings) -> list[str]:
    flags = []
    for key, value in {**settings[0], **settings[1]}.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        flags += ["--" + key.replace("_", "-"), text]
    return flags


def shard_files(holdout: int) -> tuple[list[str], list[str]]:
    """``(shards to train/eval/test on, held-out shards)``."""
    files = sorted(glob.glob(SHARDS))
    return (files[:-holdout], files[-holdout:]) if holdout else (files, [])


def data_dir(args) -> str:
    """All shards, or a directory of links to the non-held-out ones."""
    if not args.holdout_shards:
        return DATA
    chosen = shard_files(args.holdout_shards)[0]
    path = os.path.join(args.work_dir, f"shards-first{len(chosen)}")
    os.makedirs(path, exist_ok=True)
    for file in chosen:
        link = os.path.join(path, os.path.basename(file))
        if not os.path.lexists(link):
            os.symlink(file, link)
    return path


def model_dir(args, name: str) -> str:
    suffix = f"-holdout{args.holdout_shards}" if args.holdout_shards else ""
    return os.path.join(args.work_dir, "models", name + suffix)


def load_arrays(files: list[str] | None = None) -> tuple:
    """``(video ids, float32 [n, 1152] concat(mean_rgb, mean_audio), bool labels)``."""
    import numpy as np
    import tensorflow as tf

    from models.av import data as yt8m_data
    from models.av.vocabulary import read_vocabulary

    classes = read_vocabulary(VOCABULARY).num_classes
    parse = lambda s: yt8m_data.parse_video_level(s, classes)  # noqa: E731
    ids, xs, ys = [], [], []
    for batch, labels in (
        tf.data.TFRecordDataset(files or sorted(tf.io.gfile.glob(SHARDS))).batch(1024).map(parse)
    ):
        ids += [v.decode() for v in batch["video_id"].numpy()]
        xs.append(np.concatenate([batch["mean_rgb"], batch["mean_audio"]], axis=1))
        ys.append(labels.numpy() > 0)
    return np.array(ids), np.concatenate(xs), np.concatenate(ys)


def stacked(model, active, dtype="float32") -> tuple:
    """The one-vs-rest estimators as one ``[classes, d]`` matrix and a bias (inactive: -inf)."""
    import numpy as np

    weights = np.zeros((len(active), model.estimators_[0].coef_.shape[1]), dtype)
    bias = np.full(len(active), -np.inf, np.float32)
    weights[active] = np.concatenate([e.coef_ for e in model.estimators_]).astype(dtype)
    bias[active] = [e.intercept_[0] for e in model.estimators_]
    return weights, bias


def linear_scores(x, weights, bias):
    from scipy.special import expit

    return expit(x @ weights.astype("float32").T + bias)  # inactive classes: exactly 0


def fit_ovr(c: float, x, y):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    logreg = LogisticRegression(C=c, max_iter=spec("sklearn", None)["max_iter"])
    return OneVsRestClassifier(logreg, n_jobs=-1).fit(x, y)


def part_sklearn_fit(args) -> dict:
    import pickle

    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from models import metrics
    from models.av import data as yt8m_data

    files, held_out = shard_files(args.holdout_shards)
    ids, x, y = load_arrays(files)
    split = np.array([yt8m_data.split_of(i) for i in ids])
    scaler = StandardScaler().fit(x[split == "train"])
    data = {s: (scaler.transform(x[split == s]).astype(np.float32), y[split == s])
            for s in ("train", "eval", "test")}  # fmt: skip
    (xt, yt), (xe, ye) = data["train"], data["eval"]
    positives = yt.sum(axis=0)
    active, top = (
        positives > 0,
        np.isin(np.arange(len(positives)), np.argsort(-positives)[:TUNE_CLASSES]),
    )
    tuning = {c: metrics.gap_at_k(linear_scores(xe, *stacked(fit_ovr(c, xt, yt[:, top]), top)), ye)
              for c in C_GRID}  # fmt: skip
    best_c, stop = max(tuning, key=tuning.get), clock()
    model = fit_ovr(best_c, xt, yt[:, active])
    fit = stop()
    pathlib.Path(args.work_dir, "sklearn.pkl").write_bytes(pickle.dumps((scaler, model, active)))
    params = {"C": best_c, "tuning_eval_gap@20": tuning, "active_classes": int(active.sum())}
    result = {
        "params": params,
        "train_seconds": fit["seconds"],
        "train_cpu_seconds": fit["cpu_seconds"],
    }
    compress = {"size_mb": {}, "eval": {}, "test": {}}  # float16: rounded weights, float32 math
    for dtype in ("float32", "float16"):
        weights, bias = stacked(model, active, dtype)
        scores = {s: linear_scores(data[s][0], weights, bias) for s in ("eval", "test")}
        thresholds = metrics.tune_thresholds(scores["eval"], ye)
        compress["test"][dtype] = metrics.evaluate(scores["test"], data["test"][1], thresholds)
        compress["eval"][dtype] = metrics.evaluate(scores["eval"], ye, thresholds)
        compress["size_mb"][dtype] = weights[active].nbytes * (1 + 1 / x.shape[1]) / 2**20
    gaps = [compress["eval"][d]["gap@20"] for d in ("float16", "float32")]
    if held_out:
        hx, hy = load_arrays(held_out)[1:]
        weights = stacked(model, active)
        thresholds = metrics.tune_thresholds(linear_scores(xe, *weights), ye)
        scores = linear_scores(scaler.transform(hx).astype(np.float32), *weights)
        result["holdout"] = metrics.evaluate(scores, hy, thresholds)
    return {**result, "spec": spec("sklearn", None, args.holdout_shards), "test": compress["test"]["float32"],
            "eval_gap@20": gaps[1], "compress": {**compress, "gap_change": gaps[0] - gaps[1]}}  # fmt: skip


def part_sklearn_predict(args) -> dict:
    """Read + standardize + ``predict_proba`` (one estimator per class) + top-k, all videos;
    ``stacked_matmul``: scoring + top-k alone (no read) as one matrix product instead."""
    import pickle

    import numpy as np

    scaler, model, active = pickle.loads(pathlib.Path(args.work_dir, "sklearn.pkl").read_bytes())
    stop = clock()
    x = scaler.transform(load_arrays()[1]).astype(np.float32)
    read = stop()
    scores = np.zeros((len(x), len(active)), np.float32)
    for begin in range(0, len(x), 2048):
        scores[begin : begin + 2048, active] = model.predict_proba(x[begin : begin + 2048])
    api = stop(videos=len(np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]))
    stop = clock()
    top = np.argpartition(-linear_scores(x, *stacked(model, active)), TOP_K, axis=1)[:, :TOP_K]
    matmul = stop(videos=len(top), read_seconds=read["seconds"])
    return {**api, "read_seconds": read["seconds"], "stacked_matmul": matmul}


def part_train(args) -> dict:
    """``catalog-tagger train --features yt8m`` with the spec's flags (the CLI users run)."""
    from pipelines import cli

    settings, out = spec(args.name, args.epochs, args.holdout_shards), model_dir(args, args.name)
    shutil.rmtree(out, ignore_errors=True)  # stale epoch checkpoints would be averaged
    flags = cli_flags((settings["model"], settings["train"]))
    argv = ["train", "--features", "yt8m", "--data-dir", data_dir(args), "--vocabulary",
            VOCABULARY, "--model-dir", out, *flags]  # fmt: skip
    if cli.main(argv):
        raise SystemExit(f"train failed: {' '.join(argv)}")
    summary = json.loads(pathlib.Path(out, "training_summary.json").read_text("utf-8"))
    result = {"spec": settings, "params": summary["model"]["params"], "train": summary["model"]["train"],
              "test": summary["metrics"]["test"], "eval_gap@20": summary["metrics"]["eval"]["gap@20"],
              "train_seconds": summary["wall_seconds"], "best_epoch": summary["best_epoch"],
              "epochs_run": summary["epochs_run"], "val_gap@20": summary["history"].get("val_gap@20"),
              "weights_mb": summary["model"]["weights_mb"]}  # fmt: skip
    if args.holdout_shards:
        result["holdout"] = holdout_metrics(out, shard_files(args.holdout_shards)[1])
    return result


def holdout_metrics(trained: str, files: list[str]) -> dict:
    """The exported model's metrics on every video of ``files`` (its own thresholds)."""
    import numpy as np
    import tensorflow as tf

    from models import metrics
    from models.av import data as yt8m_data
    from models.av.trained import read_export

    source = read_export(trained)
    serve = tf.saved_model.load(source.export_dir).signatures["features"]
    scores, labels = [], []
    for features, y in yt8m_data.video_level_dataset(files, len(source.labels), 1024):
        inputs = {k: features[k] for k in ("mean_rgb", "mean_audio")}
        scores.append(serve(**inputs)["probabilities"].numpy())
        labels.append(y.numpy())
    return metrics.evaluate(np.concatenate(scores), np.concatenate(labels), source.thresholds)


def part_predict(args) -> dict:
    from pipelines import cli, predict

    out, source = os.path.join(args.work_dir, "predict", args.name), model_dir(args, args.name)
    argv = ["--input", SHARDS, "--model-dir", source, "--output-dir", out]
    stop = clock()  # pipeline construction, model check and load, run, publish
    report = predict.run(cli.profile_args("local") + argv)
    return stop(videos=report["records"]["tagged"], records=report["records"],
                run_seconds=report["run_seconds"])  # fmt: skip


def _tool(name: str, source, out: str, **kwargs) -> dict:
    shutil.rmtree(out, ignore_errors=True)  # a failed earlier run may have left a model
    try:
        from models.av import tools as av_tools

        return getattr(av_tools, name)(source, out, **kwargs)
    except Exception as err:  # noqa: BLE001 - models/av_tools is work in progress
        return {"error": f"av_tools.{name}: {type(err).__name__}: {err}".splitlines()[0]}


def part_tools(args) -> dict:
    source, out = model_dir(args, args.name), os.path.join(args.work_dir, "tools", args.name)
    return {"compress": _tool("compress", source, out + "-float16", dtype="float16"),
            "average_last3": _tool("average_checkpoints", source, out + "-avg3", last=3)}  # fmt: skip


def part_ensemble(args) -> dict:
    members = [model_dir(args, name) for name in args.name.split("+")]
    return _tool(
        "ensemble", members, os.path.join(args.work_dir, "tools", args.name), tune_weights=True
    )


PARTS = {"sklearn-fit": part_sklearn_fit, "sklearn-predict": part_sklearn_predict,
         "train": part_train, "predict": part_predict, "tools": part_tools,
         "ensemble": part_ensemble}  # fmt: skip


def part_file(args, part: str, name: str, ext: str = "json") -> str:
    suffix = f"-holdout{args.holdout_shards}" if args.holdout_shards else ""
    return os.path.join(args.work_dir, "parts", f"{part}-{name}{suffix}.{ext}")


def measure(part: str, name: str, args) -> dict:
    """Runs one part in a child process; adds its peak RSS (its largest reaped process)."""
    cmd = [sys.executable, __file__, "--part", part, "--name", name, "--work-dir", args.work_dir]
    cmd += ["--epochs", str(args.epochs)] if args.epochs else []
    cmd += ["--holdout-shards", str(args.holdout_shards)]
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if part in PINNED:
        env.update(
            dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
        )
    path, log = part_file(args, part, name), part_file(args, part, name, "log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pathlib.Path(path).unlink(missing_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {part} {name} (log: {log})", flush=True)
    result = measure_child(cmd, env, log, path, ROOT)
    if "error" in result:
        return {"error": f"{part} {name} {result['error']}"}
    result.update(cores=1 if part in PINNED else os.cpu_count())
    pathlib.Path(path).write_text(json.dumps(result, indent=1), "utf-8")
    return result


def run_part(args) -> int:
    """In the child: throughput parts get one core (before TF sizes its thread pools)."""
    if args.part in PINNED:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    result = json.dumps(PARTS[args.part](args), default=float, indent=1)
    pathlib.Path(part_file(args, args.part, args.name)).write_text(result, "utf-8")
    return 0


def fitted(part: str, name: str, args) -> dict:
    """A train part's result, reused from ``--work-dir`` when its settings match."""
    path, settings = part_file(args, part, name), spec(name, args.epochs, args.holdout_shards)
    if args.reuse and os.path.exists(path):
        previous = json.loads(pathlib.Path(path).read_text("utf-8"))
        if previous.get("spec") == settings and "peak_rss_mb" in previous:
            print(f"reusing {part} {name} from {args.work_dir}")
            return previous
    return measure(part, name, args)


def run_models(args, results: dict) -> None:
    """Each model in turn (sklearn last); the results file is rewritten after each."""
    models = results[section(args)] = {}
    for name in args.models + ([] if args.skip_sklearn else ["sklearn"]):
        sk = name == "sklearn"
        models[name] = {"train": fitted("sklearn-fit" if sk else "train", name, args)}
        if not args.train_only and "error" not in models[name]["train"]:
            if sk:
                models[name]["predict"] = measure("sklearn-predict", name, args)
            else:
                models[name]["predict"] = measure("predict", name, args)
                models[name]["tools"] = measure("tools", name, args)
        if name == "moe" and "logistic" in models and not args.train_only:
            models[name]["ensemble"] = measure("ensemble", "logistic+moe", args)
        write_results(args.output, results)


def machine() -> dict:
    from importlib.metadata import version

    lines = pathlib.Path("/proc/cpuinfo").read_text("utf-8").splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "")
    packages = ("tensorflow", "tf_keras", "apache-beam", "scikit-learn", "numpy")
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "load_average_start": os.getloadavg(), "python": platform.python_version(),
            "versions": {p: version(p) for p in packages}}  # fmt: skip


def row(entry: dict) -> list:
    """Test GAP@20, Hit@1, MB f32, f16, f16 GAP change, train s, MB, videos/s/core, MB."""
    fit, pred = entry["train"], entry.get("predict", {})
    comp = fit.get("compress") or entry.get("tools", {}).get("compress", {})
    speed = None
    if "videos" in pred:
        speed = f"{pred['videos'] / pred['seconds'] / pred['cores']:.0f} "
        speed += f"({pred['videos'] / pred['cpu_seconds']:.0f}/cpu-s)"
    size = comp.get("size_mb", {})
    return [(fit["test"]["gap@20"], ".4f"), (fit["test"]["hit@1"], ".4f"),
            (size.get("float32"), ".1f"), (size.get("float16"), ".1f"),
            (comp.get("gap_change"), "+.1e"), (fit["train_seconds"], ".0f"),
            (fit.get("peak_rss_mb"), ".0f"), (speed, ""), (pred.get("peak_rss_mb"), ".0f")]  # fmt: skip


def print_tables(models: dict) -> None:
    print("\n| model | test GAP@20 | test Hit@1 | weights MB f32 | f16 | f16 eval GAP change | "
          "train s | train peak MB | predict videos/s/core | predict peak MB |")  # fmt: skip
    print("|---" * 10 + "|")
    for name, entry in models.items():
        if "error" in entry["train"]:
            print(f"| {name} | failed: {entry['train']['error']} |" + " |" * 8)
            continue
        cells = ["n/a" if v is None else format(v, f) for v, f in row(entry)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| model | eval GAP@20 best single | averaged last 3 | ensemble logistic+moe |")
    print("|---|---|---|---|")
    for name, entry in models.items():
        avg, ens = entry.get("tools", {}).get("average_last3", {}), entry.get("ensemble", {})
        gaps = [avg.get("eval", {}).get(k, {}).get("gap@20") for k in ("best_single", "averaged")]
        gaps.append(ens.get("eval", {}).get("ensemble", {}).get("gap@20"))
        cells = ["n/a" if g is None else f"{g:.4f}" for g in gaps]
        errors = "; ".join(x["error"] for x in (avg, ens) if "error" in x)
        if avg or ens:
            print(f"| {name} | " + " | ".join(cells) + f" |{' ' + errors if errors else ''}")


def section(args) -> str:
    return "holdout" if args.holdout_shards else "models"


def print_holdout(models: dict, names: list[str]) -> None:
    print(
        "\n| model | settings | epochs (best) | eval GAP@20 | test GAP@20 | held-out GAP@20 | train s |"
    )
    print("|---" * 7 + "|")
    for name in names:
        fit = models.get(name, {}).get("train", {})
        if "holdout" not in fit:
            print(f"| {name} | failed: {fit.get('error')} |" + " |" * 5)
            continue
        train = fit["spec"].get("train")
        flags = (f"lr {train['learning_rate']}, batch {train['batch_size']}" if train
                 else f"C {fit.get('params', {}).get('C')}")  # fmt: skip
        epochs = f"{fit['epochs_run']} ({fit['best_epoch']})" if "epochs_run" in fit else "-"
        gaps = [fit["eval_gap@20"], fit["test"]["gap@20"], fit["holdout"]["gap@20"]]
        print(f"| {name} | {flags} | {epochs} | " + " | ".join(f"{g:.4f}" for g in gaps)
              + f" | {fit['train_seconds']:.0f} |")  # fmt: skip


def write_results(path: str, results: dict) -> dict:
    """Merges into an existing results file (models measured earlier are kept)."""
    previous = json.loads(pathlib.Path(path).read_text("utf-8")) if os.path.exists(path) else {}
    runs = previous.get("runs", {})
    if "command" in previous:  # the layout before "runs"
        runs[previous.pop("command")] = {
            k: previous.pop(k, None) for k in ("machine", "total_seconds")
        }
    merged = {**previous, **results, "runs": {**runs, **results["runs"]}}
    for key in ("models", "holdout"):
        models = previous.get(key, {})
        for name, entry in results.get(key, {}).items():  # same training: keep its other parts
            same = models.get(name, {}).get("train") == entry["train"]
            models[name] = {**models[name], **entry} if same else entry
        merged[key] = models
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pathlib.Path(path).write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", "utf-8")
    return merged


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    args = parse_args(argv)
    if args.part:
        return run_part(args)
    args.reuse = bool(args.work_dir)
    args.work_dir = os.path.abspath(args.work_dir or tempfile.mkdtemp(prefix="bench-yt8m-"))
    command = " ".join(["python benchmarks/yt8m.py", *(sys.argv[1:] if argv is None else argv)])
    names = args.models + ([] if args.skip_sklearn else ["sklearn"])
    run, start = {"machine": machine(), "models": names}, time.monotonic()
    results = {"specs": SPECS, "runs": {command: run}}
    run_models(args, results)
    run["machine"]["load_average_end"] = os.getloadavg()
    run["total_seconds"] = round(time.monotonic() - start, 1)
    merged = write_results(args.output, results)
    if args.holdout_shards:
        print_holdout(merged["holdout"], names)
    else:
        print_tables(merged["models"])
    print(f"\nwrote {args.output}")
    print(f"\nReproduce from the repo root ({run['total_seconds'] / 60:.0f} min here): {command}")
    print("Shared 2-core VM: timings are noisy. Throughput parts are pinned to one core; "
          "the Beam figure includes pipeline start-up and model load.")  # fmt: skip
    if not args.reuse:
        shutil.rmtree(args.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
