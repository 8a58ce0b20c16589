"""The pki role's paths are written once: in its defaults (roles/pki/README.md).

pki_dir and the files in it (pki_ca_file, pki_cert_file, pki_key_file,
pki_bundle_file) are the pki role's defaults; other roles' defaults, the
inventory and the molecule scenarios refer to those variables. Role defaults
exist only in a play that has the role, so every play that runs a role whose
defaults name them has the pki role before it: under `roles:`, or, in a
check play, its validate included with `public: true` (an include_role's
defaults are private otherwise). Without it the run stops at that role's
argument-spec check with "'pki_ca_file' is undefined".
"""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"pki_ca_file", "pki_cert_file", "pki_key_file", "pki_bundle_file"}
LITERAL = "/etc/devinfra/pki"
SEARCHED = ["roles", "playbooks", "inventory", "molecule", "plugins", "devinfra"]
# pki's own default of pki_dir, the same default in its spec, the table
# generated from it, and the sample value in the module's RETURN docs.
ALLOWED = {"roles/pki/defaults/main.yaml", "roles/pki/meta/argument_specs.yaml", "roles/pki/README.md",
           "roles/pki/library/pki_bundle.py"}


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_pki_role_publishes_its_files_from_pki_dir():
    defaults = yaml.safe_load((ROOT / "roles/pki/defaults/main.yaml").read_text())
    assert {name for name in defaults if name.startswith("pki_") and name.endswith("_file")} == PUBLISHED
    for name in PUBLISHED:
        assert defaults[name].startswith("{{ pki_dir }}/"), name


def test_the_path_is_spelt_out_only_by_the_pki_role():
    found = {relative(path) for top in SEARCHED for path in (ROOT / top).rglob("*")
             if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts
             and LITERAL in path.read_text(errors="replace")}
    assert found - ALLOWED == set(), (
        f"{LITERAL} is the pki role's default of pki_dir: name pki_dir, pki_ca_file, pki_cert_file, "
        "pki_key_file or pki_bundle_file instead (molecule tests: devinfra_molecule.PKI_*)")


def consumers() -> set[str]:
    """Roles whose defaults name one of the pki role's published variables."""
    return {path.parents[1].name for path in (ROOT / "roles").glob("*/defaults/main.yaml")
            if path.parents[1].name != "pki" and any(name in path.read_text() for name in PUBLISHED)}


def test_the_consumers_are_the_expected_roles():
    # Not a rule, a tripwire: a new consumer must be covered by the play check below.
    assert consumers() >= {"zuul", "mirror", "etherpad", "zookeeper", "pagure", "prometheus"}


def tasks_of(tasks):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from tasks_of(task.get(key))


def role_steps(play: dict):
    """(role, visible) in the order the play runs them; visible: its defaults are the play's."""
    steps = []
    for section in ("pre_tasks", "roles", "tasks", "post_tasks"):
        if section == "roles":
            for entry in play.get("roles") or []:
                name = entry if isinstance(entry, str) else entry.get("role") or entry.get("name")
                steps.append((name, True))
            continue
        for task in tasks_of(play.get(section)):
            for action in ("include_role", "import_role"):
                args = task.get(f"ansible.builtin.{action}") or task.get(action)
                if isinstance(args, dict):
                    steps.append((args.get("name"), action == "import_role" or bool(args.get("public"))))
    return steps


def playbooks():
    files = sorted((ROOT / "playbooks").rglob("*.yaml")) + sorted((ROOT / "molecule").glob("*/*.yaml"))
    for path in files:
        data = yaml.safe_load(path.read_text())
        if isinstance(data, list) and all(isinstance(play, dict) for play in data) \
                and any("hosts" in play for play in data):
            yield path


@pytest.mark.parametrize("path", list(playbooks()), ids=relative)
def test_plays_have_the_pki_role_before_the_roles_that_use_its_paths(path):
    using = consumers()
    problems = []
    for index, play in enumerate(yaml.safe_load(path.read_text())):
        if "hosts" not in play:
            continue
        where = f"{relative(path)}, play {index + 1} ({play.get('name', play['hosts'])})"
        steps = role_steps(play)
        visible = False
        for role, public in steps:
            if role == "pki" and public:
                visible = True
            elif role in using and not visible:
                problems.append(f"{where}: {role} before the pki role (its defaults name pki_*_file): "
                                f"add the pki role first (include_role of its validate with public: true)")
        names = {name for name in PUBLISHED if name in yaml.safe_dump(play.get("vars") or {})}
        if names and not any(role == "pki" and public for role, public in steps):
            problems.append(f"{where}: its vars name {sorted(names)} but the play has no pki role")
    assert not problems, "\n".join(problems)
