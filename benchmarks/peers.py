"""Shared by the benchmark scripts: the raw texts the peers (scikit-learn,
fastText) see, read straight from a generated JSONL.gz catalog."""

from __future__ import annotations

import gzip
import json
import os


def catalog_rows(path: str):
    """``(text, categories)`` per JSON-object line: title + description + tags."""
    with gzip.open(path, "rb") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                tags = row.get("tags") or []
                tags = tags if isinstance(tags, list) else [tags]
                text = " ".join([row.get("title") or "", row.get("description") or ""] + tags)
                cats = row.get("categories") or []
                yield " ".join(text.split()), cats if isinstance(cats, list) else [cats]


def shared_records(source: str, data_dir: str) -> list[dict]:
    """Canonical records of a real catalog under ``../shared/data``: ``youtube``
    (trending US, first row per video, tags split on ``|``, category names) or
    ``netflix`` (title + description, genres from ``listed_in``)."""
    import csv

    if source == "youtube":
        folder = os.path.join(data_dir, "youtube_trending_us")
        with open(os.path.join(folder, "US_category_id.json"), encoding="utf-8") as handle:
            names = {i["id"]: i["snippet"]["title"] for i in json.load(handle)["items"]}
        rows, seen = [], set()
        with open(os.path.join(folder, "USvideos.csv"), encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["video_id"] in seen:
                    continue
                seen.add(row["video_id"])
                tags = [t.strip('"') for t in row["tags"].split("|") if t and t != "[none]"]
                rows.append({"title": row["title"], "description": row["description"],
                             "tags": tags, "categories": [names[row["category_id"]]]})  # fmt: skip
        return rows
    path = os.path.join(data_dir, "netflix_titles", "netflix_titles.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        return [
            {"title": r["title"], "description": r["description"], "tags": [],
             "categories": [g.strip() for g in r["listed_in"].split(",") if g.strip()]}
            for r in csv.DictReader(handle)
        ]  # fmt: skip


def write_replicated(path: str, records: list[dict], videos: int, prefix: str) -> int:
    """``videos`` records cycling over ``records``, each with a unique id, as JSONL.gz."""
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for i in range(videos):
            row = {"video_id": f"{prefix}{i:07d}", **records[i % len(records)]}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return videos


def add_texts_flag(parser) -> None:
    """``--texts``: the generated sample, or a real catalog's texts replicated."""
    parser.add_argument(
        "--texts",
        choices=("sample", "youtube", "netflix"),
        default="sample",
        help="Generated sample videos, or a real catalog's texts (../shared/data) "
        "replicated with unique ids.",
    )


def measure_child(cmd: list[str], env: dict, log: str, result_path: str, cwd: str) -> dict:
    """Runs one measured part in a child process (output to ``log``); its JSON result
    plus ``peak_rss_mb`` (the largest process it reaped), or ``{"error": ...}``."""
    import pathlib
    import subprocess

    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    if status or not os.path.exists(result_path):
        return {"error": f"failed (wait status {status}); see {log}"}
    result = json.loads(pathlib.Path(result_path).read_text("utf-8"))
    return result | {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
