import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Ansible loads plugins/ by path; the unit and AIO tests import them the same way.
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
