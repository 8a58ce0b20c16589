"""devinfra status-page: the deploy status page and metrics, from the bastion's deploy history."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devinfra import cli, status

ROOT = Path(__file__).resolve().parents[2]
NOW = 1700010000
SCRIPT_SUBJECT = "Merge #13 `<script>alert(1)</script> & \"quotes\"`"


def record(playbook, status, commit, finished_at, **extra):
    """A history record as devinfra-deploy-merged writes it."""
    subject = extra.pop("subject", f"Update {playbook}")
    return {"playbook": playbook, "job": f"deploy-{playbook}", "status": status,
            "reason": "exit 2" if status == "failed" else "", "seconds": 30.0,
            "commit": commit * 40, "subject": subject, "change": subject,
            "merged_at": finished_at - 100, "started_at": finished_at - 30.0,
            "finished_at": finished_at, "merge_to_applied": 100.0, **extra}


# Oldest first: etherpad applied a, then failed at b; zuul applied c, the
# change of the <script> subject (a Gerrit link); base never ran ok; the
# mirror's one run has no merge time.
RECORDS = [
    record("service-etherpad.yaml", "ok", "a", 1700000000),
    record("service-zuul.yaml", "ok", "c", 1700000100, subject=SCRIPT_SUBJECT, change="#13 <script>",
           change_url="https://review.example.org/c/system-config/+/13"),
    record("service-etherpad.yaml", "failed", "b", 1700000200),
    record("base.yaml", "skipped", "d", 1700000300, reason="deploy-x failed"),
    record("service-mirror.yaml", "ok", "e", 1700000400, merged_at=None, merge_to_applied=None,
           change_url="javascript:alert(1)"),
]


def write_history(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def status_page(*argv):
    return subprocess.run([sys.executable, "-m", "devinfra", "status-page", *map(str, argv)],
                          cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture
def made(tmp_path):
    """The page, deploys.json and textfile of RECORDS (written in a shuffled order)."""
    history = write_history(tmp_path / "history.jsonl", [RECORDS[i] for i in (2, 0, 4, 1, 3)])
    records = status.load_history(history)
    out, textfile = tmp_path / "status", tmp_path / "metrics" / "devinfra-deploy.prom"
    status.write(records, out=out, textfile_path=textfile, now=NOW)
    return out, textfile


def section(page, start, end):
    return page[page.index(start):page.index(end, page.index(start))]


def rows(table):
    return re.findall(r"<tr><td>.*?</tr>", table, re.S)


def test_the_history_is_read_oldest_first(tmp_path):
    history = write_history(tmp_path / "history.jsonl", list(reversed(RECORDS)))
    assert status.load_history(history) == RECORDS


def test_one_row_per_service_with_its_deployed_commit_and_a_failed_last_run(made):
    out, _ = made
    page = (out / "index.html").read_text()
    assert "<title>devinfra deploys</title>" in page and "Generated 2023-11-15T01:00:00Z" in page
    services = rows(section(page, '<table class="services">', "</table>"))
    assert [re.search(r"<strong>(.*?)</strong>", r)[1] for r in services] == [
        "base.yaml", "service-etherpad.yaml", "service-mirror.yaml", "service-zuul.yaml"]
    base, etherpad, mirror, zuul = services
    # The deployed commit is a's, applied at its run; its last run failed at b.
    assert f'<code title="{"a" * 40}">{"a" * 10}</code>' in etherpad
    assert "2023-11-14T22:13:20Z" in etherpad
    assert (f'last run FAILED at <code title="{"b" * 40}">{"b" * 10}</code> 2023-11-14T22:16:40Z: '
            "exit 2") in etherpad
    assert '<span class="status failed">failed</span> <span class="reason">exit 2</span>' in etherpad
    assert "never applied" in base and "last run SKIPPED" in base and "deploy-x failed" in base
    assert '<span class="status ok">ok</span>' in zuul and "last run" not in zuul
    assert '<a href="https://review.example.org/c/system-config/+/13" title="' in zuul
    assert ">#13 &lt;script&gt;</a>" in zuul
    assert "<td>30.0</td><td>100.0</td>" in zuul
    # Merge time unknown: a dash. Not a web link: no link.
    assert "<td>30.0</td><td>\u2014</td>" in mirror
    assert "javascript" not in page


def test_every_text_of_the_history_is_escaped(made):
    out, _ = made
    page = (out / "index.html").read_text()
    assert "<script" not in page and "alert(1)</" not in page
    # The change as the text, the commit's subject as its title.
    assert ">#13 &lt;script&gt;</a>" in page
    assert 'title="Merge #13 `&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;`"' in page


def test_a_record_without_a_change_shows_its_subject_escaped():
    unnamed = dict(record("service-zuul.yaml", "ok", "c", 1700000100, subject=SCRIPT_SUBJECT), change="")
    page = status.page([unnamed], NOW)
    assert "<script" not in page
    assert ">Merge #13 `&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;`</span>" in page


def test_the_page_is_self_contained(made):
    out, _ = made
    page = (out / "index.html").read_text()
    assert "<style>" in page
    for outside in ("<script", "<link", "src=", "url(", "@import"):
        assert outside not in page, outside
    assert "default-src 'none'" in page


def test_the_plot_has_one_mark_per_run_failed_in_red(made):
    out, _ = made
    page = (out / "index.html").read_text()
    svg = section(page, "<svg", "</svg>")
    marks = re.findall(r'<(circle|rect) class="run (\w+)"[^>]*fill="([^"]+)"', svg)
    assert [kind for _, kind, _ in marks] == [r["status"] for r in RECORDS]
    assert {fill for _, kind, fill in marks if kind == "failed"} == {status.COLOURS["failed"]}
    # The mirror's run, merge time unknown, is a square at its run's seconds.
    assert marks[4][0] == "rect" and [m[0] for m in marks[:4]] == ["circle"] * 4
    assert ">seconds</text>" in svg and "run, oldest to newest" in svg
    for legend in ("ok", "failed", "skipped", "seconds from merge to applied",
                   "run seconds (merge time unknown)"):
        assert f">{legend}</text>" in svg


def test_the_last_runs_newest_first(made):
    out, _ = made
    page = (out / "index.html").read_text()
    assert "<h2>Last 5 deploy(s)</h2>" in page
    runs = rows(section(page, '<table class="runs">', "</table>"))
    assert [re.search(r"<code title=\"(\w)", r)[1] for r in runs] == ["e", "d", "b", "c", "a"]


def test_last_limits_the_plot_and_the_table(tmp_path):
    history = write_history(tmp_path / "history.jsonl", RECORDS)
    proc = status_page("--history", history, "--out", tmp_path / "out", "--last", 2)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count('class="run ') == 2
    assert len(rows(section(page, '<table class="runs">', "</table>"))) == 2
    # Every service still has its row.
    assert len(rows(section(page, '<table class="services">', "</table>"))) == 4
    assert [r["commit"][0] for r in json.loads((tmp_path / "out" / "deploys.json").read_text())
            ["records"]] == ["e", "d"]


def test_deploys_json_holds_what_the_page_shows(made):
    out, _ = made
    data = json.loads((out / "deploys.json").read_text())
    assert data["generated_at"] == "2023-11-15T01:00:00Z"
    by_playbook = {s["playbook"]: s for s in data["services"]}
    assert by_playbook["service-etherpad.yaml"] == {
        "playbook": "service-etherpad.yaml", "deployed": RECORDS[0], "last_run": RECORDS[2]}
    assert by_playbook["base.yaml"]["deployed"] is None
    assert data["records"] == list(reversed(RECORDS))


def test_the_files_are_written_whole_and_readable(made):
    out, textfile = made
    assert sorted(p.name for p in out.iterdir()) == ["deploys.json", "index.html"]
    assert [p.name for p in textfile.parent.iterdir()] == [textfile.name]
    for path in (out / "index.html", out / "deploys.json", textfile):
        assert path.stat().st_mode & 0o777 == 0o644


def test_the_textfile_metrics(made):
    _, textfile = made
    assert textfile.read_text() == """\
# HELP devinfra_deploy_last_run_timestamp_seconds When the playbook's last deploy run finished (Unix time).
# TYPE devinfra_deploy_last_run_timestamp_seconds gauge
devinfra_deploy_last_run_timestamp_seconds{playbook="base.yaml"} 1700000300
devinfra_deploy_last_run_timestamp_seconds{playbook="service-etherpad.yaml"} 1700000200
devinfra_deploy_last_run_timestamp_seconds{playbook="service-mirror.yaml"} 1700000400
devinfra_deploy_last_run_timestamp_seconds{playbook="service-zuul.yaml"} 1700000100
# HELP devinfra_deploy_last_success_timestamp_seconds When the playbook's last successful deploy run \
finished (Unix time).
# TYPE devinfra_deploy_last_success_timestamp_seconds gauge
devinfra_deploy_last_success_timestamp_seconds{playbook="service-etherpad.yaml"} 1700000000
devinfra_deploy_last_success_timestamp_seconds{playbook="service-mirror.yaml"} 1700000400
devinfra_deploy_last_success_timestamp_seconds{playbook="service-zuul.yaml"} 1700000100
# HELP devinfra_deploy_last_failed 1 when the playbook's last deploy run did not succeed (failed or \
skipped), else 0.
# TYPE devinfra_deploy_last_failed gauge
devinfra_deploy_last_failed{playbook="base.yaml"} 1
devinfra_deploy_last_failed{playbook="service-etherpad.yaml"} 1
devinfra_deploy_last_failed{playbook="service-mirror.yaml"} 0
devinfra_deploy_last_failed{playbook="service-zuul.yaml"} 0
# HELP devinfra_deploy_last_merge_to_applied_seconds Seconds from the merge of the playbook's deployed \
commit to the end of its successful run.
# TYPE devinfra_deploy_last_merge_to_applied_seconds gauge
devinfra_deploy_last_merge_to_applied_seconds{playbook="service-etherpad.yaml"} 100
devinfra_deploy_last_merge_to_applied_seconds{playbook="service-zuul.yaml"} 100
"""


def test_label_values_are_escaped_and_fractions_kept():
    text = status.textfile([record('odd"name\\with\nall', "ok", "a", 1700000000.5)])
    assert 'devinfra_deploy_last_run_timestamp_seconds{playbook="odd\\"name\\\\with\\nall"} 1700000000.5' \
        in text.splitlines()


def test_an_empty_history_makes_an_empty_page(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("")
    proc = status_page("--history", history, "--out", tmp_path / "out", "--textfile", tmp_path / "m.prom")
    assert proc.returncode == 0, proc.stderr
    assert "No deploy recorded yet." in (tmp_path / "out" / "index.html").read_text()
    assert "<svg" not in (tmp_path / "out" / "index.html").read_text()
    assert "devinfra_deploy_last_failed{" not in (tmp_path / "m.prom").read_text()


def test_the_command_says_what_it_wrote(tmp_path, capsys):
    history = write_history(tmp_path / "history.jsonl", RECORDS)
    assert cli.main(["status-page", "--history", str(history), "--textfile", str(tmp_path / "m.prom")]) == 0
    assert capsys.readouterr().out == f"status-page: 5 run(s) of 4 service(s): {tmp_path / 'm.prom'}\n"


@pytest.mark.parametrize(("lines", "message"), [
    (['{"playbook": "base.yaml", "status": "ok", "finished_at": 1}', "", "{not json"],
     "history.jsonl, line 3: not JSON"),
    (['{"playbook": "base.yaml", "status": "ok", "finished_at": 1}', "[1, 2]"],
     "history.jsonl, line 2: not a JSON object"),
    (['{"status": "ok", "finished_at": 1}'], "history.jsonl, line 1: the record has no valid 'playbook'"),
    (['{"playbook": "base.yaml", "status": "ok", "finished_at": "today"}'],
     "history.jsonl, line 1: the record has no valid 'finished_at'"),
    (['{"playbook": "base.yaml", "status": "ok", "finished_at": NaN}'],
     "history.jsonl, line 1: the record has no valid 'finished_at'"),
])
def test_a_bad_line_fails_naming_the_file_and_line(tmp_path, lines, message):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(lines) + "\n")
    proc = status_page("--history", history, "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"devinfra: error: {tmp_path / message}")
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_input_and_output_fail_in_one_line(tmp_path):
    history = write_history(tmp_path / "history.jsonl", RECORDS)
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["--history", tmp_path / "missing.jsonl", "--out", tmp_path / "out"],
         f"devinfra: error: cannot read the deploy history {tmp_path / 'missing.jsonl'}: "
         "No such file or directory"),
        (["--history", tmp_path, "--out", tmp_path / "out"],
         f"devinfra: error: cannot read the deploy history {tmp_path}: Is a directory"),
        (["--history", history, "--out", blocker / "status"],
         f"devinfra: error: cannot write {blocker / 'status' / 'index.html'}: Not a directory"),
        (["--history", history, "--textfile", blocker / "m.prom"],
         f"devinfra: error: cannot write {blocker / 'm.prom'}: {blocker} is not a directory"),
        (["--history", history], "devinfra: error: give --out DIR, --textfile PATH or both"),
    ]
    for argv, message in cases:
        proc = status_page(*argv)
        assert (proc.returncode, proc.stderr) == (1, message + "\n"), argv


def test_last_must_be_a_positive_number(tmp_path):
    proc = status_page("--history", tmp_path / "h", "--out", tmp_path, "--last", "0")
    assert proc.returncode == 2 and "'0' is not a whole number of 1 or more" in proc.stderr
    assert "Traceback" not in proc.stderr
