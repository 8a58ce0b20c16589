#!/usr/bin/python3
"""Put a wide-area path between this test host and the internet, for benchmarks.

    wan-emulator.py start --lan CIDR --rtt-ms 50 --rate-mbit 100
    wan-emulator.py stop

What a cloud region's hosts see of the public registries: every packet that
arrives from outside the LAN (the test hosts' own Docker network; loopback,
where Docker's DNS answers, stays local too) waits in a
queue that models a link of --rate-mbit (one packet after the other, each
taking its size over the rate) followed by --rtt-ms of propagation. Traffic
within the LAN (a host and its region's mirror) is left alone. The delay is
added on the way in only, so it adds the whole --rtt-ms to every round trip;
the rate caps downloads, which is what installs do.

It does in the host's own network namespace what `tc qdisc ... netem delay
rate` does. The kernels of our machines are built without netem (nor prio,
fq or ifb: `zcat /proc/config.gz | grep NET_SCH`), so the packets are held
in user space instead: an iptables NFQUEUE rule hands them to this process
(Debian's python3-netfilterqueue), which gives each its verdict when its
time comes. --queue-bypass keeps traffic flowing if this process dies.

Runs as root on a test host (the bench installs it with iptables and
python3-netfilterqueue); `start` daemonizes and writes its pid to PIDFILE.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import ipaddress
import itertools
import os
import select
import subprocess
import sys
import time
from pathlib import Path

QUEUE = 7
PIDFILE = "/run/wan-emulator.pid"
LOG = "/var/log/wan-emulator.log"


def rule(lan: str) -> list[str]:
    # Loopback stays local too: Docker's DNS answers on 127.0.0.11, as a
    # region's own resolver would.
    return ["INPUT", "!", "-i", "lo", "!", "-s", lan, "-j", "NFQUEUE", "--queue-num", str(QUEUE),
            "--queue-bypass"]


def iptables(*args: str, check: bool = True) -> int:
    return subprocess.run(["iptables", "-w", *args], check=check, capture_output=True).returncode


def serve(rtt: float, rate_bps: float) -> None:
    """Hold each queued packet for its time on the modelled link, then accept it."""
    from netfilterqueue import NetfilterQueue  # Debian's python3-netfilterqueue

    pending: list[tuple[float, int, object]] = []
    order = itertools.count()
    link_free = 0.0  # when the modelled link has sent everything queued so far

    def arrived(packet) -> None:
        nonlocal link_free
        packet.retain()
        now = time.monotonic()
        departs = max(now, link_free) + packet.get_payload_len() * 8 / rate_bps
        link_free = departs
        heapq.heappush(pending, (departs + rtt, next(order), packet))

    queue = NetfilterQueue()
    queue.bind(QUEUE, arrived, max_len=65536)
    fd = queue.get_fd()
    try:
        while True:
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                heapq.heappop(pending)[2].accept()
            wait = max(0.0, pending[0][0] - now) if pending else 1.0
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                queue.run(block=False)
    finally:
        for _, _, packet in pending:
            packet.accept()
        queue.unbind()


def stop() -> None:
    try:
        pid = int(Path(PIDFILE).read_text())
    except (OSError, ValueError):
        pid = 0
    while iptables("-D", *rule_any(), check=False) == 0:
        pass
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        os.unlink(PIDFILE)


def rule_any() -> list[str]:
    """The rule as `start` wrote it, whatever its LAN (read back from iptables)."""
    listing = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True,
                             check=False).stdout
    for line in listing.splitlines():
        if f"--queue-num {QUEUE}" in line:
            return line.split()[1:]
    return ["INPUT", "-j", "NFQUEUE", "--queue-num", "-1"]  # matches nothing: -D fails


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start")
    start.add_argument("--lan", required=True, help="the LAN, left alone (CIDR)")
    start.add_argument("--rtt-ms", type=float, required=True)
    start.add_argument("--rate-mbit", type=float, required=True)
    sub.add_parser("stop")
    args = parser.parse_args(argv)
    if args.action == "stop":
        stop()
        return 0
    lan = str(ipaddress.ip_network(args.lan, strict=False))
    if args.rtt_ms < 0 or args.rate_mbit <= 0:
        parser.error("--rtt-ms must be 0 or more and --rate-mbit more than 0")
    stop()
    if os.fork():
        # The parent waits until the queue is bound, then adds the rule.
        time.sleep(0.5)
        iptables("-I", *rule(lan))
        return 0
    os.setsid()
    Path(PIDFILE).write_text(str(os.getpid()))
    log = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    serve(args.rtt_ms / 1000, args.rate_mbit * 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
