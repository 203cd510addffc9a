"""The architecture holds: dependencies point down, and job modules are leaves.

Layers, lowest first: ``transforms`` < ``models`` < ``pipelines``. Inside ``models``
the shared modules (``models/*.py``) sit below ``models.av``, which sits below
``models.text`` (the text + audio/visual fusion model uses the AV layers; the
YouTube-8M path never needs the text one). Inside ``pipelines`` the job modules (one per
``catalog-tagger`` subcommand) import shared components, never each other; only
the CLI imports them.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("transforms", "models", "pipelines")
JOBS = frozenset(
    f"pipelines.{name}"
    for name in (
        "preprocess",
        "predict",
        "nightly",
        "evaluate",
        "serve",
        "similar",
        "tune_thresholds",
    )
)
DISPATCHERS = frozenset({"pipelines.cli"})


def module_names() -> dict[str, pathlib.Path]:
    names = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = module_names()


def imports_of(path: pathlib.Path) -> set[str]:
    """Every project module ``path`` imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def rank(module: str) -> tuple[int, int]:
    """(layer, sub-layer): an import must not go to a higher rank."""
    top = module.split(".")[0]
    layer = PACKAGES.index(top)
    if top == "models":
        return layer, 2 if module.startswith("models.text") else int(module.startswith("models.av"))
    if top == "pipelines":
        if module in DISPATCHERS:
            return layer, 3
        return layer, 2 if module in JOBS else 0
    return layer, 0


def violations(module: str, target: str) -> str | None:
    if target == module or target in PACKAGES:
        return None
    if rank(target) > rank(module):
        return "points up"
    if module in JOBS and target in JOBS:
        return "job imports job"
    return None


def test_imports_point_down():
    bad = [
        f"{module} -> {target}: {why}"
        for module, path in sorted(MODULES.items())
        for target in sorted(imports_of(path))
        if (why := violations(module, target))
    ]
    assert bad == []


@pytest.mark.parametrize(
    "module, target, expected",
    [
        ("transforms.text", "models.text.export", "points up"),
        ("models.loop", "models.text.model", "points up"),
        ("models.av.export", "models.text.export", "points up"),
        ("models.text.model", "models.av.zoo", None),
        ("pipelines.nightly", "pipelines.predict", "job imports job"),
        ("pipelines.components.tags", "pipelines.predict", "points up"),
        ("pipelines.cli", "pipelines.predict", None),
        ("pipelines.predict", "pipelines.components.tags", None),
    ],
)
def test_the_rule_catches_each_kind_of_edge(module, target, expected):
    assert violations(module, target) == expected


def test_every_job_module_exists():
    assert MODULES.keys() >= JOBS
