"""Command line sign-in against a real rolegate: boto3's `sso-oidc` client registers, starts device
authorizations and polls while headless Chromium signs in to the portal as a local user and approves
or denies; the tokens then work with boto3's `sso` client, whose role credentials work with the STS.
The PKCE flow: Chromium approves at /authorize and lands on a loopback listener of this test, which
exchanges the code with its verifier."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import boto3
import botocore
import botocore.config
import pytest

import e2e
from test_directory import cli_json

ACCOUNT = e2e.ACCOUNT
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER = "sam"
PASSWORD = "sam's long portal password"


def config(data_dir, device_code_minutes: int):
    return e2e.rolegate_config(
        data_dir,
        e2e.permission_set("Dev"),
        "[portal]",
        f"[sso]\ndevice_code_minutes = {device_code_minutes}",
        account_name="cli",
    )


def start_server(tmp_path_factory, admin_token, name: str, minutes: int) -> e2e.Rolegate:
    work = tmp_path_factory.mktemp(name)
    return e2e.Rolegate(work, config_for_port=config(work / "data", minutes),
                        env={e2e.ADMIN_TOKEN_ENV: admin_token})


@pytest.fixture(scope="module")
def sso_server(rolegate_binary, admin_token, tmp_path_factory):
    srv = start_server(tmp_path_factory, admin_token, "sso", 10)
    srv.cli("group", "create", "dev")
    cli_json(srv, "user", "create", USER)
    pw = srv.workdir / "sam.pw"
    pw.write_text(PASSWORD + "\n")
    cli_json(srv, "user", "set-password", USER, "--password-file", str(pw))
    cli_json(srv, "group", "add-user", "dev", USER)
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def short_lived(rolegate_binary, admin_token, tmp_path_factory):
    """A rolegate whose device codes live one minute, and a device code started on it at once (the
    last test waits out the rest of its minute)."""
    srv = start_server(tmp_path_factory, admin_token, "sso-short", 1)
    oidc = oidc_client(srv.url)
    reg = oidc.register_client(clientName="expiring", clientType="public")
    d = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                        startUrl=f"{srv.url}/start")
    yield srv, oidc, reg, d, time.monotonic()
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


@pytest.fixture(scope="module", autouse=True)
def _start_the_expiring_code_first(short_lived):
    """Starts the short-lived server's device code before the other tests, so that its minute runs
    while they do."""


def oidc_client(url: str):
    return boto3.client("sso-oidc", endpoint_url=url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def sso_client(url: str):
    return boto3.client("sso", endpoint_url=url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Loopback:
    """The client's loopback redirect listener: records each callback's query."""

    def __init__(self):
        self.calls: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.urlparse(self.path)
                if q.path == "/oauth/callback":
                    outer.calls.append(dict(urllib.parse.parse_qsl(q.query)))
                body = b"<!doctype html><html lang=en><title>Signed in</title><main><h1>Signed in</h1></main></html>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/oauth/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_browser(url: str, steps: list[dict], out: Path) -> dict:
    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    r = subprocess.run(
        ["node", str(node_dir / "sso-approve-browser.mjs"), "--url", url, "--user", USER,
         "--password", PASSWORD, "--steps", json.dumps(steps), "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "state": state, "code_challenge_method": "S256", "scopes": "sso:account:access",
        "code_challenge": challenge,
    })
    return f"{base}/authorize?{q}"


def test_device_and_pkce_sign_in_approved_in_chromium_give_working_tokens(sso_server, tmp_path):
    url = sso_server.url
    oidc = oidc_client(url)
    start = f"{url}/start"
    a = oidc.register_client(clientName="sam's terminal", clientType="public")
    b = oidc.register_client(clientName="another tool", clientType="public")
    assert a["clientSecretExpiresAt"] - a["clientIdIssuedAt"] == 90 * 86400
    assert a["tokenEndpoint"] == f"{url}/token"

    approve = oidc.start_device_authorization(clientId=a["clientId"], clientSecret=a["clientSecret"],
                                              startUrl=start)
    deny = oidc.start_device_authorization(clientId=a["clientId"], clientSecret=a["clientSecret"],
                                           startUrl=start)
    assert approve["verificationUri"] == f"{url}/device"
    assert approve["verificationUriComplete"] == f"{url}/device?user_code={approve['userCode']}"
    assert approve["interval"] == 5 and approve["expiresIn"] == 600

    def poll(reg, d):
        return oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                 grantType=DEVICE_GRANT, deviceCode=d["deviceCode"])

    with pytest.raises(oidc.exceptions.AuthorizationPendingException):
        poll(a, approve)
    # Polling again at once, sooner than the interval.
    with pytest.raises(oidc.exceptions.SlowDownException):
        poll(a, approve)
    slowed_at = time.monotonic()
    # Another registered client cannot use this device code.
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        poll(b, approve)
    with pytest.raises(oidc.exceptions.InvalidClientException):
        oidc.create_token(clientId=a["clientId"], clientSecret="not-the-secret",
                          grantType=DEVICE_GRANT, deviceCode=approve["deviceCode"])

    p = oidc.register_client(clientName="aws-cli", clientType="public",
                             grantTypes=["authorization_code", "refresh_token"],
                             redirectUris=["http://127.0.0.1/oauth/callback"], issuerUrl=start,
                             scopes=["sso:account:access"])
    loopback = Loopback()
    flows = [(f"state-{i}",) + pkce_pair() for i in range(3)]
    try:
        steps = [
            {"name": "device-approve", "kind": "device", "url": approve["verificationUriComplete"],
             "decision": "approve"},
            {"name": "device-deny", "kind": "device", "url": deny["verificationUriComplete"],
             "decision": "deny"},
        ] + [
            {"name": f"pkce-{i}", "kind": "authorize", "callback": loopback.redirect_uri,
             "url": authorize_url(url, p["clientId"], loopback.redirect_uri, state, challenge),
             "decision": "deny" if i == 2 else "approve"}
            for i, (state, _, challenge) in enumerate(flows)
        ]
        artifacts = Path(__file__).parents[1] / "artifacts" / "sso"
        out = run_browser(url, steps, artifacts)
    finally:
        loopback.close()
    assert out["violations"] == [], out["violations"]
    results = {r["name"]: r for r in out["results"]}
    assert results["device-approve"]["prefilled"] == approve["userCode"]
    assert results["device-approve"]["client_name"] == "sam's terminal"
    assert results["device-approve"]["user_code"] == approve["userCode"]
    assert results["device-approve"]["heading"] == "Device approved"
    assert results["device-deny"]["heading"] == "Sign-in denied"
    assert results["pkce-0"]["client_name"] == "aws-cli"
    assert (artifacts / "device-approve-2-confirm.png").stat().st_size > 1000

    # The slowed-down code's interval is now 10 s.
    time.sleep(max(0.0, slowed_at + 10.5 - time.monotonic()))
    tokens = poll(a, approve)
    assert tokens["tokenType"] == "Bearer" and tokens["expiresIn"] == 3600
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        poll(a, approve)
    with pytest.raises(oidc.exceptions.AccessDeniedException):
        poll(a, deny)

    # The token reaches the portal API, and its role credentials reach the STS.
    sso = sso_client(url)
    accounts = sso.list_accounts(accessToken=tokens["accessToken"])["accountList"]
    assert accounts == [{"accountId": ACCOUNT, "accountName": "cli"}]
    roles = sso.list_account_roles(accessToken=tokens["accessToken"], accountId=ACCOUNT)["roleList"]
    assert roles == [{"roleName": "Dev", "accountId": ACCOUNT}]
    creds = sso.get_role_credentials(accessToken=tokens["accessToken"], accountId=ACCOUNT,
                                     roleName="Dev")["roleCredentials"]
    assert creds["expiration"] > time.time() * 1000
    who = e2e.sts_client(url, {"AccessKeyId": creds["accessKeyId"],
                               "SecretAccessKey": creds["secretAccessKey"],
                               "SessionToken": creds["sessionToken"]}).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/{USER}"

    # Refresh: another client's refresh is refused; the token rotates once; used twice, the sign-in
    # ends and its access tokens are refused by the portal API.
    def refresh(reg, rt):
        return oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                 grantType="refresh_token", refreshToken=rt)

    with pytest.raises(oidc.exceptions.InvalidGrantException):
        refresh(b, tokens["refreshToken"])
    rotated = refresh(a, tokens["refreshToken"])
    assert rotated["refreshToken"] != tokens["refreshToken"]
    assert sso.list_accounts(accessToken=rotated["accessToken"])["accountList"]
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        refresh(a, tokens["refreshToken"])
    for access in (tokens["accessToken"], rotated["accessToken"]):
        with pytest.raises(sso.exceptions.UnauthorizedException):
            sso.list_accounts(accessToken=access)

    # PKCE: the loopback listener got a code for each approval and access_denied for the denial,
    # each with its own state.
    calls = {c["state"]: c for c in loopback.calls}
    assert set(calls) == {"state-0", "state-1", "state-2"}, loopback.calls
    assert calls["state-2"] == {"error": "access_denied", "state": "state-2"}
    pkce = oidc.create_token(clientId=p["clientId"], clientSecret=p["clientSecret"],
                             grantType="authorization_code", code=calls["state-0"]["code"],
                             redirectUri=loopback.redirect_uri, codeVerifier=flows[0][1])
    assert sso.list_account_roles(accessToken=pkce["accessToken"], accountId=ACCOUNT)["roleList"]
    # The second code with the first flow's verifier: refused.
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(clientId=p["clientId"], clientSecret=p["clientSecret"],
                          grantType="authorization_code", code=calls["state-1"]["code"],
                          redirectUri=loopback.redirect_uri, codeVerifier=flows[0][1])
    # A used code: refused.
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(clientId=p["clientId"], clientSecret=p["clientSecret"],
                          grantType="authorization_code", code=calls["state-0"]["code"],
                          redirectUri=loopback.redirect_uri, codeVerifier=flows[0][1])

    events = sso_server.audit("--action", "sso:CreateToken")
    reasons = [e.get("reason") or "" for e in events if e["decision"] == "deny"]
    for needle in ["interval now 10 s", "was issued to client", "wrong client secret",
                   "denied the device code", "refresh token reused",
                   "codeVerifier does not match", "unknown or already used authorization code"]:
        assert any(needle in r for r in reasons), (needle, reasons)
    approvals = sso_server.audit("--action", "portal:ApproveDevice")
    assert sorted(e["decision"] for e in approvals if e.get("principal") == f"local/{USER}") == ["allow", "deny"]


def test_register_client_and_device_authorization_refuse_bad_requests(sso_server):
    oidc = oidc_client(sso_server.url)
    with pytest.raises(oidc.exceptions.InvalidClientMetadataException):
        oidc.register_client(clientName="x", clientType="confidential")
    with pytest.raises(oidc.exceptions.InvalidScopeException):
        oidc.register_client(clientName="x", clientType="public", scopes=["openid"])
    with pytest.raises(oidc.exceptions.UnsupportedGrantTypeException):
        oidc.register_client(clientName="x", clientType="public", grantTypes=["client_credentials"])
    with pytest.raises(oidc.exceptions.InvalidRedirectUriException):
        oidc.register_client(clientName="x", clientType="public", grantTypes=["authorization_code"],
                             redirectUris=["https://evil.example/cb"])
    reg = oidc.register_client(clientName="x", clientType="public")
    with pytest.raises(oidc.exceptions.InvalidRequestException):
        oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                        startUrl="https://d-1234567890.awsapps.com/start")
    with pytest.raises(oidc.exceptions.InvalidClientException) as e:
        oidc.start_device_authorization(clientId=reg["clientId"], clientSecret="wrong",
                                        startUrl=f"{sso_server.url}/start")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    with pytest.raises(oidc.exceptions.UnsupportedGrantTypeException):
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType="password")


def test_an_unused_device_code_expires(short_lived):
    srv, oidc, reg, d, started = short_lived
    assert d["expiresIn"] == 60
    time.sleep(max(0.0, started + 61 - time.monotonic()))
    with pytest.raises(oidc.exceptions.ExpiredTokenException):
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType=DEVICE_GRANT, deviceCode=d["deviceCode"])
    events = srv.audit("--action", "sso:CreateToken")
    assert any("device code expired" in (e.get("reason") or "") for e in events), events
