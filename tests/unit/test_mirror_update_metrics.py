"""mirror-update's node exporter textfile (roles/mirror_update).

mirror-update-metrics records one repository's result and rewrites the
textfile of every repository from its state file; mirror-update (the
role's template, rendered here with Ansible's filters) calls it after each
repository. The script runs against stand-ins for reprepro, gpg and gpgv on
PATH: a repository whose update succeeds (nothing new upstream) and one
without configuration, which fails. molecule/mirror_update runs it with the
real tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import prometheus_textfile
import pytest

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "roles" / "mirror_update" / "files" / "mirror-update-metrics"
TEMPLATE = ROOT / "roles" / "mirror_update" / "templates" / "mirror-update.j2"


def parse(text: str) -> dict[str, dict[str, float]]:
    """{metric: {repository: value}}: every sample has the repository label alone."""
    samples = prometheus_textfile.parse(text)
    found: dict[str, dict[str, float]] = {}
    for name, by_labels in samples.items():
        for labels, number in by_labels.items():
            assert {key for key, _ in labels} == {"repository"}, (name, labels)
            found.setdefault(name, {})[dict(labels)["repository"]] = number
    return found


@pytest.fixture
def helper(tmp_path):
    state = tmp_path / "metrics.json"
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    textfile = textfile_dir / "mirror_update.prom"

    def run(*args):
        command = [sys.executable, str(HELPER), "--state", str(state), "--textfile", str(textfile), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        return done, (parse(textfile.read_text()) if textfile.exists() else None)

    run.state, run.textfile = state, textfile
    return run


def test_a_success_sets_the_last_success_and_run(helper):
    before = time.time()
    done, samples = helper("record", "debian-extra", "success")
    assert done.returncode == 0, done.stderr
    success = samples["mirror_update_last_success_timestamp_seconds"]["debian-extra"]
    assert before <= success <= time.time() + 1
    assert samples["mirror_update_last_run_timestamp_seconds"]["debian-extra"] == (
        samples["mirror_update_last_success_timestamp_seconds"]["debian-extra"])
    assert samples["mirror_update_last_run_failed"]["debian-extra"] == 0


def test_a_failure_keeps_the_last_success(helper):
    _, first = helper("record", "node-tools", "success")
    time.sleep(0.01)
    _, samples = helper("record", "node-tools", "failure")
    assert samples["mirror_update_last_run_failed"]["node-tools"] == 1
    assert samples["mirror_update_last_success_timestamp_seconds"]["node-tools"] == (
        first["mirror_update_last_success_timestamp_seconds"]["node-tools"])
    assert samples["mirror_update_last_run_timestamp_seconds"]["node-tools"] > (
        first["mirror_update_last_run_timestamp_seconds"]["node-tools"])


def test_a_repository_that_never_succeeded_has_no_success_time(helper):
    _, samples = helper("record", "node-tools", "failure")
    assert "node-tools" not in samples.get("mirror_update_last_success_timestamp_seconds", {})
    assert samples["mirror_update_last_run_failed"]["node-tools"] == 1


def test_the_other_repositories_keep_their_values(helper):
    _, first = helper("record", "alpha", "success")
    helper("record", "beta", "failure")
    _, samples = helper("record", "gamma", "success")
    assert set(samples["mirror_update_last_run_timestamp_seconds"]) == {"alpha", "beta", "gamma"}
    assert samples["mirror_update_last_success_timestamp_seconds"]["alpha"] == (
        first["mirror_update_last_success_timestamp_seconds"]["alpha"])
    assert samples["mirror_update_last_run_failed"]["beta"] == 1


def test_repositories_no_longer_configured_are_forgotten(helper):
    helper("record", "alpha", "success")
    helper("record", "old", "success")
    _, samples = helper("--keep", "alpha", "--keep", "beta", "record", "beta", "success")
    assert set(samples["mirror_update_last_run_timestamp_seconds"]) == {"alpha", "beta"}
    assert set(json.loads(helper.state.read_text())) == {"alpha", "beta"}


def test_write_rewrites_the_textfile_from_the_state(helper):
    helper("record", "alpha", "success")
    helper.textfile.unlink()
    done, samples = helper("write")
    assert done.returncode == 0
    assert "alpha" in samples["mirror_update_last_success_timestamp_seconds"]


@pytest.mark.parametrize("state", ["not json", "[1, 2]", '{"Bad Name": {}, "ok": "no"}'])
def test_an_unreadable_state_starts_afresh(helper, state):
    helper.state.write_text(state)
    done, samples = helper("record", "alpha", "success")
    assert done.returncode == 0
    assert set(samples["mirror_update_last_run_timestamp_seconds"]) == {"alpha"}


def test_files_are_replaced_whole_and_readable_by_the_exporter(helper):
    helper.textfile.write_text("stale\n")
    helper("record", "alpha", "success")
    assert helper.textfile.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in helper.textfile.parent.iterdir()] == ["mirror_update.prom"]


@pytest.mark.parametrize("args", [["record", "Bad Name", "success"], ["record", "alpha", "maybe"],
                                  ["--keep", "../x", "write"], []])
def test_bad_arguments_exit_2(helper, args):
    done, _ = helper(*args)
    assert done.returncode == 2


def test_a_missing_directory_is_reported_without_a_traceback(tmp_path):
    command = [sys.executable, str(HELPER), "--state", str(tmp_path / "metrics.json"),
               "--textfile", str(tmp_path / "no" / "mirror_update.prom"), "record", "a", "success"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot write the metrics" in done.stderr and "Traceback" not in done.stderr


# --- mirror-update itself, with stand-ins for reprepro, gpg and gpgv -----------------------------------

PACKAGES = "Package: pkg-a\nVersion: 1.0\nArchitecture: all\n"

FAKE_REPREPRO = r"""#!/bin/bash
# reprepro -b BASE [...] update|export|list SUITE: a suite trixie with one package, pkg-a.
base=""
while [ $# -gt 0 ]; do
  case $1 in
    -b) base=$2; shift 2 ;;
    update) python3 "$FAKE_DISTS" "$base/staging/dists"; exit 0 ;;
    export) exit 0 ;;
    list) echo pkg-a; exit 0 ;;
    *) shift ;;
  esac
done
"""

# Writes trixie's Packages and a Release (and InRelease) with its checksum under the directory argv[1].
MAKE_DISTS = """import hashlib, pathlib, sys
dists = pathlib.Path(sys.argv[1]) / "trixie"
packages = dists / "main" / "binary-amd64" / "Packages"
packages.parent.mkdir(parents=True, exist_ok=True)
packages.write_text(PACKAGES)
data = packages.read_bytes()
digest = hashlib.sha256(data).hexdigest()
release = f"Codename: trixie\\nSHA256:\\n {digest} {len(data)} main/binary-amd64/Packages\\n"
(dists / "Release").write_text(release)
(dists / "InRelease").write_text(release)
""".replace("PACKAGES", repr(PACKAGES))


def render_update_script(tmp_path: Path, names: list[str]) -> Path:
    from ansible.plugins.filter import core

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters.update(core.FilterModule().filters())
    text = environment.from_string(TEMPLATE.read_text()).render(
        ansible_managed="managed", mirror_update_work_dir=str(tmp_path / "work"),
        mirror_update_releases_dir=str(tmp_path / "releases"),
        mirror_update_publish_dir=str(tmp_path / "pub"),
        mirror_update_keep_releases=3, mirror_update_lock_file=str(tmp_path / "mirror-update.lock"),
        mirror_update_repositories=[{"name": n} for n in names], mirror_update_metrics_script=str(HELPER),
        mirror_update_textfile_dir=str(tmp_path / "textfile"))
    script = tmp_path / "mirror-update"
    script.write_text(text)
    script.chmod(0o755)
    return script


@pytest.fixture
def updater(tmp_path):
    """mirror-update for `alpha` (configured, nothing new upstream) and `beta` (no configuration)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"reprepro": FAKE_REPREPRO, "gpgv": "#!/bin/sh\nexit 0\n",
             # --show-keys gives the pinned fingerprint; --import succeeds.
             "gpg": "#!/bin/sh\necho 'fpr:::::::::0123456789ABCDEF0123456789ABCDEF01234567:'\n"}
    for name, text in stubs.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "make_dists.py").write_text(MAKE_DISTS)
    conf = tmp_path / "work" / "repos" / "alpha" / "conf"
    conf.mkdir(parents=True)
    (conf / "distributions").write_text("Codename: trixie\nComponents: main\n")
    (conf / "packages.list").write_text("pkg-a install\n")
    (conf / "upstream.fpr").write_text("0123456789ABCDEF0123456789ABCDEF01234567\n")
    (conf / "upstream.asc").write_text("key\n")
    (tmp_path / "work" / "signing-key.gpg").write_text("key\n")
    (tmp_path / "textfile").mkdir()
    # The published release already holds what upstream has: the update finds nothing new.
    release = tmp_path / "releases" / "alpha" / "20260101T000000.000Z"
    subprocess.run([sys.executable, str(tmp_path / "make_dists.py"), str(release / "dists")], check=True)
    (release / "pool").mkdir()
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "alpha").symlink_to(release)
    script = render_update_script(tmp_path, ["alpha", "beta"])
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_DISTS=str(tmp_path / "make_dists.py"))
    env.pop("JOURNAL_STREAM", None)

    def run(*names):
        done = subprocess.run(["bash", str(script), *names], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        textfile = tmp_path / "textfile" / "mirror_update.prom"
        return done, (parse(textfile.read_text()) if textfile.exists() else None)

    return run


def test_mirror_update_records_each_repository_after_its_update(updater):
    before = time.time()
    done, samples = updater()
    assert done.returncode == 1, done.stderr  # beta failed
    assert "alpha: no change" in done.stderr
    assert "beta: update FAILED" in done.stderr
    assert samples["mirror_update_last_success_timestamp_seconds"]["alpha"] >= before
    assert "beta" not in samples["mirror_update_last_success_timestamp_seconds"]
    assert samples["mirror_update_last_run_failed"] == {"alpha": 0, "beta": 1}
    assert samples["mirror_update_last_run_timestamp_seconds"]["beta"] >= before


def test_updating_one_repository_keeps_the_others_values(updater):
    _, first = updater()
    time.sleep(0.01)
    done, samples = updater("alpha")
    assert done.returncode == 0, done.stderr
    assert samples["mirror_update_last_success_timestamp_seconds"]["alpha"] > (
        first["mirror_update_last_success_timestamp_seconds"]["alpha"])
    assert samples["mirror_update_last_run_timestamp_seconds"]["beta"] == (
        first["mirror_update_last_run_timestamp_seconds"]["beta"])
    assert samples["mirror_update_last_run_failed"]["beta"] == 1


def test_an_unwritable_textfile_does_not_fail_the_update(updater, tmp_path):
    (tmp_path / "textfile").rmdir()
    done, samples = updater("alpha")
    assert done.returncode == 0, done.stderr
    assert samples is None
    assert "could not write the metrics" in done.stderr


def test_a_locked_run_records_nothing(updater, tmp_path):
    lock = tmp_path / "mirror-update.lock"
    lock.touch()
    holder = subprocess.Popen(["flock", "--exclusive", str(lock), "sleep", "30"])
    try:
        for _ in range(50):
            if subprocess.run(["flock", "--nonblock", str(lock), "true"], check=False).returncode:
                break
            time.sleep(0.1)
        done, samples = updater()
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 75
    assert samples is None


def test_the_rendered_script_is_valid_bash(tmp_path):
    script = render_update_script(tmp_path, ["alpha"])
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
