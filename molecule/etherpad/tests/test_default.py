"""Behaviour of the etherpad role, seen from a client through the web front.

pad1 runs Etherpad (npm source) on PostgreSQL behind nginx (webfront) with
its certificate from the scenario's CA; padclient1 trusts that CA and talks
to https://pad1/ with curl and headless Chromium.
"""

import base64
import json
import os
import re
import shlex
import struct
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import pytest
import yaml
from devinfra_molecule import PKI_CA_FILE, host_fixtures, run_converge

SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
ARTIFACTS = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".artifacts"
SECRETS = yaml.safe_load((SCENARIO / "vars" / "secrets.yaml").read_text())
API_KEY = SECRETS["etherpad_api_key"]
CA = PKI_CA_FILE
BASE = "https://pad1"
TITLE = "Molecule Pad"
PAD_ID = "molecule-" + uuid.uuid4().hex[:8]
PAD_TEXT = "Hello from molecule " + uuid.uuid4().hex[:8]
FIGURES = {}


globals().update(host_fixtures("pad1", "padclient1"))


def curl(host, path, *args):
    """Run curl on host against the proxy; return (http status, body)."""
    cmd = host.run(
        "curl -sS --cacert " + CA + " --max-time 30 -w '\\n%{http_code}' "
        + " ".join(shlex.quote(a) for a in args) + " " + shlex.quote(BASE + path))
    assert cmd.rc == 0, cmd.stderr
    body, _, status = cmd.stdout.rpartition("\n")
    return int(status), body


def api(host, method, apikey=API_KEY, version="1", **params):
    """Call Etherpad's HTTP API through the proxy, as a POST."""
    fields = [arg for k, v in {"apikey": apikey, **params}.items()
              for arg in ("--data-urlencode", f"{k}={v}")]
    status, body = curl(host, f"/api/{version}/{method}", *fields)
    return status, json.loads(body)


def wait_for_api(host, timeout=120):
    """Wait until Etherpad answers on 127.0.0.1; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if host.run("curl -sf --max-time 2 http://127.0.0.1:9001/api").rc == 0:
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"Etherpad did not answer within {timeout} s")


def pad_text(host):
    status, answer = api(host, "getText", padID=PAD_ID)
    assert status == 200 and answer["code"] == 0, answer
    return answer["data"]["text"]


@pytest.fixture(scope="module")
def pad(padclient1):
    status, answer = api(padclient1, "createPad", padID=PAD_ID)
    assert (status, answer["code"]) == (200, 0), answer
    status, answer = api(padclient1, "setText", padID=PAD_ID, text=PAD_TEXT)
    assert (status, answer["code"]) == (200, 0), answer
    return PAD_ID


def test_service_runs_unprivileged_and_hardened(pad1):
    show = pad1.check_output(
        "systemctl show etherpad -p ActiveState -p User -p NoNewPrivileges -p ProtectSystem "
        "-p ProtectHome -p PrivateTmp -p Restart -p MainPID")
    props = dict(line.split("=", 1) for line in show.splitlines())
    assert props["ActiveState"] == "active"
    assert props["User"] == "etherpad"
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["Restart"] == "on-failure"
    # The process itself runs as etherpad, without capabilities.
    status = pad1.check_output(f"cat /proc/{props['MainPID']}/status")
    uid = pad1.check_output("id -u etherpad")
    assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    # It cannot write its own code nor its configuration.
    assert pad1.run("runuser -u etherpad -- touch /opt/etherpad/current/src/x").rc != 0
    assert pad1.run("runuser -u etherpad -- touch /etc/etherpad/x").rc != 0


def test_etherpad_listens_on_loopback_only(pad1, padclient1):
    listeners = pad1.check_output("ss -Hltn 'sport = :9001'")
    assert "127.0.0.1:9001" in listeners
    assert "0.0.0.0:9001" not in listeners and "*:9001" not in listeners, listeners
    direct = padclient1.run("curl -sS --max-time 5 http://pad1:9001/")
    assert direct.rc == 7, direct.stdout  # connection refused


def test_pad_is_created_written_and_read_over_https(padclient1, pad):
    assert pad_text(padclient1) == PAD_TEXT + "\n"
    status, answer = api(padclient1, "listAllPads", version="1.2.1")
    assert pad in answer["data"]["padIDs"]


def test_wrong_api_key_is_refused(padclient1, pad):
    status, answer = api(padclient1, "getText", apikey="not-the-key-" + "x" * 20, padID=pad)
    assert status == 401
    assert answer["code"] == 4 and "API Key" in answer["message"], answer
    status, answer = api(padclient1, "setText", apikey="", padID=pad, text="vandalised")
    assert answer["code"] == 4, answer
    assert pad_text(padclient1) == PAD_TEXT + "\n"


def test_http_redirects_and_websocket_location_is_proxied(padclient1, pad):
    cmd = padclient1.run("curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://pad1/p/" + pad)
    assert cmd.stdout.startswith("301 https://pad1/"), cmd.stdout
    # socket.io's polling handshake reaches Etherpad through the /socket.io/ location.
    status, body = curl(padclient1, "/socket.io/?EIO=3&transport=polling")
    assert status == 200 and '"sid"' in body, body


def test_admin_page_needs_the_admin_password(padclient1):
    password = SECRETS["etherpad_test_admin_password"]
    assert curl(padclient1, "/admin/", "-u", "admin:" + password)[0] == 200
    assert curl(padclient1, "/admin/", "-u", "admin:wrong-password")[0] == 401
    assert curl(padclient1, "/admin/")[0] == 401


def test_pad_page_has_the_configured_title(padclient1, pad):
    status, body = curl(padclient1, "/p/" + pad)
    assert status == 200
    assert f"<title>{TITLE}</title>" in body


def test_pad_text_is_stored_in_postgresql(pad1, pad):
    value = pad1.check_output(
        "runuser -u postgres -- psql -d etherpad -tAc "
        + shlex.quote(f"SELECT value FROM store WHERE key = 'pad:{pad}'"))
    assert value, f"no row pad:{pad} in the store table"
    assert json.loads(value)["atext"]["text"] == PAD_TEXT + "\n"


def test_database_is_reached_over_tls_by_host_name(pad1):
    settings = json.loads(pad1.check_output("cat /etc/etherpad/settings.json"))
    assert settings["dbType"] == "postgres"
    assert settings["dbSettings"]["host"] == "pad1"
    assert settings["dbSettings"]["ssl"]["rejectUnauthorized"] is True
    # Without TLS the server refuses Etherpad's user (only hostssl rules).
    password = shlex.quote(SECRETS["etherpad_db_password"])
    cmd = pad1.run(
        f"PGPASSWORD={password} psql 'host=pad1 dbname=etherpad user=etherpad sslmode=disable' -c 'SELECT 1'")
    assert cmd.rc != 0 and "no pg_hba.conf entry" in cmd.stderr, cmd.stderr


def test_pad_renders_in_headless_chromium(padclient1, pad):
    shot = "/tmp/etherpad-pad.png"
    padclient1.run(f"rm -f {shot}")
    flags = ("--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
             "--window-size=1280,800 --virtual-time-budget=15000")
    url = shlex.quote(f"{BASE}/p/{pad}")
    dom = padclient1.run(f"timeout 120 chromium {flags} --dump-dom {url} 2>/dev/null")
    assert dom.rc == 0, dom.stderr[-2000:]
    # pad.js puts the pad's name before the title once the pad arrived.
    assert f"<title>{pad} | {TITLE}</title>" in dom.stdout, dom.stdout[:3000]
    # pad.js marks the editor initialized once the pad arrived over socket.io.
    assert re.search(r'id="editorcontainer"[^>]*class="[^"]*\binitialized\b', dom.stdout), (
        dom.stdout[:3000])
    # Chromium's own --screenshot fires before the pad arrived over socket.io
    # ("Loading..."): pad-screenshot (files/pad_screenshot.py) waits until the
    # editor shows the pad's first line, then captures the page.
    first_line = PAD_TEXT.splitlines()[0]
    cmd = padclient1.run(
        f"timeout 150 pad-screenshot {url} {shlex.quote(first_line)} {shot} 90")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr[-2000:]
    png = base64.b64decode(padclient1.check_output(f"base64 -w0 {shot}"))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "etherpad-pad.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, 800)
    # A real page, not a blank one: the image data varies.
    idat, pos = b"", 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(idat)
    assert len(png) > 10000, len(png)
    assert len(set(pixels)) > 32, "the screenshot is almost uniform"


def test_update_check_contacts_no_outside_host(pad1):
    settings = json.loads(pad1.check_output("cat /etc/etherpad/settings.json"))
    assert settings["updateServer"] == "http://127.0.0.1:9"
    code = pad1.check_output(
        "cat /opt/etherpad/current/src/node/utils/UpdateCheck.js "
        "/opt/etherpad/current/src/static/js/pluginfw/installer.js")
    assert "etherpad.org" not in code.replace("https://etherpad.org/", "")
    assert "http://127.0.0.1:9/info.json" in code
    environ = pad1.check_output(
        "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value etherpad)/environ")
    assert "SCARF_ANALYTICS=false" in environ.splitlines()
    # Since the last start, the check asked loopback (refused) and nothing else.
    journal = pad1.check_output(
        "journalctl -u etherpad --no-pager -o cat --since \"$(systemctl show -p "
        "ActiveEnterTimestamp --value etherpad)\"")
    assert "update check: Error: connect ECONNREFUSED 127.0.0.1:9" in journal, journal[-3000:]
    assert "static.etherpad.org" not in journal and "ENOTFOUND" not in journal


def test_pad_survives_a_restart(pad1, padclient1, pad):
    pad1.check_output("systemctl restart etherpad")
    FIGURES["seconds_from_restart_to_api"] = round(wait_for_api(pad1), 2)
    assert pad_text(padclient1) == PAD_TEXT + "\n"
    time.sleep(5)
    pid = pad1.check_output("systemctl show -p MainPID --value etherpad")
    rss = pad1.check_output(f"grep VmRSS /proc/{pid}/status").split()[1]
    FIGURES["etherpad_rss_mib_after_start"] = round(int(rss) / 1024, 1)


def test_pad_survives_a_rerun_of_the_role(padclient1, pad):
    run, recap = run_converge()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert recap["pad1"]["changed"] == 0, run.stdout[-4000:]
    assert pad_text(padclient1) == PAD_TEXT + "\n"


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


def _secrets_without_db_password():
    secrets = dict(SECRETS)
    del secrets["etherpad_db_password"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(secrets, handle)
    return handle.name


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        # Named by the first check that reads it: playbooks/service-etherpad.yaml
        # checks the database's variables (postgresql_users, made of it in
        # group_vars as in production) before Etherpad's.
        (lambda: {"etherpad_test_secrets": _secrets_without_db_password()},
         "'etherpad_db_password' is undefined"),
        (lambda: {"etherpad_install_source": "tarball"},
         "etherpad_install_source must be one of: git, npm"),
        (lambda: {"etherpad_api_key": "short"}, "etherpad_api_key must have at least 16 characters"),
    ],
    ids=["missing-db-password", "invalid-install-source", "short-api-key"],
)
def test_bad_variables_fail_before_any_host_changes(
        bad_vars_change_nothing, pad1, padclient1, pad, extra_vars, message):
    files = "/etc/etherpad/settings.json /etc/etherpad/APIKEY.txt /etc/systemd/system/etherpad.service"
    bad_vars_change_nothing(extra_vars(), message,
                            lambda: pad1.check_output(f"sha256sum {files}"),
                            lambda: pad1.check_output("systemctl show -p MainPID --value etherpad"))
    assert pad_text(padclient1) == PAD_TEXT + "\n"


def test_record_figures():
    assert FIGURES, "the restart test did not record its figures"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "etherpad-figures.json").write_text(json.dumps(
        dict(FIGURES, source="npm ep_etherpad-lite 1.8.14", measured=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                  time.gmtime())),
        indent=2) + "\n")
