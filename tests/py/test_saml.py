"""SAML 2.0 federation against a real IdP (pysaml2): AssumeRoleWithSAML through boto3 and the AWS
CLI, the browser login (rolegate's real AuthnRequest parsed by pysaml2, its Response posted to the
ACS with a cookie-keeping client), and the attack corpus built from valid pysaml2 Responses.

Every refusal is checked for its error code, for issuing no credentials and for the precise reason
in the audit log.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from datetime import datetime, timezone
from pathlib import Path

import botocore.exceptions
import pytest

import e2e
import saml_idp
from saml_idp import AC_MFA

PROVIDER = "corp"
PROVIDER_ARN = f"arn:aws:iam::{e2e.ACCOUNT}:saml-provider/{PROVIDER}"
ROLE_ADMIN = f"arn:aws:iam::{e2e.ACCOUNT}:role/saml-admin"
ROLE_ENGINEERS = f"arn:aws:iam::{e2e.ACCOUNT}:role/saml-engineers"
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
NAME_ATTR = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SOURCE_ATTR = "https://aws.amazon.com/SAML/Attributes/SourceIdentity"
TAG_ATTR = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:"
TRANSITIVE_ATTR = "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys"
DURATION_ATTR = "https://aws.amazon.com/SAML/Attributes/SessionDuration"
ADMIN_MAX_SESSION = 7200


def _config(idp: saml_idp.SamlIdp, data_dir: Path):
    def trust(conditions: dict) -> str:
        return json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": conditions,
            }],
        })

    def render(port: int) -> str:
        acs = f"http://127.0.0.1:{port}/saml/acs"
        admin_trust = trust({"StringEquals": {"saml:aud": acs, "saml:iss": idp.entity_id,
                                              "saml:sub_type": "persistent"}})
        eng_trust = trust({"StringEquals": {"saml:aud": acs},
                           "ForAnyValue:StringEquals": {"saml:groups": "engineers"}})
        return f"""\
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[store]
kind = "sled"
path = "{data_dir}"

[admin]
token_env = "{e2e.ADMIN_TOKEN_ENV}"

[[accounts]]
id = "{e2e.ACCOUNT}"
name = "e2e"

[saml]
max_clock_skew_seconds = 30

[[saml_providers]]
name = "{PROVIDER}"
metadata_file = "{idp.metadata_path}"
mfa_authn_contexts = ["{AC_MFA}"]
groups_attribute = "groups"

[[roles]]
account = "{e2e.ACCOUNT}"
name = "saml-admin"
max_session_duration = {ADMIN_MAX_SESSION}
trust_policy = '''{admin_trust}'''

[[roles]]
account = "{e2e.ACCOUNT}"
name = "saml-engineers"
trust_policy = '''{eng_trust}'''

[directory]
account = "{e2e.ACCOUNT}"

[[permission_sets]]
name = "Engineering"

[[permission_sets.policies]]
name = "read"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}]}}'

[[assignment_rules]]
provider = "{PROVIDER}"
permission_set = "Engineering"
accounts = ["{e2e.ACCOUNT}"]
group = "engineers"
"""

    return render


class SamlServer:
    """rolegate trusting one pysaml2 IdP, restartable on the same port and data."""

    def __init__(self, work: Path, admin_token: str):
        self.work = work
        self.admin_token = admin_token
        self.idp = saml_idp.SamlIdp(work / "idp")
        self.rg = e2e.Rolegate(work / "rolegate", config_for_port=_config(self.idp, work / "data"),
                               env={e2e.ADMIN_TOKEN_ENV: admin_token})
        md = e2e.http("GET", f"{self.rg.url}/saml/metadata")
        assert md.status == 200, md.text
        self.idp.trust_sp(md.text)

    def restart(self) -> None:
        assert self.rg.stop() == 0
        self.rg = e2e.Rolegate(self.work / "rolegate", config_path=self.rg.config_path,
                               port=self.rg.port, env={e2e.ADMIN_TOKEN_ENV: self.admin_token})

    @property
    def url(self) -> str:
        return self.rg.url

    @property
    def acs(self) -> str:
        return f"{self.rg.url}/saml/acs"


@pytest.fixture(scope="module")
def saml(rolegate_binary, admin_token, tmp_path_factory):
    srv = SamlServer(tmp_path_factory.mktemp("saml"), admin_token)
    yield srv
    code = srv.rg.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.rg.log_tail()}"


def attrs(role: str = ROLE_ADMIN, session: str = "alice", **more) -> dict[str, list[str]]:
    a = {ROLE_ATTR: [f"{role},{PROVIDER_ARN}"], NAME_ATTR: [session]}
    a.update(more)
    return a


def assume_raw(saml: SamlServer, assertion: str, role: str = ROLE_ADMIN,
               principal: str = PROVIDER_ARN, **extra: str) -> e2e.HttpResponse:
    form = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": role,
            "PrincipalArn": principal, "SAMLAssertion": assertion, **extra}
    return e2e.http("POST", saml.url + "/", urllib.parse.urlencode(form),
                    {"Content-Type": "application/x-www-form-urlencoded"})


def refused(saml: SamlServer, assertion: str, code: str, reason: str, status: int = 400,
            **kw) -> dict:
    """Asserts the call is refused with `code`, carries no credentials, and is audited with a
    reason containing `reason`; returns the audit event."""
    r = assume_raw(saml, assertion, **kw)
    assert r.status == status, (r.status, r.text)
    assert b"SecretAccessKey" not in r.body and b"SessionToken" not in r.body
    got, _, request_id = e2e.sts_error(r.body)
    assert got == code, (got, r.text)
    ev = saml.rg.audit_event(request_id)
    assert ev["decision"] == "deny", ev
    assert ev.get("error_code") == code, ev
    assert "access_key_id" not in ev and "expiration" not in ev, ev
    assert reason in ev.get("reason", ""), (reason, ev.get("reason"))
    return ev


# ---------------------------------------------------------------------------------------------
# AssumeRoleWithSAML: the happy paths


def test_metadata_names_our_entity_and_acs(saml):
    md = e2e.http("GET", f"{saml.url}/saml/metadata")
    assert md.headers["content-type"] == "application/samlmetadata+xml"
    assert f'entityID="{saml.url}/saml/metadata"' in md.text
    assert f'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{saml.acs}"' in md.text
    assert "nameid-format:persistent" in md.text


def test_assume_role_with_saml_through_boto3(saml):
    idp = saml.idp
    assertion = idp.response(name_id="alice@example.test", attributes=attrs(
        **{TAG_ATTR + "team": ["blue"], TRANSITIVE_ATTR: ["team"], SOURCE_ATTR: ["alice"]}))
    sts = e2e.sts_client(saml.url)
    out = sts.assume_role_with_saml(RoleArn=ROLE_ADMIN, PrincipalArn=PROVIDER_ARN,
                                    SAMLAssertion=assertion, DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    left = (creds["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 840 <= left <= 930, creds["Expiration"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/saml-admin/alice"
    assert out["Subject"] == "alice@example.test"
    assert out["SubjectType"] == "persistent"
    assert out["Issuer"] == idp.entity_id
    assert out["Audience"] == saml.acs
    expected_q = base64.b64encode(__import__("hashlib").sha1(
        f"{idp.entity_id}{e2e.ACCOUNT}/{PROVIDER}".encode()).digest()).decode()
    assert out["NameQualifier"] == expected_q
    assert out["SourceIdentity"] == "alice"
    assert out["PackedPolicySize"] >= 1

    who = e2e.sts_client(saml.url, creds).get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]
    ev = [e for e in saml.rg.audit() if e["action"] == "AssumeRoleWithSAML"
          and e.get("access_key_id") == creds["AccessKeyId"]]
    assert len(ev) == 1 and ev[0]["decision"] == "allow" and ev[0]["subject"] == "alice@example.test"


def test_assume_role_with_saml_through_the_aws_cli(saml, tmp_path):
    assertion = saml.idp.response(name_id="carol@example.test",
                                  attributes=attrs(session="carol-cli"))
    r = e2e.run_aws(
        ["sts", "assume-role-with-saml", "--endpoint-url", saml.url, "--output", "json",
         "--role-arn", ROLE_ADMIN, "--principal-arn", PROVIDER_ARN,
         "--saml-assertion", assertion],
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["AssumedRoleUser"]["Arn"].endswith("/saml-admin/carol-cli")
    assert out["Subject"] == "carol@example.test"
    creds = out["Credentials"]
    left = (datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00"))
            - datetime.now(timezone.utc)).total_seconds()
    assert 3500 <= left <= 3630, creds["Expiration"]


def test_only_the_assertion_signed_is_accepted_and_so_is_only_the_response(saml):
    for sign_response, sign_assertion in [(False, True), (True, False)]:
        a = saml.idp.response(attributes=attrs(session=f"s{int(sign_response)}{int(sign_assertion)}"),
                              sign_response=sign_response, sign_assertion=sign_assertion)
        r = assume_raw(saml, a)
        assert r.status == 200, (sign_response, sign_assertion, r.text)


def test_group_attribute_in_the_trust_policy_and_mfa_from_the_authn_context(saml):
    a = saml.idp.response(attributes=attrs(role=ROLE_ENGINEERS, groups=["staff", "engineers"]),
                          authn_class=AC_MFA)
    r = assume_raw(saml, a, role=ROLE_ENGINEERS)
    assert r.status == 200, r.text
    refused(saml, saml.idp.response(attributes=attrs(role=ROLE_ENGINEERS, groups=["staff"])),
            "AccessDenied", "does not allow sts:AssumeRoleWithSAML", status=403, role=ROLE_ENGINEERS)


def test_lifetime_is_the_shortest_of_duration_session_duration_and_session_not_on_or_after(saml):
    sts = e2e.sts_client(saml.url)
    a = saml.idp.response(attributes=attrs(session="short", **{DURATION_ATTR: ["1000"]}))
    out = sts.assume_role_with_saml(RoleArn=ROLE_ADMIN, PrincipalArn=PROVIDER_ARN,
                                    SAMLAssertion=a, DurationSeconds=3600)
    left = (out["Credentials"]["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 940 <= left <= 1010, left

    until = datetime.fromtimestamp(time.time() + 1200, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    a = saml.idp.response(attributes=attrs(session="idp-session"), session_not_on_or_after=until)
    out = sts.assume_role_with_saml(RoleArn=ROLE_ADMIN, PrincipalArn=PROVIDER_ARN, SAMLAssertion=a)
    left = (out["Credentials"]["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert 1140 <= left <= 1210, left

    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_saml(RoleArn=ROLE_ADMIN, PrincipalArn=PROVIDER_ARN,
                                  SAMLAssertion=saml.idp.response(attributes=attrs(session="long")),
                                  DurationSeconds=ADMIN_MAX_SESSION + 1)
    assert e.value.response["Error"]["Code"] == "ValidationError"
