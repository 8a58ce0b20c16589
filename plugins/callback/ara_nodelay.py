"""Answer ARA's in-process API without Nagle's delay (devinfra deploy loads it beside ARA)."""

from __future__ import annotations

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: ara_nodelay
type: aggregate
short_description: Turn off Nagle's algorithm on ARA's offline API server
description:
  - >-
    ARA's offline client (ARA_API_CLIENT=offline, which C(devinfra deploy)
    records every run with) serves its API from a thread of ansible-playbook
    itself and sends each answer in two writes, headers then body. With
    Nagle's algorithm on, the body waits for the client's delayed
    acknowledgement of the headers, about 40 ms on Linux, for each of the
    3 to 4 API calls ARA makes per task.
  - >-
    Loaded beside ARA's callback, this plugin sets TCP_NODELAY on that
    server's connections (the handler's C(disable_nagle_algorithm)). On the
    AIO's Etherpad deploy (about 120 tasks) it took the playbook from 32 s
    to 20 s with ARA recording (14 s without ARA). It records nothing
    itself and does nothing when ARA is not installed.
requirements:
  - ara[server] beside Ansible (optional)
"""

try:
    from ara.clients import offline
except ImportError:  # ARA is optional: without it there is nothing to tune
    offline = None
else:
    offline.QuietWSGIRequestHandler.disable_nagle_algorithm = True


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ara_nodelay"
    CALLBACK_NEEDS_ENABLED = False
