"""SAML provider metadata fetched from a URL, as an IdP publishes it: a signing certificate rotated at
the IdP (the old and the new one side by side, then the old one withdrawn) reaches rolegate on SIGHUP,
and a metadata URL that fails or serves garbage leaves the last good metadata in force.

The IdPs are pysaml2 (Debian's xmlsec1 signs); the metadata is served over loopback http by a small
server in this process; calls go through AssumeRoleWithSAML.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading
import time
import urllib.parse

import pytest

import e2e
import saml_idp

ENTITY = "https://rotating.example.test/saml"
PROVIDER = "corp"
PROVIDER_ARN = f"arn:aws:iam::{e2e.ACCOUNT}:saml-provider/{PROVIDER}"
ROLE = f"arn:aws:iam::{e2e.ACCOUNT}:role/saml-rotating"
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
NAME_ATTR = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"


class MetadataServer:
    """Serves `body` with `status` at /metadata.xml on 127.0.0.1, and counts the fetches."""

    def __init__(self):
        self.body = b""
        self.status = 200
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.fetches += 1
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metadata.xml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, *idps: saml_idp.SamlIdp) -> None:
        self.status = 200
        self.body = saml_idp.idp_metadata(ENTITY, idps[0].sso_url, [i.cert_b64 for i in idps]).encode()

    def stop(self) -> None:
        self.httpd.shutdown()


def config(metadata_url: str, data_dir) -> callable:
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN},
        "Action": "sts:AssumeRoleWithSAML",
        "Condition": {"StringEquals": {"saml:iss": ENTITY}}}]})
    return e2e.rolegate_config(
        data_dir,
        f"""\
[[saml_providers]]
name = "{PROVIDER}"
metadata_url = "{metadata_url}"
allow_http = true
refresh_minutes = 60

[[roles]]
account = "{e2e.ACCOUNT}"
name = "saml-rotating"
trust_policy = '''{trust}'''""",
    )


def assume(rg: e2e.Rolegate, idp: saml_idp.SamlIdp) -> e2e.HttpResponse:
    assertion = idp.response(name_id="rita@example.test",
                             attributes={ROLE_ATTR: [f"{ROLE},{PROVIDER_ARN}"], NAME_ATTR: ["rita"]})
    form = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": ROLE,
            "PrincipalArn": PROVIDER_ARN, "SAMLAssertion": assertion}
    return e2e.http("POST", rg.url + "/", urllib.parse.urlencode(form),
                    {"Content-Type": "application/x-www-form-urlencoded"})


def accepted(rg: e2e.Rolegate, idp: saml_idp.SamlIdp) -> bool:
    r = assume(rg, idp)
    if r.status == 200:
        assert b"<SecretAccessKey>" in r.body
        return True
    assert b"SecretAccessKey" not in r.body, r.text
    code, _, request_id = e2e.sts_error(r.body)
    assert (r.status, code) == (400, "InvalidIdentityToken"), r.text
    ev = rg.audit_event(request_id)
    assert ev["decision"] == "deny" and "access_key_id" not in ev, ev
    return False


def after_sighup(rg: e2e.Rolegate, md: MetadataServer, check, what: str) -> None:
    """Sends SIGHUP, then waits (at most 10 s) until the metadata was fetched again and `check()`
    holds."""
    before = md.fetches
    rg.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if md.fetches > before and check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what}: not after SIGHUP (fetches {before} -> {md.fetches})\n{rg.log_tail()}")


@pytest.fixture
def rotating(rolegate_binary, admin_token, tmp_path):
    old = saml_idp.SamlIdp(tmp_path / "old", entity_id=ENTITY)
    new = saml_idp.SamlIdp(tmp_path / "new", entity_id=ENTITY)
    md = MetadataServer()
    md.publish(old)
    rg = e2e.Rolegate(tmp_path / "rolegate", config_for_port=config(md.url, tmp_path / "data"),
                      env={e2e.ADMIN_TOKEN_ENV: admin_token})
    sp = e2e.http("GET", f"{rg.url}/saml/metadata")
    assert sp.status == 200, sp.text
    old.trust_sp(sp.text)
    new.trust_sp(sp.text)
    yield rg, md, old, new
    code = rg.stop()
    md.stop()
    assert code == 0, f"rolegate exited with {code}\n{rg.log_tail()}"


def test_a_certificate_rotated_at_the_idp_is_taken_up_on_sighup(rotating):
    rg, md, old, new = rotating
    assert md.fetches == 1, "fetched once at start-up"
    assert accepted(rg, old)
    assert not accepted(rg, new), "a key the metadata does not name signs nothing"

    # The IdP publishes the new certificate beside the old one: both verify.
    md.publish(old, new)
    after_sighup(rg, md, lambda: accepted(rg, new), "the new certificate")
    assert accepted(rg, old), "the old certificate still verifies during the overlap"

    # The old certificate is withdrawn: what it signs is refused from now on.
    md.publish(new)
    after_sighup(rg, md, lambda: not accepted(rg, old), "withdrawing the old certificate")
    assert accepted(rg, new)


def test_a_failing_metadata_url_keeps_the_last_good_metadata(rotating):
    rg, md, old, new = rotating
    md.publish(new)
    after_sighup(rg, md, lambda: accepted(rg, new), "the new certificate")

    md.status, md.body = 500, b"upstream error"
    after_sighup(rg, md, lambda: True, "a refresh answered with HTTP 500")
    md.status, md.body = 200, b"<EntityDescriptor"
    after_sighup(rg, md, lambda: True, "a refresh answered with a broken document")
    assert accepted(rg, new), "the last good metadata is still in force"
    assert not accepted(rg, old)
    log = rg.log_tail()
    assert "keeping the last good metadata" in log, log
