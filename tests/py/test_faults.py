"""Faults under load, on loopback, every loop bounded:

- `kill -9` of rolegate while clients write: nothing acknowledged is lost (directory records, sealing
  keys, revocations, a used TOTP code), on sled and on PostgreSQL;
- PostgreSQL stopped and started again while clients call: every answer is a success or a clean
  503 `ServiceUnavailable`, none hangs, and rolegate recovers without a restart;
- the OpenID provider stopped: tokens whose key rolegate has cached still work; a token naming an
  unknown key gives `IDPCommunicationError`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import boto3
import botocore
import pytest

import e2e
from pgtest import DATABASE_URL_ENV, pg_cluster, postgres_store, wait_until  # noqa: F401 (fixture)
from test_directory import steady_now, totp

ACCOUNT = e2e.ACCOUNT
LOAD_SECONDS = 2.5


def admin(srv, method, path, token, body=None):
    return e2e.http(method, f"{srv.url}{path}", json.dumps(body) if body is not None else None,
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    timeout=10)


def web_identity(srv, id_token, sub=e2e.DEPLOYER_SUB, role=e2e.ROLE_DEPLOYER, name="fault"):
    return e2e.sts_client(srv.url).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName=name, WebIdentityToken=id_token(sub))["Credentials"]


def caller(url, creds):
    try:
        return e2e.sts_client(url, creds).get_caller_identity()["Arn"]
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]


def key_client(url, key):
    return boto3.client(
        "sts", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key["access_key_id"], aws_secret_access_key=key["secret_access_key"],
        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=15,
                                      connect_timeout=5))


def cli_json(srv, *args):
    r = srv.cli(*args)
    assert r.returncode == 0, f"rolegate {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout)


class Load:
    """Runs `work(i)` in `threads` threads until stopped; `work` records what was acknowledged."""

    def __init__(self, threads: int, work):
        self.stop = threading.Event()
        self.errors: list[str] = []

        def loop(t):
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    work(t, i)
                except Exception as e:  # noqa: BLE001 (a killed server breaks requests)
                    self.errors.append(f"{type(e).__name__}: {e}")
        self.threads = [threading.Thread(target=loop, args=(t,), daemon=True)
                        for t in range(threads)]
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=30)
            assert not th.is_alive(), "a load thread did not finish"


@pytest.fixture(params=["sled", "postgres"])
def store_kind(request):
    return request.param


def test_kill_9_under_load_loses_no_acknowledged_state(store_kind, request, idp, id_token,
                                                       admin_token, tmp_path):
    env = {e2e.ADMIN_TOKEN_ENV: admin_token}
    render = e2e.server_config(idp, tmp_path / "data")
    if store_kind == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        env[DATABASE_URL_ENV] = cluster.create_database(f"kill9_{int(time.time() * 1000)}")
        config = lambda p: postgres_store(render(p))  # noqa: E731
    else:
        config = render
    srv = e2e.Rolegate(tmp_path / "run", config_for_port=config, env=env)

    # A user whose TOTP code is used just before the kill.
    cli_json(srv, "user", "create", "mfa-user")
    device = cli_json(srv, "mfa", "create-totp", "mfa-user")
    now = steady_now()
    cli_json(srv, "mfa", "enable", "mfa-user", totp(device["secret_base32"], now - 30),
             totp(device["secret_base32"], now))
    key = cli_json(srv, "access-key", "create", "mfa-user")

    lock = threading.Lock()
    users: list[str] = []           # acknowledged directory records
    revoked: list[dict] = []        # credentials whose revocation was acknowledged
    sealed: list[dict] = []         # credentials issued after an acknowledged key rotation
    tokens = [id_token(e2e.DEPLOYER_SUB) for _ in range(4)]

    def work(t, i):
        kind = t % 3
        if kind == 0:
            name = f"u{t}-{i}"
            r = admin(srv, "POST", "/admin/users", admin_token, {"name": name})
            if r.status in (200, 201):
                with lock:
                    users.append(name)
        elif kind == 1:
            creds = e2e.sts_client(srv.url).assume_role_with_web_identity(
                RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName=f"r{t}-{i}",
                WebIdentityToken=tokens[i % len(tokens)])["Credentials"]
            r = admin(srv, "POST", "/admin/revocations", admin_token,
                      {"scope": "access-key", "value": creds["AccessKeyId"], "reason": "kill -9"})
            if r.status == 200:
                with lock:
                    revoked.append(creds)
        else:
            r = admin(srv, "POST", "/admin/keys/rotate", admin_token, {})
            if r.status == 200:
                creds = e2e.sts_client(srv.url).assume_role_with_web_identity(
                    RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName=f"k{t}-{i}",
                    WebIdentityToken=tokens[i % len(tokens)])["Credentials"]
                with lock:
                    sealed.append(creds)

    load = Load(6, work)
    time.sleep(LOAD_SECONDS / 2)
    code = totp(device["secret_base32"], time.time() + 30)
    key_client(srv.url, key).get_session_token(SerialNumber=device["serial"], TokenCode=code)
    time.sleep(LOAD_SECONDS / 2)
    # On a slow machine the load runs on until enough of each kind has been acknowledged.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with lock:
            if len(users) >= 5 and len(revoked) >= 5 and len(sealed) >= 3:
                break
        time.sleep(0.1)
    srv.proc.kill()                 # SIGKILL: no shutdown, no flush
    srv.proc.wait(timeout=10)
    load.finish()
    with lock:
        users_, revoked_, sealed_ = list(users), list(revoked), list(sealed)
    assert len(users_) >= 5 and len(revoked_) >= 5 and len(sealed_) >= 3, (
        f"too little acknowledged before the kill: {len(users_)} users, {len(revoked_)} "
        f"revocations, {len(sealed_)} rotations; errors: {load.errors[:5]}")

    again = e2e.Rolegate(tmp_path / "run", config_path=srv.config_path, port=srv.port, env=env)
    try:
        listed = admin(again, "GET", "/admin/users", admin_token)
        assert listed.status == 200, listed.text
        names = {u["name"] if isinstance(u, dict) else u for u in _users(listed.json())}
        missing = [u for u in users_ if u not in names]
        assert not missing, f"{len(missing)} acknowledged users lost: {missing[:5]}"
        for creds in revoked_:
            assert caller(again.url, creds) == "ExpiredToken", "an acknowledged revocation was lost"
        for creds in sealed_:
            assert caller(again.url, creds).startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/"), (
                "credentials sealed with an acknowledged key no longer open")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            key_client(again.url, key).get_session_token(SerialNumber=device["serial"],
                                                         TokenCode=code)
        assert e.value.response["Error"]["Code"] == "AccessDenied", "the used code was forgotten"
        print(f"{store_kind}: kept {len(users_)} users, {len(revoked_)} revocations, "
              f"{len(sealed_)} rotations across kill -9")
    finally:
        assert again.stop() == 0, again.log_tail()


def _users(doc):
    if isinstance(doc, dict):
        for k in ("users", "items"):
            if k in doc:
                return doc[k]
    return doc


def test_postgres_restarted_under_load_fails_cleanly_and_recovers(pg_cluster, idp, id_token,
                                                                  admin_token, tmp_path):
    url = pg_cluster.create_database("restart")
    env = {e2e.ADMIN_TOKEN_ENV: admin_token, DATABASE_URL_ENV: url}
    render = e2e.server_config(idp, tmp_path / "unused")
    srv = e2e.Rolegate(
        tmp_path / "run", env=env,
        config_for_port=lambda p: postgres_store(render(p), statement_timeout_ms=1000,
                                                 connect_timeout_ms=1000))
    cli_json(srv, "user", "create", "loader")
    key = cli_json(srv, "access-key", "create", "loader")
    token = id_token(e2e.DEPLOYER_SUB)
    pid = srv.proc.pid

    lock = threading.Lock()
    outcomes: list[tuple[float, str, float]] = []   # (when, outcome, seconds taken)
    answered: list[tuple[float, str]] = []          # (when, request id) of every answer
    bad: list[str] = []

    def list_users():
        # The admin API's user list reads the store on every call (at least the users' change
        # counter, before the index of the users answers), so it fails while the store is down.
        r = e2e.http("GET", f"{srv.url}/admin/users",
                     headers={"Authorization": f"Bearer {admin_token}"})
        rid = r.headers.get("x-request-id")
        if r.status == 200:
            return {"ResponseMetadata": {"RequestId": rid}}
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "ServiceUnavailable" if r.status == 503 else str(r.status)},
             "ResponseMetadata": {"RequestId": rid, "HTTPStatusCode": r.status}}, "ListUsers")

    def work(t, i):
        started = time.monotonic()
        rid = None
        try:
            if t % 3 == 0:
                resp = list_users()
            elif t % 3 == 1:
                # Signed with a long-term key: read through the directory cache (the store at most
                # once per refresh interval), so an outage shorter than it goes unnoticed.
                resp = key_client(srv.url, key).get_caller_identity()
            else:
                resp = e2e.sts_client(srv.url).assume_role_with_web_identity(
                    RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName=f"p{t}", WebIdentityToken=token)
            rid = resp["ResponseMetadata"].get("RequestId")
            outcome = "ok"
        except botocore.exceptions.ClientError as e:
            rid = e.response["ResponseMetadata"].get("RequestId")
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            code = e.response["Error"]["Code"]
            outcome = f"{status} {code}"
            if (status, code) != (503, "ServiceUnavailable"):
                with lock:
                    bad.append(outcome)
        took = time.monotonic() - started
        with lock:
            outcomes.append((started, outcome, took))
            if rid:
                answered.append((started, rid))
        time.sleep(0.02)

    load = Load(4, work)
    time.sleep(1.0)
    stopped_at = time.monotonic()
    pg_cluster.stop()
    time.sleep(3.0)
    pg_cluster.start()
    restarted_at = time.monotonic()

    def recovered():
        with lock:
            recent = [o for (w, o, _) in outcomes if w > restarted_at + 0.2]
        return len(recent) >= 20 and all(o == "ok" for o in recent[-10:])

    try:
        wait_until("rolegate serves again after PostgreSQL restarted", recovered, 30)
    finally:
        load.finish()
    assert not load.errors, f"requests that did not get an answer: {load.errors[:5]}"
    assert not bad, f"answers other than success or 503 ServiceUnavailable: {bad[:10]}"
    during = [o for (w, o, _) in outcomes if stopped_at + 0.5 < w < restarted_at]
    assert "503 ServiceUnavailable" in during, (
        f"no store-backed request failed during the outage: {sorted(set(during))}")
    slowest = max(t for (_, _, t) in outcomes)
    assert slowest < 6.0, f"a request took {slowest:.1f} s: bounded by the store timeouts"
    assert srv.proc.poll() is None and srv.proc.pid == pid, "rolegate was not restarted"
    # The audit events of requests answered while PostgreSQL was down were held and written once
    # it was back: none is missing from the store.
    in_outage = {rid for (w, rid) in answered if stopped_at + 0.2 < w < restarted_at - 0.2}
    assert len(in_outage) >= 20, f"only {len(in_outage)} requests answered during the outage"

    def audited():
        r = srv.cli("audit", "--json", "--limit", "100000", "--since", "10m")
        assert r.returncode == 0, r.stderr
        ids = {json.loads(line)["request_id"] for line in r.stdout.splitlines() if line.strip()}
        return in_outage <= ids

    wait_until("the audit events of the outage reach the store", audited, 15)
    counts = {o: sum(1 for (_, x, _) in outcomes if x == o) for o in {x for (_, x, _) in outcomes}}
    print(f"outcomes across the restart: {counts}; slowest {slowest:.2f} s")
    assert srv.stop() == 0, srv.log_tail()


def test_a_stopped_identity_provider_leaves_cached_keys_working(rolegate_binary, admin_token,
                                                                tmp_path):
    provider = e2e.Idp(tmp_path / "idp")
    stopped = False
    srv = None
    try:
        srv = e2e.Rolegate(tmp_path / "run", env={e2e.ADMIN_TOKEN_ENV: admin_token},
                           config_for_port=e2e.server_config(provider, tmp_path / "data"))
        fresh = provider.id_token(e2e.DEPLOYER_SUB)
        later = provider.id_token(e2e.DEPLOYER_SUB)
        now = int(time.time())
        unknown_kid = provider.sign(
            {"alg": "RS256", "kid": "rotated-in-later"},
            {"iss": provider.issuer, "aud": e2e.CLIENT_ID, "sub": e2e.DEPLOYER_SUB,
             "iat": now, "exp": now + 600})
        sts = e2e.sts_client(srv.url)
        sts.assume_role_with_web_identity(RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="up",
                                          WebIdentityToken=fresh)
        assert provider.stop() == 0
        stopped = True

        got = sts.assume_role_with_web_identity(RoleArn=e2e.ROLE_DEPLOYER,
                                                RoleSessionName="provider-down",
                                                WebIdentityToken=later)
        assert got["AssumedRoleUser"]["Arn"].endswith("/ci-deployer/provider-down")

        form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                "RoleArn": e2e.ROLE_DEPLOYER, "RoleSessionName": "unknown-kid",
                "WebIdentityToken": unknown_kid}
        # Within REFRESH_MIN_INTERVAL (10 s, src/idp/jwt.rs) of the last successful fetch an unknown
        # kid is judged against the cached key set (InvalidIdentityToken); after it rolegate tries
        # the provider, which is down.
        codes = []
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = e2e.http("POST", srv.url, urllib.parse.urlencode(form),
                         {"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
            took = time.monotonic() - started
            assert took < 15, f"the unreachable provider held the request for {took:.1f} s"
            code, _, _ = e2e.sts_error(r.body)
            assert r.status == 400, r.text
            codes.append(code)
            if code == "IDPCommunicationError":
                break
            assert code == "InvalidIdentityToken", r.text
            time.sleep(1)
        assert codes[-1] == "IDPCommunicationError", codes
        # Keys already cached keep working meanwhile.
        got = sts.assume_role_with_web_identity(RoleArn=e2e.ROLE_DEPLOYER,
                                                RoleSessionName="still-down",
                                                WebIdentityToken=later)
        assert got["AssumedRoleUser"]["Arn"].endswith("/ci-deployer/still-down")
    finally:
        if not stopped:
            provider.stop()
        if srv is not None:
            assert srv.stop() == 0, srv.log_tail()
