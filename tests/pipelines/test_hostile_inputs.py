"""Hostile inputs through preprocess, predict and nightly, each over a previous good
output: the guard refuses with one line and nothing published changes, or the run
publishes and its dead letters balance. No input may produce a traceback."""

from __future__ import annotations

import gzip
import json
import pathlib
import random
import shutil

import pytest

from pipelines import cli
from tests.helpers import catalog_rows, jsonl_bytes, snapshot

GOOD_VIDEOS = 40
TAGGED_AT = "2026-11-30T00:00:00+00:00"


def _good_rows(sample_catalog) -> list[dict]:
    rows, seen = [], set()
    for row in catalog_rows(sample_catalog):
        text = f"{row.get('title') or ''} {row.get('description') or ''}"
        if row["video_id"] not in seen and len(text.split()) >= 3 and len(text) < 2000:
            seen.add(row["video_id"])
            rows.append(row)
    return rows[:GOOD_VIDEOS]


def _latin1(rows) -> bytes:
    """Three records re-encoded as Latin-1 inside an otherwise UTF-8 file."""
    lines = []
    for i, row in enumerate(rows):
        if i % 13 == 5:
            row = {**row, "title": f"{row['title']} café crème"}
            lines.append(json.dumps(row, ensure_ascii=False).encode("latin-1") + b"\n")
        else:
            lines.append(json.dumps(row, ensure_ascii=False).encode() + b"\n")
    return b"".join(lines)


def _write_inputs(root: pathlib.Path, rows: list[dict]) -> dict[str, tuple[str, list[str]]]:
    """``{case: (input path or glob, extra flags)}``."""
    good = jsonl_bytes(rows)
    files = {
        "random_bytes.jsonl": random.Random(0).randbytes(300_000),
        "truncated.jsonl.gz": gzip.compress(good)[: len(gzip.compress(good)) * 2 // 3],
        "catalog.csv": b"video_id,title\n"
        + b"".join(f"{r['video_id']},{r['title']!r}\n".encode() for r in rows),
        "no_id.jsonl": jsonl_bytes([{k: v for k, v in r.items() if k != "video_id"} for r in rows]),
        "empty.jsonl": b"",
        "empties/a.jsonl": b"",
        "empties/b.jsonl": b"",
        "duplicates.jsonl": jsonl_bytes([rows[0]] * 50),
        "huge_line.jsonl": jsonl_bytes([{"video_id": "big", "title": "x" * (50 << 20)}]),
        "nul.jsonl": good.replace(b'"title": "', b'"title": "\x00'),
        "latin1.jsonl": _latin1(rows),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return {
        "random_bytes": (str(root / "random_bytes.jsonl"), []),
        "truncated_gz": (str(root / "truncated.jsonl.gz"), []),
        "csv_as_jsonl": (str(root / "catalog.csv"), ["--input-format", "jsonl"]),
        "no_id_field": (str(root / "no_id.jsonl"), []),
        "mapped_field_missing": (str(root / "latin1.jsonl"), ["--field", "video_id=vid"]),
        "empty_file": (str(root / "empty.jsonl"), []),
        "glob_of_empty_files": (str(root / "empties" / "*.jsonl"), []),
        "all_duplicates": (str(root / "duplicates.jsonl"), []),
        "single_50mb_line": (str(root / "huge_line.jsonl"), []),
        "nul_bytes": (str(root / "nul.jsonl"), []),
        "latin1_in_utf8": (str(root / "latin1.jsonl"), []),
    }


# What each job must do with each input: "refused" (one-line error, nothing published
# changes) or "published" (exit 0, counts balance).
EXPECTED = {
    #                      preprocess   predict      nightly
    "random_bytes": ("refused", "refused", "refused"),
    "truncated_gz": ("published", "published", "refused"),  # nightly: a third vanished
    "csv_as_jsonl": ("refused", "refused", "refused"),
    "no_id_field": ("refused", "refused", "refused"),
    "mapped_field_missing": ("refused", "refused", "refused"),
    "empty_file": ("refused", "refused", "refused"),
    "glob_of_empty_files": ("refused", "refused", "refused"),
    "all_duplicates": ("published", "published", "refused"),  # nightly: 39 of 40 vanished
    "single_50mb_line": ("refused", "refused", "refused"),
    "nul_bytes": ("refused", "refused", "refused"),
    "latin1_in_utf8": ("published", "published", "published"),
}
JOBS = ("preprocess", "predict", "nightly")


@pytest.fixture(scope="module")
def hostile(sample_catalog, sample_model, tmp_path_factory):
    """The inputs, and a previous good output of each job to run them over."""
    root = tmp_path_factory.mktemp("hostile")
    rows = _good_rows(sample_catalog)
    assert len(rows) == GOOD_VIDEOS
    (root / "good.jsonl").write_bytes(jsonl_bytes(rows))
    inputs = _write_inputs(root / "inputs", rows)
    previous = root / "previous"
    for job in JOBS:
        assert _run(job, str(root / "good.jsonl"), [], previous / job, sample_model[0]) == 0
    return inputs, previous, sample_model[0]


def _run(job: str, input_path: str, flags: list[str], out: pathlib.Path, model_dir) -> int:
    if job == "preprocess":
        args = ["--input", input_path, "--output-dir", str(out)]
    elif job == "predict":
        args = ["--input", input_path, "--model-dir", str(model_dir), "--output-dir", str(out)]
    else:
        args = ["--catalog", input_path, "--model-dir", str(model_dir), "--output-dir",
                str(out / "out"), "--state-dir", str(out / "state")]  # fmt: skip
    if job != "preprocess":
        args += ["--tagged-at", TAGGED_AT]
    return cli.main([job, *args, *flags])


def _report(job: str, out: pathlib.Path) -> dict:
    name = {"preprocess": "preprocess_report.json", "predict": "predict_report.json"}
    path = out / name[job] if job in name else out / "out" / "predict_report.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", sorted(EXPECTED))
@pytest.mark.parametrize("job", JOBS)
def test_hostile_input(job, case, hostile, tmp_path, capsys):
    inputs, previous, model_dir = hostile
    out = tmp_path / job
    shutil.copytree(previous / job, out)
    before = snapshot(out)
    capsys.readouterr()
    input_path, flags = inputs[case]
    code = _run(job, input_path, flags, out, model_dir)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    expected = EXPECTED[case][JOBS.index(job)]
    if expected == "refused":
        assert code == 2
        errors = [line for line in err.splitlines() if line.startswith("catalog-tagger: error:")]
        assert len(errors) == 1 and "refusing to publish" in errors[0], err[-2000:]
        assert snapshot(out) == before  # nothing published changed
        return
    assert code == 0, err[-2000:]
    report = _report(job, out)
    assert report["records"]["balanced"] is True
    read_dead = {"truncated_gz": {"unreadable_file": 1}, "latin1_in_utf8": {"bad_utf8": 3},
                 "all_duplicates": {}}[case]  # fmt: skip
    assert report["dead_letters"].get("read", {}) == read_dead
    if case == "all_duplicates":
        assert report["records"]["duplicates_removed"] == 49
