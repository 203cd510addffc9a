"""Failure guards: a run that is mostly bad, or that would wipe a table, is not published.

The guards are checked twice, with the same rules:

- at launch, on the first ``PREFLIGHT_RECORDS`` records of the input, read by the
  pipeline's own parser (``preflight``): a wrong file fails in seconds, before a
  runner starts a worker;
- inside the pipeline, by the publish step, from the whole run's counts (the
  authoritative check, ``pipelines/components/publish.py``).

A refusal is a :class:`PublishRefused`: one line that names the top dead-letter
reasons with their counts and where the run's dead letters were kept. Nothing
is published: the previous output, its ``_SUCCESS`` and nightly's ``CURRENT``
stay as they were.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json

from apache_beam.io.filesystems import FileSystems

from pipelines.components.catalog_io import iter_rows, parse_row
from transforms.errors import JobError
from transforms.records import RecordSchema

# A healthy export loses well under 1% of its records (the sample catalog plants 0.8%,
# the shared real catalogs lose at most a few in a thousand); a wrong, truncated or
# mis-formatted file loses nearly all of them. 10% sits far from both.
MAX_DEAD_LETTER_FRACTION = 0.1
# Catalogs lose a fraction of a percent of their videos a day; a tenth gone at once
# is far likelier a partial export or a wrong glob than real deletions.
MAX_DELETED_FRACTION = 0.1
PREFLIGHT_RECORDS = 1000
PREFLIGHT_FILE = "preflight-sample.jsonl"


class PublishRefused(JobError):
    """A guard refused to publish this run; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Guards:
    """The limits a run must stay within to be published."""

    max_dead_letter_fraction: float = MAX_DEAD_LETTER_FRACTION
    max_deleted_fraction: float = MAX_DELETED_FRACTION
    allow_mass_delete: bool = False

    def __post_init__(self):
        for name in ("max_dead_letter_fraction", "max_deleted_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be in [0, 1]. Received: {value!r}")


def top_reasons(dead_letters: dict, count: int = 3) -> str:
    """``"read/bad_json 700, clean/empty_text 3"``: the commonest stage/reason pairs."""
    pairs = collections.Counter(
        {f"{stage}/{reason}": n for stage, reasons in dead_letters.items()
         for reason, n in reasons.items()}
    )  # fmt: skip
    return ", ".join(f"{name} {n:,}" for name, n in pairs.most_common(count)) or "none"


def dead_letter_refusal(
    read: int, dead_letters: dict, guards: Guards, dead_dir: str, what: str = "records read"
) -> str | None:
    """Why a run with ``read`` records and these dead letters (``{stage: {reason: n}}``)
    must not be published, or None."""
    if read == 0:
        return "refusing to publish: the input holds no records"
    dead = sum(sum(reasons.values()) for reasons in dead_letters.values())
    if dead / read <= guards.max_dead_letter_fraction:
        return None
    return (
        f"refusing to publish: {dead:,} of {read:,} {what} ({dead / read:.1%}) were "
        f"dead-lettered, above --max-dead-letter-fraction {guards.max_dead_letter_fraction:g}; "
        f"top reasons: {top_reasons(dead_letters)}; dead letters in {dead_dir}"
    )


def deletion_refusal(live: int, deleted: int, guards: Guards) -> str | None:
    """Why a nightly run dropping ``deleted`` of the ``live`` table's videos must not publish."""
    if not live or guards.allow_mass_delete or deleted / live <= guards.max_deleted_fraction:
        return None
    return (
        f"refusing to publish: this run would drop {deleted:,} of the live table's {live:,} "
        f"videos ({deleted / live:.1%}), above --max-deleted-fraction "
        f"{guards.max_deleted_fraction:g}; pass --allow-mass-delete if the catalog really lost them"
    )


def empty_catalog_refusal(live: int, guards: Guards) -> str | None:
    """Why a nightly run over a catalog with no records must not publish, or None."""
    if guards.allow_mass_delete:
        return None
    return (
        f"refusing to publish: the catalog holds no records, so this run would drop all "
        f"{live:,} videos of the live table; pass --allow-mass-delete to publish an empty table"
    )


def preflight(
    files: list[str], schema: RecordSchema, input_format: str, guards: Guards, dead_dir: str,
    require_records: bool = True,
) -> int:  # fmt: skip
    """Parses the first ``PREFLIGHT_RECORDS`` records of ``files`` as the pipeline will
    and raises :class:`PublishRefused` if the dead-letter guard already trips on them
    (their dead letters are kept in ``dead_dir``). Returns how many records were read."""
    rows = (
        (path, *row) for path in files for row in iter_rows(path, input_format)
    )  # fmt: skip
    read, dead = 0, []
    for path, offset, row, raw in itertools.islice(rows, PREFLIGHT_RECORDS):
        read += 1
        letter = parse_row(row, raw, schema, path, offset)[1]
        if letter is not None:
            dead.append(letter)
    if not read and not require_records:
        return 0
    reasons: dict = {}
    for letter in dead:
        by_reason = reasons.setdefault(letter["stage"], {})
        by_reason[letter["reason"]] = by_reason.get(letter["reason"], 0) + 1
    where = FileSystems.join(dead_dir, PREFLIGHT_FILE)
    refusal = dead_letter_refusal(read, reasons, guards, where, "records checked at launch")
    if refusal is not None:
        if dead:
            _write_lines(where, dead)
        raise PublishRefused(refusal)
    return read


def _write_lines(path: str, rows: list[dict]) -> None:
    with FileSystems.create(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
