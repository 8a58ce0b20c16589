"""requirements.yml must match the collections the pinned bundle installs."""

import json
from pathlib import Path

import ansible_collections
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(next(iter(ansible_collections.__path__)))


def requirements():
    data = yaml.safe_load((ROOT / "requirements.yml").read_text())
    return [(c["name"], str(c["version"])) for c in data["collections"]]


def installed_version(name: str) -> str | None:
    namespace, collection = name.split(".")
    manifest = BUNDLE / namespace / collection / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def test_requirements_lists_collections():
    assert requirements(), "requirements.yml lists no collections"


@pytest.mark.parametrize(("name", "version"), requirements(), ids=lambda v: str(v))
def test_listed_collection_is_the_one_the_bundle_provides(name, version):
    found = installed_version(name)
    assert found is not None, f"{name} is not in the pinned ansible bundle ({BUNDLE})"
    assert found == version, f"{name}: requirements.yml says {version}, the bundle has {found}"


def test_every_collection_used_in_the_repo_is_listed():
    listed = {name for name, _ in requirements()}
    used = set()
    for path in ROOT.glob("**/*.y*ml"):
        if ".venv" in path.parts or ".cache" in path.parts:
            continue
        for word in path.read_text().split():
            word = word.strip("\"':,.;[]{}()")
            parts = word.split(".")
            if len(parts) >= 3 and parts[0] in ("community", "ansible", "openstack") \
                    and parts[1] != "builtin" and parts[0:2] != ["ansible", "cfg"]:
                used.add(".".join(parts[:2]))
    missing = sorted(used - listed)
    assert not missing, f"used but not in requirements.yml: {missing}"
