"""Droplet as the default strategy of TVM's own tuning code: MS_DROPLET_DEFAULT and
``ms-droplet run``, on TVM's unchanged MetaScheduleTuneTIR pass and static_shape_tuning pipeline.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tvm
from conftest import finish_child, start_child, te_module
from tvm.s_tir import meta_schedule as ms

from ms_droplet import default

SCRIPTS = Path(__file__).parent / "scripts"
ENTRY_POINTS = SCRIPTS / "tvm_entry_points.py"
EVOLUTIONARY = ms.search_strategy.EvolutionarySearch


def _context(strategy):
    return ms.TuneContext(
        mod=te_module("GMM", 0),
        target=tvm.target.Target({"kind": "llvm", "num-cores": 1}),
        space_generator="post-order-apply",
        search_strategy=strategy,
    )


def test_install_substitutes_evolutionary_search_only_and_uninstalls():
    assert not default.is_installed(), "the test process must start without MS_DROPLET_DEFAULT"
    assert isinstance(
        _context("evolutionary").search_strategy, ms.search_strategy.EvolutionarySearch
    )
    default.install({"explore_trials": 8})
    try:
        for strategy in ("evolutionary", ms.search_strategy.EvolutionarySearch()):
            # DropletSearch reaches TVM as the FFI object behind a PySearchStrategy.
            chosen = _context(strategy).search_strategy
            assert isinstance(chosen, ms.search_strategy.search_strategy._PySearchStrategy)
        assert isinstance(_context("replay-trace").search_strategy, ms.search_strategy.ReplayTrace)
    finally:
        default.uninstall()
    assert not default.is_installed()
    assert isinstance(
        _context("evolutionary").search_strategy, ms.search_strategy.EvolutionarySearch
    )


def test_an_evolutionary_search_object_keeps_its_settings_as_the_exploration():
    custom = ms.search_strategy.EvolutionarySearch(population_size=77, eps_greedy=0.1)
    droplet = default._droplet_for(custom, {"explore_trials": 8})
    assert droplet.options["explore_trials"] == 8
    assert droplet.options["evolutionary"]["population_size"] == 77
    assert droplet.options["evolutionary"]["eps_greedy"] == pytest.approx(0.1)
    # The explorer accepts them as EvolutionarySearch keyword arguments.
    ms.search_strategy.EvolutionarySearch(**droplet.options["evolutionary"])


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MS_DROPLET_DEFAULT": "yes"}, "MS_DROPLET_DEFAULT must be 1"),
        ({"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": "explore=3"}, "must be a JSON object"),
        ({"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": "[1]"}, "must be a JSON object"),
        (
            {"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": '{"explore_trails": 3}'},
            "Did you mean 'explore_trials'",
        ),
        (
            {"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": '{"significance": 2}'},
            "'significance'",
        ),
    ],
)
def test_bad_environment_is_named(environ, message):
    with pytest.raises(ValueError, match=message):
        default.options_from_environment(environ)


def test_environment_switch_is_off_unless_set():
    assert default.options_from_environment({}) is None
    assert default.options_from_environment({"MS_DROPLET_DEFAULT": "0"}) is None
    on = {"MS_DROPLET_DEFAULT": "1", "MS_DROPLET_OPTIONS": '{"explore_trials": 4}'}
    assert default.options_from_environment(on) == {"explore_trials": 4}


def _finish(child):
    return json.loads(finish_child(child).strip().splitlines()[-1])


@pytest.mark.tuning
def test_tvm_pass_and_pipeline_use_droplet_with_the_switch_and_evolutionary_without(tmp_path):
    # Both children at once: each spends most of its time importing TVM's tensor intrinsics
    # (in itself and in every builder worker of every tuning session). Without the switch the
    # pass alone is tuned: the pipeline reaches the strategy through the same pass.
    on = start_child([str(ENTRY_POINTS), str(tmp_path / "on")], tmp_path, MS_DROPLET_DEFAULT="1")
    off = start_child([str(ENTRY_POINTS), str(tmp_path / "off"), "pass"], tmp_path)
    with_switch, without = _finish(on), _finish(off)
    for name in ("pass", "pipeline"):
        assert with_switch[name] == {"records": 4, "droplet": True}, name
    assert without == {"pass": {"records": 4, "droplet": False}}


def test_ms_droplet_run_makes_droplet_the_default_of_a_script_and_a_module(tmp_path):
    cli = ["-m", "ms_droplet.cli", "run"]
    script = start_child([*cli, str(SCRIPTS / "default_strategy.py")], tmp_path)
    module = start_child([*cli, "-m", "default_strategy"], SCRIPTS)
    plain = start_child([str(SCRIPTS / "default_strategy.py")], tmp_path)
    assert _finish(script) == {"name": True, "object": True}
    assert _finish(module) == {"name": True, "object": True}
    assert _finish(plain) == {"name": False, "object": False}


def test_ms_droplet_run_passes_argv_and_the_exit_code_and_refuses_bad_options(tmp_path):
    program = tmp_path / "program.py"
    program.write_text("import sys\nprint(__name__, sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n")
    done = subprocess.run(
        [sys.executable, "-m", "ms_droplet.cli", "run", str(program), "3", "--flag"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 3 and "__main__ ['3', '--flag']" in done.stdout
    env = dict(os.environ, MS_DROPLET_OPTIONS='{"on_converge": "never"}')
    done = subprocess.run(
        [sys.executable, "-m", "ms_droplet.cli", "run", str(program), "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=env,
    )
    assert (
        done.returncode != 0 and "'on_converge'" in done.stderr and "Traceback" not in done.stderr
    )
