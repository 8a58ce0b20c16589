"""Check the inventory against the roles' argument specs, before any run.

``devinfra validate`` reads every YAML file under inventory/ (hosts files,
group_vars/ and host_vars/) and every role's meta/argument_specs.yaml. It
reports, naming the file and the key:

- a file that cannot be read safely: not UTF-8, not valid YAML (with line
  and column), recursive aliases, aliases that expand beyond a bound, or
  nesting too deep (devinfra/safe_yaml.py, the reader the yamlgroup plugin
  uses too);
- a structure Ansible would reject or skip: a group_vars/ or host_vars/ file
  that is not a mapping of variables; in a hosts file, a group that is not a
  mapping, a ``hosts``, ``children`` or ``vars`` that is not a mapping (a
  string is one name, as Ansible reads it), a key other than those three,
  host variables that are not a mapping;
- a variable with a role's prefix (``base_...``) that the role does not
  declare (a typo would otherwise be silently ignored);
- a value of the wrong type or outside its choices;
- a required list sub-option that is empty (an admin user without a key);
- a value its name's convention rules out (plugins/module_utils/checks.py, the rules the
  roles' own checks apply at run time): a ``*_port`` that is not a port, a ``*_dir``,
  ``*_file`` or ``*_path`` that is not an absolute path, a ``*_url`` that is not a URL.

Variables named ``<option>_<suffix>`` are checked like ``<option>`` (the
base role adds up ``base_firewall_allow_<group>`` lists that way). Values
that are Jinja templates are resolved only at run time, where the role's own
argument spec validation checks them again; they are skipped here, and so
are tagged values (``!vault``, ``!unsafe``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devinfra import checks, safe_yaml


@dataclass(frozen=True)
class Problem:
    path: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.message}" if self.key else f"{self.path}: {self.message}"


def load_yaml(path: Path) -> tuple[Any, Problem | None]:
    try:
        return safe_yaml.load(path), None
    except safe_yaml.ReadError as exc:
        return None, Problem(str(path), "", str(exc))


def role_specs(roles_dir: Path) -> dict[str, dict[str, dict]]:
    """{role: {option: spec}} for the main entry point of every role."""
    specs: dict[str, dict[str, dict]] = {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.y*ml")):
        role = spec_file.parent.parent.name
        data = yaml.safe_load(spec_file.read_text()) or {}
        main = (data.get("argument_specs") or {}).get("main") or {}
        specs[role] = main.get("options") or {}
    return specs




_GROUP_KEYS = ("hosts", "children", "vars")
_SECTION_NAMES = {"hosts": "host names", "children": "group names", "vars": "variable names"}


def _inventory_vars(path: Path, data: Any) -> tuple[list[tuple[str, dict]], list[Problem]]:
    """The (where, vars) pairs of one inventory file, and its structure's problems.

    The structure is checked as Ansible reads it (the ``yaml`` inventory
    plugin and the group_vars/host_vars loader): what Ansible would fail on
    or skip with a warning is a problem, since a skipped group or host
    silently drops its hosts and variables.
    """
    found: list[tuple[str, dict]] = []
    problems: list[Problem] = []

    def problem(key: str, message: str) -> None:
        problems.append(Problem(str(path), key, message))

    parts = path.parts
    if "group_vars" in parts or "host_vars" in parts:
        if isinstance(data, dict):
            found.append(("", data))
        elif data is not None:
            problem("", f"expected a mapping of variable names to values, got {safe_yaml.describe(data)}")
        return found, problems
    if data is None:
        return found, problems
    if not isinstance(data, dict):
        problem("", f"expected a mapping of group names at the top level, got {safe_yaml.describe(data)}")
        return found, problems
    if "plugin" in data:
        return found, problems  # an inventory plugin's configuration (yamlgroup, ...), not hosts and vars

    def section(group: dict, key: str, where: str) -> dict:
        """The group's hosts, children or vars as a mapping; {} if absent or wrong."""
        value = group.get(key)
        if isinstance(value, str):
            return {value: None}  # Ansible reads a string as one name
        if value is None or isinstance(value, dict):
            return value or {}
        problem(f"{where}.{key}",
                f"expected a mapping of {_SECTION_NAMES[key]}, got {safe_yaml.describe(value)}")
        return {}

    def walk(name: Any, group: Any, where: str) -> None:
        if not isinstance(name, str):
            problem(where, f"a group name must be a string, got {safe_yaml.describe(name)}")
            return
        if group is None:
            return
        if not isinstance(group, dict):
            problem(where, f"expected a group (a mapping with {', '.join(_GROUP_KEYS)}), "
                    f"got {safe_yaml.describe(group)}")
            return
        for key in group:
            if key not in _GROUP_KEYS:
                problem(f"{where}.{key}", f"not a group key: a group has only {', '.join(_GROUP_KEYS)}")
        variables = section(group, "vars", where)
        if variables:
            found.append((f"{where}.vars", variables))
        for host, hostvars in section(group, "hosts", where).items():
            if not isinstance(host, str):
                problem(f"{where}.hosts", f"a host name must be a string, got {safe_yaml.describe(host)}")
            elif isinstance(hostvars, dict):
                found.append((f"{where}.hosts.{host}", hostvars))
            elif hostvars is not None:
                problem(f"{where}.hosts.{host}",
                        f"expected a mapping of host variables, got {safe_yaml.describe(hostvars)}")
        for child, body in section(group, "children", where).items():
            walk(child, body, f"{where}.children.{child}")

    for name, group in data.items():
        walk(name, group, str(name))
    return found, problems


def _templated(value: Any) -> bool:
    if isinstance(value, safe_yaml.Tagged):
        return True  # !vault, !unsafe: only Ansible can tell what they hold
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


def _strip_docs(spec: dict) -> dict:
    """The argument spec without documentation keys, for the validator."""
    spec = {k: v for k, v in copy.deepcopy(spec).items() if k not in ("description", "version_added")}
    if isinstance(spec.get("options"), dict):
        spec["options"] = {k: _strip_docs(v) for k, v in spec["options"].items()}
    return spec


def _empty_required_lists(value: Any, spec: dict, key: str) -> Iterator[str]:
    sub = spec.get("options")
    if not sub or spec.get("type") != "list" or not isinstance(value, list):
        return
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        for name, option in sub.items():
            if option.get("required") and option.get("type") == "list" and item.get(name) == []:
                label = f" (name: {item['name']})" if "name" in item else ""
                yield f"{key}[{index}].{name}{label} is empty; it needs at least one entry"


def _find_option(name: str, options: dict[str, dict]) -> str | None:
    if name in options:
        return name
    # <option>_<suffix> is checked like <option>: the longest option wins.
    candidates = [o for o in options if name.startswith(o + "_")]
    return max(candidates, key=len) if candidates else None


def check_value(key: str, value: Any, spec: dict) -> list[str]:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    if _templated(value):
        return []
    messages = list(_empty_required_lists(value, spec, key))
    validator = ArgumentSpecValidator({key: _strip_docs(spec)})
    result = validator.validate({key: value})
    messages.extend(str(e) for e in result.errors)
    if not messages:
        by_name = checks.by_name(key, value)
        if by_name:
            messages.append(by_name)
    return messages


def inventory_files(inventory_dir: Path) -> list[Path]:
    """YAML files under the directory; a symlinked file counts once, as itself."""
    paths = sorted(p for p in inventory_dir.rglob("*") if p.suffix in (".yaml", ".yml"))
    real = [p for p in paths if p.is_file() and not p.is_symlink()]
    seen = {p.resolve() for p in real}
    links = [p for p in paths if p.is_symlink() and p.is_file() and p.resolve() not in seen]
    return real + links


def validate(inventory_dir: Path, roles_dir: Path) -> list[Problem]:
    specs = role_specs(roles_dir)
    problems: list[Problem] = []
    files = inventory_files(inventory_dir)
    for path in files:
        data, problem = load_yaml(path)
        if problem:
            problems.append(problem)
            continue
        found, structure = _inventory_vars(path, data)
        problems.extend(structure)
        for where, variables in found:
            for name, value in variables.items():
                # The longest prefix names the role: mirror_update_x is
                # mirror_update's, not mirror's.
                role = max((r for r in specs if str(name).startswith(r + "_")), key=len, default=None)
                if role is None:
                    continue
                key = f"{where}.{name}" if where else str(name)
                option = _find_option(str(name), specs[role])
                if option is None:
                    problems.append(Problem(
                        str(path), key,
                        f"role {role!r} has no variable {name!r} "
                        f"(see roles/{role}/meta/argument_specs.yaml)",
                    ))
                    continue
                for message in check_value(str(name), value, specs[role][option]):
                    problems.append(Problem(str(path), key, message))
    return problems
