"""Add a host to inventory/base/hosts.yaml without disturbing the file.

The file is edited as text, so comments, order and formatting stay exactly
as reviewers wrote them; the result is parsed again and compared with the
original before it is written, so a bad edit never reaches the disk.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from devinfra.errors import DevinfraError


class InventoryEditError(DevinfraError):
    """An inventory file this module cannot edit safely; the message says why."""


def _hosts_block(lines: list[str]) -> tuple[int, int, int]:
    """(index of the 'hosts:' line under 'all:', end index, host indent)."""
    all_line = next((i for i, line in enumerate(lines) if re.match(r"^all:\s*(#.*)?$", line)), None)
    if all_line is None:
        raise InventoryEditError("no top-level 'all:' key")
    hosts_line = None
    for i in range(all_line + 1, len(lines)):
        line = lines[i]
        if re.match(r"^\S", line):
            break
        if re.match(r"^\s+hosts:\s*(#.*)?$", line):
            hosts_line = i
            break
    if hosts_line is None:
        raise InventoryEditError("no 'hosts:' mapping under 'all:'")
    key_indent = len(lines[hosts_line]) - len(lines[hosts_line].lstrip())
    end = len(lines)
    host_indent = None
    for i in range(hosts_line + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= key_indent:
            end = i
            break
        if host_indent is None:
            host_indent = indent
    # Trailing blank or comment lines belong to whatever follows the block.
    while end > hosts_line + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return hosts_line, end, host_indent if host_indent is not None else key_indent + 2


def _render(name: str, hostvars: dict, indent: int) -> list[str]:
    pad = " " * indent
    lines = [f"{pad}{name}:\n"]
    for key, value in hostvars.items():
        rendered = yaml.safe_dump({key: value}, default_flow_style=True, width=10_000).strip()
        lines.append(f"{pad}  {rendered[1:-1] if rendered.startswith('{') else rendered}\n")
    return lines


def add_host(path: Path, name: str, hostvars: dict) -> str:
    """Add (or update) a host; returns "added", "updated" or "unchanged"."""
    text = path.read_text()
    before = yaml.safe_load(text) or {}
    hosts = (before.get("all") or {}).get("hosts") or {}
    current = hosts.get(name)
    if current is not None and all(current.get(k) == v for k, v in hostvars.items()):
        return "unchanged"

    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    hosts_line, end, indent = _hosts_block(lines)
    if current is None:
        lines[end:end] = _render(name, hostvars, indent)
        result = "added"
    else:
        merged = {**current, **hostvars}
        start = next(i for i in range(hosts_line + 1, end)
                     if re.match(rf"^\s{{{indent}}}{re.escape(name)}:\s*(#.*)?$", lines[i]))
        stop = start + 1
        while stop < end and (not lines[stop].strip()
                              or len(lines[stop]) - len(lines[stop].lstrip()) > indent):
            stop += 1
        lines[start:stop] = _render(name, merged, indent)
        result = "updated"

    new_text = "".join(lines)
    expected = copy.deepcopy(before)
    expected["all"]["hosts"] = {**hosts, name: {**(current or {}), **hostvars}}
    if yaml.safe_load(new_text) != expected:
        raise InventoryEditError(f"editing {path} would change more than host {name}; left it alone")
    path.write_text(new_text)
    return result
