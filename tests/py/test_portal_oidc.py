"""Portal sign-in through a real OpenID provider (oidc-provider, tests/node/oidc-idp.mjs): its login
form in headless Chromium lands on the portal listing what the groups claim assigns; the refusals of
the callback (no pending login, reused state, wrong `iss`, a state cookie from elsewhere, the IdP's
`error`), each with its status, its audit reason and no session; the IdP-down page; and the step-up
round trip (a permission set that needs fresh MFA → sign in again with prompt=login, max_age and
acr_values → MFA counted from the provider's trusted amr)."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest

import e2e

ACCOUNT = e2e.ACCOUNT
PROVIDER = "testidp"
CALLBACK = f"/login/oidc/{PROVIDER}/callback"
BINDING = "__Host-rolegate-oidc"
SESSION = "__Host-rolegate-session"
SECRET_ENV = "ROLEGATE_TEST_OIDC_CLIENT_SECRET"


def config(idp: e2e.Idp, data_dir: Path, down_port: int):
    return e2e.rolegate_config(
        data_dir,
        f"""\
[[oidc_providers]]
issuer = "{idp.issuer}"
audiences = ["rolegate-test"]
allow_http = true
name = "{PROVIDER}"
mfa_amr = ["otp"]
[oidc_providers.login]
client_id = "rolegate-portal"
client_secret_env = "{SECRET_ENV}"
scopes = ["openid", "email", "profile", "groups"]
userinfo = true
display_name = "Test IdP"
step_up_acr_values = ["urn:rolegate:test:mfa"]

[[oidc_providers]]
issuer = "http://127.0.0.1:{down_port}"
audiences = ["rolegate-test"]
allow_http = true
name = "downidp"
[oidc_providers.login]
client_id = "rolegate-portal"
display_name = "Unreachable IdP"
""",
        e2e.permission_set("Dev", provider=PROVIDER, group="engineers"),
        e2e.permission_set("Ops", 'mfa = "required"\nmfa_max_age_minutes = 15', provider=PROVIDER,
                           group="engineers"),
        "[portal]",
        account_name="portal",
    )


@pytest.fixture(scope="module")
def oidc_idp(tmp_path_factory):
    provider = e2e.Idp(tmp_path_factory.mktemp("portal-idp"),
                       redirect_uris=[f"http://127.0.0.1{CALLBACK}"])
    yield provider
    assert provider.stop() == 0


@pytest.fixture(scope="module")
def portal(oidc_idp, rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("portal-oidc")
    srv = e2e.Rolegate(work, config_for_port=config(oidc_idp, work / "data", e2e.free_port()),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token, SECRET_ENV: "rolegate-portal-secret"})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


class Agent:
    """A browser without JavaScript: cookies kept per port (paths and flags ignored, as both servers
    are on 127.0.0.1 over plain http), Origin on POSTs, redirects followed only when asked."""

    def __init__(self):
        self.jar: dict[int, dict[str, str]] = {}

    def cookies(self, port: int) -> dict[str, str]:
        return self.jar.setdefault(port, {})

    def request(self, method: str, url: str, form: dict | None = None):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
        jar = self.cookies(u.port)
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
            headers["origin"] = f"{u.scheme}://{u.netloc}"
        path = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        e2e.keep_cookies(jar, resp.getheaders())
        conn.close()
        location = resp.getheader("location")
        if location:
            location = urllib.parse.urljoin(url, location)
        return resp.status, location, text, resp.getheaders()

    def follow(self, url: str, stop_at: str):
        """GETs `url` and follows redirects until one leads to a URL starting with `stop_at`, which
        is returned without being requested; or returns the page that is not a redirect."""
        for _ in range(10):
            if url.startswith(stop_at):
                return url, None
            status, location, text, _ = self.request("GET", url)
            if status not in (302, 303) or not location:
                return url, (status, text)
            url = location
        raise AssertionError("too many redirects")


def start(agent: Agent, portal, query: str = "") -> str:
    """GET /login/oidc/testidp: the redirect to the provider's authorization endpoint."""
    status, location, text, _ = agent.request("GET", f"{portal.url}/login/oidc/{PROVIDER}{query}")
    assert status == 303, text
    assert BINDING in agent.cookies(portal.port)
    return location


def idp_login(agent: Agent, portal, authorize_url: str, user="alice", password=None, otp="",
              cancel=False) -> str:
    """Runs the provider's login form; returns the callback URL it redirects to (not requested)."""
    url, page = agent.follow(authorize_url, f"{portal.url}{CALLBACK}")
    assert page is not None and page[0] == 200, page
    form_action = re.search(r'<form method="post" action="([^"]+)/login">', page[1]).group(1)
    action = urllib.parse.urljoin(url, form_action)
    if cancel:
        status, location, text, _ = agent.request("POST", f"{action}/abort", {})
    else:
        status, location, text, _ = agent.request(
            "POST", f"{action}/login",
            {"login": user, "password": password or f"{user}-password", "otp": otp})
    assert status in (302, 303), text
    callback, page = agent.follow(location, f"{portal.url}{CALLBACK}")
    assert page is None, page
    return callback


def callback_params(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def with_params(url: str, **changes) -> str:
    u = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(u.query))
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(q), ""))


def request_id(headers) -> str:
    return next(v for k, v in headers if k.lower() == "x-request-id")


def audit_of(portal, headers) -> dict:
    return portal.audit_event(request_id(headers))


def test_sign_in_through_the_provider_login_form_gives_a_portal_session_with_the_groups_assignments(portal, oidc_idp):
    agent = Agent()
    authorize = start(agent, portal, "?return_to=/portal")
    q = callback_params(authorize)
    assert q["response_type"] == "code" and q["client_id"] == "rolegate-portal"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 43 and len(q["nonce"]) >= 43  # 256 bits, base64url
    assert set(q["scope"].split()) == {"openid", "email", "profile", "groups"}
    assert "prompt" not in q and "max_age" not in q

    callback = idp_login(agent, portal, authorize)
    assert callback_params(callback)["iss"] == oidc_idp.issuer
    status, location, text, headers = agent.request("GET", callback)
    assert status == 303 and location == f"{portal.url}/portal", text
    assert SESSION in agent.cookies(portal.port) and BINDING not in agent.cookies(portal.port)
    ev = audit_of(portal, headers)
    assert ev["action"] == "portal:SignIn" and ev["decision"] == "allow", ev
    assert ev["provider"] == PROVIDER and ev["subject"] == "alice" and ev["mfa"] is False

    status, _, html, _ = agent.request("GET", f"{portal.url}/portal")
    assert status == 200
    assert f"{PROVIDER}/alice" in html and "Dev" in html and "Ops" in html


def test_callback_refusals_answer_the_right_status_audit_the_reason_and_start_no_session(portal, oidc_idp):
    def refused(agent: Agent, url: str, status: int, reason: str, title: str):
        before = dict(agent.cookies(portal.port))
        got, _, html, headers = agent.request("GET", url)
        assert got == status, html
        assert title in html
        assert SESSION not in agent.cookies(portal.port)
        assert not any(k.lower() == "set-cookie" and v.startswith(SESSION) for k, v in headers)
        ev = audit_of(portal, headers)
        assert ev["action"] == "portal:SignIn" and ev["decision"] == "deny", ev
        assert reason in ev["reason"], ev
        assert before.get(SESSION) is None

    # No pending login at all: an invented state, and no state.
    stranger = Agent()
    refused(stranger, f"{portal.url}{CALLBACK}?code=abc&state=" + "A" * 43, 403,
            "no pending login for this state", "Sign-in refused")
    refused(stranger, f"{portal.url}{CALLBACK}?code=abc", 403, "callback without state",
            "Sign-in refused")

    # A state cookie that is not the one the login was started with (tampered or another browser).
    agent = Agent()
    callback = idp_login(agent, portal, start(agent, portal))
    genuine = agent.cookies(portal.port)[BINDING]
    # Change the first character to one it is not, so the cookie always differs.
    agent.cookies(portal.port)[BINDING] = ("x" if genuine[0] != "x" else "y") + genuine[1:]
    refused(agent, callback, 403, "not bound to this browser", "Sign-in refused")
    del agent.cookies(portal.port)[BINDING]
    refused(agent, callback, 403, "not bound to this browser", "Sign-in refused")

    # Wrong `iss` in the authorization response (RFC 9207), and none although the provider sends it.
    for changed, reason in [({"iss": "http://127.0.0.1:1/evil"}, "is not the provider's issuer"),
                            ({"iss": None}, "has no iss although the provider announces it")]:
        agent = Agent()
        callback = idp_login(agent, portal, start(agent, portal))
        binding = agent.cookies(portal.port)[BINDING]
        refused(agent, with_params(callback, **changed), 403, reason, "Sign-in refused")
        # The state was consumed by that answer (and the cookie removed): the genuine answer is
        # now refused as reused, even with the cookie put back.
        assert BINDING not in agent.cookies(portal.port)
        agent.cookies(portal.port)[BINDING] = binding
        refused(agent, callback, 403, "state was already used", "Sign-in refused")

    # A state used once is refused the second time, with the same browser's cookie.
    agent = Agent()
    callback = idp_login(agent, portal, start(agent, portal))
    binding = agent.cookies(portal.port)[BINDING]
    status, _, _, _ = agent.request("GET", callback)
    assert status == 303
    agent.cookies(portal.port).pop(SESSION)
    agent.cookies(portal.port)[BINDING] = binding
    refused(agent, callback, 403, "state was already used", "Sign-in refused")

    # A code the provider did not issue for this login: the code exchange is refused.
    agent = Agent()
    callback = idp_login(agent, portal, start(agent, portal))
    refused(agent, with_params(callback, code="forged-" + callback_params(callback)["code"]), 403,
            "token endpoint refused the code: invalid_grant", "Sign-in refused")

    # The provider's `error` (the person pressed Cancel on its login form).
    agent = Agent()
    callback = idp_login(agent, portal, start(agent, portal), cancel=True)
    assert callback_params(callback)["error"] == "access_denied"
    refused(agent, callback, 401, "identity provider answered error access_denied", "Access denied")


def test_unknown_provider_and_unreachable_provider_get_clear_pages(portal):
    agent = Agent()
    status, location, html, headers = agent.request("GET", f"{portal.url}/login/oidc/downidp")
    assert status == 503 and location is None
    assert "Identity provider unreachable" in html
    assert BINDING not in agent.cookies(portal.port)
    ev = audit_of(portal, headers)
    assert ev["action"] == "portal:OidcStart" and ev["decision"] == "error"
    assert "identity provider unreachable: discovery" in ev["reason"], ev

    status, _, html, headers = agent.request("GET", f"{portal.url}/login/oidc/nosuch")
    assert status == 404 and "Unknown identity provider" in html
    assert "no oidc provider 'nosuch'" in audit_of(portal, headers)["reason"]

    status, _, html, headers = agent.request("GET", f"{portal.url}/login/oidc/{PROVIDER}?step_up=0")
    assert status == 400
    assert "step_up must be" in audit_of(portal, headers)["reason"]


def test_step_up_signs_in_again_with_prompt_login_max_age_and_acr_values_and_counts_trusted_amr(portal, oidc_idp):
    agent = Agent()
    status, _, _, _ = agent.request("GET", idp_login(agent, portal, start(agent, portal)))
    assert status == 303
    status, _, html, _ = agent.request("GET", f"{portal.url}/portal")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    status, _, html, headers = agent.request("POST", f"{portal.url}/portal/credentials",
                                             {"csrf": csrf, "account": ACCOUNT, "permission_set": "Ops"})
    assert status == 403 and "AWS_ACCESS_KEY_ID" not in html, html
    link = re.search(r'<a class="button" id="step-up" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link.startswith(f"/login/oidc/{PROVIDER}?step_up=900")
    assert audit_of(portal, headers)["decision"] == "deny"

    authorize = start(agent, portal, link[len(f"/login/oidc/{PROVIDER}"):])
    q = callback_params(authorize)
    assert q["prompt"] == "login" and q["max_age"] == "900"
    assert q["acr_values"] == "urn:rolegate:test:mfa"

    # The provider asks for the password again (prompt=login); a second factor this time.
    callback = idp_login(agent, portal, authorize, otp="123456")
    status, location, _, headers = agent.request("GET", callback)
    assert status == 303 and location == f"{portal.url}/portal"
    ev = audit_of(portal, headers)
    assert ev["decision"] == "allow" and ev["mfa"] is True, ev
    assert "step-up sign-in with MFA" in ev["reason"]
    status, _, html, _ = agent.request("GET", f"{portal.url}/portal")
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    status, _, html, _ = agent.request("POST", f"{portal.url}/portal/credentials",
                                       {"csrf": csrf, "account": ACCOUNT, "permission_set": "Ops"})
    assert status == 200 and "AWS_ACCESS_KEY_ID" in html, html

    # Signing in again without the second factor gives a session without MFA: Ops is refused again.
    status, _, _, headers = agent.request("GET", idp_login(agent, portal, start(agent, portal, link[len(f"/login/oidc/{PROVIDER}"):])))
    assert status == 303 and audit_of(portal, headers)["mfa"] is False


def test_chromium_signs_in_on_the_provider_login_form_and_lands_on_the_portal(portal):
    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    artifacts = Path(__file__).parents[1] / "artifacts" / "portal-oidc"
    r = subprocess.run(
        ["node", str(node_dir / "portal-oidc-browser.mjs"), "--url", portal.url,
         "--provider-button", "Sign in with Test IdP", "--user", "alice", "--password", "alice-password",
         "--step-up-set", "Ops", "--down-provider", "downidp", "--out", str(artifacts)],
        capture_output=True, text=True, timeout=120, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["violations"] == [], out["violations"]
    assert out["portal_url"] == f"{portal.url}/portal", out
    assert f"{PROVIDER}/alice" in out["portal_text"] and "Dev" in out["portal_text"]
    assert out["step_up_link"].startswith(f"/login/oidc/{PROVIDER}?step_up=900"), out
    assert out["down_status"] == 503 and "Identity provider unreachable" in out["down_text"]
    for name in ["1-sign-in", "2-idp-login", "3-portal-home", "4-idp-down", "5-step-up"]:
        assert (artifacts / f"{name}.png").stat().st_size > 1000
