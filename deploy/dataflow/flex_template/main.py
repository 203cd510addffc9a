"""Dataflow Flex Template entry point: runs one ``catalog-tagger`` subcommand.

The Flex Template launcher runs this file (``FLEX_TEMPLATE_PYTHON_PY_FILE``)
with every template parameter as ``--name=value`` plus the launch options it
adds itself (``--project``, ``--region``, ``--temp_location``, ``--job_name``,
...). ``--job`` picks the subcommand (default ``predict``); the template's
parameter names use underscores (``output_dir``), so they are mapped onto the
CLI's flags (``--output-dir``) here. Everything else passes through unchanged
to ``pipelines.cli.main``, after the Flex Template runner profile.

The launcher only creates the job (the profile passes ``--no-wait``). That is
enough: every job publishes its report, its output and ``_SUCCESS`` (nightly
also swaps ``CURRENT`` and releases its lock) in the last step of its own
pipeline graph, on the Dataflow workers, once every write has finished and the
guards pass.

Run it locally to see the command line it would run::

    python deploy/dataflow/flex_template/main.py --dry-run --job=predict \\
        --input=gs://b/catalog.jsonl --model_dir=gs://b/model --output_dir=gs://b/out
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines import cli

JOBS = ("predict", "preprocess", "nightly", "evaluate")
# Template parameter -> catalog-tagger flag. Beam's own options (--temp_location,
# --sdk_container_image, ...) keep their underscores and are not listed.
RENAMED = {
    "--output_dir": "--output-dir",
    "--model_dir": "--model-dir",
    "--state_dir": "--state-dir",
    "--top_k": "--top-k",
    "--batch_size": "--batch-size",
    "--max_dead_letter_fraction": "--max-dead-letter-fraction",
    "--max_deleted_fraction": "--max-deleted-fraction",
}
# Template parameters that are on/off flags of the CLI: "--name=true" -> "--flag".
SWITCHES = {"--allow_mass_delete": "--allow-mass-delete"}
CATALOG_JOBS = ("nightly", "evaluate")  # they read the catalog from --catalog
# Installed beside this file by the Dockerfile; override with the environment.
DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flex_template.args")


def _rename(arg: str, job: str) -> list[str]:
    name, sep, value = arg.partition("=")
    if name in SWITCHES:
        return [SWITCHES[name]] if value.lower() in ("", "true", "1", "yes") else []
    if job in CATALOG_JOBS and name == "--input":
        name = "--catalog"
    return [RENAMED.get(name, name) + sep + value]


def command_line(argv: list[str]) -> list[str]:
    """The ``catalog-tagger`` argv for the template's argv."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--job", default="predict", choices=JOBS)
    parser.add_argument("--dry-run", action="store_true")
    known, rest = parser.parse_known_args(argv)
    args = [out for arg in rest
            for out in (_rename(arg, known.job) if arg.startswith("--") else [arg])]  # fmt: skip
    if not any(arg.split("=")[0] == "--runner-profile" for arg in args):
        profile = os.environ.get("CATALOG_TAGGER_RUNNER_PROFILE", DEFAULT_PROFILE)
        args = ["--runner-profile", profile, *args]
    return [known.job, *args]


def main(argv: list[str]) -> int:
    args = command_line(argv)
    if "--dry-run" in argv:
        print(" ".join(["catalog-tagger", *args]))
        return 0
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
