"""Publishing as the last step of the pipeline graph, on every runner.

Each job writes its output under ``<output-dir>/_staging`` and ends with
:class:`Publish`: the run's summed stats (one element) go through the job's
publish action, which takes the file names every write transform returned as
side inputs, so it runs only once every write has been finalised. The action
checks the guards (``pipelines/components/guards.py``) on those counts, writes the report
and moves the staged output into place, ``_SUCCESS`` last. It runs on a worker,
so the job publishes whether or not its launcher is still there (a Dataflow
Flex Template launcher, ``--no-wait``).

A runner may retry the step, so each action is idempotent: a move already
done is not redone, and a run already published is left alone. A refusal
leaves ``_staging/_REFUSED`` (its one-line reason) for the launcher and fails
the job, with nothing published.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.runners.runner import PipelineState

from pipelines.components import progress
from pipelines.components.guards import Guards, PublishRefused
from pipelines.components.report import SumStats, read_json, write_json
from transforms.errors import JobError
from transforms.files import remove

SUCCESS = "_SUCCESS"
STAGING = "_staging"
REFUSED_FILE = "_REFUSED"
DEAD_LETTERS = "dead_letters"


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a run is published: its guards, when it was launched, whether to wait."""

    guards: Guards = Guards()
    started_at: float = dataclasses.field(default_factory=time.time)  # the report's run_seconds
    wait: bool = True

    def seconds(self) -> float:
        return round(time.time() - self.started_at, 3)


class Publish(beam.PTransform):
    """``stats`` (one summed-stats dict) -> ``action(stats)``, after every write in ``written``."""

    def __init__(self, action, written: list):
        super().__init__()
        self._action, self._written = action, list(written)

    def expand(self, stats):
        waits = [beam.pvalue.AsList(files) for files in self._written]
        return stats | "AfterEveryWrite" >> beam.Map(_publish, self._action, *waits)


def publish_stats(stats: list, action, written: list) -> beam.PCollection:
    """A job's last step: its stat rows (PCollections of ``(key, value)``) summed into
    one dict (``FlattenStats``, ``SumStats``), then ``Publish``. A function, not a
    composite: FnApiRunner cannot fuse a composite applied to a list of PCollections."""
    summed = stats | "FlattenStats" >> beam.Flatten() | "SumStats" >> SumStats()
    return summed | "Publish" >> Publish(action, written)


def _publish(stats: dict, action, *written_files) -> dict:
    del written_files  # side inputs only for their ordering: every write has finished
    return action(stats)


def check(staging: str, refusal: str | None) -> None:
    """Fails the job with ``refusal`` (kept in ``staging`` for the launcher), if any."""
    if refusal is None:
        return
    with FileSystems.create(FileSystems.join(staging, REFUSED_FILE)) as handle:
        handle.write(refusal.encode("utf-8"))
    raise PublishRefused(refusal)


def publish_once(staging: str, output_dir: str, names: tuple[str, ...], make_report) -> dict:
    """The publish sequence every job shares; returns the published report.

    ``names`` are the staged entries, the report (a JSON file) last. The first
    time, ``make_report()`` returns ``(report, refusal)`` (and may stage extra
    files): a refusal fails the job with nothing published; otherwise the report
    is staged and everything is moved. A retried step finds the report staged
    (the guards passed) or already moved, and only finishes the moves.
    """
    report_path = FileSystems.join(staging, names[-1])
    if _staged(staging, names) and not FileSystems.exists(report_path):
        payload, refusal = make_report()
        check(staging, refusal)
        write_json(report_path, payload)
    publish_dir(staging, output_dir, names)
    return read_json(FileSystems.join(output_dir, names[-1]))


def _staged(staging: str, names: tuple[str, ...]) -> bool:
    return any(FileSystems.exists(FileSystems.join(staging, name)) for name in names)


def publish_dir(staging: str, output_dir: str, names: tuple[str, ...]) -> None:
    """Replaces each of ``names`` in ``output_dir`` by its staged version, ``_SUCCESS`` last.

    Idempotent: a name no longer in staging was moved by an earlier attempt.
    """
    remove(FileSystems.join(output_dir, SUCCESS))
    for name in names:
        source, target = FileSystems.join(staging, name), FileSystems.join(output_dir, name)
        if FileSystems.exists(source):
            remove(target)
            FileSystems.rename([source], [target])
    remove(staging)
    with FileSystems.create(FileSystems.join(output_dir, SUCCESS)) as handle:
        handle.write(b"")


def run_pipeline(pipeline: beam.Pipeline, staging: str, wait: bool = True, job: str = ""):
    """Runs ``pipeline``; its result once it has finished (and published), or None
    when it was only submitted (``--no-wait``, or a template launch). A failure
    becomes one line: the guard's refusal, or what broke. With ``job``, the stages
    and the progress lines go to stderr (``pipelines.components.progress``)."""
    if job:
        progress.begin()
        progress.stage(job, f"running on {type(pipeline.runner).__name__}")
    try:
        result = pipeline.run()
        if not wait:
            return None
        result.wait_until_finish()
    except Exception as err:  # noqa: BLE001 - reported as one line, nothing was published
        raise failure(staging, err) from None
    if result.state != PipelineState.DONE:
        return None
    if job:
        progress.stage(job, f"published {FileSystems.split(staging.rstrip('/'))[0]}")
    return result


def failure(staging: str, err: Exception) -> JobError:
    """The one-line error for a failed run: its refusal if a guard refused, else the cause."""
    path = FileSystems.join(staging, REFUSED_FILE)
    if FileSystems.exists(path):
        with FileSystems.open(path) as handle:
            return PublishRefused(handle.read().decode("utf-8"))
    logging.debug("the pipeline failed", exc_info=err)
    cause = (str(err).strip().splitlines() or [""])[0][:300]
    return JobError(f"the job failed and published nothing: {type(err).__name__}: {cause}")


def beam_metrics(result) -> dict:
    """The run's Beam counters and distributions (the launcher's view; not in the graph)."""
    try:
        queried = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners cannot report metrics
        return {}
    out = {m.key.metric.name: m.committed for m in queried["counters"]}
    for m in queried["distributions"]:
        d = m.committed
        if d is not None and d.count:
            out[m.key.metric.name] = {"count": d.count, "mean": d.mean, "min": d.min, "max": d.max}
    return out
