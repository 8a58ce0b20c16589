"""plugins/module_utils/checks.py, the value checks the roles, the filters and the inventory
plugins use, for the devinfra command: loaded by its path in this checkout, so that the CLI
judges a host name or a URL by exactly the rule the roles apply at run time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "plugins" / "module_utils" / "checks.py"


def _load():
    name = "devinfra._module_utils_checks"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_checks = _load()
valid = _checks.valid
describe = _checks.describe
host_name = _checks.host_name

# The naming conventions of the roles' variables (every role's meta/argument_specs.yaml keeps
# them; tests/unit/test_validate.py checks that it does): what a variable's name ends with says
# what its value is. An empty string means "not set" for paths and URLs.
BY_SUFFIX = {
    "_port": ("port", {}),
    "_dir": ("abs_path", {}),
    "_file": ("abs_path", {}),
    "_path": ("abs_path", {}),
    "_url": ("url", {"schemes": ("http", "https", "proxy-http", "proxy-https")}),
}


def by_name(name: str, value: object) -> str | None:
    """The problem of a variable's value by its name's convention (BY_SUFFIX), or None."""
    for suffix, (kind, options) in BY_SUFFIX.items():
        if name.endswith(suffix):
            if value == "" and kind != "port":
                return None
            if valid(kind, value, **options):
                return None
            return f"{value!r} is not {describe(kind, **options)}"
    return None
