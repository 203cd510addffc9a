"""The nightly job: incremental by content hash, deletions, new model versions,
and a killed run that leaves the published table untouched."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from models import artifacts
from pipelines import cli, nightly
from pipelines.components import tables
from tests.helpers import ROOT, catalog_rows, empty_bag_of_words_scores

TAGGED_AT = "2026-11-22T02:30:00+00:00"


def _nightly(catalog, model_dir, state, out) -> dict:
    args = ["--catalog", str(catalog), "--model-dir", str(model_dir), "--state-dir", str(state),
            "--output-dir", str(out), "--tagged-at", TAGGED_AT]  # fmt: skip
    return nightly.run(cli.profile_args("local") + args)


def _table(state) -> dict:
    path = tables.current_table(str(state))
    files = sorted(os.listdir(path))
    rows = [json.loads(line) for f in files
            for line in (pathlib.Path(path) / f).read_text(encoding="utf-8").splitlines()]  # fmt: skip
    return {row["video_id"]: row for row in rows}


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.fixture(scope="module")
def catalog(sample_catalog, tmp_path_factory):
    """The valid part of the sample catalog, one row per video (1st version)."""
    rows, seen = [], set()
    for row in catalog_rows(sample_catalog):
        if row["video_id"] not in seen and len(row.get("description") or "") < 5000:
            seen.add(row["video_id"])
            rows.append(row)
    path = tmp_path_factory.mktemp("nightly") / "catalog.jsonl"
    _write(path, rows[:300])
    return path


def test_second_run_tags_nothing_and_edits_tag_exactly_those(catalog, sample_model, tmp_path):
    model_dir, _ = sample_model
    state, out = tmp_path / "state", tmp_path / "out"
    first = _nightly(catalog, model_dir, state, out)
    assert first["videos"]["new"] == first["records"]["tagged"] == 300  # empty text is tagged too
    assert first["records"]["dead_lettered"] == 0 and first["records"]["balanced"]
    flagged = sorted(vid for vid, r in _table(state).items() if r.get("empty_text"))
    assert flagged == ["v0000331", "v0000666"]  # the sample's empty-text videos among these 300
    assert first["records"]["empty_text"] == 2
    tuned = artifacts.read_extra(str(model_dir / "saved_model"), artifacts.THRESHOLDS_FILE)
    assert json.loads((out / "thresholds_used.json").read_text()) == pytest.approx(tuned)
    assert 0 < first["oov_token_rate"] < 1  # predict's report, plus nightly's sections
    second = _nightly(catalog, model_dir, state, out)
    assert second["records"]["tagged"] == 0
    assert second["videos"]["unchanged"] == first["videos"]["in_table"]
    assert "".join(f.read_text() for f in (out / "tags").glob("*.jsonl")) == ""

    rows = catalog_rows(catalog)
    edited = [r["video_id"] for r in rows[:5]]
    for row in rows[:5]:
        row["title"] = f"{row['title']} brand new words {row['video_id']}"
    deleted = [r["video_id"] for r in rows[5:8]]
    rows = rows[:5] + rows[8:]
    rows.append({"video_id": "v9000001", "title": "pasta recipe chef kitchen"})
    rows.append({"video_id": "v9000002", "title": "<b>🎉</b> https://x.example/a !!"})  # no words
    _write(catalog.parent / "edited.jsonl", rows)
    third = _nightly(catalog.parent / "edited.jsonl", model_dir, state, out)
    assert third["videos"]["changed"] == 5 and third["videos"]["new"] == 2
    assert third["videos"]["deleted"] == 3 and third["records"]["tagged"] == 7
    assert third["records"]["empty_text"] == 1 and third["records"]["balanced"]
    table = _table(state)
    assert not set(deleted) & table.keys() and {"v9000001", "v9000002"} <= table.keys()
    assert len(table) == first["videos"]["in_table"] - 3 + 2
    assert table["v9000002"]["empty_text"] is True and "empty_text" not in table["v9000001"]
    prior = empty_bag_of_words_scores(model_dir)
    got = {t["label"]: t["score"] for t in table["v9000002"]["labels"]}
    assert got == pytest.approx(prior, abs=1e-6)
    published = [json.loads(line) for f in (out / "tags").glob("*.jsonl")
                 for line in f.read_text().splitlines()]  # fmt: skip
    assert sorted(r["video_id"] for r in published) == sorted([*edited, "v9000001", "v9000002"])
    history = (state / tables.HISTORY).read_text().splitlines()
    assert [json.loads(h)["records"]["tagged"] for h in history] == [
        first["records"]["tagged"],
        0,
        7,
    ]


def test_new_model_version_retags_everything(catalog, sample_model, tmp_path):
    model_dir, _ = sample_model
    state, out = tmp_path / "state", tmp_path / "out"
    first = _nightly(catalog, model_dir, state, out)
    newer = tmp_path / "model_v2"
    shutil.copytree(model_dir / "saved_model", newer / "saved_model")
    card_path = newer / "saved_model" / "assets.extra" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["model_version"] = "v2-" + card["model_version"]
    card_path.write_text(json.dumps(card))
    second = _nightly(catalog, newer, state, out)
    assert second["videos"]["changed"] == second["records"]["tagged"] == first["records"]["tagged"]
    assert {row["model_version"] for row in _table(state).values()} == {card["model_version"]}


def test_killed_run_leaves_the_published_table_untouched(catalog, sample_model, tmp_path):
    model_dir, _ = sample_model
    state, out = tmp_path / "state", tmp_path / "out"
    _nightly(catalog, model_dir, state, out)
    pointer = (state / tables.CURRENT).read_text()
    before = _table(state)
    args = [sys.executable, "-m", "pipelines.cli", "nightly", "--catalog", str(catalog),
            "--model-dir", str(model_dir), "--state-dir", str(state), "--output-dir", str(out),
            "--tagged-at", "2026-11-23T02:30:00+00:00", "--top-k", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(os.listdir(state / "tables")) < 2:
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (state / tables.CURRENT).read_text() == pointer
    assert _table(state) == before
    rerun = _nightly(catalog, model_dir, state, out)  # the rerun completes and publishes
    assert (state / tables.CURRENT).read_text() != pointer
    assert rerun["records"]["tagged"] == 0 and len(_table(state)) == len(before)


def test_retrain_gate_promotes_or_keeps_the_model(sample_catalog, sample_model, tmp_path):
    model_dir, _ = sample_model
    current = tmp_path / "model"
    shutil.copytree(model_dir / "saved_model", current / "saved_model")
    card = current / "saved_model" / "assets.extra" / "model_card.json"
    old_version = json.loads(card.read_text())["model_version"]
    args = ["--catalog", str(sample_catalog), "--model-dir", str(current),
            "--state-dir", str(tmp_path / "state"), "--output-dir", str(tmp_path / "out"),
            "--retrain"]  # fmt: skip
    kept = nightly.run(cli.profile_args("local") + args + ["--gap-tolerance", "-1"])
    decision = kept["retrain"]
    assert decision["promoted"] is False and decision["held_out_videos"] > 50
    assert 0 < decision["candidate_gap@20"] <= 1 and 0 < decision["current_gap@20"] <= 1
    assert json.loads(card.read_text())["model_version"] == old_version
    promoted = nightly.run(cli.profile_args("local") + args + ["--gap-tolerance", "1"])
    assert promoted["retrain"]["promoted"] is True
    new_version = json.loads(card.read_text())["model_version"]
    assert new_version != old_version == promoted["retrain"]["replaced_version"]
    assert (current / "previous" / old_version / "saved_model.pb").exists()
    assert promoted["model_version"] == new_version
    assert promoted["videos"]["changed"] == kept["videos"]["in_table"]  # a new model retags all
