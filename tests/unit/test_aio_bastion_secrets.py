"""Every AIO secret file the inventory reads is also installed on the bastion.

The AIO's deploys run on bastion01, where aio_secrets_dir is
/etc/devinfra/secrets/aio: a group_vars lookup of a file the bastion role
does not copy there (bastion_private_files) fails that service's deploy.
A full deploy from the bastion found one such file (Pagure's contributor
keys); this test finds the next one before a deploy does.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
AIO = ROOT / "inventory" / "aio"
LOOKUP = re.compile(r"aio_secrets_dir\s*~\s*'/([^']*)'(\s*~\s*inventory_hostname\s*~\s*'([^']*)')?")


def read_files() -> set[str]:
    """The secret files the AIO inventory reads, with inventory_hostname filled in per host."""
    hosts = yaml.safe_load((AIO / "hosts.yaml").read_text())
    groups = {name: set((group or {}).get("hosts") or {}) for name, group in hosts["all"]["children"].items()}
    wanted = set()
    for path in AIO.rglob("*.yaml"):
        if path.name == "bastion.yaml":
            continue
        group = path.parent.name if path.parent.name != "group_vars" else path.stem
        for prefix, per_host, suffix in LOOKUP.findall(path.read_text()):
            if per_host:
                wanted |= {f"{prefix}{host}{suffix}" for host in groups.get(group, set())}
            else:
                wanted.add(prefix)
    return wanted


def test_the_bastion_gets_every_secret_file_the_inventory_reads():
    bastion = yaml.safe_load((AIO / "group_vars" / "bastion.yaml").read_text())
    installed = {entry["dest"].removeprefix("secrets/aio/") for entry in bastion["bastion_private_files"]
                 if entry["dest"].startswith("secrets/aio/")}
    wanted = read_files()
    # the test reads what it should
    assert "alice_ed25519.pub" in wanted and "backup-zuul01_ed25519" in wanted
    assert wanted - installed == set()
