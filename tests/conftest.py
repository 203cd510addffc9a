"""Shared fixtures: local pipeline options and the ../shared/data catalogs."""

from __future__ import annotations

import os
import pathlib

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.cli import profile_args

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def local_options(*flags: str) -> PipelineOptions:
    """Pipeline options from the packaged local (offline) runner profile."""
    return PipelineOptions(profile_args("local") + list(flags))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (it sits beside the repo in CI)")
    return SHARED_DATA
