"""Two rolegate processes on one PostgreSQL database, as two replicas behind a load balancer: credentials
issued by one verify on the other; a revocation made on one is enforced by the other within the refresh
interval (src/app.rs REFRESH_INTERVAL, 5 s); a TOTP code used on one is refused by the other; a
sealing-key rotation made on one is honoured by the other within the same bound."""

from __future__ import annotations

import json
import time

import botocore
import pytest

import e2e
from pgtest import DATABASE_URL_ENV, pg_cluster, postgres_store, wait_until  # noqa: F401 (fixture)
from test_directory import steady_now, totp

ACCOUNT = e2e.ACCOUNT
# src/app.rs REFRESH_INTERVAL, plus slack for a loaded machine.
REFRESH_INTERVAL = 5.0
BOUND = REFRESH_INTERVAL + 3.0


@pytest.fixture(scope="module")
def replicas(pg_cluster, idp, rolegate_binary, admin_token, tmp_path_factory):
    """Replica A, then replica B (started after A so that both load the sealing key A created)."""
    url = pg_cluster.create_database("replicas")
    env = {e2e.ADMIN_TOKEN_ENV: admin_token, DATABASE_URL_ENV: url}
    servers = []
    for name in ("a", "b"):
        work = tmp_path_factory.mktemp(f"replica-{name}")
        render = e2e.server_config(idp, work / "unused")
        servers.append(e2e.Rolegate(work, config_for_port=lambda p, r=render: postgres_store(r(p)),
                                    env=env))
    yield servers
    for srv in servers:
        code = srv.stop()
        assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def web_identity(srv, id_token, sub=e2e.DEPLOYER_SUB, role=e2e.ROLE_DEPLOYER, name="replica"):
    return e2e.sts_client(srv.url).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName=name, WebIdentityToken=id_token(sub))["Credentials"]


def caller(srv, creds):
    """GetCallerIdentity's ARN, or the error code."""
    try:
        return e2e.sts_client(srv.url, creds).get_caller_identity()["Arn"]
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]


def admin_post(srv, path, body, token):
    return e2e.http("POST", f"{srv.url}{path}", json.dumps(body),
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def test_both_replicas_share_one_schema_and_one_sealing_key(replicas, pg_cluster):
    for srv in replicas:
        assert e2e.http("GET", f"{srv.url}/readyz").status == 200
    assert pg_cluster.sql("SELECT max(version) FROM rolegate_schema", db="replicas") == "1"
    keys = pg_cluster.sql("SELECT count(*) FROM sealing_keys WHERE retired_at IS NULL",
                          db="replicas")
    assert keys == "1", "the second replica used the key the first created"


def test_credentials_from_one_replica_verify_on_the_other(replicas, id_token):
    a, b = replicas
    for issuer, verifier in ((a, b), (b, a)):
        creds = web_identity(issuer, id_token, name="cross")
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/cross"
        assert caller(issuer, creds) == arn
        assert caller(verifier, creds) == arn, "credentials sealed by one replica open on the other"
    # A tampered session token is refused by both.
    creds = web_identity(a, id_token, name="cross")
    bad = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    assert caller(b, bad) == "InvalidClientTokenId"


def test_a_revocation_on_one_replica_is_enforced_on_the_other(replicas, id_token, admin_token):
    a, b = replicas
    creds = web_identity(a, id_token, sub="svc-replica", role=e2e.ROLE_REVOCABLE, name="to-revoke")
    other = web_identity(a, id_token, name="unaffected")
    assert caller(b, creds).endswith("/revocable/to-revoke")
    time.sleep(1.1)  # revocations cover tokens issued strictly before a second boundary
    r = admin_post(a, "/admin/revocations",
                   {"scope": "role", "value": e2e.ROLE_REVOCABLE, "reason": "replica test"},
                   admin_token)
    assert r.status == 200, r.text
    revoked_at = time.monotonic()
    assert caller(a, creds) == "ExpiredToken", "the replica that revoked enforces it at once"
    wait_until("replica B enforces the revocation", lambda: caller(b, creds) == "ExpiredToken",
               BOUND)
    took = time.monotonic() - revoked_at
    print(f"revocation reached the other replica after {took:.2f} s")
    assert caller(b, other).endswith("/ci-deployer/unaffected"), "other roles stay valid"


def test_a_totp_code_used_on_one_replica_is_refused_on_the_other(replicas):
    a, b = replicas

    def cli(*args):
        r = a.cli(*args)
        assert r.returncode == 0, f"rolegate {' '.join(args)}: {r.stderr}"
        return json.loads(r.stdout)

    cli("user", "create", "replicated")
    device = cli("mfa", "create-totp", "replicated")
    now = steady_now()
    cli("mfa", "enable", "replicated", totp(device["secret_base32"], now - 30),
        totp(device["secret_base32"], now))
    key = cli("access-key", "create", "replicated")

    def sts(srv):
        import boto3
        return boto3.client(
            "sts", endpoint_url=srv.url, region_name="us-east-1",
            aws_access_key_id=key["access_key_id"], aws_secret_access_key=key["secret_access_key"],
            config=botocore.config.Config(retries={"max_attempts": 1}))

    # Both replicas see the user created through the store.
    assert sts(b).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/replicated"
    code = totp(device["secret_base32"], time.time() + 30)
    session = sts(a).get_session_token(SerialNumber=device["serial"], TokenCode=code)
    assert session["Credentials"]["AccessKeyId"].startswith("ASIA")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(b).get_session_token(SerialNumber=device["serial"], TokenCode=code)
    assert e.value.response["Error"]["Code"] == "AccessDenied", "the code was used on replica A"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(a).get_session_token(SerialNumber=device["serial"], TokenCode=code)
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_a_key_rotation_on_one_replica_is_honoured_on_the_other(replicas, id_token, admin_token):
    a, b = replicas
    before = web_identity(a, id_token, name="before-rotation")
    r = admin_post(a, "/admin/keys/rotate", {}, admin_token)
    assert r.status == 200, r.text
    new_key = r.json()["key_id"]
    rotated_at = time.monotonic()
    after = web_identity(a, id_token, name="after-rotation")
    assert caller(a, after).endswith("/after-rotation")
    wait_until("replica B opens tokens sealed with the new key",
               lambda: caller(b, after).endswith("/after-rotation"), BOUND)
    print(f"key {new_key} honoured by the other replica after {time.monotonic() - rotated_at:.2f} s")
    # Tokens sealed with the retired key still open on both until it is deleted.
    assert caller(b, before).endswith("/before-rotation")
    # B now seals with the new key too: its tokens open on A.
    from_b = web_identity(b, id_token, name="sealed-by-b")
    assert caller(a, from_b).endswith("/sealed-by-b")
