"""SCIM provisioning against a real rolegate and the real OpenID provider (oidc-provider): a
directory provisions people and groups with scim2-client (create, group membership, filter, patch,
delete); a provisioned person signs in to the portal through the provider, approves a device sign-in
and holds role credentials from it and from AssumeRoleWithWebIdentity; set `active: false` by a SCIM
PATCH, within a second their portal session, the device sign-in's credential request and refresh,
their signed calls and a fresh web identity token are all refused, and the audit log says why."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path

import boto3
import botocore.config
import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Group, GroupMember, PatchOp, PatchOperation, SearchRequest, User

import e2e
from test_portal_oidc import CALLBACK, PROVIDER, SECRET_ENV, Agent, idp_login, start

ACCOUNT = e2e.ACCOUNT
SCIM_TOKEN = "scim-token-of-the-test-directory-0000000000001"
SCIM_TOKEN_ENV = "ROLEGATE_TEST_SCIM_TOKEN"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scim-web"


def config(idp: e2e.Idp, data_dir: Path):
    trust = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": idp.provider_arn()},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{idp.key_prefix}:aud": e2e.CLIENT_ID}},
        }],
    })
    return e2e.rolegate_config(
        data_dir,
        f"""\
[[oidc_providers]]
issuer = "{idp.issuer}"
audiences = ["{e2e.CLIENT_ID}"]
allow_http = true
name = "{PROVIDER}"
[oidc_providers.login]
client_id = "rolegate-portal"
client_secret_env = "{SECRET_ENV}"
scopes = ["openid", "email", "profile", "groups"]
userinfo = true
display_name = "Test IdP"

[[roles]]
account = "{ACCOUNT}"
name = "scim-web"
trust_policy = '''{trust}'''

[[roles.policies]]
name = "everything"
document = '''{e2e.EVERYTHING}'''

[[scim_clients]]
name = "test-directory"
provider = "{PROVIDER}"
match = "userName"
token_env = "{SCIM_TOKEN_ENV}"
groups = "provisioned"
""",
        # Only the provisioned group "Platform" gives Dev: the provider's own groups claim does not
        # count with groups = "provisioned".
        e2e.permission_set("Dev", provider=PROVIDER, group="Platform"),
        "[portal]",
        "[sso]",
        account_name="scim",
    )


@pytest.fixture(scope="module")
def oidc_idp(tmp_path_factory):
    provider = e2e.Idp(tmp_path_factory.mktemp("scim-idp"),
                       redirect_uris=[f"http://127.0.0.1{CALLBACK}"])
    yield provider
    assert provider.stop() == 0


@pytest.fixture(scope="module")
def server(oidc_idp, rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("scim")
    srv = e2e.Rolegate(work, config_for_port=config(oidc_idp, work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token, SECRET_ENV: "rolegate-portal-secret",
                            SCIM_TOKEN_ENV: SCIM_TOKEN})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def scim_client(server) -> SyncSCIMClient:
    http = Client(base_url=f"{server.url}/scim/v2",
                  headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
    scim = SyncSCIMClient(http)
    scim.discover()
    return scim


def sso_clients(url: str):
    cfg = botocore.config.Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 0})
    oidc = boto3.client("sso-oidc", region_name="us-east-1", endpoint_url=url, config=cfg)
    sso = boto3.client("sso", region_name="us-east-1", endpoint_url=url, config=cfg)
    return oidc, sso


def approve_device(agent: Agent, server, user_code: str) -> None:
    """Approves a device sign-in on the portal pages with the agent's session."""
    status, _, html, _ = agent.request("GET", f"{server.url}/device?user_code={user_code}")
    assert status == 200, html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    status, _, html, _ = agent.request("POST", f"{server.url}/device",
                                       {"csrf": csrf, "user_code": user_code})
    assert status == 200, html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    status, _, html, _ = agent.request("POST", f"{server.url}/device/decide",
                                       {"csrf": csrf, "user_code": user_code, "decision": "approve"})
    assert status == 200 and "approved" in html.lower(), html


def caller(url: str, creds: dict) -> dict:
    return e2e.sts_client(url, creds).get_caller_identity()


def test_a_directory_provisions_people_and_groups_with_scim2_client(server):
    scim = scim_client(server)
    users = [scim.create(User(user_name=f"{n}@scim.example", display_name=n.title(), active=True))
             for n in ("ivy", "jon", "kim")]
    assert all(u.id and u.meta.version == 'W/"1"' for u in users)
    group = scim.create(Group(display_name="Readers",
                              members=[GroupMember(value=u.id) for u in users[:2]]))
    assert {m.value for m in group.members} == {users[0].id, users[1].id}
    found = scim.query(User, query_parameters=SearchRequest(filter='userName eq "JON@scim.example"'))
    assert found.total_results == 1 and found.resources[0].id == users[1].id
    jon = scim.query(User, users[1].id)
    assert [g.display for g in jon.groups] == ["Readers"]
    scim.modify(Group, group.id, PatchOp[Group](operations=[
        PatchOperation(op=PatchOperation.Op.add, path="members", value=[{"value": users[2].id}])]))
    scim.modify(User, users[0].id, PatchOp[User](operations=[
        PatchOperation(op=PatchOperation.Op.replace_, path="displayName", value="Ivy V.")]))
    assert scim.query(User, users[0].id).display_name == "Ivy V."
    scim.delete(User, users[1].id)
    members = {m.value for m in scim.query(Group, group.id).members}
    assert members == {users[0].id, users[2].id}
    listed = scim.query(User)
    assert {u.user_name for u in listed.resources} >= {"ivy@scim.example", "kim@scim.example"}
    assert "jon@scim.example" not in {u.user_name for u in listed.resources}
    actions = {e["action"] for e in server.audit("--principal", "test-directory")}
    assert {"scim:CreateUser", "scim:CreateGroup", "scim:PatchGroup", "scim:PatchUser",
            "scim:DeleteUser"} <= actions


def test_a_person_set_inactive_loses_portal_device_sign_in_and_credentials_within_a_second(server, oidc_idp):
    scim = scim_client(server)
    alice = scim.create(User(user_name="alice", active=True))
    scim.create(Group(display_name="Platform", members=[GroupMember(value=alice.id)]))

    # Signed in to the portal through the provider; the provisioned group gives Dev.
    agent = Agent()
    callback = idp_login(agent, server, start(agent, server, "?return_to=/portal"))
    status, location, text, _ = agent.request("GET", callback)
    assert status == 303 and location == f"{server.url}/portal", text
    status, _, html, _ = agent.request("GET", f"{server.url}/portal")
    assert status == 200 and "Dev" in html

    # A device sign-in approved in that session, and role credentials from it.
    oidc, sso = sso_clients(server.url)
    reg = oidc.register_client(clientName="alice's terminal", clientType="public")
    dev = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                          startUrl=f"{server.url}/start")
    approve_device(agent, server, dev["userCode"])
    tokens = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                               grantType=DEVICE_GRANT, deviceCode=dev["deviceCode"])
    rc = sso.get_role_credentials(accessToken=tokens["accessToken"], accountId=ACCOUNT,
                                  roleName="Dev")["roleCredentials"]
    sso_creds = {"AccessKeyId": rc["accessKeyId"], "SecretAccessKey": rc["secretAccessKey"],
                 "SessionToken": rc["sessionToken"]}
    assert caller(server.url, sso_creds)["Arn"].endswith("/alice")
    # And credentials of a web identity token for the same person.
    web = e2e.sts_client(server.url).assume_role_with_web_identity(
        RoleArn=ROLE, RoleSessionName="alice-web",
        WebIdentityToken=oidc_idp.id_token("alice"))["Credentials"]
    assert caller(server.url, web)["Arn"].endswith("/alice-web")

    # The directory deactivates alice.
    scim.modify(User, alice.id, PatchOp[User](operations=[
        PatchOperation(op=PatchOperation.Op.replace_, path="active", value=False)]))
    deactivated = time.monotonic()

    status, location, _, _ = agent.request("GET", f"{server.url}/portal")
    assert status in (302, 303, 401, 403), status
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.get_role_credentials(accessToken=tokens["accessToken"], accountId=ACCOUNT, roleName="Dev")
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType="refresh_token", refreshToken=tokens["refreshToken"])
    for creds in (sso_creds, web):
        with pytest.raises(Exception) as refused:
            caller(server.url, creds)
        assert "ExpiredToken" in str(refused.value) or "AccessDenied" in str(refused.value) \
            or "InvalidClientTokenId" in str(refused.value), refused.value
    with pytest.raises(Exception) as refused:
        e2e.sts_client(server.url).assume_role_with_web_identity(
            RoleArn=ROLE, RoleSessionName="alice-again",
            WebIdentityToken=oidc_idp.id_token("alice"))
    assert "AccessDenied" in str(refused.value), refused.value
    assert time.monotonic() - deactivated < 1.0

    # A new portal sign-in through the provider, which still vouches for alice: refused.
    agent2 = Agent()
    callback = idp_login(agent2, server, start(agent2, server, "?return_to=/portal"))
    status, _, text, headers = agent2.request("GET", callback)
    assert status == 403, text
    ev = server.audit_event(next(v for k, v in headers if k.lower() == "x-request-id"))
    # Within the second of the deactivation the revocation answers first; later the provisioned
    # state does ("deprovisioned (active is false)"): either way, deprovisioned.
    assert ev["decision"] == "deny" and "deprovisioned" in ev["reason"], ev

    patch = [e for e in server.audit("--action", "scim:PatchUser")
             if e.get("subject") == "alice" and e["decision"] == "allow"]
    assert patch and "deprovisioned by SCIM client test-directory" in patch[0]["reason"], patch
    # Every refusal says why: the deprovisioning, by which directory.
    # (A revocation's reason says "deprovisioned by SCIM client …", the gate's own check of the
    # provisioned state "deprovisioned (active is false) by SCIM client …".)
    denied = [e for e in server.audit() if e.get("decision") == "deny"
              and re.search(r"deprovisioned (\(active is false\) )?by SCIM client test-directory",
                            e.get("reason") or "")]
    actions = sorted(e["action"] for e in denied)
    assert {"AssumeRoleWithWebIdentity", "GetCallerIdentity", "portal:SignIn", "portal:EndSession",
            "sso:CreateToken", "sso:GetRoleCredentials"} <= set(actions), actions
    assert actions.count("GetCallerIdentity") == 2, actions
