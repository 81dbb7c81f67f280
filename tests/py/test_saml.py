"""SAML 2.0 federation against a real IdP (pysaml2): AssumeRoleWithSAML through boto3 and the AWS
CLI, the browser login (rolegate's real AuthnRequest parsed by pysaml2, its Response posted to the
ACS with a cookie-keeping client), and the attack corpus built from valid pysaml2 Responses.

Every refusal is checked for its error code, for issuing no credentials and for the precise reason
in the audit log.
"""

from __future__ import annotations

import base64
import http.client
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
from pgtest import DATABASE_URL_ENV, pg_cluster, postgres_store, wait_until  # noqa: F401 (fixture)
from saml_idp import AC_MFA, AC_PASSWORD

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


def _config(idp: saml_idp.SamlIdp, partner: saml_idp.SamlIdp, data_dir: Path):
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

    read = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}'
    engineering = e2e.permission_set("Engineering", policy=("read", read), provider=PROVIDER, group="engineers")
    ops = e2e.permission_set("Ops", 'mfa = "required"', policy=("all", e2e.EVERYTHING), provider=PROVIDER,
                             group="operators")

    def saml_tables(port: int) -> str:
        acs = f"http://127.0.0.1:{port}/saml/acs"
        admin_trust = trust({"StringEquals": {"saml:aud": acs, "saml:iss": idp.entity_id,
                                              "saml:sub_type": "persistent"}})
        eng_trust = trust({"StringEquals": {"saml:aud": acs},
                           "ForAnyValue:StringEquals": {"saml:groups": "engineers"}})
        return f"""\
[saml]
max_clock_skew_seconds = 30

[[saml_providers]]
name = "{PROVIDER}"
metadata_file = "{idp.metadata_path}"
mfa_authn_contexts = ["{AC_MFA}"]
groups_attribute = "groups"

[[saml_providers]]
name = "partner"
metadata_file = "{partner.metadata_path}"
allow_idp_initiated = true

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

{engineering}

{ops}
"""

    return e2e.rolegate_config(data_dir, saml_tables)


class SamlServer:
    """rolegate trusting one pysaml2 IdP, restartable on the same port and data; with `portal`,
    the browser portal is on too."""

    def __init__(self, work: Path, admin_token: str, portal: bool = False, saml_extra: str = "",
                 want_signed_requests: bool = False):
        self.work = work
        self.admin_token = admin_token
        self.idp = saml_idp.SamlIdp(work / "idp")
        self.partner = saml_idp.SamlIdp(work / "partner", entity_id="https://partner.example.test/saml")
        base = _config(self.idp, self.partner, work / "data")

        def render(port: int) -> str:
            return base(port).replace("[saml]\n", f"[saml]\n{saml_extra}\n", 1)

        config_for_port = (lambda port: render(port) + "\n[portal]\n") if portal else render
        self.rg = e2e.Rolegate(work / "rolegate", config_for_port=config_for_port,
                               env={e2e.ADMIN_TOKEN_ENV: admin_token})
        md = e2e.http("GET", f"{self.rg.url}/saml/metadata")
        assert md.status == 200, md.text
        self.sp_metadata = md.text
        self.idp.trust_sp(md.text, want_signed_requests=want_signed_requests)
        self.partner.trust_sp(md.text)

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


# ---------------------------------------------------------------------------------------------
# The attack corpus: each case built from a valid pysaml2 Response


def unsigned(saml: SamlServer, session: str = "mallory", **kw) -> str:
    """A fresh pysaml2 Response without signatures (to be changed, then signed)."""
    return saml.idp.response_xml(attributes=attrs(session=session), sign_response=False,
                                 sign_assertion=False, **kw)


def idp_signs(saml: SamlServer, xml: str, element: str = "Assertion", **template) -> str:
    """`xml` signed by the IdP's real key: content the IdP vouched for, shapes it chose."""
    return saml_idp.sign(xml, element, saml.idp.key, saml.idp.cert_b64, **template)


def assertion_of(xml: str) -> str:
    m = re.search(r"<ns1:Assertion\b.*?</ns1:Assertion>", xml, re.S)
    assert m, xml
    return m.group(0)


def evil_copy(assertion: str, new_id: str | None = None) -> str:
    """The assertion, unsigned, claiming to be someone else (and with another ID unless given)."""
    e = saml_idp.strip_signatures(assertion).replace("alice@example.test", "admin@example.test")
    old = saml_idp.element_id(assertion, "Assertion")
    return e.replace(f'ID="{old}"', f'ID="{new_id or saml_idp.new_id()}"')


def signature_of(xml: str) -> str:
    m = re.search(r"<((?:\w+:)?)Signature\b.*?</\1Signature>", xml, re.S)
    assert m
    return m.group(0)


def ds_prefix(sig: str) -> str:
    """The namespace prefix (with its colon) the signature uses for xmldsig."""
    return re.match(r"<((?:\w+:)?)Signature", sig).group(1)


def test_signature_removed(saml):
    xml = saml_idp.strip_signatures(saml.idp.response_xml(attributes=attrs()))
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "neither the Response nor the Assertion is signed")


def _assertion_signed(saml):
    return saml.idp.response_xml(attributes=attrs(), sign_response=False, sign_assertion=True)


def _response_signed(saml):
    return saml.idp.response_xml(attributes=attrs(), sign_response=True, sign_assertion=False)


def _xsw(saml, case: str) -> str:
    """XSW1–XSW8 after the classic catalogue (signed content cloned, moved under Signature,
    Extensions or ds:Object, wrapped, or re-identified)."""
    if case in ("XSW1", "XSW2"):
        r = _response_signed(saml)
        sig = signature_of(r)
        rid = saml_idp.element_id(r, "Response")
        evil = r.replace(sig, "").replace(f'ID="{rid}"', f'ID="{saml_idp.new_id()}"', 1)
        evil = evil.replace("alice@example.test", "admin@example.test")
        original = r  # the whole signed Response
        if case == "XSW1":  # the original inside the evil Response's Signature
            p = ds_prefix(sig)
            inner = sig.replace(f"</{p}SignatureValue>", f"</{p}SignatureValue>" + original.split("?>")[-1], 1)
            return saml_idp.insert_after_issuer(evil, "Response", inner)
        # XSW2: the original as a sibling before the Signature, inside the evil Response
        return saml_idp.insert_after_issuer(evil, "Response", original.split("?>")[-1] + sig)
    s = _assertion_signed(saml)
    a = assertion_of(s)
    sig = signature_of(a)
    if case == "XSW3":  # evil assertion first, signed one after it
        return s.replace(a, evil_copy(a) + a)
    if case == "XSW4":  # signed assertion wrapped inside the evil one
        e = evil_copy(a)
        return s.replace(a, e.replace("</ns1:Assertion>", a + "</ns1:Assertion>"))
    if case == "XSW5":  # the evil assertion carries the original signature; the original appended
        e = saml_idp.insert_after_issuer(evil_copy(a), "Assertion", sig)
        return s.replace(a, e + saml_idp.strip_signatures(a))
    if case == "XSW6":  # the evil assertion carries the signature, the original inside ds:Object
        p = ds_prefix(sig)
        wrapped = sig.replace(f"</{p}Signature>", f"<{p}Object>{saml_idp.strip_signatures(a)}</{p}Object></{p}Signature>")
        return s.replace(a, saml_idp.insert_after_issuer(evil_copy(a), "Assertion", wrapped))
    if case == "XSW7":  # the original moved under Extensions, the evil one in its place
        return s.replace(a, f"<ns0:Extensions>{a}</ns0:Extensions>" + evil_copy(a))
    if case == "XSW8":  # re-identified: the evil assertion takes the signed one's ID
        aid = saml_idp.element_id(a, "Assertion")
        p = ds_prefix(sig)
        wrapped = sig.replace(f"</{p}Signature>", f"<{p}Object>{saml_idp.strip_signatures(a)}</{p}Object></{p}Signature>")
        return s.replace(a, saml_idp.insert_after_issuer(evil_copy(a, new_id=aid), "Assertion", wrapped))
    raise AssertionError(case)


XSW_REASONS = {
    # A cloned document repeats the signed IDs: found before anything else.
    "XSW1": "appears more than once",
    "XSW2": "appears more than once",
    "XSW3": "assertions; exactly one is allowed",
    "XSW4": "nested",
    "XSW5": "assertions; exactly one is allowed",
    "XSW6": "nested",
    "XSW7": "nested",
    "XSW8": "appears more than once",
}


@pytest.mark.parametrize("case", sorted(XSW_REASONS))
def test_signature_wrapping_is_refused(saml, case):
    xml = _xsw(saml, case)
    assert "admin@example.test" in xml
    ev = refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "shape check")
    assert XSW_REASONS[case] in ev["reason"], ev["reason"]


def test_a_second_unsigned_assertion_appended(saml):
    s = _assertion_signed(saml)
    a = assertion_of(s)
    xml = s.replace(a, a + evil_copy(a))
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "2 assertions")


def test_two_validly_signed_assertions(saml):
    s = _assertion_signed(saml)
    other = assertion_of(saml.idp.response_xml(attributes=attrs(session="bob"), name_id="bob@example.test",
                                               sign_response=False, sign_assertion=True))
    other = other.replace('Id="Signature2"', 'Id="Signature3"')
    a = assertion_of(s)
    refused(saml, saml_idp.b64(s.replace(a, a + other)), "InvalidIdentityToken", "2 assertions")


@pytest.mark.parametrize("uri,reason", [
    ("", "Reference URI '' is not"),
    ("#xpointer(/)", "Reference URI '#xpointer(/)' is not"),
    ("file:///etc/passwd", "Reference URI 'file:///etc/passwd' is not"),
    ("http://127.0.0.1:9/x", "Reference URI 'http://127.0.0.1:9/x' is not"),
])
def test_reference_uri_must_be_the_parents_id(saml, uri, reason):
    s = _assertion_signed(saml)
    aid = saml_idp.element_id(s, "Assertion")
    xml = s.replace(f'URI="#{aid}"', f'URI="{uri}"')
    assert xml != s
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", reason)


@pytest.mark.parametrize("transforms,reason", [
    ([saml_idp.ENVELOPED, "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"], "transforms must be exactly"),
    ([saml_idp.EXC_C14N], "transforms must be exactly"),
    ([saml_idp.ENVELOPED, saml_idp.EXC_C14N, saml_idp.EXC_C14N], "transforms must be exactly"),
])
def test_transforms_other_than_enveloped_then_exclusive_c14n(saml, transforms, reason):
    xml = idp_signs(saml, unsigned(saml), transforms=transforms)
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", reason)


@pytest.mark.parametrize("alg", ["http://www.w3.org/TR/1999/REC-xpath-19991116",
                                 "http://www.w3.org/TR/1999/REC-xslt-19991116",
                                 "http://www.w3.org/2002/06/xmldsig-filter2"])
def test_xpath_and_xslt_transforms(saml, alg):
    # xmlsec1 would need the transform's parameters to sign; the shape check refuses on the URI.
    s = idp_signs(saml, unsigned(saml))
    xml = s.replace(f'Algorithm="{saml_idp.EXC_C14N}"/></ds:Transforms>', f'Algorithm="{alg}"/></ds:Transforms>')
    assert xml != s
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "transforms must be exactly")


def test_two_references(saml):
    xml = idp_signs(saml, unsigned(saml), extra_references=1)
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "2 References")


@pytest.mark.parametrize("alg", ["rsa-sha1", "rsa-md5", "hmac-sha1"])
def test_weak_or_symmetric_signature_methods(saml, alg):
    s = idp_signs(saml, unsigned(saml))
    xml = s.replace(saml_idp.SIG["rsa-sha256"], saml_idp.SIG[alg])
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", f"signature method {saml_idp.SIG[alg]} is not allowed")


def test_sha1_signature_made_by_the_idp_itself(saml):
    # Not a substituted URI: the IdP's key really signed with RSA-SHA1 / SHA-1.
    xml = idp_signs(saml, unsigned(saml), sig_alg=saml_idp.SIG["rsa-sha1"], digest_alg=saml_idp.DIGEST["sha1"])
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "is not allowed")


def test_response_resigned_with_the_attackers_own_key(saml, tmp_path):
    key, _, cert_b64 = saml_idp.make_key_pair(tmp_path, "attacker")
    xml = saml_idp.sign(unsigned(saml).replace("mallory", "admin"), "Assertion", key, cert_b64)
    refused(saml, saml_idp.b64(xml), "InvalidIdentityToken", "signature does not verify")


def test_comment_inside_a_signed_name_id(saml):
    # Exclusive c14n drops comments, so the IdP's signature still verifies over
    # "admin@example.test.evil.test"; a parser reading only the first text node would see admin@example.test.
    xml = unsigned(saml).replace("alice@example.test", "admin@example.test.evil.test")
    s = idp_signs(saml, xml).replace("admin@example.test.evil.test", "admin@example.test<!---->.evil.test")
    refused(saml, saml_idp.b64(s), "InvalidIdentityToken", "comments are not allowed")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&h;</samlp:Response>"""


@pytest.mark.parametrize("doc,reason", [
    (BILLION_LAUGHS, "DOCTYPE is not allowed"),
    ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>',
     "DOCTYPE is not allowed"),
    ('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">' + "<a>" * 200 + "</a>" * 200
     + "</samlp:Response>", "nested deeper than"),
    ('<?xml-stylesheet href="x"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>',
     "processing instructions"),
])
def test_hostile_xml_is_refused_before_any_crypto(saml, doc, reason):
    start = time.monotonic()
    refused(saml, saml_idp.b64(doc), "InvalidIdentityToken", reason)
    assert time.monotonic() - start < 5


def test_oversized_assertion_is_a_validation_error(saml):
    big = saml_idp.b64(unsigned(saml).replace("</ns0:Response>", "<!--" + "x" * 80_000 + "--></ns0:Response>"))
    assert len(big) > 100_000
    refused(saml, big, "ValidationError", "less than or equal to 100000")


def _resign(saml, change, element="Assertion", **kw):
    xml = unsigned(saml, **kw)
    changed = change(xml)
    assert changed != xml
    return saml_idp.b64(idp_signs(saml, changed, element))


def _iso(offset: int) -> str:
    return datetime.fromtimestamp(time.time() + offset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_wrong_audience(saml):
    a = _resign(saml, lambda x: x.replace(f"<ns1:Audience>{saml.url}/saml/metadata</ns1:Audience>",
                                          "<ns1:Audience>https://other.example/sp</ns1:Audience>"))
    refused(saml, a, "InvalidIdentityToken", "does not contain our entity id")


def test_an_extra_audience_restriction_without_us(saml):
    a = _resign(saml, lambda x: x.replace("</ns1:AudienceRestriction>",
                                          "</ns1:AudienceRestriction><ns1:AudienceRestriction>"
                                          "<ns1:Audience>https://other.example/sp</ns1:Audience></ns1:AudienceRestriction>"))
    refused(saml, a, "InvalidIdentityToken", "does not contain our entity id")


def test_no_audience_restriction(saml):
    a = _resign(saml, lambda x: re.sub(r"<ns1:AudienceRestriction>.*?</ns1:AudienceRestriction>", "", x))
    refused(saml, a, "InvalidIdentityToken", "no AudienceRestriction")


def test_wrong_recipient(saml):
    a = _resign(saml, lambda x: x.replace(f'Recipient="{saml.acs}"', 'Recipient="https://other.example/acs"'))
    refused(saml, a, "InvalidIdentityToken", "bearer Recipient")


def test_wrong_destination(saml):
    a = _resign(saml, lambda x: x.replace(f'Destination="{saml.acs}"', 'Destination="https://other.example/acs"'),
                element="Response")
    refused(saml, a, "InvalidIdentityToken", "Destination")


def test_wrong_issuer(saml):
    a = _resign(saml, lambda x: x.replace(saml.idp.entity_id, "https://evil.example/idp"))
    refused(saml, a, "InvalidIdentityToken", "is not provider corp's entity id")


def test_expired(saml):
    a = _resign(saml, lambda x: re.sub(r'NotOnOrAfter="[^"]+"', f'NotOnOrAfter="{_iso(-120)}"', x))
    refused(saml, a, "ExpiredTokenException", "expired at")


def test_not_yet_valid(saml):
    a = _resign(saml, lambda x: re.sub(r'NotBefore="[^"]+"', f'NotBefore="{_iso(600)}"', x))
    refused(saml, a, "ExpiredTokenException", "not valid before")


def test_issued_long_ago(saml):
    a = _resign(saml, lambda x: re.sub(r'(<ns1:Assertion [^>]*IssueInstant=")[^"]+"', rf'\g<1>{_iso(-3600)}"', x))
    refused(saml, a, "ExpiredTokenException", "s ago")


def test_holder_of_key_confirmation(saml):
    a = _resign(saml, lambda x: x.replace("urn:oasis:names:tc:SAML:2.0:cm:bearer",
                                          "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"))
    refused(saml, a, "InvalidIdentityToken", "is not bearer")


def test_no_authn_statement(saml):
    a = _resign(saml, lambda x: re.sub(r"<ns1:AuthnStatement\b.*?</ns1:AuthnStatement>", "", x))
    refused(saml, a, "InvalidIdentityToken", "no AuthnStatement")


def test_non_success_status_carrying_an_assertion(saml):
    a = _resign(saml, lambda x: x.replace("urn:oasis:names:tc:SAML:2.0:status:Success",
                                          "urn:oasis:names:tc:SAML:2.0:status:Responder"), element="Response")
    refused(saml, a, "InvalidIdentityToken", "status:Responder, not Success")


def test_role_attribute_without_the_requested_pair(saml):
    a = saml.idp.response(attributes=attrs(role=ROLE_ENGINEERS))
    refused(saml, a, "AccessDenied", "does not contain", status=403)


def test_unknown_principal_arn(saml):
    a = saml.idp.response(attributes=attrs())
    refused(saml, a, "InvalidIdentityToken", "is not a configured saml provider",
            principal=f"arn:aws:iam::{e2e.ACCOUNT}:saml-provider/nobody")


def test_trust_policy_conditions_on_saml_keys(saml):
    # saml-admin requires saml:sub_type persistent: a transient NameID is refused by the policy.
    a = _resign(saml, lambda x: x.replace("nameid-format:persistent", "nameid-format:transient"))
    ev = refused(saml, a, "AccessDenied", "saml:sub_type", status=403)
    assert ev["subject"] == "alice@example.test"


def _encrypted(saml, key_alg: str, data_alg: str) -> str:
    s = unsigned(saml)
    a = assertion_of(s)
    enc = ('<ns1:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
           f'Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{data_alg}"/>'
           '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>'
           f'<xenc:EncryptionMethod Algorithm="{key_alg}"/><xenc:CipherData><xenc:CipherValue>'
           f'{base64.b64encode(b"k" * 256).decode()}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>'
           '</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>'
           f'{base64.b64encode(a.encode()).decode()}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>'
           '</ns1:EncryptedAssertion>')
    return saml_idp.b64(idp_signs(saml, s.replace(a, enc), "Response"))


@pytest.mark.parametrize("key_alg,data_alg,reason", [
    ("http://www.w3.org/2001/04/xmlenc#rsa-1_5", "http://www.w3.org/2009/xmlenc11#aes128-gcm",
     "key transport http://www.w3.org/2001/04/xmlenc#rsa-1_5 is not allowed"),
    ("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
     "content encryption http://www.w3.org/2001/04/xmlenc#aes128-cbc is not allowed"),
    ("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2009/xmlenc11#aes256-gcm",
     "no decryption key is configured"),
])
def test_encrypted_assertions(saml, key_alg, data_alg, reason):
    refused(saml, _encrypted(saml, key_alg, data_alg), "InvalidIdentityToken", reason)


def test_replay_is_refused_also_after_a_restart(saml):
    a = saml.idp.response(attributes=attrs(session="once"))
    assert assume_raw(saml, a).status == 200
    refused(saml, a, "InvalidIdentityToken", "replay: assertion")
    saml.restart()
    refused(saml, a, "InvalidIdentityToken", "replay: assertion")
    # A fresh assertion still works after the restart.
    assert assume_raw(saml, saml.idp.response(attributes=attrs(session="after"))).status == 200


# ---------------------------------------------------------------------------------------------
# The browser: SP-initiated login through rolegate's real AuthnRequest


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client (as a browser, without JavaScript)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, method: str, url: str, form: dict | None = None) -> e2e.HttpResponse:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with self.opener.open(req, timeout=15) as r:
                return e2e.HttpResponse(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return e2e.HttpResponse(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def start_login(self, saml: SamlServer, path: str = f"/saml/{PROVIDER}/login"):
        """GET /saml/corp/login (or `path`): (AuthnRequest as pysaml2 parsed it, RelayState)."""
        r = self.request("GET", f"{saml.url}{path}")
        assert r.status == 302, r.text
        loc = urllib.parse.urlsplit(r.headers["location"])
        assert f"{loc.scheme}://{loc.netloc}{loc.path}" == saml.idp.sso_url
        q = urllib.parse.parse_qs(loc.query)
        # The HTTP-Redirect encoding: raw DEFLATE, base64.
        raw = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()
        assert "AuthnRequest" in raw
        req = saml.idp.parse_authn_request(q["SAMLRequest"][0])
        return req, q["RelayState"][0]

    def post_response(self, saml: SamlServer, response: str, relay: str | None) -> e2e.HttpResponse:
        form = {"SAMLResponse": response}
        if relay is not None:
            form["RelayState"] = relay
        return self.request("POST", saml.acs, form)


def browser_refused(saml: SamlServer, r: e2e.HttpResponse, reason: str) -> dict:
    assert r.status == 403, (r.status, r.text)
    assert b"assignments" not in r.body
    ev = saml.rg.audit_event(r.headers["x-request-id"])
    assert ev["action"] == "saml:SignIn" and ev["decision"] == "deny", ev
    assert reason in ev.get("reason", ""), (reason, ev.get("reason"))
    return ev


def test_browser_login_end_to_end(saml):
    b = Browser()
    req, relay = b.start_login(saml)
    msg = req.message
    assert msg.assertion_consumer_service_url == saml.acs
    assert msg.issuer.text == f"{saml.url}/saml/metadata"
    assert len(relay) >= 22  # 128 bits
    cookies = {c.name: c for c in b.jar}
    assert "rolegate-saml" in cookies and cookies["rolegate-saml"].has_nonstandard_attr("HttpOnly")
    resp = saml.idp.response(name_id="erin@example.test", in_response_to=msg.id,
                             attributes={"groups": ["engineers"], "email": ["erin@example.test"]},
                             authn_class=AC_MFA)
    r = b.post_response(saml, resp, relay)
    assert r.status == 200, r.text
    body = r.json()
    assert body["subject"] == "erin@example.test" and body["provider"] == PROVIDER
    assert body["mfa"] is True
    assert body["groups"] == ["engineers"]
    assert [(a["account"], a["permission_set"]) for a in body["assignments"]] == [(e2e.ACCOUNT, "Engineering")]
    ev = saml.rg.audit_event(r.headers["x-request-id"])
    assert ev["decision"] == "allow" and ev["subject"] == "erin@example.test" and ev["mfa"] is True
    assert "rolegate-saml" not in {c.name for c in b.jar}, "the pending login is cleared"


@pytest.fixture(scope="module")
def saml_portal(rolegate_binary, admin_token, tmp_path_factory):
    srv = SamlServer(tmp_path_factory.mktemp("saml-portal"), admin_token, portal=True)
    yield srv
    code = srv.rg.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.rg.log_tail()}"


def raw_request(url: str, method: str, headers: dict, body: bytes | None = None):
    """(status, every header as (name, value) pairs in order, body): Set-Cookie may come more than
    once, and no redirect is followed."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def post_acs_raw(saml: SamlServer, b: Browser, response: str, relay: str):
    """Posts to the ACS as the browser `b` would, carrying its pending-login cookie."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in b.jar)
    body = urllib.parse.urlencode({"SAMLResponse": response, "RelayState": relay}).encode()
    return raw_request(saml.acs, "POST", {"Cookie": cookies,
                                          "Content-Type": "application/x-www-form-urlencoded"}, body)


def portal_session_cookie(headers) -> str | None:
    """The value of the portal session cookie set (it is `Secure`, so a cookie jar on plain-http
    loopback would not send it back: the test carries it by hand)."""
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("__Host-rolegate-session="):
            v = value.split(";", 1)[0].split("=", 1)[1]
            return v or None
    return None


def test_browser_login_with_the_portal_on_starts_a_portal_session(saml_portal):
    b = Browser()
    req, relay = b.start_login(saml_portal)
    resp = saml_portal.idp.response(name_id="frank@example.test", in_response_to=req.message.id,
                                    attributes={"groups": ["engineers"]}, authn_class=AC_MFA)
    status, headers, body = post_acs_raw(saml_portal, b, resp, relay)
    assert status == 303, (status, body)
    assert dict((k.lower(), v) for k, v in headers)["location"] == "/portal"
    session = portal_session_cookie(headers)
    assert session, headers
    status, _, page = raw_request(f"{saml_portal.url}/portal", "GET",
                                  {"Cookie": f"__Host-rolegate-session={session}"})
    assert status == 200, page
    text = page.decode()
    assert "Engineering" in text and e2e.ACCOUNT in text, text
    assert "frank@example.test" in text, text
    # Without the cookie the portal sends the browser to sign in.
    status, _, _ = raw_request(f"{saml_portal.url}/portal", "GET", {})
    assert status in (302, 303)


def portal_credentials(saml: SamlServer, session: str, permission_set: str,
                       path: str = "/portal/credentials"):
    """POST /portal/credentials (or `path`, e.g. /portal/console) for `permission_set` with the
    session's CSRF token: (status, page)."""
    cookie = {"Cookie": f"__Host-rolegate-session={session}"}
    status, _, home = raw_request(f"{saml.url}/portal", "GET", cookie)
    assert status == 200, home
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.decode()).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "account": e2e.ACCOUNT,
                                   "permission_set": permission_set}).encode()
    status, _, page = raw_request(f"{saml.url}{path}", "POST",
                                  {**cookie, "Origin": saml.url,
                                   "Content-Type": "application/x-www-form-urlencoded"}, body)
    return status, page.decode()


def test_a_permission_set_needing_mfa_offers_a_saml_step_up_with_force_authn(saml_portal):
    srv = saml_portal
    b = Browser()
    req, relay = b.start_login(srv)
    assert req.message.force_authn is None and req.message.requested_authn_context is None
    resp = srv.idp.response(name_id="gina@example.test", in_response_to=req.message.id,
                            attributes={"groups": ["operators"]}, authn_class=AC_PASSWORD)
    status, headers, body = post_acs_raw(srv, b, resp, relay)
    assert status == 303, body
    session = portal_session_cookie(headers)
    status, page = portal_credentials(srv, session, "Ops")
    assert status == 403, page
    assert 'href="/saml/corp/login?step_up=1"' in page, page
    assert "AWS_SECRET_ACCESS_KEY" not in page
    # Open console offers the same step-up.
    status, page = portal_credentials(srv, session, "Ops", "/portal/console")
    assert status == 403, page
    assert 'href="/saml/corp/login?step_up=1"' in page, page

    # The step-up: pysaml2 reads ForceAuthn and the provider's MFA class in the AuthnRequest.
    req, relay = b.start_login(srv, f"/saml/{PROVIDER}/login?step_up=1")
    assert req.message.force_authn == "true"
    ctx = req.message.requested_authn_context
    assert ctx.comparison == "exact"
    assert [c.text for c in ctx.authn_context_class_ref] == [AC_MFA]
    ev = srv.rg.audit("--action", "saml:Login")[0]
    assert ev["decision"] == "allow" and "step-up" in ev.get("reason", ""), ev
    # An IdP that answers the step-up without MFA gives a session that is still refused.
    resp = srv.idp.response(name_id="gina@example.test", in_response_to=req.message.id,
                            attributes={"groups": ["operators"]}, authn_class=AC_PASSWORD)
    status, headers, body = post_acs_raw(srv, b, resp, relay)
    assert status == 303, body
    status, page = portal_credentials(srv, portal_session_cookie(headers), "Ops")
    assert status == 403 and "AWS_SECRET_ACCESS_KEY" not in page, page
    req, relay = b.start_login(srv, f"/saml/{PROVIDER}/login?step_up=1")
    resp = srv.idp.response(name_id="gina@example.test", in_response_to=req.message.id,
                            attributes={"groups": ["operators"]}, authn_class=AC_MFA)
    status, headers, body = post_acs_raw(srv, b, resp, relay)
    assert status == 303, body
    stepped = portal_session_cookie(headers)
    assert stepped and stepped != session
    status, page = portal_credentials(srv, stepped, "Ops")
    assert status == 200, page
    assert "AWS_SECRET_ACCESS_KEY" in page

    # Any other step_up value is refused and starts nothing.
    r = Browser().request("GET", f"{srv.url}/saml/{PROVIDER}/login?step_up=yes")
    assert r.status == 400, r.text
    assert "location" not in r.headers
    ev = srv.rg.audit("--action", "saml:Login")[0]
    assert ev["decision"] == "deny" and "step_up must be 1" in ev["reason"], ev


@pytest.fixture(scope="module")
def saml_signed(rolegate_binary, admin_token, tmp_path_factory):
    """rolegate with a SAML signing key (and a next certificate), trusted by a pysaml2 IdP that
    wants signed AuthnRequests."""
    work = tmp_path_factory.mktemp("saml-signed")
    key, cert, _ = saml_idp.make_key_pair(work, "sp")
    _, next_cert, _ = saml_idp.make_key_pair(work, "sp-next")
    extra = (f'signing_key_file = "{key}"\nsigning_cert_file = "{cert}"\n'
             f'next_signing_cert_file = "{next_cert}"')
    srv = SamlServer(work, admin_token, saml_extra=extra, want_signed_requests=True)
    yield srv
    code = srv.rg.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.rg.log_tail()}"


def test_authn_requests_are_signed_and_the_metadata_publishes_both_certificates(saml_signed):
    md = saml_signed.sp_metadata
    assert 'AuthnRequestsSigned="true"' in md
    assert md.count('<md:KeyDescriptor use="signing">') == 2, md
    b = Browser()
    r = b.request("GET", f"{saml_signed.url}/saml/{PROVIDER}/login")
    assert r.status == 302, r.text
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)
    assert q["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    # pysaml2 (wanting signed requests) verifies the query signature with the metadata's key.
    req = saml_signed.idp.parse_authn_request(q["SAMLRequest"][0], relay_state=q["RelayState"][0],
                                              sigalg=q["SigAlg"][0], signature=q["Signature"][0])
    assert req.message.id.startswith("_")
    # A request whose RelayState was changed, or with no signature at all, does not verify.
    with pytest.raises(Exception):
        saml_signed.idp.parse_authn_request(q["SAMLRequest"][0], relay_state=q["RelayState"][0] + "x",
                                            sigalg=q["SigAlg"][0], signature=q["Signature"][0])
    with pytest.raises(Exception):
        saml_signed.idp.parse_authn_request(q["SAMLRequest"][0], relay_state=q["RelayState"][0])


def test_the_sign_in_page_lists_the_saml_providers_and_their_links_start_a_login(saml_portal):
    status, _, page = raw_request(f"{saml_portal.url}/login", "GET", {})
    assert status == 200, page
    text = page.decode()
    for name in (PROVIDER, "partner"):
        assert f'href="/saml/{name}/login" data-provider="{name}"' in text, text
    req, relay = Browser().start_login(saml_portal)
    assert req.message.id and relay


def test_a_refused_response_with_the_portal_on_starts_no_session(saml_portal):
    b = Browser()
    _, relay = b.start_login(saml_portal)
    # Answers no AuthnRequest of this browser.
    resp = saml_portal.idp.response(in_response_to="_not-ours", attributes={"groups": ["engineers"]})
    status, headers, body = post_acs_raw(saml_portal, b, resp, relay)
    assert status == 403, (status, body)
    assert portal_session_cookie(headers) is None


def test_browser_unsolicited_response_is_refused(saml):
    b = Browser()
    browser_refused(saml, b.post_response(saml, saml.idp.response(attributes={}), None),
                    "IdP-initiated Response: provider corp does not allow it")


def test_browser_response_for_a_request_this_browser_did_not_make(saml):
    a, b = Browser(), Browser()
    req_a, _ = a.start_login(saml)
    _, relay_b = b.start_login(saml)
    resp = saml.idp.response(in_response_to=req_a.message.id, attributes={})
    browser_refused(saml, b.post_response(saml, resp, relay_b), "is not the request this browser is waiting for")
    # Without any pending login of its own.
    resp = saml.idp.response(in_response_to=req_a.message.id, attributes={})
    browser_refused(saml, Browser().post_response(saml, resp, None), "answers no pending request")


def test_browser_relay_state_mismatch(saml):
    b = Browser()
    req, relay = b.start_login(saml)
    resp = saml.idp.response(in_response_to=req.message.id, attributes={})
    browser_refused(saml, b.post_response(saml, resp, relay + "x"), "RelayState does not match")


def test_browser_in_response_to_is_single_use(saml):
    b = Browser()
    req, relay = b.start_login(saml)
    kept = [c for c in b.jar if c.name == "rolegate-saml"][0]
    first = saml.idp.response(in_response_to=req.message.id, attributes={})
    assert b.post_response(saml, first, relay).status == 200
    # The same pending login (cookie kept by an attacker) with a second, fresh Response.
    b.jar.set_cookie(kept)
    again = saml.idp.response(in_response_to=req.message.id, attributes={})
    browser_refused(saml, b.post_response(saml, again, relay), "was already answered")


def test_idp_initiated_login_where_the_provider_opts_in_still_runs_every_check(saml):
    resp = saml.partner.response(name_id="pat@partner.example.test", attributes={})
    r = Browser().post_response(saml, resp, None)
    assert r.status == 200, r.text
    assert r.json()["provider"] == "partner" and r.json()["subject"] == "pat@partner.example.test"
    # Once only,
    browser_refused(saml, Browser().post_response(saml, resp, None), "replay")
    # and still for our audience only.
    xml = saml.partner.response_xml(attributes={}, sign_response=False, sign_assertion=False)
    xml = xml.replace(f"<ns1:Audience>{saml.url}/saml/metadata</ns1:Audience>",
                      "<ns1:Audience>https://other.example/sp</ns1:Audience>")
    signed = saml_idp.sign(xml, "Assertion", saml.partner.key, saml.partner.cert_b64)
    browser_refused(saml, Browser().post_response(saml, saml_idp.b64(signed), None),
                    "does not contain our entity id")
    # The other provider's key does not sign for the partner.
    forged = saml_idp.sign(saml.partner.response_xml(attributes={}, sign_response=False, sign_assertion=False),
                           "Assertion", saml.idp.key, saml.idp.cert_b64)
    browser_refused(saml, Browser().post_response(saml, saml_idp.b64(forged), None), "signature does not verify")


# ---------------------------------------------------------------------------------------------
# Two replicas on one PostgreSQL database: an assertion accepted by one is refused by the other


@pytest.fixture(scope="module")
def saml_replicas(pg_cluster, rolegate_binary, admin_token, tmp_path_factory):
    """Two rolegate processes on one database, both answering for the same public URL (as behind a
    load balancer), trusting one pysaml2 IdP."""
    work = tmp_path_factory.mktemp("saml-replicas")
    url = pg_cluster.create_database("saml_replicas")
    env = {e2e.ADMIN_TOKEN_ENV: admin_token, DATABASE_URL_ENV: url}
    idp = saml_idp.SamlIdp(work / "idp")
    partner = saml_idp.SamlIdp(work / "partner", entity_id="https://partner.example.test/saml")
    render = _config(idp, partner, work / "unused")
    a = e2e.Rolegate(work / "a", config_for_port=lambda p: postgres_store(render(p)), env=env)

    def as_a(port: int) -> str:
        text = render(port).replace(f"127.0.0.1:{port}", f"127.0.0.1:{a.port}")
        return postgres_store(text.replace(f'listen = "127.0.0.1:{a.port}"',
                                           f'listen = "127.0.0.1:{port}"'))

    b = e2e.Rolegate(work / "b", config_for_port=as_a, env=env)
    idp.trust_sp(e2e.http("GET", f"{a.url}/saml/metadata").text)
    yield idp, a, b
    for srv in (a, b):
        code = srv.stop()
        assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


class Replica:
    """One replica in the shape the helpers above take."""

    def __init__(self, rg: e2e.Rolegate):
        self.rg = rg
        self.url = rg.url


def test_an_assertion_used_on_one_replica_is_refused_on_the_other(saml_replicas):
    idp, a, b = saml_replicas
    # The same Response is good for either replica (same audience and recipient) until one uses it.
    fresh = idp.response(attributes=attrs(session="replica-b"))
    assert assume_raw(Replica(b), fresh).status == 200, "replica B accepts an assertion for the shared URL"
    used = idp.response(attributes=attrs(session="replica-a"))
    r = assume_raw(Replica(a), used)
    assert r.status == 200, r.text
    for replica in (b, a):
        r = assume_raw(Replica(replica), used)
        assert r.status == 400, (r.status, r.text)
        assert b"SecretAccessKey" not in r.body and b"SessionToken" not in r.body
        code, _, request_id = e2e.sts_error(r.body)
        assert code == "InvalidIdentityToken", r.text
        # The CLI reads the database directly: the replica's audit batch lands within its window.
        ev = wait_until("the refusal's audit event",
                        lambda: [e for e in replica.audit() if e.get("request_id") == request_id],
                        timeout=5)[0]
        assert ev["decision"] == "deny" and "replay: assertion" in ev.get("reason", ""), ev


# ---------------------------------------------------------------------------------------------
# Encrypted assertions: rolegate with a decryption key (and a next one), pysaml2 encrypting for the
# encryption certificates of its SP metadata


@pytest.fixture(scope="module")
def saml_enc(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("saml-enc")
    key, cert, _ = saml_idp.make_key_pair(work, "sp-enc")
    next_key, next_cert, _ = saml_idp.make_key_pair(work, "sp-enc-next")
    extra = (f'decryption_key_file = "{key}"\ndecryption_cert_file = "{cert}"\n'
             f'next_decryption_key_file = "{next_key}"\nnext_decryption_cert_file = "{next_cert}"')
    srv = SamlServer(work, admin_token, saml_extra=extra)
    srv.enc_cert, srv.next_enc_cert = cert, next_cert
    yield srv
    code = srv.rg.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.rg.log_tail()}"


GCM = ("aes256-gcm", "rsa-oaep-mgf1p")


def encrypted_xml(srv: SamlServer, session: str = "enc", **kw) -> str:
    """A pysaml2 Response (Assertion signed, encrypted with AES-256-GCM / RSA-OAEP by xmlsec1,
    Response signed)."""
    xml = srv.idp.response_xml(attributes=attrs(session=session), encryption=GCM, **kw)
    assert "EncryptedAssertion" in xml and saml_idp.ENC["aes256-gcm"] in xml
    assert "alice@example.test" not in xml and "<ns1:Assertion" not in xml, "the assertion is hidden"
    return xml


def test_the_metadata_publishes_both_encryption_certificates_with_gcm_and_oaep_only(saml_enc):
    md = saml_enc.sp_metadata
    assert md.count('<md:KeyDescriptor use="encryption">') == 2, md
    for cert in (saml_enc.enc_cert, saml_enc.next_enc_cert):
        der = "".join(cert.read_text().strip().splitlines()[1:-1])
        assert der in md
    methods = re.findall(r'<md:EncryptionMethod Algorithm="([^"]+)"/>', md)
    assert set(methods) == {"http://www.w3.org/2009/xmlenc11#aes256-gcm",
                            "http://www.w3.org/2009/xmlenc11#aes192-gcm",
                            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
                            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
                            "http://www.w3.org/2009/xmlenc11#rsa-oaep"}, methods
    assert "cbc" not in md and "rsa-1_5" not in md


def test_an_encrypted_assertion_through_boto3(saml_enc):
    xml = encrypted_xml(saml_enc, session="enc-boto3")
    out = e2e.sts_client(saml_enc.url).assume_role_with_saml(
        RoleArn=ROLE_ADMIN, PrincipalArn=PROVIDER_ARN, SAMLAssertion=saml_idp.b64(xml))
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert out["Subject"] == "alice@example.test"
    assert out["AssumedRoleUser"]["Arn"].endswith("/saml-admin/enc-boto3")
    assert out["Issuer"] == saml_enc.idp.entity_id
    # Once only.
    refused(saml_enc, saml_idp.b64(xml), "InvalidIdentityToken", "replay: assertion")


def test_an_encrypted_assertion_through_the_aws_cli(saml_enc, tmp_path):
    xml = saml_enc.idp.response_xml(attributes=attrs(session="enc-cli"),
                                    encryption=("aes128-gcm", "rsa-oaep-mgf1p"))
    assert saml_idp.ENC["aes128-gcm"] in xml
    r = e2e.run_aws(
        ["sts", "assume-role-with-saml", "--endpoint-url", saml_enc.url, "--output", "json",
         "--role-arn", ROLE_ADMIN, "--principal-arn", PROVIDER_ARN,
         "--saml-assertion", saml_idp.b64(xml)],
        env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
        home=tmp_path / "home",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AssumedRoleUser"]["Arn"].endswith("/saml-admin/enc-cli")


def test_an_assertion_encrypted_for_the_next_key_is_accepted(saml_enc):
    xml = encrypted_xml(saml_enc, session="enc-next", encrypt_cert=saml_enc.next_enc_cert.read_text())
    assert assume_raw(saml_enc, saml_idp.b64(xml)).status == 200


def test_plain_assertions_are_still_accepted_with_a_decryption_key(saml_enc):
    assert assume_raw(saml_enc, saml_enc.idp.response(attributes=attrs(session="plain"))).status == 200


def test_an_encrypted_assertion_at_the_browser_acs(saml_enc):
    b = Browser()
    req, relay = b.start_login(saml_enc)
    xml = saml_enc.idp.response_xml(name_id="erin@example.test", in_response_to=req.message.id,
                                    attributes={"groups": ["engineers"]}, encryption=GCM)
    assert "EncryptedAssertion" in xml
    r = b.post_response(saml_enc, saml_idp.b64(xml), relay)
    assert r.status == 200, r.text
    assert r.json()["subject"] == "erin@example.test"
    assert [a["permission_set"] for a in r.json()["assignments"]] == ["Engineering"]
    # IdP-initiated, from the provider that allows it: the Response's Issuer finds the provider.
    xml = saml_enc.partner.response_xml(name_id="pat@partner.example.test", attributes={}, encryption=GCM)
    r = Browser().post_response(saml_enc, saml_idp.b64(xml), None)
    assert r.status == 200, r.text
    assert r.json()["provider"] == "partner"
    # Encrypted for a key rolegate does not have: refused at the ACS too, with the reason.
    b = Browser()
    req, relay = b.start_login(saml_enc)
    _, other_cert, _ = saml_idp.make_key_pair(saml_enc.work, "acs-other")
    xml = saml_enc.idp.response_xml(in_response_to=req.message.id, attributes={}, encryption=GCM,
                                    encrypt_cert=other_cert.read_text())
    browser_refused(saml_enc, b.post_response(saml_enc, saml_idp.b64(xml), relay),
                    "no EncryptedKey opens")


def test_pysaml2s_own_encryption_is_3des_cbc_and_refused(saml_enc):
    # What pysaml2 produces when asked to encrypt, unchanged: xmlsec1 with 3DES-CBC content.
    xml = saml_enc.idp.response_xml(attributes=attrs(session="pysaml2-3des"), encrypt=True)
    assert saml_idp.ENC["tripledes-cbc"] in xml and saml_idp.ENC["rsa-oaep-mgf1p"] in xml
    refused(saml_enc, saml_idp.b64(xml), "InvalidIdentityToken",
            "content encryption http://www.w3.org/2001/04/xmlenc#tripledes-cbc is not allowed (AES-GCM only)")


@pytest.mark.parametrize("content,transport,reason", [
    ("aes128-cbc", "rsa-oaep-mgf1p",
     "content encryption http://www.w3.org/2001/04/xmlenc#aes128-cbc is not allowed"),
    ("aes256-gcm", "rsa-1_5",
     "key transport http://www.w3.org/2001/04/xmlenc#rsa-1_5 is not allowed (RSA-OAEP only)"),
])
def test_cbc_and_rsa_1_5_really_encrypted_are_refused(saml_enc, content, transport, reason):
    xml = saml_enc.idp.response_xml(attributes=attrs(session="weak"), encryption=(content, transport))
    assert saml_idp.ENC[content] in xml and saml_idp.ENC[transport] in xml
    refused(saml_enc, saml_idp.b64(xml), "InvalidIdentityToken", reason)


def test_an_encrypted_assertion_in_an_unsigned_response_is_refused(saml_enc):
    xml = saml_enc.idp.response_xml(attributes=attrs(session="unsigned"), encryption=GCM,
                                    sign_response=False, sign_assertion=True)
    assert "EncryptedAssertion" in xml
    refused(saml_enc, saml_idp.b64(xml), "InvalidIdentityToken",
            "an EncryptedAssertion must be inside a signed Response")


def _signed_assertion(srv: SamlServer, session: str) -> tuple[str, str]:
    """(an unsigned pysaml2 Response, its Assertion signed by the IdP and standing alone)."""
    xml = srv.idp.response_xml(attributes=attrs(session=session), sign_response=False,
                               sign_assertion=False)
    signed = saml_idp.sign(xml, "Assertion", srv.idp.key, srv.idp.cert_b64)
    return signed, saml_idp.self_contained(assertion_of(signed), signed)


def _enclose(srv: SamlServer, response: str, assertion: str, encrypted: str, signed: bool = True) -> str:
    """`response` with `assertion` replaced by `encrypted`, signed by the IdP (or not)."""
    xml = response.replace(assertion_of(response), encrypted)
    assert xml != response
    return idp_signs(srv, xml, "Response") if signed else xml


def _flip_ciphertext(xml: str) -> str:
    m = list(re.finditer(r"(<xenc:CipherValue>)([^<]+)(</xenc:CipherValue>)", xml))[-1]
    data = bytearray(base64.b64decode(m.group(2)))
    data[20] ^= 1
    return xml[:m.start(2)] + base64.b64encode(bytes(data)).decode() + xml[m.end(2):]


def test_encrypted_refusals_leave_the_assertion_unused(saml_enc, tmp_path):
    """Every refusal below carries the same signed assertion; afterwards, properly encrypted, it is
    accepted: none of them recorded its ID (nor issued anything)."""
    srv = saml_enc
    response, a = _signed_assertion(srv, "refusals")
    _, other_cert, _ = saml_idp.make_key_pair(tmp_path, "other-sp")
    enc = saml_idp.encrypt_raw(a.encode(), srv.enc_cert)
    nested = a.replace("</ns1:Issuer>", "</ns1:Issuer><ns1:Advice>"
                       + evil_copy(a) + "</ns1:Advice>", 1)
    cases = [
        ("unsigned Response", _enclose(srv, response, a, enc, signed=False),
         "an EncryptedAssertion must be inside a signed Response"),
        ("encrypted for another key", _enclose(srv, response, a, saml_idp.encrypt_raw(a.encode(), other_cert)),
         "no EncryptedKey opens with rolegate's decryption key(s)"),
        ("ciphertext changed, then signed by the IdP", _enclose(srv, response, a, _flip_ciphertext(enc)),
         "the AES-GCM tag does not verify"),
        ("ciphertext changed after signing", _flip_ciphertext(_enclose(srv, response, a, enc)),
         "signature does not verify"),
        ("two Assertions inside", _enclose(srv, response, a, saml_idp.encrypt_raw(
            (a + evil_copy(a)).encode(), srv.enc_cert)),
         "decrypted assertion: not well-formed XML: more than one root element"),
        ("a DOCTYPE inside", _enclose(srv, response, a, saml_idp.encrypt_raw(
            ('<!DOCTYPE a [<!ENTITY x "admin">]>' + a).encode(), srv.enc_cert)),
         "decrypted assertion: DOCTYPE is not allowed"),
        ("an Assertion nested inside", _enclose(srv, response, a, saml_idp.encrypt_raw(
            nested.encode(), srv.enc_cert)),
         "decrypted assertion: a {urn:oasis:names:tc:SAML:2.0:assertion}Assertion element is nested in it"),
        ("the signed Assertion changed inside", _enclose(srv, response, a, saml_idp.encrypt_raw(
            a.replace("alice@example.test", "admin@example.test").encode(), srv.enc_cert)),
         "the decrypted Assertion's signature"),
    ]
    for name, xml, reason in cases:
        ev = refused(srv, saml_idp.b64(xml), "InvalidIdentityToken", reason)
        assert ev["action"] == "AssumeRoleWithSAML", name
    r = assume_raw(srv, saml_idp.b64(_enclose(srv, response, a, enc)))
    assert r.status == 200, r.text
    refused(srv, saml_idp.b64(_enclose(srv, response, a, enc)), "InvalidIdentityToken", "replay: assertion")
