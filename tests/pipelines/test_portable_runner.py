"""The jobs on Beam's portable runner: the offline stand-in for Flink, Spark and
Dataflow, which speak the same Fn API.

A Python job service and an SDK worker pool run as separate processes on
loopback ports; preprocess and predict are submitted with ``--runner=
PortableRunner --environment_type=EXTERNAL`` and must give the same results as
the in-process FnApiRunner (also in multi-process mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines import cli, predict, preprocess
from pipelines.components import publish, scoring
from tests.helpers import ROOT
from transforms.features import LABELS_VOCAB, TOKENS_VOCAB
from transforms.layout import PREPROCESS_REPORT_FILE
from transforms.records import SPLITS

VENV = ROOT / ".venv"
TAGGED_AT = "2026-01-01T00:00:00+00:00"
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL to the whole process group (the pool's workers too)."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # The group may outlive its leader (worker subprocesses): make sure it is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def portable_services(tmp_path_factory):
    """``(job_port, worker_pool_port)`` of a running job service and worker pool."""
    assert pathlib.Path(sys.prefix).resolve() == VENV.resolve(), (
        f"tests must run with the project's virtualenv python, not {sys.executable}"
    )
    logs = tmp_path_factory.mktemp("portable_services")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # worker_pool_main starts each SDK worker as a bare `python -c ...` (looked up on
    # PATH, not sys.executable): the virtualenv's bin must come first.
    env["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job_port, pool_port = _free_port(), _free_port()
    while pool_port == job_port:
        pool_port = _free_port()
    commands = {
        "job_service": [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(job_port),
            "--staging_dir",
            str(logs / "staging"),
        ],
        "worker_pool": [
            sys.executable,
            "-m",
            "apache_beam.runners.worker.worker_pool_main",
            "--service_port",
            str(pool_port),
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    stderr: dict[str, pathlib.Path] = {}
    try:
        for name, command in commands.items():
            stderr[name] = logs / f"{name}.log"
            with open(stderr[name], "wb") as log:
                procs[name] = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = {"job_service": job_port, "worker_pool": pool_port}
        while pending:
            for name, port in list(pending.items()):
                if procs[name].poll() is not None:
                    pytest.fail(
                        f"{name} exited with {procs[name].returncode}:\n"
                        + stderr[name].read_text(errors="replace")[-4000:]
                    )
                if _accepts(port):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                details = "\n".join(
                    f"--- {name} (port {port}):\n"
                    + stderr[name].read_text(errors="replace")[-4000:]
                    for name, port in pending.items()
                )
                pytest.fail(f"not listening after {START_TIMEOUT_S}s:\n{details}")
            time.sleep(0.2)
        yield job_port, pool_port
    finally:
        for proc in procs.values():
            _stop(proc)


def _portable_flags(services) -> list[str]:
    job_port, pool_port = services
    return [
        "--runner=PortableRunner",
        f"--job_endpoint=localhost:{job_port}",
        "--environment_type=EXTERNAL",
        f"--environment_config=localhost:{pool_port}",
    ]


def _split_ids(out: pathlib.Path) -> set[tuple[str, str]]:
    spec = tft.TFTransformOutput(str(out)).transformed_feature_spec()
    pairs = set()
    for split in SPLITS:
        files = sorted(str(f) for f in (out / "data" / split).glob("part-*.tfrecord.gz"))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024)
        for batch in records:
            parsed = tf.io.parse_example(batch, spec)
            pairs.update((vid.decode(), split) for vid in parsed["video_id"].numpy())
    return pairs


def _predict(catalog, model_dir, out, *flags) -> dict:
    args = ["--input", str(catalog), "--model-dir", str(model_dir), "--output-dir", str(out)]
    return predict.run(cli.profile_args("local") + args + ["--tagged-at", TAGGED_AT, *flags])


def _rows(out: pathlib.Path) -> list[dict]:
    files = sorted((out / "tags").glob("part-*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    return sorted(rows, key=lambda row: row["video_id"])


@pytest.fixture(scope="module")
def in_process_predicted(sample_catalog, sample_model, tmp_path_factory):
    model_dir, _ = sample_model
    out = tmp_path_factory.mktemp("predict_in_process")
    return _predict(sample_catalog, model_dir, out), _rows(out)


def test_preprocess_on_portable_runner_matches_in_process(
    portable_services, sample_catalog, sample_preprocessed, tmp_path
):
    out = tmp_path / "pre"
    args = ["--input", str(sample_catalog), "--output-dir", str(out)]
    report = preprocess.run(cli.profile_args("local") + _portable_flags(portable_services) + args)
    expected = json.loads((sample_preprocessed / PREPROCESS_REPORT_FILE).read_text())
    assert report["records"] == expected["records"]
    assert report["records"]["balanced"] is True and report["records"]["written"] > 0
    assert report["dead_letters"] == expected["dead_letters"]
    assert report["vocabulary"]["size"] == expected["vocabulary"]["size"]
    ours, theirs = tft.TFTransformOutput(str(out)), tft.TFTransformOutput(str(sample_preprocessed))
    for name in (TOKENS_VOCAB, LABELS_VOCAB):
        vocabulary = ours.vocabulary_by_name(name)
        assert vocabulary and vocabulary == theirs.vocabulary_by_name(name), name
    pairs = _split_ids(out)
    assert len(pairs) == report["records"]["written"]
    assert pairs == _split_ids(sample_preprocessed)


def test_predict_on_portable_runner_matches_in_process(
    portable_services, in_process_predicted, sample_catalog, sample_model, tmp_path
):
    model_dir, _ = sample_model
    expected_report, expected_rows = in_process_predicted
    report = _predict(sample_catalog, model_dir, tmp_path, *_portable_flags(portable_services))
    assert report["records"] == expected_report["records"]
    rows = _rows(tmp_path)
    assert len(rows) == report["records"]["tagged"] > 0
    assert rows == expected_rows
    assert all(row["tagged_at"] == TAGGED_AT for row in rows)
    assert (tmp_path / publish.SUCCESS).exists()


def test_predict_multi_processing_matches_in_process(
    in_process_predicted, sample_catalog, sample_model, tmp_path
):
    model_dir, _ = sample_model
    expected_report, expected_rows = in_process_predicted
    flags = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    report = _predict(sample_catalog, model_dir, tmp_path, *flags)
    assert report["records"] == expected_report["records"]
    rows = _rows(tmp_path)
    assert len(rows) == report["records"]["tagged"] > 0
    assert rows == expected_rows


def test_a_launcher_that_exits_at_once_still_gets_its_output_published(
    portable_services, in_process_predicted, sample_catalog, sample_model, tmp_path
):
    """Publishing runs inside the graph: the job service finishes it after the launcher
    (as a Flex Template launcher does) exits without waiting."""
    model_dir, _ = sample_model
    expected_report, expected_rows = in_process_predicted
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    launcher = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "predict", "--input", str(sample_catalog),
         "--model-dir", str(model_dir), "--output-dir", str(tmp_path), "--tagged-at", TAGGED_AT,
         "--no-wait", *_portable_flags(portable_services)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launcher.returncode == 0, launcher.stderr[-3000:]
    assert launcher.stdout.strip() == (
        f"predict: submitted; the job publishes to {tmp_path} when it is done"
    )
    deadline = time.monotonic() + 300
    while not (tmp_path / publish.SUCCESS).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (tmp_path / publish.SUCCESS).exists(), "the job never published"
    report = json.loads((tmp_path / scoring.REPORT_FILE).read_text())
    assert report["records"] == expected_report["records"]
    assert _rows(tmp_path) == expected_rows
    assert not (tmp_path / publish.STAGING).exists()
