"""The Jinja test ``devinfra_valid``: the roles' checks with plugins/module_utils/checks.py's kinds.

``{% if vhost.upstream is not devinfra_valid('url', path='none') %}`` is true when the value is not
an http(s) URL without a path, by the same rule every other reader of that variable uses
(filters, inventory plugins, ``devinfra validate``). ``checks.describe`` gives the words for the
error message (the ``devinfra_describe`` filter, plugins/filter/devinfra_checks.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError


def _load_checks():
    """plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot
    import a repository's module_utils."""
    path = Path(__file__).resolve().parents[1] / "module_utils" / "checks.py"
    spec = importlib.util.spec_from_file_location("_devinfra_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


def devinfra_valid(value, kind, **options):
    """Whether value is a valid ``kind`` (plugins/module_utils/checks.py's KINDS)."""
    try:
        return checks.valid(kind, value, **options)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"devinfra_valid({kind!r}): {exc}") from None


class TestModule:
    def tests(self):
        return {"devinfra_valid": devinfra_valid}
