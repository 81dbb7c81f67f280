"""The rolegate command line: `check-config` on the example and on broken configurations, the README
demo walked through with the AWS CLI, and `audit` / `revoke` through the admin API of a running
server."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import e2e

EXAMPLE_CONFIG = e2e.ROOT / "config" / "rolegate.toml"
DEMO_PORT = 8080
DEMO_URL = f"http://127.0.0.1:{DEMO_PORT}"
DEMO_READER = "arn:aws:iam::111122223333:role/demo-reader"
DEMO_ADMIN = "arn:aws:iam::111122223333:role/demo-admin"

# ---------------------------------------------------------------------------------------------------
# check-config


def test_check_config_accepts_the_example():
    r = e2e.run_rolegate(["--config", "config/rolegate.toml", "check-config"], cwd=e2e.ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "config/rolegate.toml: ok (1 accounts, 1 oidc providers, 3 roles, 1 permission sets, 2 assignment rules, 0 warnings)\n"
    assert "warning" not in r.stderr


BROKEN_BASE = """\
[server]
listen = "127.0.0.1:18080"
public_url = "http://127.0.0.1:18080"

[[accounts]]
id = "111122223333"
name = "main"

[[oidc_providers]]
issuer = "http://127.0.0.1:18081"
audiences = ["client"]
algorithms = [ALGORITHMS]
allow_http = true
EXTRA_PROVIDER_KEY

[[roles]]
account = "111122223333"
name = "reader"
trust_policy = '''
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/PROVIDER"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"PROVIDER:aud": "client"}}}]}
'''
"""


def broken(algorithms='"RS256"', extra="", provider="127.0.0.1:18081") -> str:
    return (BROKEN_BASE.replace("ALGORITHMS", algorithms)
            .replace("EXTRA_PROVIDER_KEY", extra)
            .replace("PROVIDER", provider))


def line_of(text: str, needle: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def test_check_config_control_case_is_valid(tmp_path):
    path = tmp_path / "valid.toml"
    path.write_text(broken())
    r = e2e.run_rolegate(["--config", str(path), "check-config"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{path}: ok (1 accounts, 1 oidc providers, 1 roles, 0 permission sets, 0 assignment rules, 0 warnings)\n"


def problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


def test_check_config_reports_an_unknown_key_with_its_line(tmp_path):
    text = broken(extra="jwks_uri = \"http://127.0.0.1:18081/jwks\"")
    path = tmp_path / "unknown-key.toml"
    path.write_text(text)
    r = e2e.run_rolegate(["--config", str(path), "check-config"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("1 configuration problem(s):\n"), r.stderr
    problems = problem_lines(r.stderr)
    assert len(problems) == 1, r.stderr
    assert problems[0].startswith(f"{path}:{line_of(text, 'jwks_uri =')}: unknown field `jwks_uri`"), \
        problems[0]


def test_check_config_reports_every_problem_with_its_line(tmp_path):
    text = broken(algorithms='"RS256", "HS256"', provider="nowhere.example.com")
    path = tmp_path / "broken.toml"
    path.write_text(text)
    r = e2e.run_rolegate(["--config", str(path), "check-config"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("2 configuration problem(s):\n"), r.stderr
    problems = problem_lines(r.stderr)
    assert len(problems) == 2, r.stderr

    hs256 = [p for p in problems if "HS256" in p]
    assert len(hs256) == 1, problems
    # The provider's table (its header) or the algorithms key itself.
    allowed_lines = {line_of(text, "[[oidc_providers]]"), line_of(text, "algorithms =")}
    m = re.match(rf"^{re.escape(str(path))}:(\d+): oidc provider 'http://127.0.0.1:18081': "
                 r"algorithm 'HS256' is not allowed", hs256[0])
    assert m and int(m.group(1)) in allowed_lines, hs256[0]

    dangling = [p for p in problems if "nowhere.example.com" in p]
    assert len(dangling) == 1, problems
    trust_line = line_of(text, '"Principal": {"Federated"') - 1  # the document's first line
    assert dangling[0] == (
        f"{path}:{trust_line}: role 'reader' trust policy: statement 0 trusts "
        "arn:aws:iam::111122223333:oidc-provider/nowhere.example.com, but no oidc provider with "
        "issuer 'nowhere.example.com' is configured"), dangling[0]


def test_serve_refuses_a_broken_configuration(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(broken(algorithms='"HS256"'))
    r = e2e.run_rolegate(["--config", str(path), "serve"], cwd=tmp_path, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "algorithm 'HS256' is not allowed" in r.stderr
    assert not (tmp_path / "data").exists()


def test_the_log_is_plain_text_when_standard_error_is_not_a_terminal(server):
    # The test server writes its log to a file: no colour codes, also around the bootstrap token.
    text = server.log.read_text()
    assert "\x1b[" not in text, text
    assert "rolegate listening" in text, text
    assert "bootstrap_token=" in text, text


# ---------------------------------------------------------------------------------------------------
# audit and revoke through the admin API of the running test server


def test_audit_and_revoke_through_the_admin_api(server, sts, idp, deployer_credentials):
    def session(name: str) -> dict:
        return sts.assume_role_with_web_identity(
            RoleArn=e2e.ROLE_REVOCABLE, RoleSessionName=name,
            WebIdentityToken=idp.id_token("svc-batch"))["Credentials"]

    before = e2e.sts_client(server.url, session("before-revocation"))
    arn = f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/revocable/before-revocation"
    assert before.get_caller_identity()["Arn"] == arn

    reason = "credentials leaked in a build log"
    r = server.cli("revoke", "--scope", "role", "--value", e2e.ROLE_REVOCABLE, "--reason", reason)
    assert r.returncode == 0, r.stderr
    # The exact wording of this line is checked in test_revoke_prints_the_scope_as_offline.
    m = re.fullmatch(r"revoked .*revocable.*: sessions issued before (\S+)\n", r.stdout)
    assert m, r.stdout
    issued_before = rfc3339_seconds(m.group(1))

    with pytest.raises(ClientError) as err:
        before.get_caller_identity()
    assert err.value.response["Error"]["Code"] == "ExpiredToken"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.value.response["Error"]["Message"] == (
        "The security token included in the request has been revoked")

    event = server.audit_event(err.value.response["ResponseMetadata"]["RequestId"])
    assert event["action"] == "GetCallerIdentity"
    assert event["decision"] == "deny"
    assert event["error_code"] == "ExpiredToken"
    assert re.fullmatch(
        rf"session [0-9a-f]{{32}} of {re.escape(arn)} was issued before the revocation of "
        rf'Role\("{re.escape(e2e.ROLE_REVOCABLE)}"\) at {issued_before}: {re.escape(reason)}',
        event["reason"]), event["reason"]

    revocations = [e for e in server.audit("--action", "admin:Revoke")]
    assert len(revocations) == 1, revocations
    assert revocations[0]["decision"] == "allow"
    assert revocations[0]["principal"] == "admin"
    assert revocations[0]["reason"] == f'Role("{e2e.ROLE_REVOCABLE}"): {reason}'

    # The table form, through the admin API as well.
    table = server.cli("audit", "--action", "GetCallerIdentity", "--decision", "deny", "--limit", "1")
    assert table.returncode == 0, table.stderr
    assert table.stderr.strip().splitlines()[-1] == "1 event(s)"
    assert len(table.stdout.splitlines()) == 1
    assert "deny  GetCallerIdentity" in table.stdout
    assert f"[ExpiredToken] session " in table.stdout, table.stdout
    assert f" of {arn} was issued before the revocation" in table.stdout, table.stdout

    # Sessions of other roles are untouched.
    other = e2e.sts_client(server.url, deployer_credentials)
    assert other.get_caller_identity()["Arn"].endswith("/ci-deployer/sigv4-session")

    # Sessions of the role issued after the revocation work.
    while time.time() < issued_before:
        time.sleep(0.1)
    after = e2e.sts_client(server.url, session("after-revocation"))
    assert after.get_caller_identity()["Arn"].endswith("/revocable/after-revocation")


def rfc3339_seconds(text: str) -> int:
    """Unix seconds of an RFC 3339 UTC time to the second, as the CLI prints times."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def test_revoke_prints_the_scope_as_offline(server):
    session_id = "0" * 32
    r = server.cli("revoke", "--scope", "session", "--value", session_id, "--reason", "format check")
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(rf'revoked Session\("{session_id}"\): sessions issued before (\S+)\n',
                     r.stdout)
    assert m, r.stdout
    assert abs(rfc3339_seconds(m.group(1)) - time.time()) < 60, r.stdout


def test_admin_api_refuses_a_wrong_token(server):
    r = server.cli("audit", "--limit", "1", env={e2e.ADMIN_TOKEN_ENV: "z" * 48})
    assert r.returncode == 1, (r.stdout, r.stderr)
    # A sentence, not the answer's JSON (after the configuration's warnings).
    assert r.stderr.splitlines()[-1] == (
        "rolegate: admin API: a valid admin bearer token is required (Unauthorized)"), r.stderr
    assert r.stdout == ""


# ---------------------------------------------------------------------------------------------------
# The README demo


def demo_token(sub: str) -> str:
    resp = e2e.http("POST", f"{DEMO_URL}/demo-idp/token", f"sub={sub}",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200, resp.text
    assert resp.headers["content-type"] == "application/jwt"
    assert resp.text.endswith("\n") and resp.text.count(".") == 2
    return resp.text


def demo_cli(args: list[str], token_file: Path, session: str, home: Path):
    return e2e.run_aws(
        ["sts", *args, "--output", "json"],
        env={
            "AWS_ENDPOINT_URL_STS": DEMO_URL,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": DEMO_READER,
            "AWS_ROLE_SESSION_NAME": session,
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        home=home,
    )


@pytest.fixture
def demo_server(tmp_path, rolegate_binary):
    if e2e.port_in_use(DEMO_PORT):
        pytest.skip(f"127.0.0.1:{DEMO_PORT} is in use; the README demo listens there")
    try:
        srv = e2e.Rolegate(tmp_path / "demo", config_path=EXAMPLE_CONFIG, port=DEMO_PORT,
                           env={"ROLEGATE_STORE_PATH": str(tmp_path / "demo-data")})
    except RuntimeError as e:
        if f"cannot listen on 127.0.0.1:{DEMO_PORT}" in str(e):
            pytest.skip(f"127.0.0.1:{DEMO_PORT} was taken while the demo started")
        raise
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def wait_for_demo_keys(token: str, timeout: float = 15.0) -> None:
    """Waits until rolegate has loaded the demo issuer's keys.

    rolegate fetches every provider's keys in the background at start-up, and after a failed
    attempt fetches none for 10 s. For the demo issuer, which rolegate serves itself, that start-up
    fetch can run before the listener is bound: then every demo token is refused with
    IDPCommunicationError for the first 10 s. That is reported as a warning here rather than failing
    the walk-through at random.
    """
    body = urllib.parse.urlencode({
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": DEMO_READER,
        "RoleSessionName": "key-check", "WebIdentityToken": token})
    deadline = time.monotonic() + timeout
    refusals = []
    while True:
        resp = e2e.http("POST", DEMO_URL + "/", body,
                        {"Content-Type": "application/x-www-form-urlencoded"})
        if resp.status == 200:
            break
        code, _, _ = e2e.sts_error(resp.body)
        assert code == "IDPCommunicationError", resp.text
        refusals.append(code)
        assert time.monotonic() < deadline, f"demo tokens still refused after {timeout}s"
        time.sleep(0.5)
    if refusals:
        warnings.warn(
            f"the demo issuer's keys were not loaded at start-up: demo tokens were refused "
            f"{len(refusals)} time(s) with IDPCommunicationError before they were accepted")


def test_readme_demo(demo_server, tmp_path):
    srv = demo_server

    # 1-2. alice's token and the SDK's web identity chain, as in the README.
    alice = e2e.write_token_file(tmp_path / "alice-token", demo_token("alice"))
    wait_for_demo_keys(alice.read_text())
    r = demo_cli(["get-caller-identity"], alice, "alice-laptop", tmp_path / "home")
    assert r.returncode == 0, r.stderr
    who = json.loads(r.stdout)
    assert who["Arn"] == "arn:aws:sts::111122223333:assumed-role/demo-reader/alice-laptop"
    assert who["Account"] == "111122223333"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:alice-laptop", who["UserId"]), who["UserId"]

    # 3. Role chaining into demo-admin: alice may.
    r = demo_cli(["assume-role", "--role-arn", DEMO_ADMIN, "--role-session-name", "admin"],
                 alice, "alice-laptop", tmp_path / "home")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::111122223333:assumed-role/demo-admin/admin"
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert len(out["Credentials"]["SecretAccessKey"]) == 40

    # bob reaches demo-reader but not demo-admin.
    bob = e2e.write_token_file(tmp_path / "bob-token", demo_token("bob"))
    r = demo_cli(["assume-role", "--role-arn", DEMO_ADMIN, "--role-session-name", "admin"],
                 bob, "bob-laptop", tmp_path / "home")
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert ("An error occurred (AccessDenied) when calling the AssumeRole operation: User: "
            "arn:aws:sts::111122223333:assumed-role/demo-reader/bob-laptop is not authorized to "
            f"perform: sts:AssumeRole on resource: {DEMO_ADMIN}") in r.stderr, r.stderr
    m = re.search(r"Encoded authorization failure message: (\S+)", r.stderr)
    assert m, r.stderr

    # The encoded message explains the denial to a caller allowed to decode it.
    r = demo_cli(["decode-authorization-message", "--encoded-message", m.group(1)],
                 bob, "bob-laptop", tmp_path / "home")
    assert r.returncode == 0, r.stderr
    decoded = json.loads(json.loads(r.stdout)["DecodedMessage"])
    assert decoded["allowed"] is False
    assert decoded["context"]["action"] == "sts:AssumeRole"
    assert decoded["context"]["resource"] == DEMO_ADMIN
    assert decoded["context"]["principal"]["arn"] == (
        "arn:aws:sts::111122223333:assumed-role/demo-reader/bob-laptop")

    # 4. What happened, and why: read from the store after the server stopped.
    assert srv.stop() == 0, srv.log_tail()
    r = e2e.run_rolegate(["--config", str(EXAMPLE_CONFIG), "audit", "--json", "--action", "AssumeRole"],
                         env=e2e.base_env(ROLEGATE_STORE_PATH=str(tmp_path / "demo-data")),
                         cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    by_subject = {e["subject"]: e for e in events}
    assert sorted(by_subject) == ["alice", "bob"], events
    assert by_subject["alice"]["decision"] == "allow"
    assert by_subject["alice"]["principal"] == (
        "arn:aws:sts::111122223333:assumed-role/demo-reader/alice-laptop")
    assert by_subject["bob"]["decision"] == "deny"
    assert by_subject["bob"]["error_code"] == "AccessDenied"
    assert by_subject["bob"]["reason"].startswith(
        f"trust policy of {DEMO_ADMIN} does not allow sts:AssumeRole: "), by_subject["bob"]["reason"]
