"""Dataflow Flex Template entry point: runs one ``catalog-tagger`` subcommand.

The Flex Template launcher runs this file (``FLEX_TEMPLATE_PYTHON_PY_FILE``)
with every template parameter as ``--name=value`` plus the launch options it
adds itself (``--project``, ``--region``, ``--temp_location``, ``--job_name``,
...). ``--job`` picks the subcommand (default ``predict``); the template's
parameter names use underscores (``output_dir``), so they are mapped onto the
CLI's flags (``--output-dir``) here. Everything else passes through unchanged
to ``pipelines.cli.main``, after the Flex Template runner profile.

Caveat: a Flex Template launcher only creates the job (Beam's
``wait_until_finish()`` returns at once there), but ``predict``, ``preprocess``
and ``nightly`` write their report and publish ``_SUCCESS`` in this process
after the pipeline has finished. Until those steps run inside the pipeline,
launches through this template cannot complete them; see deploy/README.md.

Run it locally to see the command line it would run::

    python deploy/dataflow/flex_template/main.py --dry-run --job=predict \\
        --input=gs://b/catalog.jsonl --model_dir=gs://b/model --output_dir=gs://b/out
"""

from __future__ import annotations

import argparse
import os
import sys

from pipelines import cli

JOBS = ("predict", "preprocess", "nightly")
# Template parameter -> catalog-tagger flag. Beam's own options (--temp_location,
# --sdk_container_image, ...) keep their underscores and are not listed.
RENAMED = {
    "--output_dir": "--output-dir",
    "--model_dir": "--model-dir",
    "--state_dir": "--state-dir",
    "--top_k": "--top-k",
    "--batch_size": "--batch-size",
}
# Installed beside this file by the Dockerfile; override with the environment.
DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flex_template.args")


def _rename(arg: str, job: str) -> str:
    name, sep, value = arg.partition("=")
    if job == "nightly" and name == "--input":
        name = "--catalog"  # nightly reads the catalog from --catalog
    return RENAMED.get(name, name) + sep + value


def command_line(argv: list[str]) -> list[str]:
    """The ``catalog-tagger`` argv for the template's argv."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--job", default="predict", choices=JOBS)
    parser.add_argument("--dry-run", action="store_true")
    known, rest = parser.parse_known_args(argv)
    args = [_rename(arg, known.job) if arg.startswith("--") else arg for arg in rest]
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
