"""Glewlwyd (Debian's `glewlwyd` package, 2.7.x) as a real OpenID Connect provider for rolegate's
tests, on 127.0.0.1 only, with a configuration of its own in a temporary directory:

- a sqlite database made from the package's SQL init script (the admin user `admin`/`password`,
  the `g_admin`, `g_profile` and `openid` scopes, the database user and client backends), the user
  backend told to keep a multi-valued `groups` property;
- an OpenID Connect plugin instance `oidc` signing with RSA keys made here (a JWKS of private keys;
  Glewlwyd signs with the first one), with the password grant (which it serves only with
  `allow-non-oidc`) and the authorization code grant with PKCE, the `groups` claim from the
  user's property in every ID token and userinfo answer, and a `department` claim released only
  where a request's `claims` parameter asks for it (Glewlwyd 2.7 has no other way to keep a claim
  out of the ID token and in userinfo: its scope claims go to both);
- confidential clients (client_secret_basic) and users with passwords, added through the admin REST
  API with the admin's session cookie.

The issuer is `http://127.0.0.1:<port>/api/oidc`; discovery, JWKS, token and userinfo endpoints are
under it, as the plugin publishes them. Its authorization endpoint sends every browser to the login
page first (`login.html?callback_url=...`); the page signs in through `/api/auth/`, grants scopes
through `/api/auth/grant/{client_id}/`, and continues to `callback_url` with `g_continue` added,
which is when a code is issued. `sign_in` does the first two; the caller the last.

The configuration leaves `use_secure_connection` out: Glewlwyd 2.7.5 refuses to start when it is
present (even false) without certificate paths.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import sqlite3
import subprocess
import time
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

import e2e

BINARY = "/usr/bin/glewlwyd"
INIT_SQL = Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz")
MODULES = Path("/usr/lib/glewlwyd")
ADMIN = ("admin", "password")  # what the package's init script sets
PLUGIN = "oidc"
SESSION_COOKIE = "GLEWLWYD2_SESSION_ID"


def available() -> str | None:
    """Why Glewlwyd cannot run here, or None."""
    for path in (Path(BINARY), INIT_SQL, MODULES / "plugin" / "libprotocol_oidc.so"):
        if not path.exists():
            return f"{path} is missing: install the Debian package glewlwyd (scripts/test --install-only)"
    return None


def _b64u_int(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_private_jwk(kid: str) -> dict:
    """A new RSA-2048 private key as a JWK for RS256."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    nums = key.private_numbers()
    pub = nums.public_numbers
    return {
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
        "n": _b64u_int(pub.n), "e": _b64u_int(pub.e), "d": _b64u_int(nums.d),
        "p": _b64u_int(nums.p), "q": _b64u_int(nums.q), "dp": _b64u_int(nums.dmp1),
        "dq": _b64u_int(nums.dmq1), "qi": _b64u_int(nums.iqmp),
    }


CONFIG = """\
port={port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:{port}"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="{log}"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="{cookie}"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=false
login_api_enabled=true
plugin_api_run_enabled=""
add_x_frame_option_header_deny=true
max_post_size=16778240
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="{modules}/user"
client_module_path="{modules}/client"
user_auth_scheme_module_path="{modules}/scheme"
plugin_module_path="{modules}/plugin"
hash_algorithm="SHA512"
database =
{{
  type = "sqlite3"
  path = "{db}"
}};
"""


class Agent:
    """A cookie-keeping HTTP client without JavaScript: cookies per port (both servers are plain
    http on 127.0.0.1, so paths and flags do not matter), redirects not followed."""

    def __init__(self):
        self.jar: dict[int, dict[str, str]] = {}

    def cookies(self, port: int) -> dict[str, str]:
        return self.jar.setdefault(port, {})

    def request(self, method: str, url: str, *, form: dict | None = None, json_body=None,
                headers: dict | None = None, origin: bool = False):
        """(status, absolute Location or None, body text, header list)."""
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
        jar = self.cookies(u.port)
        h = {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items()), **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["content-type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            h["content-type"] = "application/json"
        if origin and body is not None:
            h["origin"] = f"{u.scheme}://{u.netloc}"
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=h)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        e2e.keep_cookies(jar, resp.getheaders())
        conn.close()
        location = resp.getheader("location")
        if location:
            location = urllib.parse.urljoin(url, location)
        return resp.status, location, text, resp.getheaders()


class Glewlwyd:
    """A running Glewlwyd with its own configuration and database in `workdir`."""

    def __init__(self, workdir: Path):
        why = available()
        if why:
            raise RuntimeError(why)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "glewlwyd.sqlite3"
        self.log = workdir / "glewlwyd.log"
        self._init_db()
        self.keys: list[dict] = [rsa_private_jwk("glewlwyd-rsa-1")]
        # The key Glewlwyd signs with (the first of its JWKS), also given as its `default-kid`.
        self.default_kid = self.keys[0]["kid"]
        last = ""
        for _ in range(3):
            self.port = e2e.free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            ok, last = self._start()
            if ok:
                break
        else:
            raise RuntimeError(f"glewlwyd did not start: {last}\n{e2e._tail(self.log)}")
        self.issuer = f"{self.url}/api/{PLUGIN}"
        self.key_prefix = self.issuer.split("://", 1)[1]
        self.admin = Agent()
        status, _, text, _ = self.admin.request(
            "POST", f"{self.url}/api/auth/", json_body={"username": ADMIN[0], "password": ADMIN[1]})
        assert status == 200, f"admin login: {status} {text}"
        self._admin("POST", "/api/mod/plugin/", {
            "module": "oidc", "name": PLUGIN, "display_name": "rolegate tests", "enabled": True,
            "parameters": self._plugin_parameters()})

    # -- process --------------------------------------------------------------------------------

    def _init_db(self) -> None:
        script = gzip.decompress(INIT_SQL.read_bytes()).decode()
        con = sqlite3.connect(self.db)
        try:
            con.executescript(script)
            # The user backend keeps what its data-format lists: add a multi-valued `groups`.
            (params,) = con.execute(
                "SELECT gumi_parameters FROM g_user_module_instance WHERE gumi_name='database'"
            ).fetchone()
            p = json.loads(params)
            p["data-format"]["groups"] = {"multiple": True, "read": True, "write": True,
                                          "profile-read": True, "profile-write": False}
            p["data-format"]["department"] = {"multiple": False, "read": True, "write": True,
                                              "profile-read": True, "profile-write": False}
            con.execute("UPDATE g_user_module_instance SET gumi_parameters=? WHERE gumi_name='database'",
                        (json.dumps(p),))
            con.commit()
        finally:
            con.close()

    def _start(self) -> tuple[bool, str]:
        conf = self.workdir / "glewlwyd.conf"
        conf.write_text(CONFIG.format(port=self.port, log=self.log, cookie=SESSION_COOKIE,
                                      modules=MODULES, db=self.db))
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.workdir / "glewlwyd.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [BINARY, f"--config-file={conf}"], cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err, env=e2e.base_env())
        deadline = time.monotonic() + e2e.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"exited with {self.proc.returncode}"
            try:
                if e2e.http("GET", f"{self.url}/config/", timeout=2).status == 200:
                    return True, ""
            except OSError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        self.proc.wait()
        with open(self.log, "rb") as f:
            f.seek(offset)
            tail = f.read()[-2000:].decode("utf-8", "replace")
        return False, f"not ready in time: {tail}"

    def stop(self) -> int:
        return e2e.terminate(self.proc, "glewlwyd", self.log)

    # -- administration -------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body=None) -> str:
        status, _, text, _ = self.admin.request(method, self.url + path, json_body=body)
        assert status == 200, f"{method} {path}: {status} {text}"
        return text

    def _plugin_parameters(self) -> dict:
        return {
            "iss": f"{self.url}/api/{PLUGIN}",
            "jwt-type": "rsa",
            "jwt-key-size": "256",
            "jwks-private": json.dumps({"keys": self.keys}),
            "default-kid": self.default_kid,
            "jwks-show": True,
            "access-token-duration": 3600,
            "refresh-token-duration": 1209600,
            "code-duration": 600,
            "refresh-token-rolling": False,
            "allow-non-oidc": True,  # the password grant needs it
            "auth-type-code-enabled": True,
            "auth-type-token-enabled": False,
            "auth-type-id-token-enabled": False,
            "auth-type-none-enabled": False,
            "auth-type-password-enabled": True,
            "auth-type-client-enabled": False,
            "auth-type-device-enabled": False,
            "auth-type-refresh-enabled": True,
            "subject-type": "public",
            "pkce-allowed": True,
            "pkce-method-plain-allowed": False,
            "name-claim": "mandatory",
            "email-claim": "mandatory",
            "scope-claim": "no",
            "claims": [{"name": "groups", "user-property": "groups", "type": "string",
                        "mandatory": True, "on-demand": False, "scope": []},
                       # Only when a request's `claims` parameter asks for it, where it asks
                       # (`{"userinfo": {"department": null}}`: at userinfo, not in the ID token).
                       {"name": "department", "user-property": "department", "type": "string",
                        "mandatory": False, "on-demand": True, "scope": []}],
            "allowed-scope": ["openid"],
            "request-parameter-allow": False,
            "introspection-revocation-allowed": False,
            "register-client-allowed": False,
            "session-management-allowed": False,
        }

    def _client(self, client_id: str, secret: str, redirect_uris: list[str]) -> dict:
        return {
            "client_id": client_id, "name": client_id, "enabled": True, "confidential": True,
            "client_secret": secret, "scope": [], "redirect_uri": redirect_uris,
            "authorization_type": ["code", "password", "refresh_token"],
            "token_endpoint_auth_method": ["client_secret_basic"]}

    def add_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        """A confidential client (client_secret_basic) for the code and password grants."""
        self._admin("POST", "/api/client/", self._client(client_id, secret, redirect_uris))

    def put_client(self, client_id: str, secret: str, redirect_uris: list[str]) -> None:
        """`add_client`, or the client's settings replaced if it exists."""
        status, _, _, _ = self.admin.request("GET", f"{self.url}/api/client/{client_id}")
        if status == 404:
            self.add_client(client_id, secret, redirect_uris)
        else:
            self._admin("PUT", f"/api/client/{client_id}", self._client(client_id, secret, redirect_uris))

    def add_user(self, username: str, password: str, email: str, groups: list[str],
                 department: str | None = None) -> None:
        """A user of the database backend with a password, the `openid` and `g_profile` scopes (the
        latter to grant scopes to clients through the login API), an e-mail, groups and perhaps a
        department."""
        user = {"username": username, "name": username.title(), "email": email, "enabled": True,
                "password": password, "scope": ["openid", "g_profile"], "groups": groups}
        if department is not None:
            user["department"] = department
        self._admin("POST", "/api/user/", user)

    def rotate_key(self) -> dict:
        """Adds a new RSA key, signs with it from now on (the old one stays published), and reloads
        the plugin. Returns the new private JWK.

        Glewlwyd 2.7.5 signs with the first key of the JWKS of the algorithm's type whatever
        `default-kid` says (that setting only picks the key for encrypted request objects), so the
        new key goes first."""
        key = rsa_private_jwk(f"glewlwyd-rsa-{len(self.keys) + 1}")
        self.keys.insert(0, key)
        self.default_kid = key["kid"]
        self._admin("PUT", f"/api/mod/plugin/{PLUGIN}", {
            "module": "oidc", "name": PLUGIN, "display_name": "rolegate tests", "enabled": True,
            "parameters": self._plugin_parameters()})
        self._admin("PUT", f"/api/mod/plugin/{PLUGIN}/reset")
        return key

    # -- tokens ---------------------------------------------------------------------------------

    def password_grant(self, client_id: str, secret: str, username: str, password: str,
                       scope: str = "openid") -> dict:
        """The token endpoint's answer to a resource-owner password grant."""
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        resp = e2e.http("POST", f"{self.issuer}/token", urllib.parse.urlencode({
            "grant_type": "password", "username": username, "password": password, "scope": scope}),
            {"Authorization": f"Basic {basic}",
             "Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 200, f"password grant: {resp.status} {resp.text}\n{e2e._tail(self.log)}"
        return resp.json()

    def id_token(self, client_id: str, secret: str, username: str, password: str) -> str:
        return self.password_grant(client_id, secret, username, password)["id_token"]

    def jwks(self) -> dict:
        return e2e.http("GET", f"{self.issuer}/jwks").json()

    def sign_in(self, agent: Agent, username: str, password: str, client_id: str,
                scope: str) -> None:
        """What the login page does for `agent`: a password session, and the scopes granted to the
        client (the consent)."""
        status, _, text, _ = agent.request("POST", f"{self.url}/api/auth/",
                                           json_body={"username": username, "password": password})
        assert status == 200, f"login of {username}: {status} {text}"
        status, _, text, _ = agent.request("PUT", f"{self.url}/api/auth/grant/{client_id}/",
                                           json_body={"scope": scope})
        assert status == 200, f"grant of {scope} to {client_id}: {status} {text}"
