"""What a merge deploys: the deploy jobs zuul.d/ selects for a set of files.

``devinfra plan OLD..NEW`` (or a list of files) reads zuul.d/ as the single
source of truth, the way Zuul reads it:

- a job's ``files`` and ``irrelevant-files`` are regular expressions matched
  at the start of each path with RE2 (google-re2's ``match``, as Zuul's
  FileMatcher): linear time, so no pattern can make the plan hang, and a
  pattern RE2 refuses (a lookahead, a backreference) is an error here,
  where Zuul only warns and falls back to Python's ``re``;
- ``files``: the job runs when any changed file matches any of them, or
  when there are no files at all (a timer event);
- ``irrelevant-files``: the job is skipped when every changed file matches
  one of them (and runs when there are no files);
- both are inherited from the parent job unless the job sets its own, and a
  project-pipeline entry may override them again;
- a job waits for its ``dependencies`` that the buildset runs; a soft one
  not in the buildset is ignored, a hard one not in it makes the buildset
  fail (Zuul reports a configuration error), which the plan reports too.

The plan is the selected jobs in dependency order (ties by the order of
the project's pipeline list), each with the playbook it applies
(``vars.devinfra_deploy_playbook``) and the file and regex that selected it.

zuul.d is checked as it is read: an item, job or project-pipeline entry of
the wrong shape, or a regex RE2 refuses, is a PlanError naming the file,
the item and the job.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devinfra import safe_yaml
from devinfra.errors import DevinfraError

INHERITED = ("files", "irrelevant-files", "dependencies", "vars")
# The regexes of a job or a variant: matched against file names.
MATCHERS = ("files", "irrelevant-files")


class PlanError(DevinfraError):
    """A problem the user can act on; the message says what."""


@dataclass
class Job:
    name: str
    parent: str | None = None
    attrs: dict = field(default_factory=dict)
    source: Path | None = None  # the zuul.d directory that defines it


@dataclass
class Step:
    job: str
    playbook: str | None
    reason: str
    waits_for: list[str]


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def load_zuul_dir(path: Path) -> tuple[dict[str, Job], list[dict]]:
    """The jobs and the project stanzas of a zuul.d directory.

    The jobs of the site's trusted config project (zuul-config/zuul.d beside
    it, as in this repository) are loaded too, as the parents they are: the
    deploy jobs inherit devinfra-deploy from there. Its project stanzas are
    not this repository's and are left out.
    """
    if not path.is_dir():
        raise PlanError(f"{path} is not a directory (expected the repository's zuul.d/)")
    jobs: dict[str, Job] = {}
    projects: list[dict] = []
    trusted = path.parent / "zuul-config" / "zuul.d"
    if trusted.is_dir() and trusted.resolve() != path.resolve():
        jobs, _ = load_zuul_dir(trusted)
    for conf in sorted(path.glob("*.yaml")):
        for index, item in enumerate(_items(conf), 1):
            where = f"{conf}: item {index}"
            if not isinstance(item, dict) or len(item) != 1:
                raise PlanError(f"{where}: each item must be a one-key mapping (job, project, ...), "
                                f"not {safe_yaml.shown(item)}")
            kind, body = next(iter(item.items()))
            if kind == "job":
                job = _job(body, where, conf.parent)
                known = jobs.get(job.name)
                if known and known.source == conf.parent:
                    raise PlanError(f"{conf}: job {job.name} is defined twice")
                if known:
                    raise PlanError(f"{conf}: job {job.name} is already defined by the trusted "
                                    f"config project ({known.source})")
                jobs[job.name] = job
            elif kind == "project":
                projects.append(_project(body, where))
    return jobs, projects


def _items(conf: Path) -> list:
    """The items of one zuul.d file (Zuul's configuration is a list of one-key mappings)."""
    try:
        items = safe_yaml.load(conf)
    except safe_yaml.ReadError as exc:
        raise PlanError(f"{conf}: {exc}") from None
    if items is None:
        return []
    if not isinstance(items, list):
        raise PlanError(f"{conf}: expected a list of items (- job: ..., - project: ...), "
                        f"not {safe_yaml.shown(items)}")
    return items



def _job(body: object, where: str, source: Path) -> Job:
    """A job item's body as a Job, its name and the attributes the plan reads checked."""
    if not isinstance(body, dict):
        raise PlanError(f"{where}: a job must be a mapping of its attributes (name, parent, ...), "
                        f"not {safe_yaml.shown(body)}")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise PlanError(f"{where}: the job has no name" if name is None
                        else f"{where}: the job's name must be a string, not {safe_yaml.shown(name)}")
    parent = body.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise PlanError(f"{where}: job {name}: parent must be a job name, not {safe_yaml.shown(parent)}")
    _check_attrs(body, f"{where}: job {name}")
    return Job(name, parent, dict(body), source)


def _project(body: object, where: str) -> dict:
    """A project item's body, each pipeline's job list and each variant checked."""
    if not isinstance(body, dict):
        raise PlanError(f"{where}: a project must be a mapping (name, pipelines, ...), "
                        f"not {safe_yaml.shown(body)}")
    for pipeline, value in body.items():
        if not isinstance(value, dict) or "jobs" not in value:
            continue  # name, templates, vars, ...: not a pipeline
        if not isinstance(value["jobs"], list | None):
            raise PlanError(f"{where}: project pipeline {pipeline}: jobs must be a list, "
                            f"not {safe_yaml.shown(value['jobs'])}")
        for number, entry in enumerate(_as_list(value["jobs"]), 1):
            at = f"{where}: project pipeline {pipeline}, job {number}"
            if isinstance(entry, str):
                continue
            if not isinstance(entry, dict) or len(entry) != 1:
                raise PlanError(f"{at}: expected a job name or a one-key mapping "
                                f"{{job: {{attributes}}}}, not {safe_yaml.shown(entry)}")
            name, variant = next(iter(entry.items()))
            if variant is not None and not isinstance(variant, dict):
                raise PlanError(f"{at} ({name}): the variant's attributes must be a mapping, "
                                f"not {safe_yaml.shown(variant)}")
            _check_attrs(variant or {}, f"{at} ({name})")
    return body


def _check_attrs(attrs: dict, where: str) -> None:
    """The attributes the plan reads, of a job or a variant, in the shapes Zuul takes.

    Without google-re2 the regexes are checked when they are matched instead:
    ``deploy --playbooks`` matches none, so a bastion whose python predates
    google-re2 can still deploy service-bastion.yaml, which installs it."""
    check = _compile if _HAVE_RE2 else _strings
    for key in MATCHERS:
        check(_as_list(attrs.get(key)), where, key)
    variables = attrs.get("vars")
    if variables is not None and not isinstance(variables, dict):
        raise PlanError(f"{where}: vars must be a mapping, not {safe_yaml.shown(variables)}")
    check(_as_list((variables or {}).get("devinfra_covers")), where, "vars.devinfra_covers")
    dependencies(attrs.get("dependencies"), where)


def resolve(jobs: dict[str, Job], name: str, seen: tuple[str, ...] = ()) -> dict:
    """A job's attributes after inheritance (the ones the plan needs)."""
    if name not in jobs:
        raise PlanError(f"job {name!r} is not defined in zuul.d")
    if name in seen:
        raise PlanError(f"job {name!r} inherits from itself ({' -> '.join(seen + (name,))})")
    job = jobs[name]
    attrs = resolve(jobs, job.parent, seen + (name,)) if job.parent else {}
    return _overlay(attrs, job.attrs)


def _overlay(attrs: dict, layer: dict) -> dict:
    """attrs with a child job's or a variant's attributes on top: vars merge,
    the others replace (Zuul's override rules for these attributes)."""
    for key in INHERITED:
        if key not in layer:
            continue
        if key == "vars":
            attrs["vars"] = {**attrs.get("vars", {}), **(layer["vars"] or {})}
        else:
            attrs[key] = layer[key]
    return attrs


def dependencies(value, where: str = "a job") -> list[tuple[str, bool]]:
    """(job name, soft) of each dependency: a name or {name: ..., soft: ...}."""
    deps = []
    for dep in _as_list(value):
        if isinstance(dep, str):
            deps.append((dep, False))
        elif isinstance(dep, dict) and isinstance(dep.get("name"), str):
            deps.append((dep["name"], bool(dep.get("soft", False))))
        else:
            raise PlanError(f"{where}: each dependency must be a job name or {{name: ..., soft: ...}}, "
                            f"not {safe_yaml.shown(dep)}")
    return deps


def pipeline_jobs(projects: list[dict], pipeline: str, jobs: dict[str, Job]) -> list[tuple[str, dict]]:
    """(job name, attributes with the project-pipeline overrides), in list order."""
    entries: list[tuple[str, dict]] = []
    for project in projects:
        stanza = project.get(pipeline) or {}
        if not isinstance(stanza, dict):
            raise PlanError(f"project {project.get('name', '')}: pipeline {pipeline} must be a mapping "
                            f"(jobs: [...]), not {safe_yaml.shown(stanza)}")
        for entry in _as_list(stanza.get("jobs")):
            if isinstance(entry, str):
                name, override = entry, {}
            else:
                name, override = next(iter(entry.items()))
                override = override or {}
            entries.append((name, _overlay(resolve(jobs, name), override)))
    if not entries:
        raise PlanError(f"no project in zuul.d runs jobs in the {pipeline!r} pipeline")
    return entries


_HAVE_RE2 = importlib.util.find_spec("re2") is not None


def _re2():
    """google-re2, imported when a pattern is first compiled (see _check_attrs)."""
    try:
        import re2
    except ImportError:
        raise PlanError(f"google-re2 is not installed for {sys.executable}: devinfra matches zuul.d's "
                        "file regexes with RE2, as Zuul does (make venv; on the bastion, "
                        "service-bastion.yaml installs it in bastion_venv)") from None
    return re2


def _strings(patterns: list, where: str, key: str) -> list:
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise PlanError(f"{where}: {key} must be regular expressions (strings), "
                            f"not {safe_yaml.shown(pattern)}")
    return patterns


def _compile(patterns: list, where: str, key: str) -> list:
    """The patterns as RE2 regexes; PlanError names where (file, job) and the pattern."""
    re2 = _re2()
    compiled = []
    for pattern in _strings(patterns, where, key):
        try:
            compiled.append(_regex(pattern))
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise PlanError(f"{where}: {key} regex {pattern!r} is invalid (RE2, as Zuul): "
                            f"{reason}") from None
    return compiled


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str):
    """RE2's compiled pattern (each job's are compiled again for every plan: cached)."""
    re2 = _re2()
    options = re2.Options()
    options.log_errors = False  # the PlanError says it; RE2 would print it on stderr too
    return re2.compile(pattern, options=options)


def selects(attrs: dict, files: list[str], job: str = "?") -> tuple[bool, str]:
    """Whether Zuul would run a job with these matchers for these files, and why."""
    wanted = _compile(_as_list(attrs.get("files")), f"job {job}", "files")
    irrelevant = _compile(_as_list(attrs.get("irrelevant-files")), f"job {job}", "irrelevant-files")
    if not (wanted or irrelevant):
        return True, "the job has no file matchers"
    if not files:
        return True, "no files (every job runs)"
    relevant = [f for f in files if not any(r.match(f) for r in irrelevant)]
    if not relevant:
        return False, "every file matches irrelevant-files"
    if not wanted:
        return True, f"{relevant[0]} is not irrelevant"
    for path in files:
        for regex in wanted:
            if regex.match(path):
                return True, f"{path} matches {regex.pattern}"
    return False, "no file matches its files"


def plan(zuul_dir: Path, files: list[str], pipeline: str = "deploy") -> list[Step]:
    """The jobs the pipeline runs for these files, in the order they run."""
    jobs, projects = load_zuul_dir(zuul_dir)
    entries = pipeline_jobs(projects, pipeline, jobs)
    order = {name: i for i, (name, _) in enumerate(entries)}
    chosen: dict[str, tuple[dict, str]] = {}
    for name, attrs in entries:
        run, reason = selects(attrs, files, name)
        if run:
            chosen[name] = (attrs, reason)
    return order_steps(chosen, order)


def order_steps(chosen: dict[str, tuple[dict, str]], order: dict[str, int]) -> list[Step]:
    """The chosen jobs ({name: (attributes, reason)}) in the order Zuul runs them:
    each after the chosen jobs it depends on, ties by the pipeline list order."""
    waits: dict[str, list[str]] = {}
    for name, (attrs, _) in chosen.items():
        waits[name] = []
        for dep, soft in dependencies(attrs.get("dependencies")):
            if dep in chosen:
                waits[name].append(dep)
            elif not soft:
                raise PlanError(
                    f"job {name} depends on {dep}, which this buildset does not run: "
                    "Zuul refuses such a buildset (make the dependency soft or run both)")
    steps: list[Step] = []
    done: set[str] = set()
    pending = sorted(chosen, key=order.__getitem__)
    while pending:
        ready = [n for n in pending if all(d in done for d in waits[n])]
        if not ready:
            raise PlanError(f"the dependencies of {', '.join(pending)} form a cycle")
        name = ready[0]
        attrs, reason = chosen[name]
        steps.append(Step(name, (attrs.get("vars") or {}).get("devinfra_deploy_playbook"),
                          reason, waits[name]))
        done.add(name)
        pending.remove(name)
    return steps


def check_revision(revision: str) -> None:
    """Refuse a revision git would read as an option (``--output=F`` writes a file)."""
    if revision.startswith("-"):
        raise PlanError(f"bad revision {revision!r}: a revision may not start with '-'")


def changed_files(repo: Path, revisions: str) -> list[str]:
    """The files a branch update OLD..NEW changes, as Zuul's merger computes them.

    Zuul takes the files of ``git diff OLD..NEW`` that the commits of
    ``git log OLD..NEW`` (merges left out) touch: a file changed by commits
    that NEW does not contain (a branch forced elsewhere) is not counted.
    An empty list (a change reverted within the range, a branch forced back
    to an older commit) means, for Zuul as for ``plan``, that every file
    matcher lets its job run. A revision starting with ``-`` is refused:
    git would take it for an option.
    """
    if ".." not in revisions:
        check_revision(revisions)
        raise PlanError(f"{revisions!r} is not a range: give OLD..NEW (e.g. HEAD~1..HEAD)")
    old, new = revisions.split("..", 1)
    for revision in (old, new):
        check_revision(revision)
    commits = f"{old}..{new or 'HEAD'}"

    def git(*args: str) -> set[str]:
        # --end-of-options (git >= 2.24) and --: the range is a revision, never an
        # option nor a path, even if check_revision let something through.
        proc = subprocess.run(["git", "-C", str(repo), *args, "--end-of-options", commits, "--"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PlanError(f"git {args[0]} {revisions} failed: {proc.stderr.strip()}")
        return {name for name in proc.stdout.split("\0") if name.strip("\n")}

    in_diff = git("diff", "--name-only", "--no-color", "-z")
    in_log = {name.strip("\n") for name in git("log", "--name-only", "--pretty=format:", "--no-merges",
                                                "--no-color", "-z")}
    return sorted(in_diff & in_log)


def render(steps: list[Step], files: list[str]) -> str:
    if not steps:
        return f"nothing to deploy: no deploy job matches the {len(files)} changed file(s)"
    lines = [f"{len(steps)} playbook(s) to apply, in this order ({len(files)} changed file(s)):"]
    for i, step in enumerate(steps, 1):
        after = f"  after {', '.join(step.waits_for)}" if step.waits_for else ""
        lines.append(f"{i:2}. {step.job:<18} playbooks/{step.playbook or '?'}{after}")
        lines.append(f"    because {step.reason}")
    return "\n".join(lines)


@dataclass
class CheckSelection:
    """What the check pipeline runs for a set of changed files (``make check``)."""

    files: list[str]
    jobs: list[str]
    scenarios: list[str]
    # Files that no job's ``files`` matcher selects, that no job declares
    # irrelevant and that no catch-all job names in ``vars.devinfra_covers``:
    # nothing in particular tests them (a hole in zuul.d).
    uncovered: list[str]


def check_selection(zuul_dir: Path, files: list[str], pipeline: str = "check") -> CheckSelection:
    """The check jobs (and their molecule scenarios) that Zuul runs for these files.

    Unlike a deploy, a check with no changed file runs nothing but the
    always-run stages: ``files`` here are the working tree's changes, never
    a timer event.
    """
    jobs, projects = load_zuul_dir(zuul_dir)
    entries = pipeline_jobs(projects, pipeline, jobs)
    chosen: list[str] = []
    scenarios: list[str] = []
    matched: set[str] = set()
    declared_irrelevant: set[str] = set()
    for name, attrs in entries:
        wanted = _compile(_as_list(attrs.get("files")), f"job {name}", "files")
        irrelevant = _compile(_as_list(attrs.get("irrelevant-files")), f"job {name}", "irrelevant-files")
        declared_irrelevant |= {f for f in files if any(r.match(f) for r in irrelevant)}
        covers = _compile(_as_list((attrs.get("vars") or {}).get("devinfra_covers")), f"job {name}",
                          "vars.devinfra_covers")
        matched |= {f for f in files if any(r.match(f) for r in wanted + covers)}
        if files and selects(attrs, files, name)[0]:
            chosen.append(name)
            scenario = (attrs.get("vars") or {}).get("devinfra_molecule_scenario")
            if scenario:
                scenarios.append(scenario)
    uncovered = sorted(set(files) - matched - declared_irrelevant)
    return CheckSelection(sorted(files), chosen, scenarios, uncovered)


def working_tree_files(repo: Path) -> list[str]:
    """The files the working tree changes against HEAD: modified, staged,
    deleted, renamed (both names) and untracked (not ignored)."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PlanError(f"git status failed in {repo}: {proc.stderr.strip()}")
    files: set[str] = set()
    fields = proc.stdout.split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        files.add(path)
        if "R" in status or "C" in status:
            # -z: the original name of a rename or copy follows as its own field.
            files.add(fields[i])
            i += 1
    return sorted(files)
