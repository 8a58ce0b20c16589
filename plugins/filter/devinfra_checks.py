"""Filters over plugins/module_utils/checks.py, for the roles' checks (tasks/validate.yaml).

- ``rules | devinfra_problems``: the problems of a list of rules, each a mapping
  ``{name, value, kind}`` plus the kind's options (``path: dir``), ``each: true`` when value
  is a list whose items are checked, ``optional: true`` when an empty value is allowed. A
  problem reads ``<name> is <value>: not <what a valid value is>`` (``<name>[i]`` for an item,
  or the name with its first ``[]`` numbered: ``static_locations[].path``):
  ``mirror_cache_max_size is twenty gigs: not a size (a number, optionally followed by k, m or
  g, e.g. 20g)``. A role's validate.yaml is such a list, then the rules that relate variables.
- ``names | devinfra_duplicates``: the names listed more than once.
- ``names | devinfra_unknown(known)``: the names that are not in known.
- ``'url' | devinfra_describe(path='dir')``: what a valid value of a kind is, in words.

The Jinja test ``devinfra_valid`` (plugins/test/devinfra.py) checks one value.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from ansible.errors import AnsibleFilterError

# plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot import
# a repository's module_utils.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))


_RULE_KEYS = {"name", "value", "kind", "each", "optional"}


def _problems_of(rule, index):
    if not isinstance(rule, dict) or not {"name", "kind"} <= set(rule) or "value" not in rule:
        raise AnsibleFilterError(f"devinfra_problems: rule {index} needs name, value and kind, got {rule!r}")
    name, kind, value = rule["name"], rule["kind"], rule["value"]
    options = {k: v for k, v in rule.items() if k not in _RULE_KEYS}
    if kind not in checks.KINDS:
        raise AnsibleFilterError(f"devinfra_problems: rule {index} ({name}): unknown check {kind!r}")
    try:
        words = checks.describe(kind, **options)
        checks.valid(kind, None, **options)  # an option the kind does not take fails here
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"devinfra_problems: rule {index} ({name}): {exc}") from None
    if rule.get("each"):
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
            return [f"{name} must be a list, not {value!r}"]
        items = [(name.replace("[]", f"[{i}]", 1) if "[]" in name else f"{name}[{i}]", item)
                 for i, item in enumerate(value)]
    else:
        items = [(name, value)]
    problems = []
    for where, item in items:
        if rule.get("optional") and item in ("", None):
            continue
        if not checks.valid(kind, item, **options):
            problems.append(f"{where} is {item}: not {words}")
    return problems


def devinfra_problems(rules):
    """The problems of rules (see the module docstring), in order."""
    if not isinstance(rules, (list, tuple)):
        raise AnsibleFilterError(f"devinfra_problems: expected a list of rules, got {type(rules).__name__}")
    return [problem for index, rule in enumerate(rules) for problem in _problems_of(rule, index)]


def devinfra_duplicates(values):
    """The values listed more than once, each once."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise AnsibleFilterError(f"devinfra_duplicates: expected a list, got {type(values).__name__}")
    return checks.duplicates(values)


def devinfra_unknown(values, known):
    """The values that are not in known."""
    return checks.unknown(values, known)


def devinfra_describe(kind, **options):
    """What a valid value of kind is, in words."""
    if kind not in checks.KINDS:
        raise AnsibleFilterError(f"devinfra_describe: unknown check {kind!r}")
    return checks.describe(kind, **options)


class FilterModule:
    def filters(self):
        return {
            "devinfra_problems": devinfra_problems,
            "devinfra_duplicates": devinfra_duplicates,
            "devinfra_unknown": devinfra_unknown,
            "devinfra_describe": devinfra_describe,
        }
