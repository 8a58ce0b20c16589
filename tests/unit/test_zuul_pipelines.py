"""Production's Gerrit pipelines and the AIO's Pagure pipelines, from one model.

zuul-config/pipeline-model.yaml says what check, gate, deploy and periodic
mean; plugins/filter/zuul_pipelines.py renders it per driver. These tests
prove the committed production file is the model's rendering, that both
renderings carry every meaning of the model (or declare why a driver cannot),
and that Zuul's own configuration loader accepts both.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))

from zuul_pipelines import (  # noqa: E402
    MEANINGS,
    MEANINGS_NOT_AVAILABLE,
    REVIEW_JOB,
    REVIEW_PIPELINE,
    FilterModule,
    pipelines,
)

MODEL = yaml.safe_load((ROOT / "zuul-config" / "pipeline-model.yaml").read_text())
SHARED_KEYS = ("manager", "precedence", "post-review", "supercedes", "window-floor", "window-increase-factor")


def by_name(rendered):
    return {p["name"]: p for p in rendered}


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"devinfra_zuul_pipelines", "devinfra_zuul_aio_project",
                                             "devinfra_zuul_aio_skipped"}


def test_production_pipelines_file_is_the_model_rendered_for_gerrit():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "render-pipelines.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    committed_file = ROOT / "zuul-config" / "zuul.d" / "pipelines.yaml"
    committed = [o["pipeline"] for o in yaml.safe_load(committed_file.read_text())]
    assert committed == pipelines(MODEL, "gerrit", "gerrit", "zuul")


def test_both_drivers_render_every_pipeline_of_the_model_alike():
    gerrit, pagure = by_name(pipelines(MODEL, "gerrit")), by_name(pipelines(MODEL, "pagure"))
    for pipeline in MODEL:
        name = pipeline["name"]
        for key in SHARED_KEYS:
            assert gerrit[name].get(key) == pagure[name].get(key) == pipeline.get(key), (name, key)
    assert set(pagure) - set(gerrit) == {REVIEW_PIPELINE}


def test_every_meaning_is_rendered_or_declared_unavailable():
    used = {m for p in MODEL for key in ("events", "require") for m in p.get(key, [])}
    assert used <= set(MEANINGS)
    gaps = MEANINGS_NOT_AVAILABLE["pagure"]
    assert set(gaps) <= used and all(reason for reason in gaps.values())
    assert "gerrit" not in MEANINGS_NOT_AVAILABLE


def test_gerrit_gate_needs_a_core_approval_zuuls_vote_and_no_veto():
    gate = by_name(pipelines(MODEL, "gerrit"))["gate"]
    assert gate["require"]["gerrit"]["approval"] == [
        {"Verified": [1, 2], "username": "zuul"}, {"Workflow": 1}, {"Code-Review": 2}]
    assert gate["reject"]["gerrit"]["approval"] == [{"Code-Review": [-2]}]
    assert gate["success"]["gerrit"] == {"Verified": 2, "submit": True}


def test_pagure_gate_is_entered_only_through_the_review_policy():
    rendered = by_name(pipelines(MODEL, "pagure"))
    gate, review = rendered["gate"], rendered[REVIEW_PIPELINE]
    # No vote triggers the gate: a non-core :thumbsup: must not start it.
    assert "trigger" not in gate
    assert gate["require"]["pagure"] == {"open": True, "status": "success"}
    assert gate["success"]["pagure"] == {"status": "success", "merge": True}
    # No "pending" flag at the start: Zuul merges only while its last flag says success.
    assert gate["start"]["pagure"] == {"comment": False}
    events = [(t["event"], t["action"]) for t in review["trigger"]["pagure"]]
    assert events == [("pg_pull_request_review", ["thumbsup", "thumbsdown"]), ("pg_pull_request", "status")]
    assert REVIEW_JOB in review["description"]


def test_pagure_deploys_merged_pull_requests_only():
    deploy = by_name(pipelines(MODEL, "pagure"))["deploy"]
    assert deploy["trigger"]["pagure"] == [{"event": "pg_pull_request", "action": "closed"}]
    assert deploy["require"]["pagure"] == {"merged": True}


@pytest.mark.parametrize(("change", "message"), [
    ({"events": ["approved-by-anyone"]}, "events: `approved-by-anyone` is not a meaning"),
    ({"colour": "blue"}, "unknown key(s) colour"),
])
def test_a_bad_model_is_refused_naming_the_pipeline(change, message):
    model = [dict(MODEL[0], **change)]
    with pytest.raises(Exception) as error:
        pipelines(model, "gerrit")
    assert f"pipeline model: [0] (check): {message}" in str(error.value)


def test_a_meaning_a_driver_cannot_express_fails_the_rendering():
    model = [dict(MODEL[1], manager="independent")]  # core approval outside a gating pipeline
    with pytest.raises(Exception) as error:
        pipelines(model, "pagure")
    assert "gate: `core-approved` is not an event Pagure can trigger on" in str(error.value)


ZUUL_PIPELINES = r'''
import configparser, json, sys
import yaml
import zuul.driver.bubblewrap
from zuul import configloader, model
from zuul.lib.connections import ConnectionRegistry

zuul.driver.bubblewrap.BubblewrapDriver._parse_bwrap_version = lambda self: (0, 0, 0)
data = json.load(sys.stdin)
conf = configparser.ConfigParser()
for name, settings in data["connections"].items():
    conf[f"connection {name}"] = settings
registry = ConnectionRegistry()
registry.configure(conf, sources=True, triggers=True, reporters=True)
context = model.SourceContext("review/devinfra/zuul-config", "devinfra/zuul-config", data["source"],
                              "master", "zuul.d/pipelines.yaml")
unparsed = model.UnparsedConfig()
unparsed.extend(configloader.safe_load_yaml(yaml.safe_dump(data["objects"]), context))
pcontext = configloader.ParseContext(registry, None, None, None)
parsed = configloader.TenantParser.parseConfig(None, unparsed, pcontext)
errors = [str(getattr(e, "error", e)) for e in pcontext.error_list + list(parsed.pipeline_errors)]
if errors:
    sys.exit("Zuul refused the pipelines: " + "; ".join(errors))
print(json.dumps({p.name: {"manager": p.manager_name, "triggers": len(p.event_filters)}
                  for p in parsed.pipelines}))
'''

CONNECTIONS = {
    "gerrit": {"gerrit": {"driver": "gerrit", "server": "review.example.org", "user": "zuul",
                          "sshkey": "/var/lib/zuul/.ssh/id_ed25519", "baseurl": "https://review.example.org"}},
    "pagure": {"pagure": {"driver": "pagure", "server": "review01", "baseurl": "https://review01",
                          "api_token": "X" * 64}},
}


@pytest.mark.parametrize("driver", ["gerrit", "pagure"])
def test_zuul_itself_accepts_both_renderings(tmp_path, driver):
    python = os.environ.get("DEVINFRA_ZUUL_PYTHON")
    if not python:
        pytest.skip("set DEVINFRA_ZUUL_PYTHON to the python of a venv with zuul==14.3.0 to parse the "
                    "pipelines with Zuul's own loader")
    objects = [{"pipeline": p} for p in pipelines(MODEL, driver)]
    run = subprocess.run([python, "-I", "-c", ZUUL_PIPELINES], cwd=tmp_path, capture_output=True, text=True,
                         input=json.dumps({"objects": objects, "connections": CONNECTIONS[driver],
                                           "source": driver}),
                         env=dict(os.environ, HOME=str(tmp_path)), check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    parsed = json.loads(run.stdout)
    assert set(parsed) == {p["pipeline"]["name"] for p in objects}
    assert parsed["gate"]["manager"] == "dependent"
    assert parsed["gate"]["triggers"] == (0 if driver == "pagure" else 2)


def zuul_d():
    return [o for path in sorted((ROOT / "zuul.d").glob("*.yaml")) for o in yaml.safe_load(path.read_text())]


def test_the_aio_runs_every_job_of_the_repository_but_the_few_that_say_why_not():
    from zuul_pipelines import aio_project, aio_skipped

    skipped = aio_skipped(zuul_d())
    # Two declarations: molecule's parent job (every scenario inherits it) and the AIO job.
    declared = {name for name in skipped if not name.startswith("devinfra-molecule-")}
    assert declared == {"devinfra-molecule", "devinfra-aio"}
    assert all("Docker" in reason for reason in skipped.values())
    stanza = aio_project(zuul_d(), "devinfra/system-config", ["check", "gate", "deploy", "periodic"])
    assert stanza["check"]["jobs"] == stanza["gate"]["jobs"] == ["devinfra-lint", "devinfra-unit"]
    deploys = [j for j in stanza["deploy"]["jobs"]]
    assert "deploy-pagure" in deploys and deploys == stanza["periodic"]["jobs"]
