"""What the zuul scenario's tests share: the platform's names and a client of its API.

zk01-03 run the ZooKeeper ensemble, db01 PostgreSQL, zuul01 every Zuul
component behind the web front, node01 is the static build node and the
client of the tests. Fixtures on top of these are in conftest.py.
"""

import json
import shlex
import time

from devinfra_molecule import PKI_CA_FILE, scenario_hosts, wait_for

TENANT = "devinfra"
CA = PKI_CA_FILE
CURL = f"curl -sS --fail --max-time 20 --cacert {CA}"
PROJECT = "sandbox/sandbox"
JOB_TIMEOUT = 420
ZOOKEEPERS = ["zk01", "zk02", "zk03"]


def host(name):
    return scenario_hosts()[name]


def logs_curl(client):
    """curl for the build logs' host name, logs.zuul01 (resolved to zuul01's address: no DNS entry)."""
    address = client.check_output("getent hosts zuul01").split()[0]
    return f"{CURL} --resolve logs.zuul01:443:{address}"


def api(client, path):
    return json.loads(client.check_output(f"{CURL} https://zuul01/api/{path}"))


def commit_files(zuul01, files, message):
    """Commit files to sandbox/sandbox's master (Zuul's post pipeline sees it); return the sha."""
    script = ["set -e", "d=$(mktemp -d)", "git clone -q /var/lib/zuul/git/sandbox/sandbox $d", "cd $d",
              "mkdir -p playbooks"]
    for path, text in files.items():
        script.append(f"printf '%s' {shlex.quote(text)} > {path}")
    script += ["git add -A", "git -c user.name=tester -c user.email=t@example.test commit -q -m "
               + shlex.quote(message), "git push -q origin HEAD:master", "git rev-parse HEAD", "rm -rf $d"]
    return zuul01.check_output("runuser -u zuul -- sh -c %s", "\n".join(script)).strip()


def commit_job(zuul01, token):
    """Push a commit to sandbox/sandbox that defines and runs the smoke job; return its sha."""
    return commit_files(zuul01, {
        ".zuul.yaml": (
            "- job:\n    name: smoke\n    run: playbooks/smoke.yaml\n"
            "- project:\n    post:\n      jobs: [smoke]\n"),
        "playbooks/smoke.yaml": (
            "- hosts: all\n  tasks:\n"
            "    - name: Record the node and the commit's marker\n"
            "      ansible.builtin.shell: |\n"
            "        hostname > ~/logs/hostname.txt\n"
            "        cp {{ zuul.project.src_dir }}/marker.txt ~/logs/marker.txt\n"),
        "marker.txt": f"{token}\n",
    }, f"smoke {token}")


def builds_of(client, sha, complete):
    """The builds of the commit sha, finished (complete "true") or running ("false")."""
    builds = api(client, f"tenant/{TENANT}/builds?project={PROJECT}&limit=20&complete={complete}")
    return [b for b in builds if b.get("ref", {}).get("newrev") == sha]


def wait_for_build(client, sha):
    """The finished build of the commit sha (any result)."""
    def probe():
        builds = api(client, f"tenant/{TENANT}/builds?project={PROJECT}&limit=20")
        done = [b for b in builds if b.get("ref", {}).get("newrev") == sha and b.get("result")]
        return done[0] if done else None
    return wait_for(probe, JOB_TIMEOUT, f"the build of {sha}", interval=3)


def timed_build(zuul01, client, token):
    """Commit the smoke job with token; the build, with the seconds from commit to result."""
    began = time.monotonic()
    build = wait_for_build(client, commit_job(zuul01, token))
    build["_commit_to_result_s"] = round(time.monotonic() - began)
    return build
