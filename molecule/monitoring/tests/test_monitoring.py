"""Monitoring: Prometheus, the blackbox exporter and Alertmanager on monitor1.

Order matters in this module (pytest runs it top to bottom): the alert
tests come after the scrapes are known to work, and the stopped-service test
restarts what it stopped. Times are measured from the test's own clock and
kept in .artifacts/monitoring-figures.json for the closing note.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from pathlib import Path

import pytest
from devinfra_molecule import PKI_CA_FILE, host_fixtures, wait_for

globals().update(host_fixtures("monitor1", "web1"))

ROOT = Path(__file__).resolve().parents[3]
FIGURES = ROOT / ".artifacts" / "monitoring-figures.json"
API = "http://127.0.0.1:9090/prometheus/api/v1"
ALERT_LOG = "/var/log/devinfra-alerts/alerts.jsonl"
LOGIN = "watcher:molecule-monitoring-password"
# molecule/monitoring/group_vars/monitoring.yaml
SCRAPE, EVALUATION, GROUP_WAIT, GROUP_INTERVAL = 10, 2, 5, 10


def figure(name: str, value) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[name] = value
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def query(monitor1, promql: str) -> list[dict]:
    out = monitor1.check_output(f"curl -sf {API}/query --data-urlencode {shlex.quote('query=' + promql)}")
    answer = json.loads(out)
    assert answer["status"] == "success", out
    return answer["data"]["result"]


def values(monitor1, promql: str) -> dict[tuple, float]:
    """{(job, instance): value} of an instant query."""
    return {(r["metric"].get("job"), r["metric"].get("instance")): float(r["value"][1])
            for r in query(monitor1, promql)}


def firing(monitor1, alertname: str) -> set[str]:
    """Instances of the alert Prometheus says is firing."""
    return {r["metric"].get("instance", "") for r in
            query(monitor1, f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')}


def notifications(monitor1, since: int = 0) -> list[dict]:
    """What the alert log got after its first `since` messages: Alertmanager's webhook messages."""
    out = monitor1.run(f"cat {ALERT_LOG}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()][since:]


def notified(monitor1, alertname: str, instance: str, status: str, since: int = 0) -> bool:
    """Whether a message after the first `since` has the alert in that status."""
    return any(alert["labels"].get("alertname") == alertname and alert["labels"].get("instance") == instance
               and alert["status"] == status
               for message in notifications(monitor1, since) for alert in message["alerts"])


def https(monitor1, path: str, login: str | None = None) -> int:
    auth = f"-u {shlex.quote(login)} " if login else ""
    out = monitor1.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {PKI_CA_FILE} "
                                f"{auth}https://monitor1{path}")
    return int(out)


def test_every_exporter_and_probe_reaches_prometheus(monitor1):
    expected = {
        ("node", "monitor1"), ("node", "web1"),
        ("nginx", "monitor1"), ("nginx", "web1"),
        ("postgres", "web1"),
        ("blackbox", "https://web1/"), ("blackbox", "https://monitor1/deploys/"),
        ("prometheus", "monitor1"), ("alertmanager", "127.0.0.1:9093"),
    }
    def targets():
        """What Prometheus scrapes now ({(job, instance): health}); `up` would also show, for five
        minutes, the targets of Debian's default configuration the first restart dropped."""
        out = monitor1.check_output(f"curl -sf {API}/targets?state=active")
        return {(t["labels"]["job"], t["labels"]["instance"]): t["health"]
                for t in json.loads(out)["data"]["activeTargets"]}
    deadline = time.monotonic() + 120
    while (found := targets()) != dict.fromkeys(expected, "up") and time.monotonic() < deadline:
        time.sleep(2)
    assert found == dict.fromkeys(expected, "up")


@pytest.mark.parametrize("promql, instance", [
    ('pg_up{job="postgres"}', "web1"),
    ('nginx_up{job="nginx"}', "web1"),
    ('nginx_up{job="nginx"}', "monitor1"),
    ('probe_success{job="blackbox"}', "https://web1/"),
    ('probe_http_status_code{job="blackbox"}', "https://monitor1/deploys/"),
    ('node_textfile_scrape_error{job="node"}', "web1"),
])
def test_each_exporter_reports_its_service(monitor1, promql, instance):
    got = {i: v for (_, i), v in values(monitor1, promql).items()}
    expected = 200 if "status_code" in promql else 0 if "scrape_error" in promql else 1
    assert got.get(instance) == expected, got


def test_a_textfile_written_by_a_timer_reaches_prometheus(monitor1, web1):
    web1.run_expect([0], "printf '# TYPE molecule_probe gauge\\nmolecule_probe 42\\n' "
                         "> /var/lib/prometheus/node-exporter/molecule.prom")
    try:
        wait_for(lambda: values(monitor1, "molecule_probe").get(("node", "web1")) == 42, 60,
                 "web1's textfile metric in Prometheus")
    finally:
        web1.run("rm -f /var/lib/prometheus/node-exporter/molecule.prom")


def test_prometheus_and_alertmanager_need_a_login_and_the_status_page_does_not(monitor1):
    for path in ("/prometheus/-/ready", "/alertmanager/-/ready", "/prometheus/api/v1/query?query=up"):
        assert https(monitor1, path) == 401, path
        assert https(monitor1, path, "watcher:wrong-password-here") == 401, path
        assert https(monitor1, path, LOGIN) == 200, path
    assert https(monitor1, "/deploys/") == 200
    # The classic graph UI (Debian's Prometheus has no React UI) answers.
    assert https(monitor1, "/prometheus/classic/graph", LOGIN) == 200


def test_the_services_listen_on_loopback_only(monitor1):
    listening = monitor1.check_output("ss -Htln | awk '{print $4}'").split()
    for port in (9090, 9093, 9115, 9080):
        ours = [a for a in listening if a.rsplit(":", 1)[1] == str(port)]
        assert ours and all(a.startswith(("127.0.0.1:", "[::1]:")) for a in ours), (port, listening)
    # No Alertmanager cluster port.
    assert not [a for a in listening if a.endswith(":9094")], listening


def test_promtool_passes_the_config_the_rules_and_the_rule_unit_tests(monitor1):
    monitor1.run_expect([0], "promtool check config /etc/prometheus/prometheus.yml")
    monitor1.run_expect([0], "promtool check rules /etc/prometheus/rules/devinfra.yaml")
    monitor1.run_expect([0], "mkdir -p /root/rules-test/roles/prometheus/files/rules"
                             " /root/rules-test/tests/prometheus")
    for path in ("roles/prometheus/files/rules/devinfra.yaml", "tests/prometheus/devinfra_test.yaml"):
        encoded = base64.b64encode((ROOT / path).read_bytes()).decode()
        monitor1.run_expect([0], f"echo {encoded} | base64 -d > /root/rules-test/{path}")
    result = monitor1.run("promtool test rules /root/rules-test/tests/prometheus/devinfra_test.yaml")
    assert result.rc == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_a_certificate_with_5_days_left_fires_the_expiry_alert(monitor1):
    wait_for(lambda: "https://web1/" in firing(monitor1, "CertificateExpiresSoon"), 60,
             "CertificateExpiresSoon firing for web1")
    # monitor1's certificate has a year left.
    assert firing(monitor1, "CertificateExpiresSoon") == {"https://web1/"}
    wait_for(lambda: notified(monitor1, "CertificateExpiresSoon", "https://web1/", "firing"),
             GROUP_WAIT + EVALUATION + 30, "the expiry alert in the alert log")


def test_a_stopped_nginx_fires_its_alerts_after_for_and_a_restart_resolves_them(monitor1, web1):
    rules = {"EndpointDown": ("https://web1/", 60), "NginxDown": ("web1", 60)}
    before = len(notifications(monitor1))
    stopped = time.monotonic()
    web1.run_expect([0], "systemctl stop nginx")
    try:
        for alertname, (instance, hold) in rules.items():
            # Failing at the next scrape, pending at the next evaluation,
            # firing at the first evaluation after `for` (1m, not the 5m of
            # a slip): for + a scrape + two evaluations, 74 s. The deadline
            # allows another scrape and the queries of a busy machine; the
            # time it took is a figure, not a timed assertion (a clean-clone
            # run beside molecule:zuul saw 74.7 s).
            deadline = hold + 2 * SCRAPE + 2 * EVALUATION + 15
            wait_for(lambda a=alertname, i=instance: i in firing(monitor1, a),
                     max(1, deadline - (time.monotonic() - stopped)), f"{alertname} firing for {instance}",
                     interval=1)
            fired = time.monotonic() - stopped
            wait_for(lambda a=alertname, i=instance: notified(monitor1, a, i, "firing", before),
                     GROUP_WAIT + EVALUATION + 10, f"{alertname} in the alert log", interval=1)
            received = time.monotonic() - stopped
            figure(f"{alertname}: for (s)", hold)
            figure(f"{alertname}: stop to firing (s)", round(fired, 1))
            figure(f"{alertname}: stop to the receiver (s)", round(received, 1))
    finally:
        fired_messages = len(notifications(monitor1))
        restarted = time.monotonic()
        web1.run_expect([0], "systemctl start nginx")
    for alertname, (instance, _) in rules.items():
        wait_for(lambda a=alertname, i=instance: notified(monitor1, a, i, "resolved", fired_messages),
                 SCRAPE + 2 * EVALUATION + GROUP_INTERVAL + 20, f"{alertname} resolved in the alert log",
                 interval=1)
        figure(f"{alertname}: restart to resolved at the receiver (s)",
               round(time.monotonic() - restarted, 1))


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


def _live_config(monitor1):
    return monitor1.check_output("sha256sum /etc/prometheus/prometheus.yml /etc/prometheus/rules/*.yaml "
                                 "/etc/prometheus/alertmanager.yml")


@pytest.mark.parametrize("bad, message", [
    ({"prometheus_extra_rule_groups": [{"name": "mine", "rules": [{"alert": "Broken", "expr": "up =="}]}]},
     "prometheus_extra_rule_groups is not valid Prometheus configuration"),
    ({"prometheus_extra_scrape_configs": [{"job_name": "mine",
                                            "static_configs": [{"targets": ["http://web1:9100/metrics"]}]}]},
     "prometheus_extra_scrape_configs is not valid Prometheus configuration"),
    ({"prometheus_exporters": [{"job": "node", "port": 9100, "groups": ["webz"]}]},
     "prometheus_exporters[0] (job node): group 'webz' is not in the inventory"),
    ({"prometheus_probe_urls_extra": ["ftp://web1/"]},
     "prometheus_probe_urls[2]: 'ftp://web1/' is not an http(s)://host[:port][/path] URL"),
    ({"prometheus_web_users": []}, "prometheus_web_users is empty"),
    ({"alertmanager_alert_log": False}, "no receiver"),
])
def test_bad_input_fails_naming_it_and_changes_nothing(bad_vars_change_nothing, monitor1, bad, message):
    bad_vars_change_nothing(bad, message, lambda: _live_config(monitor1))
