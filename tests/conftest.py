"""Shared fixtures: local pipeline options and the ../shared/data catalogs."""

from __future__ import annotations

import os
import pathlib

import pytest

from pipelines.cli import profile_args
from tests.helpers import SHARED_DATA

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_catalog(tmp_path_factory) -> pathlib.Path:
    """800 unique sample videos (plus the sample's duplicates and bad lines)."""
    from pipelines.tools.sample_catalog import write_sample_catalog

    path = tmp_path_factory.mktemp("sample") / "catalog.jsonl"
    write_sample_catalog(str(path), videos=800, seed=7)
    return path


@pytest.fixture(scope="session")
def sample_preprocessed(sample_catalog, tmp_path_factory) -> pathlib.Path:
    from pipelines import preprocess

    out = tmp_path_factory.mktemp("sample_pre")
    preprocess.run(
        profile_args("local") + ["--input", str(sample_catalog), "--output-dir", str(out)]
    )
    return out


@pytest.fixture(scope="session")
def sample_model(sample_preprocessed, tmp_path_factory):
    """``(model_dir, summary)`` of a small model trained on the sample."""
    from models.text.model import HParams
    from models.text.train import TrainConfig, train

    model_dir = tmp_path_factory.mktemp("sample_model")
    # two seeds and the refit: the exported ensemble goes through every parity test
    hparams = HParams(
        hidden_units=64, epochs=8, patience=2, batch_size=32, learning_rate=0.01, seeds=2
    )
    summary = train(TrainConfig(str(sample_preprocessed), str(model_dir), hparams))
    return model_dir, summary


@pytest.fixture(scope="session")
def sample_predictions(sample_catalog, sample_model, tmp_path_factory) -> pathlib.Path:
    """A predict output of the sample model over the whole sample catalog."""
    from pipelines import predict

    model_dir, _ = sample_model
    out = tmp_path_factory.mktemp("sample_predictions")
    args = ["--input", str(sample_catalog), "--model-dir", str(model_dir), "--output-dir", str(out)]
    predict.run(profile_args("local") + args + ["--tagged-at", "2026-01-01T00:00:00+00:00"])
    return out


# Fixtures that preprocess, train or predict the sample catalog: a test using one
# is an end-to-end test, marked ``slow`` (``make test-fast`` leaves it out).
END_TO_END_FIXTURES = {"sample_preprocessed", "sample_model", "sample_predictions", "shared_data"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
