"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-sts`, `@aws-sdk/credential-providers`, pinned in
tests/node/package.json) against rolegate's STS: `fromTokenFile` (the variables a workload identity
platform sets) and `fromWebToken` get credentials with AssumeRoleWithWebIdentity and a token from the
test OpenID provider, then GetCallerIdentity signed by the SDK with them is verified by rolegate. A
token for another audience is refused, and the SDK surfaces AWS's error. `fromSSO` reads the token
cache `rolegate login` wrote and the profile `rolegate configure` wrote (its services section the only
thing pointing the SDK at rolegate): GetRoleCredentials at the portal API, a token refresh at the
SSO-OIDC API, and after `rolegate logout` the SDK's refusals with no credentials issued.
tests/node/js-sdk-sts.mjs drives the SDK."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import e2e
from test_sso_cli import Login, audit_count, home, rolegate, token_file  # noqa: F401 (fixture)
from test_sso_oidc import ACCOUNT, USER, run_browser, sso_server  # noqa: F401 (fixture)

ACCESS_KEY = re.compile(r"^ASIA[A-Z2-7]{16}$")
SCRIPT = "js-sdk-sts.mjs"


def js_env(tmp_path: Path, endpoint: str, token: str, session: str) -> dict:
    """A process environment with nothing of the machine's AWS setup, for rolegate's STS at
    `endpoint` in us-east-1."""
    return e2e.web_identity_env(tmp_path, token, session, AWS_REGION="us-east-1",
                                AWS_ENDPOINT_URL_STS=endpoint)


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


def sso_env(env: dict, profile: str) -> dict:
    """The environment of the test's HOME, with nothing pointing the SDK at rolegate but the AWS
    config file `rolegate configure` wrote (its services section names the endpoints)."""
    return dict(env, AWS_PROFILE=profile, AWS_EC2_METADATA_DISABLED="true")


def test_from_sso_reads_what_rolegate_login_and_configure_wrote(sso_server, home, tmp_path):
    h, env = home
    url = sso_server.url
    login = Login(env, "--start-url", f"{url}/start", "--session-name", "js", "--no-browser")
    got = run_browser(url, [{"name": "js-pkce", "kind": "authorize", "url": login.wait_url(),
                             "decision": "approve", "callback": "http://127.0.0.1:"}],
                      tmp_path / "pkce")
    assert got["results"][0]["final_url"].startswith("http://127.0.0.1:"), got
    code, out = login.finish()
    assert code == 0, out
    r = rolegate(env, "configure", "--start-url", f"{url}/start", "--session-name", "js",
                 "--profile", f"{ACCOUNT}:Dev:dev")
    assert r.returncode == 0, r.stderr
    env = sso_env(env, "dev")

    issued = audit_count(sso_server, "sso:GetRoleCredentials")
    code, out = run_js("sso", env)
    assert code == 0, out
    assert out["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/{USER}", out
    assert out["account"] == ACCOUNT
    assert ACCESS_KEY.match(out["accessKeyId"]) and out["hasSessionToken"]
    expires = datetime.fromisoformat(out["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(timezone.utc)).total_seconds() <= 12 * 3600

    # The SDK's SSO client asked rolegate's portal API for the key, and its STS client signed
    # GetCallerIdentity with it.
    events = [e for e in sso_server.audit("--action", "sso:GetRoleCredentials")
              if e.get("access_key_id") == out["accessKeyId"]]
    assert len(events) == 1 and events[0]["decision"] == "allow", events
    assert events[0]["principal"].endswith(f"assumed-role/RolegateSSO_Dev/{USER}"), events[0]
    assert audit_count(sso_server, "sso:GetRoleCredentials") == issued + 1
    event = sso_server.audit_event(out["requestId"])
    assert event["action"] == "GetCallerIdentity" and event["decision"] == "allow", event
    assert event["access_key_id"] == out["accessKeyId"]
    assert "aws-sdk-js" in (event.get("user_agent") or ""), event

    # A token with less than five minutes left: the SDK refreshes it at rolegate's SSO-OIDC
    # endpoint (the services section's `sso_oidc`) and writes the rotated token back.
    cached = json.loads(token_file(h, "js").read_text())
    cached["expiresAt"] = (datetime.now(timezone.utc) + timedelta(seconds=90)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    token_file(h, "js").write_text(json.dumps(cached))
    refreshes = audit_count(sso_server, "sso:CreateToken")
    code, out = run_js("sso", env)
    assert code == 0, out
    assert out["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/{USER}", out
    assert audit_count(sso_server, "sso:CreateToken") == refreshes + 1
    refreshed = json.loads(token_file(h, "js").read_text())
    assert refreshed["accessToken"] != cached["accessToken"]
    assert refreshed["refreshToken"] != cached["refreshToken"]
    assert refreshed["expiresAt"] > cached["expiresAt"]

    # Signed out. The cache `rolegate logout` removed: the SDK finds no token.
    issued = audit_count(sso_server, "sso:GetRoleCredentials")
    r = rolegate(env, "logout", "--session-name", "js")
    assert r.returncode == 0, r.stderr
    assert not token_file(h, "js").exists()
    code, out = run_js("sso", env)
    assert code == 2, out
    assert out["error"]["name"] == "CredentialsProviderError", out
    assert out["error"]["message"].startswith(
        "The SSO session token associated with profile=dev was not found or is invalid."), out

    # The ended sign-in's token put back: rolegate's portal API refuses it, and the SDK says so.
    token_file(h, "js").write_text(json.dumps(refreshed))
    denied = audit_count(sso_server, "sso:GetRoleCredentials", "deny")
    code, out = run_js("sso", env)
    assert code == 2, out
    assert out["error"]["name"] == "CredentialsProviderError", out
    assert out["error"]["message"].startswith("UnauthorizedException: "), out
    assert audit_count(sso_server, "sso:GetRoleCredentials", "deny") == denied + 1
    event = max((e for e in sso_server.audit("--action", "sso:GetRoleCredentials") if e["decision"] == "deny"),
                key=lambda e: e["time"])
    assert event["error_code"] == "UnauthorizedException", event
    assert event["reason"] == "the token's sign-in was ended: Logout", event

    # Put back as expired: the SDK's refresh is refused at rolegate's SSO-OIDC endpoint, and the
    # SDK reports the token expired.
    token_file(h, "js").write_text(json.dumps(dict(refreshed, expiresAt="2020-01-01T00:00:00Z")))
    refusals = audit_count(sso_server, "sso:CreateToken", "deny")
    code, out = run_js("sso", env)
    assert code == 2, out
    assert out["error"]["name"] == "CredentialsProviderError", out
    assert out["error"]["message"].startswith("Token is expired."), out
    assert audit_count(sso_server, "sso:CreateToken", "deny") == refusals + 1
    event = max((e for e in sso_server.audit("--action", "sso:CreateToken") if e["decision"] == "deny"),
                key=lambda e: e["time"])
    assert event["error_code"] == "InvalidGrantException", event
    assert event["reason"] == "the sign-in was ended: Logout", event

    # No credentials were issued after the sign-out.
    assert audit_count(sso_server, "sso:GetRoleCredentials") == issued
