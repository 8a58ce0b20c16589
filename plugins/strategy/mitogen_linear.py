"""Mitogen's linear strategy under this repository's plugin path.

Optional: the test runs (molecule, ``make aio``) select it with
``ANSIBLE_STRATEGY=mitogen_linear`` because it makes each task several
times cheaper (one persistent interpreter per host instead of a new
process and file transfer per module; bench/bench_connection.py measures
it). Nothing in production needs it: ansible.cfg keeps Ansible's own linear
strategy, and without the ``mitogen`` package this file is never loaded.

Mitogen takes over only connections it knows by their short names
(``docker``, ``ssh``, ``local``), which is why the test hosts use
``ansible_connection: docker`` and not the collection's full name.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
