#!/usr/bin/env python3
# Run with the repository's venv (make test, make check): it imports devinfra.
"""Run the test stages and print one closing line per stage, then the budget.

    tools/run-tests.py                    every stage (make test, CI)
    tools/run-tests.py lint|unit|molecule|aio   one stage
    tools/run-tests.py --changed          make check: lint, unit, and the molecule
                                          scenarios the working tree's changes affect

Stages: lint (yamllint, ansible-lint, ruff, devinfra validate), unit (pytest),
molecule (every scenario, DEVINFRA_TEST_JOBS at a time; MOLECULE_SCENARIOS
narrows it), aio (tests/aio against a deployed AIO, skipped when none).
Each stage's output is in .artifacts/logs/<stage>.log; the times of every
stage and of each scenario's molecule actions are in
.artifacts/test-times.json, which the next run also uses to start the
longest scenarios first.

``--changed`` picks the scenarios with zuul.d's own file matchers (the check
pipeline, read by devinfra.plan as Zuul reads them) and reports any changed
file that no job's matcher covers: a hole in zuul.d.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devinfra import plan  # noqa: E402  (the repository's own package, before any venv install)

LOGS = ROOT / ".artifacts" / "logs"
TIMES = ROOT / ".artifacts" / "test-times.json"
# The README's promise for `make test` on a fresh 2-core machine, and CI's
# hard limit: the budget line shows both.
BUDGET_S = 35 * 60
CI_LIMIT_S = 90 * 60
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Molecule announces each action as "INFO  <scenario> ➜ <action>: Executing".
ACTION = re.compile(r"➜ (\w+): Executing")
PRINT = threading.Lock()


def say(message: str) -> None:
    with PRINT:
        print(message, flush=True)


@dataclass
class Result:
    name: str
    rc: int
    seconds: float
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    actions: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        status = "PASS" if self.rc == 0 else "FAIL"
        text = f"{status}  {self.name:<24} {self.seconds:7.1f}s"
        if self.rc != 0:
            return f"{text}  (exit {self.rc}, log {log_path(self.name).relative_to(ROOT)})"
        if self.skipped:
            text += f"  ({self.skipped} skipped)"
        return text


def log_path(name: str) -> Path:
    return LOGS / f"{name.replace(':', '-')}.log"


def run_stage(name: str, command: list[str], echo: bool, env: dict | None = None) -> Result:
    """Run one stage, its output to its log (and to the terminal when echo)."""
    log = log_path(name)
    say(f"\n=== {name}: {' '.join(command)}" if echo else f"--- {name}: started")
    start = time.monotonic()
    actions: dict[str, float] = {}
    current: tuple[str, float] | None = None
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if echo:
                sys.stdout.write(line)
            found = ACTION.search(ANSI.sub("", line))
            if found:
                now = time.monotonic()
                if current:
                    actions[current[0]] = actions.get(current[0], 0.0) + now - current[1]
                current = (found.group(1), now)
        rc = proc.wait()
    end = time.monotonic()
    if current:
        actions[current[0]] = actions.get(current[0], 0.0) + end - current[1]
    text = ANSI.sub("", log.read_text(errors="replace"))
    counts = re.findall(r"(\d+) skipped", text)
    reasons = sorted(set(re.findall(r"SKIPPED \[\d+\] \S+: (.*)", text)))
    result = Result(name, rc, end - start, int(counts[-1]) if counts else 0, reasons,
                    {k: round(v, 1) for k, v in actions.items()})
    if not echo:
        say(result.line())
    return result


def scenarios_in_tree() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def previous_times() -> dict[str, float]:
    """Seconds per stage: this machine's last run, else the committed molecule/durations.json.

    A fresh clone (CI) has no times of its own; without the committed ones it
    would start the scenarios in name order and the longest one (zuul) last.
    """
    try:
        return {k: float(v["seconds"]) for k, v in json.loads(TIMES.read_text())["stages"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        committed = json.loads((ROOT / "molecule" / "durations.json").read_text())["seconds"]
        return {f"molecule:{name}": float(seconds) for name, seconds in committed.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def zuul_python() -> str:
    """The Zuul venv whose parsers the unit tests use (tools/zuul-venv.sh prints it)."""
    proc = subprocess.run([str(ROOT / "tools" / "zuul-venv.sh")], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        sys.exit(f"run-tests: the Zuul venv failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def molecule_env() -> dict:
    """The environment of the molecule stage: the package mirror, if one serves."""
    env = dict(os.environ)
    if "DEVINFRA_MIRROR" not in env:
        aio_mirror = "devinfra-aio-mirror01"
        probe = subprocess.run(
            ["docker", "exec", aio_mirror, "curl", "-fsS", "-o", "/dev/null",
             "http://127.0.0.1/debian/dists/trixie/Release"], capture_output=True, check=False)
        if probe.returncode == 0:
            env["DEVINFRA_MIRROR"] = aio_mirror
    say(f"molecule hosts install through: {env.get('DEVINFRA_MIRROR') or 'the public archives (no mirror)'}")
    return env


def run_molecule(scenarios: list[str], jobs: int, echo: bool) -> list[Result]:
    """Each scenario's `molecule test`, `jobs` at a time, the longest (last run's times) first."""
    if not scenarios:
        return []
    env = molecule_env()
    known = previous_times()
    order = sorted(scenarios, key=lambda s: -known.get(f"molecule:{s}", 600.0))
    jobs = max(1, min(jobs, len(order)))
    say(f"molecule: {len(order)} scenario(s), {jobs} at a time: {' '.join(order)}")

    def one(scenario: str) -> Result:
        return run_stage(f"molecule:{scenario}", ["molecule", "test", "-s", scenario],
                         echo=echo and jobs == 1, env=env)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, order))
    return sorted(results, key=lambda r: r.name)


def changed_selection() -> plan.CheckSelection:
    files = plan.working_tree_files(ROOT)
    selection = plan.check_selection(ROOT / "zuul.d", files)
    if not files:
        say("make check: the working tree has no changes: lint and unit tests only")
        return selection
    say(f"make check: {len(files)} changed file(s); zuul.d's check jobs for them: "
        f"{', '.join(selection.jobs) or 'none'}")
    for path in selection.uncovered:
        say(f"make check: NOT COVERED by any zuul.d file matcher (a hole in zuul.d): {path}")
    known = set(scenarios_in_tree())
    for scenario in selection.scenarios:
        if scenario not in known:
            say(f"make check: zuul.d names scenario {scenario!r}, which molecule/ does not have")
    selection.scenarios = [s for s in selection.scenarios if s in known]
    say(f"make check: molecule scenarios: {' '.join(selection.scenarios) or 'none'}")
    return selection


def budget(results: list[Result], wall: float) -> list[str]:
    """The total since make started (the Makefile exports the time: the
    bootstrap counts), against the budget and CI's limit, and the slowest stages."""
    try:
        total = time.time() - float(os.environ["DEVINFRA_MAKE_STARTED"])
    except (KeyError, ValueError):
        total = wall
    slowest = sorted(results, key=lambda r: -r.seconds)[:4]
    lines = [f"budget: {total / 60:.1f} min in all ({(total - wall) / 60:.1f} min bootstrap, "
             f"{wall / 60:.1f} min of stages) against a budget of {BUDGET_S // 60} min "
             f"(CI's limit {CI_LIMIT_S // 60} min); slowest: "
             + ", ".join(f"{r.name} {r.seconds:.0f}s" for r in slowest)]
    if total > BUDGET_S:
        lines.append(f"budget: OVER the {BUDGET_S // 60}-minute budget by {(total - BUDGET_S) / 60:.1f} min")
    return lines


def write_times(results: list[Result], wall: float, jobs: int) -> None:
    data: dict = {"stages": {}}
    if TIMES.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(TIMES.read_text())
    data.setdefault("stages", {})
    for result in results:
        data["stages"][result.name] = {"seconds": round(result.seconds, 1), "rc": result.rc,
                                       "actions": result.actions}
    data["last_run"] = {"wall_seconds": round(wall, 1), "molecule_jobs": jobs,
                        "stages": [r.name for r in results],
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    TIMES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", nargs="?", default="all",
                        choices=["all", "lint", "unit", "molecule", "aio"])
    parser.add_argument("--changed", action="store_true",
                        help="lint, unit and the scenarios the working tree's changes affect")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("DEVINFRA_TEST_JOBS", "2")),
                        help="molecule scenarios run at a time (default DEVINFRA_TEST_JOBS or 2)")
    args = parser.parse_args(argv)
    os.environ["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    os.environ["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    # Wide enough that molecule does not wrap the skip reasons read back.
    os.environ["COLUMNS"] = "250"
    LOGS.mkdir(parents=True, exist_ok=True)

    stages = {"lint", "unit", "molecule", "aio"} if args.stage == "all" else {args.stage}
    scenarios = os.environ.get("MOLECULE_SCENARIOS", "").split() or scenarios_in_tree()
    if args.changed:
        stages = {"lint", "unit", "molecule"}
        try:
            scenarios = changed_selection().scenarios
        except plan.PlanError as exc:  # a malformed zuul.d: one line, not a traceback
            say(f"make check: {exc}")
            return 2
    unknown = sorted(set(scenarios) - set(scenarios_in_tree()))
    if unknown:
        say(f"run-tests: no such molecule scenario: {', '.join(unknown)}")
        return 2

    began = time.monotonic()
    results: list[Result] = []
    if "lint" in stages:
        results.append(run_stage("yamllint", ["yamllint", "--strict", "."], echo=True))
        # Molecule's playbooks name hosts only molecule's inventory has; our
        # ansible.cfg makes such a pattern an error, which lint must not see.
        results.append(run_stage("ansible-lint", ["ansible-lint", "--offline", "--profile", "production"],
                                 echo=True, env=dict(os.environ, ANSIBLE_HOST_PATTERN_MISMATCH="warning")))
        results.append(run_stage("ruff", ["ruff", "check", "."], echo=True))
        results.append(run_stage("inventory", ["devinfra", "validate"], echo=True))
    if "unit" in stages:
        # The real Zuul's parsers check what our filters render for it.
        env = dict(os.environ, DEVINFRA_ZUUL_PYTHON=zuul_python())
        # Four workers: most tests wait on subprocesses (ansible-playbook, the
        # real Zuul's parsers, loopback HTTP doubles), not on the 2 cores.
        results.append(run_stage("pytest", ["pytest", "-q", "-n", "4", "tests/unit"], echo=True, env=env))
    if "molecule" in stages:
        if shutil.which("molecule") is None:
            say("run-tests: molecule is not installed: run `make venv`")
            return 2
        results += run_molecule(scenarios, args.jobs, echo=True)
    if "aio" in stages:
        # The AIO's Zuul deploying commits merged into its clone (tests/aio):
        # needs a deployed AIO (make aio); skipped, saying so, when none runs.
        results.append(run_stage("aio", ["pytest", "-q", "-rs", "tests/aio"], echo=True))
    wall = time.monotonic() - began

    write_times(results, wall, args.jobs)
    failed = [r for r in results if r.rc != 0]
    print("\n=== summary")
    for result in results:
        print(result.line())
        for reason in result.reasons:
            print(f"      skipped: {reason}")
        if result.actions:
            print("      " + ", ".join(f"{k} {v:.0f}s" for k, v in result.actions.items()))
    for line in budget(results, wall):
        print(line)
    print(f"stages: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
