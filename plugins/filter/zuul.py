"""Filters that check Zuul's tenant configuration on the controller.

``devinfra_zuul_tenants(tenants, connections, local_projects)`` returns the
tenant configuration (the list that Zuul's main.yaml holds) unchanged when
it is sound, and raises an error naming the variable, the tenant and the
field otherwise: unknown keys (Zuul rejects them), a source naming a
connection that zuul.conf does not define, a project listed twice, a
project of the local git connection that the scheduler does not host.
The zuul role runs it before anything changes on any host; Zuul's own
``zuul-admin tenant-conf-check`` then checks the file on the scheduler
before it replaces the live one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

# Keys of a tenant, of a source and of a project entry (Zuul 14's
# TenantParser schema).
TENANT_KEYS = {
    "name", "max-changes-per-pipeline", "max-dependencies", "max-nodes-per-job",
    "max-job-timeout", "max-oidc-ttl", "allowed-oidc-issuers", "source",
    "exclude-unprotected-branches", "exclude-locked-branches", "allowed-triggers",
    "allowed-reporters", "allowed-labels", "disallowed-labels", "allow-circular-dependencies",
    "default-parent", "default-ansible-version", "access-rules", "admin-rules",
    "anonymous-read-access", "role-mappings", "semaphores", "authentication-realm",
    "report-build-page", "use-nodepool", "web-root",
}
SOURCE_KEYS = {"config-projects", "untrusted-projects"}
PROJECT_KEYS = {
    "include", "exclude", "shadow", "include-provider-config", "exclude-unprotected-branches",
    "exclude-locked-branches", "extra-config-paths", "load-branch", "include-branches",
    "exclude-branches", "always-dynamic-branches", "allow-circular-dependencies",
    "implied-branch-matchers", "projects",
}
CLASSES = {
    "pipeline", "job", "semaphore", "project", "project-template", "nodeset", "secret", "queue",
    "image", "flavor", "label", "section", "provider",
}
# Other objects main.yaml may hold beside tenants.
TOP_LEVEL = {"tenant", "admin-rule", "authorization-rule", "semaphore", "global-semaphore", "api-root"}
BUILTIN_CONNECTIONS = {"timer", "zuul"}


def _fail(where: str, message: str):
    raise AnsibleFilterError(f"zuul_tenants{where}: {message}")


def _project_name(entry: object, where: str) -> tuple[str, Mapping]:
    if isinstance(entry, str) and entry:
        return entry, {}
    if isinstance(entry, Mapping) and len(entry) == 1:
        name, options = next(iter(entry.items()))
        options = options or {}
        if not isinstance(name, str) or not isinstance(options, Mapping):
            _fail(where, f"expected a project name or {{name: {{options}}}}, got {entry!r}")
        unknown = set(options) - PROJECT_KEYS
        if unknown:
            _fail(where, f"project {name}: unknown option(s) {', '.join(sorted(unknown))}")
        for key in ("include", "exclude"):
            value = options.get(key, [])
            bad = set([value] if isinstance(value, str) else value) - CLASSES
            if bad:
                _fail(where, f"project {name}: {key} names unknown class(es) {', '.join(sorted(bad))} "
                             f"(known: {', '.join(sorted(CLASSES))})")
        return name, options
    _fail(where, f"expected a project name or {{name: {{options}}}}, got {entry!r}")
    raise AssertionError  # unreachable


def tenants(config: object, connections: Sequence[str], local_connection: str = "",
            local_projects: Sequence[str] = ()) -> list:
    if not isinstance(config, Sequence) or isinstance(config, str):
        _fail("", "must be a list (the content of Zuul's main.yaml)")
    known = set(connections) | BUILTIN_CONNECTIONS
    names = set()
    for index, item in enumerate(config):
        where = f"[{index}]"
        if not isinstance(item, Mapping) or len(item) != 1 or next(iter(item)) not in TOP_LEVEL:
            _fail(where, f"each entry is one of {', '.join(sorted(TOP_LEVEL))}, got {item!r}")
        kind, body = next(iter(item.items()))
        if kind != "tenant":
            continue
        if not isinstance(body, Mapping) or not isinstance(body.get("name"), str):
            _fail(where, "a tenant needs a name")
        where = f"[{index}] (tenant {body['name']})"
        if body["name"] in names:
            _fail(where, "tenant defined twice")
        names.add(body["name"])
        unknown = set(body) - TENANT_KEYS
        if unknown:
            _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
        sources = body.get("source", {})
        if not isinstance(sources, Mapping) or not sources:
            _fail(where, "source must map connection names to their projects")
        seen = set()
        for connection, lists in sources.items():
            at = f"{where}.source.{connection}"
            if connection not in known:
                _fail(at, f"connection {connection} is not defined in zuul.conf "
                          f"(defined: {', '.join(sorted(known))})")
            if not isinstance(lists, Mapping) or set(lists) - SOURCE_KEYS:
                _fail(at, f"expected a mapping with {' and/or '.join(sorted(SOURCE_KEYS))}")
            for key, entries in lists.items():
                if not isinstance(entries, list):
                    _fail(f"{at}.{key}", "must be a list")
                for position, entry in enumerate(entries):
                    name, _options = _project_name(entry, f"{at}.{key}[{position}]")
                    if name in seen:
                        _fail(f"{at}.{key}[{position}]", f"project {name} is listed twice")
                    seen.add(name)
                    if connection == local_connection and name not in local_projects:
                        _fail(f"{at}.{key}[{position}]",
                              f"project {name} is not a repository the scheduler hosts "
                              f"(hosted: {', '.join(sorted(local_projects))})")
    return list(config)


class FilterModule:
    def filters(self):
        return {"devinfra_zuul_tenants": tenants}
