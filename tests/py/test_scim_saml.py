"""Deprovisioning through SAML against a real rolegate and the pysaml2 IdP: a person the directory
set `active: false` over /scim/v2 is refused AssumeRoleWithSAML and the SAML portal sign-in while
the IdP still signs assertions for them, and the audit log names the deprovisioning; someone the
directory never provisioned, and the person once reactivated, are admitted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

import e2e
import saml_idp
from saml_idp import AC_MFA
from test_saml import (PROVIDER, ROLE_ADMIN, Browser, _config, attrs, assume_raw, browser_refused,
                       post_acs_raw, refused)
from test_scim_conformance import SCIM_TOKEN, SCIM_TOKEN_ENV

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ProvisionedSaml:
    """rolegate trusting one pysaml2 IdP (the portal on) whose people a [[scim_clients]] provisions;
    shaped like test_saml.SamlServer for its helpers."""

    def __init__(self, work: Path, admin_token: str):
        self.idp = saml_idp.SamlIdp(work / "idp")
        self.partner = saml_idp.SamlIdp(work / "partner", entity_id="https://partner.example.test/saml")
        base = _config(self.idp, self.partner, work / "data")
        scim = f"""
[portal]

[[scim_clients]]
name = "saml-directory"
provider = "{PROVIDER}"
match = "userName"
token_env = "{SCIM_TOKEN_ENV}"
"""
        self.rg = e2e.Rolegate(work / "rolegate", config_for_port=lambda port: base(port) + scim,
                               env={e2e.ADMIN_TOKEN_ENV: admin_token, SCIM_TOKEN_ENV: SCIM_TOKEN})
        md = e2e.http("GET", f"{self.rg.url}/saml/metadata")
        assert md.status == 200, md.text
        self.idp.trust_sp(md.text)
        self.partner.trust_sp(md.text)

    @property
    def url(self) -> str:
        return self.rg.url

    @property
    def acs(self) -> str:
        return f"{self.rg.url}/saml/acs"

    def scim(self, method: str, path: str, body=None, status: int = 200) -> dict:
        r = requests.request(method, f"{self.url}/scim/v2{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
        assert r.status_code == status, r.text
        return r.json()

    def set_active(self, uid: str, active: bool) -> None:
        out = self.scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"active": active}}]})
        assert out["active"] is active


@pytest.fixture(scope="module")
def srv(rolegate_binary, admin_token, tmp_path_factory):
    s = ProvisionedSaml(tmp_path_factory.mktemp("scim-saml"), admin_token)
    yield s
    code = s.rg.stop()
    assert code == 0, f"rolegate exited with {code}\n{s.rg.log_tail()}"


def assume(srv, name_id: str) -> e2e.HttpResponse:
    return assume_raw(srv, srv.idp.response(name_id=name_id, attributes=attrs(session="hana-s")))


def portal_sign_in(srv, name_id: str) -> tuple[int, dict, bytes]:
    b = Browser()
    req, relay = b.start_login(srv)
    resp = srv.idp.response(name_id=name_id, in_response_to=req.message.id,
                            attributes={"groups": ["engineers"]}, authn_class=AC_MFA)
    status, headers, body = post_acs_raw(srv, b, resp, relay)
    return status, {k.lower(): v for k, v in headers}, body


def test_a_person_set_inactive_is_refused_assume_role_with_saml_and_the_saml_portal(srv):
    name_id = "hana@example.test"
    uid = srv.scim("POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                      "userName": name_id, "active": True}, status=201)["id"]
    # Provisioned and active: admitted both ways.
    assert assume(srv, name_id).status == 200
    status, _, body = portal_sign_in(srv, name_id)
    assert status == 303, body

    srv.set_active(uid, False)
    ev = refused(srv, srv.idp.response(name_id=name_id, attributes=attrs(session="hana-s")),
                 "AccessDenied", "deprovisioned", status=403)
    assert ev["action"] == "AssumeRoleWithSAML" and ev.get("subject", name_id) == name_id, ev
    assert "by SCIM client saml-directory" in ev["reason"], ev
    b = Browser()
    req, relay = b.start_login(srv)
    resp = srv.idp.response(name_id=name_id, in_response_to=req.message.id,
                            attributes={"groups": ["engineers"]}, authn_class=AC_MFA)
    r = b.post_response(srv, resp, relay)
    ev = browser_refused(srv, r, "deprovisioned")
    assert "by SCIM client saml-directory" in ev["reason"], ev
    assert "__Host-rolegate-session" not in r.headers.get("set-cookie", "")

    # Someone the directory never provisioned is treated as without SCIM.
    assert assume(srv, "ines@example.test").status == 200
    # Reactivated: new sign-ins are admitted again.
    srv.set_active(uid, True)
    # The revocation of the deactivation holds sign-ins begun up to its second.
    time.sleep(1.1)
    assert assume(srv, name_id).status == 200
    status, _, body = portal_sign_in(srv, name_id)
    assert status == 303, body
    # Deleted: refused again, the reason says so.
    r = requests.delete(f"{srv.url}/scim/v2/Users/{uid}", timeout=10,
                        headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
    assert r.status_code == 204, r.text
    refused(srv, srv.idp.response(name_id=name_id, attributes=attrs(session="hana-s")),
            "AccessDenied", "deprovisioned", status=403)
