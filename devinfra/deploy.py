"""Apply playbooks to production from the bastion, safely.

``devinfra deploy OLD..NEW`` applies what ``devinfra plan`` selects for the
range; ``devinfra deploy --playbooks base.yaml service-zuul.yaml`` applies
the named ones (in the order zuul.d's dependencies give). Around the runs:

- every setting (command line, else the bastion's --config file, else
  DEFAULTS) is checked before anything runs: one of the wrong type, a disable
  file that is a directory, a lock file whose directory does not exist
  (it is never created: a mistyped one would not keep deploys apart) stop
  the deploy with a one-line error naming the setting and where it was set;
- one global lock (flock on --lock-file): a second deploy waits up to
  --lock-timeout seconds, then exits 75 saying who holds it (the deploy's
  pid and its running ansible-playbook's, each marked "no longer running"
  once it has exited). Each ansible-playbook inherits the locked file, so
  the lock is held while any playbook of the run lives, even after the
  deploy itself was killed (SIGKILL);
- SIGTERM is forwarded to the running ansible-playbook: the deploy waits
  for it, starts no other playbook (the rest are skipped), writes its
  summary and exits 143, so nothing is left running unlocked;
- an emergency disable file (--disable-file): while it exists nothing runs,
  and its text (the reason) is printed; exit 3;
- hosts in the inventory group ``disabled`` are left alone (``--limit
  localhost:all:!disabled`` on every run, besides the playbooks' own
  patterns; localhost, which ``all`` leaves out, runs the API plays);
- one log per playbook in --log-dir/<run>/, the run's summary in summary.json;
- a failed playbook skips the playbooks that wait for it (directly or not),
  never the unrelated ones;
- a line per playbook as it starts and ends, a summary table at the end,
  and exit 1 when any playbook failed or was skipped;
- an ARA record of the run when ara (``ara[server]``) is installed next to
  ansible-playbook (same venv): every playbook recorded by ARA's callback
  into one sqlite database, <run>/ara/ansible.sqlite, then a static HTML
  report in <run>/ara-report/ (``ara-manage generate``), named in
  summary.json and in the final summary. Without ara the run says so and
  goes on unrecorded; a failed report is a warning, never the deploy's result.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from devinfra import plan, safe_yaml
from devinfra.errors import DevinfraError

DEFAULT_INVENTORIES = ("inventory/base/hosts.yaml", "inventory/service/groups.yaml",
                       "/etc/devinfra/private")
# What `devinfra deploy` uses for an option neither the command line nor the
# bastion's config file (/etc/devinfra/deploy.yaml, written by the bastion
# role) sets.
DEFAULTS = {
    "inventory": list(DEFAULT_INVENTORIES),
    "log_dir": "/var/log/devinfra-deploy",
    "lock_file": "/var/lock/devinfra-deploy.lock",
    "lock_timeout": 3600.0,
    "disable_file": "/etc/devinfra/DISABLE-DEPLOY",
    "ansible_playbook": "ansible-playbook",
    # An Ansible strategy for every run ("" keeps ansible.cfg's, Ansible's
    # own linear). The AIO's bastion sets mitogen_linear (the mitogen
    # package beside Ansible; plugins/strategy/): several times faster per
    # task, never required.
    "ansible_strategy": "",
}
EXIT_FAILED = 1
EXIT_DISABLED = 3
EXIT_LOCKED = 75
# Seconds `ara-manage generate` may take before the report is given up (a warning).
ARA_REPORT_TIMEOUT = 600.0


class DeployError(DevinfraError):
    """A problem the operator can act on; the message says what, the code
    which (EXIT_DISABLED, EXIT_LOCKED, else 1)."""


@dataclass
class Result:
    playbook: str
    job: str
    status: str  # ok, failed, skipped
    seconds: float
    log: str
    reason: str = ""


def settings(config: Path, options: dict) -> dict:
    """The deploy settings: command-line options, else the config file, else DEFAULTS."""
    return load_settings(config, options)[0]


def load_settings(config: Path, options: dict) -> tuple[dict, dict[str, str]]:
    """The checked deploy settings, and where each came from (for the messages that name one).

    A setting of the wrong type stops here, named with the file (or the
    option) it came from: an inventory that is not a list of paths would
    otherwise run against the wrong hosts, a lock timeout that is not a
    number would fail only once the plan is made."""
    from_file = _read_config(config)
    merged, origins = {}, {}
    for key, default in DEFAULTS.items():
        if options.get(key) is not None:
            value, origins[key] = options[key], f"--{key.replace('_', '-')}"
        elif key in from_file:
            value, origins[key] = from_file[key], f"{config}: {key}"
        else:
            value, origins[key] = default, f"{key} (default)"
        try:
            merged[key] = _checked(key, value)
        except ValueError as exc:
            raise DeployError(f"{origins[key]} {exc}") from None
    return merged, origins


def _read_config(config: Path) -> dict:
    """The bastion's settings file as a mapping ({} when there is none)."""
    if not config.exists():
        return {}
    try:
        from_file = safe_yaml.load(config) or {}
    except safe_yaml.ReadError as exc:
        raise DeployError(f"{config}: {exc}") from None
    if not isinstance(from_file, dict):
        raise DeployError(f"{config}: expected a mapping of settings")
    unknown = sorted(map(str, set(from_file) - set(DEFAULTS)))
    if unknown:
        raise DeployError(f"{config}: unknown settings {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(DEFAULTS))})")
    return from_file



def _checked(key: str, value: object) -> object:
    """The setting in the form deploy() takes it; ValueError says what it must be."""
    if key == "inventory":
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ValueError(f"must be a list of inventory paths (or one path), not {safe_yaml.shown(value)}")
        return paths
    if key == "lock_timeout":
        try:
            seconds = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not 0 <= seconds < math.inf:
            raise ValueError(f"must be a number of seconds (0 or more), not {safe_yaml.shown(value)}")
        return seconds
    if key == "ansible_strategy":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError("must be a strategy name (or \"\" for ansible.cfg's), "
                             f"not {safe_yaml.shown(value)}")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path, not {safe_yaml.shown(value)}")
    return value


def check_paths(values: dict, origins: dict[str, str], summary_file: Path | None = None) -> None:
    """Refuse paths a deploy could not use, before anything runs, naming the setting.

    The lock's directory is never created: a lock file elsewhere than the
    other deploys' (a mistyped directory) would not keep them apart."""
    disable_file = Path(values["disable_file"])
    if disable_file.is_dir():
        raise DeployError(f"{origins['disable_file']} {disable_file} is a directory: it must name a "
                          "file (while it exists, its text says why deploys are disabled)")
    _check_file(Path(values["lock_file"]), origins["lock_file"])
    log_dir = Path(values["log_dir"])
    if log_dir.exists() and not log_dir.is_dir():
        raise DeployError(f"{origins['log_dir']} {log_dir} is not a directory")
    if summary_file is not None:
        _check_file(summary_file, "--summary-file")


def _check_file(path: Path, origin: str) -> None:
    """A file the deploy writes: in a directory that exists, and not a directory itself."""
    parent = path.absolute().parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise DeployError(f"{origin} {path}: its directory {parent} {what}")
    if path.is_dir():
        raise DeployError(f"{origin} {path} is a directory, not a file")


def check_disabled(disable_file: Path) -> None:
    """Stop (EXIT_DISABLED) while the disable file exists, even one that cannot be read."""
    if disable_file.is_dir():
        raise DeployError(f"the disable file {disable_file} is a directory, not a file")
    if disable_file.exists():
        try:
            reason = disable_file.read_text(errors="replace").strip() or "(no reason given)"
        except OSError as exc:
            reason = f"(the reason cannot be read: {exc.strerror})"
        raise DeployError(
            f"deploys are disabled by {disable_file}: {reason}\n"
            "(remove the file to enable them)",
            EXIT_DISABLED)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_holder(record: str) -> str:
    """The lock file's record of its holder, each pid that has exited marked."""

    def mark(match: re.Match) -> str:
        pid = int(match.group(1))
        return match.group(0) if pid > 0 and _alive(pid) else f"{match.group(0)} (no longer running)"

    return re.sub(r"\bpid (\d+)", mark, record.strip()) or "unknown"


class Lock:
    """The global deploy lock: flock on a file that records its holder.

    flock belongs to the open file description: the ansible-playbook
    processes that inherit fileno() (run_steps passes it) hold the lock
    with this process, until the last of them has exited. So the lock is
    never unlocked explicitly, only closed.
    """

    def __init__(self, path: Path, timeout: float, poll: float = 0.5,
                 say: Callable[[str], None] = print) -> None:
        self.path, self.timeout, self.poll, self.say = path, timeout, poll, say
        self.handle = None
        self.since = ""
        self.child = ""

    def __enter__(self) -> Lock:
        # Not O_APPEND: record() rewrites the holder in place, never leaving the file empty.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DeployError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        handle = os.fdopen(fd, "r+")
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            handle.seek(0)
            holder = describe_holder(handle.read())
            if time.monotonic() >= deadline:
                handle.close()
                raise DeployError(
                    f"another deploy holds {self.path} ({holder}); gave up after "
                    f"{self.timeout:.0f} s: try again when it has finished", EXIT_LOCKED)
            if not told:
                self.say(f"waiting for the deploy lock ({holder}), up to {self.timeout:.0f} s")
                told = True
            time.sleep(self.poll)
        self.handle = handle
        self.since = _now()
        self.record()
        return self

    def fileno(self) -> int:
        return self.handle.fileno()

    def record(self, child: str = "") -> None:
        """Write the holder: this deploy and, while one runs, its ansible-playbook."""
        self.child = child
        text = f"deploy pid {os.getpid()} since {self.since}" + (f"; {child}" if child else "")
        self.handle.seek(0)
        self.handle.write(text + "\n")
        self.handle.truncate()
        self.handle.flush()

    def __exit__(self, *exc) -> None:
        if self.handle:
            # An ansible-playbook may outlive an exception here: it still holds
            # the lock, and its record stays.
            if not self.child:
                self.handle.seek(0)
                self.handle.truncate()
            # No LOCK_UN, which would unlock for the inheriting children too.
            self.handle.close()
            self.handle = None


class SignalForwarder:
    """While entered (in the main thread), SIGTERM is noted and forwarded to the
    running child: run_steps waits for the child and starts no other."""

    def __init__(self, signals: Sequence[int] = (signal.SIGTERM,)) -> None:
        self.signals = tuple(signals)
        self.signum = 0
        self.child: subprocess.Popen | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> SignalForwarder:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}

    def _handle(self, signum: int, frame) -> None:
        self.signum = signum
        self.forward()

    def forward(self) -> None:
        """Pass the signal received (if any) to the running child (if any)."""
        if self.signum and self.child is not None:
            self.child.send_signal(self.signum)


@dataclass
class Ara:
    """ARA in ansible-playbook's environment: its callback plugins and ara-manage."""

    callback_dir: str
    manage: Path

    def env(self, ara_dir: Path, plugin_dirs: Sequence[Path] = ()) -> dict[str, str]:
        """The environment that records playbooks into ara_dir/ansible.sqlite (and reads it).

        plugin_dirs are callback directories loaded with ARA's: the
        repository's plugins/callback, whose ara_nodelay.py turns Nagle's
        algorithm off on ARA's in-process API server (about 40 ms saved on
        each of ARA's API calls, 3 to 4 a task)."""
        callbacks = [self.callback_dir, *map(str, plugin_dirs),
                     os.environ.get("ANSIBLE_CALLBACK_PLUGINS", "")]
        env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=os.pathsep.join(c for c in callbacks if c),
                   ARA_API_CLIENT="offline", ARA_BASE_DIR=str(ara_dir),
                   ARA_DATABASE_ENGINE="django.db.backends.sqlite3",
                   ARA_DATABASE_NAME=str(ara_dir / "ansible.sqlite"), ARA_DEBUG="false")
        # Without ARA_SETTINGS, ara writes its settings.yaml into ARA_BASE_DIR and reads it there.
        env.pop("ARA_SETTINGS", None)
        return env


def find_ara(ansible_playbook: str) -> Ara | str:
    """ARA installed with ansible-playbook (ara-manage and a python that imports ara
    in the directory of the resolved executable, a venv's bin), else why not."""
    found = shutil.which(ansible_playbook)
    if not found:
        return f"{ansible_playbook} not found"
    bin_dir = Path(found).resolve().parent
    manage = bin_dir / "ara-manage"
    python = next((bin_dir / name for name in ("python3", "python") if (bin_dir / name).exists()), None)
    if not manage.exists() or python is None:
        return f"no ara-manage and python in {bin_dir}"
    try:
        probe = subprocess.run([str(python), "-m", "ara.setup.callback_plugins"],
                               capture_output=True, text=True, check=False)
    except OSError as exc:
        return f"{python}: {exc}"
    callback_dir = probe.stdout.strip()
    if probe.returncode != 0 or not callback_dir:
        return f"{python} cannot import ara"
    return Ara(callback_dir, manage)


def generate_report(ara: Ara, env: dict[str, str], run_dir: Path, out) -> Path | None:
    """The run's static HTML report (`ara-manage generate`); on failure a warning and None."""
    report, log = run_dir / "ara-report", run_dir / "ara-report.log"
    try:
        with open(log, "w") as handle:
            rc = subprocess.run([str(ara.manage), "generate", str(report)], stdout=handle,
                                stderr=subprocess.STDOUT, env=env, timeout=ARA_REPORT_TIMEOUT,
                                check=False).returncode
        problem = f"exit {rc}" if rc else ""
        if not problem and not (report / "index.html").exists():
            problem = "no index.html"
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem:
        print(f"warning: the ARA report was not generated ({problem}; see {log})", file=out, flush=True)
        return None
    return report


def steps_for_playbooks(zuul_dir: Path, playbooks: Sequence[str]) -> list[plan.Step]:
    """The named playbooks as plan steps, ordered by zuul.d's dependencies."""
    jobs, projects = plan.load_zuul_dir(zuul_dir)
    entries = plan.pipeline_jobs(projects, "deploy", jobs)
    by_playbook = {(attrs.get("vars") or {}).get("devinfra_deploy_playbook"): (name, attrs)
                   for name, attrs in entries}
    unknown = [p for p in playbooks if p not in by_playbook]
    if unknown:
        raise DeployError(f"no deploy job applies {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(p for p in by_playbook if p))})")
    chosen = {by_playbook[p][0]: (by_playbook[p][1], "named on the command line") for p in playbooks}
    # Dependencies on jobs not named are ignored: the operator chose the set.
    for name, (attrs, reason) in list(chosen.items()):
        deps = [dep for dep, _soft in plan.dependencies(attrs.get("dependencies"))]
        attrs = dict(attrs, dependencies=[d for d in deps if d in chosen])
        chosen[name] = (attrs, reason)
    return plan.order_steps(chosen, {name: i for i, (name, _) in enumerate(entries)})


def run_steps(steps: Sequence[plan.Step], *, repo: Path, inventories: Sequence[str], log_dir: Path,
              ansible_playbook: str = "ansible-playbook", env: dict[str, str] | None = None,
              strategy: str = "", out=None, lock: Lock | None = None,
              signals: SignalForwarder | None = None) -> list[Result]:
    """Run each step's playbook (in env if given); a failure skips the steps that wait for it.

    Each ansible-playbook inherits the lock's file (it holds the lock while
    it lives) and is named in the lock's record. A SIGTERM (signals) goes to
    the running playbook, is waited for, and skips the steps left."""
    out = out or sys.stdout
    signals = signals or SignalForwarder()
    with signals:
        return _run_steps(steps, repo=repo, inventories=inventories, log_dir=log_dir,
                          ansible_playbook=ansible_playbook, env=env, strategy=strategy, out=out,
                          lock=lock, signals=signals)


def _run_steps(steps: Sequence[plan.Step], *, repo: Path, inventories: Sequence[str], log_dir: Path,
               ansible_playbook: str, env: dict[str, str] | None, strategy: str, out,
               lock: Lock | None, signals: SignalForwarder) -> list[Result]:
    if strategy:
        env = dict(env if env is not None else os.environ, ANSIBLE_STRATEGY=strategy)
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    broken: set[str] = set()
    total = len(steps)
    for index, step in enumerate(steps, 1):
        log = log_dir / f"{index:02d}-{Path(step.playbook).stem}.log"
        blocked = [d for d in step.waits_for if d in broken]
        if blocked or signals.signum:
            broken.add(step.job)
            reason = (f"the deploy got {signal.Signals(signals.signum).name}" if signals.signum
                      else f"{', '.join(blocked)} failed")
            log.write_text(f"skipped: {reason}\n")
            results.append(Result(step.playbook, step.job, "skipped", 0.0, str(log), reason))
            print(f"[{index}/{total}] {step.playbook}: SKIPPED ({reason})", file=out, flush=True)
            continue
        print(f"[{index}/{total}] {step.playbook}: running (log {log})", file=out, flush=True)
        argv = [ansible_playbook]
        for inventory in inventories:
            argv += ["-i", inventory]
        # localhost too: the plays that call service APIs run there.
        argv += ["--limit", "localhost:all:!disabled", f"playbooks/{step.playbook}"]
        start = time.monotonic()
        with open(log, "w") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            proc = subprocess.Popen(argv, cwd=repo, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                    pass_fds=(lock.fileno(),) if lock else ())
            signals.child = proc
            signals.forward()  # a signal that came while it started
            if lock:
                lock.record(f"{step.playbook}: ansible-playbook pid {proc.pid} since {_now()}")
            rc = proc.wait()
            signals.child = None
            if lock:
                lock.record()
        seconds = round(time.monotonic() - start, 1)
        status = "ok" if rc == 0 else "failed"
        if rc != 0:
            broken.add(step.job)
        reason = "" if rc == 0 else f"exit {rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
        results.append(Result(step.playbook, step.job, status, seconds, str(log), reason))
        print(f"[{index}/{total}] {step.playbook}: {status.upper()} in {seconds} s", file=out, flush=True)
    return results


def summary_table(results: Sequence[Result]) -> str:
    if not results:
        return "nothing to deploy"
    rows = [("PLAYBOOK", "STATUS", "SECONDS", "NOTE")]
    rows += [(r.playbook, r.status, f"{r.seconds:.1f}", r.reason) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "skipped")}
    lines.append(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    return "\n".join(lines)


def deploy(steps: Sequence[plan.Step], *, repo: Path, inventories: Sequence[str], log_root: Path,
           lock_file: Path, lock_timeout: float, disable_file: Path,
           ansible_playbook: str = "ansible-playbook", strategy: str = "", out=None,
           summary_file: Path | None = None) -> int:
    """Run the steps under the lock; summary_file, if given, gets the run's summary and log directory."""
    out = out or sys.stdout
    check_disabled(disable_file)
    signals = SignalForwarder()
    with Lock(lock_file, lock_timeout, say=lambda m: print(m, file=out, flush=True)) as lock:
        # Checked again under the lock: it may have appeared while we waited.
        check_disabled(disable_file)
        run_dir = log_root / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeployError(f"cannot create the run's log directory {run_dir}: {exc.strerror}") from None
        ara, env, report = find_ara(ansible_playbook), None, None
        if isinstance(ara, Ara):
            (run_dir / "ara").mkdir(parents=True, exist_ok=True)
            env = ara.env(run_dir / "ara", [repo / "plugins" / "callback"])
        else:
            print(f"ARA not installed: no ARA record ({ara})", file=out, flush=True)
        results = run_steps(steps, repo=repo, inventories=inventories, log_dir=run_dir,
                            ansible_playbook=ansible_playbook, env=env, strategy=strategy, out=out,
                            lock=lock, signals=signals)
        if env and not signals.signum and any(r.status != "skipped" for r in results):
            report = generate_report(ara, env, run_dir, out)
        summary = {"results": [asdict(r) for r in results],
                   "ara_database": env["ARA_DATABASE_NAME"] if env else None,
                   "ara_report": str(report / "index.html") if report else None}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if summary_file:
            # With the log directory: the caller reads it here, never from the output.
            try:
                summary_file.write_text(json.dumps({**summary, "logs": str(run_dir)}, indent=2) + "\n")
            except OSError as exc:
                raise DeployError(f"cannot write the summary file {summary_file}: {exc.strerror}") from None
    print(summary_table(results), file=out)
    print(f"logs: {run_dir}", file=out)
    if report:
        print(f"ARA report: {report / 'index.html'}", file=out)
    if signals.signum:
        print(f"stopped by {signal.Signals(signals.signum).name}: no ansible-playbook of this deploy runs",
              file=out, flush=True)
        return 128 + signals.signum
    return 0 if all(r.status == "ok" for r in results) else EXIT_FAILED


# Copies the status page the bastion wrote to the monitoring hosts
# (roles/deploy_status); devinfra-deploy-merged runs it after each deploy.
PUBLISH_STATUS_PLAYBOOK = "publish-deploy-status.yaml"
# Seconds the publication may take (it copies two files).
PUBLISH_STATUS_TIMEOUT = 300.0


def publish_status(*, repo: Path, inventories: Sequence[str], ansible_playbook: str = "ansible-playbook",
                   strategy: str = "", out=None) -> int:
    """Run playbooks/publish-deploy-status.yaml on the monitoring hosts; its exit code.

    Outside the deploy lock and the deploy's summary: it changes only the
    page the monitoring hosts serve, and a failure there is not a deploy's."""
    out = out or sys.stdout
    argv = [ansible_playbook]
    for inventory in inventories:
        argv += ["-i", inventory]
    argv += ["--limit", "monitoring:!disabled", f"playbooks/{PUBLISH_STATUS_PLAYBOOK}"]
    env = dict(os.environ, ANSIBLE_STRATEGY=strategy) if strategy else None
    try:
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=PUBLISH_STATUS_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        print(f"publish-status: {' '.join(argv)} took more than {PUBLISH_STATUS_TIMEOUT:.0f} s", file=out)
        return EXIT_FAILED
    except OSError as exc:
        raise DeployError(f"cannot run {ansible_playbook}: {exc.strerror}") from exc
    print(proc.stdout[-4000:], end="", file=out)
    print(proc.stderr[-4000:], end="", file=out)
    return 0 if proc.returncode == 0 else EXIT_FAILED
