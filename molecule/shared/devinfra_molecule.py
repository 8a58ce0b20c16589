"""The pytest plugin every molecule scenario's testinfra tests use.

Molecule's verifier loads it (``-p devinfra_molecule``, with this directory
on PYTHONPATH: see .config/molecule/config.yml), so a scenario's tests hold
only what is their own. It gives:

- ``hosts``: the scenario's hosts by inventory name (``hosts["db1"]``), as
  testinfra hosts reached the way Ansible reaches them (``docker exec``);
- ``run_converge(*args)``: the scenario's converge playbook run again, outside
  molecule, with the play recap parsed (``PlaybookRun``); ``run_playbook``
  runs another playbook (a maintenance one) against the scenario's hosts;
- ``check_mode_is_clean``: asserts that ``--check`` on the converged hosts
  reports no change, no failure and no unreachable host;
- ``bad_vars_change_nothing``: asserts that a converge with bad variables fails
  with a message naming them, changes nothing on any host (recap), and leaves
  the given snapshots of the live state identical;
- ``wait_for(probe, timeout, what)``: polls until ``probe()`` returns a truthy
  value and returns it, or fails saying what it waited for and what it last saw;
- ``host_fixtures(*names)``: a fixture per host name, for a module's globals;
- ``PKI_DIR``, ``PKI_CA_FILE``, ``PKI_CERT_FILE``, ``PKI_KEY_FILE``,
  ``PKI_BUNDLE_FILE``: the pki role's files on every host, read from its
  defaults (the one place that names them).

The helpers are plain functions too (``from devinfra_molecule import
run_converge, wait_for``), for module-level helpers that are not tests.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner
import yaml


def _pki_paths() -> dict[str, str]:
    """pki_dir and the file variables of roles/pki/defaults/main.yaml, with pki_dir filled in."""
    defaults_file = Path(__file__).resolve().parents[2] / "roles/pki/defaults/main.yaml"
    defaults = yaml.safe_load(defaults_file.read_text())
    names = ["pki_dir", "pki_ca_file", "pki_cert_file", "pki_key_file", "pki_bundle_file"]
    paths = {name: str(defaults[name]).replace("{{ pki_dir }}", str(defaults["pki_dir"])) for name in names}
    bad = {name: path for name, path in paths.items() if not path.startswith("/") or "{" in path}
    assert not bad, f"roles/pki/defaults/main.yaml: not plain absolute paths from pki_dir: {bad}"
    return paths


_PKI = _pki_paths()
PKI_DIR = _PKI["pki_dir"]
PKI_CA_FILE = _PKI["pki_ca_file"]
PKI_CERT_FILE = _PKI["pki_cert_file"]
PKI_KEY_FILE = _PKI["pki_key_file"]
PKI_BUNDLE_FILE = _PKI["pki_bundle_file"]

RECAP = re.compile(
    r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class PlaybookRun:
    """A finished ansible-playbook run against the scenario's hosts."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def output(self, limit: int = 4000) -> str:
        """The end of stdout and stderr, for assertion messages."""
        return f"$ ansible-playbook {' '.join(self.args)}\n{self.stdout[-limit:]}\n{self.stderr[-limit:]}"

    @property
    def changed(self) -> int:
        return sum(r["changed"] for r in self.recap.values())

    def __iter__(self):
        # `run, recap = run_converge(...)` as the scenarios wrote it before.
        return iter((self, self.recap))


def scenario_directory() -> Path:
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])


def inventory_file() -> str:
    return os.environ["MOLECULE_INVENTORY_FILE"]


def run_playbook(playbook: str | os.PathLike, *args: str,
                 inventories: Iterable[str | os.PathLike] = (),
                 timeout: float | None = None) -> PlaybookRun:
    """Run a playbook against the scenario's inventory (plus `inventories`).

    Returns the finished run with the play recap as
    ``{host: {"changed": n, "unreachable": n, "failed": n}}``. A run still
    going after `timeout` seconds is killed and fails the test (a hang).
    """
    sources = ["-i", inventory_file()]
    for extra in inventories:
        sources += ["-i", str(extra)]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    command = ["ansible-playbook", *sources, str(playbook), *args]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired as hung:
        output = (hung.stdout or b"")[-6000:]
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        pytest.fail(f"ansible-playbook still ran after {timeout:.0f}s (a hang); its output:\n{text}")
    recap = {
        host: {"changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
        for host, changed, unreachable, failed in RECAP.findall(proc.stdout)
    }
    return PlaybookRun(tuple(command[1:]), proc.returncode, proc.stdout, proc.stderr, recap)


def run_converge(*args: str, timeout: float | None = None) -> PlaybookRun:
    """The scenario's converge playbook again, outside molecule, with extra arguments."""
    return run_playbook(scenario_directory() / "converge.yaml", *args, timeout=timeout)


def converge_ok(*args: str) -> PlaybookRun:
    """run_converge that must succeed."""
    run = run_converge(*args)
    assert run.returncode == 0, run.output()
    return run


def wait_for(probe: Callable[[], object], timeout: float = 60, what: str = "the condition",
             interval: float = 1.0):
    """Call probe() until it returns something truthy; return that.

    Fails after `timeout` seconds, naming `what` and the last value seen (or
    the last exception the probe raised).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
        except (AssertionError, OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def extra_vars(variables: Mapping | str) -> list[str]:
    """-e arguments for a mapping of variables (JSON) or a ready string."""
    return ["-e", variables if isinstance(variables, str) else json.dumps(variables)]


class Hosts(Mapping):
    """The scenario's hosts by inventory name, made on first use."""

    def __init__(self, inventory: str):
        self._runner = testinfra.utils.ansible_runner.AnsibleRunner(inventory)
        self._names = self._runner.get_hosts("all")
        self._made: dict = {}

    def __getitem__(self, name: str):
        if name not in self._names:
            raise KeyError(f"{name} is not a host of this scenario (hosts: {', '.join(self._names)})")
        if name not in self._made:
            self._made[name] = self._runner.get_host(name)
        return self._made[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@functools.cache
def scenario_hosts() -> Hosts:
    """The scenario's hosts (what the ``hosts`` fixture gives), for module helpers."""
    return Hosts(inventory_file())


def host_fixtures(*names: str, **aliases: str) -> dict[str, Callable]:
    """One fixture per named host, for a test module's globals.

    ``globals().update(host_fixtures("db1", "client1"))`` lets its tests ask
    for ``db1`` and ``client1`` by name; ``host_fixtures(mirror="mirrorupd1")``
    names the fixture ``mirror`` for the host ``mirrorupd1``.
    """

    def fixture(name: str, host_name: str):
        @pytest.fixture(scope="session", name=name)
        def host():
            return scenario_hosts()[host_name]
        return host

    wanted = {name: name for name in names} | aliases
    return {name: fixture(name, host_name) for name, host_name in wanted.items()}


@pytest.fixture(scope="session")
def hosts() -> Hosts:
    return scenario_hosts()


@pytest.fixture(scope="session")
def check_mode_is_clean(hosts):
    """check_mode_is_clean(*args): ``--check`` reports 0 changes on every host."""

    def check(*args: str, expect_hosts: Iterable[str] | None = None) -> PlaybookRun:
        run = run_converge("--check", *args)
        assert run.returncode == 0, run.output()
        wanted = sorted(expect_hosts if expect_hosts is not None else hosts)
        assert sorted(run.recap) == wanted, run.output()
        clean = {"changed": 0, "unreachable": 0, "failed": 0}
        assert all(r == clean for r in run.recap.values()), run.output()
        return run

    return check


@pytest.fixture(scope="session")
def bad_vars_change_nothing():
    """bad_vars_change_nothing(variables, message, *snapshots, args=()).

    message is a text the output must hold, or a compiled regex it must match.
    Each snapshot is a callable returning the state that must not change
    (checksums of live files, a PID, a listing); it is taken before and
    after the run and compared.
    """

    def check(variables: Mapping | str, message: str | re.Pattern, *snapshots: Callable[[], object],
              args: Iterable[str] = ()) -> PlaybookRun:
        before = [snapshot() for snapshot in snapshots]
        run = run_converge(*extra_vars(variables), *args)
        assert run.returncode != 0, run.output()
        output = run.stdout + run.stderr
        if isinstance(message, re.Pattern):
            assert message.search(output), run.output()
        else:
            assert message in output, run.output()
        assert run.recap, run.output()
        assert run.changed == 0, run.output()
        assert [snapshot() for snapshot in snapshots] == before
        return run

    return check
