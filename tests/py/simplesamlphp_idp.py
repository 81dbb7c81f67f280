"""SimpleSAMLphp (Debian's `simplesamlphp` 1.19) as a SAML identity provider for rolegate's tests.

Everything SimpleSAMLphp reads is written into a fresh directory: config.php (pointed at by
SIMPLESAMLPHP_CONFIG_DIR), authsources.php with an `example-userpass` source and its test users,
the hosted IdP's metadata with its own RSA key and certificate (made with openssl), and a
saml20-sp-remote.php that reads the SP metadata documents dropped into `sp/` with SimpleSAMLphp's own
metadata parser (so that rolegate's /saml/metadata is what SimpleSAMLphp trusts). Sessions, logs and
caches stay in that directory too. PHP's built-in server serves the package's www directory on a free
127.0.0.1 port.

`Browser` is a cookie-keeping HTTP client (urllib) that fills SimpleSAMLphp's login form and hands
back the auto-submitted SAMLResponse form, so that a test can post it to rolegate's ACS or pass it
to AssumeRoleWithSAML.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import e2e

SSP_ROOT = Path("/usr/share/simplesamlphp")
ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"
NAME_ATTR = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


def available() -> str | None:
    """Why SimpleSAMLphp cannot run here, or None."""
    if not (SSP_ROOT / "www" / "saml2" / "idp" / "SSOService.php").is_file():
        return f"{SSP_ROOT} is missing: run scripts/test --install-only (Debian simplesamlphp)"
    if shutil.which("php") is None:
        return "php is not on PATH: run scripts/test --install-only (Debian php-cli)"
    if shutil.which("openssl") is None:
        return "openssl is not on PATH"
    return None


def php_string(s: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_value(v) -> str:
    """A PHP literal of a JSON-like Python value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return php_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(php_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "[" + ", ".join(f"{php_value(k)} => {php_value(x)}" for k, x in v.items()) + "]"
    raise TypeError(f"no PHP literal for {type(v)}")


def make_key_pair(directory: Path, name: str, subject: str) -> tuple[Path, Path]:
    """An RSA-2048 key and a self-signed certificate (PEM) as `name`.key / `name`.crt."""
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
         "-subj", subject, "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )
    return key, crt


_SP_REMOTE = r"""<?php
// rolegate's SP metadata documents (sp/*.xml), read with SimpleSAMLphp's own parser; a JSON file
// beside one (sp/NAME.xml.json) adds settings for that SP (e.g. assertion.encryption).
foreach (glob(__DIR__ . '/../sp/*.xml') as $file) {
    foreach (\SimpleSAML\Metadata\SAMLParser::parseDescriptorsFile($file) as $entity) {
        $md = $entity->getMetadata20SP();
        if ($md === null) {
            continue;
        }
        $extra = [];
        if (is_file($file . '.json')) {
            $extra = json_decode(file_get_contents($file . '.json'), true);
        }
        $metadata[$md['entityid']] = array_merge($md, $extra);
    }
}
"""


@dataclass
class User:
    """A user of the example-userpass source: password and attributes."""

    password: str
    attributes: Mapping[str, list[str]]


class SimpleSamlPhp:
    """A SimpleSAMLphp IdP on 127.0.0.1 with its configuration in `workdir`."""

    def __init__(self, workdir: Path, users: Mapping[str, User], idp_extra: Mapping | None = None):
        self.workdir = workdir
        for sub in ("config", "metadata", "sp", "certs", "log", "data", "tmp", "sessions"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.port = e2e.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.base_url}/saml2/idp/metadata.php"
        self.metadata_url = self.entity_id
        self.sso_url = f"{self.base_url}/saml2/idp/SSOService.php"
        self.log = workdir / "log" / "php-server.log"
        self.key_path, self.cert_path = make_key_pair(workdir / "certs", "idp", "/CN=simplesamlphp-idp")
        self.idp_extra = dict(idp_extra or {})
        self._write_config(users)
        self.write_idp_metadata()
        self._start()

    # --- configuration -----------------------------------------------------------------------

    def _write_config(self, users: Mapping[str, User]) -> None:
        w = self.workdir
        config = {
            "baseurlpath": f"{self.base_url}/",
            "certdir": str(w / "certs") + "/",
            "loggingdir": str(w / "log") + "/",
            "datadir": str(w / "data") + "/",
            "tempdir": str(w / "tmp"),
            "metadatadir": str(w / "metadata") + "/",
            "attributenamemapdir": "/etc/simplesamlphp/attributemap/",
            "technicalcontact_name": "rolegate tests",
            "technicalcontact_email": "na@example.test",
            "secretsalt": os.urandom(16).hex(),
            "auth.adminpassword": os.urandom(16).hex(),
            "admin.protectindexpage": True,
            "admin.protectmetadata": False,
            "admin.checkforupdates": False,
            "trusted.url.domains": ["127.0.0.1"],
            "enable.saml20-idp": True,
            "enable.shib13-idp": False,
            "enable.adfs-idp": False,
            "module.enable": {"exampleauth": True, "core": True, "saml": True, "admin": True},
            "logging.level": 7,
            "logging.handler": "file",
            "logging.logfile": "simplesamlphp.log",
            "statistics.out": [],
            "session.cookie.secure": False,
            "session.cookie.samesite": None,
            "session.phpsession.savepath": str(w / "sessions"),
            "session.phpsession.cookiename": "SimpleSAML",
            "language.cookie.secure": False,
            "store.type": "phpsession",
            "production": True,
            "showerrors": True,
            "errorreporting": False,
            "debug": {"saml": True, "backtraces": True, "validatexml": False},
            "timezone": "UTC",
        }
        (w / "config" / "config.php").write_text("<?php\n$config = " + php_value(config) + ";\n")
        userpass = {f"{name}:{user.password}": {k: list(v) for k, v in user.attributes.items()}
                    for name, user in users.items()}
        # exampleauth:UserPass wants the users as entries beside the class name.
        body = "<?php\n$config = [\n"
        body += "    'admin' => ['core:AdminPassword'],\n"
        body += "    'example-userpass' => array_merge(['exampleauth:UserPass'], " + php_value(userpass) + "),\n"
        body += "];\n"
        (w / "config" / "authsources.php").write_text(body)
        (w / "metadata" / "saml20-sp-remote.php").write_text(_SP_REMOTE)

    def write_idp_metadata(self, next_cert: Path | None = None) -> None:
        """The hosted IdP's metadata: its key and certificate, the example-userpass source, a
        persistent NameID from `uid`, attributes named by URI; with `next_cert`, that certificate is
        published too (a rotation: `new_certificate`)."""
        hosted = {
            "host": "__DEFAULT__",
            "privatekey": str(self.key_path),
            "certificate": str(self.cert_path),
            "auth": "example-userpass",
            "attributes.NameFormat": URI_FORMAT,
            "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            "signature.algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "authproc": {
                "10": {"class": "saml:PersistentNameID", "attribute": "uid",
                       "nameId": True},
            },
            **self.idp_extra,
        }
        if next_cert is not None:
            hosted["new_certificate"] = str(next_cert)
        text = "<?php\n$metadata['__DYNAMIC:1__'] = " + php_value(hosted) + ";\n"
        # authproc keys are priorities (integers in PHP).
        text = text.replace("'10' =>", "10 =>")
        (self.workdir / "metadata" / "saml20-idp-hosted.php").write_text(text)

    def trust_sp(self, name: str, metadata_xml: str, extra: Mapping | None = None) -> None:
        """Adds (or replaces) an SP from its metadata document, with optional extra settings."""
        path = self.workdir / "sp" / f"{name}.xml"
        path.write_text(metadata_xml)
        side = path.with_suffix(".xml.json")
        if extra:
            side.write_text(json.dumps(dict(extra)))
        elif side.exists():
            side.unlink()

    # --- process -----------------------------------------------------------------------------

    def _start(self) -> None:
        # One process (no PHP_CLI_SERVER_WORKERS: its workers outlive a terminated parent), in a
        # process group of its own so that stop() ends whatever it may have forked.
        env = e2e.base_env(SIMPLESAMLPHP_CONFIG_DIR=str(self.workdir / "config"))
        env.pop("PHP_CLI_SERVER_WORKERS", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(SSP_ROOT / "www")],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + e2e.START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"php -S exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                r = e2e.http("GET", self.metadata_url, timeout=5)
                if r.status == 200 and b"IDPSSODescriptor" in r.body:
                    return
                last = f"{r.status} {r.text[:300]}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SimpleSAMLphp did not serve its metadata: {last}\n{self.log_tail()}")

    def metadata(self) -> str:
        r = e2e.http("GET", self.metadata_url)
        assert r.status == 200, r.text
        return r.text

    def stop(self) -> int:
        code = e2e.terminate(self.proc, "php -S (SimpleSAMLphp)", self.log)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
        except ProcessLookupError:
            pass
        return code

    def log_tail(self) -> str:
        parts = []
        for p in (self.log, self.workdir / "log" / "simplesamlphp.log"):
            try:
                parts.append(f"--- {p} ---\n" + "\n".join(p.read_text(errors="replace").splitlines()[-60:]))
            except OSError:
                pass
        return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------
# A cookie-keeping client that signs in at SimpleSAMLphp


@dataclass
class PostedForm:
    """The auto-submitted form of a SAML HTTP-POST binding page."""

    action: str
    fields: dict[str, str]


_FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.S | re.I)
_ATTR = re.compile(r"(\w+)=\"([^\"]*)\"")


def forms(page: str) -> list[PostedForm]:
    """Every form of an HTML page: action and its named inputs' values (unescaped)."""
    out = []
    for action, inner in _FORM.findall(page):
        fields = {}
        for tag in _INPUT.findall(inner):
            attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
            if "name" in attrs:
                fields[attrs["name"]] = attrs.get("value", "")
        out.append(PostedForm(html.unescape(action), fields))
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _headers(msg) -> dict[str, str]:
    """Lowercase names; every Set-Cookie kept (one per line)."""
    out = {k.lower(): v for k, v in msg.items()}
    cookies = msg.get_all("Set-Cookie") or []
    if cookies:
        out["set-cookie"] = "\n".join(cookies)
    return out


class Browser:
    """A cookie jar and an opener that does not follow redirects (each hop is visible)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, method: str, url: str, form: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None) -> e2e.HttpResponse:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return e2e.HttpResponse(resp.status, _headers(resp.headers), resp.read())
        except urllib.error.HTTPError as e:
            return e2e.HttpResponse(e.code, _headers(e.headers), e.read())

    def follow(self, url: str, max_hops: int = 10) -> tuple[str, e2e.HttpResponse]:
        """GETs `url`, following redirects (resolved against the current URL); returns the final URL
        and response."""
        for _ in range(max_hops):
            r = self.request("GET", url)
            if r.status in (301, 302, 303, 307, 308):
                url = urllib.parse.urljoin(url, r.headers["location"])
                continue
            return url, r
        raise AssertionError(f"more than {max_hops} redirects from {url}")

    def sign_in(self, url: str, username: str, password: str) -> PostedForm:
        """From `url` (rolegate's /saml/<p>/login or SimpleSAMLphp's IdP-initiated SSO URL) to the
        SAMLResponse form SimpleSAMLphp posts to the ACS (not submitted)."""
        url, r = self.follow(url)
        if r.status == 200 and "SAMLResponse" in r.text:
            return self._saml_form(r.text)  # already signed in at the IdP
        login = [f for f in forms(r.text) if "password" in f.fields]
        assert r.status == 200 and login, f"no login form at {url}: {r.status} {r.text[:2000]}"
        f = login[0]
        fields = {**f.fields, "username": username, "password": password}
        action = urllib.parse.urljoin(url, f.action or url)
        r = self.request("POST", action, fields)
        while r.status in (301, 302, 303):
            action = urllib.parse.urljoin(action, r.headers["location"])
            r = self.request("GET", action)
        assert r.status == 200 and "SAMLResponse" in r.text, f"no SAMLResponse after login: {r.status} {r.text[:2000]}"
        return self._saml_form(r.text)

    @staticmethod
    def _saml_form(page: str) -> PostedForm:
        found = [f for f in forms(page) if "SAMLResponse" in f.fields]
        assert len(found) == 1, page[:2000]
        return found[0]
