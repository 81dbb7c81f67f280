"""MFA in the portal against a real rolegate, in headless Chromium: TOTP enrolment from the QR page
(the secret read from the page, codes computed here and in the browser script with RFC 6238), the
recovery codes shown once, the challenge after a password-only sign-in passed with a recovery code
and with a TOTP code, credentials of a permission set that needs MFA, a used and an old recovery
code refused, new recovery codes and the app's removal; axe-core and a screenshot on every page."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import e2e
from test_directory import cli_json, sts_with_key, totp
from test_portal import ACCOUNT, Browser, config


@pytest.fixture(scope="module")
def mfa_server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("mfa")
    srv = e2e.Rolegate(work, config_for_port=config(work / "data"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def test_totp_enrolment_challenge_and_recovery_codes_in_chromium(mfa_server, tmp_path):
    password = "mia's long portal password"
    cli_json(mfa_server, "user", "create", "mia")
    pw = tmp_path / "mia.pw"
    pw.write_text(password + "\n")
    cli_json(mfa_server, "user", "set-password", "mia", "--password-file", str(pw))
    mfa_server.cli("group", "create", "dev")
    cli_json(mfa_server, "group", "add-user", "dev", "mia")

    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    artifacts = Path(__file__).parents[1] / "artifacts" / "mfa"
    r = subprocess.run(
        ["node", str(node_dir / "mfa-browser.mjs"), "--url", mfa_server.url, "--user", "mia",
         "--password", password, "--account", ACCOUNT, "--permission-set", "Ops", "--out", str(artifacts)],
        capture_output=True, text=True, timeout=180, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["violations"] == [], out["violations"]

    # The page showed one QR code and the secret; this side's RFC 6238 agrees with the browser's.
    assert out["qr_codes"] == 1
    assert re.fullmatch(r"[A-Z2-7]{32}", out["secret"]), out["secret"]
    assert totp(out["secret"], out["totp_step"] * 30) == out["totp_code"]
    codes = out["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes), codes

    assert out["challenge_url"] == f"{mfa_server.url}/portal/mfa?return_to=%2Fportal"
    assert "wrong or has been used" in out["wrong_code_message"]
    assert out["home_while_pending"] == f"{mfa_server.url}/portal/mfa"
    assert "You have 9 unused recovery codes" in out["security"]
    assert "Set up since" in out["security"]

    # The credentials of the MFA permission set work.
    c = out["credentials"]
    who = sts_with_key(mfa_server, c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"],
                       c["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Ops/mia"

    assert "You have no MFA method set up yet" in out["no_method"]
    # A recovery code works once, and new codes end the old set.
    assert "That recovery code is wrong or has been used" in out["reused_code_message"]
    assert "That recovery code is wrong or has been used" in out["old_code_message"]
    # After the app was removed, no MFA method is left and the recovery codes went with it.
    assert "Not set up" in out["after_removal"]
    assert "Recovery codes are made when you set up your first MFA method" in out["after_removal"]
    b = Browser(mfa_server.url)
    status, headers, _ = b.sign_in("mia", password)
    assert status == 303 and headers["location"] == "/portal"
    new_codes = out["new_recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)

    for name in ["mfa-0-no-method", "mfa-1-security", "mfa-2-enrol-qr", "mfa-3-recovery-codes", "mfa-4-challenge",
                 "mfa-5-wrong-code", "mfa-6-home-after-recovery-code", "mfa-7-mfa-credentials",
                 "mfa-8-security-enrolled", "mfa-9-new-recovery-codes", "mfa-10-removed"]:
        assert (artifacts / f"{name}.png").stat().st_size > 1000
