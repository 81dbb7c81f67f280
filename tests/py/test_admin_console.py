"""The operator console against a real rolegate, in headless Chromium, from a fresh directory to a first
credential with the browser only: root bootstrapped at /admin/bootstrap with the token from the log,
root's console (groups, users, a policy, an access key shown once, the access, audit and health
pages), a person's first command line credentials, and a helpdesk operator who sees and does only its
grant and is refused beyond it; axe-core and a screenshot on every page (kept in tests/artifacts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import e2e
from test_directory import cli_json, sts_with_key

ACCOUNT = e2e.ACCOUNT


@pytest.fixture(scope="module")
def console_server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("console")
    config = e2e.rolegate_config(work / "data", e2e.permission_set("Dev"), "[portal]",
                                 account_name="console")
    srv = e2e.Rolegate(work, config_for_port=config, env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def test_root_bootstrap_to_a_first_credential_and_a_helpdesk_in_chromium(console_server):
    srv = console_server
    log = srv.log.read_text()
    token = re.search(r"bootstrap_token=(\S+)", log).group(1)
    assert f"{srv.url}/admin/bootstrap" in log, log

    node_dir = Path(os.environ.get("ROLEGATE_TEST_NODE_DIR", Path(__file__).parents[1] / "node"))
    artifacts = Path(__file__).parents[1] / "artifacts" / "admin-console"
    r = subprocess.run(
        ["node", str(node_dir / "admin-console-browser.mjs"), "--url", srv.url, "--token", token,
         "--permission-set", "Dev", "--out", str(artifacts)],
        capture_output=True, text=True, timeout=300, cwd=node_dir,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["violations"] == [], out["violations"]
    assert len(out["pages"]) == 19 and all((artifacts / f"{p}.png").exists() for p in out["pages"])

    # Bootstrap: a wrong token refused on the page, then root ready.
    assert "bootstrap token" in out["wrong_token"].lower(), out["wrong_token"]
    assert "Root is ready" in out["root_ready"]
    root = cli_json(srv, "user", "show", "root")
    assert root["password_set"] and root["mfa_devices"][0]["enabled"], root

    # Errors beside their forms, what was typed kept.
    assert "policy" in out["bad_policy"].lower(), out["bad_policy"]
    assert out["kept_policy_name"] == "desk"
    assert out["bad_name"] and out["kept_name"] == "bad name!"

    # carol's key: the secret on the page that made it, never on her page again.
    carol = cli_json(srv, "user", "show", "carol")
    key_id = carol["access_keys"][0]["access_key_id"]
    secret = re.search(r"Secret access key\s*([A-Za-z0-9+/]{40})", out["shown_key"]).group(1)
    assert key_id in out["carol_page"] and secret not in out["carol_page"]
    who = sts_with_key(srv, key_id, secret).get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/carol"

    assert "alice" in out["search"] and "carol" in out["search"] and "hal" in out["search"]
    assert "alice (1)" in out["access"], out["access"]
    assert "rolegate:CreateUser" in out["audit"]
    assert "The store is reachable" in out["health"]

    # alice's first credential works.
    c = out["credentials"]
    who = sts_with_key(srv, c["AWS_ACCESS_KEY_ID"], c["AWS_SECRET_ACCESS_KEY"],
                       c["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/RolegateSSO_Dev/alice"

    # The helpdesk: no console before MFA; then a lookup, and only the two forms it is granted.
    assert "needs a sign-in with MFA" in out["without_mfa"]
    assert "Find a user" in out["helpdesk_home"] and ">Users<" not in out["helpdesk_home"]
    assert sorted(set(out["offered"]) - {"/logout"}) == [
        "/admin/console/users/carol/password", "/admin/console/users/carol/unlock"], out["offered"]
    assert "The password is set." in out["helpdesk_reset"]
    assert "Not allowed" in out["refused"] and "rolegate:DisableUser" in out["refused"], out["refused"]
    assert cli_json(srv, "user", "show", "carol")["active"] is True
    denied = [e for e in srv.audit("--action", "rolegate:DisableUser") if e["decision"] == "deny"]
    assert denied and denied[-1]["principal"].endswith(":user/hal"), denied
