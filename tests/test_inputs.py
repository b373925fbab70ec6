"""Bad input gets one clear message before any tuning: targets, work_dirs, databases, options."""

import os
import sys

import pytest
import tvm
from conftest import te_module
from tvm.s_tir import meta_schedule as ms

from ms_droplet import _tvm, cli, default
from ms_droplet.default import options_from_environment
from ms_droplet.inputs import UserInputError, check_target_of_records, target_from_text
from ms_droplet.workdir import RECORD_FILE, WORKLOAD_FILE, open_database


def _cli_error(capsys, *args):
    """Run ``ms-droplet ARGS`` in this process; its exit code and its last line of stderr."""
    try:
        code = cli.main(list(args))
    except SystemExit as done:  # what Python prints for SystemExit("message"), exit code 1
        code = done.code if isinstance(done.code, int) else 1
        if not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return code, err.splitlines()[-1] if err else ""


@pytest.mark.parametrize(
    ("target", "message"),
    [
        # The old string form: say it is gone and show the JSON for what was typed.
        (
            "llvm -mcpu=znver4 -num-cores=4",
            '--target \'{"kind": "llvm", "mcpu": "znver4", "num-cores": 4}\'',
        ),
        ("llvm -mattr=+avx2,+fma", '"mattr": ["+avx2", "+fma"]'),
        ('{"kind": "llvmx", "num-cores": 2}', "unknown target kind 'llvmx'. Did you mean 'llvm'?"),
        ("lvm", "unknown target kind 'lvm'"),
        ('{"kind": "llvm", "num-cores": 2', "--target is not valid JSON"),
        ('{"mcpu": "znver4"}', 'must be a JSON dict with a "kind"'),
        ('{"kind": "llvm", "mcpu": "nonsense", "num-cores": 2}', "LLVM does not know the CPU"),
        ('{"kind": "llvm"}', 'MetaSchedule needs "num-cores" in a CPU target'),
        ('{"kind": "cuda", "arch": "sm_80"}', "not supported by this command"),
    ],
)
def test_bad_targets_are_named_with_the_fix(capsys, target, message):
    code, err = _cli_error(capsys, "tune", "GMM:0", "--target", target)
    assert code != 0 and message in err, err


def test_a_target_in_json_a_kind_or_a_tag_is_accepted():
    assert target_from_text('{"kind": "llvm", "num-cores": 3}').attrs["num-cores"] == 3
    assert target_from_text("nvidia/geforce-rtx-3090").kind.name == "cuda"
    assert target_from_text("cuda").kind.name == "cuda"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "GMM:99"], "has indices"),
        (["tune", "XYZ:0"], "Unknown workload"),
        (["tune", "GMM:0", "--trials", "0"], "--trials and --per-iter must be positive"),
        (["tune", "GMM:0", "--option", "explore_trails=3"], "Did you mean 'explore_trials'?"),
        (["tune", "GMM:0", "--option", "explore_trials=-5"], "expected an int >= 0"),
        (["tune", "GMM:0", "--option", "on_converge=never"], "'restart', 'explore', 'stop'"),
        (["tune", "GMM:0", "--strategy", "evolutionary", "--option", "seed=1"], "droplet"),
        (["post-opt", "/nonexistent/dir", "--trials", "4"], "holds no MetaSchedule database"),
        (["report", "/nonexistent/dir"], "holds no MetaSchedule database"),
        (["run", "no_such_script.py"], "no such script"),
        (["run", "-m", "no_such_module"], "no module named 'no_such_module'"),
    ],
)
def test_bad_command_lines_are_named(capsys, args, message):
    code, err = _cli_error(capsys, *args)
    assert code != 0 and message in err, err
    # Refused before anything changed: droplet did not become this process's default.
    assert os.environ.get("MS_DROPLET_DEFAULT") is None
    assert not default.is_installed()


def test_bad_option_syntax_and_choices_are_argparse_errors(capsys):
    for args in (["--option", "explore_trials"], ["--strategy", "evo"], ["--trials", "many"]):
        with pytest.raises(SystemExit) as done:
            cli.main(["tune", "GMM:0", *args])
        assert done.value.code == 2
        assert "error: argument" in capsys.readouterr().err


def test_options_take_python_and_json_spellings():
    # The option table's errors say "True or False"; the command line takes what they say.
    parse = cli._parse_option
    assert parse("control=True") == parse("control=true") == ("control", True)
    assert parse("seed=None") == parse("seed=null") == ("seed", None)
    assert parse('evolutionary={"population_size": 64}') == (
        "evolutionary",
        {"population_size": 64},
    )
    assert parse("on_converge=stop") == ("on_converge", "stop")


def test_unusable_work_dirs_are_named(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    code, err = _cli_error(capsys, "tune", "GMM:0", "--work-dir", str(a_file))
    assert code == 2 and f"work_dir {a_file} is a file" in err
    code, err = _cli_error(capsys, "tune", "GMM:0", "--work-dir", str(a_file / "sub"))
    assert code == 2 and f"cannot create work_dir {a_file / 'sub'}" in err


def _database_with_one_record(work_dir, target):
    """A real JSON database holding one record of GMM:0, tuned for ``target``."""
    mod = ms.TuneContext(mod=te_module("GMM", 0)).mod
    database = ms.database.JSONDatabase(work_dir=str(work_dir))
    workload = database.commit_workload(mod)
    sch = _tvm.traced_schedule(mod, seed=0)
    database.commit_tuning_record(
        ms.database.TuningRecord(
            sch.trace,
            workload,
            [1e-4],
            tvm.target.Target(target),
            ms.arg_info.ArgInfo.from_prim_func(mod["main"]),
        )
    )
    return mod


def test_corrupt_databases_name_the_file_and_line(tmp_path, capsys):
    _database_with_one_record(tmp_path, {"kind": "llvm", "num-cores": 2})
    records = tmp_path / RECORD_FILE
    good = records.read_text()
    records.write_text(good + "[0, {not json}]\n" + good)
    code, err = _cli_error(capsys, "tune", "GMM:0", "--work-dir", str(tmp_path))
    assert code == 2 and f"{records}, line 2: not JSON" in err, err
    records.write_text(good + "[7, [[], [1.0], {}, []]]\n")
    code, err = _cli_error(capsys, "post-opt", str(tmp_path), "--trials", "4")
    assert code == 2 and "line 2: workload index 7 is not one of the 1 workloads" in err, err
    # A last line cut short by a killed run is not corruption: it is dropped on opening.
    records.write_text(good + good[: len(good) // 2])
    open_database(tmp_path)
    assert records.read_text() == good
    records.write_text(good + "[0, {not json}]\n")
    code, err = _cli_error(capsys, "report", str(tmp_path))
    assert code == 2 and f"{records}, line 2: not JSON" in err, err
    (tmp_path / WORKLOAD_FILE).unlink()
    code, err = _cli_error(capsys, "report", str(tmp_path))
    assert code == 2 and "holds no MetaSchedule database" in err
    code, err = _cli_error(capsys, "tune", "GMM:0", "--work-dir", str(tmp_path))
    assert code == 2 and f"{tmp_path / WORKLOAD_FILE} is missing beside" in err


def test_a_work_dir_of_another_target_is_refused(tmp_path):
    other = {"kind": "llvm", "mcpu": "znver4", "num-cores": 2}
    mod = _database_with_one_record(tmp_path, other)
    database = open_database(tmp_path)
    host = tvm.target.Target({"kind": "llvm", "mcpu": "znver5", "num-cores": 2})
    with pytest.raises(UserInputError, match=r"for another target \(.*znver4.*--target to resume"):
        check_target_of_records(database, [mod], host, tmp_path)
    # The same target, or a work_dir without records of the workload, is fine.
    check_target_of_records(database, [mod], tvm.target.Target(other), tmp_path)
    check_target_of_records(database, [te_module("GMM", 1)], host, tmp_path)


def test_environment_options_are_named():
    for text, message in [
        ("{explore_trials: 3}", "must be a JSON object"),
        ('{"explore_trails": 3}', "Did you mean 'explore_trials'?"),
        ("[1, 2]", "must be a JSON object of DropletSearch options"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
            options_from_environment({"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": text})
    with pytest.raises(ValueError, match="MS_DROPLET_DEFAULT must be 1"):
        options_from_environment({"MS_DROPLET_DEFAULT": "yes"})
