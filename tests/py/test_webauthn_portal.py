"""Security keys in the portal, in headless Chromium with its virtual authenticator (CTAP2, user
verification): enrolment, sign-out, password sign-in, the WebAuthn challenge, command line access for
a permission set that needs MFA (credentials that work with boto3), and two refusals that leave the
session without MFA: a cloned key with a stale counter (refused by rolegate, with its reason in the
audit log) and an authenticator that does not hold the registered key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import e2e
from test_directory import cli_json, sts_with_key

ACCOUNT = e2e.ACCOUNT


def config(data_dir):
    return e2e.rolegate_config(
        data_dir,
        e2e.permission_set("Ops", 'mfa = "required"', local_group="ops"),
        '[portal]\nwebauthn_rp_name = "rolegate tests"',
        account_name="keys",
        host="localhost",
    )


@pytest.fixture(scope="module")
def keys_server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("webauthn-portal")
    srv = e2e.Rolegate(work, config_for_port=config(work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def test_security_key_enrolment_and_challenge_in_chromium(keys_server, tmp_path):
    srv = keys_server
    password = "lee's long portal password"
    cli_json(srv, "user", "create", "lee")
    pw = tmp_path / "lee.pw"
    pw.write_text(password + "\n")
    cli_json(srv, "user", "set-password", "lee", "--password-file", str(pw))
    cli_json(srv, "group", "create", "ops")
    cli_json(srv, "group", "add-user", "ops", "lee")

    public = f"http://localhost:{srv.port}"
    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    artifacts = Path(__file__).parents[1] / "artifacts" / "webauthn"
    r = subprocess.run(
        ["node", str(node_dir / "webauthn-browser.mjs"), "--url", public, "--user", "lee",
         "--password", password, "--account", ACCOUNT, "--permission-set", "Ops", "--out", str(artifacts)],
        capture_output=True, text=True, timeout=240, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["violations"] == [], out["violations"]

    # Enrolled, under the page's own CSP, with the name given.
    assert out["unsupported_notice_hidden"] is True
    assert out["after_enrol"] == f"{public}/portal/security/webauthn?done=added", out
    assert "Virtual key" in out["keys_table"], out

    # Password only: the session waits for the challenge and nothing is handed out; after the
    # challenge the MFA permission set is given.
    assert out["before_challenge"].get("pending"), out
    assert out["challenge"]["url"] == f"{public}/portal", out
    c = out["credentials"]
    who = sts_with_key(srv, c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"],
                       c["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Ops/lee"
    assert out["sign_count_after"] > out["registered_sign_count"]

    # A cloned key with a stale counter: refused by rolegate with a clear message, no MFA.
    assert out["cloned"]["url"].startswith(f"{public}/portal/mfa/webauthn"), out
    assert "may have been copied" in out["cloned"]["status"], out
    assert out["after_cloned"].get("pending"), out

    # An authenticator without the registered key: the browser finds none, no MFA.
    assert out["other"]["url"].startswith(f"{public}/portal/mfa/webauthn"), out
    assert "no registered key was used" in out["other"]["status"], out
    assert out["after_other"].get("pending"), out

    events = srv.audit("--action", "portal:SecurityKeyChallenge")
    decisions = [(e["decision"], e.get("reason", "")) for e in events]  # newest first
    assert [d for d, _ in decisions] == ["deny", "allow"], decisions
    assert "CredentialPossibleCompromise" in decisions[0][1] or \
        "signature counter did not increase" in decisions[0][1], decisions
    added = srv.audit("--action", "portal:RegisterSecurityKey")
    assert [(e["decision"], e.get("reason")) for e in added] == \
        [("allow", 'security key "Virtual key" added')], added
    devices = cli_json(srv, "user", "show", "lee")["mfa_devices"]
    assert [d["serial"].startswith("webauthn:") for d in devices] == [True], devices

    for name in ["1-sign-in", "2-security-keys-empty", "3-security-key-added", "4-challenge",
                 "6-command-line-access", "8-cloned-key-refused", "10-other-key-refused"]:
        assert (artifacts / f"{name}.png").stat().st_size > 1000
