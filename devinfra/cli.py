"""The ``devinfra`` command.

    devinfra hosts create  --inventory inventory/aio/hosts.yaml   # the AIO
    devinfra hosts create  --set molecule-base base1 base2:executor
    devinfra hosts list    [--set SET] [--json]
    devinfra hosts destroy --set SET
    devinfra validate      [--inventory inventory] [--roles roles]
    devinfra plan          OLD..NEW | --files F [F ...]  [--pipeline deploy] [--json]
    devinfra deploy        OLD..NEW | --playbooks P [P ...]  [-i INVENTORY ...] [--lock-timeout S]
    devinfra launch-node   NAME --cloud C --flavor F --image I [--network N] [--key K]
                           [--region R] [--volume-size GB] [--run-base]
    devinfra status-page   --history FILE [--out DIR] [--textfile PATH] [--last N]
    devinfra publish-status [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from devinfra import __version__, hosts, status, validate
from devinfra.errors import DevinfraError


def _print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("no hosts")
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


def _cmd_hosts(args: argparse.Namespace) -> int:
    docker = hosts.Docker()
    columns = ["set", "host", "container", "state", "address"]
    if args.action == "create":
        sources = [bool(args.inventory), bool(args.names), bool(args.hosts_json)]
        if sum(sources) != 1:
            raise hosts.HostsError("give exactly one of --inventory, --hosts-json or host names")
        if args.inventory:
            specs = hosts.hosts_from_inventory(Path(args.inventory), image=args.image)
        elif args.hosts_json:
            specs = hosts.hosts_from_json(args.hosts_json, image=args.image)
        else:
            specs = [hosts.parse_host_arg(n, image=args.image) for n in args.names]
        rows = hosts.create(docker, args.set, specs, timeout=args.timeout, mirror=args.mirror or None)
        if args.mirror:
            print(f"devinfra: new hosts of set {args.set!r} install through the mirror {args.mirror}",
                  file=sys.stderr)
        if args.write_instance_config:
            hosts.write_instance_config(Path(args.write_instance_config), rows)
    elif args.action == "destroy":
        removed = hosts.destroy(docker, args.set)
        if not args.json:
            print(f"removed {len(removed)} host(s) of set {args.set!r}")
            return 0
        rows = [{"container": name} for name in removed]
    else:
        rows = hosts.listing(docker, args.set)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows, columns)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    inventory, roles = Path(args.inventory), Path(args.roles)
    for path in (inventory, roles):
        if not path.is_dir():
            raise DevinfraError(f"{path} is not a directory", code=2)
    problems = validate.validate(inventory, roles)
    for problem in problems:
        print(problem, file=sys.stderr)
    count = len(validate.inventory_files(inventory))
    print(f"validate: {count} inventory files, {len(problems)} problem(s)")
    return 1 if problems else 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from devinfra import plan

    if bool(args.range) == bool(args.files):
        raise plan.PlanError("give either a range OLD..NEW or --files, not both or neither")
    files = args.files or plan.changed_files(Path(args.repo), args.range)
    steps = plan.plan(Path(args.repo) / args.zuul_dir, files, args.pipeline)
    if args.json:
        json.dump({"files": files, "steps": [vars(s) for s in steps]}, sys.stdout, indent=2)
        print()
    else:
        print(plan.render(steps, files))
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from devinfra import deploy, plan

    repo = Path(args.repo)
    if bool(args.range) == bool(args.playbooks):
        raise deploy.DeployError("give either a range OLD..NEW or --playbooks, not both or neither")
    # Every setting is checked before anything runs: a wrong one stops the
    # deploy with its name, never halfway through nor silently.
    settings, origins = deploy.load_settings(Path(args.config), vars(args))
    summary_file = Path(args.summary_file) if args.summary_file else None
    deploy.check_paths(settings, origins, summary_file)
    if args.range:
        steps = plan.plan(repo / args.zuul_dir, plan.changed_files(repo, args.range))
    else:
        steps = deploy.steps_for_playbooks(repo / args.zuul_dir, args.playbooks)
    return deploy.deploy(
        steps, repo=repo, inventories=settings["inventory"],
        log_root=Path(settings["log_dir"]), lock_file=Path(settings["lock_file"]),
        lock_timeout=settings["lock_timeout"], disable_file=Path(settings["disable_file"]),
        ansible_playbook=settings["ansible_playbook"], strategy=settings["ansible_strategy"],
        summary_file=summary_file)


def _cmd_publish_status(args: argparse.Namespace) -> int:
    from devinfra import deploy

    settings = deploy.settings(Path(args.config), {})
    return deploy.publish_status(repo=Path(args.repo), inventories=settings["inventory"],
                                 ansible_playbook=settings["ansible_playbook"],
                                 strategy=settings["ansible_strategy"])


def _cmd_launch_node(args: argparse.Namespace) -> int:
    from devinfra import launch

    req = launch.LaunchRequest(
        name=args.name, cloud=args.cloud, region=args.region, flavor=args.flavor,
        image=args.image, network=args.network, key=args.key, volume_size=args.volume_size,
        timeout=args.timeout, poll_interval=args.poll_interval,
        inventory=Path(args.inventory), region_var=args.region_var,
    )

    def log(message: str) -> None:
        print(f"launch-node: {message}", file=sys.stderr)

    result = launch.launch(req, log=log)
    print(f"server {args.name}: {result.server_id} "
          f"({'created' if result.created else 'already existed'})")
    print(f"inventory {args.inventory}: host {result.inventory_change}")
    for note in result.notes:
        print(f"note: {note}")
    print("DNS records to add:")
    for record in launch.dns_records(args.name, result.ipv4, result.ipv6):
        print(f"  {record}")
    if args.run_base:
        private = Path(args.private_inventory) if args.private_inventory else None
        return launch.run_base_playbook(args.name, private)
    return 0


def _cmd_status_page(args: argparse.Namespace) -> int:
    if not args.out and not args.textfile:
        raise status.StatusError("give --out DIR, --textfile PATH or both")
    records = status.load_history(Path(args.history))
    written = status.write(records, out=Path(args.out) if args.out else None,
                           textfile_path=Path(args.textfile) if args.textfile else None,
                           last=args.last)
    print(f"status-page: {len(records)} run(s) of {len(status.services(records))} service(s): "
          f"{', '.join(map(str, written))}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devinfra", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"devinfra {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_hosts = sub.add_parser("hosts", help="manage the local container test hosts")
    hosts_sub = p_hosts.add_subparsers(dest="action", required=True)

    p_create = hosts_sub.add_parser("create", help="create (or start) hosts and wait for systemd")
    p_create.add_argument("--set", default="aio", help="host set name (default: aio)")
    p_create.add_argument("--inventory", help="create every host of this YAML inventory")
    p_create.add_argument("--hosts-json", metavar="JSON",
                          help='hosts as JSON: [{"name": "h1", "profile": "executor"}, ...] '
                               "(molecule's platforms list)")
    p_create.add_argument("--write-instance-config", metavar="PATH",
                          help="also write molecule's instance_config.yml there")
    p_create.add_argument("--image", default=hosts.DEFAULT_IMAGE)
    p_create.add_argument("--timeout", type=float, default=90.0,
                          help="seconds to wait for systemd in each host")
    p_create.add_argument("--json", action="store_true", help="print JSON")
    p_create.add_argument("--mirror", default=os.environ.get("DEVINFRA_MIRROR", ""), metavar="CONTAINER",
                          help="a running mirror container (e.g. devinfra-aio-mirror01) the new hosts "
                               "install their packages through (default: $DEVINFRA_MIRROR)")
    p_create.add_argument("names", nargs="*", metavar="NAME[:PROFILE]",
                          help=f"profiles: {', '.join(sorted(hosts.PROFILES))}")

    p_list = hosts_sub.add_parser("list", help="list hosts (all sets unless --set)")
    p_list.add_argument("--set", default=None)
    p_list.add_argument("--json", action="store_true")

    p_destroy = hosts_sub.add_parser("destroy", help="remove a set's hosts and network")
    p_destroy.add_argument("--set", default="aio")
    p_destroy.add_argument("--json", action="store_true")
    p_hosts.set_defaults(func=_cmd_hosts)

    p_validate = sub.add_parser(
        "validate", help="check inventory variables against the roles' argument specs")
    p_validate.add_argument("--inventory", default="inventory")
    p_validate.add_argument("--roles", default="roles")
    p_validate.set_defaults(func=_cmd_validate)

    p_plan = sub.add_parser(
        "plan", help="the ordered playbooks a merge would deploy, read from zuul.d")
    p_plan.add_argument("range", nargs="?", help="git range OLD..NEW")
    p_plan.add_argument("--files", nargs="+", help="changed files instead of a range")
    p_plan.add_argument("--pipeline", default="deploy", help="pipeline to plan (default: deploy)")
    p_plan.add_argument("--repo", default=".", help="the repository (default: .)")
    p_plan.add_argument("--zuul-dir", default="zuul.d", help="zuul.d inside the repository")
    p_plan.add_argument("--json", action="store_true")
    p_plan.set_defaults(func=_cmd_plan)

    p_deploy = sub.add_parser(
        "deploy", help="apply a plan (or named playbooks) under the global deploy lock")
    p_deploy.add_argument("range", nargs="?", help="git range OLD..NEW: apply what `plan` selects")
    p_deploy.add_argument("--playbooks", nargs="+", metavar="PLAYBOOK",
                          help="apply these playbooks (names in playbooks/) instead")
    # Unset options come from the bastion's --config file, then the built-in
    # defaults (deploy.DEFAULTS).
    p_deploy.add_argument("-i", "--inventory", action="append",
                          help="inventory source, repeatable (default: the production sources "
                               "and /etc/devinfra/private)")
    p_deploy.add_argument("--repo", default=".")
    p_deploy.add_argument("--zuul-dir", default="zuul.d")
    p_deploy.add_argument("--config", default="/etc/devinfra/deploy.yaml",
                          help="the bastion's settings for any option not given (YAML; optional)")
    p_deploy.add_argument("--log-dir")
    p_deploy.add_argument("--lock-file")
    p_deploy.add_argument("--lock-timeout", type=float,
                          help="seconds to wait for another deploy (default 3600)")
    p_deploy.add_argument("--disable-file",
                          help="while this file exists nothing is deployed; it holds the reason "
                               "(default /etc/devinfra/DISABLE-DEPLOY)")
    p_deploy.add_argument("--summary-file", metavar="PATH",
                          help="also write the run's summary (JSON, with its log directory) to PATH")
    p_deploy.add_argument("--ansible-playbook", help=argparse.SUPPRESS)
    p_deploy.add_argument("--ansible-strategy",
                          help="Ansible strategy of every run, e.g. mitogen_linear (default: ansible.cfg's)")
    p_deploy.set_defaults(func=_cmd_deploy)

    p_launch = sub.add_parser("launch-node", help="create a cloud server and add it to the inventory")
    p_launch.add_argument("name", help="fully qualified host name, e.g. mirror01.sjc.example.org")
    p_launch.add_argument("--cloud", required=True, help="cloud name in clouds.yaml")
    p_launch.add_argument("--region")
    p_launch.add_argument("--flavor", required=True)
    p_launch.add_argument("--image", required=True)
    p_launch.add_argument("--network")
    p_launch.add_argument("--key", help="key pair name")
    p_launch.add_argument("--volume-size", type=int, help="also attach a data volume (GB)")
    p_launch.add_argument("--timeout", type=float, default=600.0,
                          help="seconds to wait for ACTIVE (default 600)")
    p_launch.add_argument("--poll-interval", type=float, default=5.0)
    p_launch.add_argument("--inventory", default="inventory/base/hosts.yaml")
    p_launch.add_argument("--region-var", help="value of the host's 'region' var")
    p_launch.add_argument("--run-base", action="store_true",
                          help="then run playbooks/base.yaml limited to the new host")
    p_launch.add_argument("--private-inventory", help="extra inventory source with the secrets")
    p_launch.set_defaults(func=_cmd_launch_node)

    p_status = sub.add_parser(
        "status-page", help="the deploy status page and metrics, from the bastion's deploy history")
    p_status.add_argument("--history", required=True, metavar="FILE",
                          help="the deploy history: JSON lines, one per playbook run "
                               "(devinfra-deploy-merged's)")
    p_status.add_argument("--out", metavar="DIR", help="write index.html and deploys.json there")
    p_status.add_argument("--textfile", metavar="PATH",
                          help="write node exporter textfile metrics (devinfra_deploy_*) there")
    p_status.add_argument("--last", type=_positive_int, default=status.DEFAULT_LAST,
                          metavar="N", help=f"plot and list the last N runs (default {status.DEFAULT_LAST})")
    p_status.set_defaults(func=_cmd_status_page)

    p_publish = sub.add_parser(
        "publish-status", help="copy the bastion's deploy status page to the monitoring hosts")
    p_publish.add_argument("--repo", default=".")
    p_publish.add_argument("--config", default="/etc/devinfra/deploy.yaml",
                           help="the deploy settings (inventories, ansible-playbook)")
    p_publish.set_defaults(func=_cmd_publish_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; a DevinfraError from any of them is its one line on stderr and its code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DevinfraError as exc:
        print(f"devinfra: error: {exc}", file=sys.stderr)
        return exc.code
