"""Behaviour of the pki role: a CA on the controller, CA-signed keys and certificates on the hosts.

pki1 and pki2 both carry the role. The CA is in the scenario's ephemeral
directory on the controller (converge.yaml). The tests that change
certificates come last, and each ends with the hosts converged again.
"""

import datetime
import json
import os
import re
import shlex
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from devinfra_molecule import PKI_DIR, PKI_KEY_FILE, converge_ok, run_converge

CA_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca"
PKI = PKI_DIR
HOSTS = ["pki1", "pki2"]
PORT = 4433
HANDLER = "RUNNING HANDLER [pki : Report that the host's certificate changed]"


def ca_certificate():
    return x509.load_pem_x509_certificate((CA_DIR / "ca.crt").read_bytes())


def ca_key():
    return serialization.load_pem_private_key((CA_DIR / "ca.key").read_bytes(), password=None)


def public_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def certificate(host):
    return x509.load_pem_x509_certificate(host.file(f"{PKI}/host.crt").content)


def put(host, path, text):
    host.run_expect([0], "printf '%%s' %s > %s", text, path)


def checksums(host):
    return host.check_output(f"sha256sum {PKI}/host.key {PKI}/host.crt {PKI}/host-bundle.pem {PKI}/ca.crt")


def names(cert):
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted([f"DNS:{n}" for n in sans.get_values_for_type(x509.DNSName)]
                  + [f"IP:{a}" for a in sans.get_values_for_type(x509.IPAddress)])


# --- the CA on the controller -------------------------------------------------------------------


def test_ca_lives_on_the_controller_with_private_modes():
    assert oct(CA_DIR.stat().st_mode & 0o777) == "0o700"
    assert oct((CA_DIR / "ca.key").stat().st_mode & 0o777) == "0o600"
    ca = ca_certificate()
    assert ca.subject.rfc4514_string() == "CN=devinfra molecule test CA"
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > datetime.timedelta(days=3649)


@pytest.mark.parametrize("name", HOSTS)
def test_host_has_the_controllers_ca_certificate(hosts, name):
    assert hosts[name].file(f"{PKI}/ca.crt").content == (CA_DIR / "ca.crt").read_bytes()


@pytest.mark.parametrize("name", HOSTS)
def test_ca_key_is_on_no_host(hosts, name):
    """Neither the CA key's text nor any private key with the CA's public key is on the host."""
    host = hosts[name]
    ca_public = public_pem(ca_key())
    body_line = (CA_DIR / "ca.key").read_text().splitlines()[2]
    # Every file system tree but the kernel's (/proc, /sys, /dev); devices and sockets skipped.
    roots = "$(ls -d /* | grep -vxE '/(proc|sys|dev)')"
    found = host.run(f"grep -rlF -D skip -e {shlex.quote(body_line)} {roots}")
    assert found.rc == 1 and found.stdout == "", found.stdout
    keys = host.run(f"grep -rlI -D skip -e '-----BEGIN .*PRIVATE KEY-----' {roots}").stdout.split()
    assert f"{PKI}/host.key" in keys, "the search must find at least the host's own key"
    for path in keys:
        public = host.run(f"openssl pkey -in {path} -passin pass: -pubout < /dev/null").stdout
        assert public.strip() != ca_public.strip(), f"{path} is the CA key"


# --- files on the hosts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize(
    ("path", "mode", "group"),
    [("", 0o755, "root"), ("/ca.crt", 0o644, "root"), ("/host.crt", 0o644, "root"),
     ("/host.key", 0o640, "devinfra-tls"), ("/host-bundle.pem", 0o640, "devinfra-tls")],
    ids=["dir", "ca.crt", "host.crt", "host.key", "host-bundle.pem"],
)
def test_file_modes_and_owners(hosts, name, path, mode, group):
    f = hosts[name].file(PKI + path)
    assert f.exists
    assert (f.mode, f.user, f.group) == (mode, "root", group)


@pytest.mark.parametrize("name", HOSTS)
def test_only_the_tls_group_reads_the_key(hosts, name):
    host = hosts[name]
    host.run_expect([0], "getent passwd pkitest || useradd --system -G devinfra-tls pkitest")
    assert host.group("devinfra-tls").exists
    for path in ("host.key", "host-bundle.pem"):
        assert host.run(f"runuser -u pkitest -- cat {PKI}/{path}").rc == 0
        denied = host.run(f"runuser -u nobody -- cat {PKI}/{path}")
        assert denied.rc != 0 and "Permission denied" in denied.stderr


@pytest.mark.parametrize("name", HOSTS)
def test_bundle_is_the_key_then_the_certificate(hosts, name):
    host = hosts[name]
    key = host.file(f"{PKI}/host.key").content_string
    assert key.startswith("-----BEGIN PRIVATE KEY-----\n"), "PKCS#8, as ZooKeeper's PEM keystore needs"
    bundle = host.file(f"{PKI}/host-bundle.pem").content_string
    assert bundle == key + host.file(f"{PKI}/host.crt").content_string


# --- the certificates -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTS)
def test_certificate_verifies_against_the_ca(hosts, name):
    out = hosts[name].check_output(f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")
    assert out == f"{PKI}/host.crt: OK"


@pytest.mark.parametrize("name", HOSTS)
def test_certificate_names_usages_and_key(hosts, name):
    host = hosts[name]
    cert = certificate(host)
    assert cert.subject.rfc4514_string() == f"CN={name}"
    assert cert.issuer == ca_certificate().subject
    assert names(cert) == sorted([f"DNS:{name}", f"DNS:{name}.devinfra.test", "IP:127.0.0.1"])
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=364) < lifetime <= datetime.timedelta(days=365)
    key_public = host.check_output(f"openssl pkey -in {PKI}/host.key -pubout")
    assert key_public.strip() == public_pem(cert).strip()


# --- TLS between the hosts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(hosts):
    """openssl s_server on pki1 with pki1's certificate, requiring a client certificate from the CA.

    It runs as a system user that is only in the TLS group, as a service would.
    """
    server = hosts["pki1"]
    server.run("systemctl stop pki-test-server; systemctl reset-failed pki-test-server")
    server.run_expect([0], "getent passwd pkitest || useradd --system -G devinfra-tls pkitest")
    server.run_expect(
        [0],
        "systemd-run --unit=pki-test-server --uid=pkitest --gid=pkitest -p SupplementaryGroups=devinfra-tls "
        f"openssl s_server -accept {PORT} -www -Verify 1 -verify_return_error "
        f"-CAfile {PKI}/ca.crt -cert {PKI}/host.crt -key {PKI}/host.key")
    server.run_expect([0], f"for i in $(seq 50); do ss -Hltn 'sport = :{PORT}' | grep -q . && exit 0; "
                           "sleep 0.2; done; exit 1")
    yield server
    server.run("systemctl stop pki-test-server")


def tls_get(client, *, cert=f"{PKI}/host.crt", key=f"{PKI}/host.key", name="pki1"):
    """An HTTP GET to pki1's s_server through openssl s_client, verifying the server as `name`."""
    credentials = f"-cert {cert} -key {key}" if cert else ""
    return client.run(
        f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 20 openssl s_client -connect pki1:{PORT} "
        f"-servername pki1 -verify_hostname {name} -verify_return_error -CAfile {PKI}/ca.crt "
        f"{credentials} -ign_eof -quiet")


def test_mutual_tls_handshake_between_the_hosts(hosts, tls_server):
    answer = tls_get(hosts["pki2"])
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.startswith("HTTP/1.0 200 ok"), answer.stdout[:500] + answer.stderr
    # The server saw pki2's certificate from the CA.
    assert re.search(r"Client certificate.*Issuer: CN=devinfra molecule test CA\s+.*Subject: CN=pki2\b",
                     answer.stdout, re.S), answer.stdout


def test_server_is_verified_by_name(hosts, tls_server):
    answer = tls_get(hosts["pki2"], name="pki2")
    assert "200 ok" not in answer.stdout
    assert "hostname mismatch" in answer.stdout + answer.stderr


def test_client_without_certificate_is_refused(hosts, tls_server):
    answer = tls_get(hosts["pki2"], cert=None)
    assert "200 ok" not in answer.stdout
    assert "alert certificate required" in answer.stderr, answer.stderr


def test_client_with_certificate_from_another_ca_is_refused(hosts, tls_server):
    client = hosts["pki2"]
    client.run_expect([0], "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout /tmp/rogue.key -out /tmp/rogue.crt -subj /CN=pki2 "
                           "-addext subjectAltName=DNS:pki2 -addext extendedKeyUsage=clientAuth -days 2")
    answer = tls_get(client, cert="/tmp/rogue.crt", key="/tmp/rogue.key")
    assert "200 ok" not in answer.stdout
    assert "alert unknown ca" in answer.stderr, answer.stderr


# --- check mode, bad input ------------------------------------------------------------------------


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"pki_cert_valid_days": "soon"}, "pki_cert_valid_days"),
        ({"pki_cert_renew_days": 365}, "pki_cert_renew_days (365) must be at least 0 and less than"),
        ({"pki_subject_alt_names": ["zk.example.org"]}, "pki_subject_alt_names[0] zk.example.org is not"),
        ({"pki_ca_valid_days": 100}, "pki_ca_valid_days (100) must be more than pki_cert_valid_days (365)"),
    ],
    ids=["wrong-type", "renew-not-below-validity", "san-without-type", "ca-shorter-than-certificates"],
)
def test_bad_variables_fail_before_any_change(bad_vars_change_nothing, hosts, extra_vars, message):
    bad_vars_change_nothing(extra_vars, message,
                            lambda: {name: checksums(host) for name, host in hosts.items()},
                            lambda: (CA_DIR / "ca.crt").read_bytes())


def test_check_mode_with_a_new_ca_directory_changes_nothing(tmp_path):
    new_ca = tmp_path / "new-ca"
    run, recap = converge_ok("--check", "-e", json.dumps({"pki_ca_dir": str(new_ca)}))
    assert not new_ca.exists()
    assert all(r["failed"] == 0 for r in recap.values())


# --- renewal and re-signing (each leaves the hosts converged) ------------------------------------


def sign_like(cert, *, days, issuer_key=None, issuer_name=None, public_key=None):
    """A copy of cert (same names and extensions), valid for `days` more days, signed by the CA or another."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(cert.subject)
               .issuer_name(issuer_name or ca_certificate().subject)
               .public_key(public_key or cert.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=days)))
    for extension in cert.extensions:
        if not isinstance(extension.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    signed = builder.sign(issuer_key or ca_key(), hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


def handled_hosts(run):
    """Hosts on which the pki role's handler ran (the "pki certificate changed" topic was notified)."""
    if HANDLER not in run.stdout:
        return []
    section = run.stdout.split(HANDLER, 1)[1].split("\n\n", 1)[0]
    return sorted(set(re.findall(r"^ok: \[(\w+)\]", section, re.M)))


def test_certificate_expiring_soon_is_resigned_on_that_host_only(hosts):
    pki1, pki2 = hosts["pki1"], hosts["pki2"]
    original = certificate(pki1)
    # Same CA, names and key, but only 10 days left: less than pki_cert_renew_days (30).
    put(pki1, f"{PKI}/host.crt", sign_like(original, days=10))
    short = certificate(pki1)
    key_before = pki1.check_output(f"sha256sum {PKI}/host.key")
    pki2_before = checksums(pki2)

    run, recap = converge_ok()
    renewed = certificate(pki1)
    assert renewed.serial_number not in (original.serial_number, short.serial_number)
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=364)
    assert pki1.check_output(f"sha256sum {PKI}/host.key") == key_before
    assert checksums(pki2) == pki2_before
    assert recap["pki2"]["changed"] == 0 and recap["pki1"]["changed"] == 2, run.stdout[-3000:]  # crt, bundle
    assert handled_hosts(run) == ["pki1"], run.stdout[-3000:]
    pki1.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")
    assert pki1.file(f"{PKI}/host-bundle.pem").content_string.endswith(
        pki1.file(f"{PKI}/host.crt").content_string)


def test_renew_days_longer_than_the_remaining_validity_resign_every_host(hosts):
    serials = {name: certificate(host).serial_number for name, host in hosts.items()}
    keys = {name: host.check_output(f"sha256sum {PKI}/host.key") for name, host in hosts.items()}
    # Certificates have just under 365 days left: renewing 400 days ahead means now.
    run, recap = converge_ok("-e", json.dumps({"pki_cert_renew_days": 400, "pki_cert_valid_days": 500}))
    for name, host in hosts.items():
        assert certificate(host).serial_number != serials[name]
        assert host.check_output(f"sha256sum {PKI}/host.key") == keys[name]
    assert handled_hosts(run) == HOSTS
    # Back to the scenario's values: a 500-day certificate is not due, so nothing changes.
    run, recap = converge_ok()
    assert all(r["changed"] == 0 for r in recap.values()), run.stdout[-3000:]


def test_changed_names_resign_and_keep_the_key(hosts):
    pki2 = hosts["pki2"]
    serial = certificate(pki2).serial_number
    key_before = pki2.check_output(f"sha256sum {PKI}/host.key")
    extra = {"pki_subject_alt_names": ["DNS:{{ inventory_hostname }}.devinfra.test", "IP:127.0.0.1",
                                       "DNS:zk.devinfra.test"]}
    converge_ok("-e", json.dumps(extra))
    widened = certificate(pki2)
    assert "DNS:zk.devinfra.test" in names(widened)
    assert widened.serial_number != serial
    assert pki2.check_output(f"sha256sum {PKI}/host.key") == key_before
    # The scenario's names again: the extra one goes, with a new signature.
    converge_ok()
    narrowed = certificate(pki2)
    assert names(narrowed) == ["DNS:pki2", "DNS:pki2.devinfra.test", "IP:127.0.0.1"]
    assert narrowed.serial_number != widened.serial_number


def test_certificate_from_another_ca_is_replaced(hosts):
    pki2 = hosts["pki2"]
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = sign_like(certificate(pki2), days=300, issuer_key=rogue_key, issuer_name=ca_certificate().subject)
    put(pki2, f"{PKI}/host.crt", rogue)
    assert pki2.run(f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt").rc != 0
    run, recap = converge_ok()
    assert recap["pki2"]["changed"] == 2 and recap["pki1"]["changed"] == 0, run.stdout[-3000:]
    pki2.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")


def test_certificate_of_another_key_is_replaced(hosts):
    pki1, pki2 = hosts["pki1"], hosts["pki2"]
    # pki1's certificate is from the CA, but for pki1's key and names.
    put(pki2, f"{PKI}/host.crt", pki1.file(f"{PKI}/host.crt").content_string)
    converge_ok()
    cert = certificate(pki2)
    assert cert.subject.rfc4514_string() == "CN=pki2"
    assert pki2.check_output(f"openssl pkey -in {PKI}/host.key -pubout").strip() == public_pem(cert).strip()


def test_lost_key_is_made_again_with_a_matching_certificate(hosts):
    pki2 = hosts["pki2"]
    old_public = public_pem(certificate(pki2))
    pki2.run_expect([0], f"rm {PKI}/host.key")
    converge_ok()
    new_public = pki2.check_output(f"openssl pkey -in {PKI}/host.key -pubout").strip()
    assert new_public != old_public.strip()
    assert public_pem(certificate(pki2)).strip() == new_public
    pki2.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")


def test_key_type_change_makes_a_new_key_and_certificate(hosts):
    pki2 = hosts["pki2"]
    converge_ok("--limit", "pki2", "-e", json.dumps({"pki_key_type": "RSA", "pki_key_size": 2048}))
    key = pki2.check_output(f"openssl pkey -in {PKI}/host.key -noout -text | head -1")
    assert key.startswith("Private-Key: (2048 bit"), key
    assert pki2.file(f"{PKI}/host.key").content_string.startswith("-----BEGIN PRIVATE KEY-----")
    cert = certificate(pki2)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert pki2.check_output(f"openssl pkey -in {PKI}/host.key -pubout").strip() == public_pem(cert).strip()
    pki2.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")
    # Back to the scenario's ECC key.
    converge_ok("--limit", "pki2")
    cert = certificate(pki2)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert not cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    assert pki2.file(f"{PKI}/host-bundle.pem").content_string == (
        pki2.file(f"{PKI}/host.key").content_string + pki2.file(f"{PKI}/host.crt").content_string)


def test_check_mode_on_a_fresh_host_does_not_fail_and_writes_nothing(hosts):
    pki2 = hosts["pki2"]
    pki2.run_expect([0], "apt-get purge -y -q python3-cryptography && rm -rf /etc/devinfra "
                         "&& groupdel devinfra-tls")
    run, recap = converge_ok("--check", "--limit", "pki2")
    assert recap["pki2"]["failed"] == 0 and recap["pki2"]["changed"] > 0, run.stdout[-3000:]
    assert not pki2.file("/etc/devinfra").exists
    assert not pki2.package("python3-cryptography").is_installed
    # A real run then sets the host up.
    run, recap = converge_ok()
    pki2.run_expect([0], f"openssl verify -CAfile {PKI}/ca.crt {PKI}/host.crt")
    assert recap["pki1"]["changed"] == 0, run.stdout[-3000:]


# A compromised host: its Python answers the role's request module with a
# request of its own, for its key but with other hosts' names.
FORGING_PYTHON = """#!/usr/bin/python3
import json, subprocess, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
proc = subprocess.run(["/usr/bin/python3", *sys.argv[1:]], stdin=sys.stdin, capture_output=True, text=True)
out = proc.stdout
try:
    result = json.loads(out)
except ValueError:
    result = None
if isinstance(result, dict) and result.get("csr"):
    key = serialization.load_pem_private_key(open(HOST_KEY, "rb").read(), None)
    names = [x509.DNSName(n) for n in ("pki2", "pki2.devinfra.test", "pki1", "zk01.devinfra.test")]
    forged = (x509.CertificateSigningRequestBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pki2")]))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .sign(key, hashes.SHA256()))
    result["csr"] = forged.public_bytes(serialization.Encoding.PEM).decode()
    out = json.dumps(result)
sys.stdout.write(out)
sys.stderr.write(proc.stderr)
sys.exit(proc.returncode)
""".replace("HOST_KEY", repr(PKI_KEY_FILE))


def test_a_forged_request_from_a_host_is_refused_and_nothing_is_signed(hosts, tmp_path, monkeypatch):
    pki2 = hosts["pki2"]
    before = checksums(pki2)
    put(pki2, "/usr/local/bin/forging-python3", FORGING_PYTHON)
    pki2.run_expect([0], "chmod 0755 /usr/local/bin/forging-python3")
    compromised = tmp_path / "compromised.yaml"
    compromised.write_text("all:\n  hosts:\n    pki2:\n"
                           "      ansible_python_interpreter: /usr/local/bin/forging-python3\n")
    # mitogen runs modules in its own interpreter process: Ansible's own
    # strategy runs each module as the host's Python prints it.
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
    try:
        run = run_converge("--limit", "pki2", "-i", str(compromised))
    finally:
        pki2.run_expect([0], "rm -f /usr/local/bin/forging-python3")
    assert run.returncode != 0, run.output()
    said = " ".join((run.stdout + run.stderr).split())  # folded by the YAML callback, on either stream
    assert "pki2: the CA signs nothing" in said, run.output()
    assert "names it may not have: DNS:pki1, DNS:zk01.devinfra.test" in said, run.output()
    assert "TASK [pki : Sign the host certificate" not in run.stdout
    assert checksums(pki2) == before
    assert "DNS:zk01.devinfra.test" not in names(certificate(pki2))
