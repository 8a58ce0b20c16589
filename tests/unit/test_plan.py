"""devinfra plan: zuul.d's deploy jobs, Zuul's file matcher semantics, the order."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from devinfra import cli, plan

ROOT = Path(__file__).resolve().parents[2]
ZUUL_D = ROOT / "zuul.d"


def deploy_jobs():
    jobs, projects = plan.load_zuul_dir(ZUUL_D)
    return dict(plan.pipeline_jobs(projects, "deploy", jobs))


def planned(*files, pipeline="deploy"):
    return [s.job for s in plan.plan(ZUUL_D, list(files), pipeline)]


# --- the repository's own zuul.d -----------------------------------------

def test_every_deploy_job_applies_a_playbook_that_exists():
    for name, attrs in deploy_jobs().items():
        playbook = attrs["vars"]["devinfra_deploy_playbook"]
        assert (ROOT / "playbooks" / playbook).is_file(), (name, playbook)


def _roles_and_groups(playbook: Path):
    roles, groups = set(), set()
    for play in yaml.safe_load(playbook.read_text()):
        for pattern in str(play.get("hosts", "")).split(":"):
            if pattern and not pattern.startswith("!") and "{" not in pattern:
                groups.add(pattern)
        for role in play.get("roles", []):
            roles.add(role if isinstance(role, str) else role["role"])
        for task in play.get("tasks", []):
            include = task.get("ansible.builtin.include_role")
            if include:
                roles.add(include["name"])
    return roles, groups


def test_each_deploy_job_follows_everything_its_playbook_applies():
    """Its playbook, each role it runs and the group vars of its groups select it."""
    for name, attrs in deploy_jobs().items():
        playbook = ROOT / "playbooks" / attrs["vars"]["devinfra_deploy_playbook"]
        roles, groups = _roles_and_groups(playbook)
        paths = [str(playbook.relative_to(ROOT))]
        paths += [f"roles/{r}/tasks/main.yaml" for r in roles]
        paths += [f"inventory/service/group_vars/{g}.yaml" for g in groups
                  if (ROOT / f"inventory/service/group_vars/{g}.yaml").exists()]
        for path in paths:
            selected, why = plan.selects(attrs, [path], name)
            assert selected, f"{name}: {path} does not select it ({why})"


@pytest.mark.parametrize(("path", "jobs"), [
    ("roles/etherpad/templates/settings.json.j2", ["deploy-etherpad"]),
    # The monitoring probes every vhost the etherpad hosts serve.
    ("inventory/service/group_vars/etherpad.yaml", ["deploy-etherpad", "deploy-monitoring"]),
    ("inventory/service/group_vars/zuul_executor.yaml", ["deploy-zuul"]),
    ("roles/mirror_update/tasks/main.yaml", ["deploy-mirror"]),
    ("zuul-config/zuul.d/jobs.yaml", ["deploy-zuul"]),
    ("projects/projects.yaml", ["deploy-pagure", "deploy-projects", "deploy-zuul"]),
    ("roles/base/tasks/sshd.yaml", ["deploy-base"]),
    ("roles/webfront/templates/nginx.conf.j2",
     ["deploy-review", "deploy-pagure", "deploy-zuul", "deploy-etherpad", "deploy-monitoring",
      "deploy-mirror"]),
    ("roles/prometheus/files/rules/devinfra.yaml", ["deploy-monitoring"]),
    ("roles/etherpad/README.md", []),
    ("molecule/etherpad/tests/test_default.py", []),
    ("zuul.d/check-jobs.yaml", []),
])
def test_a_change_deploys_only_what_it_touches(path, jobs):
    assert sorted(planned(path)) == sorted(jobs)


@pytest.mark.parametrize("path", ["inventory/base/hosts.yaml", "inventory/service/groups.yaml",
                                  "inventory/aio/hosts.yaml", "plugins/inventory/yamlgroup.py"])
def test_a_change_to_hosts_or_groups_deploys_every_service(path):
    """A file matcher cannot tell whose hosts a hosts or groups change moves: all deploy, in order."""
    assert planned(path) == planned(pipeline="periodic")


def test_services_wait_for_the_baseline_and_the_mirrors():
    steps = plan.plan(ZUUL_D, ["roles/base/tasks/main.yaml", "roles/pki/tasks/main.yaml",
                               "roles/gerrit/tasks/main.yaml"])
    order = [s.job for s in steps]
    assert order[:2] == ["deploy-base", "deploy-mirror"]
    # The bastion too: it trusts the internal CA through the pki role.
    assert set(order[2:]) == {"deploy-review", "deploy-pagure", "deploy-zuul", "deploy-etherpad",
                              "deploy-bastion", "deploy-monitoring"}
    zuul = next(s for s in steps if s.job == "deploy-zuul")
    assert zuul.waits_for == ["deploy-base", "deploy-mirror"]
    assert zuul.playbook == "service-zuul.yaml"


def test_the_daily_run_converges_everything():
    # A timer event has no files: every file matcher lets its job run.
    assert planned(pipeline="periodic") == [
        "deploy-base", "deploy-mirror", "deploy-review", "deploy-pagure", "deploy-projects", "deploy-zuul",
        "deploy-etherpad", "deploy-bastion", "deploy-backup", "deploy-monitoring"]


def test_every_deploy_job_holds_the_deploy_semaphore():
    jobs, _ = plan.load_zuul_dir(ZUUL_D)
    assert jobs["devinfra-deploy-playbook"].attrs["semaphores"] == "devinfra-deploy"
    for name in deploy_jobs():
        assert jobs[name].parent == "devinfra-deploy-playbook"
        assert "semaphores" not in jobs[name].attrs, name


def test_deploy_jobs_reach_the_bastion_only_through_the_trusted_post_review_job():
    """No deploy job asks for a node; the way to the bastion is the config project's."""
    jobs, _ = plan.load_zuul_dir(ZUUL_D)
    trusted = jobs["devinfra-deploy"]
    assert trusted.source == ROOT / "zuul-config" / "zuul.d"
    assert trusted.attrs["post-review"] is True
    assert trusted.attrs["nodeset"] == {"nodes": []}
    assert [s["secret"] for s in trusted.attrs["secrets"]] == ["devinfra-bastion"]
    assert jobs["devinfra-deploy-playbook"].parent == "devinfra-deploy"
    for name in [*deploy_jobs(), "devinfra-deploy-playbook"]:
        assert not {"nodeset", "run", "pre-run", "post-run", "secrets"} & set(jobs[name].attrs), name
    # No nodeset of this repository names the bastion.
    for conf in ZUUL_D.glob("*.yaml"):
        assert "label: bastion" not in conf.read_text(), conf


def test_a_job_may_not_redefine_a_trusted_one(tmp_path):
    (tmp_path / "zuul-config" / "zuul.d").mkdir(parents=True)
    (tmp_path / "zuul-config" / "zuul.d" / "jobs.yaml").write_text("- job: {name: devinfra-deploy}\n")
    (tmp_path / "zuul.d").mkdir()
    (tmp_path / "zuul.d" / "jobs.yaml").write_text("- job: {name: devinfra-deploy}\n")
    with pytest.raises(plan.PlanError, match="already defined by the trusted config project"):
        plan.load_zuul_dir(tmp_path / "zuul.d")


# --- the semantics, on small zuul.d directories ---------------------------

def write_zuul_d(tmp_path, text):
    directory = tmp_path / "zuul.d"
    directory.mkdir()
    (directory / "jobs.yaml").write_text(textwrap.dedent(text))
    return directory


def test_matchers_are_inherited_and_overridden(tmp_path):
    zuul_d = write_zuul_d(tmp_path, """\
        - job: {name: parent, files: ['^a/'], irrelevant-files: ['.*\\.md$'], vars: {x: 1}}
        - job: {name: child, parent: parent, vars: {devinfra_deploy_playbook: c.yaml}}
        - job: {name: other, parent: parent, files: ['^b/']}
        - project:
            deploy:
              jobs:
                - child
                - other
                - parent: {files: ['^c/'], vars: {devinfra_deploy_playbook: p.yaml}}
        """)
    assert [s.job for s in plan.plan(zuul_d, ["a/x"])] == ["child"]
    assert [s.job for s in plan.plan(zuul_d, ["b/x"])] == ["other"]
    # The project-pipeline entry overrides the job's own files.
    assert [s.job for s in plan.plan(zuul_d, ["c/x"])] == ["parent"]
    assert [s.job for s in plan.plan(zuul_d, ["a/README.md"])] == []
    # A variant's vars merge into the job's, as Zuul merges them.
    jobs, projects = plan.load_zuul_dir(zuul_d)
    variant = dict(plan.pipeline_jobs(projects, "deploy", jobs))["parent"]
    assert variant["vars"] == {"x": 1, "devinfra_deploy_playbook": "p.yaml"}
    step = plan.plan(zuul_d, ["a/x"])[0]
    assert (step.playbook, step.reason) == ("c.yaml", "a/x matches ^a/")


def test_a_missing_hard_dependency_and_a_cycle_are_errors(tmp_path):
    zuul_d = write_zuul_d(tmp_path, """\
        - job: {name: a, files: ['^a/'], dependencies: [b]}
        - job: {name: b, files: ['^b/'], dependencies: [{name: a, soft: true}]}
        - project: {deploy: {jobs: [a, b]}}
        """)
    with pytest.raises(plan.PlanError, match="a depends on b, which this buildset does not run"):
        plan.plan(zuul_d, ["a/x"])
    assert [s.job for s in plan.plan(zuul_d, ["b/x"])] == ["b"]
    with pytest.raises(plan.PlanError, match="form a cycle"):
        plan.plan(zuul_d, ["a/x", "b/x"])


@pytest.mark.parametrize(("text", "message"), [
    ("- job: {name: a, files: ['^(']}\n- project: {deploy: {jobs: [a]}}\n",
     "files regex '\\^\\(' is invalid"),
    ("- project: {deploy: {jobs: [nope]}}\n", "job 'nope' is not defined"),
    ("- job: {name: a}\n- project: {check: {jobs: [a]}}\n", "no project in zuul.d runs jobs in the 'deploy'"),
    ("- job: {name: a, parent: a}\n- project: {deploy: {jobs: [a]}}\n", "inherits from itself"),
])
def test_bad_zuul_d_is_explained(tmp_path, text, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.plan(write_zuul_d(tmp_path, text), ["x"])


@pytest.mark.parametrize(("text", "message"), [
    ("- job: [unclosed\n", "not valid YAML: line 2, column 1: while parsing a flow sequence: "
                            "expected ',' or ']', but got '<stream end>'"),
    ("- job: {files: ['^a/']}\n", "item 1: the job has no name"),
    ("- job: {name: a}\n- job: deploy-b\n",
     "item 2: a job must be a mapping of its attributes (name, parent, ...), not a string 'deploy-b'"),
    ("- job: {name: 5}\n", "item 1: the job's name must be a string, not a number 5"),
    ("just a sentence\n",
     "expected a list of items (- job: ..., - project: ...), not a string 'just a sentence'"),
    ("job: {name: a}\n",
     "expected a list of items (- job: ..., - project: ...), not a mapping {'job': {'name': 'a'}}"),
    ("- job: {name: a}\n- [a, b]\n",
     "item 2: each item must be a one-key mapping (job, project, ...), not a list ['a', 'b']"),
    ("- project: [deploy]\n",
     "item 1: a project must be a mapping (name, pipelines, ...), not a list ['deploy']"),
    ("- job: {name: a, dependencies: [{soft: true}]}\n",
     "item 1: job a: each dependency must be a job name or {name: ..., soft: ...}, "
     "not a mapping {'soft': True}"),
    ("- job: {name: a, files: [{regex: '^a/'}]}\n",
     "item 1: job a: files must be regular expressions (strings), not a mapping {'regex': '^a/'}"),
    ("- job: {name: a, vars: [x]}\n", "item 1: job a: vars must be a mapping, not a list ['x']"),
    ("- job: {name: a}\n- project: {deploy: {jobs: [{a: {}, b: {}}]}}\n",
     "item 2: project pipeline deploy, job 1: expected a job name or a one-key mapping {job: {attributes}}, "
     "not a mapping {'a': {}, 'b': {}}"),
    ("- job: {name: a}\n- project: {deploy: {jobs: [{a: [x]}]}}\n",
     "item 2: project pipeline deploy, job 1 (a): the variant's attributes must be a mapping, "
     "not a list ['x']"),
])
def test_a_malformed_zuul_d_is_named_with_its_file_and_item(tmp_path, text, message):
    zuul_d = write_zuul_d(tmp_path, text)
    with pytest.raises(plan.PlanError) as exc:
        plan.plan(zuul_d, ["x"])
    assert str(exc.value) == f"{zuul_d / 'jobs.yaml'}: {message}"


@pytest.mark.parametrize(("text", "where", "pattern", "reason"), [
    # A lookahead and a backreference: Python's re takes them, RE2 (and so Zuul) does not.
    ("- job: {name: a, files: ['^(?!docs/)']}\n- project: {deploy: {jobs: [a]}}\n",
     "item 1: job a: files", "^(?!docs/)", "invalid perl operator: (?!"),
    ("- job: {name: a, irrelevant-files: ['(x)\\1']}\n- project: {deploy: {jobs: [a]}}\n",
     "item 1: job a: irrelevant-files", "(x)\\1", "invalid escape sequence: \\1"),
    ("- job: {name: a}\n- project: {deploy: {jobs: [{a: {files: ['[z-a]']}}]}}\n",
     "item 2: project pipeline deploy, job 1 (a): files", "[z-a]", "invalid character class range: z-a"),
])
def test_a_regex_re2_refuses_is_named_with_its_file_job_and_pattern(tmp_path, text, where, pattern, reason):
    zuul_d = write_zuul_d(tmp_path, text)
    with pytest.raises(plan.PlanError) as exc:
        plan.plan(zuul_d, ["x"])
    assert str(exc.value) == (f"{zuul_d / 'jobs.yaml'}: {where} regex {pattern!r} is invalid (RE2, as Zuul): "
                              f"{reason}")


def test_a_regex_that_backtracks_exponentially_in_python_is_matched_by_re2_at_once(tmp_path):
    zuul_d = write_zuul_d(tmp_path, """\
        - job: {name: a, files: ['^(a+)+$'], vars: {devinfra_deploy_playbook: a.yaml}}
        - project: {deploy: {jobs: [a]}}
        """)
    # Python's re tries each of the 2**38 ways to split the a's before it says no.
    assert plan.plan(zuul_d, ["a" * 39 + "!"]) == []
    assert [s.job for s in plan.plan(zuul_d, ["a" * 40])] == ["a"]


def test_the_cli_reports_a_malformed_zuul_d_in_one_line_without_a_traceback(tmp_path):
    zuul_d = write_zuul_d(tmp_path, "- job: deploy-a\n- project: {deploy: {jobs: [deploy-a]}}\n")
    proc = subprocess.run([sys.executable, "-m", "devinfra", "plan", "--repo", str(tmp_path), "--files", "x"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (f"devinfra: error: {zuul_d / 'jobs.yaml'}: item 1: a job must be a mapping of its "
                           "attributes (name, parent, ...), not a string 'deploy-a'\n")


def test_a_zuul_d_file_that_is_not_utf8_is_named(tmp_path):
    zuul_d = write_zuul_d(tmp_path, "")
    (zuul_d / "jobs.yaml").write_bytes(b"- job: {name: d\xe9ploy}\n")
    with pytest.raises(plan.PlanError, match=r"jobs\.yaml: not UTF-8: byte 0xe9 at offset 15$"):
        plan.load_zuul_dir(zuul_d)


def test_cli_plans_a_git_range(tmp_path, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    write_zuul_d(repo, """\
        - job: {name: deploy-a, files: ['^roles/a/'], vars: {devinfra_deploy_playbook: a.yaml}}
        - job: {name: deploy-b, files: ['^roles/b/'], vars: {devinfra_deploy_playbook: b.yaml}}
        - project: {deploy: {jobs: [deploy-a, deploy-b]}}
        """)
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    (repo / "roles/b").mkdir(parents=True)
    (repo / "roles/b/x.yaml").write_text("---\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "two"], check=True)
    assert cli.main(["plan", "--repo", str(repo), "HEAD~1..HEAD"]) == 0
    out = capsys.readouterr().out
    assert "1. deploy-b" in out and "playbooks/b.yaml" in out and "deploy-a" not in out
    assert cli.main(["plan", "--repo", str(repo), "--json", "--files", "roles/a/y"]) == 0
    assert [s["job"] for s in json.loads(capsys.readouterr().out)["steps"]] == ["deploy-a"]
    assert cli.main(["plan", "--repo", str(repo), "HEAD"]) == 1
    assert "is not a range" in capsys.readouterr().err
    assert cli.main(["plan", "--repo", str(repo), "nope..HEAD"]) == 1
    assert "git diff nope..HEAD failed" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["--output={out}/F..HEAD", "HEAD..--output={out}/F"])
def test_a_revision_that_git_would_read_as_an_option_is_refused(tmp_path, capsys, bad):
    bad = bad.format(out=tmp_path)
    assert cli.main(["plan", "--repo", str(ROOT), "--", bad]) == 1
    err = capsys.readouterr().err
    revision = next(part for part in bad.split("..", 1) if part.startswith("-"))
    assert err == f"devinfra: error: bad revision {revision!r}: a revision may not start with '-'\n"
    assert list(tmp_path.iterdir()) == []


def test_git_reads_the_range_as_a_revision_even_unchecked(tmp_path, monkeypatch):
    """Defense in depth: --end-of-options, should a bad revision get past check_revision."""
    monkeypatch.setattr(plan, "check_revision", lambda revision: None)
    with pytest.raises(plan.PlanError, match="git diff --output=.* failed"):
        plan.changed_files(ROOT, f"--output={tmp_path}/F..HEAD")
    assert list(tmp_path.iterdir()) == []


def test_changed_files_follow_zuuls_merger(tmp_path):
    """Files of the diff that the range's own commits touch (zuul.merger getFilesChanges)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]

    def commit(path, text, message):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", message], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()

    subprocess.run([*git, "init", "-q"], check=True)
    base = commit("a", "1\n", "base")
    trial = commit("b", "trial\n", "a trial on the deployed branch")
    assert plan.changed_files(repo, f"{base}..{trial}") == ["b"]
    # A change and its revert within one update: no file (and then, as for a
    # timer, every deploy job runs: test_the_daily_run_converges_everything).
    subprocess.run([*git, "checkout", "-q", "-b", "other", base], check=True)
    commit("c", "1\n", "change c")
    reverted = commit("c", "", "revert c")
    subprocess.run([*git, "rm", "-q", "c"], check=True)
    subprocess.run([*git, "commit", "-qm", "drop c"], check=True)
    dropped = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                             text=True).stdout.strip()
    assert plan.changed_files(repo, f"{base}..{dropped}") == []
    # A forced push from the trial to another line: b differs, but no new
    # commit touched it, so Zuul (and the plan) deploy only what the new
    # commits changed.
    assert plan.changed_files(repo, f"{trial}..{reverted}") == ["c"]
    # A forced push back to an ancestor brings no commit: no file either.
    assert plan.changed_files(repo, f"{trial}..{base}") == []


# --- the same answers as Zuul's own matchers ------------------------------

ZUUL_VERDICTS = """
import json, sys
from zuul import change_matcher as cm
from zuul.lib.re2util import ZuulRegex

class Change:
    def __init__(self, files):
        self.files = files

cases = json.load(sys.stdin)
out = []
for case in cases:
    files = [cm.FileMatcher(ZuulRegex(r)) for r in case["files"]]
    irrelevant = [cm.FileMatcher(ZuulRegex(r)) for r in case["irrelevant"]]
    change = Change(case["changed"])
    run = True
    # model.Job.changeMatchesFiles: files must match, irrelevant-files must not.
    if files and not cm.MatchAnyFiles(files).matches(change):
        run = False
    if irrelevant and cm.MatchAllFiles(irrelevant).matches(change):
        run = False
    out.append(run)
print(json.dumps(out))
"""


def test_the_plan_agrees_with_zuuls_own_matchers():
    python = os.environ.get("DEVINFRA_ZUUL_PYTHON")
    if not python:
        pytest.skip("set DEVINFRA_ZUUL_PYTHON to the python of a venv with zuul==14.3.0 to compare "
                    "the plan's file matching with Zuul's own change_matcher")
    # Changed-file sets: every commit of this repository, ...
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--format=tformat:@", "--name-only", "-n", "200"],
                         capture_output=True, text=True, check=True).stdout
    changes = [[f for f in chunk.splitlines() if f] for chunk in log.split("@")]
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    # ... each tracked file alone, and edge cases (no files: a timer event).
    changes = ([c for c in changes if c] + [[f] for f in tracked]
               + [[], ["README.md"], ["roles/x/README.md", "roles/zuul/x"]])
    jobs, projects = plan.load_zuul_dir(ZUUL_D)
    entries = plan.pipeline_jobs(projects, "deploy", jobs) + plan.pipeline_jobs(projects, "check", jobs)
    cases, ours = [], []
    for name, attrs in entries:
        for changed in changes:
            cases.append({"files": attrs.get("files", []), "irrelevant": attrs.get("irrelevant-files", []),
                          "changed": changed})
            ours.append(plan.selects(attrs, changed, name)[0])
    run = subprocess.run([python, "-I", "-c", ZUUL_VERDICTS], input=json.dumps(cases),
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = json.loads(run.stdout)
    differ = [(c, o) for c, o, t in zip(cases, ours, theirs, strict=True) if o != t]
    assert not differ, differ[:5]
    assert len(tracked) > 100 and any(ours) and not all(ours)


def test_without_google_re2_a_deploy_by_playbook_still_plans_and_matching_says_what_is_missing(monkeypatch):
    """A bastion whose python predates google-re2 deploys service-bastion.yaml
    (which installs it); only matching file regexes needs it, and says so."""
    from devinfra import deploy

    monkeypatch.setattr(plan, "_HAVE_RE2", False)
    monkeypatch.setitem(sys.modules, "re2", None)  # import re2 -> ImportError
    plan._regex.cache_clear()
    try:
        steps = deploy.steps_for_playbooks(ZUUL_D, ["service-bastion.yaml"])
        assert [s.playbook for s in steps] == ["service-bastion.yaml"]
        with pytest.raises(plan.PlanError, match="google-re2 is not installed for .*service-bastion.yaml"):
            plan.plan(ZUUL_D, ["roles/bastion/README.md"], "deploy")
    finally:
        plan._regex.cache_clear()
