"""The systemd sandbox has one owner: roles/systemd_hardening's drop-in.

Its template renders each profile as the role's README says, and no other
file of roles/ sets a sandboxing directive (a unit that sets its own drifts
from the others, and a drop-in is read after the unit file anyway).
"""

import re
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "systemd_hardening"

# The directives the drop-in owns.
OWNED = (
    "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectSystem", "ProtectHome",
    "ReadWritePaths", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictSUIDSGID",
    "RestrictRealtime", "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute",
    "CapabilityBoundingSet", "AmbientCapabilities", "RestrictAddressFamilies",
    "SystemCallArchitectures", "PrivateUsers",
)
DIRECTIVE = re.compile(rf"^\s*({'|'.join(OWNED)})\s*=", re.MULTILINE)


def render(**inputs) -> dict[str, list[str]]:
    values = {
        "ansible_managed": "managed",
        "systemd_hardening_unit": "example.service",
        "systemd_hardening_profile": "strict",
        "systemd_hardening_protect_system": "strict",
        "systemd_hardening_read_write_paths": [],
        "systemd_hardening_address_families": ["AF_UNIX", "AF_INET", "AF_INET6"],
        "systemd_hardening_capabilities": [],
        "systemd_hardening_private_users": None,
        **inputs,
    }
    env = jinja2.Environment(  # noqa: S701 (a systemd file, not HTML)
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.get_template("hardening.conf.j2").render(values)
    assert "[Service]" in text
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_strict_profile_denies_writable_executable_memory_and_every_capability():
    settings = render()
    assert settings["MemoryDenyWriteExecute"] == ["yes"]
    assert settings["CapabilityBoundingSet"] == [""]
    assert settings["AmbientCapabilities"] == [""]
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["RestrictAddressFamilies"] == ["", "AF_UNIX AF_INET AF_INET6"]
    assert "ReadWritePaths" not in settings, "an empty ReadWritePaths= would reset the unit's own"
    assert "PrivateUsers" not in settings


def test_the_service_profile_differs_only_by_memory_deny_write_execute():
    strict, service = render(), render(systemd_hardening_profile="service")
    assert "MemoryDenyWriteExecute" not in service
    del strict["MemoryDenyWriteExecute"]
    assert service == strict


def test_inputs_become_their_directives():
    settings = render(
        systemd_hardening_protect_system="full",
        systemd_hardening_read_write_paths=["/var/lib/a", "-/var/lib/b"],
        systemd_hardening_address_families=["AF_UNIX"],
        systemd_hardening_capabilities=["CAP_SETUID", "CAP_SETGID"],
        systemd_hardening_private_users=False,
    )
    assert settings["ProtectSystem"] == ["full"]
    assert settings["ReadWritePaths"] == ["/var/lib/a", "-/var/lib/b"]
    assert settings["RestrictAddressFamilies"] == ["", "AF_UNIX"]
    # The reset first: the unit's own set does not add to ours.
    assert settings["CapabilityBoundingSet"] == ["", "CAP_SETUID CAP_SETGID"]
    assert settings["PrivateUsers"] == ["no"]


def _role_files():
    for path in sorted((ROOT / "roles").rglob("*")):
        if path.is_file() and ROLE not in path.parents and path.suffix != ".md":
            yield path


# What a role's file may set itself, and why.
ALLOWED = {
    # A grant, not a sandbox: zuul-fingergw binds a port below 1024. Zuul's
    # daemons have no sandbox (the executor runs bubblewrap itself).
    "roles/zuul/templates/zuul-component.service.j2": {"AmbientCapabilities"},
}


def test_no_other_role_file_sets_a_sandboxing_directive():
    problems = []
    for path in _role_files():
        where = str(path.relative_to(ROOT))
        found = {m.group(1) for m in DIRECTIVE.finditer(path.read_text(errors="replace"))}
        if found - ALLOWED.get(where, set()):
            problems.append(f"{where} sets {sorted(found - ALLOWED.get(where, set()))}")
    assert not problems, ("pass these to roles/systemd_hardening (include_role) instead, see its README:\n"
                          + "\n".join(problems))


def test_the_scan_sees_the_role_files():
    assert sum(1 for _ in _role_files()) > 100
