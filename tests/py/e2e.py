"""Processes and clients for rolegate's end-to-end tests: the OpenID provider (tests/node/oidc-idp.mjs),
a rolegate server started from a generated configuration, raw HTTP, STS error parsing, and the AWS CLI.

Everything listens on 127.0.0.1. Child processes get an environment built here (no inherited ROLEGATE_*
or AWS_* variables), so a developer's shell cannot change what the tests see.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import boto3
import botocore
import botocore.config

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
CLIENT_ID = "rolegate-test"
CLIENT_SECRETS = {"rolegate-test": "rolegate-test-secret", "rolegate-other": "rolegate-other-secret"}
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
ADMIN_TOKEN_ENV = "ROLEGATE_ADMIN_TOKEN"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def rolegate_bin() -> Path:
    """The `rolegate` binary: $ROLEGATE_BIN, else target/debug/rolegate."""
    env = os.environ.get("ROLEGATE_BIN")
    return Path(env) if env else ROOT / "target" / "debug" / "rolegate"


def node_dir() -> Path:
    """Directory holding oidc-idp.mjs and its node_modules."""
    env = os.environ.get("ROLEGATE_TEST_NODE_DIR")
    return Path(env) if env else ROOT / "tests" / "node"


def aws_cli() -> Path:
    """The AWS CLI of the test venv."""
    venv = os.environ.get("ROLEGATE_TEST_VENV")
    if venv:
        return Path(venv) / "bin" / "aws"
    here = Path(sys.executable).parent / "aws"
    return here if here.exists() else ROOT / "tests" / ".venv" / "bin" / "aws"


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """Whether a listener holds 127.0.0.1:port (connections of an earlier one in TIME-WAIT do not
    count: rolegate binds with SO_REUSEADDR, as Rust's standard library does on Unix)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def base_env(**extra: str) -> dict[str, str]:
    """A child environment without ROLEGATE_* or AWS_* variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROLEGATE_") and not k.startswith("AWS_")
    }
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResponse:
    """Status, headers (lowercase names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def keep_cookies(jar: dict, headers) -> None:
    """Updates `jar` (name → value) from the `Set-Cookie` headers of an answer as a browser does: a
    cookie with a value is kept, an emptied or expired one (`Max-Age=0`, an `Expires` in 1970) is
    dropped."""
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        k, v = value.split(";", 1)[0].split("=", 1)
        low = value.lower()
        if v and "max-age=0" not in low and "expires=thu, 01 jan 1970" not in low:
            jar[k] = v
        else:
            jar.pop(k, None)


def http(
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 15.0,
) -> HttpResponse:
    """One request with urllib, no proxy; error statuses are returned, not raised."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return HttpResponse(resp.status, _lower(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, _lower(e.headers.items()), e.read())


def _lower(items) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def sts_error(body: bytes) -> tuple[str, str, str]:
    """(Code, Message, RequestId) of an STS ErrorResponse document."""
    root = ET.fromstring(body)
    assert root.tag == f"{STS_NS}ErrorResponse", body
    code = root.findtext(f"{STS_NS}Error/{STS_NS}Code")
    message = root.findtext(f"{STS_NS}Error/{STS_NS}Message")
    request_id = root.findtext(f"{STS_NS}RequestId")
    assert code is not None and message is not None and request_id, body
    return code, message, request_id


def sts_result(body: bytes, op: str) -> ET.Element:
    """The `<{op}Result>` element of an STS response document."""
    root = ET.fromstring(body)
    assert root.tag == f"{STS_NS}{op}Response", body
    result = root.find(f"{STS_NS}{op}Result")
    assert result is not None, body
    return result


def field(elem: ET.Element, path: str) -> str | None:
    """Text at a slash-separated path of STS elements."""
    return elem.findtext("/".join(f"{STS_NS}{p}" for p in path.split("/")))


def jwt_parts(token: str) -> tuple[dict, dict, str]:
    """Header, payload and signature segment of a compact JWS (no verification)."""
    h, p, s = token.split(".")
    return _b64json(h), _b64json(p), s


def _b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64url_json(obj) -> str:
    """Base64url (unpadded) of compact JSON."""
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def write_token_file(path: Path, token: str) -> Path:
    """Writes a token file as identity platforms do: the token and a trailing newline."""
    path.write_text(token.rstrip("\n") + "\n")
    return path


def web_identity_env(tmp_path: Path, token: str, session: str, **extra: str) -> dict:
    """A process environment for an AWS SDK with nothing of the machine's AWS setup (its own empty
    home, config and credentials files, no instance metadata) that takes the web identity `token`
    for ROLE_DEPLOYER as session `session`; `extra` adds variables."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(write_token_file(tmp_path / "token", token)),
        "AWS_ROLE_ARN": ROLE_DEPLOYER,
        "AWS_ROLE_SESSION_NAME": session,
        **extra,
    })
    return env


# ---------------------------------------------------------------------------------------------------
# Processes


def _read_first_line(stream, timeout: float) -> str | None:
    q: queue.Queue[str] = queue.Queue()

    def reader():
        line = stream.readline()
        q.put(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
        # Keep draining so that the child never blocks on a full pipe.
        for _ in iter(lambda: stream.read(4096), b""):
            pass

    threading.Thread(target=reader, daemon=True).start()
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def terminate(proc: subprocess.Popen, what: str, log: Path | None = None) -> int:
    """SIGTERM, wait; SIGKILL after STOP_TIMEOUT. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"{what} did not exit within {STOP_TIMEOUT}s of SIGTERM\n{_tail(log) if log else ''}"
            )
    return proc.returncode


class Idp:
    """The test OpenID provider, oidc-idp.mjs, on a free port."""

    def __init__(self, workdir: Path, redirect_uris: Sequence[str] = ()):
        workdir.mkdir(parents=True, exist_ok=True)
        self.keys_file = workdir / "keys.json"
        self.log = workdir / "oidc-idp.log"
        directory = node_dir()
        marker = directory / "node_modules" / "oidc-provider" / "package.json"
        if not marker.is_file():
            raise RuntimeError(f"{marker} is missing: run scripts/test --install-only")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["node", "oidc-idp.mjs", "--port", "0", "--keys", str(self.keys_file),
                 "--exit-on-stdin-close",
                 *[a for u in redirect_uris for a in ("--redirect-uri", u)]],
                cwd=directory,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=base_env(),
            )
        line = _read_first_line(self.proc.stdout, START_TIMEOUT)
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"oidc-idp.mjs did not start\n{_tail(self.log)}")
        ready = json.loads(line)
        self.issuer: str = ready["issuer"]
        self.port: int = ready["port"]
        self.base_url = f"http://127.0.0.1:{self.port}"
        # The provider's name in ARNs and condition keys: the issuer without its scheme.
        self.key_prefix = self.issuer.split("://", 1)[1].rstrip("/")

    def provider_arn(self, account: str = ACCOUNT) -> str:
        return f"arn:aws:iam::{account}:oidc-provider/{self.key_prefix}"

    def id_token(
        self,
        sub: str,
        claims: dict | None = None,
        alg: str = "RS256",
        client: str = CLIENT_ID,
        expires_in: int | None = None,
    ) -> str:
        """A real ID token from the provider's token endpoint (custom grant)."""
        form = {"grant_type": "urn:rolegate:test:id-token", "sub": sub, "alg": alg}
        if claims:
            form["claims"] = json.dumps(claims)
        if expires_in is not None:
            form["expires_in"] = str(expires_in)
        basic = base64.b64encode(f"{client}:{CLIENT_SECRETS[client]}".encode()).decode()
        resp = http(
            "POST",
            f"{self.issuer}/token",
            urllib.parse.urlencode(form),
            {"Authorization": f"Basic {basic}",
             "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status == 200, f"ID token request failed: {resp.status} {resp.text}"
        return resp.json()["id_token"]

    def sign(self, header: dict, payload: dict | str, kid: str = "rsa-1", **extra) -> str:
        """POST /test/sign: a compact JWS with exactly this header and payload."""
        body = {"header": header, "payload": payload, "kid": kid, **extra}
        resp = http("POST", f"{self.base_url}/test/sign", json.dumps(body),
                    {"Content-Type": "application/json"})
        assert resp.status == 200, resp.text
        return resp.json()["token"]

    def stats(self) -> dict:
        return http("GET", f"{self.base_url}/test/stats").json()

    def stop(self) -> int:
        code = terminate(self.proc, "oidc-idp.mjs", self.log)
        if self.proc.stdin:
            self.proc.stdin.close()
        return code


class Rolegate:
    """A `rolegate serve` process with a configuration written into `workdir`."""

    def __init__(
        self,
        workdir: Path,
        config_for_port: Callable[[int], str] | None = None,
        config_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        cwd: Path | None = None,
    ):
        """Either `config_for_port` (TOML text for a port, written to workdir/rolegate.toml; a
        free port is tried up to three times) or an existing `config_path` listening on `port`."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "rolegate.log"
        self.env = base_env(ROLEGATE_LOG="info", **(env or {}))
        self.cwd = cwd or workdir
        attempts = 3 if config_for_port else 1
        last_error = ""
        for _ in range(attempts):
            if config_for_port:
                self.port = free_port()
                self.config_path = workdir / "rolegate.toml"
                self.config_path.write_text(config_for_port(self.port))
            else:
                assert config_path is not None and port is not None
                self.port = port
                self.config_path = config_path
            self.url = f"http://127.0.0.1:{self.port}"
            ok, last_error = self._start()
            if ok:
                return
        raise RuntimeError(f"rolegate did not start: {last_error}\n{_tail(self.log)}")

    def _start(self) -> tuple[bool, str]:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(rolegate_bin()), "--config", str(self.config_path), "serve"],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"exited with {self.proc.returncode}"
            # Only this process's own listener counts (another one may hold a port that was free).
            with open(self.log, "rb") as f:
                f.seek(offset)
                started = b"rolegate listening" in f.read()
            if not started:
                time.sleep(0.05)
                continue
            try:
                if (http("GET", f"{self.url}/healthz", timeout=2).status == 200
                        and http("GET", f"{self.url}/readyz", timeout=2).status == 200):
                    return True, ""
            except OSError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        return False, "not ready in time"

    def cli(self, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        """`rolegate --config <this config> ARGS` with this server's environment."""
        return run_rolegate(["--config", str(self.config_path), *args],
                            env={**self.env, **(env or {})}, cwd=self.cwd, timeout=timeout)

    def audit(self, *args: str) -> list[dict]:
        """`rolegate audit --json --limit 1000 ARGS` (through the admin API while running)."""
        r = self.cli("audit", "--json", "--limit", "1000", *args)
        assert r.returncode == 0, f"rolegate audit failed ({r.returncode}): {r.stderr}"
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def audit_event(self, request_id: str) -> dict:
        """The audit event of one request."""
        events = [e for e in self.audit() if e.get("request_id") == request_id]
        assert len(events) == 1, f"expected one audit event for request {request_id}, got {events}"
        return events[0]

    def stop(self) -> int:
        return terminate(self.proc, "rolegate", self.log)

    def log_tail(self) -> str:
        return _tail(self.log)


def run_rolegate(args: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs the rolegate binary to completion, capturing text output."""
    return subprocess.run(
        [str(rolegate_bin()), *args],
        cwd=cwd or ROOT,
        env=dict(env) if env is not None else base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_aws(args: Sequence[str], env: Mapping[str, str], home: Path,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """The AWS CLI with only the given AWS_* variables, a private HOME and empty config files."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "aws-config"
    creds = home / "aws-credentials"
    config.touch()
    creds.touch()
    full = base_env(
        HOME=str(home),
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_PAGER="",
        **env,
    )
    return subprocess.run(
        [str(aws_cli()), *args],
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sts_client(endpoint: str, credentials: dict | None = None):
    """A boto3 STS client for rolegate: signed with `credentials` (the `Credentials` member of an
    STS response), or unsigned."""
    if credentials is None:
        return boto3.client(
            "sts",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                          retries={"max_attempts": 1}),
        )
    return boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def new_admin_token() -> str:
    return secrets.token_hex(24)


# ---------------------------------------------------------------------------------------------------
# Test configurations: one head shared by every test server, and the pieces the tests add

EVERYTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'

Section = Union[str, Callable[[int], str]]


def rolegate_config(data_dir: Path | None, *sections: Section, account_name: str = "e2e",
                    host: str = "127.0.0.1") -> Callable[[int], str]:
    """The configuration of a test rolegate, for its port: the head every test server shares, then
    `sections` in order (TOML text, or a function of the port giving it).

    The head: listening on 127.0.0.1 at the port and reached at http://`host`:port; the sled store
    in `data_dir` (the memory store when it is None); the admin API with the token of
    ADMIN_TOKEN_ENV; the account ACCOUNT named `account_name`. Tables are separated by a blank
    line (pgtest.postgres_store swaps the `[store]` table up to the first one).
    """
    store = f'kind = "sled"\npath = "{data_dir}"' if data_dir is not None else 'kind = "memory"'

    def render(port: int) -> str:
        parts = [
            f'[server]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://{host}:{port}"',
            f"[store]\n{store}",
            f'[admin]\ntoken_env = "{ADMIN_TOKEN_ENV}"',
            f'[[accounts]]\nid = "{ACCOUNT}"\nname = "{account_name}"',
        ]
        parts += [(s(port) if callable(s) else s).strip("\n") for s in sections]
        return "\n\n".join(parts) + "\n"

    return render


def permission_set(name: str, settings: str = "", *, policy: tuple[str, str] = ("everything", EVERYTHING),
                   local_group: str = "dev", provider: str = "local", group: str | None = None) -> str:
    """A permission set with one policy (name, document; by default one allowing everything) and the
    rule that assigns it in ACCOUNT: to `local_group` of the directory, or with `group` to the
    people of `provider` in that group."""
    selector = f'group = "{group}"' if group is not None else f'local_group = "{local_group}"'
    lines = ["[[permission_sets]]", f'name = "{name}"']
    lines += [settings.strip("\n")] if settings else []
    lines += [
        "[[permission_sets.policies]]",
        f'name = "{policy[0]}"',
        f"document = '''{policy[1]}'''",
        "",
        "[[assignment_rules]]",
        f'provider = "{provider}"',
        f'permission_set = "{name}"',
        f'accounts = ["{ACCOUNT}"]',
        selector,
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The configuration of the shared test server

ROLE_DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"
ROLE_TARGET = f"arn:aws:iam::{ACCOUNT}:role/ci-target"
ROLE_REVOCABLE = f"arn:aws:iam::{ACCOUNT}:role/revocable"
DEPLOYER_SUB = "repo:acme/app:ref:refs/heads/main"
DEPLOYER_MAX_SESSION = 7200


def _federated_trust(idp: Idp, sub_pattern: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": idp.provider_arn()},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{idp.key_prefix}:aud": CLIENT_ID},
                        "StringLike": {f"{idp.key_prefix}:sub": sub_pattern},
                    },
                }
            ],
        },
        indent=2,
    )


def server_config(idp: Idp, data_dir: Path) -> Callable[[int], str]:
    """The configuration of the shared test server, for a port."""
    deployer_trust = _federated_trust(idp, "repo:acme/*")
    revocable_trust = _federated_trust(idp, "svc-*")
    chain_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_TARGET},
            ],
        }
    )
    target_trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    everything = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'

    return rolegate_config(
        data_dir,
        "[sts]\nregions = [\"us-east-1\"]\nmax_clock_skew_seconds = 900",
        f"""\
[[oidc_providers]]
issuer = "{idp.issuer}"
audiences = ["{CLIENT_ID}"]
algorithms = ["RS256", "ES256"]
leeway_seconds = 5
allow_http = true

[[roles]]
account = "{ACCOUNT}"
name = "ci-deployer"
max_session_duration = {DEPLOYER_MAX_SESSION}
trust_policy = '''
{deployer_trust}
'''

[[roles.policies]]
name = "chain-to-target"
document = '''{chain_policy}'''

[[roles]]
account = "{ACCOUNT}"
name = "ci-target"
trust_policy = '''{target_trust}'''

[[roles.policies]]
name = "everything"
document = '''{everything}'''

[[roles]]
account = "{ACCOUNT}"
name = "revocable"
trust_policy = '''
{revocable_trust}
'''
""",
    )

