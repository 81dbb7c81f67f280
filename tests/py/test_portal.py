"""The browser portal against a real rolegate: password (+TOTP) sign-in, command line access whose
credentials work with boto3, a permission set that needs MFA refused without it, sign-out."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse

import botocore.exceptions
import pytest

import e2e
from test_directory import cli_json, make_user, sts_with_key, totp

ACCOUNT = e2e.ACCOUNT


def config(data_dir):
    return e2e.rolegate_config(
        data_dir,
        e2e.permission_set("Dev"),
        e2e.permission_set("Ops", 'mfa = "required"'),
        "[portal]",
        account_name="portal",
    )


@pytest.fixture(scope="module")
def portal_server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("portal")
    srv = e2e.Rolegate(work, config_for_port=config(work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


class Browser:
    """Just enough of a browser: a cookie jar, Origin on POSTs, no redirects followed."""

    def __init__(self, url: str):
        self.url = url
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.cookies: dict[str, str] = {}

    def request(self, method, path, form=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
            headers["origin"] = self.url
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";", 1)[0].split("=", 1)
                if v:
                    self.cookies[k] = v
                else:
                    self.cookies.pop(k, None)
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), text

    def sign_in(self, user, password, code=""):
        status, _, _ = self.request("GET", "/login")
        assert status == 200
        form = {"csrf": self.cookies["__Host-rolegate-csrf"], "user": user, "password": password,
                "code": code, "return_to": "/portal"}
        return self.request("POST", "/login/local", form)

    def csrf(self):
        status, _, html = self.request("GET", "/portal")
        assert status == 200, html
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def credentials_from(html):
    found = dict(re.findall(r'export (AWS_[A-Z_]+)="([^"]*)"', html))
    return found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"], found["AWS_SESSION_TOKEN"]


def dev_signed_in(srv, tmp_path, name) -> "Browser":
    """A new directory user `name` with a password and no MFA device, in group `dev`, signed in to
    the portal with that password."""
    password = f"{name}'s long portal password"
    cli_json(srv, "user", "create", name)
    pw = tmp_path / f"{name}.pw"
    pw.write_text(password + "\n")
    cli_json(srv, "user", "set-password", name, "--password-file", str(pw))
    cli_json(srv, "group", "add-user", "dev", name)
    b = Browser(srv.url)
    status, headers, _ = b.sign_in(name, password)
    assert status == 303 and headers["location"] == "/portal"
    return b


def test_portal_credentials_work_with_boto3_and_mfa_sets_need_mfa(portal_server, tmp_path):
    portal_server.cli("group", "create", "dev")  # may exist from another test
    # jon has no MFA device: a password sign-in reaches the portal, and MFA sets are refused.
    b = dev_signed_in(portal_server, tmp_path, "jon")
    csrf = b.csrf()
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": csrf, "account": ACCOUNT, "permission_set": "Dev"})
    assert status == 200, html
    key, secret, token = credentials_from(html)
    who = sts_with_key(portal_server, key, secret, token).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/jon"
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": csrf, "account": ACCOUNT, "permission_set": "Ops"})
    assert status == 403 and "requires MFA" in html and "AWS_ACCESS_KEY_ID" not in html
    # The challenge comes back to asking for command line access to Ops.
    assert ('href="/portal/mfa?return_to=%2Fportal%2Fcredentials%3Faccount%3D'
            f'{ACCOUNT}%26permission_set%3DOps"') in html

    # ivy has a TOTP device: a password-only sign-in waits for the MFA challenge, which comes
    # first; until then nothing is issued.
    password = "ivy's long portal password"
    _, device = make_user(portal_server, tmp_path, "ivy", groups=["dev"], password=password)
    b = Browser(portal_server.url)
    status, headers, _ = b.sign_in("ivy", password)
    assert status == 303 and headers["location"] == "/portal/mfa?return_to=%2Fportal"
    status, headers, _ = b.request("GET", "/portal")
    assert status == 303 and headers["location"] == "/portal/mfa"
    status, _, html = b.request("GET", "/portal/mfa")
    assert status == 200 and "Code from your authenticator app" in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": csrf, "account": ACCOUNT, "permission_set": "Dev"})
    assert status == 303 and "AWS_ACCESS_KEY_ID" not in html
    # The next step's code (the device was enabled with this step's): one step of drift.
    code = totp(device["secret_base32"], time.time() + 30)
    status, headers, _ = b.request("POST", "/portal/mfa", {"csrf": csrf, "method": "totp", "code": code,
                                                           "return_to": "/portal"})
    assert status == 303 and headers["location"] == "/portal"
    status, _, html = b.request("POST", "/portal/mfa", {"csrf": csrf, "method": "totp", "code": code,
                                                        "return_to": "/portal"})
    assert status == 401 and "wrong or has been used" in html
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": b.csrf(), "account": ACCOUNT, "permission_set": "Ops"})
    assert status == 200, html
    key, secret, token = credentials_from(html)
    who = sts_with_key(portal_server, key, secret, token).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Ops/ivy"

    # The sign-in form's MFA code field gives an MFA session at once.
    password = "lee's long portal password"
    _, device = make_user(portal_server, tmp_path, "lee", groups=["dev"], password=password)
    b = Browser(portal_server.url)
    status, headers, _ = b.sign_in("lee", password, totp(device["secret_base32"], time.time() + 30))
    assert status == 303 and headers["location"] == "/portal"
    status, _, html = b.request("POST", "/portal/credentials",
                                {"csrf": b.csrf(), "account": ACCOUNT, "permission_set": "Ops"})
    assert status == 200, html

    session = b.cookies["__Host-rolegate-session"]
    status, headers, _ = b.request("POST", "/logout", {"csrf": b.csrf()})
    assert status == 303 and "__Host-rolegate-session" not in b.cookies
    b.cookies["__Host-rolegate-session"] = session
    status, _, html = b.request("GET", "/portal")
    assert status == 401 and "Session expired" in html


def test_portal_in_chromium_signs_in_shows_credentials_that_work_and_signs_out(portal_server, tmp_path):
    import json
    import os
    import subprocess
    from pathlib import Path

    password = "kim's long portal password"
    cli_json(portal_server, "user", "create", "kim")
    pw = tmp_path / "kim.pw"
    pw.write_text(password + "\n")
    cli_json(portal_server, "user", "set-password", "kim", "--password-file", str(pw))
    portal_server.cli("group", "create", "dev")  # may exist from the test above
    cli_json(portal_server, "group", "add-user", "dev", "kim")
    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    artifacts = Path(__file__).parents[1] / "artifacts" / "portal"
    r = subprocess.run(
        ["node", str(node_dir / "portal-browser.mjs"), "--url", portal_server.url, "--user", "kim",
         "--password", password, "--account", ACCOUNT, "--permission-set", "Dev", "--out", str(artifacts)],
        capture_output=True, text=True, timeout=120, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["violations"] == [], out["violations"]
    assert out["copy_visible"] is True
    assert out["after_logout"].startswith(f"{portal_server.url}/login"), out
    c = out["credentials"]
    who = sts_with_key(portal_server, c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"],
                       c["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/kim"
    for name in ["1-sign-in", "2-portal-home", "3-command-line-access", "4-signed-out"]:
        assert (artifacts / f"{name}.png").stat().st_size > 1000


def admin_api(srv, token, method, path, body=None):
    r = e2e.http(method, f"{srv.url}{path}", json.dumps(body) if body is not None else None,
                 {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return r.status, r.json()


def test_portal_credentials_are_listed_and_one_ended_in_the_admin_api_is_refused_to_boto3(
        portal_server, admin_token, tmp_path):
    portal_server.cli("group", "create", "dev")  # may exist from another test
    b = dev_signed_in(portal_server, tmp_path, "max")
    issued = []
    for _ in range(2):
        status, _, html = b.request("POST", "/portal/credentials",
                                    {"csrf": b.csrf(), "account": ACCOUNT, "permission_set": "Dev"})
        assert status == 200, html
        issued.append(credentials_from(html))
    clients = [sts_with_key(portal_server, *c) for c in issued]
    for sts in clients:
        assert sts.get_caller_identity()["Arn"].endswith("assumed-role/RolegateSSO_Dev/max")

    status, sessions = admin_api(portal_server, admin_token, "GET", "/admin/users/max/sessions")
    assert status == 200, sessions
    listed = {c["access_key_id"]: c for p in sessions["portal"] for c in p["credentials"]}
    assert set(listed) == {issued[0][0], issued[1][0]}, sessions
    ended = listed[issued[0][0]]
    assert ended["how"] == "command_line" and ended["permission_set"] == "Dev"

    status, body = admin_api(portal_server, admin_token, "POST", "/admin/users/max/sessions/end",
                             {"kind": "credentials", "id": ended["id"], "reason": "key leaked"})
    assert status == 200, body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        clients[0].get_caller_identity()
    assert e.value.response["Error"]["Code"] == "ExpiredToken"
    assert clients[1].get_caller_identity()["Arn"].endswith("/max")
    events = portal_server.audit("--action", "rolegate:EndUserSession")
    assert any(issued[0][0] in (ev.get("reason") or "") and "key leaked" in ev["reason"]
               for ev in events), events
