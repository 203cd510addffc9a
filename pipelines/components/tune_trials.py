"""``train --tune --tune-parallelism K``: a round of tuning trials as one Beam job.

One element per trial spec; each worker opens the preprocess output once
(``setup``) and runs ``models.text.tune.run_trial``, which is a pure function of
its spec, so the study is the same as when the trials run in sequence. The
records go to ``MODEL_DIR/tune/round-NNN/`` (any filesystem the runner reaches)
and are read back by the launching process to ask the next round.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import typing

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from models.text import tune
from models.text.model import HParams
from models.text.train import fit_trial, load_training_data


class _RunTrial(beam.DoFn):
    def __init__(self, data_dir: str, base: dict):
        self._data_dir, self._base = data_dir, base
        self._trials = Metrics.counter("tune", "trials")

    def setup(self):
        self._data = load_training_data(self._data_dir)

    def process(self, spec: str) -> typing.Iterator[str]:
        fit = functools.partial(fit_trial, self._data, HParams(**self._base))
        self._trials.inc()
        yield json.dumps(tune.run_trial(json.loads(spec), fit), sort_keys=True)


class RunTrials(beam.PTransform):
    """JSON trial specs -> JSON trial records."""

    def __init__(self, data_dir: str, base: HParams):
        super().__init__()
        self._data_dir, self._base = data_dir, dataclasses.asdict(base)

    def expand(self, specs):
        return (
            specs
            | "Spread" >> beam.Reshuffle()
            | "RunTrial" >> beam.ParDo(_RunTrial(self._data_dir, self._base))
        )


def beam_rounds(pipeline_args: list[str], data_dir: str, model_dir: str, base: HParams):
    """``run_round`` for ``models.text.tune.search`` that runs each round on Beam."""
    counter = iter(range(1_000_000))

    def run_round(specs: list[dict]) -> list[dict]:
        out = os.path.join(model_dir, "tune", f"round-{next(counter):03d}")
        with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
            _ = (
                p
                | "Specs" >> beam.Create([json.dumps(s, sort_keys=True) for s in specs])
                | "Trials" >> RunTrials(data_dir, base)
                | "Write" >> beam.io.WriteToText(os.path.join(out, "trials"), ".jsonl")
            )
        lines = []
        for path in sorted(tf.io.gfile.glob(os.path.join(out, "trials*.jsonl"))):
            with tf.io.gfile.GFile(path) as handle:
                lines += [json.loads(line) for line in handle if line.strip()]
        return lines

    return run_round
