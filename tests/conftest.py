"""Shared fixtures: local pipeline options and the ../shared/data catalogs."""

from __future__ import annotations

import fcntl
import os
import pathlib
import pickle
import shutil

import pytest

from pipelines.cli import profile_args
from tests.helpers import SHARED_DATA

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (it sits beside the repo in CI)")
    return SHARED_DATA


def built_once(tmp_path_factory, name: str, build):
    """``build(directory)``'s result, built by one pytest-xdist worker and shared
    with the others (a lock file in their common temp directory, xdist's recipe
    for session fixtures): each end-to-end fixture is built once per run, not
    once per worker. Tests only read what it holds."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory, result = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():  # a worker's failed build is retried by the next
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            result.write_bytes(pickle.dumps(build(directory)))
        return pickle.loads(result.read_bytes())


@pytest.fixture(scope="session")
def sample_catalog(tmp_path_factory) -> pathlib.Path:
    """800 unique sample videos (plus the sample's duplicates and bad lines)."""
    from pipelines.tools.sample_catalog import write_sample_catalog

    def build(directory):
        write_sample_catalog(str(directory / "catalog.jsonl"), videos=800, seed=7)
        return directory / "catalog.jsonl"

    return built_once(tmp_path_factory, "sample", build)


@pytest.fixture(scope="session")
def sample_preprocessed(sample_catalog, tmp_path_factory) -> pathlib.Path:
    from pipelines import preprocess

    def build(out):
        args = ["--input", str(sample_catalog), "--output-dir", str(out)]
        preprocess.run(profile_args("local") + args)
        return out

    return built_once(tmp_path_factory, "sample_pre", build)


@pytest.fixture(scope="session")
def sample_model(sample_preprocessed, tmp_path_factory):
    """``(model_dir, summary)`` of a small model trained on the sample."""
    from models.text.model import HParams
    from models.text.train import TrainConfig, train

    # two seeds and the refit: the exported ensemble goes through every parity test
    hparams = HParams(
        hidden_units=64, epochs=8, patience=2, batch_size=32, learning_rate=0.01, seeds=2
    )

    def build(model_dir):
        return model_dir, train(TrainConfig(str(sample_preprocessed), str(model_dir), hparams))

    return built_once(tmp_path_factory, "sample_model", build)


@pytest.fixture(scope="session")
def sample_predictions(sample_catalog, sample_model, tmp_path_factory) -> pathlib.Path:
    """A predict output of the sample model over the whole sample catalog."""
    from pipelines import predict

    def build(out):
        args = ["--input", str(sample_catalog), "--model-dir", str(sample_model[0])]
        args += ["--output-dir", str(out), "--tagged-at", "2026-01-01T00:00:00+00:00"]
        predict.run(profile_args("local") + args)
        return out

    return built_once(tmp_path_factory, "sample_predictions", build)


# Fixtures that preprocess, train or predict the sample catalog: a test using one
# is an end-to-end test, marked ``slow`` (``make test-fast`` leaves it out).
END_TO_END_FIXTURES = {"sample_preprocessed", "sample_model", "sample_predictions", "shared_data"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
