"""The console script: subcommands, runner profiles, one-line fatal errors."""

from __future__ import annotations

import pytest

from pipelines import cli
from pipelines.tools.sample_catalog import write_sample_catalog


def test_local_profile_is_offline_and_overridable():
    args = cli.profile_args("local")
    assert "--runner=FnApiRunner" in args  # never DirectRunner's Prism download
    profile, rest = cli.split_profile(["--input", "x", "--runner-profile=flink", "--top-k", "5"])
    assert (profile, rest) == ("flink", ["--input", "x", "--top-k", "5"])
    # Beam's --runner is not an abbreviation of --runner-profile
    assert cli.split_profile(["--runner=PortableRunner"]) == ("local", ["--runner=PortableRunner"])


def test_unknown_profile_is_a_one_line_error(capsys):
    assert cli.main(["preprocess", "--runner-profile", "nope", "--input", "x"]) == 2
    assert capsys.readouterr().err == "catalog-tagger: error: unknown runner profile 'nope'\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output-dir", "{tmp}/o"], "--input is required"),
        (["--input", "{tmp}/nothing*.jsonl", "--output-dir", "{tmp}/o"], "no input file matches"),
        (["--input", "{tmp}/c.jsonl", "--output-dir", "{tmp}/c.jsonl/o"], "is not writable"),
        (["--input", "{tmp}/c.jsonl", "--output-dir", "{tmp}/o", "--field", "bad"], "KEY=VALUE"),
        (["--input", "{tmp}/c.jsonl", "--output-dir", "{tmp}/o", "--split-ratios", "1,2"],
         "--split-ratios"),
    ],
)  # fmt: skip
def test_fatal_problems_stop_at_once_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "c.jsonl").write_text('{"video_id": "a", "title": "t"}\n')
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert cli.main(["preprocess", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("catalog-tagger: error: ") and message in err
    assert err.count("\n") == 1


def test_sample_command_writes_the_catalog(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert cli.main(["sample", "--output", str(out), "--videos", "50", "--seed", "3"]) == 0
    manifest = write_sample_catalog(str(tmp_path / "again.jsonl"), videos=50, seed=3)
    assert out.read_bytes() == (tmp_path / "again.jsonl").read_bytes()
    assert len(out.read_bytes().splitlines()) == manifest.lines
    assert f"wrote {manifest.lines} lines" in capsys.readouterr().out


def test_help_lists_commands_and_flags(capsys):
    assert cli.main(["--help"]) == 0
    assert "preprocess" in capsys.readouterr().out
    assert cli.main(["preprocess", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--list-separator" in out and "--oov-buckets" in out


def test_unknown_command(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tune", "--trials", "0"], "Invalid trials. Received: trials=0"),
        (["--seeds", "0"], "Invalid seeds. Received: seeds=0"),
        (["--loss", "hinge"], "Invalid loss. Received: loss='hinge'"),
    ],
)
def test_bad_training_settings_are_one_line_errors(tmp_path, capsys, flags, message):
    argv = ["train", "--data-dir", str(tmp_path), "--model-dir", str(tmp_path / "m"), *flags]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"catalog-tagger: error: {message}\n"


def test_flex_template_maps_parameters_onto_the_cli():
    import importlib.util

    from tests.helpers import ROOT

    path = ROOT / "deploy" / "dataflow" / "flex_template" / "main.py"
    spec = importlib.util.spec_from_file_location("flex_main", path)
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    argv = main.command_line(
        ["--job=nightly", "--input=gs://b/c.jsonl", "--state_dir=gs://b/s",
         "--allow_mass_delete=true", "--max_deleted_fraction=0.5", "--runner-profile=p"]
    )  # fmt: skip
    assert argv == ["nightly", "--catalog=gs://b/c.jsonl", "--state-dir=gs://b/s",
                    "--allow-mass-delete", "--max-deleted-fraction=0.5", "--runner-profile=p"]  # fmt: skip
    assert "--allow-mass-delete" not in main.command_line(["--allow_mass_delete=false"])
    evaluate = main.command_line(["--job=evaluate", "--input=gs://b/c", "--predictions=gs://b/p"])
    assert evaluate[:3] == ["evaluate", "--runner-profile", main.DEFAULT_PROFILE]
    assert evaluate[3:] == ["--catalog=gs://b/c", "--predictions=gs://b/p"]
    profile = (path.parent / "flex_template.args").read_text().splitlines()
    assert "--no-wait" in profile  # the launcher only submits; the job publishes itself


def test_dataflow_launch_stages_the_similar_extra_from_setup_py(tmp_path):
    """launch.sh passes the ``similar`` extra's pins (read from the installed
    package's metadata, i.e. setup.py) as --requirements_file; other jobs get none."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    submit = tmp_path / "catalog-tagger"  # stands in for the submission: prints what it got
    submit.write_text('#!/bin/sh\nfor a; do echo "$a"; done\n'
                      'while [ "$1" != --requirements_file ] && [ $# -gt 0 ]; do shift; done\n'
                      'if [ $# -gt 0 ]; then cat "$2"; fi\n')  # fmt: skip
    submit.chmod(0o755)
    env = {**os.environ, "PROJECT": "p", "REGION": "r", "BUCKET": "b", "SERVICE_ACCOUNT": "s",
           "PACKAGING": "setup_file", "CATALOG_TAGGER": str(submit), "PYTHON": sys.executable}  # fmt: skip

    def launch(*args):
        script = ROOT / "deploy" / "dataflow" / "launch.sh"
        done = subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    similar = launch("similar", "--embeddings", "gs://b/tags", "--output-dir", "gs://b/sim")
    assert similar[0] == "similar" and "--requirements_file" in similar
    assert similar[-1].startswith("faiss-cpu==")  # pinned in setup.py extras_require["similar"]
    assert "--requirements_file" not in launch("predict", "--input", "gs://b/c")
    refused = subprocess.run(["bash", str(ROOT / "deploy/dataflow/launch.sh"), "train"],
                             env=env, capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "unknown job 'train'" in refused.stderr


def test_settings_dataclasses_become_flags_with_their_help():
    import argparse
    import dataclasses

    from models.av.train import AVTrainParams
    from models.av.zoo import AVParams
    from models.text.model import HParams
    from pipelines.components.flags import add_dataclass_flags, pop_dataclass_args

    for cls in (HParams, AVParams, AVTrainParams):
        parser = argparse.ArgumentParser()
        add_dataclass_flags(parser, cls)
        actions = {a.dest: a for a in parser._actions if a.dest != "help"}
        fields = dataclasses.fields(cls)
        assert list(actions) == [f.name for f in fields]
        for field in fields:
            assert actions[field.name].help == field.metadata["help"] != ""
            assert actions[field.name].default == getattr(cls(), field.name)
        args = vars(parser.parse_args([]))
        assert cls(**pop_dataclass_args(args, cls)) == cls() and args == {}
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, HParams)
    assert parser.parse_args(["--wide", "No", "--refit", "1"]).wide is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--wide", "maybe"])
