"""ZooKeeper and PostgreSQL answer only the hosts that use them (firewall from group membership).

On the AIO, zuul01 runs ZooKeeper (2281) and Zuul's PostgreSQL (5432); their
firewall rules accept the addresses of the group `zuul` only
(inventory/aio/group_vars/zookeeper.yaml, zuul_database.yaml, source_groups).
From etherpad01 and node01 both ports are refused; the rules zuul01 loaded
name zuul01's own address and no other. The production rules are checked by
tests/unit/test_firewall_filter.py. Runs against a deployed AIO.
"""

from __future__ import annotations

import pytest
import review

NOT_TESTABLE = review.not_testable()
pytestmark = pytest.mark.skipif(bool(NOT_TESTABLE), reason=f"AIO not testable: {NOT_TESTABLE}")

PROBE = ("import socket, sys\n"
         "try:\n"
         "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()\n"
         "    print('open')\n"
         "except ConnectionRefusedError:\n"
         "    print('refused')\n"
         "except OSError as error:\n"
         "    print(type(error).__name__)\n")


def connect(container: str, host: str, port: int) -> str:
    return review.sh("docker", "exec", container, "python3", "-c", PROBE, host, str(port)).strip()


def address(container: str) -> str:
    return review.sh("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                     container).strip()


@pytest.mark.parametrize("port", [2281, 5432])
@pytest.mark.parametrize("client", ["devinfra-aio-etherpad01", "devinfra-aio-node01"])
def test_hosts_outside_zuul_are_refused(client, port):
    assert connect(client, "zuul01", port) == "refused"


@pytest.mark.parametrize("port", [2281, 5432])
def test_the_servers_listen_and_admit_zuuls_hosts_only(port):
    # The server listens (from zuul01 itself), so "refused" above is the firewall's answer.
    assert connect(review.ZUUL, "zuul01", port) == "open"
    rules = [line for line in review.sh("docker", "exec", review.ZUUL, "nft", "list", "table", "inet",
                                        "devinfra").splitlines() if f"dport {port} " in line]
    assert rules, f"no rule for {port}"
    zuul01 = address(review.ZUUL)
    assert all(f"saddr {zuul01} " in rule for rule in rules), rules
    for other in ("devinfra-aio-etherpad01", "devinfra-aio-node01"):
        assert not any(address(other) in rule for rule in rules), (other, rules)
