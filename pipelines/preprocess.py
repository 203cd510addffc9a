"""The preprocess job: catalog to tf-idf bag-of-words TFRecords + transform graph.

CatalogIntake (read, dedup) -> PrepareText -> AssignSplits -> AnalyzeAndTransform
(text cleaning in the graph; vocabularies, stems and idf from train only) -> WriteExamples,
with every rejected record in dead letters and the counts in
``preprocess_report.json`` (in = written + dead letters + duplicates). It all
lands in ``_staging``; the graph's last step checks the guards and moves it
into ``--output-dir``, so a refused run leaves the previous output as it was.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.components import preprocessing


def run(argv: list[str] | None = None) -> dict:
    """Parses flags, runs the job; returns the published report, or ``{"submitted":
    ...}`` when it did not wait for the job."""
    return preprocessing.launch(PipelineOptions(argv))
