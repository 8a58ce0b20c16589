"""zuul-metrics on the platform: the scheduler's node exporter textfile.

zuul01 (the scheduler, with zuul-web) runs zuul-metrics from its timer; the
tests start the service once more and read the file through the link the
role made in the node exporter's textfile directory. Runs after
test_maintenance.py (the executor may still be coming back: the tests wait
for it) and leaves every component running.
"""

import re

import pytest
from devinfra_molecule import wait_for
from zuul_platform import TENANT, api

TEXTFILE = "/var/lib/prometheus/node-exporter/zuul.prom"
TARGET = "/var/lib/zuul-metrics/zuul.prom"


def samples(zuul01):
    """Run zuul-metrics.service once (a oneshot: start waits for it); the file's samples."""
    zuul01.run_expect([0], "systemctl start zuul-metrics.service")
    found = {}
    for line in zuul01.file(TEXTFILE).content_string.splitlines():
        if line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        found[name] = float(value)
    return found


@pytest.fixture(scope="module")
def healthy(zuul01):
    """The samples once the executor accepts work and every API request answered."""
    def probe():
        found = samples(zuul01)
        ready = found.get("zuul_executors_accepting") == 1 and found.get("zuul_metrics_up") == 1
        return found if ready else None
    return wait_for(probe, 300, "zuul-metrics to report an accepting executor and the API up", interval=5)


def test_the_timer_runs_every_minute(zuul01):
    timer = zuul01.service("zuul-metrics.timer")
    assert timer.is_enabled and timer.is_running
    unit = zuul01.check_output("systemctl cat zuul-metrics.timer")
    assert "OnBootSec=1min" in unit and "OnUnitActiveSec=1min" in unit
    assert zuul01.check_output("systemctl show -P User zuul-metrics.service") == "zuul"
    assert zuul01.check_output("systemctl show -P ProtectSystem zuul-metrics.service") == "strict"


def test_the_textfile_is_linked_for_the_node_exporter(zuul01, healthy):
    link = zuul01.file(TEXTFILE)
    assert link.is_symlink and link.linked_to == TARGET
    assert zuul01.file(TARGET).user == "zuul"
    assert zuul01.file(TARGET).mode == 0o644
    text = link.content_string
    for metric in ("zuul_metrics_up", "zuul_zookeeper_up", "zuul_executors_accepting",
                   "zuul_event_queue_length", "zuul_nodeset_requests"):
        assert f"# HELP {metric} " in text and f"# TYPE {metric} gauge" in text, metric


def test_the_executor_accepts_and_the_api_is_up(healthy):
    assert healthy["zuul_zookeeper_up"] == 1
    assert healthy["zuul_metrics_up"] == 1
    assert healthy["zuul_executors_total"] == 1
    assert healthy["zuul_executors_accepting"] == 1
    assert healthy['zuul_executor_accepting{hostname="zuul01"}'] == 1


def test_the_queues_and_node_requests_of_the_tenant(client, healthy):
    assert f'zuul_event_queue_length{{tenant="{TENANT}",queue="trigger"}}' in healthy
    assert f'zuul_event_queue_length{{tenant="{TENANT}",queue="management"}}' in healthy
    # Series for the tenant's pipelines (those whose status summary Zuul has written).
    pipelines = {p["name"] for p in api(client, f"tenant/{TENANT}/pipelines")}
    seen = {re.search(r'pipeline="([^"]+)"', name).group(1) for name in healthy
            if name.startswith("zuul_pipeline_event_queue_length{")}
    assert seen and seen <= pipelines, (seen, pipelines)
    for queue in ("trigger", "management", "result"):
        assert any(f'queue="{queue}"' in name for name in healthy
                   if name.startswith("zuul_pipeline_event_queue_length{")), queue
    assert healthy[f'zuul_nodeset_requests{{tenant="{TENANT}",state="requested"}}'] >= 0
    assert healthy[f'zuul_nodeset_request_oldest_age_seconds{{tenant="{TENANT}"}}'] >= 0


def test_with_zuul_web_stopped_the_file_says_the_api_is_down(zuul01, client):
    zuul01.run_expect([0], "systemctl stop zuul-web")
    try:
        found = samples(zuul01)
        assert found["zuul_metrics_up"] == 0
        assert found["zuul_zookeeper_up"] == 1
        assert not [name for name in found if name.startswith("zuul_event_queue_length")]
        journal = zuul01.check_output("journalctl -u zuul-metrics -n 20 --no-pager")
        assert "zuul-web does not answer" in journal
        assert "Traceback" not in journal
    finally:
        zuul01.run_expect([0], "systemctl start zuul-web")
    wait_for(lambda: TENANT in [t["name"] for t in api(client, "tenants")], 300, "zuul-web to answer again",
             interval=3)
    assert samples(zuul01)["zuul_metrics_up"] == 1
