"""Each role's defaults, types and descriptions are written once: in its argument specs.

defaults/main.yaml holds the values Ansible uses; meta/argument_specs.yaml
must declare every one of them with the same default; the README's variable
tables are generated from the specs by tools/role-docs.py.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yaml"))


def load_tool():
    spec = importlib.util.spec_from_file_location("role_docs", ROOT / "tools" / "role-docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


docs = load_tool()


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yaml").read_text()) or {}


def same(a, b) -> bool:
    """Equal YAML values, types included (true is not 1, "22" is not 22)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_every_role_is_covered():
    assert len(ROLES) == len(list((ROOT / "roles").glob("*/defaults/main.yaml")))
    assert sorted(p.parent.name for p in (ROOT / "roles").glob("*/README.md")) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_readme_tables_are_generated_from_the_specs(role):
    current, wanted = docs.expected_readme(ROOT / "roles" / role)
    assert current.count(docs.BEGIN) == 1, (
        f"roles/{role}/README.md has no generated variable table: run `{docs.COMMAND} {role}`")
    assert current == wanted, (
        f"roles/{role}/README.md differs from roles/{role}/meta/argument_specs.yaml: "
        f"edit the spec, not the table, then run `{docs.COMMAND} {role}`")


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_declared_with_the_same_value(role):
    values = defaults(role)
    options = docs.entry_points(ROOT / "roles" / role)["main"].get("options") or {}
    problems = []
    for name, value in values.items():
        if name not in options:
            problems.append(f"{name}: in defaults/main.yaml, not in the spec")
        elif "default" not in options[name]:
            problems.append(f"{name}: the spec gives no default; defaults/main.yaml has {value!r}")
    for point, body in docs.entry_points(ROOT / "roles" / role).items():
        for name, option in (body.get("options") or {}).items():
            if "default" not in (option or {}):
                continue
            if name not in values:
                problems.append(f"{point}.{name}: a spec default Ansible never uses "
                                f"(not in defaults/main.yaml): {option['default']!r}")
            elif not same(option["default"], values[name]):
                problems.append(f"{point}.{name}: spec default {option['default']!r}, "
                                f"defaults/main.yaml {values[name]!r} (Ansible uses the latter)")
    assert not problems, f"roles/{role}:\n" + "\n".join(problems)


def _option_texts(options: dict, where: str):
    for name, option in (options or {}).items():
        option = option or {}
        yield f"{where}{name}", option.get("description")
        yield from _option_texts(option.get("options"), f"{where}{name}.")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


class AnyName(dict):
    """Filters and tests: any name exists (only the variables matter here)."""

    def __contains__(self, name):
        return True

    def __missing__(self, name):
        return lambda *args, **kwargs: None

    def get(self, name, default=None):
        return self[name]


# What the validation task may template, besides the role's own defaults.
MAGIC = {"inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
         "role_path", "playbook_dir", "lookup", "query", "q", "omit"}
# The pki role's published paths (roles/pki/README.md): every play that runs
# a role defaulting to them has the pki role first, its validate included
# with `public: true` in check plays (tests/unit/test_pki_paths.py).
PUBLISHED = {"pki_ca_file", "pki_cert_file", "pki_key_file", "pki_bundle_file"}


@pytest.mark.parametrize("role", ROLES)
def test_spec_templates_name_only_what_exists_when_the_role_validates(role):
    """Ansible templates the options of the role's validation task, descriptions and defaults included.

    A description with Jinja in it, or a default naming a variable the host
    may not have (a fact before facts are gathered), would fail every run.
    """
    env = jinja2.Environment(autoescape=False)  # noqa: S701 (parsed, never rendered)
    env.filters, env.tests = AnyName(env.filters), AnyName(env.tests)  # Ansible's and ours
    known = set(defaults(role)) | MAGIC | PUBLISHED
    problems = []
    for point, body in docs.entry_points(ROOT / "roles" / role).items():
        options = body.get("options") or {}
        for where, text in _option_texts(options, f"{point}."):
            joined = " ".join(text) if isinstance(text, list) else str(text or "")
            if any(mark in joined for mark in ("{{", "{%", "{#")):
                problems.append(f"{where}: Jinja in a description (write <name>, not {{{{ name }}}})")
        for name, option in options.items():
            for string in _strings((option or {}).get("default")):
                if not docs._templated(string):
                    continue
                names = jinja2.meta.find_undeclared_variables(env.parse(string))
                if names - known:
                    problems.append(f"{point}.{name}: its default names {sorted(names - known)}")
    assert not problems, f"roles/{role}:\n" + "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_generating_is_deterministic_and_idempotent(role):
    role_dir = ROOT / "roles" / role
    first = docs.render(role_dir)
    assert docs.render(role_dir) == first
    _, once = docs.expected_readme(role_dir)
    assert docs.updated_readme(once, first, role_dir / "README.md") == once


def test_the_command_rewrites_then_checks_clean(tmp_path, capsys):
    roles = tmp_path / "roles"
    for role in ("base", "backup_client"):
        shutil.copytree(ROOT / "roles" / role / "meta", roles / role / "meta")
        shutil.copy(ROOT / "roles" / role / "README.md", roles / role / "README.md")
    readme = roles / "base" / "README.md"
    row = "| `base_sshd_port` | int | `22` |"
    readme.write_text(readme.read_text().replace(row, row.replace("22", "2222")))
    (roles / "backup_client" / "README.md").write_text("# backup_client\n\nProse.\n")

    assert docs.main(["--check", "--roles-dir", str(roles)]) == 1
    out = capsys.readouterr()
    assert "base/README.md: differs" in out.out and "backup_client/README.md: differs" in out.out
    assert "Run: python3 tools/role-docs.py backup_client base" in out.err

    assert docs.main(["--roles-dir", str(roles)]) == 0
    written = {p: p.read_text() for p in roles.glob("*/README.md")}
    assert row in written[readme]
    appended = written[roles / "backup_client" / "README.md"]
    assert appended.startswith(f"# backup_client\n\nProse.\n\n## Variables\n\n{docs.BEGIN}\n")
    assert docs.main(["--check", "--roles-dir", str(roles)]) == 0
    assert docs.main(["--roles-dir", str(roles)]) == 0
    assert {p: p.read_text() for p in roles.glob("*/README.md")} == written


def test_a_readme_with_broken_markers_is_refused(tmp_path, capsys):
    role = tmp_path / "roles" / "base"
    shutil.copytree(ROOT / "roles" / "base" / "meta", role / "meta")
    (role / "README.md").write_text(f"# base\n\n{docs.BEGIN}\n")
    assert docs.main(["--check", "--roles-dir", str(tmp_path / "roles")]) == 2
    assert "expected one" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "cell"), [
    ({"default": "no"}, '`"no"`'),
    ({"default": ""}, '`""`'),
    ({"default": "/bin/bash"}, "`/bin/bash`"),
    ({"default": False}, "`false`"),
    ({"default": None}, "`null`"),
    ({"default": "{{ a | default('') }}"}, "`\"{{ a \\| default('') }}\"`"),
    ({"default": "{{ [a,\n    b] }}"}, '`"{{ [a, b] }}"`'),
    ({"default": "line one\nline two\n"}, "`line one … (2 lines)`"),
    ({"default": [f"item-{i:02}" for i in range(20)]},
     "`[item-00, item-01, item-02, item-03, item-04, item-05, item-06, …]` "
     "(20 items, [defaults/main.yaml](defaults/main.yaml))"),
    ({"default": {f"key{i}": i for i in range(30)}},
     "`{key0: 0, key1: 1, key2: 2, key3: 3, key4: 4, key5: 5, key6: 6, …}` "
     "(30 keys, [defaults/main.yaml](defaults/main.yaml))"),
    ({}, ""),
])
def test_defaults_are_rendered_compactly(option, cell):
    assert docs.render_default(option) == cell


def test_descriptions_keep_their_code_and_escape_what_markdown_would_eat():
    text = ["Either a|b, or `x | y`;", "files are <name>.json", "in <UTC time>/<server_name>/."]
    assert docs.render_text(text) == \
        "Either a\\|b, or `x \\| y`; files are \\<name>.json in \\<UTC time>/<server_name>/."
    assert docs.render_type({"type": "list", "elements": "str", "choices": ["a", "no"]}) == \
        'list of str; one of `a`, `"no"`'
