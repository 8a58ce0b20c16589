"""Read one YAML file with bounds: the one YAML reader of inventory files.

``load(path)`` returns the file's data, or raises ReadError with a one-line
message (without the path: callers name the file):

- ``not UTF-8: byte 0xff at offset 12``: the file is decoded strictly, as
  Ansible reads it, not in the locale's encoding;
- ``not valid YAML: line 3, column 9: ...``;
- ``refused: line 1, column 9: alias *x is inside the node it refers to
  (recursive data)``: PyYAML would build a list or mapping that contains
  itself, and every walk over it would recurse without end;
- ``refused: line 9, column 8: the aliases expand to more than 100000
  nodes (an alias bomb?)``: a few hundred bytes of nested aliases ("billion
  laughs") stand for billions of nodes. PyYAML shares the aliased objects,
  so loading is cheap, but anything that walks, copies or serializes the
  data (a check, Ansible's templating of variables) expands them;
- ``refused: line 101, column 5: nested more than 100 levels deep``: the
  composer and every walk over the data recurse once per level.

The bounds are checked while the document is composed, before any Python
object is built, in time and memory proportional to the file: each node's
expanded size (itself plus everything under it, aliases counted as copies of
what they refer to) is computed once, when the node is complete, and each
alias adds its target's expanded size to the document's count. Documents
without aliases are never refused for their size.

Tagged values (Ansible's ``!vault``, ``!unsafe``) are returned as Tagged,
not decrypted or interpreted: a check can skip them, and their content is
kept for messages.

Used by ``devinfra validate`` (devinfra/validate.py) and by the yamlgroup
inventory plugin (plugins/inventory/yamlgroup.py), which loads this file by
its path in the same checkout (``plugins/inventory/../../devinfra/``), not
as ``devinfra.safe_yaml``. The plugin cannot count on importing the devinfra
package: on the bastion, Ansible runs from a virtualenv that the bastion
role fills from ``bastion_pip_packages`` (Ansible, openstacksdk, ara...),
without devinfra; the checkout is on Python's path only where
devinfra-deploy-merged sets PYTHONPATH for the deploys it starts, not for
an ``ansible-playbook`` an operator runs from the checkout (the maintenance
playbooks), whose first path entry is the virtualenv's bin/. Ansible's
controller plugins cannot import this repository's plugins/module_utils
either. The plugin file is always this checkout's (ansible.cfg's
inventory_plugins), so the path always holds. Hence this module imports
nothing but the standard library and PyYAML (which Ansible requires), and
nothing from devinfra.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml

# Nodes that a document's aliases may add, in total, counted as if each alias
# were a copy of what it refers to. Merge keys (<<: *defaults) and a few
# shared lists stay far below; a bomb passes it within a few aliases.
MAX_ALIAS_NODES = 100_000

# Levels of nesting (lists and mappings in each other). Inventory data is a
# few levels deep.
MAX_DEPTH = 100


class ReadError(Exception):
    """A file that cannot be read, or is refused; str() is the reason."""


class Tagged(NamedTuple):
    """A value with an explicit tag, such as ``!vault |`` or ``!unsafe``, left uninterpreted."""

    tag: str
    value: Any

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that is refused; problem_mark is where."""


class _BoundedComposer(yaml.composer.Composer):
    """Composer that refuses recursive aliases, alias bombs and deep nesting.

    ``_size`` maps the id of every complete node to its expanded size; a node
    that an alias refers to but that has no size yet is still being composed:
    the alias is inside it. Node ids stay unique while the document is
    composed, as every node is kept by its parent or its anchor.
    """

    def compose_document(self) -> yaml.Node:
        self._size: dict[int, int] = {}
        self._alias_nodes = 0
        self._depth = 0
        try:
            return super().compose_document()
        finally:
            self._size = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            size = self._size.get(id(node))
            if size is None:
                raise _Refused(None, None, f"alias *{event.anchor} is inside the node it refers to "
                               "(recursive data)", event.start_mark)
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise _Refused(None, None, f"the aliases expand to more than {MAX_ALIAS_NODES} nodes "
                               "(an alias bomb?)", event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(None, None, f"nested more than {MAX_DEPTH} levels deep",
                           self.peek_event().start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        self._size[id(node)] = 1 + sum(self._size[id(child)] for child in children)
        return node


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer,
              yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """SafeLoader with the bounded composer; explicit ``!`` tags become Tagged."""

    def __init__(self, stream: str):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def _tagged(loader: _Loader, tag_suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(node.tag, value)


_Loader.add_multi_constructor("!", _tagged)


def _where(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def loads(text: str) -> Any:
    """The data of one YAML document (None for an empty one); ReadError if refused."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ReadError(f"refused: {_where(exc.problem_mark)}{exc.problem}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        if context := getattr(exc, "context", None):  # "while scanning a quoted scalar"
            problem = f"{context}: {problem}"
        raise ReadError(f"not valid YAML: {_where(getattr(exc, 'problem_mark', None))}{problem}") from None
    finally:
        loader.dispose()


def load(path: str | Path) -> Any:
    """The data of the YAML file at *path*; ReadError if it cannot be read or is refused."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    return loads(text)


def shown(value: Any) -> str:
    """A value of the wrong kind, for the message that refuses it: what it is, then the value
    itself on one line, cut short ("a list ['a', 3]", "a string 'soon'", "nothing (null)")."""
    if value is None or isinstance(value, Tagged):
        return describe(value)  # a vaulted value is never shown
    text = repr(value)
    return f"{describe(value)} {text if len(text) <= 60 else text[:57] + '...'}"


def describe(value: Any) -> str:
    """What a YAML value is, for messages ("a list", "nothing (null)", "a !vault value")."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, Tagged):
        return f"a {value.tag} value"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
