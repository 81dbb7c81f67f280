"""Console sign-in against a real rolegate: "Open console" refused without MFA and allowed with it
in Chromium (screenshots, axe-core), the console page and its policy simulator, and the federation
endpoint's getSigninToken + login with credentials rolegate issued (checked with boto3 first)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import e2e
from test_directory import cli_json, make_user, sts_with_key, totp
from test_portal import Browser, credentials_from

ACCOUNT = e2e.ACCOUNT
READ_DATA = ('{"Version":"2012-10-17","Statement":[{"Sid":"ReadData","Effect":"Allow",'
             '"Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}')
OPS = ('{"Version":"2012-10-17","Statement":[{"Sid":"OpsBuckets","Effect":"Allow","Action":"s3:*",'
       '"Resource":["arn:aws:s3:::ops-*","arn:aws:s3:::ops-*/*"]}]}')
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "portal"


def config(data_dir):
    return e2e.rolegate_config(
        data_dir,
        e2e.permission_set("Dev", policy=("read-data", READ_DATA), local_group="staff"),
        e2e.permission_set("Ops", 'mfa = "required"', policy=("ops-buckets", OPS), local_group="staff"),
        "[portal]",
        account_name="console",
    )


@pytest.fixture(scope="module")
def server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("console")
    srv = e2e.Rolegate(work, config_for_port=config(work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    srv.cli("group", "create", "staff")
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def browse(srv, *args):
    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    r = subprocess.run(
        ["node", str(node_dir / "console-browser.mjs"), "--url", srv.url, "--out", str(ARTIFACTS),
         *args],
        capture_output=True, text=True, timeout=180, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_open_console_in_chromium_is_refused_without_mfa_and_opens_the_console_with_it(server, tmp_path):
    # A user without an MFA device.
    password = "lea's long console password"
    cli_json(server, "user", "create", "lea")
    pw = tmp_path / "lea.pw"
    pw.write_text(password + "\n")
    cli_json(server, "user", "set-password", "lea", "--password-file", str(pw))
    cli_json(server, "group", "add-user", "staff", "lea")
    out = browse(server, "--user", "lea", "--password", password, "--permission-set", "Ops")
    assert out["status"] == 403, out
    assert out["heading"] == "MFA required"
    assert "Permission set Ops requires MFA" in out["message"]
    # The challenge comes back to opening the console of Ops.
    assert out["mfa_link"] == ("/portal/mfa?return_to=%2Fportal%2Fconsole%3Faccount%3D"
                               f"{ACCOUNT}%26permission_set%3DOps")
    assert out["violations"] == [], out["violations"]
    assert out["url"] == f"{server.url}/portal/console"  # the refusal, not the console

    # A user with TOTP signs in with a fresh code: the console opens.
    password = "max's long console password"
    _, device = make_user(server, tmp_path, "max", groups=["staff"], password=password)
    code = totp(device["secret_base32"], time.time() + 30)
    out2 = browse(server, "--user", "max", "--password", password, "--code", code,
                  "--permission-set", "Ops",
                  "--allow", "s3:GetObject=arn:aws:s3:::ops-logs/2026/01/app.log",
                  "--deny", "iam:CreateUser=arn:aws:iam::111122223333:user/mallory")
    assert out2["url"] == f"{server.url}/console", out2
    assert out2["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Ops/max"
    console_cookie = [c for c in out2["cookies"] if c["name"] == "__Host-rolegate-console"]
    assert console_cookie == [{"name": "__Host-rolegate-console", "secure": True, "httpOnly": True}]
    assert out2["allow"]["result"].startswith("Allowed (Allow)"), out2["allow"]
    assert out2["deny"]["result"].startswith("Denied (ImplicitDeny)"), out2["deny"]
    assert "OpsBuckets" in out2["deny"]["explanation"]
    assert out2["after_sign_out"] == "No console session"
    assert out2["violations"] == [], out2["violations"]
    for f in out["screenshots"] + out2["screenshots"]:
        assert Path(f).stat().st_size > 1000, f
    assert len(out2["screenshots"]) == 5


def federation(b: Browser, **params):
    return b.request("GET", "/federation?" + urllib.parse.urlencode(params))


def test_get_signin_token_with_issued_credentials_then_login_redirects_to_the_console(server, tmp_path):
    password = "noa's long console password"
    cli_json(server, "user", "create", "noa")
    pw = tmp_path / "noa.pw"
    pw.write_text(password + "\n")
    cli_json(server, "user", "set-password", "noa", "--password-file", str(pw))
    cli_json(server, "group", "add-user", "staff", "noa")
    b = Browser(server.url)
    status, _, _ = b.sign_in("noa", password)
    assert status == 303
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": b.csrf(), "account": ACCOUNT, "permission_set": "Dev"})
    assert status == 200, html
    key, secret, token = credentials_from(html)
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/noa"
    assert sts_with_key(server, key, secret, token).get_caller_identity()["Arn"] == arn

    client = Browser(server.url)  # a different client: no portal session
    session = json.dumps({"sessionId": key, "sessionKey": secret, "sessionToken": token})

    # Refusals first: nothing is issued.
    status, headers, body = federation(client, Action="getSigninToken", Session=json.dumps(
        {"sessionId": key, "sessionKey": secret[:-1] + ("A" if secret[-1] != "A" else "B"),
         "sessionToken": token}))
    assert status == 403 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"Error": {"Code": "InvalidClientTokenId",
                                          "Message": "The session credentials are not valid"}}
    status, _, body = federation(client, Action="getSigninToken", SessionDuration="600",
                                 Session=session)
    assert status == 400 and json.loads(body)["Error"]["Code"] == "InvalidParameterValue"

    status, _, body = federation(client, Action="getSigninToken", SessionDuration="900",
                                 Session=session)
    assert status == 200, body
    signin = json.loads(body)["SigninToken"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signin)

    # A foreign destination is refused and does not spend the token.
    status, headers, _ = federation(client, Action="login", Issuer="https://idp.example",
                                    Destination="https://evil.example/", SigninToken=signin)
    assert status == 403 and "location" not in headers
    assert "__Host-rolegate-console" not in client.cookies

    status, headers, _ = federation(client, Action="login", Issuer="https://idp.example",
                                    Destination="/console", SigninToken=signin)
    assert status == 303 and headers["location"] == "/console"
    assert "__Host-rolegate-console" in client.cookies
    status, _, html = client.request("GET", "/console")
    assert status == 200 and arn in html and "read-data" in html

    # Single use: the same token again is refused, even on another client.
    other = Browser(server.url)
    status, headers, html = federation(other, Action="login", Issuer="https://idp.example",
                                       Destination="/console", SigninToken=signin)
    assert status == 403 and "already used" in html
    assert "__Host-rolegate-console" not in other.cookies

    # The audit log has the precise reasons.
    logins = server.audit("--action", "console:Login")
    reasons = [e.get("reason") for e in logins if e["decision"] == "deny"]
    assert any(r and r.startswith('Destination "https://evil.example/" is neither') for r in reasons), reasons
    assert "sign-in token unknown or already used" in reasons, reasons
    tokens = server.audit("--action", "console:GetSigninToken")
    assert any(e["decision"] == "deny" and e.get("reason", "").startswith("sessionKey is not the secret")
               for e in tokens), tokens
