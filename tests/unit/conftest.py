import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Ansible loads plugins/ by path; the tests import them the same way.
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
# tests.fake_openstack (the simulated OpenStack API) is imported from the root.
sys.path.insert(0, str(ROOT))
