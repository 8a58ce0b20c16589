"""plugins/filter/monitoring.py: scrape jobs, probes and exporter firewall rules."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from monitoring import (
    FilterModule,
    exporter_firewall_rules,
    prometheus_exporter_jobs,
    prometheus_probe_job,
    webfront_probe_urls,
)

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"all": ["web1", "web2", "db1", "off1"], "web": ["web2", "web1", "off1"], "db": ["db1"],
          "disabled": ["off1"]}


def test_filters_are_registered_under_their_names():
    assert set(FilterModule().filters()) == {
        "prometheus_exporter_jobs", "prometheus_probe_job", "exporter_firewall_rules", "webfront_probe_urls"}


def test_an_exporter_job_targets_every_host_of_its_groups_but_the_disabled_ones():
    jobs = prometheus_exporter_jobs([{"job": "nginx", "port": 9113, "groups": ["web", "db"]}], GROUPS)
    assert jobs == [{
        "job_name": "nginx",
        "metrics_path": "/metrics",
        "static_configs": [
            {"targets": ["db1:9113"], "labels": {"instance": "db1"}},
            {"targets": ["web1:9113"], "labels": {"instance": "web1"}},
            {"targets": ["web2:9113"], "labels": {"instance": "web2"}},
        ],
    }]


@pytest.mark.parametrize("exporters, message", [
    ({"job": "node"}, "prometheus_exporters must be a list"),
    ([{"job": "node", "port": 9100, "groups": ["webz"]}],
     "prometheus_exporters[0] (job node): group 'webz' is not in the inventory"),
    ([{"job": "no-dash", "port": 9100, "groups": ["web"]}], "job 'no-dash' is not a Prometheus job name"),
    ([{"job": "node", "port": 70000, "groups": ["web"]}], "port 70000 is not a port number"),
    ([{"job": "node", "port": True, "groups": ["web"]}], "port True is not a port number"),
    ([{"job": "node", "port": 9100, "groups": []}], "groups must be a non-empty list"),
    ([{"job": "node", "port": 9100, "groups": "web"}], "groups must be a non-empty list"),
    ([{"job": "a", "port": 1, "groups": ["web"]}, {"job": "a", "port": 2, "groups": ["web"]}],
     "prometheus_exporters[1]: job a is named twice"),
    ([{"job": "node", "port": 9100, "groups": ["web"], "path": "/x"}],
     "must be a mapping of job, port, groups"),
    ([{"job": "node", "port": 9100, "groups": ["web"], "metrics_path": "x"}],
     "metrics_path 'x' must start with /"),
])
def test_a_bad_exporter_entry_is_named(exporters, message):
    with pytest.raises(AnsibleFilterError) as error:
        prometheus_exporter_jobs(exporters, GROUPS)
    assert message in str(error.value)


def test_the_probe_job_sends_each_url_through_the_blackbox_exporter_with_its_schemes_module():
    job = prometheus_probe_job(["https://web1/", "http://mirror01/debian/", "https://web1/", "https://a1/"],
                               "127.0.0.1:9115")
    assert job["static_configs"] == [
        {"targets": ["http://mirror01/debian/"], "labels": {"module": "http"}},
        {"targets": ["https://a1/", "https://web1/"], "labels": {"module": "https"}},
    ]
    assert job["metrics_path"] == "/probe"
    assert {"target_label": "__address__", "replacement": "127.0.0.1:9115"} in job["relabel_configs"]
    assert {"source_labels": ["module"], "target_label": "__param_module"} in job["relabel_configs"]


@pytest.mark.parametrize("urls, message", [
    ("https://web1/", "prometheus_probe_urls must be a list"),
    (["ftp://web1/"], "prometheus_probe_urls[0]: 'ftp://web1/' is not an http(s)"),
    (["https://web 1/"], "is not an http(s)"),
    ([42], "prometheus_probe_urls[0]: 42"),
])
def test_a_bad_probe_url_is_named(urls, message):
    with pytest.raises(AnsibleFilterError) as error:
        prometheus_probe_job(urls, "127.0.0.1:9115")
    assert message in str(error.value)


def test_probe_urls_come_from_every_vhost_at_its_probe_path():
    hostvars = {
        "web1": {"webfront_vhosts": [{"server_name": "web1"},
                                     {"server_name": "logs.web1", "probe_path": "/index.html"}]},
        "db1": {},
    }
    assert webfront_probe_urls(hostvars, ["web1", "db1", "gone"]) == [
        "https://web1/", "https://logs.web1/index.html"]
    with pytest.raises(AnsibleFilterError, match="webfront_vhosts.0. has no server_name"):
        webfront_probe_urls({"web1": {"webfront_vhosts": [{"server_name": "web1", "probe_path": "x"}]}},
                            ["web1"])


def test_a_host_opens_the_exporters_of_its_groups_to_the_monitoring_hosts_only():
    exporters = [{"job": "node", "port": 9100, "groups": ["all"]},
                 {"job": "postgres", "port": 9187, "groups": ["db"]}]
    assert exporter_firewall_rules(exporters, ["web"]) == [
        {"port": 9100, "proto": "tcp", "source_groups": ["monitoring"], "comment": "node exporter"}]
    assert [r["port"] for r in exporter_firewall_rules(exporters, ["db", "web"])] == [9100, 9187]
    with pytest.raises(AnsibleFilterError, match="monitoring_exporters"):
        exporter_firewall_rules("node", ["web"])


def test_the_inventory_lists_the_exporters_of_existing_groups():
    """Every exporter's groups are groups of the production inventory (or all)."""
    exporters = yaml.safe_load((ROOT / "inventory/service/group_vars/all/monitoring.yaml").read_text())
    groups = yaml.safe_load((ROOT / "inventory/service/groups.yaml").read_text())["groups"]
    known = set(groups) | {"all"}
    for entry in exporters["monitoring_exporters"]:
        assert set(entry["groups"]) <= known, entry
