"""tools/run-tests.py: the order the molecule scenarios start in."""

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_runner():
    spec = importlib.util.spec_from_file_location("run_tests", ROOT / "tools" / "run-tests.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_scenario_has_a_committed_duration():
    """A fresh clone (CI) orders the scenarios by molecule/durations.json: a new scenario needs its entry."""
    committed = json.loads((ROOT / "molecule" / "durations.json").read_text())["seconds"]
    in_tree = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    assert set(committed) == in_tree
    assert all(isinstance(v, int) and v > 0 for v in committed.values())


def test_without_local_times_the_committed_ones_put_the_longest_first(tmp_path, monkeypatch):
    runner = load_runner()
    monkeypatch.setattr(runner, "TIMES", tmp_path / "absent.json")
    times = runner.previous_times()
    committed = json.loads((ROOT / "molecule" / "durations.json").read_text())["seconds"]
    longest = max(committed, key=committed.get)
    assert times[f"molecule:{longest}"] == max(times.values())
    assert len(times) == len(committed)


def test_local_times_win_over_the_committed_ones(tmp_path, monkeypatch):
    runner = load_runner()
    local = tmp_path / "test-times.json"
    local.write_text(json.dumps({"stages": {"molecule:base": {"seconds": 999.0}}}))
    monkeypatch.setattr(runner, "TIMES", local)
    assert runner.previous_times() == {"molecule:base": 999.0}
