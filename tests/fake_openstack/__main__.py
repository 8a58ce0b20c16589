"""Serve simulated OpenStack clouds until interrupted.

    python -m tests.fake_openstack --servers 2500 --latency 0.1
    python -m tests.fake_openstack --clouds 2 --regions RegionOne,RegionTwo --clouds-yaml /tmp/clouds.yaml

Run it from the repository root. It writes a clouds.yaml naming every
simulated cloud (fake-1, fake-2, ...) and prints where it is; point
OS_CLIENT_CONFIG_FILE at it. Ctrl-C prints the request counts and stops.
"""

import argparse
import tempfile
import threading
from pathlib import Path

import yaml

from tests.fake_openstack.server import NOVA_MAX_LIMIT, FakeCloud, clouds_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_openstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clouds", type=int, default=1, help="how many simulated clouds (default 1)")
    parser.add_argument("--regions", default="RegionOne", help="comma-separated region names of each cloud")
    parser.add_argument("--servers", type=int, default=10, help="ACTIVE servers seeded in each region")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--page-size", type=int, default=NOVA_MAX_LIMIT, help="largest servers page")
    parser.add_argument("--build-polls", type=int, default=1,
                        help="GETs of a new server (volume) that answer BUILD (creating) before ACTIVE "
                             "(available)")
    parser.add_argument("--build-seconds", type=float, default=0.0, help="and at least these seconds")
    parser.add_argument("--error-on-create", action="append", default=[], metavar="NAME",
                        help="launching a server of this name ends in ERROR (repeatable)")
    parser.add_argument("--port", type=int, default=0, help="port of the first cloud, the next +1... "
                                                            "(default: random ports)")
    parser.add_argument("--clouds-yaml", type=Path, help="where to write clouds.yaml (default: a temp file)")
    args = parser.parse_args(argv)

    clouds = [FakeCloud(f"fake-{i + 1}", regions=tuple(args.regions.split(",")), servers=args.servers,
                        latency=args.latency, page_size=args.page_size, build_polls=args.build_polls,
                        build_seconds=args.build_seconds, port=args.port + i if args.port else 0)
              for i in range(args.clouds)]
    for cloud in clouds:
        cloud.error_on_create.update(args.error_on_create)
        cloud.start()
        print(f"{cloud.name}: {cloud.url} regions {', '.join(cloud.regions)}")
    path = args.clouds_yaml or Path(tempfile.mkstemp(prefix="fake-clouds-", suffix=".yaml")[1])
    path.write_text(yaml.safe_dump(clouds_yaml(*clouds), sort_keys=False))
    print(f"SIMULATED OpenStack API; clouds.yaml: {path}\n"
          f"export OS_CLIENT_CONFIG_FILE={path}\nCtrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for cloud in clouds:
            cloud.stop()
            print(f"{cloud.name}: {len(cloud.requests)} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
