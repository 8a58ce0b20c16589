"""Behaviour of the zookeeper role: the platform's TLS-only three-node ensemble, seen from a client.

zk01-zk03 carry the pki and zookeeper roles (playbooks/service-zuul.yaml);
zuul01, a client of the ensemble with a certificate from the same CA, talks
to it with Zuul's own kazoo (files/zkprobe.py). This file runs after the
Zuul tests (pytest takes the files in order): its tests stop and restart
servers, and each leaves the ensemble whole. Check mode and the role's bad
inputs are in test_default.py, with the platform's.
"""

import json
import time

import pytest
from devinfra_molecule import PKI_DIR, run_converge, wait_for
from zuul_platform import ZOOKEEPERS

SERVERS = ZOOKEEPERS
PKI = PKI_DIR
# files/zkprobe.py uses the host's certificate from the pki role's directory.
PROBE = f"DEVINFRA_PKI_DIR={PKI} /opt/zuul/bin/python3 /usr/local/bin/zkprobe"


@pytest.fixture(scope="module")
def servers(hosts):
    return {name: hosts[name] for name in SERVERS}


@pytest.fixture(scope="module")
def client(zuul01):
    """zuul01: the ensemble's client, with its certificate and Zuul's kazoo."""
    return zuul01


def probe(client, *args):
    out = client.run(PROBE + " " + " ".join(f"'{a}'" for a in args))
    assert out.rc == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def modes(client, names=SERVERS):
    """Each server's mode as srvr tells over TLS (None when it does not serve)."""
    result = {}
    for name in names:
        answer = client.run(f"{PROBE} srvr {name}")
        result[name] = json.loads(answer.stdout)["mode"] if answer.rc == 0 else None
    return result


def wait_for_quorum(client, names=SERVERS, timeout=90):
    """Wait until one of `names` leads and the others follow; returns the modes."""
    deadline = time.monotonic() + timeout
    while True:
        current = modes(client, names)
        if sorted(current.values(), key=str) == sorted(["leader"] + ["follower"] * (len(names) - 1)):
            return current
        assert time.monotonic() < deadline, f"no quorum of {names} after {timeout}s: {current}"
        time.sleep(2)


def leader_of(current):
    return next(name for name, mode in current.items() if mode == "leader")


def main_pid(host):
    return host.check_output("systemctl show -p MainPID --value zookeeper")


def zoo_cfg(host):
    return host.file("/etc/zookeeper/devinfra/zoo.cfg").content_string


# --- the ensemble -----------------------------------------------------------------------------------


def test_ensemble_has_one_leader_and_two_followers(client):
    current = wait_for_quorum(client)
    assert list(current.values()).count("leader") == 1
    assert list(current.values()).count("follower") == 2


def test_server_is_debians_zookeeper_3_9_3(client):
    assert probe(client, "srvr", "zk02")["version"].startswith("3.9.3")


def test_write_through_zk01_and_read_through_zk03(client):
    value = f"written-through-zk01-{time.time_ns()}"
    assert probe(client, "write", "zk01", "/devinfra/ensemble", value) == {"written": value}
    assert probe(client, "read", "zk03", "/devinfra/ensemble") == {"value": value}
    assert probe(client, "read", "zk02", "/devinfra/ensemble") == {"value": value}


@pytest.mark.parametrize("name", SERVERS)
def test_servers_have_their_ids(servers, name):
    host = servers[name]
    assert host.file("/var/lib/zookeeper/myid").content == f"{name[-1]}\n".encode()
    assert not host.file("/var/lib/zookeeper/myid").is_symlink
    for server in SERVERS:
        assert f"server.{server[-1]}={server}:2888:3888\n" in zoo_cfg(host)


@pytest.mark.parametrize("name", SERVERS)
def test_only_the_tls_ports_listen(servers, client, name):
    host = servers[name]
    # 127.0.0.11 is Docker's DNS resolver inside the container, not ours.
    listening = (line.split()[3] for line in host.check_output("ss -Hltn").splitlines())
    addresses = [address for address in listening if not address.startswith("127.0.0.11:")]
    ports = {int(address.rsplit(":", 1)[1]) for address in addresses if not address.startswith("127.")}
    # Clients 2281 (TLS), election 3888, and 2888 on the leader: no 2181.
    assert ports == {2281, 3888} | ({2888} if modes(client, [name])[name] == "leader" else set())
    assert "clientPort=" not in zoo_cfg(host).replace("secureClientPort=", "")
    # The AdminServer (zookeeper-metrics reads it) on loopback only.
    assert [a for a in addresses if a.startswith("127.")] == ["127.0.0.1:8080"]


def test_zookeeper_runs_as_its_user_in_the_tls_group(servers):
    host = servers["zk01"]
    assert host.service("zookeeper").is_enabled
    assert "devinfra-tls" in host.user("zookeeper").groups
    status = host.file(f"/proc/{main_pid(host)}/status").content_string
    uid = host.user("zookeeper").uid
    assert f"Uid:\t{uid}\t{uid}" in status
    groups = status.split("Groups:")[1].splitlines()[0].split()
    assert str(host.group("devinfra-tls").gid) in groups


# --- metrics (zookeeper-metrics, the node exporter's textfile) --------------------------------------

TEXTFILE = "/var/lib/prometheus/node-exporter/zookeeper.prom"


def metrics(host):
    """Run zookeeper-metrics.service once (a oneshot: start waits for it); the file's samples."""
    host.run_expect([0], "systemctl start zookeeper-metrics.service")
    found = {}
    for line in host.file(TEXTFILE).content_string.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_each_server_reports_its_state_every_minute(servers, client):
    current = wait_for_quorum(client)
    for name, host in servers.items():
        timer = host.service("zookeeper-metrics.timer")
        assert timer.is_enabled and timer.is_running, name
        assert host.file(TEXTFILE).linked_to == "/var/lib/zookeeper-metrics/zookeeper.prom"
        found = metrics(host)
        assert found["zookeeper_up"] == 1, name
        assert found["zookeeper_serving"] == 1, name
        assert found[f'zookeeper_server_state{{state="{current[name]}"}}'] == 1, (name, found)
        assert found["zookeeper_ensemble_size"] == 3
        assert found["zookeeper_znode_count"] > 0
        for metric in ("zookeeper_outstanding_requests", "zookeeper_avg_latency",
                       "zookeeper_num_alive_connections", "zookeeper_metrics_last_run_timestamp_seconds"):
            assert metric in found, (name, metric)
        # Only the leader reports its followers: both in sync.
        assert found.get("zookeeper_synced_followers") == (2 if current[name] == "leader" else None), name
    journal = servers["zk01"].check_output("journalctl -u zookeeper-metrics --no-pager")
    assert "Traceback" not in journal


# --- what is refused -------------------------------------------------------------------------------


def test_plaintext_client_port_is_closed(client):
    refused = client.run("timeout 5 bash -c '</dev/tcp/zk01/2181'")
    assert refused.rc != 0 and "Connection refused" in refused.stderr, refused.stderr
    assert probe(client, "connect", "zk01", "2181", "plain")["connected"] is False


def test_plaintext_zookeeper_handshake_to_the_tls_port_fails(client):
    result = probe(client, "connect", "zk01", "2281", "plain")
    assert result["connected"] is False, result
    # The same port and probe work with TLS and the client's certificate.
    assert probe(client, "connect", "zk01", "2281", "tls") == {"connected": True}


def test_client_without_certificate_is_refused(client):
    result = probe(client, "connect", "zk02", "2281", "tls-no-cert")
    assert result["connected"] is False, result


def test_client_with_certificate_from_another_ca_is_refused(client):
    client.run_expect([0], "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                           "-keyout /tmp/other-ca-client.key -out /tmp/other-ca-client.crt "
                           "-subj /CN=zuul01 "
                           "-addext subjectAltName=DNS:zuul01 -addext extendedKeyUsage=clientAuth")
    result = probe(client, "connect", "zk02", "2281", "tls-other-ca")
    assert result["connected"] is False, result


def s_client(client, target, *options):
    return client.run(f"timeout 20 openssl s_client -connect {target} -CAfile {PKI}/ca.crt "
                      f"-verify_return_error {' '.join(options)} -ign_eof < /dev/null")


def test_quorum_speaks_only_tls_with_certificates_from_the_ca(client):
    # The election port of each server: TLS, verified by the server's name, ...
    ok = s_client(client, "zk03:3888", "-verify_hostname zk03", f"-cert {PKI}/host.crt -key {PKI}/host.key")
    assert "Verify return code: 0 (ok)" in ok.stdout, ok.stdout[-2000:] + ok.stderr
    assert "CN=zk03" in ok.stdout
    # ... which wants a client certificate from the CA (TLS 1.3 tells after the handshake).
    anonymous = s_client(client, "zk03:3888", "-verify_hostname zk03")
    assert "alert certificate required" in anonymous.stderr, anonymous.stderr
    other = s_client(client, "zk03:3888", "-cert /tmp/other-ca-client.crt -key /tmp/other-ca-client.key")
    assert other.rc != 0 and "alert certificate unknown" in other.stderr, other.stderr


# --- restarts and failures (each leaves the ensemble whole) ----------------------------------------


def test_new_certificate_restarts_only_that_server(servers, client):
    """A re-signed certificate (here: after a change of names) restarts ZooKeeper where it changed."""
    pids = {name: main_pid(host) for name, host in servers.items()}
    before = servers["zk02"].file(f"{PKI}/host.crt").content_string
    extra = {"pki_subject_alt_names": ["DNS:zookeeper.devinfra.test"]}
    run, recap = run_converge("--limit", "zk02", "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert servers["zk02"].file(f"{PKI}/host.crt").content_string != before
    assert "RUNNING HANDLER [zookeeper : Restart zookeeper]" in run.stdout
    assert main_pid(servers["zk02"]) != pids["zk02"]
    assert main_pid(servers["zk01"]) == pids["zk01"] and main_pid(servers["zk03"]) == pids["zk03"]
    wait_for_quorum(client)
    # Back to the scenario's names: zk02 restarts once more with a certificate like its peers'.
    run, recap = run_converge("--limit", "zk02")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert recap["zk02"]["changed"] > 0
    wait_for_quorum(client)


def test_ensemble_survives_the_loss_of_its_leader(servers, client):
    leader = leader_of(wait_for_quorum(client))
    rest = [name for name in SERVERS if name != leader]
    servers[leader].run_expect([0], "systemctl stop zookeeper")
    try:
        wait_for_quorum(client, rest)
        value = f"written-without-{leader}-{time.time_ns()}"
        assert probe(client, "write", rest[0], "/devinfra/failover", value) == {"written": value}
        assert probe(client, "read", rest[1], "/devinfra/failover") == {"value": value}
        assert modes(client, [leader])[leader] is None
    finally:
        servers[leader].run_expect([0], "systemctl start zookeeper")
    # The old leader comes back as a follower and has what was written without it.
    current = wait_for_quorum(client)
    assert current[leader] == "follower"
    assert probe(client, "read", leader, "/devinfra/failover") == {"value": value}


def test_data_survives_a_restart_of_every_server(servers, client):
    value = f"before-the-restart-{time.time_ns()}"
    probe(client, "write", "zk02", "/devinfra/durable", value)
    pids = {name: main_pid(host) for name, host in servers.items()}
    for host in servers.values():
        host.run_expect([0], "systemctl restart zookeeper")
    assert all(main_pid(host) != pids[name] for name, host in servers.items())
    wait_for_quorum(client)
    for name in SERVERS:
        assert probe(client, "read", name, "/devinfra/durable") == {"value": value}


def test_a_server_without_quorum_reports_that_it_does_not_serve(servers, client):
    """The AdminServer answers mntr with an error page (HTTP 500) while the server has no quorum."""
    wait_for_quorum(client)
    alone, others = "zk01", ["zk02", "zk03"]
    for name in others:
        servers[name].run_expect([0], "systemctl stop zookeeper")
    try:
        def lost():
            found = metrics(servers[alone])
            return found if found["zookeeper_serving"] == 0 else None

        found = wait_for(lost, 60, f"{alone} to report that it does not serve", interval=2)
        assert found["zookeeper_up"] == 1
        assert found['zookeeper_server_state{state="unknown"}'] == 1
        assert found["zookeeper_ensemble_size"] == 3
        assert "Traceback" not in servers[alone].check_output("journalctl -u zookeeper-metrics --no-pager")
    finally:
        for name in others:
            servers[name].run_expect([0], "systemctl start zookeeper")
    wait_for_quorum(client)
    assert metrics(servers[alone])["zookeeper_serving"] == 1
