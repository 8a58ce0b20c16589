"""Each role's checks run once per run: the check play of a service playbook runs them on every host
before any role changes anything, and the role itself skips them when they have passed (the
<role>_variables_checked fact). The marker and the guard must name the same role, or a role would
skip checks nobody ran."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parents[1].name for p in (ROOT / "roles").glob("*/tasks/validate.yaml"))
# webfront checks its certificates, which a check play cannot (pki has not run); webfront's tls.yaml
# and pki's ca.yaml read what their checks register, and a skipped task registers its skip over
# it: these check every time.
EVERY_TIME = {"webfront", "pki"}


def tasks(role, name):
    return yaml.safe_load((ROOT / "roles" / role / "tasks" / name).read_text())


@pytest.mark.parametrize("role", ROLES)
def test_the_role_skips_only_the_checks_it_marks_as_passed(role):
    [guard] = [t for t in tasks(role, "main.yaml")
               if t.get("ansible.builtin.import_tasks") == "validate.yaml"]
    markers = [t for t in tasks(role, "validate.yaml")
               if f"{role}_variables_checked" in (t.get("ansible.builtin.set_fact") or {})]
    if role in EVERY_TIME:
        assert "when" not in guard and not markers
        return
    assert guard.get("when") == f"not ({role}_variables_checked | default(false))"
    [marker] = markers
    assert marker == tasks(role, "validate.yaml")[-1], "the marker comes after every check"
    assert marker["ansible.builtin.set_fact"] == {f"{role}_variables_checked": True}
    assert "when" not in marker


@pytest.mark.parametrize("role", sorted(set(ROLES) - EVERY_TIME))
def test_a_skipped_check_clobbers_nothing_the_role_reads(role):
    """A skipped task still registers (its skip): nothing a skippable validate.yaml registers may be
    read outside it, or the role would read a skip where the check play left a result."""
    registered = {t["register"] for t in tasks(role, "validate.yaml") if "register" in t}
    readers = [p for p in (ROOT / "roles" / role).rglob("*")
               if p.is_file() and p.name != "validate.yaml" and p.suffix in (".yaml", ".j2")]
    used = {(name, str(p.relative_to(ROOT))) for name in registered for p in readers
            if re.search(rf"\b{name}\b", p.read_text())}
    assert used == set()
