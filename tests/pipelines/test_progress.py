"""Stage and progress lines: the format, and the counts a real pipeline prints."""

from __future__ import annotations

import apache_beam as beam

from pipelines.components import progress
from tests.helpers import local_options


def test_progress_line_format():
    line = progress.progress_line("predict", {"read": 51200, "tagged": 50944}, "tagged", 6.0)
    assert line == "predict: 51,200 read · 50,944 tagged · 8,491 videos/s · 0:06"
    long = progress.progress_line("nightly", {"read": 7}, "read", 3725.0)
    assert long == "nightly: 7 read · 0 videos/s · 1:02:05"


def test_a_pipeline_prints_its_counts_when_a_line_is_due(monkeypatch, capfd):
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # every flush prints
    progress.begin()
    with beam.Pipeline(options=local_options()) as p:
        numbers = p | beam.Create(range(1000))
        _ = numbers | "Read" >> progress.Progress("job", "read")
        evens = numbers | beam.Filter(lambda n: n % 2 == 0)
        _ = evens | "Kept" >> progress.Progress("job", "kept")
    lines = capfd.readouterr().err.splitlines()
    final = [line for line in lines if line.startswith("job: 1,000 read · 500 kept")]
    assert final, lines  # the last flush saw every element of both points
    assert all(line.startswith("job: ") and "videos/s" in line for line in lines)


def test_no_line_before_the_interval(monkeypatch, capfd):
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 3600.0)
    progress.begin()
    with beam.Pipeline(options=local_options()) as p:
        _ = p | beam.Create(range(5000)) | progress.Progress("job", "read")
    assert capfd.readouterr().err == ""
