"""`rolegate` as the command line client: `rolegate login` (device flow and PKCE, approved in
headless Chromium) writes the SSO token cache that botocore's own SSO credential provider reads
with the sso-session profile `rolegate configure` writes; the AWS CLI runs
`rolegate credential-process` and reuses its cached credentials; `rolegate console --print` gives a
single-use console sign-in URL; refresh, logout and refusals say what to do."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import urllib.error
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import e2e
from test_sso_oidc import ACCOUNT, run_browser, sso_server  # noqa: F401 (fixture)

ROLE_ARN_PART = "assumed-role/RolegateSSO_Dev/sam"


@pytest.fixture
def home(tmp_path):
    """A HOME and AWS config file of the test's own, and the environment to run clients in."""
    h = tmp_path / "home"
    h.mkdir()
    env = e2e.base_env(HOME=str(h), AWS_CONFIG_FILE=str(h / ".aws" / "config"),
                       AWS_SHARED_CREDENTIALS_FILE=str(h / ".aws" / "credentials"),
                       XDG_CACHE_HOME=str(h / ".cache"), BROWSER="/bin/false")
    return h, env


def rolegate(env, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(e2e.rolegate_bin()), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Login:
    """A `rolegate login` running in the background, with the first URL it prints."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen([str(e2e.rolegate_bin()), "login", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.url_seen = threading.Event()
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            s = line.strip()
            if self.url is None and s.startswith("http"):
                self.url = s
                self.url_seen.set()

    def wait_url(self) -> str:
        assert self.url_seen.wait(30), f"no URL printed: {''.join(self.lines)}"
        return self.url

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=120)
        time.sleep(0.1)
        return code, "".join(self.lines)


def token_file(h: Path, session: str) -> Path:
    return h / ".aws" / "sso" / "cache" / f"{hashlib.sha1(session.encode()).hexdigest()}.json"


def audit_count(srv, action: str, decision: str = "allow") -> int:
    return sum(1 for e in srv.audit("--action", action) if e["decision"] == decision)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def no_redirect(url: str) -> tuple[int, dict]:
    """GET without following redirects: (status, lower-cased headers)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(url, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def botocore_identity(env, profile: str) -> subprocess.CompletedProcess:
    """get_caller_identity through botocore's own SSO provider, in a process whose HOME is the
    test's (botocore reads ~ when it is imported)."""
    code = ("import boto3,json;"
            f"s=boto3.Session(profile_name={profile!r});"
            "print(json.dumps(s.client('sts').get_caller_identity()['Arn']))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_device_login_feeds_botocore_the_aws_cli_and_the_console(sso_server, home, tmp_path):
    h, env = home
    url = sso_server.url
    start = f"{url}/start"

    # Denied in the browser: rolegate login says so and caches nothing.
    denied = Login(env, "--start-url", start, "--session-name", "rg", "--use-device-code",
                   "--no-browser")
    run_browser(url, [{"name": "cli-deny", "kind": "device", "url": denied.wait_url(),
                       "decision": "deny"}], tmp_path / "deny")
    code, out = denied.finish()
    assert code == 1 and "denied in the browser" in out, out
    assert not token_file(h, "rg").exists()

    login = Login(env, "--start-url", start, "--session-name", "rg", "--use-device-code",
                  "--no-browser")
    link = login.wait_url()
    assert link.startswith(f"{url}/device?user_code="), link
    got = run_browser(url, [{"name": "cli-device", "kind": "device", "url": link,
                             "decision": "approve"}], tmp_path / "approve")
    assert got["results"][0]["client_name"] == "rolegate-cli", got
    code, out = login.finish()
    assert code == 0, out
    cached = json.loads(token_file(h, "rg").read_text())
    assert cached["startUrl"] == start and cached["region"] == "us-east-1"
    for k in ("accessToken", "expiresAt", "clientId", "clientSecret", "registrationExpiresAt",
              "refreshToken"):
        assert cached.get(k), k
    assert stat.S_IMODE(token_file(h, "rg").stat().st_mode) == 0o600

    # Profiles: one for botocore's SSO provider, one through credential_process.
    r = rolegate(env, "configure", "--start-url", start, "--session-name", "rg",
                 "--profile", f"{ACCOUNT}:Dev:dev")
    assert r.returncode == 0, r.stderr
    r = rolegate(env, "configure", "--start-url", start, "--session-name", "rg",
                 "--profile", f"{ACCOUNT}:Dev:proc", "--credential-process")
    assert r.returncode == 0, r.stderr
    config = (h / ".aws" / "config").read_text()
    assert config.count("[sso-session rg]") == 1, config
    assert f"sso_account_id = {ACCOUNT}" in config and "credential_process = " in config

    r = botocore_identity(env, "dev")
    assert r.returncode == 0, r.stderr
    assert ROLE_ARN_PART in json.loads(r.stdout), r.stdout

    # The AWS CLI with credential_process, twice: the second run uses the cached credentials.
    before = audit_count(sso_server, "sso:GetRoleCredentials")
    aws = str(Path(sys.executable).parent / "aws")
    for _ in range(2):
        r = subprocess.run([aws, "sts", "get-caller-identity", "--profile", "proc",
                            "--endpoint-url", url, "--output", "json"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert ROLE_ARN_PART in json.loads(r.stdout)["Arn"]
    assert audit_count(sso_server, "sso:GetRoleCredentials") == before + 1

    # A permission set the person does not have.
    r = rolegate(env, "credentials", "--session-name", "rg", "--account", ACCOUNT, "--role", "Admin")
    assert r.returncode == 1
    assert f"no access to permission set Admin in account {ACCOUNT}: No access" in r.stderr, r.stderr

    # The console: a sign-in URL that opens the console once.
    r = rolegate(env, "console", "--session-name", "rg", "--account", ACCOUNT, "--role", "Dev",
                 "--print")
    assert r.returncode == 0, r.stderr
    link = r.stdout.strip()
    assert link.startswith(f"{url}/federation?Action=login&"), link
    status, headers = no_redirect(link)
    assert status in (302, 303), status
    assert headers["location"] == "/console" or headers["location"].endswith("/console"), headers
    assert "__Host-" in headers.get("set-cookie", ""), headers
    assert no_redirect(link)[0] >= 400, "a sign-in token opens one console only"

    # Near expiry, the token is refreshed silently (and the refresh token rotated).
    cached["expiresAt"] = (datetime.now(timezone.utc) + timedelta(seconds=90)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    token_file(h, "rg").write_text(json.dumps(cached))
    r = rolegate(env, "credentials", "--session-name", "rg", "--account", ACCOUNT, "--role", "Dev",
                 "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Version"] == 1
    refreshed = json.loads(token_file(h, "rg").read_text())
    assert refreshed["accessToken"] != cached["accessToken"]
    assert refreshed["refreshToken"] != cached["refreshToken"]
    assert refreshed["expiresAt"] > cached["expiresAt"]

    # Logout ends the sign-in: the old cache, put back, can no longer refresh.
    stale = dict(refreshed, expiresAt="2020-01-01T00:00:00Z")
    r = rolegate(env, "logout", "--session-name", "rg")
    assert r.returncode == 0, r.stderr
    assert not token_file(h, "rg").exists()
    r = rolegate(env, "credentials", "--session-name", "rg", "--account", ACCOUNT, "--role", "Dev")
    assert r.returncode == 1 and "not signed in" in r.stderr and "rolegate login" in r.stderr
    token_file(h, "rg").write_text(json.dumps(stale))
    r = rolegate(env, "credentials", "--session-name", "rg", "--account", ACCOUNT, "--role", "Dev")
    assert r.returncode == 1
    assert "the sign-in has ended" in r.stderr and "run rolegate login" in r.stderr, r.stderr
    # botocore's own provider refuses the ended sign-in too.
    assert botocore_identity(env, "dev").returncode != 0


def test_pkce_login_through_the_browser_and_a_loopback_listener(sso_server, home, tmp_path):
    h, env = home
    url = sso_server.url
    login = Login(env, "--start-url", f"{url}/start", "--session-name", "pk", "--no-browser")
    link = login.wait_url()
    assert link.startswith(f"{url}/authorize?") and "code_challenge_method=S256" in link, link
    got = run_browser(url, [{"name": "cli-pkce", "kind": "authorize", "url": link,
                             "decision": "approve", "callback": "http://127.0.0.1:"}],
                      tmp_path / "pkce")
    assert got["results"][0]["final_url"].startswith("http://127.0.0.1:"), got
    code, out = login.finish()
    assert code == 0, out
    r = rolegate(env, "credentials", "--session-name", "pk", "--account", ACCOUNT, "--role", "Dev",
                 "--format", "json")
    assert r.returncode == 0, r.stderr
    creds = json.loads(r.stdout)
    ident = e2e.sts_client(url, {"AccessKeyId": creds["AccessKeyId"],
                                 "SecretAccessKey": creds["SecretAccessKey"],
                                 "SessionToken": creds["SessionToken"]}).get_caller_identity()
    assert ROLE_ARN_PART in ident["Arn"]

    # For a shell: after `eval`, an AWS command with no endpoint or region of its own reaches
    # rolegate (not AWS) in the sign-in's region.
    r = rolegate(env, "credentials", "--session-name", "pk", "--account", ACCOUNT, "--role", "Dev",
                 "--format", "env")
    assert r.returncode == 0, r.stderr
    assert f'export AWS_ENDPOINT_URL_STS="{url}"' in r.stdout.splitlines(), r.stdout
    assert 'export AWS_REGION="us-east-1"' in r.stdout.splitlines(), r.stdout
    aws = str(Path(sys.executable).parent / "aws")
    shell = subprocess.run(
        ["bash", "-c", 'eval "$1" && exec "$2" sts get-caller-identity --output json', "-",
         r.stdout, aws],
        env=dict(env, AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1"),
        capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    assert ROLE_ARN_PART in json.loads(shell.stdout)["Arn"]


def test_a_callback_with_another_state_is_refused(sso_server, home):
    h, env = home
    login = Login(env, "--start-url", f"{sso_server.url}/start", "--session-name", "st",
                  "--no-browser")
    link = login.wait_url()
    redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["redirect_uri"][0]
    # Someone else's answer arrives at the loopback listener first.
    status, _ = no_redirect(f"{redirect}?code=stolen&state=not-ours")
    assert status == 400
    code, out = login.finish()
    assert code == 1 and "another state" in out, out
    assert not token_file(h, "st").exists()
