"""Pattern groups: Ansible groups of existing hosts chosen by host-name patterns.

The inventory source is a YAML file in the format of OpenDev's ``groups.yaml``::

    plugin: yamlgroup
    groups:
      zookeeper: "zk[0-9]*.example.org"
      zuul: ["@zuul_scheduler", "@zuul_executor", "!@disabled"]

Every host already in the inventory whose name a group's entries select
becomes a member of that group; hosts are never created. DOCUMENTATION below
gives the syntax (``ansible-doc -t inventory yamlgroup`` renders it).

Speed: each distinct glob or regex is compiled once. The inventory's host
names are sorted and joined into one newline-separated string, and a pattern
finds its hosts with one regex scan of the part of that string where the
names start with the pattern's literal prefix (see ``HostNames`` and
``_ScannedPattern``); exact names are set lookups.

Regexes and globs are matched with RE2 (the google-re2 package, the engine
Zuul matches its users' patterns with), in time linear in the length of the
names: host names may come from cloud users (the OpenStack inventory), and
Python's backtracking ``re`` takes time exponential in a name's length for
a regex like ``^(a+)+$``, and time that grows as the length to the power
of the number of stars for the scanning regex of a glob like
``*a*a*a*a*c`` (``glob_to_regex`` makes each ``*`` a ``[^\n]*``; Python's
own fnmatch avoids that with atomic groups, which RE2 does not need). The
price is RE2's syntax: no backreferences and no lookarounds.

The file is read with devinfra/safe_yaml.py, the bounded YAML reader that
``devinfra validate`` uses too, loaded by its path in this checkout: the
Ansible that runs this plugin on the bastion is a virtualenv without the
devinfra package (safe_yaml.py's docstring says more).

Group names follow Ansible's TRANSFORM_INVALID_GROUP_CHARS setting
(``force_valid_group_names``), as the ``yaml`` and ``ini`` inventory plugins
do: a name is given to ``InventoryData.add_group``, whose Group keeps it
(``never``, the default, with a warning; ``ignore``) or replaces its invalid
characters with ``_`` (``always``, with a warning; ``silently``), and the
name it returns is the group's.
"""

import fnmatch
import importlib.util
import re
import runpy
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from types import SimpleNamespace

import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin

try:
    import re2
except ImportError:  # parse() warns and falls back to Python's re (see compile_pattern)
    re2 = None


def _load_safe_yaml():
    """devinfra/safe_yaml.py of this checkout, by its path (see the module docstring)."""
    path = Path(__file__).resolve().parents[2] / "devinfra" / "safe_yaml.py"
    spec = importlib.util.spec_from_file_location("_yamlgroup_safe_yaml", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


safe_yaml = _load_safe_yaml()
# plugins/module_utils/checks.py, by its path: what a host name is, for every part of devinfra.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))

DOCUMENTATION = r"""
name: yamlgroup
short_description: Groups of existing hosts chosen by host-name patterns
description:
  - Reads a YAML file whose top-level C(plugin) is C(yamlgroup) and whose C(groups) maps
    group names to host-name patterns, in the format of OpenDev's C(groups.yaml), and puts
    every host already in the inventory that a group's entries select into that group.
  - It never creates hosts. List it after the inventory sources that define the hosts; a
    pattern that selects no host is not an error.
  - Every group in the file is created, even one that selects no host (an empty list
    makes an empty group). Groups are flat, children of C(all); an C(@other) entry copies
    the members of C(other) and does not make it a child group.
  - Group variables apply as usual, for example from C(group_vars/) next to the file.
  - Memberships are only added. An exclusion limits what this file adds to a group; it
    does not remove a membership that another inventory source gave.
  - Errors fail the inventory source and name the file, the group and the entry; nothing
    is added to the inventory when the file has an error. They are raised for a file that
    is not UTF-8, not valid YAML or refused by the bounded YAML reader (recursive aliases,
    aliases that expand to too many nodes, nesting too deep), an entry that is not a
    string, an invalid or unsupported regular expression (with RE2's message), an
    C(@group) naming an unknown group, a cycle of C(@group) references, a C(groups) that
    is not a mapping, a top-level key other than C(plugin) and C(groups), and a group name
    that is not a string, is empty, or is C(all) or C(ungrouped).
  - A group name with characters Ansible does not accept in group names (anything but
    letters, digits and underscores, or a leading digit, as in C(zuul-executor)) follows
    Ansible's setting C(TRANSFORM_INVALID_GROUP_CHARS) (C(force_valid_group_names) in
    ansible.cfg) like other inventory sources - C(never), the default, keeps the name and
    warns; C(ignore) keeps it silently; C(always) replaces those characters with C(_) and
    warns; C(silently) replaces them without warning. An C(@group) entry names a group as
    this file writes it.
  - Regular expressions and globs are matched with RE2 (the Python package google-re2
    must be installed beside Ansible), in time linear in the length of the host names.
options:
  plugin:
    description: Marks the file as this plugin's configuration.
    required: true
    type: str
    choices: [yamlgroup]
  groups:
    description:
      - Group name to one entry or a list of entries. An empty list or no value makes
        an empty group.
      - An entry without the prefixes below is an fnmatch glob matched, case-sensitively,
        against the whole inventory host name. C(*) matches any run of characters (dots
        included), C(?) one character, C([seq]) one character in C(seq) (ranges such as
        C(0-9) allowed) and C([!seq]) one character not in C(seq). An entry without
        wildcards is an exact host name.
      - An entry starting with C(^) is a regular expression in RE2 syntax
        (U(https://github.com/google/re2/wiki/Syntax)) that must match the whole host name.
        It is mostly Python's syntax, but backreferences, lookarounds, atomic groups and
        possessive quantifiers are refused (they need backtracking); C(\z) ends the text
        (not C(\Z)), and C(\d), C(\w), C(\s) and C(\b) are ASCII only. Inline flags may
        come anywhere, as in V(^(?i\)web[0-9]+).
      - An entry starting with C(@) adds the members of another group, defined in this
        file or already in the inventory. C(@all) is every host in the inventory so far.
        C(@ungrouped) is refused, as Ansible settles that group only after every source
        is read.
      - An entry starting with C(!) excludes the hosts that the rest of the entry (a glob,
        a C(^) regex or an C(@group)) selects. Exclusions apply after all of the group's
        inclusions, wherever they are in the list.
      - Quote entries in YAML; unquoted, C(*), C(!), C(@), C([) and C(?) at the start of a
        value mean something else to YAML.
    type: dict
    required: true
"""

EXAMPLES = r"""
# inventory/service/groups.yaml, read after the file that defines the hosts:
#   ansible-inventory -i inventory/base/hosts.yaml -i inventory/service/groups.yaml --graph
plugin: yamlgroup
groups:
  # a glob
  zookeeper: "zk[0-9]*.example.org"
  # a list of entries: two globs and an exact host name
  mirror:
    - "mirror[0-9]*.*.example.org"
    - "static[0-9]*.example.org"
    - "files.example.org"
  # a regular expression, matched against the whole name (single quotes keep backslashes)
  etherpad: '^etherpad0[1-3]\.example\.org'
  # the members of other groups
  zuul: ["@zuul_scheduler", "@zuul_executor"]
  zuul_scheduler: "zuul[0-9]*.example.org"
  # every executor except those in the second region and those disabled
  zuul_executor: ["ze[0-9]*.example.org", "!*.ord.example.org", "!@disabled"]
  # a group with no member (yet) still exists, so "all:!disabled" is a valid pattern
  disabled: []
"""

# These three Python regexes only read pattern texts, written in the groups file:
# they are simple enough to take linear time.
_GLOB_WILDCARDS = re.compile(r"[*?[]")

# RE2 syntax whose meaning depends on text around the match (\A, \z) or that sets
# flags: for such a regex one scan of the joined host names could disagree with a full
# match of each name, so it is matched host by host. The test is conservative: it also
# catches harmless text (the same characters escaped or in a class, scoped flags,
# named groups other than (?P<name>...)), which only costs speed. ^, $ and \b are
# safe: the scan is in multi-line mode, and a newline borders each name like the ends
# of the text do.
_NOT_SCANNABLE = re.compile(r"\\[Az]|\(\?(?!:|P<)")

# The literal characters a regex starts with.
_REGEX_LITERALS = re.compile(r"[^\\.^$*+?{}\[\]|()]*")

_RESERVED_GROUPS = frozenset({"all", "ungrouped"})


class HostNames:
    """The inventory's host names, prepared for selection by patterns.

    ``joined`` is UTF-8: a newline followed by the names, sorted, each
    followed by a newline. Names that share a prefix are together, and
    ``span`` finds them by bisection. Names that contain a newline (Ansible
    allows them) or are not valid Unicode (a lone surrogate: UTF-8 cannot
    encode it) are left out of ``joined``: they are in ``odd``, and are
    matched one by one.
    """

    def __init__(self, names: Iterable[str]):
        self.names = frozenset(names)
        self.odd: list[str] = []
        scanned: list[tuple[str, bytes]] = []
        for name in self.names:
            try:
                if "\n" not in name:
                    scanned.append((name, name.encode()))
                    continue
            except UnicodeEncodeError:
                pass
            self.odd.append(name)
        scanned.sort()  # by name; UTF-8 keeps the order of code points
        self._sorted = [name for name, _ in scanned]
        self.joined = b"\n" + b"".join(encoded + b"\n" for _, encoded in scanned)
        # _newlines[i]: offset in joined of the newline before _sorted[i]; the last
        # one is the final newline.
        self._newlines = list(accumulate((len(encoded) + 1 for _, encoded in scanned), initial=0))

    def span(self, prefix: str) -> tuple[int, int]:
        """The slice of ``joined`` holding the names that start with *prefix*.

        It includes the newline before each of those names, and not the one
        after the last: a scan's ``$`` matches at the slice's end as before a
        newline (RE2 sees the text beyond), and no match can start there.
        """
        low = bisect_left(self._sorted, prefix)
        high = bisect_right(self._sorted, prefix, low, key=lambda name: name[:len(prefix)])
        return self._newlines[low], self._newlines[high]


class _ExactName:
    """An entry without wildcards: one host name, found by a set lookup."""

    def __init__(self, name: str):
        self._name = name

    def select(self, hosts: HostNames) -> set[str]:
        return {self._name} if self._name in hosts.names else set()


class _ScannedPattern:
    """A glob or regex that finds its hosts by scanning ``HostNames.joined``.

    ``matches(name)`` is the definition: does the pattern match the whole name.
    ``scanner`` (RE2, see ``_scanner``) finds ``"\\n" + name`` in the joined
    names for every name it matches, or is None when a scan cannot be trusted;
    it scans only the names that start with ``prefix``, a literal prefix of
    every name the pattern matches. A scan whose matches are single names
    agrees with ``matches`` (the scanner starts with a newline, ends before
    one, and cannot observe text outside its match); if a match runs over a
    newline, across names, the pattern falls back to ``matches`` on every host.
    """

    def __init__(self, matches: Callable[[str], object], scanner: "re2._Regexp | None",
                 prefix: str):
        self._matches = matches
        self._scanner = scanner
        self._prefix = prefix

    def select(self, hosts: HostNames) -> set[str]:
        if self._scanner is not None:
            found = [match[0][1:]
                     for match in self._scanner.finditer(hosts.joined, *hosts.span(self._prefix))]
            if not any(b"\n" in name for name in found):
                return {*(name.decode() for name in found), *filter(self._matches, hosts.odd)}
        return set(filter(self._matches, hosts.names))


def _re2_compile(regex: str) -> "re2._Regexp":
    """The RE2 regex; re2.error if RE2 refuses it (its message is not logged too).

    Groups do not capture: only whole matches are used, and each capture
    would cost time on every match.
    """
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    try:
        return re2.compile(regex, options)
    except UnicodeEncodeError:  # a lone surrogate, from a "\udcff" escape in YAML
        raise re2.error("not valid Unicode: it has a lone surrogate") from None


def _scanner(body: str) -> "re2._Regexp | None":
    """The scanner of a regex: a newline, the regex, and the end of a line (not consumed).

    Multi-line mode: ``^`` and ``$`` in the regex match at the ends of each name.

    None if the wrapped regex does not compile (a body that is valid only on
    its own, such as one ending in a backslash that escapes the wrapping).
    """
    try:
        return _re2_compile(f"(?m)\\n(?:{body})$")
    except re2.error:
        return None


def re2_message(error: Exception) -> str:
    """The text of an re2.error (the package gives it as bytes)."""
    message = error.args[0] if error.args else ""
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def glob_to_regex(glob: str) -> str | None:
    """Translate an fnmatch glob into an RE2 regex for the same names, newline excluded.

    The regex matches what ``fnmatch.fnmatchcase`` matches among names without
    a newline, and its ``*``, ``?`` and ``[!seq]`` never match a newline, so a
    scan of newline-separated names stays within one name. It has no anchors
    and no groups. None for a glob with a reversed range such as ``[z-a]``,
    which fnmatch reads in ways of its own: such a glob is matched with fnmatch
    host by host (Python's fnmatch makes each ``*`` an atomic group, so that
    is linear too).
    """
    parts = []
    i = 0
    while i < len(glob):
        char = glob[i]
        i += 1
        if char == "*":
            if parts[-1:] != [r"[^\n]*"]:  # "**" is "*"; one keeps backtracking linear
                parts.append(r"[^\n]*")
        elif char == "?":
            parts.append(r"[^\n]")
        elif char == "[" and (end := _bracket_end(glob, i)) is not None:
            bracket = _bracket_to_regex(glob[i:end])
            if bracket is None:
                return None
            parts.append(bracket)
            i = end + 1
        else:
            parts.append(_literal(char))
    return "".join(parts)


def _literal(char: str) -> str:
    """*char* as an RE2 literal, in a class or not: ASCII punctuation and controls as \\xHH."""
    return char if not char.isascii() or char.isalnum() else f"\\x{ord(char):02x}"


def _bracket_end(glob: str, start: int) -> int | None:
    """Index of the "]" closing the bracket whose content starts at *start*, or None.

    As in fnmatch, a "]" right after "[" or "[!" is part of the content, and a
    "[" that is never closed is a literal character.
    """
    i = start + 1 if glob.startswith("!", start) else start
    if glob.startswith("]", i):
        i += 1
    end = glob.find("]", i)
    return end if end >= 0 else None


def _bracket_to_regex(content: str) -> str | None:
    """The regex class for the content of a glob's "[...]", or None for a reversed range.

    ``x-y`` is a range unless the "-" comes first or last; every character is
    escaped, so none has a meaning of its own in the regex class.
    """
    negated = content.startswith("!")
    if negated:
        content = content[1:]
    items = []
    i = 0
    while i < len(content):
        if i + 2 < len(content) and content[i + 1] == "-":
            low, high = content[i], content[i + 2]
            if low > high:
                return None
            items.append(f"{_literal(low)}-{_literal(high)}")
            i += 3
        else:
            items.append(_literal(content[i]))
            i += 1
    return ("[^\\n" if negated else "[") + "".join(items) + "]"


def _regex_prefix(body: str) -> str:
    """A literal prefix of every name that the regex *body* matches, maybe empty.

    Conservative: the literal characters the body starts with, less the last
    one if a quantifier follows it, and nothing if the body has a "|".
    """
    if "|" in body:
        return ""
    prefix = _REGEX_LITERALS.match(body)[0]
    if body.startswith(("*", "+", "?", "{"), len(prefix)):
        prefix = prefix[:-1]
    return prefix


def compile_pattern(text: str) -> _ExactName | _ScannedPattern:
    """Compile one glob, ``^`` regex or exact name (an entry without ``!`` and ``@``).

    Raises re2.error for a regex RE2 refuses (re2_message gives its text).
    """
    if re2 is None:
        return _python_pattern(text)
    if text.startswith("^"):
        regex = _re2_compile(text)
        body = text[1:]
        scanner = None if _NOT_SCANNABLE.search(body) else _scanner(body)

        def matches(name: str) -> bool:
            # surrogatepass: a name with a lone surrogate is matched as the bytes it stands for.
            return regex.fullmatch(name.encode("utf-8", "surrogatepass")) is not None

        return _ScannedPattern(matches, scanner, _regex_prefix(body))
    wildcard = _GLOB_WILDCARDS.search(text)
    if wildcard:
        regex = glob_to_regex(text)
        scanner = None if regex is None else _scanner(regex)
        return _ScannedPattern(lambda name: fnmatch.fnmatchcase(name, text), scanner,
                               text[:wildcard.start()])
    return _ExactName(text)


def _python_pattern(text: str) -> _ExactName | _ScannedPattern:
    """The pattern without google-re2: Python's re and fnmatch, name by name.

    Only for a controller whose Ansible predates google-re2, such as a
    bastion's first deploy of the commit that adds it to bastion_pip_packages
    (service-bastion.yaml then installs it): parse() warns, since some
    regexes take exponential time in Python's re.
    """
    if text.startswith("^"):
        regex = re.compile(text)
        return _ScannedPattern(lambda name: regex.fullmatch(name) is not None, None, "")
    if _GLOB_WILDCARDS.search(text):
        return _ScannedPattern(lambda name: fnmatch.fnmatchcase(name, text), None, "")
    return _ExactName(text)


def _pattern_errors() -> tuple[type[Exception], ...]:
    """What compile_pattern raises for a pattern it refuses, with or without google-re2."""
    return (re.error,) if re2 is None else (re2.error,)


@dataclass(frozen=True)
class Entry:
    """One entry of a group: its text as written, and what it selects.

    ``ref`` is the group named by an ``@group`` entry; ``pattern`` is set
    otherwise. ``exclude`` is true for a ``!`` entry.
    """

    text: str
    exclude: bool
    ref: str | None = None
    pattern: _ExactName | _ScannedPattern | None = None


def _error(source: str, message: str, group: object = None, entry: object = None) -> AnsibleParserError:
    """An error naming the file, and the group and the entry when given.

    The values come from the bounded YAML reader, not from Ansible's loader,
    so they carry no position in the file for Ansible to show: the group and
    the entry say where.
    """
    where = source
    if group is not None:
        where += f": group {group!r}"
    if entry is not None:
        where += f", entry {entry!r}"
    return AnsibleParserError(f"{where}: {message}")




class PatternGroups:
    """The ``groups`` mapping of a yamlgroup file, checked and compiled.

    Every pattern is compiled once; identical pattern texts share one compiled
    pattern. Errors are AnsibleParserError naming *source* (the file), the
    group and the entry.
    """

    def __init__(self, source: str, groups: object):
        self.source = source
        if not isinstance(groups, Mapping):
            raise _error(source, "'groups' must be a mapping of group names to patterns, "
                         f"got {safe_yaml.describe(groups)}")
        self.groups: dict[str, list[Entry]] = {}
        self.references: set[str] = set()  # the groups named by @group entries
        # (group, entry) of the exact-name entries that are not host names (checks.py's rule):
        # likely typos, since they select only a host of exactly that odd name.
        self.not_host_names: list[tuple[str, str]] = []
        self._compiled: dict[str, _ExactName | _ScannedPattern] = {}
        for name, value in groups.items():
            self._check_group_name(name)
            if value is None:
                value = []
            elif isinstance(value, str):
                value = [value]
            elif not isinstance(value, list):
                raise _error(source, "expected a pattern or a list of patterns, "
                             f"got {safe_yaml.describe(value)}", group=name)
            self.groups[name] = [self._entry(name, item) for item in value]

    def _check_group_name(self, name: object) -> None:
        """Refuse what Ansible cannot make a group of; other names are Ansible's to judge.

        Characters Ansible does not accept in group names ("-", ".", a leading
        digit) follow its TRANSFORM_INVALID_GROUP_CHARS setting when the group
        is added (see the module docstring), as in any inventory source.
        """
        if not isinstance(name, str) or not name:
            raise _error(self.source,
                         f"a group name must be a non-empty string, got {safe_yaml.describe(name)}",
                         group=name)
        if name in _RESERVED_GROUPS:
            raise _error(self.source, "this group is Ansible's own and cannot be defined here",
                         group=name)

    def _entry(self, group: str, item: object) -> Entry:
        """Parse and compile one entry of *group*."""
        if not isinstance(item, str):
            raise _error(self.source, f"expected a string, got {safe_yaml.describe(item)} "
                         "(quote patterns in YAML)", group=group, entry=item)
        exclude = item.startswith("!")
        text = item[1:] if exclude else item
        if text.startswith("@"):
            ref = text[1:]
            if ref == "ungrouped":
                raise _error(self.source, "'ungrouped' cannot be referenced: Ansible settles it "
                             "only after every inventory source is read",
                             group=group, entry=item)
            self.references.add(ref)
            return Entry(item, exclude, ref=ref)
        if text not in self._compiled:
            try:
                self._compiled[text] = compile_pattern(text)
            except _pattern_errors() as exc:
                what = ("invalid regular expression (RE2 syntax, which has no backreferences or "
                        "lookarounds)" if text.startswith("^") else "cannot compile the glob")
                raise _error(self.source, f"{what}: {re2_message(exc)}",
                             group=group, entry=item) from None
        if isinstance(self._compiled[text], _ExactName) and not (
                checks.host_name(text) or checks.ip_address(text)):
            self.not_host_names.append((group, item))
        return Entry(item, exclude, pattern=self._compiled[text])

    def select(self, hosts: Iterable[str],
               existing: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
        """The hosts this file puts in each of its groups.

        *hosts* are the inventory's host names. *existing* gives the members of
        groups already in the inventory (the referenced ones suffice). An
        ``@group`` entry selects those members and, for a group of this file,
        the hosts this file selects for it; ``@all`` selects every host. Raises
        AnsibleParserError for an unknown group or a reference cycle.
        """
        return _Selection(self, HostNames(hosts), existing).run()


class _Selection:
    """One evaluation of PatternGroups over one inventory's hosts."""

    def __init__(self, patterns: PatternGroups, hosts: HostNames,
                 existing: Mapping[str, Collection[str]]):
        self._patterns = patterns
        self._hosts = hosts
        self._existing = existing
        self._selected: dict[str, set[str]] = {}  # group -> the hosts this file selects
        self._found: dict[_ExactName | _ScannedPattern, set[str]] = {}  # pattern -> its hosts

    def run(self) -> dict[str, set[str]]:
        for group in self._patterns.groups:
            self._select(group, [group])
        return self._selected

    def _select(self, group: str, chain: list[str]) -> None:
        """Evaluate *group*, reached through the references in *chain* (itself last)."""
        if group in self._selected:
            return
        included: set[str] = set()
        excluded: set[str] = set()
        for entry in self._patterns.groups[group]:
            if entry.ref is not None:
                hosts = self._members(entry, group, chain)
            else:
                if entry.pattern not in self._found:
                    self._found[entry.pattern] = entry.pattern.select(self._hosts)
                hosts = self._found[entry.pattern]
            (excluded if entry.exclude else included).update(hosts)
        self._selected[group] = included - excluded

    def _members(self, entry: Entry, group: str, chain: list[str]) -> Collection[str]:
        """The members of the group that *entry*, an ``@group`` entry of *group*, names."""
        ref = entry.ref
        if ref == "all":
            return self._hosts.names
        if ref in self._patterns.groups:
            if ref in chain:
                cycle = " -> ".join([*chain[chain.index(ref):], ref])
                raise _error(self._patterns.source, f"reference cycle {cycle}",
                             group=group, entry=entry.text)
            self._select(ref, [*chain, ref])
            return self._selected[ref].union(self._existing.get(ref, ()))
        if ref in self._existing:
            return self._existing[ref]
        raise _error(self._patterns.source, f"unknown group {ref!r}: it is defined neither in "
                     "this file nor in the inventory so far", group=group, entry=entry.text)


def _top_level_plugin(path: str) -> str | None:
    """The top-level ``plugin`` value of a YAML file, or None.

    Only the YAML structure is read (``yaml.compose``): no object is built, no
    tag is resolved and no alias is expanded. The data is read in ``parse``,
    with the bounded reader: a yamlgroup file it refuses then fails with the
    reason, instead of being left unclaimed here. (Ansible's own loader, which
    the ``auto`` plugin reads the file with before this, uses the same libyaml
    parser.)
    """
    try:
        with open(path, "rb") as stream:
            root = yaml.compose(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return None
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "plugin" and isinstance(value, yaml.ScalarNode):
                return value.value
    return None


class InventoryModule(BaseInventoryPlugin):
    """Adds the hosts already in the inventory to the groups their names select."""

    NAME = "yamlgroup"

    def verify_file(self, path: str) -> bool:
        """Accept a readable .yaml or .yml file whose top-level ``plugin`` is yamlgroup."""
        return (path.endswith((".yaml", ".yml")) and super().verify_file(path)
                and _top_level_plugin(path) == self.NAME)

    def parse(self, inventory, loader, path, cache=True):
        """Check and evaluate the whole file, then add its groups and memberships."""
        super().parse(inventory, loader, path, cache)
        if re2 is None:
            self.display.warning(f"{path}: the Python package google-re2 (module re2) is not installed "
                                 "where Ansible runs: regexes are matched with Python's re, which takes "
                                 "exponential time on some patterns and host names (on the bastion, "
                                 "service-bastion.yaml installs it)")
        try:
            data = safe_yaml.load(path)
        except safe_yaml.ReadError as exc:
            raise _error(path, str(exc)) from None
        if not isinstance(data, Mapping):
            raise _error(path,
                         f"expected a mapping with 'plugin' and 'groups', got {safe_yaml.describe(data)}")
        unknown = sorted(str(key) for key in data if key not in ("plugin", "groups"))
        if unknown:
            raise _error(path, f"unknown top-level key(s) {', '.join(map(repr, unknown))}: "
                         "a yamlgroup file has only 'plugin' and 'groups'")
        patterns = PatternGroups(path, data.get("groups"))
        for group, entry in patterns.not_host_names:
            self.display.warning(f"{path}: group {group!r}: entry {entry!r} has no wildcard and is not "
                                 f"{checks.describe('host_name')}: it selects only a host named exactly "
                                 "that")
        if not self.inventory.hosts:
            self.display.warning(f"{path}: no host in the inventory yet, so every yamlgroup group "
                                 "is empty; list this source after the sources of the hosts")
        existing = {}
        for ref in patterns.references:
            # As this file's groups are named in the inventory: kept or transformed.
            group = self.inventory.groups.get(ref)
            if group is None:
                group = self.inventory.groups.get(to_safe_group_name(ref))
            if group is not None:
                existing[ref] = {host.name for host in group.get_hosts()}
        selected = patterns.select(self.inventory.hosts, existing)
        order = {name: index for index, name in enumerate(self.inventory.hosts)}
        for name, members in selected.items():
            # add_group applies TRANSFORM_INVALID_GROUP_CHARS and returns the name it used.
            group = self.inventory.groups[self.inventory.add_group(name)]
            # Group.add_host, not inventory.add_child(name, host): add_child would
            # take a host that shares its name with a group for that group.
            for host in sorted(members, key=order.__getitem__):  # in the inventory's order
                group.add_host(self.inventory.hosts[host])
