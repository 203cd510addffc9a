"""Shared fixtures: local pipeline options and the ../shared/data catalogs."""

from __future__ import annotations

import math
import os
import pathlib

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli import profile_args

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def latest_records(path) -> dict[str, dict]:
    """The sample catalog's valid records, one per video id as ReadCatalog +
    Deduplicate keep them: the latest ``updated_at``, ties to the later line."""
    from transforms.records import (
        RecordError,
        RecordSchema,
        decode_utf8,
        parse_json_object,
        to_canonical,
    )

    best: dict[str, tuple] = {}
    for line_no, line in enumerate(pathlib.Path(path).read_bytes().splitlines()):
        try:
            record = to_canonical(parse_json_object(decode_utf8(line)), RecordSchema())
        except RecordError:
            continue
        updated = record.get("updated_at")
        key = (-math.inf if updated is None else updated, line_no)
        if record["video_id"] not in best or key >= best[record["video_id"]][0]:
            best[record["video_id"]] = (key, record)
    return {video_id: record for video_id, (_, record) in best.items()}


def local_options(*flags: str) -> PipelineOptions:
    """Pipeline options from the packaged local (offline) runner profile."""
    return PipelineOptions(profile_args("local") + list(flags))


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
