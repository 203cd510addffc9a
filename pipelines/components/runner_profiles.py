"""Runner profiles: a job's runner settings, one flag per line, in a file.

``--runner-profile`` names a packaged profile (``pipelines/profiles/NAME.args``,
``local`` by default) or a path such as ``deploy/runners/dataflow.args``; flags
given on the command line after it override the profile.
"""

from __future__ import annotations

import argparse
import os
from importlib import resources


def profile_args(name_or_path: str) -> list[str]:
    """The flags stored in a runner profile (packaged name or file path)."""
    if os.path.sep in name_or_path or name_or_path.endswith(".args"):
        with open(name_or_path, encoding="utf-8") as handle:
            text = handle.read()
    else:
        resource = resources.files("pipelines") / "profiles" / f"{name_or_path}.args"
        if not resource.is_file():
            raise FileNotFoundError(f"unknown runner profile {name_or_path!r}")
        text = resource.read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def split_profile(argv: list[str]) -> tuple[str, list[str]]:
    """Pops ``--runner-profile X`` (or ``=X``) from argv."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--runner-profile", default="local")
    known, rest = parser.parse_known_args(argv)
    return known.runner_profile, rest
