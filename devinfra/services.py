"""services.yaml, the services manifest: what makes up each service, said once.

Which roles make up a service used to be written in three or four places:
the check play of its playbook, its deploy job's ``files`` in zuul.d, the
``files`` of the molecule jobs that test its roles, and site.yaml's order.
services.yaml says it once, for each service:

- ``playbook`` (under playbooks/), ``deploy_job`` (zuul.d), ``groups`` (the
  host groups its plays target) and ``roles`` in the order the playbook
  applies them, each to all of the service's groups or to the groups
  given (``- zookeeper: [zookeeper]``);
- ``check_play``: whether the playbook's first play checks every role's
  variables (``include_role`` ``tasks_from: validate``) before any role
  changes anything;
- ``after``: the services its deploy job waits for (soft dependencies);
  the list's order is site.yaml's and the deploy pipeline's;
- ``scenarios``: the molecule scenarios that test its own roles (the
  roles no other service's playbook applies);
- ``group_vars_also`` and ``follows``: what else its deploy job follows
  (the group vars of other groups it reads, data files, paths);

and for each molecule scenario its check job, the roles its playbooks apply
(``roles``), the service playbooks they import (``services``) and what
else it follows. ``shared`` names, once, the files every deploy job and
every molecule job follows.

What is derived rather than written (this module reads the tree):

- the roles a role includes (``include_role``/``import_role`` in its tasks
  and handlers, ``dependencies`` in its meta/main.yaml): a service or a
  scenario follows the roles its roles include (gerrit includes
  backup_client);
- the plugins a role, a playbook or a service's group vars use: a filter
  of plugins/filter/*.py (``| name``), a module of library/*.py (a task's
  key) and the plugins/module_utils/*.py that module imports.

tests/unit/test_services_manifest.py checks the copies against the
manifest: each playbook's plays and check play, site.yaml's order, and
every file that each deploy and molecule job of zuul.d selects (as
devinfra.plan, and so Zuul, selects them) against the files the manifest
makes part of the service or scenario, both ways. Paths in the manifest
are globs (``*`` matches across ``/``); a path ending in ``/`` is a
directory and everything under it.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devinfra import safe_yaml
from devinfra.errors import DevinfraError

MANIFEST = "services.yaml"
INVENTORIES = ("service", "aio")
INCLUDE_ROLE = {f"{prefix}{verb}_role" for prefix in ("", "ansible.builtin.", "ansible.legacy.")
                for verb in ("include", "import")}
IMPORT_PLAYBOOK = {"import_playbook", "ansible.builtin.import_playbook"}
# A role applied to some of a play's groups: "inventory_hostname in groups['zuul'] | default([])".
GROUP_CONDITION = re.compile(r"^inventory_hostname in groups\[['\"]([A-Za-z0-9_]+)['\"]\]"
                             r"(\s*\|\s*default\(\[\]\))?$")
# The group a templated hosts pattern falls back to: "{{ base_play_hosts | default('all') }}".
HOSTS_DEFAULT = re.compile(r"default\(['\"]([^'\"]+)['\"]\)")
FILTER_USE = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)")
TASK_LISTS = ("tasks", "pre_tasks", "post_tasks", "handlers")
TASK_BLOCKS = ("block", "rescue", "always")

SERVICE_KEYS = {"name": str, "playbook": str, "deploy_job": str, "groups": list, "roles": list,
                "check_play": bool, "after": list, "scenarios": list}
SERVICE_OPTIONAL = {"site": bool, "group_vars_also": list, "follows": list}
SCENARIO_KEYS = {"job": str, "roles": list}
SCENARIO_OPTIONAL = {"services": list, "follows": list}


class ServicesError(DevinfraError):
    """services.yaml, or a file it names, is not what it should be; the message says where."""


@dataclass(frozen=True)
class Service:
    name: str
    playbook: str
    deploy_job: str
    groups: tuple[str, ...]
    # Each role, in the playbook's order, with the groups it is applied to.
    roles: dict[str, tuple[str, ...]]
    check_play: bool
    site: bool
    after: tuple[str, ...]
    scenarios: tuple[str, ...]
    group_vars_also: tuple[str, ...]
    follows: tuple[str, ...]

    @property
    def playbook_path(self) -> str:
        return f"playbooks/{self.playbook}"


@dataclass(frozen=True)
class Scenario:
    name: str
    job: str
    roles: tuple[str, ...]
    services: tuple[str, ...]
    follows: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    services: dict[str, Service]  # in site.yaml's and the deploy pipeline's order
    scenarios: dict[str, Scenario]
    shared_deploy: tuple[str, ...]
    shared_molecule: tuple[str, ...]
    roles_without_scenario: tuple[str, ...]


# --- reading and checking the manifest ------------------------------------

def read_yaml(path: Path) -> Any:
    """A YAML file's data, read by the bounded reader; ServicesError names the file."""
    try:
        return safe_yaml.load(path)
    except safe_yaml.ReadError as exc:
        raise ServicesError(f"{path}: {exc}") from None


def load(root: Path) -> Manifest:
    """The manifest of the repository at *root*, its shape checked."""
    path = root / MANIFEST
    data = read_yaml(path)
    where = str(path)
    _keys(data, where, {"shared": dict, "services": list, "scenarios": dict,
                        "roles_without_scenario": list}, {})
    shared = data["shared"]
    _keys(shared, f"{where}: shared", {"deploy": list, "molecule": list}, {})
    scenarios = {}
    for name, body in data["scenarios"].items():
        at = f"{where}: scenario {name}"
        _keys(body, at, SCENARIO_KEYS, SCENARIO_OPTIONAL)
        scenarios[name] = Scenario(name, body["job"], _names(body, "roles", at),
                                   _names(body, "services", at), _names(body, "follows", at))
    services: dict[str, Service] = {}
    for index, body in enumerate(data["services"]):
        at = f"{where}: services[{index}]"
        if isinstance(body, dict) and isinstance(body.get("name"), str):
            at += f" ({body['name']})"
        _keys(body, at, SERVICE_KEYS, SERVICE_OPTIONAL)
        service = _service(body, at)
        if service.name in services:
            raise ServicesError(f"{at}: service {service.name} is listed twice")
        for dep in service.after:
            if dep not in services:
                raise ServicesError(f"{at}: after: {dep} is not a service listed before it "
                                    "(the list is in deploy order)")
        for scenario in service.scenarios:
            if scenario not in scenarios:
                raise ServicesError(f"{at}: scenarios: {scenario} is not under scenarios:")
        services[service.name] = service
    for scenario in scenarios.values():
        for name in scenario.services:
            if name not in services:
                raise ServicesError(f"{where}: scenario {scenario.name}: services: {name} is not a service")
    return Manifest(services, scenarios, _names(shared, "deploy", f"{where}: shared"),
                    _names(shared, "molecule", f"{where}: shared"),
                    _names(data, "roles_without_scenario", where))


def _keys(body: Any, where: str, required: dict[str, type], optional: dict[str, type]) -> None:
    if not isinstance(body, dict):
        raise ServicesError(f"{where}: expected a mapping, not {type(body).__name__}")
    missing = [k for k in required if k not in body]
    if missing:
        raise ServicesError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ServicesError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
                            f"(known: {', '.join([*required, *optional])})")
    for key, kind in {**required, **optional}.items():
        if key in body and not isinstance(body[key], kind):
            raise ServicesError(f"{where}: {key} must be a {kind.__name__}, "
                                f"not {type(body[key]).__name__} {body[key]!r}")


def _names(body: dict, key: str, where: str) -> tuple[str, ...]:
    values = body.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ServicesError(f"{where}: {key} must be a list of names or paths, not {values!r}")
    if len(set(values)) != len(values):
        raise ServicesError(f"{where}: {key} lists an entry twice: {values!r}")
    return tuple(values)


def _service(body: dict, where: str) -> Service:
    groups = _names(body, "groups", where)
    roles: dict[str, tuple[str, ...]] = {}
    for entry in body["roles"]:
        if isinstance(entry, str):
            name, on = entry, groups
        elif isinstance(entry, dict) and len(entry) == 1:
            name, on = next(iter(entry.items()))
            on = _names({"groups": on}, "groups", f"{where}: role {name}")
            if not set(on) <= set(groups):
                raise ServicesError(f"{where}: role {name} is applied to {', '.join(on)}, "
                                    f"not all of them groups of the service ({', '.join(groups)})")
        else:
            raise ServicesError(f"{where}: each role must be a name or {{role: [groups]}}, not {entry!r}")
        if name in roles:
            raise ServicesError(f"{where}: role {name} is listed twice")
        roles[name] = tuple(on)
    return Service(body["name"], body["playbook"], body["deploy_job"], groups, roles, body["check_play"],
                   body.get("site", True), _names(body, "after", where), _names(body, "scenarios", where),
                   _names(body, "group_vars_also", where), _names(body, "follows", where))


# --- what the playbooks do -------------------------------------------------

@dataclass(frozen=True)
class Play:
    name: str
    groups: tuple[str, ...]
    # role -> the groups it is applied to (roles:, or include_role of other task files)
    roles: dict[str, tuple[str, ...]]
    # role -> the groups whose variables it checks (include_role tasks_from: validate)
    validates: dict[str, tuple[str, ...]]
    imports: tuple[str, ...]  # import_playbook targets, relative to the repository
    attrs: dict

    @property
    def is_check(self) -> bool:
        """Only checks: every task validates a role's variables, and no role is applied."""
        return bool(self.validates) and not self.roles and "roles" not in self.attrs and all(
            _included_role(task)[1] == "validate" for task in _tasks(self.attrs.get("tasks") or []))


def plays(root: Path, playbook: str) -> list[Play]:
    """The plays of a playbook (a path relative to *root*)."""
    path = root / playbook
    data = read_yaml(path)
    if not isinstance(data, list):
        raise ServicesError(f"{path}: a playbook must be a list of plays")
    result = []
    for number, play in enumerate(data, 1):
        if not isinstance(play, dict):
            raise ServicesError(f"{path}: play {number} is not a mapping")
        imported = next((play[k] for k in IMPORT_PLAYBOOK if k in play), None)
        if imported is not None:
            target = (path.parent / str(imported)).resolve()
            try:
                relative = str(target.relative_to(root.resolve()))
            except ValueError:
                raise ServicesError(f"{path}: play {number} imports {imported}, "
                                    "outside the repository") from None
            result.append(Play(play.get("name", ""), (), {}, {}, (relative,), play))
            continue
        groups = host_groups(play.get("hosts", ""))
        roles: dict[str, tuple[str, ...]] = {}
        for entry in play.get("roles") or []:
            name = entry if isinstance(entry, str) else entry.get("role", entry.get("name"))
            roles.setdefault(name, _narrowed(groups, entry))
        validates: dict[str, tuple[str, ...]] = {}
        for task in _tasks([t for key in TASK_LISTS for t in play.get(key) or []]):
            name, tasks_from = _included_role(task)
            if name is None:
                continue
            if tasks_from == "validate":
                validates.setdefault(name, _narrowed(groups, task))
            else:
                roles.setdefault(name, _narrowed(groups, task))
        result.append(Play(play.get("name", ""), groups, roles, validates, (), play))
    return result


def host_groups(hosts: Any) -> tuple[str, ...]:
    """The groups a play's hosts pattern targets ("a:b:!disabled" -> a, b); a templated
    pattern counts as its default ("{{ x | default('all') }}")."""
    patterns = hosts if isinstance(hosts, list) else str(hosts).split(":")
    groups = []
    for pattern in patterns:
        pattern = str(pattern).strip()
        if "{{" in pattern:
            found = HOSTS_DEFAULT.search(pattern)
            groups += found.group(1).split(":") if found else []
        elif pattern and not pattern.startswith(("!", "&")):
            groups.append(pattern)
    return tuple(g for g in groups if g and not g.startswith("!"))


def _narrowed(groups: tuple[str, ...], item: Any) -> tuple[str, ...]:
    """The groups a role entry or task applies to: the play's, or the one its
    ``when: inventory_hostname in groups['x']`` names."""
    conditions = item.get("when") if isinstance(item, dict) else None
    for condition in conditions if isinstance(conditions, list) else [conditions]:
        found = GROUP_CONDITION.match(str(condition or "").strip())
        if found:
            return (found.group(1),)
    return groups


def _tasks(items: list) -> Iterator[dict]:
    """Every task of a task list, those in blocks included."""
    for item in items:
        if not isinstance(item, dict):
            continue
        if any(key in item for key in TASK_BLOCKS):
            for key in TASK_BLOCKS:
                yield from _tasks(item.get(key) or [])
        else:
            yield item


def _included_role(task: dict) -> tuple[str | None, str | None]:
    """(role, tasks_from without .yaml) of an include_role/import_role task, else (None, None)."""
    for key in INCLUDE_ROLE:
        args = task.get(key)
        if isinstance(args, dict) and isinstance(args.get("name"), str):
            tasks_from = args.get("tasks_from")
            return args["name"], re.sub(r"\.ya?ml$", "", tasks_from) if isinstance(tasks_from, str) else None
    return None, None


# --- what the roles include and the plugins they use -----------------------

def _task_files(root: Path, role: str) -> list[Path]:
    base = root / "roles" / role
    return sorted(p for sub in ("tasks", "handlers") for p in (base / sub).rglob("*.y*ml"))


@functools.cache
def role_includes(root: Path, role: str) -> tuple[str, ...]:
    """The roles a role includes or imports in its tasks and handlers, or depends on in its meta."""
    found: list[str] = []
    meta = root / "roles" / role / "meta" / "main.yaml"
    if meta.is_file():
        for dep in (read_yaml(meta) or {}).get("dependencies") or []:
            found.append(dep if isinstance(dep, str) else dep.get("role", dep.get("name")))
    for path in _task_files(root, role):
        for task in _tasks(read_yaml(path) or []):
            name = _included_role(task)[0]
            if name:
                found.append(name)
    return tuple(sorted(set(found) - {role}))


def role_closure(root: Path, roles: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Each role the given roles apply, those they include too: {role: why}."""
    result = {role: f"role {role}" for role in roles}
    pending = list(roles)
    while pending:
        role = pending.pop(0)
        for included in role_includes(root, role):
            if included not in result:
                result[included] = f"role {included} (which role {role} includes)"
                pending.append(included)
    return result


@functools.cache
def filter_plugins(root: Path) -> dict[str, str]:
    """{filter name: plugins/filter/<file>.py}, read from each FilterModule.filters()."""
    found = {}
    for path in sorted((root / "plugins" / "filter").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "filters":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                        for key in ret.value.keys:
                            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                                found[key.value] = str(path.relative_to(root))
    return found


@functools.cache
def module_plugins(root: Path) -> dict[str, tuple[str, ...]]:
    """{module name: (library/<name>.py, the plugins/module_utils files it imports)}."""
    found = {}
    for path in sorted((root / "library").glob("*.py")):
        files = [str(path.relative_to(root))]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible.module_utils."):
                util = root / "plugins" / "module_utils" / f"{node.module.rsplit('.', 1)[1]}.py"
                if util.is_file():
                    files.append(str(util.relative_to(root)))
        found[path.stem] = tuple(files)
    return found


def plugins_used(root: Path, files: list[str]) -> dict[str, str]:
    """The plugin files that these files (relative paths) use: {plugin file: why}.

    A filter is used where ``| name`` appears in a file's text; a module where
    a task of a YAML task list (a playbook's plays, a role's tasks and
    handlers) has it as a key."""
    filters, modules = filter_plugins(root), module_plugins(root)
    used: dict[str, str] = {}
    for name in files:
        path = root / name
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for filter_name in sorted(set(FILTER_USE.findall(text)) & set(filters)):
            used.setdefault(filters[filter_name], f"filter {filter_name}, used by {name}")
        is_tasks = name.startswith("roles/") and ("/tasks/" in name or "/handlers/" in name)
        is_playbook = name.startswith(("playbooks/", "molecule/"))
        if path.suffix not in (".yaml", ".yml") or not (is_tasks or is_playbook):
            continue
        data = read_yaml(path)
        items = data if isinstance(data, list) else []
        tasks = items if is_tasks else [t for play in items if isinstance(play, dict) and "hosts" in play
                                        for key in TASK_LISTS for t in play.get(key) or []]
        for task in _tasks(tasks):
            for module in sorted(set(task) & set(modules)):
                for plugin in modules[module]:
                    used.setdefault(plugin, f"module {module}, used by {name}")
    return used


# --- the files each deploy job and molecule job should follow --------------

def matches(pattern: str, path: str) -> bool:
    """A manifest path: a directory (ending in /) holds everything under it; else a glob."""
    return path.startswith(pattern) if pattern.endswith("/") else fnmatch.fnmatchcase(path, pattern)


Parts = list[tuple[str, str]]


def _role_parts(root: Path, roles: dict[str, str]) -> tuple[Parts, list[str]]:
    """(path, why) of each role's directory, and the files whose plugins count."""
    parts = [(f"roles/{role}/", why) for role, why in roles.items()]
    files = [str(p.relative_to(root)) for role in roles for p in sorted((root / "roles" / role).rglob("*"))
             if p.is_file() and p.suffix != ".md"]
    return parts, files


def _group_vars(groups: tuple[str, ...], why: str) -> Parts:
    return [(f"inventory/{inv}/group_vars/{group}{end}", f"{why} {group}")
            for group in groups for inv in INVENTORIES for end in (".yaml", "/")]


def tracked_group_vars(root: Path, groups: tuple[str, ...]) -> list[str]:
    return [str(p.relative_to(root)) for inv in INVENTORIES for group in groups
            for p in [root / "inventory" / inv / "group_vars" / f"{group}.yaml",
                      *sorted((root / "inventory" / inv / "group_vars" / group).rglob("*.y*ml"))]
            if p.is_file()]


def service_parts(root: Path, manifest: Manifest, service: Service) -> Parts:
    """(path or glob, why) of everything a change to which should deploy the service."""
    roles, role_files = _role_parts(root, role_closure(root, tuple(service.roles)))
    own = [service.playbook_path, *role_files, *tracked_group_vars(root, service.groups)]
    return [(service.playbook_path, "its playbook"), *roles,
            *_group_vars(service.groups, "the group vars of its group"),
            *_group_vars(service.group_vars_also, "the group vars of group (group_vars_also)"),
            *[(path, why) for path, why in plugins_used(root, own).items()],
            *[(path, "follows in services.yaml") for path in service.follows],
            *[(path, "shared: every deploy job follows it") for path in manifest.shared_deploy]]


def scenario_parts(root: Path, manifest: Manifest, scenario: Scenario) -> Parts:
    """(path or glob, why) of everything a change to which should run the scenario's job."""
    directory = root / "molecule" / scenario.name
    own_playbooks = [str(p.relative_to(root)) for p in sorted(directory.glob("*.y*ml"))
                     if p.name not in ("molecule.yml", "molecule.yaml")]
    applied = list(scenario.roles)
    playbooks = []
    for name in scenario.services:
        service = manifest.services[name]
        playbooks.append((service.playbook_path, f"the playbook of service {name}, which it imports"))
        applied += [r for r in service.roles if r not in applied]
    roles, role_files = _role_parts(root, role_closure(root, tuple(applied)))
    return [(f"molecule/{scenario.name}/", "its scenario"), *playbooks, *roles,
            *[(path, why) for path, why in
              plugins_used(root, own_playbooks + [p for p, _ in playbooks] + role_files).items()],
            *[(path, "follows in services.yaml") for path in scenario.follows],
            *[(path, "shared: every molecule job follows it") for path in manifest.shared_molecule]]


def why(parts: Parts) -> Callable[[str], str | None]:
    """A function that says why a path is part of these parts, or None."""
    def reason(path: str) -> str | None:
        return next((why for pattern, why in parts if matches(pattern, path)), None)
    return reason


def scenario_playbooks(root: Path, scenario: str) -> list[Play]:
    """The plays of a scenario's own playbooks (converge, prepare, side effects...)."""
    directory = root / "molecule" / scenario
    return [play for path in sorted(directory.glob("*.y*ml"))
            if path.name not in ("molecule.yml", "molecule.yaml")
            for play in plays(root, str(path.relative_to(root)))]
