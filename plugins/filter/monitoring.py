"""Filters that turn the monitoring variables into Prometheus scrape configs.

``prometheus_exporter_jobs`` makes one scrape job per exporter entry
(``{job, port, groups}``): a target ``<host>:<port>`` for every host of the
groups that is not in ``disabled``, labelled ``instance: <host>`` so alerts
name the host, not the port.

``prometheus_probe_job`` makes the blackbox exporter's job: every URL is a
target probed by the exporter at ``blackbox`` with the module its scheme
names (``https`` or ``http``).

``exporter_firewall_rules`` gives a host the base role's firewall rules
that let the monitoring hosts (and only them) reach the exporters its
groups run.

``webfront_probe_urls`` lists what the web fronts serve, so that no HTTPS
endpoint goes unprobed: ``https://<server_name><probe_path>`` for every vhost
of every host given (``probe_path`` defaults to ``/``).

A bad entry raises an error that names the variable and the entry's index;
the role's checks run these filters before anything changes.
"""

from __future__ import annotations

import re
import runpy
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

_JOB = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot import
# a repository's module_utils.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _hosts(names: Sequence[str], groups: Mapping[str, Sequence[str]], where: str) -> list[str]:
    hosts: set[str] = set()
    for name in names:
        if not isinstance(name, str) or name not in groups:
            raise AnsibleFilterError(f"{where}: group {name!r} is not in the inventory")
        hosts.update(groups[name])
    return sorted(hosts - set(groups.get("disabled", [])))


def prometheus_exporter_jobs(exporters: object, groups: Mapping[str, Sequence[str]],
                             variable: str = "prometheus_exporters") -> list[dict]:
    """One scrape job per exporter: its port on every host of its groups, disabled hosts left out."""
    if not _is_list(exporters):
        raise AnsibleFilterError(f"{variable} must be a list of {{job, port, groups}}")
    jobs, seen = [], set()
    for index, entry in enumerate(exporters):
        where = f"{variable}[{index}]"
        if not isinstance(entry, Mapping) or set(entry) - {"job", "port", "groups", "metrics_path"}:
            raise AnsibleFilterError(f"{where} must be a mapping of job, port, groups (and metrics_path)")
        job = entry.get("job")
        if not isinstance(job, str) or not _JOB.match(job):
            raise AnsibleFilterError(f"{where}: job {job!r} is not a Prometheus job name"
                                     " (letters, digits, _)")
        if job in seen:
            raise AnsibleFilterError(f"{where}: job {job} is named twice")
        seen.add(job)
        port = entry.get("port")
        if not isinstance(port, int) or not checks.port(port):
            raise AnsibleFilterError(f"{where} (job {job}): port {port!r} is not a port number")
        names = entry.get("groups")
        if not _is_list(names) or not names:
            raise AnsibleFilterError(f"{where} (job {job}): groups must be a non-empty list of"
                                     " inventory groups")
        path = entry.get("metrics_path", "/metrics")
        if not checks.abs_path(path):
            raise AnsibleFilterError(f"{where} (job {job}): metrics_path {path!r} must start with /")
        hosts = _hosts(names, groups, f"{where} (job {job})")
        jobs.append({
            "job_name": job,
            "metrics_path": path,
            "static_configs": [{"targets": [f"{host}:{port}"], "labels": {"instance": host}}
                               for host in hosts],
        })
    return jobs


def prometheus_probe_job(urls: object, blackbox: str, variable: str = "prometheus_probe_urls") -> dict:
    """The blackbox exporter's job: each URL probed with the module of its scheme."""
    if not _is_list(urls):
        raise AnsibleFilterError(f"{variable} must be a list of URLs")
    if not checks.host_port(blackbox):
        raise AnsibleFilterError(f"the blackbox exporter's address {blackbox!r} is not host:port")
    targets: dict[str, list[str]] = {"http": [], "https": []}
    for index, url in enumerate(urls):
        if not checks.url(url):
            raise AnsibleFilterError(f"{variable}[{index}]: {url!r} is not an"
                                     " http(s)://host[:port][/path] URL")
        scheme = url.split(":", 1)[0]
        if url not in targets[scheme]:
            targets[scheme].append(url)
    # Sorted: the same URLs give the same file, whatever order the inventory gave them in.
    return {
        "job_name": "blackbox",
        "metrics_path": "/probe",
        "static_configs": [{"targets": sorted(found), "labels": {"module": scheme}}
                           for scheme, found in targets.items() if found],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["module"], "target_label": "__param_module"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": blackbox},
        ],
    }


def exporter_firewall_rules(exporters: object, group_names: Sequence[str],
                            monitoring_group: str = "monitoring") -> list[dict]:
    """base_firewall_allow rules: each exporter of the host's groups open to the monitoring group."""
    if not _is_list(exporters):
        raise AnsibleFilterError("monitoring_exporters must be a list of {job, port, groups}")
    rules = []
    for index, entry in enumerate(exporters):
        if not isinstance(entry, Mapping) or not _is_list(entry.get("groups")):
            raise AnsibleFilterError(f"monitoring_exporters[{index}] must be a mapping with a groups list")
        if "all" in entry["groups"] or set(entry["groups"]) & set(group_names):
            rules.append({"port": entry.get("port"), "proto": "tcp", "source_groups": [monitoring_group],
                          "comment": f"{entry.get('job')} exporter"})
    return rules


def webfront_probe_urls(hostvars: Mapping[str, Mapping], hosts: Sequence[str]) -> list[str]:
    """https://<server_name><probe_path> of every vhost of the hosts' webfront_vhosts."""
    urls = []
    for host in hosts:
        vhosts = hostvars[host].get("webfront_vhosts", []) if host in hostvars else []
        if not _is_list(vhosts):
            raise AnsibleFilterError(f"{host}: webfront_vhosts is not a list")
        for index, vhost in enumerate(vhosts):
            name = vhost.get("server_name") if isinstance(vhost, Mapping) else None
            path = vhost.get("probe_path", "/") if isinstance(vhost, Mapping) else None
            if not isinstance(name, str) or not checks.abs_path(path):
                raise AnsibleFilterError(
                    f"{host}: webfront_vhosts[{index}] has no server_name"
                    " or a probe_path not starting with /")
            urls.append(f"https://{name}{path}")
    return urls


class FilterModule:
    def filters(self):
        return {
            "prometheus_exporter_jobs": prometheus_exporter_jobs,
            "prometheus_probe_job": prometheus_probe_job,
            "exporter_firewall_rules": exporter_firewall_rules,
            "webfront_probe_urls": webfront_probe_urls,
        }
