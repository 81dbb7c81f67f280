"""The AWS CLI (v1, from the test venv) against rolegate: the web identity credential chain from
environment variables, and assume-role-with-web-identity called directly."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import e2e


def test_get_caller_identity_through_web_identity_env(server, idp, tmp_path):
    token_file = e2e.write_token_file(tmp_path / "token", idp.id_token(e2e.DEPLOYER_SUB))
    r = e2e.run_aws(
        ["sts", "get-caller-identity", "--endpoint-url", server.url, "--output", "json"],
        env={
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": e2e.ROLE_DEPLOYER,
            "AWS_ROLE_SESSION_NAME": "aws-cli",
            "AWS_ENDPOINT_URL_STS": server.url,
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    who = json.loads(r.stdout)
    assert who["Arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/aws-cli"
    assert who["Account"] == e2e.ACCOUNT
    assert who["UserId"].startswith("AROA") and who["UserId"].endswith(":aws-cli")

    # The CLI's user agent is in the audit log of both calls it made.
    events = [e for e in server.audit() if e.get("session_name") == "aws-cli"
              or e.get("principal", "").endswith("/ci-deployer/aws-cli")]
    actions = sorted(e["action"] for e in events)
    assert actions == ["AssumeRoleWithWebIdentity", "GetCallerIdentity"], events
    assert all(e["decision"] == "allow" for e in events)
    assert all("aws-cli/" in e.get("user_agent", "") for e in events), events


def test_assume_role_with_web_identity_command(server, idp, tmp_path):
    token = idp.id_token(e2e.DEPLOYER_SUB)
    r = e2e.run_aws(
        ["sts", "assume-role-with-web-identity", "--endpoint-url", server.url, "--output", "json",
         "--role-arn", e2e.ROLE_DEPLOYER, "--role-session-name", "cli-direct",
         "--web-identity-token", token, "--duration-seconds", "900"],
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40
    assert creds["SessionToken"]
    expires = datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00"))
    left = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 840 <= left <= 930, creds["Expiration"]
    assert out["SubjectFromWebIdentityToken"] == e2e.DEPLOYER_SUB
    assert out["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/cli-direct")
    assert out["Provider"] == idp.issuer
    assert out["Audience"] == e2e.CLIENT_ID

    # The credentials work for a signed call.
    who = e2e.sts_client(server.url, creds).get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]


def test_assume_role_with_web_identity_command_refusal(server, idp, tmp_path):
    r = e2e.run_aws(
        ["sts", "assume-role-with-web-identity", "--endpoint-url", server.url, "--output", "json",
         "--role-arn", e2e.ROLE_DEPLOYER, "--role-session-name", "cli-denied",
         "--web-identity-token", idp.id_token("repo:someone-else/app")],
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
        home=tmp_path / "home",
    )
    # AWS CLI v1 exits with 255 on a service error.
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert "An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: " \
           "Not authorized to perform sts:AssumeRoleWithWebIdentity" in r.stderr, r.stderr
    assert r.stdout == ""
