"""The local directory end to end: users, groups and access keys managed with the `rolegate` CLI
against a running server; boto3 signing with a user's long-term key; MFA with TOTP codes computed
here (RFC 6238); GetSessionToken, GetFederationToken, AssumeRole into a role whose trust policy
requires MFA; revocation of a user's sessions; password sign-in and assignment rules; the admin API
authorized by rolegate's own policies; the root bootstrap."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import time

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

import e2e

ACCOUNT = e2e.ACCOUNT
ROLE_MFA = f"arn:aws:iam::{ACCOUNT}:role/mfa-admin"
ROLE_OPS = f"arn:aws:iam::{ACCOUNT}:role/RolegateSSO_Ops"
EVERYTHING = e2e.EVERYTHING


def totp(secret_b32: str, at: float) -> str:
    """RFC 6238 with SHA-1, six digits, 30-second steps."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 15
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def steady_now() -> float:
    """The time, once at least ten seconds of the current TOTP step are left: codes of this step
    and the one before, taken now, are still the server's current and previous step when a slow
    command (on a loaded machine, against PostgreSQL) reaches it."""
    while time.time() % 30 > 20:
        time.sleep(0.5)
    return time.time()


def config(data_dir):
    mfa_trust = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        }],
    })
    return e2e.rolegate_config(
        data_dir,
        f"""\
[[roles]]
account = "{ACCOUNT}"
name = "mfa-admin"
max_session_duration = 7200
trust_policy = '''{mfa_trust}'''
[[roles.policies]]
name = "everything"
document = '''{EVERYTHING}'''""",
        e2e.permission_set("Ops", 'session_duration = "PT2H"\nmfa = "required"', local_group="ops"),
        account_name="directory",
    )


@pytest.fixture(scope="module")
def dir_server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("directory")
    srv = e2e.Rolegate(work, config_for_port=config(work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def cli_json(srv, *args, stdin_file=None):
    r = srv.cli(*args)
    assert r.returncode == 0, f"rolegate {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout)


def sts_with_key(srv, key_id, secret, token=None):
    return boto3.client(
        "sts", endpoint_url=srv.url, region_name="us-east-1",
        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def make_user(srv, tmp_path, name, groups=(), password="correct horse battery staple", mfa=True):
    """A user with a password, an enabled TOTP device (unless `mfa` is false) and an access key;
    returns (key, device)."""
    cli_json(srv, "user", "create", name)
    pw = tmp_path / f"{name}.pw"
    pw.write_text(password + "\n")
    cli_json(srv, "user", "set-password", name, "--password-file", str(pw))
    if not mfa:
        for g in groups:
            cli_json(srv, "group", "add-user", g, name)
        return cli_json(srv, "access-key", "create", name), None
    device = cli_json(srv, "mfa", "create-totp", name)
    assert device["serial"] == f"arn:aws:iam::{ACCOUNT}:mfa/{name}"
    assert device["uri"].startswith("otpauth://totp/")
    now = steady_now()
    cli_json(srv, "mfa", "enable", name, totp(device["secret_base32"], now - 30),
             totp(device["secret_base32"], now))
    for g in groups:
        cli_json(srv, "group", "add-user", g, name)
    key = cli_json(srv, "access-key", "create", name)
    assert key["access_key_id"].startswith("AKIA") and len(key["secret_access_key"]) == 40
    return key, device


@pytest.fixture(scope="module")
def ops_group(dir_server, tmp_path_factory):
    policy = tmp_path_factory.mktemp("policies") / "ops.json"
    policy.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:GetFederationToken"], "Resource": "*"},
        ],
    }))
    cli_json(dir_server, "group", "create", "ops")
    cli_json(dir_server, "group", "put-policy", "ops", "assume", "--file", str(policy))
    return "ops"


def test_long_term_key_mfa_session_and_a_role_that_requires_mfa(dir_server, ops_group, tmp_path):
    key, device = make_user(dir_server, tmp_path, "alice", groups=[ops_group])
    sts = sts_with_key(dir_server, key["access_key_id"], key["secret_access_key"])
    who = sts.get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert who["UserId"].startswith("AIDA")

    # Without MFA the role's trust policy refuses.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=ROLE_MFA, RoleSessionName="no-mfa")
    assert error_code(e) == "AccessDenied"

    # A wrong code is refused; the right one gives a session with MFA.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=device["serial"], TokenCode="000000"
                              if totp(device["secret_base32"], time.time() + 30) != "000000" else "111111")
    assert error_code(e) == "AccessDenied"
    code = totp(device["secret_base32"], time.time() + 30)
    session = sts.get_session_token(SerialNumber=device["serial"], TokenCode=code,
                                    DurationSeconds=900)["Credentials"]
    assert session["AccessKeyId"].startswith("ASIA")
    # The same code again is a replay.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=device["serial"], TokenCode=code)
    assert error_code(e) == "AccessDenied"

    mfa_sts = sts_with_key(dir_server, session["AccessKeyId"], session["SecretAccessKey"],
                           session["SessionToken"])
    assert mfa_sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        mfa_sts.get_session_token()
    assert error_code(e) == "AccessDenied", "session credentials cannot call GetSessionToken"
    assumed = mfa_sts.assume_role(RoleArn=ROLE_MFA, RoleSessionName="with-mfa",
                                  DurationSeconds=7200)
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-admin/with-mfa"
    role_sts = sts_with_key(dir_server, **{
        "key_id": assumed["Credentials"]["AccessKeyId"],
        "secret": assumed["Credentials"]["SecretAccessKey"],
        "token": assumed["Credentials"]["SessionToken"],
    })
    assert role_sts.get_caller_identity()["Arn"].endswith("/mfa-admin/with-mfa")

    # Revoking alice's sessions ends the MFA session and the role session chained from it, not the
    # long-term key.
    r = dir_server.cli("revoke", "--scope", "user", "--value", "alice", "--reason", "laptop lost")
    assert r.returncode == 0, r.stderr
    for client in (mfa_sts, role_sts):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.get_caller_identity()
        assert error_code(e) == "ExpiredToken"
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"

    denied = [ev for ev in dir_server.audit("--action", "GetCallerIdentity", "--decision", "deny")
              if "revocation" in ev.get("reason", "")]
    assert len(denied) >= 2, dir_server.audit("--action", "GetCallerIdentity")


def test_repeated_wrong_codes_lock_the_device(dir_server, tmp_path):
    key, device = make_user(dir_server, tmp_path, "bob")
    sts = sts_with_key(dir_server, key["access_key_id"], key["secret_access_key"])
    right = totp(device["secret_base32"], time.time() + 30)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(5):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.get_session_token(SerialNumber=device["serial"], TokenCode=wrong)
        assert error_code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_session_token(SerialNumber=device["serial"], TokenCode=right)
    assert error_code(e) == "AccessDenied"
    events = dir_server.audit("--action", "GetSessionToken", "--decision", "deny")
    assert any("locked" in ev.get("reason", "") for ev in events), events


def test_the_last_use_of_a_key_is_written_at_shutdown(rolegate_binary, admin_token, tmp_path):
    """Signed calls note the use in memory; the server writes it in batches, and at shutdown."""
    srv = e2e.Rolegate(tmp_path / "srv", config_for_port=config(tmp_path / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    try:
        cli_json(srv, "user", "create", "short-lived")
        key = cli_json(srv, "access-key", "create", "short-lived")
        sts = sts_with_key(srv, key["access_key_id"], key["secret_access_key"])
        assert sts.get_caller_identity()["Arn"].endswith(":user/short-lived")
        # Shown at once by the server that served the call.
        shown = cli_json(srv, "user", "show", "short-lived")
        assert shown["access_keys"][0]["last_used"]["service"] == "sts"
    finally:
        assert srv.stop() == 0, srv.log_tail()
    # The server is gone: the CLI opens the store itself and finds what the server wrote.
    shown = cli_json(srv, "user", "show", "short-lived")
    assert shown["access_keys"][0]["last_used"]["service"] == "sts", shown


def test_access_key_lifecycle(dir_server, tmp_path):
    cli_json(dir_server, "user", "create", "ci-bot")
    first = cli_json(dir_server, "access-key", "create", "ci-bot")
    old = sts_with_key(dir_server, first["access_key_id"], first["secret_access_key"])
    assert old.get_caller_identity()["Arn"].endswith(":user/ci-bot")

    rotated = cli_json(dir_server, "access-key", "rotate", "ci-bot")
    assert rotated["deactivated"] == first["access_key_id"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        old.get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"
    new = sts_with_key(dir_server, rotated["access_key_id"], rotated["secret_access_key"])
    assert new.get_caller_identity()["Arn"].endswith(":user/ci-bot")

    # A third key is refused; the user shows both keys with the last use of the one used.
    r = dir_server.cli("access-key", "create", "ci-bot")
    assert r.returncode != 0 and "already has 2 access keys" in r.stderr
    shown = cli_json(dir_server, "user", "show", "ci-bot")
    keys = {k["access_key_id"]: k for k in shown["access_keys"]}
    assert keys[first["access_key_id"]]["status"] == "Inactive"
    assert keys[rotated["access_key_id"]]["last_used"]["service"] == "sts"

    cli_json(dir_server, "access-key", "delete", "ci-bot", first["access_key_id"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        old.get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"
    # A wrong secret for an existing key is a signature mismatch, not a lookup hint.
    bad = sts_with_key(dir_server, rotated["access_key_id"], "x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_caller_identity()
    assert error_code(e) == "SignatureDoesNotMatch"


def test_get_federation_token(dir_server, ops_group, tmp_path):
    key, _ = make_user(dir_server, tmp_path, "carol", groups=[ops_group])
    sts = sts_with_key(dir_server, key["access_key_id"], key["secret_access_key"])
    out = sts.get_federation_token(
        Name="carol-app",
        Policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}',
        DurationSeconds=900,
    )
    assert out["FederatedUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/carol-app"
    assert out["FederatedUser"]["FederatedUserId"] == f"{ACCOUNT}:carol-app"
    c = out["Credentials"]
    fed = sts_with_key(dir_server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert fed.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/carol-app"
    # A user without sts:GetFederationToken in its policies is refused.
    cli_json(dir_server, "user", "create", "dave")
    k = cli_json(dir_server, "access-key", "create", "dave")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts_with_key(dir_server, k["access_key_id"], k["secret_access_key"]).get_federation_token(
            Name="dave-app")
    assert error_code(e) == "AccessDenied"


def test_password_sign_in_and_assignments_follow_local_groups(dir_server, ops_group, tmp_path):
    # erin has no MFA method: a password alone is her sign-in.
    make_user(dir_server, tmp_path, "erin", groups=[ops_group], password="erin's long password", mfa=False)
    url = f"{dir_server.url}/login/password"
    wrong = e2e.http("POST", url, body=json.dumps({"user": "erin", "password": "nope nope nope"}).encode(),
                     headers={"content-type": "application/json"})
    assert wrong.status == 401
    ok = e2e.http("POST", url, body=json.dumps({"user": "erin", "password": "erin's long password"}).encode(),
                  headers={"content-type": "application/json"})
    assert ok.status == 200, ok.text
    body = ok.json()
    assert [a["role_arn"] for a in body["assignments"]] == [ROLE_OPS]
    assert body["mfa"] is False
    # A permission set the rules do not give gets no credentials, and says so.
    r = e2e.http("POST", url, headers={"content-type": "application/json"}, body=json.dumps({
        "user": "erin", "password": "erin's long password", "account": ACCOUNT, "permission_set": "Nope"}).encode())
    assert r.status == 403 and "Not authorized to use permission set Nope" in r.text, r.text

    # Removed from the group: the next sign-in no longer has the assignment.
    cli_json(dir_server, "group", "remove-user", ops_group, "erin")
    again = e2e.http("POST", url, body=json.dumps({"user": "erin", "password": "erin's long password"}).encode(),
                     headers={"content-type": "application/json"}).json()
    assert again["assignments"] == []
    assert [a["permission_set"] for a in again["removed_since_last_login"]] == ["Ops"]

    # Disabled: the password no longer signs her in, and the refusal says why; enabled, it does.
    assert cli_json(dir_server, "user", "disable", "erin")["active"] is False
    r = e2e.http("POST", url, body=json.dumps({"user": "erin", "password": "erin's long password"}).encode(),
                 headers={"content-type": "application/json"})
    assert r.status == 401, r.text
    refused = dir_server.audit("--action", "rolegate:SignIn", "--decision", "deny")
    assert any(ev.get("reason") == "user erin is disabled" for ev in refused), refused
    assert cli_json(dir_server, "user", "enable", "erin")["active"] is True
    r = e2e.http("POST", url, body=json.dumps({"user": "erin", "password": "erin's long password"}).encode(),
                 headers={"content-type": "application/json"})
    assert r.status == 200, r.text

    # `assignments explain` tells the same story without signing in.
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"sub": "erin"}))
    r = dir_server.cli("assignments", "explain", "--provider", "local", "--claims", str(claims),
                       "--local-group", "ops")
    assert r.returncode == 0, r.stderr
    assert "RolegateSSO_Ops" in r.stdout and "member of local group 'ops'" in r.stdout
    r = dir_server.cli("assignments", "explain", "--provider", "local", "--claims", str(claims))
    assert "no permission sets" in r.stdout and "not in local group 'ops'" in r.stdout


def signed(srv, method, path, creds, body=None):
    """A request to the admin API signed with SigV4 for the service `rolegate`."""
    data = json.dumps(body).encode() if body is not None else b""
    req = botocore.awsrequest.AWSRequest(method=method, url=f"{srv.url}{path}", data=data,
                                         headers={"content-type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(*creds), "rolegate", "us-east-1").add_auth(req)
    return e2e.http(method, f"{srv.url}{path}", body=data or None, headers=dict(req.headers.items()))


def test_admin_api_is_authorized_by_rolegates_own_policies(dir_server, tmp_path):
    admin_policy = tmp_path / "admin.json"
    admin_policy.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "rolegate:*", "Resource": "*",
                       "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}],
    }))
    key, device = make_user(dir_server, tmp_path, "frank")
    cli_json(dir_server, "user", "put-policy", "frank", "admin", "--file", str(admin_policy))
    long_term = (key["access_key_id"], key["secret_access_key"])

    # The policy demands MFA: the long-term key alone is refused, with the reason in the audit log.
    r = signed(dir_server, "POST", "/admin/users", long_term, {"name": "grace"})
    assert r.status == 403, r.text
    denied = dir_server.audit("--action", "rolegate:CreateUser", "--decision", "deny")
    assert any("MultiFactorAuthPresent" in json.dumps(ev.get("explanation")) for ev in denied), denied

    sts = sts_with_key(dir_server, *long_term)
    s = sts.get_session_token(SerialNumber=device["serial"],
                              TokenCode=totp(device["secret_base32"], time.time() + 30))["Credentials"]
    with_mfa = (s["AccessKeyId"], s["SecretAccessKey"], s["SessionToken"])
    r = signed(dir_server, "POST", "/admin/users", with_mfa, {"name": "grace"})
    assert r.status == 200, r.text
    assert r.json()["arn"] == f"arn:aws:iam::{ACCOUNT}:user/grace"

    # A user without rolegate:* is refused; a tampered signature is refused.
    k = cli_json(dir_server, "access-key", "create", "grace")
    r = signed(dir_server, "GET", "/admin/users", (k["access_key_id"], k["secret_access_key"]))
    assert r.status == 403
    r = signed(dir_server, "GET", "/admin/users", (k["access_key_id"], "y" * 40))
    assert r.status == 403 and "SignatureDoesNotMatch" in r.text
    r = e2e.http("GET", f"{dir_server.url}/admin/users")
    assert r.status in (400, 403), r.text


def root_bootstrap(srv, token, password_file) -> dict:
    """`rolegate root bootstrap`: checks that it prints the next step and returns the device it
    names (serial, base32 secret)."""
    r = srv.cli("root", "bootstrap", "--token", token, "--password-file", str(password_file))
    assert r.returncode == 0, r.stderr
    assert "Root's password is set." in r.stdout, r.stdout
    assert f"rolegate root bootstrap-finish --token {token} CODE NEXT_CODE" in r.stdout, r.stdout
    assert re.search(r"uri:\s+otpauth://\S+", r.stdout), r.stdout
    return {"secret_base32": re.search(r"secret: ([A-Z2-7]+)", r.stdout).group(1),
            "serial": re.search(r"serial: (arn:aws:iam::\d{12}:mfa/\S+)", r.stdout).group(1)}


def test_root_is_bootstrapped_with_the_one_time_token(dir_server, tmp_path):
    log = dir_server.log.read_text()
    m = re.search(r"rolegate root bootstrap --token ([0-9a-f]{64})", log)
    assert m, "the bootstrap token is logged at first start"
    token = m.group(1)
    pw = tmp_path / "root.pw"
    pw.write_text("a long root password\n")
    r = dir_server.cli("root", "bootstrap", "--token", "0" * 64, "--password-file", str(pw))
    assert r.returncode != 0
    device = root_bootstrap(dir_server, token, pw)
    now = steady_now()
    done = dir_server.cli("root", "bootstrap-finish", "--token", token,
                          totp(device["secret_base32"], now - 30), totp(device["secret_base32"], now))
    assert done.returncode == 0, done.stderr
    assert f"sign in at {dir_server.url}/login as root" in done.stdout, done.stdout
    r = dir_server.cli("root", "bootstrap", "--token", token, "--password-file", str(pw))
    assert r.returncode != 0, "the token is used up"

    url = f"{dir_server.url}/login/password"
    no_mfa = e2e.http("POST", url, body=json.dumps({"user": "root", "password": "a long root password"}).encode(),
                      headers={"content-type": "application/json"})
    assert no_mfa.status == 401
    ok = e2e.http("POST", url, headers={"content-type": "application/json"}, body=json.dumps({
        "user": "root", "password": "a long root password", "serial": device["serial"],
        "code": totp(device["secret_base32"], time.time() + 30)}).encode())
    assert ok.status == 200, ok.text
    assert ok.json()["arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    flagged = [ev for ev in dir_server.audit("--action", "rolegate:SignIn") if ev.get("root")]
    assert any(ev["decision"] == "allow" and ev.get("mfa") for ev in flagged), flagged
    # Root has no access keys.
    r = dir_server.cli("access-key", "create", "root")
    assert r.returncode != 0 and "root user has no access keys" in r.stderr


def test_permission_set_credentials_need_the_assignment_and_mfa(dir_server, ops_group, tmp_path):
    _, device = make_user(dir_server, tmp_path, "heidi", groups=[ops_group], password="heidi's long password")
    url = f"{dir_server.url}/login/password"

    def sign_in(**extra):
        body = {"user": "heidi", "password": "heidi's long password", **extra}
        return e2e.http("POST", url, body=json.dumps(body).encode(),
                        headers={"content-type": "application/json"})

    # heidi has an MFA device: a password alone is no sign-in at all, with or without a permission
    # set asked for, and the audit log says why.
    for extra in ({"account": ACCOUNT, "permission_set": "Ops"}, {"account": ACCOUNT, "permission_set": "Dev"}, {}):
        r = sign_in(**extra)
        assert r.status == 401 and "only with MFA" in r.text, (extra, r.text)
        assert "credentials" not in r.json(), r.text
    refused = dir_server.audit("--action", "rolegate:SignIn", "--decision", "deny")
    assert any("heidi has an MFA method and did not pass MFA" in (ev.get("reason") or "") for ev in refused), refused

    # With MFA: credentials for the provisioned role, visible through GetCallerIdentity like any role.
    r = sign_in(account=ACCOUNT, permission_set="Ops", serial=device["serial"],
                code=totp(device["secret_base32"], time.time() + 30))
    assert r.status == 200, r.text
    c = r.json()["credentials"]
    who = sts_with_key(dir_server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Ops/heidi"
    assert who["UserId"].startswith("AROA") and who["UserId"].endswith(":heidi")


def test_root_bootstrap_works_against_the_running_server_without_an_admin_token(rolegate_binary, tmp_path):
    """The bootstrap token is the credential: with rolegate running and no admin API token
    configured, `rolegate root bootstrap` reaches the running server; every start says the
    bootstrap is pending until it is done."""
    head = e2e.rolegate_config(tmp_path / "data", account_name="bootstrap")

    def without_admin(port: int) -> str:
        text = head(port)
        admin = f'[admin]\ntoken_env = "{e2e.ADMIN_TOKEN_ENV}"\n\n'
        assert admin in text
        return text.replace(admin, "")

    srv = e2e.Rolegate(tmp_path / "first", config_for_port=without_admin)
    try:
        m = re.search(r"rolegate root bootstrap --token ([0-9a-f]{64})", srv.log.read_text())
        assert m, srv.log_tail()
        token = m.group(1)
    finally:
        assert srv.stop() == 0, srv.log_tail()
    assert "\x1b[" not in srv.log.read_text(), "no colour codes in a log that is not a terminal"

    srv = e2e.Rolegate(tmp_path / "second", config_for_port=without_admin)
    try:
        log = srv.log.read_text()
        assert "root user has no password and MFA yet" in log, log
        assert token not in log, "the token is shown only when it is issued"
        pw = tmp_path / "root.pw"
        pw.write_text("a long root password\n")
        wrong = srv.cli("root", "bootstrap", "--token", "0" * 64, "--password-file", str(pw))
        assert wrong.returncode != 0 and "bootstrap token is not valid" in wrong.stderr, wrong.stderr
        assert "admin" not in wrong.stderr.lower() or "token_file" not in wrong.stderr, wrong.stderr
        device = root_bootstrap(srv, token, pw)
        now = steady_now()
        done = srv.cli("root", "bootstrap-finish", "--token", token,
                       totp(device["secret_base32"], now - 30), totp(device["secret_base32"], now))
        assert done.returncode == 0, done.stderr
    finally:
        assert srv.stop() == 0, srv.log_tail()

    srv = e2e.Rolegate(tmp_path / "third", config_for_port=without_admin)
    try:
        assert "root user has no password and MFA yet" not in srv.log.read_text()
    finally:
        assert srv.stop() == 0, srv.log_tail()
