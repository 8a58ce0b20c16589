import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# tests.fake_openstack (the simulated OpenStack API) is imported from the root.
sys.path.insert(0, str(ROOT))
