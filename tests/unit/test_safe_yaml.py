"""devinfra/safe_yaml.py: the bounded YAML reader of devinfra validate and the yamlgroup plugin."""

import importlib.util
from pathlib import Path

import pytest

from devinfra import safe_yaml, validate

ROOT = Path(__file__).resolve().parents[2]


def read(text):
    """The data, or the ReadError's message."""
    try:
        return safe_yaml.loads(text)
    except safe_yaml.ReadError as exc:
        return str(exc)


def test_validate_and_the_yamlgroup_plugin_read_with_this_one_module():
    spec = importlib.util.spec_from_file_location("yamlgroup", ROOT / "plugins/inventory/yamlgroup.py")
    yamlgroup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(yamlgroup)
    assert Path(yamlgroup.safe_yaml.__file__) == Path(safe_yaml.__file__)
    assert validate.safe_yaml is safe_yaml


def test_aliases_may_add_up_to_the_bound_and_not_one_node_more():
    # An anchored list of 999 scalars is 1000 nodes; each alias to it adds 1000.
    anchor = "a: &a [" + ", ".join(["x"] * 999) + "]\n"
    times = safe_yaml.MAX_ALIAS_NODES // 1000
    data = read(anchor + "b: [" + ", ".join(["*a"] * times) + "]\n")
    assert len(data["b"]) == times and data["b"][0] is data["a"]
    assert read(anchor + "b: [" + ", ".join(["*a"] * (times + 1)) + "]\n") == (
        f"refused: line 2, column {5 + 4 * times}: the aliases expand to more than "
        f"{safe_yaml.MAX_ALIAS_NODES} nodes (an alias bomb?)")


def test_nesting_may_reach_the_bound_and_not_one_level_more():
    depth = safe_yaml.MAX_DEPTH
    data, levels = read("[" * depth + "]" * depth), 0
    while data != []:
        data, levels = data[0], levels + 1
    assert levels == depth - 1
    assert read("[" * (depth + 1) + "]" * (depth + 1)) == (
        f"refused: line 1, column {depth + 1}: nested more than {depth} levels deep")


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x [*x]\n", "refused: line 1, column 8: alias *x is inside the node it refers to (recursive data)"),
    ("a: &x {b: {c: *x}}\n", "refused: line 1, column 15: alias *x is inside the node it refers to "
                             "(recursive data)"),
    ("a: &x {<<: *x}\n", "refused: line 1, column 12: alias *x is inside the node it refers to "
                         "(recursive data)"),
    ("a: *nowhere\n", "not valid YAML: line 1, column 4: found undefined alias 'nowhere'"),
    ("a: 'open\n", "not valid YAML: line 2, column 1: while scanning a quoted scalar: "
                   "found unexpected end of stream"),
    ("a: 1\n---\nb: 2\n", "not valid YAML: line 2, column 1: expected a single document in the stream: "
                          "but found another document"),
    ("a: !!python/name:os.system\n", "not valid YAML: line 1, column 4: could not determine a constructor "
                                     "for the tag 'tag:yaml.org,2002:python/name:os.system'"),
])
def test_refused_and_invalid_documents_say_where_and_why(text, message):
    assert read(text) == message


def test_tagged_values_are_kept_uninterpreted():
    data = read("secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\nraw: !unsafe ['{{ x }}']\n")
    assert data == {"secret": safe_yaml.Tagged("!vault", "$ANSIBLE_VAULT;1.1;AES256\n6162\n"),
                    "raw": safe_yaml.Tagged("!unsafe", ["{{ x }}"])}
    assert repr(data["raw"]) == "!unsafe ['{{ x }}']"


def test_files_are_utf8_whatever_the_locale(tmp_path):
    path = tmp_path / "vars.yaml"
    path.write_bytes("\ufeffmotd: café\n".encode())
    assert safe_yaml.load(path) == {"motd": "café"}
    path.write_bytes("motd: café\n".encode("utf-16"))
    with pytest.raises(safe_yaml.ReadError, match=r"^not UTF-8: byte 0xff at offset 0$"):
        safe_yaml.load(path)


def test_a_file_that_cannot_be_read_is_a_read_error(tmp_path):
    with pytest.raises(safe_yaml.ReadError, match=r"^cannot be read: Is a directory$"):
        safe_yaml.load(tmp_path)
