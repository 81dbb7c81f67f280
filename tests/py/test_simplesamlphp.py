"""rolegate's SAML service provider against SimpleSAMLphp 1.19 (Debian's package) as the identity
provider, each with its own keys and configuration made for this run.

Metadata goes both ways: SimpleSAMLphp reads rolegate's GET /saml/metadata with its own metadata
parser (saml20-sp-remote), rolegate fetches SimpleSAMLphp's /saml2/idp/metadata.php as a
[[saml_providers]] metadata_url. The test users sign in at SimpleSAMLphp's real login form
(example-userpass) through a cookie-keeping HTTP client, SP-initiated from rolegate's
/saml/<provider>/login and IdP-initiated from SimpleSAMLphp's SSOService.php?spentityid=…; the
SAMLResponse SimpleSAMLphp posts is given to the ACS (portal sign-in) or to AssumeRoleWithSAML.
Headless Chromium signs in both ways too (tests/node/simplesamlphp-browser.mjs), ending on the portal.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.parse
import zlib
from pathlib import Path

import botocore.exceptions
import pytest

import e2e
import simplesamlphp_idp as ssp
from simplesamlphp_idp import NAME_ATTR, ROLE_ATTR, Browser, User

PROVIDER = "ssp"
PROVIDER_ARN = f"arn:aws:iam::{e2e.ACCOUNT}:saml-provider/{PROVIDER}"
ROLE = f"arn:aws:iam::{e2e.ACCOUNT}:role/ssp-engineers"
SESSION_COOKIE = "__Host-rolegate-session"

pytestmark = pytest.mark.skipif(ssp.available() is not None, reason=ssp.available() or "")


def users() -> dict[str, User]:
    """alice: an engineer whose attributes name the role to assume; bob: an operator without one;
    carol: a visitor, in no group a permission set is assigned to."""
    return {
        "alice": User("alice-pass", {
            "uid": ["alice"],
            "mail": ["alice@example.test"],
            "groups": ["staff", "engineers"],
            ROLE_ATTR: [f"{ROLE},{PROVIDER_ARN}"],
            NAME_ATTR: ["alice"],
        }),
        "bob": User("bob-pass", {
            "uid": ["bob"],
            "groups": ["operators"],
        }),
        "carol": User("carol-pass", {
            "uid": ["carol"],
            "groups": ["visitors"],
        }),
    }


def rolegate_config(idp: ssp.SimpleSamlPhp, data_dir: Path, saml_extra: str = ""):
    read = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}'
    engineering = e2e.permission_set("Engineering", policy=("read", read), provider=PROVIDER, group="engineers")
    ops = e2e.permission_set("Ops", policy=("all", e2e.EVERYTHING), provider=PROVIDER, group="operators")

    def tables(port: int) -> str:
        acs = f"http://127.0.0.1:{port}/saml/acs"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN},
            "Action": "sts:AssumeRoleWithSAML",
            "Condition": {"StringEquals": {"saml:aud": acs, "saml:iss": idp.entity_id,
                                           "saml:sub_type": "persistent"},
                          "ForAnyValue:StringEquals": {"saml:groups": "engineers"}}}]})
        return f"""\
[saml]
{saml_extra}

[[saml_providers]]
name = "{PROVIDER}"
metadata_url = "{idp.metadata_url}"
allow_http = true
allow_idp_initiated = true
groups_attribute = "groups"
email_attribute = "mail"

[[roles]]
account = "{e2e.ACCOUNT}"
name = "ssp-engineers"
trust_policy = '''{trust}'''

[directory]
account = "{e2e.ACCOUNT}"

{engineering}

{ops}

[portal]
"""

    return e2e.rolegate_config(data_dir, tables)


class Pair:
    """SimpleSAMLphp and a rolegate trusting each other through their metadata."""

    def __init__(self, work: Path, admin_token: str, saml_extra: str = "", sp_extra: dict | None = None):
        self.idp = ssp.SimpleSamlPhp(work / "simplesamlphp", users())
        try:
            self.rg = e2e.Rolegate(work / "rolegate", config_for_port=rolegate_config(
                self.idp, work / "data", saml_extra), env={e2e.ADMIN_TOKEN_ENV: admin_token})
        except Exception:
            self.idp.stop()
            raise
        md = e2e.http("GET", f"{self.rg.url}/saml/metadata")
        assert md.status == 200, md.text
        self.sp_metadata = md.text
        self.entity_id = f"{self.rg.url}/saml/metadata"
        self.acs = f"{self.rg.url}/saml/acs"
        self.idp.trust_sp("rolegate", md.text, sp_extra)

    @property
    def url(self) -> str:
        return self.rg.url

    def idp_initiated_url(self) -> str:
        return f"{self.idp.sso_url}?" + urllib.parse.urlencode({"spentityid": self.entity_id})

    def stop(self) -> None:
        codes = (self.rg.stop(), self.idp.stop())
        assert codes[0] == 0, f"rolegate exited with {codes[0]}\n{self.rg.log_tail()}"


@pytest.fixture(scope="session")
def pair(rolegate_binary, admin_token, tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("simplesamlphp"), admin_token)
    yield p
    p.stop()


def decoded(form: ssp.PostedForm) -> str:
    return base64.b64decode(form.fields["SAMLResponse"]).decode()


def assume(pair: Pair, assertion: str, role: str = ROLE) -> e2e.HttpResponse:
    form = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": role,
            "PrincipalArn": PROVIDER_ARN, "SAMLAssertion": assertion}
    return e2e.http("POST", pair.url + "/", urllib.parse.urlencode(form),
                    {"Content-Type": "application/x-www-form-urlencoded"})


def refused(pair: Pair, assertion: str, code: str, reason: str, status: int = 400) -> dict:
    """The call is refused with `code`, issues nothing, and is audited with `reason`."""
    r = assume(pair, assertion)
    assert r.status == status, (r.status, r.text)
    assert b"SecretAccessKey" not in r.body and b"SessionToken" not in r.body
    got, _, request_id = e2e.sts_error(r.body)
    assert got == code, r.text
    ev = pair.rg.audit_event(request_id)
    assert ev["decision"] == "deny" and ev.get("error_code") == code, ev
    assert "access_key_id" not in ev, ev
    assert reason in ev.get("reason", ""), (reason, ev.get("reason"))
    return ev


def post_acs(pair: Pair, b: Browser, form: ssp.PostedForm) -> e2e.HttpResponse:
    """Submits SimpleSAMLphp's auto-posting form as the browser would (its cookies along)."""
    assert form.action == pair.acs, form.action
    return b.request("POST", form.action, form.fields)


def session_cookie(r: e2e.HttpResponse) -> str | None:
    """The portal session cookie set by a response. It is `Secure`, so a cookie jar on plain-http
    loopback would not send it back: the tests carry it by hand."""
    m = re.search(rf"{SESSION_COOKIE}=([^;,\s]+)", r.headers.get("set-cookie", ""))
    return m.group(1) if m else None


def portal_page(pair: Pair, session: str) -> str:
    r = e2e.http("GET", f"{pair.url}/portal", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    assert r.status == 200, (r.status, r.text)
    return r.text


def sp_settings(pair: Pair) -> dict:
    """rolegate's saml20-sp-remote entry as SimpleSAMLphp's own metadata handler gives it."""
    php = (
        "require '/usr/share/simplesamlphp/lib/_autoload.php';"
        "$m = \\SimpleSAML\\Metadata\\MetaDataStorageHandler::getMetadataHandler();"
        f"echo json_encode($m->getMetaData('{pair.entity_id}', 'saml20-sp-remote'));"
    )
    out = subprocess.run(["php", "-r", php], capture_output=True, text=True, timeout=30,
                         env=e2e.base_env(SIMPLESAMLPHP_CONFIG_DIR=str(pair.idp.workdir / "config")))
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------------
# 1. Metadata both ways


def test_rolegate_reads_simplesamlphps_idp_metadata(pair):
    md = pair.idp.metadata()
    assert f'entityID="{pair.idp.entity_id}"' in md
    # The login starts at the SSO URL of that metadata, with the HTTP-Redirect binding.
    r = Browser().request("GET", f"{pair.url}/saml/{PROVIDER}/login")
    assert r.status == 302, r.text
    loc = urllib.parse.urlsplit(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == pair.idp.sso_url
    q = urllib.parse.parse_qs(loc.query)
    request = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()
    assert f'AssertionConsumerServiceURL="{pair.acs}"' in request, request
    assert f">{pair.entity_id}</" in request, request


def test_simplesamlphp_reads_rolegates_sp_metadata(pair):
    """SimpleSAMLphp's own parser turns rolegate's metadata into its saml20-sp-remote entry, with
    rolegate's ACS."""
    sp = sp_settings(pair)
    assert sp["entityid"] == pair.entity_id
    acs = sp["AssertionConsumerService"]
    assert [a["Location"] for a in acs] == [pair.acs], acs
    assert acs[0]["Binding"] == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert sp["NameIDFormat"] == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", sp


# ---------------------------------------------------------------------------------------------
# 2. AssumeRoleWithSAML with an assertion SimpleSAMLphp issued


def test_assume_role_with_saml_through_boto3_with_a_simplesamlphp_assertion(pair):
    form = Browser().sign_in(pair.idp_initiated_url(), "alice", "alice-pass")
    xml = decoded(form)
    assert pair.idp.entity_id in xml and "alice" in xml
    sts = e2e.sts_client(pair.url)
    out = sts.assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER_ARN,
                                    SAMLAssertion=form.fields["SAMLResponse"], DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ssp-engineers/alice"
    assert out["Issuer"] == pair.idp.entity_id
    assert out["Audience"] == pair.acs
    assert out["SubjectType"] == "persistent"
    # The persistent NameID SimpleSAMLphp derives from uid (a hash), not the uid itself.
    assert re.fullmatch(r"[0-9a-f]{40}", out["Subject"]), out["Subject"]
    who = e2e.sts_client(pair.url, creds).get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]

    # The same assertion again: refused as a replay, nothing issued.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER_ARN,
                                  SAMLAssertion=form.fields["SAMLResponse"])
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
    refused(pair, form.fields["SAMLResponse"], "InvalidIdentityToken", "replay: assertion")


def test_a_tampered_simplesamlphp_assertion_is_refused(pair):
    form = Browser().sign_in(pair.idp_initiated_url(), "bob", "bob-pass")
    xml = decoded(form)
    # bob claims alice's role and group: the signed content changed.
    assert "<saml:AttributeValue xsi:type=\"xs:string\">operators</saml:AttributeValue>" in xml, xml
    evil = xml.replace(">operators<", ">engineers<")
    refused(pair, base64.b64encode(evil.encode()).decode(), "InvalidIdentityToken",
            "signature does not verify with the provider's certificates")


def test_a_user_without_the_role_attribute_gets_no_credentials(pair):
    form = Browser().sign_in(pair.idp_initiated_url(), "bob", "bob-pass")
    refused(pair, form.fields["SAMLResponse"], "AccessDenied",
            f"attribute does not contain {ROLE},{PROVIDER_ARN} (it has 0 value(s))", status=403)


# ---------------------------------------------------------------------------------------------
# 3. Browser sign-in ending on the portal


def test_sp_initiated_sign_in_ends_on_the_portal_with_the_groups_permission_sets(pair):
    b = Browser()
    form = b.sign_in(f"{pair.url}/saml/{PROVIDER}/login", "alice", "alice-pass")
    assert form.fields.get("RelayState"), form.fields
    assert "InResponseTo=" in decoded(form)
    r = post_acs(pair, b, form)
    assert r.status == 303, (r.status, r.text)
    assert r.headers["location"] == "/portal"
    session = session_cookie(r)
    assert session, r.headers
    page = portal_page(pair, session)
    assert "Engineering" in page and e2e.ACCOUNT in page, page
    assert "Ops" not in page, page
    ev = pair.rg.audit_event(r.headers["x-request-id"])
    assert ev["action"] == "saml:SignIn" and ev["decision"] == "allow", ev
    # The Response answered this browser's request once: posting it again is refused.
    again = post_acs(pair, b, form)
    assert again.status == 403 and session_cookie(again) is None, again.text


def test_idp_initiated_sign_in_ends_on_the_portal(pair):
    b = Browser()
    form = b.sign_in(pair.idp_initiated_url(), "bob", "bob-pass")
    assert "InResponseTo=" not in decoded(form)
    r = post_acs(pair, b, form)
    assert r.status == 303, (r.status, r.text)
    session = session_cookie(r)
    assert session, r.headers
    page = portal_page(pair, session)
    assert "Ops" in page and "Engineering" not in page, page


def test_a_second_login_reuses_the_simplesamlphp_session(pair):
    b = Browser()
    b.sign_in(pair.idp_initiated_url(), "alice", "alice-pass")
    # Signed in at the IdP already: the SP-initiated login goes straight to the Response.
    form = b.sign_in(f"{pair.url}/saml/{PROVIDER}/login", "unused", "unused")
    r = post_acs(pair, b, form)
    assert r.status == 303, (r.status, r.text)
    assert "Engineering" in portal_page(pair, session_cookie(r))


# ---------------------------------------------------------------------------------------------
# 4. rolegate with a signing and a decryption key: SimpleSAMLphp checks the signed AuthnRequests
# (AuthnRequestsSigned in rolegate's metadata) and encrypts assertions for rolegate's certificate


AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"


@pytest.fixture(scope="module")
def keyed(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("simplesamlphp-keyed")
    (work / "keys").mkdir()
    sign_key, sign_cert = ssp.make_key_pair(work / "keys", "sp-sign", "/CN=rolegate-sp-signing")
    dec_key, dec_cert = ssp.make_key_pair(work / "keys", "sp-enc", "/CN=rolegate-sp-encryption")
    extra = (f'signing_key_file = "{sign_key}"\nsigning_cert_file = "{sign_cert}"\n'
             f'decryption_key_file = "{dec_key}"\ndecryption_cert_file = "{dec_cert}"')
    p = Pair(work, admin_token, saml_extra=extra)
    yield p
    p.stop()


def test_simplesamlphp_verifies_rolegates_signed_authn_requests(keyed):
    sp = sp_settings(keyed)
    assert sp["validate.authnrequest"] is True, sp
    assert any(k.get("signing") for k in sp["keys"]) and any(k.get("encryption") for k in sp["keys"]), sp
    keyed.idp.trust_sp("rolegate", keyed.sp_metadata)  # no encryption asked for here
    b = Browser()
    r = b.request("GET", f"{keyed.url}/saml/{PROVIDER}/login")
    assert r.status == 302, r.text
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["location"]).query)
    assert q["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"], q
    # The signature SimpleSAMLphp checks is rolegate's: one changed byte and it refuses the request.
    sig = bytearray(base64.b64decode(q["Signature"][0]))
    sig[10] ^= 1
    forged = r.headers["location"].replace(
        urllib.parse.urlencode({"Signature": q["Signature"][0]}),
        urllib.parse.urlencode({"Signature": base64.b64encode(bytes(sig)).decode()}))
    assert forged != r.headers["location"]
    _, bad = Browser().follow(forged)
    assert "SAMLResponse" not in bad.text and "password" not in bad.text, bad.text[:2000]
    assert "signature" in bad.text.lower(), bad.text[:2000]
    # The real one leads to the login form and on to the portal.
    form = b.sign_in(r.headers["location"], "alice", "alice-pass")
    r = post_acs(keyed, b, form)
    assert r.status == 303, (r.status, r.text)
    assert "Engineering" in portal_page(keyed, session_cookie(r))


def test_simplesamlphp_encrypts_with_aes_cbc_which_rolegate_refuses(keyed):
    """SimpleSAMLphp 1.19 encrypts for the SP's certificate with RSA-OAEP (MGF1P) key transport and
    always AES-128-CBC content (SAML2\\EncryptedAssertion::setAssertion), whatever EncryptionMethod
    the SP's metadata lists; rolegate takes AES-GCM only and says so."""
    keyed.idp.trust_sp("rolegate", keyed.sp_metadata, {"assertion.encryption": True})
    try:
        form = Browser().sign_in(keyed.idp_initiated_url(), "alice", "alice-pass")
        xml = decoded(form)
        assert "EncryptedAssertion" in xml and AES128_CBC in xml and RSA_OAEP_MGF1P in xml, xml
        assert "<saml:Assertion" not in xml and "engineers" not in xml, "the assertion is hidden"
        reason = f"content encryption {AES128_CBC} is not allowed (AES-GCM only)"
        refused(keyed, form.fields["SAMLResponse"], "InvalidIdentityToken", reason)
        # At the browser ACS: the same refusal, no portal session.
        b = Browser()
        form = b.sign_in(keyed.idp_initiated_url(), "alice", "alice-pass")
        r = post_acs(keyed, b, form)
        assert r.status == 403 and session_cookie(r) is None, (r.status, r.text)
        ev = keyed.rg.audit_event(r.headers["x-request-id"])
        assert ev["action"] == "saml:SignIn" and ev["decision"] == "deny", ev
        assert reason in ev.get("reason", ""), ev
    finally:
        keyed.idp.trust_sp("rolegate", keyed.sp_metadata)


def test_simplesamlphps_aes_gcm_needs_a_shared_key_which_rolegate_refuses(keyed):
    """SimpleSAMLphp produces AES-GCM only with a pre-shared symmetric key (`sharedkey`), with no
    EncryptedKey at all: rolegate has no such key and refuses the assertion."""
    keyed.idp.trust_sp("rolegate", keyed.sp_metadata, {
        "assertion.encryption": True, "sharedkey": "00112233445566778899aabbccddeeff" * 2,
        "sharedkey_algorithm": AES256_GCM})
    try:
        form = Browser().sign_in(keyed.idp_initiated_url(), "alice", "alice-pass")
        xml = decoded(form)
        assert "EncryptedAssertion" in xml and AES256_GCM in xml and "EncryptedKey" not in xml, xml
        r = assume(keyed, form.fields["SAMLResponse"])
        assert r.status == 400 and b"SecretAccessKey" not in r.body, r.text
        code, _, request_id = e2e.sts_error(r.body)
        assert code == "InvalidIdentityToken"
        ev = keyed.rg.audit_event(request_id)
        assert ev["decision"] == "deny" and "EncryptedKey" in ev.get("reason", ""), ev
    finally:
        keyed.idp.trust_sp("rolegate", keyed.sp_metadata)


# ---------------------------------------------------------------------------------------------
# 5. Signing key rotation at SimpleSAMLphp, reaching rolegate through the metadata URL


def metadata_updates(pair: Pair) -> list[int]:
    """The signing-certificate count of each metadata update rolegate logged, in order."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", pair.rg.log.read_text(errors="replace"))
    return [int(n) for n in re.findall(r"saml metadata updated provider=ssp certificates=(\d+)", text)]


def refresh(pair: Pair, certificates: int) -> None:
    """SIGHUP to rolegate, then wait (at most 10 s) until it logged a metadata update with this
    many signing certificates."""
    import signal
    import time

    before = len(metadata_updates(pair))
    pair.rg.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        updates = metadata_updates(pair)
        if len(updates) > before:
            assert updates[-1] == certificates, updates
            return
        time.sleep(0.05)
    pytest.fail(f"no metadata update after SIGHUP\n{pair.rg.log_tail()}\n{pair.idp.log_tail()}")


@pytest.fixture(scope="module")
def rotating(rolegate_binary, admin_token, tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("simplesamlphp-rotation"), admin_token)
    yield p
    p.stop()


def test_a_signing_key_rotated_at_simplesamlphp_reaches_rolegate_through_its_metadata(rotating):
    idp = rotating.idp
    old_cert_b64 = "".join(idp.cert_path.read_text().strip().splitlines()[1:-1])
    new_key, new_cert = ssp.make_key_pair(idp.workdir / "certs", "idp-next", "/CN=simplesamlphp-idp-next")
    new_cert_b64 = "".join(new_cert.read_text().strip().splitlines()[1:-1])

    def sign_in() -> str:
        return Browser().sign_in(rotating.idp_initiated_url(), "alice", "alice-pass").fields["SAMLResponse"]

    # 1. The IdP publishes the next certificate beside the current one; rolegate refreshes.
    idp.write_idp_metadata(next_cert=new_cert)
    md = idp.metadata()
    assert old_cert_b64 in md and new_cert_b64 in md
    refresh(rotating, 2)
    signed_by_old = sign_in()  # kept unused for step 3
    assert assume(rotating, sign_in()).status == 200

    # 2. The IdP signs with the next key and withdraws the old certificate. rolegate has not
    # refreshed yet, but knows the new certificate already: no sign-in fails during the switch.
    idp.key_path, idp.cert_path = new_key, new_cert
    idp.write_idp_metadata()
    md = idp.metadata()
    assert new_cert_b64 in md and old_cert_b64 not in md
    r = assume(rotating, sign_in())
    assert r.status == 200, r.text

    # 3. After the refresh the old certificate is gone: an assertion the old key signed (unused,
    # still fresh) is refused, while new ones go on being accepted.
    refresh(rotating, 1)
    refused(rotating, signed_by_old, "InvalidIdentityToken",
            "signature does not verify with the provider's certificates")
    b = Browser()
    form = b.sign_in(f"{rotating.url}/saml/{PROVIDER}/login", "alice", "alice-pass")
    r = post_acs(rotating, b, form)
    assert r.status == 303, (r.status, r.text)
    assert "Engineering" in portal_page(rotating, session_cookie(r))


# ---------------------------------------------------------------------------------------------
# 3b. The same sign-in in Chromium: rolegate's sign-in page, SimpleSAMLphp's form, its
# auto-submitting POST page, the portal, command line access


ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "simplesamlphp"


def chromium(pair: Pair, user: str, *args: str) -> dict:
    """tests/node/simplesamlphp-browser.mjs signing `user` in: its JSON line."""
    node_dir = e2e.node_dir()
    script = node_dir / "simplesamlphp-browser.mjs"
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("/usr/bin/chromium is missing: run scripts/test --install-only")
    r = subprocess.run(
        ["node", str(script), "--url", pair.url, "--provider", PROVIDER, "--user", user,
         "--password", f"{user}-pass", "--out", str(ARTIFACTS), *args],
        capture_output=True, text=True, timeout=120, cwd=node_dir, env=e2e.base_env(),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def assert_engineering_credentials(pair: Pair, out: dict) -> None:
    c = out["credentials"]
    who = e2e.sts_client(pair.url, {"AccessKeyId": c["AWS_ACCESS_KEY_ID"],
                                    "SecretAccessKey": c["AWS_SECRET_ACCESS_KEY"],
                                    "SessionToken": c["AWS_SESSION_TOKEN"]}).get_caller_identity()
    assert who["Arn"].startswith(f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/RolegateSSO_Engineering/"), who


def test_chromium_signs_in_through_simplesamlphp_to_the_portal(pair):
    out = chromium(pair, "alice", "--permission-set", "Engineering")
    assert out["portal"].startswith(f"{pair.url}/portal"), out
    assert "Engineering" in out["permission_sets"] and "Ops" not in out["permission_sets"], out
    assert_engineering_credentials(pair, out)
    for name in ["1-rolegate-sign-in", "2-simplesamlphp-login", "3-portal-home", "4-command-line-access"]:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000


def test_chromium_signs_in_idp_initiated_from_simplesamlphp_to_the_portal(pair):
    """SimpleSAMLphp's IdP-initiated address in Chromium: its login form, its auto-submitting POST to
    rolegate's ACS (no AuthnRequest, no RelayState from rolegate), the portal with the permission
    set alice's groups give, and command line access to it."""
    out = chromium(pair, "alice", "--permission-set", "Engineering",
                   "--idp-initiated", pair.idp_initiated_url())
    assert out["portal"] == f"{pair.url}/portal", out
    assert out["sets"] == ["Engineering in e2e"], out  # e2e: the account's name in rolegate_config
    assert "Ops" not in out["permission_sets"], out
    assert_engineering_credentials(pair, out)
    for name in ["2-simplesamlphp-login", "3-portal-home", "4-command-line-access"]:
        assert (ARTIFACTS / f"idp-alice-{name}.png").stat().st_size > 1000


def test_chromium_idp_initiated_sign_in_of_a_user_without_permission_sets(pair):
    """carol's groups match no assignment rule: signed in, her portal lists no permission set."""
    out = chromium(pair, "carol", "--idp-initiated", pair.idp_initiated_url())
    assert out["portal"] == f"{pair.url}/portal", out
    assert out["sets"] == [], out
    assert "No permission set is assigned to you." in out["permission_sets"], out
    assert "Engineering" not in out["permission_sets"] and "Ops" not in out["permission_sets"], out
