"""Never publish a broken result: the guards inside the graph, bugs that fail the job
instead of dead-lettering, an idempotent publish step, and one nightly run at a time."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pipelines import cli
from pipelines.components import guards, locks, publish, scoring, tables
from tests.helpers import ROOT, catalog_rows, jsonl_bytes, snapshot
from transforms.errors import JobError


def test_guard_messages_name_counts_reasons_and_where():
    dead = {"read": {"malformed_json": 700, "bad_utf8": 80, "missing_video_id": 6},
            "clean": {"empty_text": 3}}  # fmt: skip
    limits = guards.Guards()
    message = guards.dead_letter_refusal(800, dead, limits, "gs://b/out/_staging/dead_letters")
    assert message == (
        "refusing to publish: 789 of 800 records read (98.6%) were dead-lettered, above "
        "--max-dead-letter-fraction 0.1; top reasons: read/malformed_json 700, read/bad_utf8 "
        "80, read/missing_video_id 6; dead letters in gs://b/out/_staging/dead_letters"
    )
    assert guards.dead_letter_refusal(800, {"read": {"bad_utf8": 80}}, limits, "d") is None
    assert guards.dead_letter_refusal(800, {"read": {"bad_utf8": 81}}, limits, "d") is not None
    assert "would drop 2,985 of the live table's 2,985 videos (100.0%)" in (
        guards.deletion_refusal(2985, 2985, limits)
    )
    assert guards.deletion_refusal(1000, 100, limits) is None  # exactly the limit passes
    assert guards.deletion_refusal(1000, 900, guards.Guards(allow_mass_delete=True)) is None
    with pytest.raises(ValueError, match="--max-deleted-fraction must be in"):
        guards.Guards(max_deleted_fraction=1.5)


def _good_then_bad(sample_catalog, path, good: int, bad: int) -> None:
    rows = [r for r in catalog_rows(sample_catalog) if len(r.get("title") or "") > 10][:good]
    path.write_bytes(
        jsonl_bytes(rows) + b"this is not json\n" * (bad - 5) + b'{"title": "x"}\n' * 5
    )


def _predict_argv(catalog, model_dir, out) -> list[str]:
    return ["predict", "--input", str(catalog), "--model-dir", str(model_dir),
            "--output-dir", str(out), "--tagged-at", "2026-12-01T00:00:00+00:00"]  # fmt: skip


def test_mostly_bad_input_is_refused_inside_the_graph(
    sample_catalog, sample_model, sample_predictions, tmp_path, capsys, monkeypatch
):
    """The first records pass the launch-time check; the publish step refuses."""
    catalog, out = tmp_path / "catalog.jsonl", tmp_path / "out"
    _good_then_bad(sample_catalog, catalog, good=20, bad=100)
    shutil.copytree(sample_predictions, out)
    before = snapshot(out)
    monkeypatch.setattr(guards, "PREFLIGHT_RECORDS", 20)
    assert cli.main(_predict_argv(catalog, sample_model[0], out)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    dead_dir = out / "_staging" / "dead_letters"
    assert err == (
        "catalog-tagger: error: refusing to publish: 100 of 120 records read (83.3%) were "
        "dead-lettered, above --max-dead-letter-fraction 0.1; top reasons: "
        f"read/malformed_json 95, read/missing_video_id 5; dead letters in {dead_dir}"
    )
    kept = [
        json.loads(line) for f in dead_dir.glob("part-*") for line in f.read_text().splitlines()
    ]
    assert len(kept) == 100 and {d["stage"] for d in kept} == {"read"}
    assert snapshot(out) == before  # the previous output and its _SUCCESS are untouched
    monkeypatch.setattr(guards, "PREFLIGHT_RECORDS", 1000)  # the same limit passes at 0.9
    assert cli.main([*_predict_argv(catalog, sample_model[0], out), "--max-dead-letter-fraction",
                     "0.9"]) == 0  # fmt: skip
    assert json.loads((out / scoring.REPORT_FILE).read_text())["records"]["tagged"] == 20


def test_a_bug_on_the_inference_path_fails_the_job_and_publishes_nothing(
    sample_catalog, sample_model, sample_predictions, tmp_path, capsys, monkeypatch
):
    from models.serving import LoadedTagger

    out = tmp_path / "out"
    shutil.copytree(sample_predictions, out)
    before = snapshot(out)

    def planted(self, titles, descriptions, tags):
        raise AttributeError("'LoadedTagger' object has no attribute '_planted'")

    monkeypatch.setattr(LoadedTagger, "score_raw", planted)
    assert cli.main(_predict_argv(sample_catalog, sample_model[0], out)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        "catalog-tagger: error: the job failed and published nothing: "
        "AttributeError: 'LoadedTagger' object has no attribute '_planted'"
    )
    assert snapshot(out) == before
    assert not list((out / "_staging" / "dead_letters").glob("part-*"))  # none dead-lettered


def test_publish_step_is_idempotent_across_retries(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_staging"
    (out / "tags").mkdir(parents=True)
    (out / "tags" / "part-old").write_text("old")
    (out / "report.json").write_text('{"run": "old"}')
    (out / publish.SUCCESS).write_text("")
    (staging / "tags").mkdir(parents=True)
    (staging / "tags" / "part-new").write_text("new")
    (staging / "dead").mkdir()
    (staging / "dead" / "part-0").write_text("")
    names, calls = ("tags", "dead", "report.json"), []

    def make_report():
        calls.append(1)
        return {"run": "new"}, None

    # A first attempt that dies after moving "tags": its report was staged already.
    (staging / "report.json").write_text('{"run": "new"}')
    (out / publish.SUCCESS).unlink()
    shutil.rmtree(out / "tags")
    (staging / "tags").rename(out / "tags")
    assert publish.publish_once(str(staging), str(out), names, make_report) == {"run": "new"}
    assert calls == []  # the guards had passed: the staged report is reused
    again = publish.publish_once(str(staging), str(out), names, make_report)
    assert again == {"run": "new"} and calls == []  # a retry after a complete publish
    assert sorted(p.name for p in out.iterdir()) == [publish.SUCCESS, "dead", "report.json", "tags"]
    assert (out / "tags" / "part-new").read_text() == "new"

    (staging / "tags").mkdir(parents=True)  # the next run, which a guard refuses
    with pytest.raises(guards.PublishRefused, match="refusing to publish: test"):
        publish.publish_once(str(staging), str(out), names,
                             lambda: ({"run": "bad"}, "refusing to publish: test"))  # fmt: skip
    assert (staging / publish.REFUSED_FILE).read_text() == "refusing to publish: test"
    assert (out / publish.SUCCESS).exists() and (out / "tags" / "part-new").exists()


def test_lock_is_exclusive_named_taken_over_when_stale_and_released_by_its_holder(tmp_path):
    state = str(tmp_path)
    locks.acquire(state, "run-a", expiry_hours=1)
    with pytest.raises(JobError, match=r"locked by nightly run run-a on .* \(pid \d+\), until"):
        locks.acquire(state, "run-b", expiry_hours=1)
    locks.release(state, "run-b")  # not the holder: nothing happens
    assert json.loads((tmp_path / locks.LOCK_FILE).read_text())["run_id"] == "run-a"
    locks.release(state, "run-a")
    assert not (tmp_path / locks.LOCK_FILE).exists()

    locks.acquire(state, "run-c", expiry_hours=-1)  # already expired
    locks.acquire(state, "run-d", expiry_hours=1)  # takes it over
    assert json.loads((tmp_path / locks.LOCK_FILE).read_text())["run_id"] == "run-d"
    locks.release(state, "run-d")

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock = locks.Lock.new("run-e", 1, waits=True)
    stale = {**json.loads(lock.encode()), "pid": int(dead.stdout)}  # its launcher is gone
    (tmp_path / locks.LOCK_FILE).write_text(json.dumps(stale))
    locks.acquire(state, "run-f", expiry_hours=1)
    assert json.loads((tmp_path / locks.LOCK_FILE).read_text())["run_id"] == "run-f"
    detached = {**stale, "run_id": "run-g", "waits": False}  # its job may still run
    (tmp_path / locks.LOCK_FILE).write_text(json.dumps(detached))
    with pytest.raises(JobError, match="locked by nightly run run-g"):
        locks.acquire(state, "run-h", expiry_hours=1)


def test_two_nightly_runs_on_one_state_dir_one_publishes(sample_catalog, sample_model, tmp_path):
    model_dir, _ = sample_model
    catalog, state = tmp_path / "catalog.jsonl", tmp_path / "state"
    catalog.write_bytes(jsonl_bytes(catalog_rows(sample_catalog)[:60]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "nightly",
                "--catalog",
                str(catalog),
                "--model-dir",
                str(model_dir),
                "--state-dir",
                str(state),
                "--output-dir",
                str(tmp_path / f"out{i}"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    results = [(proc.wait(timeout=300), proc.stderr.read()) for proc in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2).strip().splitlines()[-1]
    assert loser.startswith("catalog-tagger: error: state dir") and "is locked by nightly run" in (
        loser
    )
    history = [json.loads(line) for line in (state / tables.HISTORY).read_text().splitlines()]
    assert len(history) == 1 and (state / tables.CURRENT).read_text() == history[0]["run_id"]
    table = pathlib.Path(tables.current_table(str(state)))
    rows = [line for f in sorted(table.iterdir()) for line in f.read_text().splitlines()]
    assert len(rows) == history[0]["videos"]["in_table"] == history[0]["records"]["tagged"]
    assert os.listdir(state / "tables") == [history[0]["run_id"]]
    assert not (state / locks.LOCK_FILE).exists()
