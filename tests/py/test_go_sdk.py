"""The AWS SDK for Go (v1, Debian's golang-github-aws-aws-sdk-go-dev, built offline in GOPATH mode)
against rolegate's STS: the web identity role provider (`stscreds`), given explicitly or found by the
session's default chain in the environment, gets credentials with AssumeRoleWithWebIdentity and a
token from the test OpenID provider, then GetCallerIdentity signed by the SDK with them is verified by
rolegate. A token for another audience is refused, and the SDK surfaces AWS's error.
tests/go/sts-web-identity drives the SDK."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

import e2e

ACCESS_KEY = re.compile(r"^ASIA[A-Z2-7]{16}$")
SOURCE = e2e.ROOT / "tests" / "go" / "sts-web-identity"
# Where Debian installs Go library sources.
DEBIAN_GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def go_program(tmp_path_factory) -> Path:
    """The program, built with Debian's Go and SDK sources only: no module download."""
    go = shutil.which("go")
    if go is None or not Path(DEBIAN_GOPATH, "src/github.com/aws/aws-sdk-go").is_dir():
        pytest.fail("go and the AWS SDK for Go are required (Debian golang-go and "
                    "golang-github-aws-aws-sdk-go-dev; scripts/test installs them)")
    work = tmp_path_factory.mktemp("go")
    out = work / "sts-web-identity"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": DEBIAN_GOPATH, "GOCACHE": str(work / "cache"),
           "GOFLAGS": "", "GOPROXY": "off", "CGO_ENABLED": "0"}
    proc = subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"go build failed:\n{proc.stdout}{proc.stderr}"
    return out


def run_go(program: Path, mode: str, tmp_path: Path, endpoint: str, token: str,
           session: str) -> tuple[int, dict]:
    env = e2e.web_identity_env(tmp_path, token, session, ROLEGATE_STS_ENDPOINT=endpoint)
    proc = subprocess.run([str(program), mode], env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{mode}: no JSON (exit {proc.returncode}): {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("mode", ["provider", "env"])
def test_web_identity_credentials_sign_get_caller_identity(server, idp, tmp_path, go_program, mode):
    session = f"go-{mode}-{secrets.token_hex(3)}"
    code, out = run_go(go_program, mode, tmp_path, server.url, idp.id_token(e2e.DEPLOYER_SUB), session)
    assert code == 0, out
    assert out["arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/{session}"
    assert out["account"] == e2e.ACCOUNT
    assert out["userId"].endswith(f":{session}")
    assert ACCESS_KEY.match(out["accessKeyId"]) and out["hasSessionToken"]
    assert out["provider"] == "WebIdentityCredentials"
    expires = datetime.fromisoformat(out["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(timezone.utc)).total_seconds() <= 12 * 3600

    event = server.audit_event(out["requestId"])
    assert event["action"] == "GetCallerIdentity" and event["decision"] == "allow", event
    assert event["access_key_id"] == out["accessKeyId"]
    assert "aws-sdk-go" in (event.get("user_agent") or ""), event


@pytest.mark.parametrize("mode", ["provider", "env"])
def test_a_token_for_another_audience_is_refused_as_invalid_identity_token(server, idp, tmp_path,
                                                                          go_program, mode):
    token = idp.id_token(e2e.DEPLOYER_SUB, client="rolegate-other")
    code, out = run_go(go_program, mode, tmp_path, server.url, token, f"go-aud-{secrets.token_hex(3)}")
    assert code == 2, out
    err = out["error"]
    assert err["code"] == "InvalidIdentityToken", err
    assert err["status"] == 400, err
    event = server.audit_event(err["requestId"])
    assert event["action"] == "AssumeRoleWithWebIdentity" and event["decision"] == "deny"
    assert event["reason"] == "aud is not one of the accepted audiences [\"rolegate-test\"]"
