"""Behaviour of the postgresql role, seen from another host.

db1 runs PostgreSQL (the role) with the users zuul and etherpad and their
databases; pg_hba.conf lets only zuul into zuul, over TLS, from db1's
network. Its certificate comes from a test CA standing in for the pki role.
dbclient1 has only the client tools and connects to db1 by host name.
"""

import json
import uuid

import pytest
from devinfra_molecule import host_fixtures, run_converge

# The test passwords of converge.yaml.
PASSWORDS = {"zuul": "zuul-molecule-secret", "etherpad": "etherpad-molecule-secret"}
ZUUL = "host=db1 port=5432 dbname=zuul user=zuul"
ZUUL_TLS = f"{ZUUL} sslmode=require"
LIVE_FILES = "/etc/postgresql/17/main/pg_hba.conf /etc/postgresql/17/main/conf.d/devinfra.conf"
# converge.yaml's rule, and one more that lets etherpad into its database.
HBA_ZUUL = {"type": "hostssl", "database": "zuul", "user": "zuul", "address": "samenet"}
HBA_ETHERPAD = {"type": "hostssl", "database": "etherpad", "user": "etherpad", "address": "samenet"}


globals().update(host_fixtures("db1", client="dbclient1"))


def psql(host, conninfo, sql, password=PASSWORDS["zuul"]):
    """Run one statement with psql on host; the finished command."""
    return host.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=10 psql -X -A -t -q -v ON_ERROR_STOP=1 -d %s -c %s",
        password, conninfo, sql)


def query(host, conninfo, sql, password=PASSWORDS["zuul"]):
    cmd = psql(host, conninfo, sql, password)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def superuser(db1, sql, port="5432"):
    """As postgres on db1's socket (the peer rule)."""
    return db1.check_output("runuser -u postgres -- psql -X -A -t -q -p %s -d postgres -c %s", port, sql)


def start_time(db1, port="5432"):
    return superuser(db1, "SELECT pg_postmaster_start_time()", port)


def extra_vars(**variables):
    return json.dumps(variables)


@pytest.fixture(scope="module")
def cafile(db1, client):
    """The test CA's certificate, on the client."""
    pem = db1.file("/etc/devinfra-test-ca/ca.crt").content_string
    client.run_expect([0], "printf '%%s' %s > /tmp/db1-ca.crt", pem)
    return "/tmp/db1-ca.crt"


@pytest.fixture(scope="module")
def row(client):
    """A row zuul writes into its database over TLS; its text is returned."""
    note = f"molecule-{uuid.uuid4()}"
    query(client, ZUUL_TLS,
          "CREATE TABLE IF NOT EXISTS molecule_rows (id serial PRIMARY KEY, note text NOT NULL)")
    assert query(client, ZUUL_TLS,
                 f"INSERT INTO molecule_rows (note) VALUES ('{note}') RETURNING note") == note
    return note


def test_zuul_connects_over_tls_by_host_name_and_writes(client, row):
    count = query(client, ZUUL_TLS, f"SELECT count(*) FROM molecule_rows WHERE note = '{row}'")
    assert count == "1"


def test_the_session_is_really_tls(client):
    out = query(client, ZUUL_TLS,
                "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert out in ("t|TLSv1.3", "t|TLSv1.2"), out


def test_the_server_certificate_is_the_pki_one_for_its_host_name(client, cafile):
    assert query(client, f"{ZUUL} sslmode=verify-full sslrootcert={cafile}", "SELECT 1") == "1"
    # The same server by address: the certificate names db1 only.
    address = client.check_output("getent hosts db1 | cut -d' ' -f1")
    wrong = psql(client, f"host={address} dbname=zuul user=zuul sslmode=verify-full sslrootcert={cafile}",
                 "SELECT 1")
    assert wrong.rc != 0
    assert 'does not match host name "' in wrong.stderr, wrong.stderr


def test_a_connection_without_tls_is_refused(client):
    cmd = psql(client, f"{ZUUL} sslmode=disable", "SELECT 1")
    assert cmd.rc != 0
    assert "no pg_hba.conf entry for host" in cmd.stderr, cmd.stderr
    assert "no encryption" in cmd.stderr, cmd.stderr


def test_a_wrong_password_is_refused(client):
    cmd = psql(client, ZUUL_TLS, "SELECT 1", password="not-the-password")
    assert cmd.rc != 0
    assert 'password authentication failed for user "zuul"' in cmd.stderr, cmd.stderr


@pytest.mark.parametrize(
    ("database", "user"),
    [("etherpad", "zuul"), ("etherpad", "etherpad"), ("zuul", "etherpad"), ("postgres", "zuul")],
)
def test_combinations_not_in_hba_are_refused_even_with_the_right_password(client, database, user):
    cmd = psql(client, f"host=db1 dbname={database} user={user} sslmode=require", "SELECT 1",
               password=PASSWORDS[user])
    assert cmd.rc != 0
    assert 'no pg_hba.conf entry for host "' in cmd.stderr, cmd.stderr
    assert f'user "{user}", database "{database}", SSL encryption' in cmd.stderr, cmd.stderr


def test_live_hba_rules_are_exactly_the_peer_rules_and_the_configured_ones(db1):
    rules = superuser(db1, "SELECT type, database, user_name, coalesce(address, ''), auth_method, "
                           "coalesce(error, '') FROM pg_hba_file_rules ORDER BY rule_number")
    assert rules.splitlines() == [
        "local|{all}|{postgres}||peer|",
        # The exporter (postgresql_exporter_enabled): its system user, the postgres database only.
        "local|{postgres}|{prometheus}||peer|",
        "hostssl|{zuul}|{zuul}|samenet|scram-sha-256|",
    ]


def test_passwords_are_stored_as_scram_and_databases_kept_to_their_owners(db1):
    stored = superuser(db1, "SELECT rolname, left(rolpassword, 14), rolsuper, rolcreatedb FROM pg_authid "
                            "WHERE rolname IN ('zuul', 'etherpad') ORDER BY rolname")
    assert stored.splitlines() == ["etherpad|SCRAM-SHA-256$|f|f", "zuul|SCRAM-SHA-256$|f|f"]
    access = superuser(db1, "SELECT has_database_privilege('zuul', 'zuul', 'CONNECT'), "
                            "has_database_privilege('etherpad', 'zuul', 'CONNECT'), "
                            "has_database_privilege('etherpad', 'zuul', 'TEMPORARY')")
    assert access == "t|f|f"
    encoding = superuser(db1, "SELECT datname, pg_encoding_to_char(encoding), pg_get_userbyid(datdba) "
                              "FROM pg_database WHERE datname IN ('zuul', 'etherpad') ORDER BY datname")
    assert encoding.splitlines() == ["etherpad|UTF8|etherpad", "zuul|UTF8|zuul"]


def test_the_row_survives_a_restart(db1, client, row):
    before = start_time(db1)
    db1.run_expect([0], "systemctl restart postgresql")
    assert start_time(db1) != before, "the server did not restart"
    count = query(client, ZUUL_TLS, f"SELECT count(*) FROM molecule_rows WHERE note = '{row}'")
    assert count == "1"


def test_the_backup_service_dumps_the_row_restorably(db1, row):
    db1.run_expect([0], "systemctl start postgresql-backup.service")
    assert db1.check_output("systemctl show -P Result postgresql-backup.service") == "success"
    latest = db1.check_output("readlink -f /var/backups/postgresql/latest")
    assert set(db1.check_output(f"ls {latest}").split()) == {
        "SHA256SUMS", "globals.sql", "etherpad.dump", "postgres.dump", "zuul.dump"}
    db1.run_expect([0], f"cd {latest} && sha256sum --quiet -c SHA256SUMS")
    assert row in db1.check_output(f"pg_restore -f - {latest}/zuul.dump")
    assert "CREATE ROLE zuul;" in db1.file(f"{latest}/globals.sql").content_string
    # Restored into a new database, the row is there.
    superuser(db1, "DROP DATABASE IF EXISTS molecule_restore")
    superuser(db1, "CREATE DATABASE molecule_restore")
    try:
        db1.run_expect([0], "runuser -u postgres -- pg_restore -p 5432 -d molecule_restore < %s",
                       f"{latest}/zuul.dump")
        count = db1.check_output("runuser -u postgres -- psql -X -A -t -p 5432 -d molecule_restore -c %s",
                                 f"SELECT count(*) FROM molecule_rows WHERE note = '{row}'")
        assert count == "1"
    finally:
        superuser(db1, "DROP DATABASE IF EXISTS molecule_restore")
    backups = db1.file("/var/backups/postgresql")
    assert (backups.user, backups.mode) == ("root", 0o700)


def test_the_backup_runs_daily_and_is_registered_in_backup_d(db1):
    timer = db1.service("postgresql-backup.timer")
    assert timer.is_enabled and timer.is_running
    # The backup_client role's devinfra-backup runs the command, then archives the paths.
    source = json.loads(db1.file("/etc/devinfra/backup.d/postgresql.json").content_string)
    assert source["command"] == ["/usr/local/bin/postgresql-backup"]
    assert source["paths"] == ["/var/backups/postgresql/latest"]
    for _ in range(3):
        out = db1.check_output("POSTGRESQL_BACKUP_KEEP=2 %s", source["command"][0])
        assert out.startswith("postgresql-backup: /var/backups/postgresql/2")
    kept = db1.check_output("find /var/backups/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'")
    assert len(kept.split()) == 2, kept
    assert db1.check_output("readlink -f /var/backups/postgresql/latest").endswith(sorted(kept.split())[-1])


def test_a_new_certificate_is_served_after_a_reload(db1, client, cafile):
    """The pki role's "pki certificate changed" reloads PostgreSQL; no restart."""
    client.run_expect([0], "command -v openssl")
    serve = ("openssl s_client -starttls postgres -connect db1:5432 -CAfile %s -verify_return_error "
             "</dev/null 2>/dev/null | openssl x509 -noout -serial")
    before = start_time(db1)
    issued = db1.check_output("test-ca issue db1")
    assert client.check_output(serve, cafile) != issued
    run, recap = run_converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert "RUNNING HANDLER [postgresql : Reload postgresql" in run.stdout
    assert client.check_output(serve, cafile) == issued
    assert start_time(db1) == before, "a new certificate needs a reload, not a restart"
    assert query(client, f"{ZUUL} sslmode=verify-full sslrootcert={cafile}", "SELECT 1") == "1"


def test_reload_or_restart_as_postgresql_requires(db1, client):
    """pg_hba.conf takes effect at a reload; a new port only at a restart."""
    etherpad = "host=db1 dbname=etherpad user=etherpad sslmode=require"
    before = start_time(db1)
    try:
        # 1. One more hba rule: etherpad gets in, the server keeps running.
        run, _ = run_converge("-e", extra_vars(postgresql_hba=[HBA_ZUUL, HBA_ETHERPAD]))
        assert run.returncode == 0, run.stdout[-3000:]
        assert query(client, etherpad, "SELECT current_user", PASSWORDS["etherpad"]) == "etherpad"
        assert start_time(db1) == before, "pg_hba.conf needs a reload, not a restart"
        # 2. Another port: PostgreSQL lists it as waiting for a restart, so the role restarts.
        run, _ = run_converge("-e", extra_vars(postgresql_hba=[HBA_ZUUL, HBA_ETHERPAD], postgresql_port=5433))
        assert run.returncode == 0, run.stdout[-3000:]
        assert "RUNNING HANDLER [postgresql : Restart postgresql for the settings that need it]" in run.stdout
        assert start_time(db1, "5433") != before
        moved = "host=db1 port=5433 dbname=zuul user=zuul sslmode=require"
        assert query(client, moved, "SHOW port") == "5433"
        assert psql(client, ZUUL_TLS, "SELECT 1").rc != 0
    finally:
        # 3. Back to converge.yaml's settings.
        run, _ = run_converge()
        assert run.returncode == 0, run.stdout[-3000:]
    assert query(client, ZUUL_TLS, "SHOW port") == "5432"
    refused = psql(client, etherpad, "SELECT 1", PASSWORDS["etherpad"])
    assert "no pg_hba.conf entry" in refused.stderr, refused.stderr


def test_check_mode_on_the_converged_host_reports_no_change(check_mode_is_clean):
    check_mode_is_clean(expect_hosts=["db1"])


@pytest.fixture
def unreadable_key(db1):
    """db1's key, but root's alone: the postgres user cannot read it."""
    path = "/etc/ssl/devinfra/unreadable.key"
    db1.run_expect([0], f"install -m 0600 -o root -g root /etc/ssl/devinfra/db1.key {path}")
    yield path
    db1.run_expect([0], f"rm -f {path}")


USERS = [{"name": name, "password": password} for name, password in PASSWORDS.items()]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"postgresql_users": [{"name": "zuul"}, USERS[1]]},
         "postgresql_users[0].password (user zuul) is missing or empty"),
        ({"postgresql_users": [{"name": "zuul", "password": ""}, USERS[1]]},
         "postgresql_users[0].password (user zuul) is missing or empty"),
        ({"postgresql_databases": [{"name": "zuul", "owner": "nobody"}]},
         "postgresql_databases[0].owner (database zuul): nobody is not in postgresql_users"),
        ({"postgresql_hba": [HBA_ZUUL, {**HBA_ETHERPAD, "method": "trust"}]},
         "got: trust found in postgresql_hba"),
        ({"postgresql_hba": [HBA_ZUUL, {**HBA_ETHERPAD, "type": "local"}]},
         "postgresql_hba[1]: a local rule has no address"),
        ({"postgresql_hba": [HBA_ZUUL, {**HBA_ETHERPAD, "type": "host", "method": "peer"}]},
         "postgresql_hba[1]: method peer is for local rules only"),
        # Only PostgreSQL's own checks of the candidate files catch these two.
        ({"postgresql_hba": [HBA_ZUUL, {**HBA_ETHERPAD, "address": "10.0.0.0/99"}]},
         'invalid CIDR mask in address "10.0.0.0/99"'),
        ({"postgresql_max_connections": 1000000},
         'is outside the valid range for parameter "max_connections"'),
    ],
    ids=["user-without-password", "empty-password", "owner-not-a-user", "trust-rule", "local-with-address",
         "peer-over-tcp", "bad-cidr-mask", "max-connections-out-of-range"],
)
def test_bad_variables_fail_before_any_change(bad_vars_change_nothing, db1, variables, message):
    # With the bad value comes a new hba rule: had the run gone on, pg_hba.conf would change.
    variables = {"postgresql_hba": [HBA_ZUUL, HBA_ETHERPAD], **variables}
    bad_vars_change_nothing(variables, message, lambda: db1.check_output(f"sha256sum {LIVE_FILES}"))
    assert superuser(db1, "SELECT count(*) FROM pg_hba_file_rules") == "3"


def test_a_key_the_server_cannot_read_is_refused_before_it_goes_live(
        bad_vars_change_nothing, db1, unreadable_key):
    bad_vars_change_nothing({"postgresql_ssl_key_file": unreadable_key},
                            f"{unreadable_key} is not readable by the postgres user",
                            lambda: db1.check_output(f"sha256sum {LIVE_FILES}"))
