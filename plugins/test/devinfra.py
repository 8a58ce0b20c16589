"""The Jinja test ``devinfra_valid``: the roles' checks with plugins/module_utils/checks.py's kinds.

``{% if vhost.upstream is not devinfra_valid('url', path='none') %}`` is true when the value is not
an http(s) URL without a path, by the same rule every other reader of that variable uses
(filters, inventory plugins, ``devinfra validate``). ``checks.describe`` gives the words for the
error message (the ``devinfra_describe`` filter, plugins/filter/devinfra_checks.py).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from ansible.errors import AnsibleFilterError

# plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot import
# a repository's module_utils.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))


def devinfra_valid(value, kind, **options):
    """Whether value is a valid ``kind`` (plugins/module_utils/checks.py's KINDS)."""
    try:
        return checks.valid(kind, value, **options)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"devinfra_valid({kind!r}): {exc}") from None


class TestModule:
    def tests(self):
        return {"devinfra_valid": devinfra_valid}
