"""Check the inventory against the roles' argument specs, before any run.

``devinfra validate`` reads every YAML file under inventory/ (hosts files,
group_vars/ and host_vars/) and every role's meta/argument_specs.yaml. It
reports, naming the file and the key:

- a file that is not valid YAML (with line and column);
- a variable with a role's prefix (``base_...``) that the role does not
  declare (a typo would otherwise be silently ignored);
- a value of the wrong type or outside its choices;
- a required list sub-option that is empty (an admin user without a key).

Variables named ``<option>_<suffix>`` are checked like ``<option>`` (the
base role adds up ``base_firewall_allow_<group>`` lists that way). Values
that are Jinja templates are resolved only at run time, where the role's own
argument spec validation checks them again; they are skipped here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    path: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key}: {self.message}" if self.key else f"{self.path}: {self.message}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps Ansible's !vault and !unsafe values opaque."""


def _opaque(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> str:
    return "{{ opaque }}"


_Loader.add_multi_constructor("!", _opaque)


def load_yaml(path: Path) -> tuple[Any, Problem | None]:
    try:
        return yaml.load(path.read_text(), Loader=_Loader), None  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, Problem(str(path), "", f"not valid YAML: {where}{problem}")


def role_specs(roles_dir: Path) -> dict[str, dict[str, dict]]:
    """{role: {option: spec}} for the main entry point of every role."""
    specs: dict[str, dict[str, dict]] = {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.y*ml")):
        role = spec_file.parent.parent.name
        data = yaml.safe_load(spec_file.read_text()) or {}
        main = (data.get("argument_specs") or {}).get("main") or {}
        specs[role] = main.get("options") or {}
    return specs


def _inventory_vars(path: Path, data: Any) -> Iterator[tuple[str, dict]]:
    """(where, vars) pairs from one inventory file."""
    parts = path.parts
    if "group_vars" in parts or "host_vars" in parts:
        if isinstance(data, dict):
            yield "", data
        return
    if not isinstance(data, dict) or "plugin" in data:
        return  # an inventory plugin's configuration (yamlgroup, ...), not hosts and vars

    def walk(group: dict, where: str) -> Iterator[tuple[str, dict]]:
        if not isinstance(group, dict):
            return
        if isinstance(group.get("vars"), dict):
            yield f"{where}.vars", group["vars"]
        hosts, children = group.get("hosts"), group.get("children")
        for host, hostvars in (hosts.items() if isinstance(hosts, dict) else ()):
            if isinstance(hostvars, dict):
                yield f"{where}.hosts.{host}", hostvars
        for child, body in (children.items() if isinstance(children, dict) else ()):
            yield from walk(body or {}, f"{where}.children.{child}")

    for name, group in data.items():
        yield from walk(group, name)


def _templated(value: Any) -> bool:
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
        for where, variables in _inventory_vars(path, data):
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
