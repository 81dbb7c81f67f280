"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-sts`, `@aws-sdk/credential-providers`, pinned in
tests/node/package.json) against rolegate's STS: `fromTokenFile` (the variables a workload identity
platform sets) and `fromWebToken` get credentials with AssumeRoleWithWebIdentity and a token from the
test OpenID provider, then GetCallerIdentity signed by the SDK with them is verified by rolegate. A
token for another audience is refused, and the SDK surfaces AWS's error. tests/node/js-sdk-sts.mjs
drives the SDK."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

import e2e

ACCESS_KEY = re.compile(r"^ASIA[A-Z2-7]{16}$")
SCRIPT = "js-sdk-sts.mjs"


def js_env(tmp_path: Path, endpoint: str, token: str, session: str) -> dict:
    """A process environment with nothing of the machine's AWS setup: its own empty home and files."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_STS": endpoint,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(e2e.write_token_file(tmp_path / "token", token)),
        "AWS_ROLE_ARN": e2e.ROLE_DEPLOYER,
        "AWS_ROLE_SESSION_NAME": session,
    })
    return env


def run_js(mode: str, env: dict) -> tuple[int, dict]:
    node_dir = e2e.node_dir()
    if not (node_dir / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        pytest.fail(f"{node_dir}: the AWS SDK for JavaScript is not installed (npm ci in tests/node)")
    proc = subprocess.run(["node", SCRIPT, mode], cwd=node_dir, env=env, capture_output=True,
                          text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{SCRIPT} {mode} printed no JSON (exit {proc.returncode}): {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("mode", ["token-file", "web-token"])
def test_web_identity_credentials_sign_get_caller_identity(server, idp, tmp_path, mode):
    session = f"js-{mode}-{secrets.token_hex(3)}"
    env = js_env(tmp_path, server.url, idp.id_token(e2e.DEPLOYER_SUB), session)
    code, out = run_js(mode, env)
    assert code == 0, out
    assert out["arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/{session}"
    assert out["account"] == e2e.ACCOUNT
    assert out["userId"].endswith(f":{session}")
    assert ACCESS_KEY.match(out["accessKeyId"]) and out["hasSessionToken"]
    expires = datetime.fromisoformat(out["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(timezone.utc)).total_seconds() <= 12 * 3600

    # rolegate verified the SDK's signature: GetCallerIdentity is audited as allowed for the key the
    # SDK got from AssumeRoleWithWebIdentity.
    event = server.audit_event(out["requestId"])
    assert event["action"] == "GetCallerIdentity" and event["decision"] == "allow", event
    assert event["access_key_id"] == out["accessKeyId"]
    assert "aws-sdk-js" in (event.get("user_agent") or ""), event


@pytest.mark.parametrize("mode", ["token-file", "web-token"])
def test_a_token_for_another_audience_is_refused_as_invalid_identity_token(server, idp, tmp_path, mode):
    session = f"js-aud-{secrets.token_hex(3)}"
    token = idp.id_token(e2e.DEPLOYER_SUB, client="rolegate-other")
    code, out = run_js(mode, js_env(tmp_path, server.url, token, session))
    assert code == 2, out
    err = out["error"]
    assert err["name"] == "InvalidIdentityTokenException", err
    assert err["status"] == 400, err
    event = server.audit_event(err["requestId"])
    assert event["action"] == "AssumeRoleWithWebIdentity" and event["decision"] == "deny"
    assert event["error_code"] == "InvalidIdentityToken"
    assert event["reason"] == "aud is not one of the accepted audiences [\"rolegate-test\"]"
