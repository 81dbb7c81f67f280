"""The PostgreSQL store over TLS: `sslmode=verify-full` with `store.tls_ca_file` against a cluster
that accepts TLS connections only (pg_hba `hostssl`). The server's certificate must chain to the
bundle and name the URL's host; a plain connection, another CA or another name is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import e2e
from pgtest import DATABASE_URL_ENV, Postgres, postgres_store, unavailable_reason


def openssl(d: Path, *args: str):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> Path:
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=rolegate test database CA {name}")
    return d / f"{name}.pem"


class TlsPostgres(Postgres):
    """A cluster with a server certificate for DNS:localhost only, reachable by TLS only."""

    def __init__(self, certs: Path):
        self.certs = certs
        super().__init__()

    def start(self) -> None:
        if not (self.dir / "server.pem").exists():
            (self.certs / "ext.cnf").write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
            openssl(self.certs, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
            openssl(self.certs, "x509", "-req", "-in", "server.csr", "-CA", "db-ca.pem", "-CAkey",
                    "db-ca.key", "-set_serial", "7", "-days", "1", "-extfile", "ext.cnf",
                    "-out", "server.pem")
            for f in ("server.pem", "server.key"):
                shutil.copy(self.certs / f, self.dir / f)
                shutil.chown(self.dir / f, "postgres")
            os.chmod(self.dir / "server.key", 0o600)
            hba = self.data / "pg_hba.conf"
            lines = [("hostssl" + line[4:]) if line.startswith("host ") else line
                     for line in hba.read_text().splitlines()]
            hba.write_text("\n".join(lines) + "\n")
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  f"-c ssl=on -c ssl_cert_file={self.dir / 'server.pem'} "
                  f"-c ssl_key_file={self.dir / 'server.key'}",
            "start")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    why = unavailable_reason()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests must run with CI=true: {why}")
        pytest.skip(f"!!! SKIPPING the PostgreSQL TLS tests: {why} !!!")
    certs = tmp_path_factory.mktemp("db-certs")
    make_ca(certs, "db-ca")
    cluster = TlsPostgres(certs)
    yield cluster
    cluster.destroy()


def start(idp, tmp_path, admin_token, url: str, **store) -> e2e.Rolegate:
    render = e2e.server_config(idp, tmp_path / "unused")
    return e2e.Rolegate(tmp_path / "run", env={e2e.ADMIN_TOKEN_ENV: admin_token, DATABASE_URL_ENV: url},
                        config_for_port=lambda p: postgres_store(render(p), connect_timeout_ms=2000, **store))


def test_verify_full_connects_over_tls_and_serves(tls_cluster, idp, id_token, admin_token, tmp_path):
    tls_cluster.sql('CREATE DATABASE "tls"')
    url = f"postgresql://postgres@localhost:{tls_cluster.port}/tls?sslmode=verify-full"
    srv = start(idp, tmp_path, admin_token, url, tls_ca_file=f'"{tls_cluster.certs / "db-ca.pem"}"')
    try:
        creds = e2e.sts_client(srv.url).assume_role_with_web_identity(
            RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="tls-db",
            WebIdentityToken=id_token(e2e.DEPLOYER_SUB))["Credentials"]
        assert creds["AccessKeyId"].startswith("ASIA")
        # Every connection rolegate holds is encrypted.
        rows = tls_cluster.sql(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = 'rolegate'", db="tls").split()
        assert rows and set(rows) == {"t"}, rows
    finally:
        assert srv.stop() == 0, srv.log_tail()


@pytest.mark.parametrize("case", ["plain", "other-ca", "other-name"])
def test_a_server_that_cannot_be_verified_is_refused_at_start(tls_cluster, idp, admin_token,
                                                              tmp_path, case):
    tls_cluster.sql(f'CREATE DATABASE "refused_{case.replace("-", "_")}"')
    db = f"refused_{case.replace('-', '_')}"
    ca = tls_cluster.certs / "db-ca.pem"
    store = {"tls_ca_file": f'"{ca}"'}
    if case == "plain":
        url, store = f"postgresql://postgres@127.0.0.1:{tls_cluster.port}/{db}", {}
        expect = 'no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "refused_plain", no encryption'
    elif case == "other-ca":
        other = make_ca(tmp_path, "stranger")
        url = f"postgresql://postgres@localhost:{tls_cluster.port}/{db}?sslmode=verify-full"
        store = {"tls_ca_file": f'"{other}"'}
        expect = "invalid peer certificate: UnknownIssuer"
    else:
        # The certificate names localhost, not 127.0.0.1.
        url = f"postgresql://postgres@127.0.0.1:{tls_cluster.port}/{db}?sslmode=verify-full"
        expect = "invalid peer certificate: certificate not valid for name"
    with pytest.raises(RuntimeError) as e:
        start(idp, tmp_path, admin_token, url, **store)
    log = str(e.value)
    assert expect in log, log[-2000:]
