"""Serve latency: ``catalog-tagger serve`` over loopback, 1 and 64 videos per request.

A model is built once (sample catalog of 5,000 videos -> preprocess -> train, 5
epochs, as ``benchmarks/predict.py``) in a child process, or ``--model-dir``
reuses one. The server is the real command, in a subprocess pinned to one core
(``os.sched_setaffinity`` before TensorFlow starts, so its thread pools see one
core); the client, one keep-alive ``http.client`` connection posting in a loop,
runs on another core when there is one. Requests carry raw records of a
generated sample catalog (not the training one). After a warm-up, each
request's latency is timed by the client: p50, p99, mean, max, requests/s,
videos/s, and the server's CPU per request (from /proc). Goal: p99 under 20 ms
for one video on one core.

    python benchmarks/serve.py [--model-dir M] [--requests 2000] [--batch-requests 300] \\
        [--batch 64] [--core 0] [--work DIR] [--output benchmarks/results/serve.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from predict import TRAIN_VIDEOS, build_project_model  # benchmarks/predict.py (script dir)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_P99_MS = 20.0
WARM_UP = 50


def build_model(work: str) -> str:
    """Builds the benchmark model in a child process (once per ``work``); returns its
    --model-dir."""
    model_dir = os.path.join(work, "model")
    if os.path.isdir(os.path.join(model_dir, "saved_model")):
        return model_dir
    start, env = time.perf_counter(), {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, __file__, "--build", work]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"building the model failed: {done.stderr[-2000:]}")
    print(f"model built on {TRAIN_VIDEOS} videos in {time.perf_counter() - start:.0f} s")
    return model_dir


def _build(work: str) -> None:
    sys.path.insert(0, ROOT)
    build_project_model(work)


def catalog_records(path: str, videos: int) -> list[dict]:
    """Raw rows of a generated catalog that the intake accepts."""
    from pipelines.tools.sample_catalog import write_sample_catalog
    from transforms.records import RecordError, RecordSchema, parse_json_object, to_canonical

    write_sample_catalog(path, videos=videos, seed=11)
    rows = []
    with open(path, "rb") as handle:
        for line in handle:
            try:
                row = parse_json_object(line.decode("utf-8"))
                to_canonical(row, RecordSchema())
            except (RecordError, UnicodeDecodeError):
                continue
            rows.append(row)
    return rows


def start_server(model_dir: str, core: int | None) -> tuple[subprocess.Popen, int, str]:
    """``catalog-tagger serve --port 0`` pinned to ``core``; its port and model version."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    cmd = [sys.executable, "-m", "pipelines.cli", "serve", "--model-dir", model_dir, "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    line = proc.stdout.readline().strip()
    match = re.fullmatch(r"serving (\S+) on http://127\.0\.0\.1:(\d+)/tag", line)
    if not match:
        proc.kill()
        sys.exit(f"serve did not start (exit {proc.wait()}): {line!r}")
    return proc, int(match[2]), match[1]


def server_cpu_seconds(pid: int) -> float | None:
    """The process's user + system CPU so far (Linux /proc), else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def run_load(port: int, pid: int, bodies: list[bytes], requests: int, per_request: int) -> dict:
    """Posts ``requests`` bodies (cycling) on one keep-alive connection, after a warm-up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def post(body: bytes) -> None:
        conn.request("POST", "/tag", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            sys.exit(f"serve answered {response.status}: {payload[:300]!r}")

    for i in range(WARM_UP):
        post(bodies[i % len(bodies)])
    latencies, cpu_before, start = [], server_cpu_seconds(pid), time.perf_counter()
    for i in range(requests):
        sent = time.perf_counter()
        post(bodies[i % len(bodies)])
        latencies.append((time.perf_counter() - sent) * 1000)
    wall, cpu_after = time.perf_counter() - start, server_cpu_seconds(pid)
    conn.close()
    latencies.sort()
    cpu = None if cpu_before is None else (cpu_after - cpu_before) * 1000 / requests
    return {
        "videos_per_request": per_request, "requests": requests,
        "p50_ms": round(percentile(latencies, 50), 3), "p99_ms": round(percentile(latencies, 99), 3),
        "mean_ms": round(sum(latencies) / requests, 3), "max_ms": round(latencies[-1], 3),
        "requests_per_s": round(requests / wall, 1),
        "videos_per_s": round(requests * per_request / wall, 1),
        "server_cpu_ms_per_request": None if cpu is None else round(cpu, 3),
    }  # fmt: skip


def print_table(runs: list[dict]) -> None:
    print(f"{'videos/req':>10} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
          f"{'max ms':>8} {'req/s':>8} {'videos/s':>9} {'cpu ms/req':>10}")  # fmt: skip
    for r in runs:
        cpu = r["server_cpu_ms_per_request"]
        print(f"{r['videos_per_request']:>10} {r['requests']:>8} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['mean_ms']:>8.2f} {r['max_ms']:>8.2f} "
              f"{r['requests_per_s']:>8.0f} {r['videos_per_s']:>9.0f} "
              f"{'-' if cpu is None else f'{cpu:.2f}':>10}")  # fmt: skip


def pin_cores(core: int) -> tuple[int | None, int | None]:
    """``(server core, client core)``: distinct when the machine allows it."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    available = sorted(os.sched_getaffinity(0))
    server = core if core in available else available[0]
    others = [c for c in available if c != server]
    if others:
        os.sched_setaffinity(0, {others[0]})
    return server, (others[0] if others else server)


def measure(args, model_dir: str, work: str) -> dict:
    sys.path.insert(0, ROOT)
    rows = catalog_records(os.path.join(work, "requests.jsonl"), args.videos)
    server_core, client_core = pin_cores(args.core)
    proc, port, version = start_server(model_dir, server_core)
    try:
        singles = [json.dumps(row).encode() for row in rows]
        batches = [json.dumps(rows[i : i + args.batch]).encode()
                   for i in range(0, len(rows) - args.batch + 1, args.batch)]  # fmt: skip
        runs = [
            run_load(port, proc.pid, singles, args.requests, 1),
            run_load(port, proc.pid, batches, args.batch_requests, args.batch),
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    machine = {"cpus": os.cpu_count(), "server_core": server_core, "client_core": client_core,
               "python": platform.python_version(), "processor": platform.processor()}  # fmt: skip
    return {"model_version": version, "machine": machine, "goal_p99_ms_one_video": GOAL_P99_MS,
            "warm_up_requests": WARM_UP, "runs": runs}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="Reuse a trained model (default: build one).")
    parser.add_argument("--requests", type=int, default=2000, help="One-video requests.")
    parser.add_argument("--batch-requests", type=int, default=300, help="Batch requests.")
    parser.add_argument("--batch", type=int, default=64, help="Videos per batch request.")
    parser.add_argument("--videos", type=int, default=2000, help="Catalog the requests use.")
    parser.add_argument("--core", type=int, default=0, help="The server's core.")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks/results/serve.json"))
    parser.add_argument("--work", help="Build the model here and keep it for later runs.")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        return _build(args.build)
    work = args.work or tempfile.mkdtemp(prefix="bench-serve-")
    try:
        model_dir = args.model_dir or build_model(work)
        results = measure(args, model_dir, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results["runs"])
    p99 = results["runs"][0]["p99_ms"]
    verdict = "meets" if p99 < GOAL_P99_MS else "misses"
    print(f"one video per request: p99 {p99:.2f} ms {verdict} the {GOAL_P99_MS:.0f} ms goal "
          f"(server on core {results['machine']['server_core']})")  # fmt: skip
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
        handle.write("\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
