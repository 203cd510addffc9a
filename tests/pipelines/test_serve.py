"""``catalog-tagger serve``: the HTTP endpoint answers predict's rows, and one line
of JSON with a 4xx for what the client got wrong.

The server runs as the real command (``python -m pipelines.cli serve --port 0``)
in a subprocess, on loopback, over the session's sample model.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import selectors
import signal
import subprocess
import sys

import pytest

from tests.helpers import ROOT, latest_records
from transforms.records import (
    RecordError,
    RecordSchema,
    decode_utf8,
    parse_json_object,
    to_canonical,
)

MAX_BODY = 200_000
TOO_BIG = b"[" + b'{"video_id": "a"},' * 12_000 + b"{}]"
STARTUP = re.compile(r"^serving (\S+) on http://127\.0\.0\.1:(\d+)/tag$")


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The server's first stdout line, or a failure with its stderr."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        proc.kill()
        pytest.fail(f"serve printed nothing in {timeout} s: {proc.stderr.read()[-2000:]}")
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"serve exited {proc.wait()}: {proc.stderr.read()[-2000:]}")
    return line.rstrip("\n")


@pytest.fixture(scope="module")
def server(sample_model):
    pytest.importorskip("waitress")
    model_dir, _ = sample_model
    cmd = [sys.executable, "-m", "pipelines.cli", "serve", "--model-dir", str(model_dir),
           "--port", "0", "--max-body-bytes", str(MAX_BODY)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = _first_line(proc, timeout=300)
    match = STARTUP.match(line)
    assert match, line
    yield {"proc": proc, "version": match[1], "port": int(match[2])}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _request(server, method: str, path: str, body: bytes | None = None):
    """``(status, headers, raw body)`` of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _post(server, payload) -> list[dict]:
    status, _, body = _request(server, "POST", "/tag", json.dumps(payload).encode())
    assert status == 200, body
    return json.loads(body)


def _raw_records(catalog: pathlib.Path) -> list[dict]:
    """The catalog's source rows, one per video: the version predict kept."""
    kept, rows = latest_records(catalog), {}
    for line in catalog.read_bytes().splitlines():
        try:
            row = parse_json_object(decode_utf8(line))
            record = to_canonical(row, RecordSchema())
        except RecordError:
            continue
        if record == kept.get(record["video_id"]):
            rows.setdefault(record["video_id"], row)
    return list(rows.values())


def _predicted_rows(predictions: pathlib.Path) -> dict[str, dict]:
    rows = {}
    for part in sorted((predictions / "tags").glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows[row["video_id"]] = row
    return rows


def _assert_same_row(served: dict, expected: dict) -> None:
    assert set(served) == set(expected), served["video_id"]
    assert [t["label"] for t in served["labels"]] == [t["label"] for t in expected["labels"]]
    for got, want in zip(served["labels"], expected["labels"], strict=True):
        assert got["score"] == pytest.approx(want["score"], abs=1e-6), served["video_id"]
    assert served["predicted"] == expected["predicted"], served["video_id"]
    assert served["model_version"] == expected["model_version"]
    assert served.get("empty_text") == expected.get("empty_text"), served["video_id"]


def test_rows_equal_what_predict_wrote(server, sample_catalog, sample_predictions):
    rows, expected = _raw_records(sample_catalog), _predicted_rows(sample_predictions)
    assert len(rows) == len(expected) == 800
    served = [
        row for begin in range(0, len(rows), 64) for row in _post(server, rows[begin : begin + 64])
    ]
    served += [_post(server, row)[0] for row in rows[:10]]  # one object, not a list
    assert [row["video_id"] for row in served] == [r["video_id"] for r in rows + rows[:10]]
    for row in served:
        _assert_same_row(row, expected[row["video_id"]])
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["tagged_at"])
    empty = sum(row.get("empty_text", False) for row in served[:800])
    assert empty == sum(row.get("empty_text", False) for row in expected.values())
    assert sum(bool(row["predicted"]) for row in served) > 400  # the thresholds do select


def test_tags_as_a_delimited_string_or_a_list_tag_alike(server):
    listed = {"video_id": "v1", "title": "Kitten videos", "tags": ["cats", "funny cats"]}
    joined = {"video_id": "v1", "title": "Kitten videos", "tags": "cats|funny cats"}
    first, second = _post(server, [listed, joined])
    assert first["labels"] == second["labels"] and first["predicted"] == second["predicted"]


def test_empty_text_and_empty_list(server):
    (row,) = _post(server, {"video_id": "blank", "title": "<b></b> 🎉", "description": ""})
    assert row["empty_text"] is True and len(row["labels"]) == 20
    assert _post(server, []) == []


def test_healthz(server):
    status, _, body = _request(server, "GET", "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "model_version": server["version"]}


BAD_REQUESTS = [
    ("POST", "/tag", b"not json", 400, "body is not JSON: Expecting value: line 1 column 1"),
    ("POST", "/tag", b"", 400, "body is not JSON: Expecting value: line 1 column 1"),
    ("POST", "/tag", b'{"video_id": "\xff"}', 400, "body is not JSON: 'utf-8' codec can't decode"),
    ("POST", "/tag", b'"a string"', 400,
     "body must be a record (JSON object) or a list of them, not a string"),
    ("POST", "/tag", b"[" * 100_000, 400, "body is not JSON: nested too deeply"),
    ("POST", "/tag", b'{"title": "no id"}', 400,
     "the record: missing_video_id: column 'video_id'"),
    ("POST", "/tag", b'[{"video_id": "a"}, {"video_id": " "}]', 400,
     "record 1: missing_video_id: column 'video_id'"),
    ("POST", "/tag", b'[{"video_id": "a"}, 3]', 400, "record 1 is a number, not an object"),
    ("POST", "/tag", TOO_BIG, 413, f"body of {len(TOO_BIG)} bytes; at most {MAX_BODY}"),
    ("GET", "/tag", None, 405, "/tag takes POST, not GET"),
    ("POST", "/healthz", b"{}", 405, "/healthz takes GET, not POST"),
    ("GET", "/", None, 404, "no endpoint /: POST /tag or GET /healthz"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_and_one_line(server, method, path, body, status, message):
    got, headers, raw = _request(server, method, path, body)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert b"\n" not in raw
    error = json.loads(raw)
    assert list(error) == ["error"]
    assert error["error"].startswith(message), error["error"]
    if status == 405:
        assert headers["Allow"] == ("POST" if path == "/tag" else "GET")


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    try:
        for i in range(20):
            conn.request("POST", "/tag", body=json.dumps({"video_id": f"k{i}", "title": "a cat"}))
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())[0]["video_id"] == f"k{i}"
    finally:
        conn.close()


def test_ctrl_c_stops_cleanly(server):
    """Last: stops the module's server. SIGINT ends it with 0, having printed
    nothing past its start-up line (quiet by default)."""
    proc = server["proc"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == "" and err == ""


def test_without_the_extra_serve_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    from pipelines import cli

    monkeypatch.setitem(sys.modules, "waitress", None)
    monkeypatch.setitem(sys.modules, "waitress.server", None)
    assert cli.main(["serve", "--model-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "catalog-tagger: error: serve needs its HTTP server: pip install catalog-tagger[serve]\n"
    )


def test_a_model_dir_without_a_model_is_a_one_line_error(capsys, tmp_path):
    pytest.importorskip("waitress")
    from pipelines import cli

    assert cli.main(["serve", "--model-dir", str(tmp_path), "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        f"catalog-tagger: error: no exported model in {str(tmp_path)!r}\n"
    )
