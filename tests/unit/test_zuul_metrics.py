"""zuul-metrics (roles/zuul): executors, event queues and node requests as a node exporter textfile.

The script is loaded as a module and given a stand-in ZooKeeper reader (the
executors' component records, as Zuul 14 writes them under
/zuul/components/executor) and a stand-in zuul-web on 127.0.0.1 that
answers /api/tenants, /api/tenant/<t>/status and /nodeset-requests in the
shapes of zuul/web/__init__.py (formatStatus, NodesetRequestConverter). Run
as a program it must never print a traceback; with DEVINFRA_ZUUL_PYTHON
(a python with zuul==14.3.0, hence kazoo) it also meets a ZooKeeper that
does not answer through the real kazoo. molecule/zuul runs it on the
platform.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path

import jinja2
import pytest
from prometheus_textfile import parse, value

from tests.loopback_http import LoopbackService

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "zuul" / "files" / "zuul-metrics"
TEMPLATE = ROOT / "roles" / "zuul" / "templates" / "zuul.conf.j2"
ZUUL_PYTHON = os.environ.get("DEVINFRA_ZUUL_PYTHON", "")
NOW = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.UTC).timestamp()


def load():
    loader = SourceFileLoader("zuul_metrics", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while they are made.
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module


zuul_metrics = load()


def executor(hostname, state="running", accepting=True):
    """A component record as zuul.zk.components.ExecutorComponent writes it."""
    return {"hostname": hostname, "state": state, "kind": "executor", "version": "14.3.0", "model_api": 33,
            "accepting_work": accepting, "zone": None, "allow_unzoned": False, "process_merge_jobs": True}


def pipeline(name, trigger=0, management=0, result=0):
    return {"name": name, "description": "", "change_queues": [], "triggers": [],
            "trigger_events": trigger, "management_events": management, "result_events": result}


def status(trigger=0, management=0, pipelines=()):
    return {"zuul_version": "14.3.0", "trigger_event_queue": {"length": trigger},
            "management_event_queue": {"length": management}, "connection_event_queues": {},
            "state": {}, "last_reconfigured": 1796400000000, "pipelines": list(pipelines)}


def nodeset_request(state, at):
    return {"uuid": "r" + at, "state": state, "pipeline_name": "check", "job_name": "smoke",
            "labels": ["debian-trixie"], "priority": 200, "request_time": at, "relative_priority": 0,
            "provider_node_data": [], "is_locked": False, "lock_holder": None}


class FakeZuulWeb(LoopbackService):
    thread_name = "fake-zuul-web"

    def __init__(self):
        self.tenants = {
            "devinfra": {
                "status": status(trigger=2, management=1, pipelines=[
                    pipeline("check", trigger=3, management=0, result=1),
                    pipeline("gate", trigger=0, management=2, result=0),
                    # A pipeline whose summary Zuul has not written yet.
                    {"trigger_events": 0, "management_events": 0, "result_events": 0}]),
                "nodeset-requests": [nodeset_request("requested", "2026-12-05T11:50:00"),
                                     nodeset_request("accepted", "2026-12-05T11:58:30"),
                                     nodeset_request("requested", "2026-12-05T11:59:00")],
            },
            "sandbox": {"status": status(), "nodeset-requests": []},
        }
        self.broken: dict[str, int] = {}
        self.paths: list[str] = []

    def respond(self, method, target, headers, raw):
        self.paths.append(target)
        if target in self.broken:
            return self.broken[target], b'{"description": "Tenant isn\'t ready"}', {}
        if target == "/api/tenants":
            tenants = [{"name": t, "projects": 3, "queue": 0} for t in self.tenants]
            return 200, json.dumps(tenants).encode(), {}
        found = re.fullmatch(r"/api/tenant/([^/]+)/(status|nodeset-requests)", target)
        if found:
            from urllib.parse import unquote
            tenant = self.tenants.get(unquote(found.group(1)))
            if tenant is not None:
                return 200, json.dumps(tenant[found.group(2)]).encode(), {"Content-Type": "application/json"}
        return 404, b'{"description": "Unknown tenant"}', {}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ZUUL_CONF = """\
[zookeeper]
hosts=zk01:2281,zk02:2281,zk03:2281
tls_ca=/etc/devinfra/pki/ca.crt
tls_cert=/etc/devinfra/pki/host.crt
tls_key=/etc/devinfra/pki/host.key
session_timeout=40

[keystore]
password=100%%-secret

[web]
listen_address=127.0.0.1
port=9000
"""


@pytest.fixture
def web():
    with FakeZuulWeb() as server:
        yield server


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "zuul.conf"
    path.write_text(ZUUL_CONF)
    return path


@pytest.fixture
def run(tmp_path, conf):
    """main() with the stand-ins; returns (exit status, samples)."""
    textfile = tmp_path / "zuul.prom"

    def run(api_url, read, *extra):
        status = zuul_metrics.main(["--config", str(conf), "--textfile", str(textfile), "--api-url", api_url,
                                    "--timeout", "5", *extra], read=read)
        return status, parse(textfile.read_text())

    run.textfile = textfile
    return run


def reads(*records):
    seen = []

    def read(settings, timeout):
        seen.append(settings)
        return list(records)

    read.seen = seen
    return read


def test_a_healthy_zuul(web, run):
    read = reads(executor("ze01"), executor("ze02", state="paused", accepting=False),
                 executor("ze03", state="initializing", accepting=False))
    status, samples = run(web.url, read)
    assert status == 0
    assert value(samples, "zuul_metrics_up") == 1
    assert value(samples, "zuul_zookeeper_up") == 1
    assert value(samples, "zuul_executors_total") == 3
    assert value(samples, "zuul_executors_accepting") == 1
    assert samples["zuul_executor_accepting"] == {
        frozenset({("hostname", "ze01")}): 1, frozenset({("hostname", "ze02")}): 0,
        frozenset({("hostname", "ze03")}): 0}
    assert value(samples, "zuul_event_queue_length", tenant="devinfra", queue="trigger") == 2
    assert value(samples, "zuul_event_queue_length", tenant="devinfra", queue="management") == 1
    assert value(samples, "zuul_event_queue_length", tenant="sandbox", queue="trigger") == 0
    pipelines = samples["zuul_pipeline_event_queue_length"]
    assert pipelines == {
        frozenset({("tenant", "devinfra"), ("pipeline", p), ("queue", q)}): n
        for p, q, n in [("check", "trigger", 3), ("check", "management", 0), ("check", "result", 1),
                        ("gate", "trigger", 0), ("gate", "management", 2), ("gate", "result", 0)]}
    assert value(samples, "zuul_metrics_last_run_timestamp_seconds") > 1.7e9
    # The settings came from zuul.conf, the TLS client certificate included.
    assert read.seen[0].zookeeper_hosts == "zk01:2281,zk02:2281,zk03:2281"
    assert (read.seen[0].tls_cert, read.seen[0].tls_key, read.seen[0].tls_ca) == (
        "/etc/devinfra/pki/host.crt", "/etc/devinfra/pki/host.key", "/etc/devinfra/pki/ca.crt")


def test_nodeset_requests_by_state_and_the_oldest_ones_age(web):
    result = zuul_metrics.collect(zuul_metrics.Settings("zk:2281", None, None, None, web.url), read=reads(),
                                  now=NOW)
    samples = parse(zuul_metrics.render(result, NOW))
    by_state = {dict(k)["state"]: v for k, v in samples["zuul_nodeset_requests"].items()
                if dict(k)["tenant"] == "devinfra"}
    assert by_state == {"requested": 2, "accepted": 1, "fulfilled": 0, "failed": 0}
    assert value(samples, "zuul_nodeset_requests", tenant="sandbox", state="requested") == 0
    # The oldest was made at 11:50:00 UTC, ten minutes before NOW.
    assert value(samples, "zuul_nodeset_request_oldest_age_seconds", tenant="devinfra") == 600
    assert value(samples, "zuul_nodeset_request_oldest_age_seconds", tenant="sandbox") == 0


def test_zookeeper_out_of_reach_leaves_the_api_metrics(web, run, capsys):
    def read(settings, timeout):
        raise TimeoutError("Connection time-out")

    status, samples = run(web.url, read)
    assert status == 0
    assert value(samples, "zuul_zookeeper_up") == 0
    assert value(samples, "zuul_metrics_up") == 1
    assert not [name for name in samples if name.startswith("zuul_executor")]
    assert "zuul_event_queue_length" in samples
    error = capsys.readouterr().err
    assert "cannot read the executors from ZooKeeper (zk01:2281,zk02:2281,zk03:2281)" in error


def test_no_executor_registered_means_none_accepting(web, run):
    _, samples = run(web.url, reads())
    assert value(samples, "zuul_executors_total") == 0
    assert value(samples, "zuul_executors_accepting") == 0
    assert samples.get("zuul_executor_accepting", {}) == {}


def test_zuul_web_out_of_reach_still_gives_a_file(run, capsys):
    status, samples = run(f"http://127.0.0.1:{closed_port()}", reads(executor("ze01")))
    assert status == 0
    assert value(samples, "zuul_metrics_up") == 0
    assert value(samples, "zuul_zookeeper_up") == 1
    assert value(samples, "zuul_executors_accepting") == 1
    assert not {"zuul_event_queue_length", "zuul_nodeset_requests"} & set(samples)
    assert "zuul-web does not answer" in capsys.readouterr().err


def test_a_tenant_that_does_not_answer_marks_the_api_down_and_keeps_the_others(web, run):
    web.broken["/api/tenant/sandbox/status"] = 422
    _, samples = run(web.url, reads(executor("ze01")))
    assert value(samples, "zuul_metrics_up") == 0
    assert value(samples, "zuul_event_queue_length", tenant="devinfra", queue="trigger") == 2
    assert ("tenant", "sandbox") not in {pair for key in samples["zuul_event_queue_length"] for pair in key}
    # Its node requests did answer.
    assert value(samples, "zuul_nodeset_requests", tenant="sandbox", state="requested") == 0


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"tenants": []}', b"[1]"])
def test_an_api_answer_of_the_wrong_shape_is_the_api_down(run, body):
    class Odd(LoopbackService):
        def respond(self, method, target, headers, raw):
            return 200, body, {}

    with Odd() as odd:
        status, samples = run(odd.url, reads())
    assert status == 0
    assert value(samples, "zuul_metrics_up") == 0


def test_tenant_and_pipeline_names_are_escaped_and_quoted_in_urls(web, run):
    web.tenants['we"ird/name'] = {"status": status(trigger=4), "nodeset-requests": []}
    _, samples = run(web.url, reads())
    assert value(samples, "zuul_event_queue_length", tenant='we\\"ird/name', queue="trigger") == 4
    assert "/api/tenant/we%22ird%2Fname/status" in web.paths


def render_zuul_conf(**overrides) -> str:
    """The role's own zuul.conf template, rendered with Ansible's filters (no OpenStack providers)."""
    from ansible.plugins.filter import core, mathstuff

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     trim_blocks=True)
    environment.filters.update(core.FilterModule().filters())
    environment.filters.update(mathstuff.FilterModule().filters())
    environment.filters["devinfra_zuul_openstack_connections"] = lambda providers: {}
    variables = {
        "ansible_managed": "managed", "inventory_hostname": "zuul01", "zuul_components": ["scheduler", "web"],
        "zuul_zookeeper_hosts": ["zk01", "zk02", "zk03"], "zuul_zookeeper_port": 2281,
        "zuul_tls_ca": "/etc/devinfra/pki/ca.crt", "zuul_tls_cert": "/etc/devinfra/pki/host.crt",
        "zuul_tls_key": "/etc/devinfra/pki/host.key", "zuul_zookeeper_session_timeout": 40,
        "zuul_keystore_password": "100%-secret", "zuul_database_user": "zuul",
        "zuul_database_password": "p%ss/word", "zuul_database_host": "db01", "zuul_database_port": 5432,
        "zuul_database_name": "zuul", "zuul_database_sslmode": "verify-full", "zuul_conf_dir": "/etc/zuul",
        "zuul_home": "/var/lib/zuul", "zuul_default_ansible_version": "11",
        "zuul_web_listen_address": "127.0.0.1", "zuul_web_port": 9000, "zuul_web_root": "https://zuul01/",
        "zuul_admin_auth_secret": "",
        "zuul_local_connection": "local", "zuul_git_root": "/var/lib/zuul/git", "zuul_git_poll_delay": 10,
        "zuul_launcher_static_nodes": [], "zuul_launcher_openstack": [], "zuul_connections": [],
    }
    variables.update(overrides)
    return environment.from_string(TEMPLATE.read_text()).render(**variables)


def test_settings_come_from_the_roles_zuul_conf(tmp_path):
    conf = tmp_path / "zuul.conf"
    conf.write_text(render_zuul_conf(zuul_web_port=9123))
    settings = zuul_metrics.read_settings(conf)
    assert settings.zookeeper_hosts == "zk01:2281,zk02:2281,zk03:2281"
    assert settings.tls_key == "/etc/devinfra/pki/host.key"
    assert settings.api_url == "http://127.0.0.1:9123"


@pytest.mark.parametrize("address, url", [
    ("0.0.0.0", "http://127.0.0.1:9000"), ("::", "http://127.0.0.1:9000"), ("::1", "http://[::1]:9000"),
    ("10.0.0.5", "http://10.0.0.5:9000")])
def test_the_api_is_asked_where_zuul_web_listens(tmp_path, address, url):
    conf = tmp_path / "zuul.conf"
    conf.write_text(render_zuul_conf(zuul_web_listen_address=address))
    assert zuul_metrics.read_settings(conf).api_url == url


def test_zuul_web_defaults_without_a_web_section(tmp_path):
    conf = tmp_path / "zuul.conf"
    conf.write_text("[zookeeper]\nhosts=zk01:2281\n")
    settings = zuul_metrics.read_settings(conf)
    assert settings.api_url == "http://127.0.0.1:9000"
    assert settings.tls_key is None


def program(tmp_path, *args, python=sys.executable):
    done = subprocess.run([python, str(SCRIPT), "--textfile", str(tmp_path / "zuul.prom"), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done, (parse((tmp_path / "zuul.prom").read_text()) if (tmp_path / "zuul.prom").exists() else None)


@pytest.mark.parametrize("text", [None, "[web]\nport=9000\n",
                                  "[zookeeper]\nhosts=zk01:2281\n[web]\nport=nine\n"],
                         ids=["missing", "no-zookeeper-section", "port-not-a-number"])
def test_an_unusable_zuul_conf_says_both_are_down(tmp_path, text):
    conf = tmp_path / "zuul.conf"
    if text is not None:
        conf.write_text(text)
    done, samples = program(tmp_path, "--config", str(conf))
    assert done.returncode == 1
    assert f"cannot use {conf}" in done.stderr
    assert value(samples, "zuul_metrics_up") == 0
    assert value(samples, "zuul_zookeeper_up") == 0


def test_without_kazoo_zookeeper_is_reported_down_not_a_traceback(tmp_path, conf, web):
    done, samples = program(tmp_path, "--config", str(conf), "--api-url", web.url)
    assert done.returncode == 0
    assert value(samples, "zuul_zookeeper_up") == 0
    assert value(samples, "zuul_metrics_up") == 1
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr


def test_a_missing_directory_is_reported_without_a_traceback(tmp_path, conf):
    done = subprocess.run([sys.executable, str(SCRIPT), "--config", str(conf), "--textfile",
                           str(tmp_path / "no" / "zuul.prom"), "--api-url", f"http://127.0.0.1:{closed_port()}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_the_file_is_replaced_whole_and_readable_by_the_exporter(web, run):
    run.textfile.write_text("stale\n")
    run(web.url, reads())
    assert run.textfile.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in run.textfile.parent.iterdir()) == ["zuul.conf", "zuul.prom"]
    assert "stale" not in run.textfile.read_text()


@pytest.mark.skipif(not ZUUL_PYTHON, reason="set DEVINFRA_ZUUL_PYTHON to a python with zuul==14.3.0 (kazoo)")
def test_with_zuuls_kazoo_a_silent_zookeeper_is_down_within_the_timeout(tmp_path, web):
    conf = tmp_path / "zuul.conf"
    port = closed_port()
    conf.write_text(ZUUL_CONF.replace("zk01:2281,zk02:2281,zk03:2281", f"127.0.0.1:{port}"))
    done, samples = program(tmp_path, "--config", str(conf), "--api-url", web.url, "--timeout", "3",
                            python=ZUUL_PYTHON)
    assert done.returncode == 0, done.stderr
    assert value(samples, "zuul_zookeeper_up") == 0
    assert value(samples, "zuul_metrics_up") == 1
    assert "cannot read the executors from ZooKeeper" in done.stderr
