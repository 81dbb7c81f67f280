"""rolegate with Glewlwyd (Debian's glewlwyd 2.7) as its OpenID Connect provider, both on 127.0.0.1:
Glewlwyd's own ID tokens (resource-owner password grant) exchanged with boto3 through
AssumeRoleWithWebIdentity, its refusals (another client's audience, a payload changed after signing,
a subject the trust policy does not name) with their reasons in the audit log; portal sign-in by
authorization code with PKCE through Glewlwyd's discovery document, its login and consent API driven
by a cookie-keeping client, ending on the portal with what the `groups` claim assigns; a claim
Glewlwyd releases only at its userinfo endpoint (not in the ID token) assigning a permission set when
rolegate reads userinfo (`userinfo = true`) and not otherwise; and a signing key rotated at
Glewlwyd, followed by rolegate."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

import e2e
import glewlwyd
from glewlwyd import Agent

pytestmark = pytest.mark.skipif(glewlwyd.available() is not None,
                                reason=glewlwyd.available() or "")

ACCOUNT = e2e.ACCOUNT
PROVIDER = "glewlwyd"
CALLBACK = f"/login/oidc/{PROVIDER}/callback"
CLIENT, CLIENT_SECRET = "rolegate", "rolegate-glewlwyd-secret"
OTHER, OTHER_SECRET = "other-app", "other-app-secret"
SECRET_ENV = "ROLEGATE_TEST_GLEWLWYD_SECRET"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/glewlwyd-deployer"
BINDING = "__Host-rolegate-oidc"
SESSION = "__Host-rolegate-session"
USERS = {"alice": ("alice-password", ["engineers"]), "bob": ("bob-password", ["sales"])}
DEPARTMENTS = {"alice": "platform"}
# What the browser's authorization request asks Glewlwyd for besides rolegate's own parameters: the
# `department` claim at userinfo (the claims request parameter; see glewlwyd.py).
USERINFO_DEPARTMENT = json.dumps({"userinfo": {"department": None}})


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    """Glewlwyd with the rolegate client, another client, alice (engineers, department platform)
    and bob (sales)."""
    provider = glewlwyd.Glewlwyd(tmp_path_factory.mktemp("glewlwyd"))
    provider.rolegate_callbacks = []  # one per rolegate of this module
    try:
        provider.add_client(OTHER, OTHER_SECRET, ["http://127.0.0.1/other"])
        for user, (password, groups) in USERS.items():
            provider.add_user(user, password, f"{user}@example.com", groups, DEPARTMENTS.get(user))
    except BaseException:
        provider.stop()
        raise
    yield provider
    assert provider.stop() == 0, e2e._tail(provider.log)


def sub_of(gw, user: str) -> str:
    token = gw.id_token(CLIENT, CLIENT_SECRET, user, USERS[user][0])
    return e2e.jwt_parts(token)[1]["sub"]


# Assigned by the `department` claim, which Glewlwyd releases at userinfo only.
PLATFORM = f"""\
[[permission_sets]]
name = "Platform"
[[permission_sets.policies]]
name = "everything"
document = '''{e2e.EVERYTHING}'''

[[assignment_rules]]
provider = "{PROVIDER}"
permission_set = "Platform"
accounts = ["{ACCOUNT}"]
condition = '{{"StringEquals": {{"claim:department": "platform"}}}}'
"""


def config(gw, data_dir, userinfo: bool = True):
    def render(port: int) -> str:
        # The client's redirect URIs: each rolegate's callback at the port it is about to listen on.
        gw.rolegate_callbacks.append(f"http://127.0.0.1:{port}{CALLBACK}")
        gw.put_client(CLIENT, CLIENT_SECRET, gw.rolegate_callbacks)
        trust = json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{gw.key_prefix}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{gw.key_prefix}:aud": CLIENT,
                                               f"{gw.key_prefix}:sub": sub_of(gw, "alice")}},
            }],
        }, indent=2)
        return e2e.rolegate_config(
            data_dir,
            "[sts]\nregions = [\"us-east-1\"]",
            f"""\
[[oidc_providers]]
issuer = "{gw.issuer}"
audiences = ["{CLIENT}"]
algorithms = ["RS256"]
allow_http = true
name = "{PROVIDER}"
[oidc_providers.login]
client_id = "{CLIENT}"
client_secret_env = "{SECRET_ENV}"
scopes = ["openid"]
userinfo = {"true" if userinfo else "false"}
display_name = "Glewlwyd"

[[roles]]
account = "{ACCOUNT}"
name = "glewlwyd-deployer"
trust_policy = '''
{trust}
'''
""",
            e2e.permission_set("Dev", provider=PROVIDER, group="engineers"),
            e2e.permission_set("Admin", provider=PROVIDER, group="admins"),
            PLATFORM,
            "[portal]",
            account_name="glewlwyd",
        )(port)

    return render


@pytest.fixture(scope="module")
def rg(gw, rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("rolegate-glewlwyd")
    srv = e2e.Rolegate(work, config_for_port=config(gw, work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token, SECRET_ENV: CLIENT_SECRET})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def rg_without_userinfo(gw, rolegate_binary, admin_token, tmp_path_factory):
    """A second rolegate with the same settings except `userinfo = false`."""
    work = tmp_path_factory.mktemp("rolegate-glewlwyd-no-userinfo")
    srv = e2e.Rolegate(work, config_for_port=config(gw, work / "data", userinfo=False),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token, SECRET_ENV: CLIENT_SECRET})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def web_identity_error(rg, token: str, session: str = "refused") -> tuple[ClientError, dict]:
    with pytest.raises(ClientError) as err:
        e2e.sts_client(rg.url).assume_role_with_web_identity(
            RoleArn=ROLE, RoleSessionName=session, WebIdentityToken=token)
    event = rg.audit_event(err.value.response["ResponseMetadata"]["RequestId"])
    return err.value, event


# ---------------------------------------------------------------------------------------------------
# AssumeRoleWithWebIdentity


def test_glewlwyd_id_token_is_exchanged_for_credentials(gw, rg):
    token = gw.id_token(CLIENT, CLIENT_SECRET, "alice", "alice-password")
    header, claims, _ = e2e.jwt_parts(token)
    assert header["alg"] == "RS256" and header["kid"] == gw.default_kid
    assert claims["iss"] == gw.issuer and claims["aud"] == CLIENT
    assert claims["groups"] == ["engineers"] and claims["amr"] == ["password"]

    sts = e2e.sts_client(rg.url)
    resp = sts.assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="alice-at-glewlwyd", WebIdentityToken=token)
    assert resp["SubjectFromWebIdentityToken"] == claims["sub"]
    assert resp["Provider"] == gw.issuer and resp["Audience"] == CLIENT
    assert resp["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/glewlwyd-deployer/alice-at-glewlwyd")
    who = e2e.sts_client(rg.url, resp["Credentials"]).get_caller_identity()
    assert who["Arn"] == resp["AssumedRoleUser"]["Arn"]

    events = [e for e in rg.audit("--action", "AssumeRoleWithWebIdentity")
              if e.get("access_key_id") == resp["Credentials"]["AccessKeyId"]]
    assert len(events) == 1 and events[0]["decision"] == "allow", events
    assert events[0]["subject"] == claims["sub"] and events[0]["provider"] == gw.issuer


def test_token_of_another_glewlwyd_client_is_refused_for_its_audience(gw, rg):
    token = gw.id_token(OTHER, OTHER_SECRET, "alice", "alice-password")
    assert e2e.jwt_parts(token)[1]["aud"] == OTHER
    err, event = web_identity_error(rg, token)
    assert err.response["Error"]["Code"] == "InvalidIdentityToken"
    assert event["decision"] == "deny" and event["error_code"] == "InvalidIdentityToken"
    assert event["reason"] == f'aud is not one of the accepted audiences ["{CLIENT}"]'


def test_glewlwyd_token_changed_after_signing_is_refused(gw, rg):
    """bob's real token with alice's subject (and more groups) put in after Glewlwyd signed it."""
    header, claims, signature = e2e.jwt_parts(gw.id_token(CLIENT, CLIENT_SECRET, "bob", "bob-password"))
    claims["sub"] = sub_of(gw, "alice")
    claims["groups"] = ["engineers", "admins"]
    forged = f"{e2e.b64url_json(header)}.{e2e.b64url_json(claims)}.{signature}"
    err, event = web_identity_error(rg, forged)
    assert err.response["Error"]["Code"] == "InvalidIdentityToken"
    assert "signature" not in err.response["Error"]["Message"]
    assert event["error_code"] == "InvalidIdentityToken"
    assert event["reason"] == "signature does not verify with the provider's key"
    assert "access_key_id" not in event


def test_glewlwyd_subject_the_trust_policy_does_not_name_is_access_denied(gw, rg):
    token = gw.id_token(CLIENT, CLIENT_SECRET, "bob", "bob-password")
    err, event = web_identity_error(rg, token)
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert event["subject"] == e2e.jwt_parts(token)[1]["sub"]
    assert event["reason"].startswith(
        f"trust policy of {ROLE} does not allow sts:AssumeRoleWithWebIdentity"), event["reason"]


# ---------------------------------------------------------------------------------------------------
# Portal sign-in


def params(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def test_portal_sign_in_by_code_with_pkce_through_glewlwyd(gw, rg):
    agent = Agent()
    status, authorize, text, _ = agent.request("GET", f"{rg.url}/login/oidc/{PROVIDER}?return_to=/portal")
    assert status == 303, text
    # The authorization endpoint of Glewlwyd's discovery document, with PKCE.
    assert authorize.startswith(f"{gw.issuer}/auth?"), authorize
    q = params(authorize)
    assert q["client_id"] == CLIENT and q["response_type"] == "code"
    assert q["redirect_uri"] == f"{rg.url}{CALLBACK}"
    assert q["code_challenge_method"] == "S256" and q["scope"] == "openid"

    # No Glewlwyd session yet: its login page.
    status, login_page, text, _ = agent.request("GET", authorize)
    assert status == 302 and login_page.startswith(f"{gw.url}/login.html?"), (status, login_page, text)

    login = params(login_page)
    assert login["client_id"] == CLIENT and login["scope"] == "openid"
    assert login["callback_url"].startswith(f"{gw.issuer}/auth?"), login

    # What the login page does: password, consent to the scope for rolegate, then "Continue" to its
    # callback_url with g_continue added.
    gw.sign_in(agent, "alice", "alice-password", CLIENT, "openid")
    status, callback, text, _ = agent.request("GET", login["callback_url"] + "&g_continue")
    assert status == 302 and callback.startswith(f"{rg.url}{CALLBACK}?"), (status, callback, text)
    assert params(callback)["state"] == q["state"] and "code" in params(callback)

    status, location, text, headers = agent.request("GET", callback)
    assert status == 303 and location == f"{rg.url}/portal", (status, text)
    assert SESSION in agent.cookies(rg.port) and BINDING not in agent.cookies(rg.port)
    rid = next(v for k, v in headers if k.lower() == "x-request-id")
    ev = rg.audit_event(rid)
    assert ev["action"] == "portal:SignIn" and ev["decision"] == "allow", ev
    assert ev["provider"] == PROVIDER and ev["subject"] == sub_of(gw, "alice")

    status, _, html, _ = agent.request("GET", f"{rg.url}/portal")
    assert status == 200
    assert "Dev" in html and "Admin" not in html, html

    # The same callback again: its pending login was used up, so rolegate refuses it without
    # sending the code to Glewlwyd a second time.
    status, _, text, headers = agent.request("GET", callback)
    ev = rg.audit_event(next(v for k, v in headers if k.lower() == "x-request-id"))
    assert status == 403 and ev["decision"] == "deny", (status, ev)
    assert ev["reason"] == "state is not bound to this browser (pending-login cookie missing or different)"
    assert SESSION in agent.cookies(rg.port)


def portal_sign_in(gw, rg, user: str, extra: dict[str, str]) -> tuple[str, dict]:
    """alice or bob signs in to rolegate's portal through Glewlwyd, the authorization request
    carrying `extra` parameters besides rolegate's. The portal page and the sign-in's audit event."""
    agent = Agent()
    status, authorize, text, _ = agent.request("GET", f"{rg.url}/login/oidc/{PROVIDER}?return_to=/portal")
    assert status == 303 and authorize.startswith(f"{gw.issuer}/auth?"), (status, authorize, text)
    authorize += "&" + urllib.parse.urlencode(extra)
    status, login_page, text, _ = agent.request("GET", authorize)
    assert status == 302 and login_page.startswith(f"{gw.url}/login.html?"), (status, login_page, text)
    gw.sign_in(agent, user, USERS[user][0], CLIENT, "openid")
    status, callback, text, _ = agent.request("GET", params(login_page)["callback_url"] + "&g_continue")
    assert status == 302 and callback.startswith(f"{rg.url}{CALLBACK}?"), (status, callback, text)
    status, location, text, headers = agent.request("GET", callback)
    assert status == 303 and location == f"{rg.url}/portal", (status, text)
    ev = rg.audit_event(next(v for k, v in headers if k.lower() == "x-request-id"))
    assert ev["action"] == "portal:SignIn" and ev["decision"] == "allow", ev
    status, _, html, _ = agent.request("GET", f"{rg.url}/portal")
    assert status == 200, html
    return html, ev


def test_a_claim_glewlwyd_releases_only_at_userinfo_assigns_a_permission_set(gw, rg, rg_without_userinfo):
    """Glewlwyd gives alice's `department` at userinfo only (asked for there by the request's claims
    parameter): with `userinfo = true` rolegate reads it and the rule on claim:department assigns
    Platform; the same sign-in to a rolegate that does not read userinfo assigns only Dev."""
    # Glewlwyd's side: the claim is released on demand only; a plain ID token and userinfo answer
    # for alice have her groups and no department.
    grant = gw.password_grant(CLIENT, CLIENT_SECRET, "alice", "alice-password")
    assert "department" not in e2e.jwt_parts(grant["id_token"])[1]
    info = e2e.http("GET", f"{gw.issuer}/userinfo",
                    headers={"Authorization": f"Bearer {grant['access_token']}"}).json()
    assert info["groups"] == ["engineers"] and "department" not in info, info

    asked = {"claims": USERINFO_DEPARTMENT}
    html, ev = portal_sign_in(gw, rg, "alice", asked)
    assert "Dev" in html and "Platform" in html and "Admin" not in html, html
    assert ev["subject"] == sub_of(gw, "alice")

    html, ev = portal_sign_in(gw, rg_without_userinfo, "alice", asked)
    assert "Dev" in html and "Platform" not in html, html
    assert ev["subject"] == sub_of(gw, "alice")

    # The claim is what assigns Platform: not asked for, userinfo has no department and rolegate
    # (reading userinfo) assigns only Dev; bob, without a department, gets neither.
    html, _ = portal_sign_in(gw, rg, "alice", {})
    assert "Dev" in html and "Platform" not in html, html
    html, _ = portal_sign_in(gw, rg, "bob", asked)
    assert "No permission set is assigned to you." in html and "Platform" not in html, html


# ---------------------------------------------------------------------------------------------------
# Key rotation


def test_key_rotated_at_glewlwyd_is_followed(gw, rg):
    before = gw.id_token(CLIENT, CLIENT_SECRET, "alice", "alice-password")
    old_kid = e2e.jwt_parts(before)[0]["kid"]
    new_key = gw.rotate_key()
    assert {k["kid"] for k in gw.jwks()["keys"]} == {old_kid, new_key["kid"]}
    token = gw.id_token(CLIENT, CLIENT_SECRET, "alice", "alice-password")
    assert e2e.jwt_parts(token)[0]["kid"] == new_key["kid"]
    # rolegate fetches keys for an unknown kid at most once per 10 s per issuer.
    time.sleep(11)
    sts = e2e.sts_client(rg.url)
    resp = sts.assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="after-rotation", WebIdentityToken=token)
    assert resp["SubjectFromWebIdentityToken"] == e2e.jwt_parts(token)[1]["sub"]
    # The old key is still published, so tokens signed before the rotation still verify.
    sts.assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="before-rotation", WebIdentityToken=before)
