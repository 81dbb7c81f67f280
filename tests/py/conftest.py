"""Session fixtures: the test OpenID provider and one rolegate server trusting it, shared by every test,
both stopped at the end with SIGTERM and required to exit with status 0.

The AWS SDK in this process is isolated from the machine: no AWS_* variables, empty config and
credentials files, no instance metadata lookups.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import e2e


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_environment(tmp_path_factory):
    """No AWS_* variables from the caller's shell, empty SDK files, no instance metadata lookups."""
    home = tmp_path_factory.mktemp("aws-home")
    (home / "config").touch()
    (home / "credentials").touch()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        mp.setenv("AWS_CONFIG_FILE", str(home / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield home


@pytest.fixture(scope="session")
def rolegate_binary() -> Path:
    path = e2e.rolegate_bin()
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run `cargo build --bins` (or scripts/test)")
    return path


@pytest.fixture(scope="session")
def idp(tmp_path_factory):
    """The running test OpenID provider."""
    provider = e2e.Idp(tmp_path_factory.mktemp("idp"))
    yield provider
    code = provider.stop()
    assert code == 0, f"oidc-idp.mjs exited with {code}"


@pytest.fixture(scope="session")
def admin_token() -> str:
    return e2e.new_admin_token()


@pytest.fixture(scope="session")
def server(idp, rolegate_binary, admin_token, tmp_path_factory):
    """rolegate with the test configuration (sled store in a temporary directory, admin API on)."""
    work = tmp_path_factory.mktemp("rolegate")
    srv = e2e.Rolegate(
        work,
        config_for_port=e2e.server_config(idp, work / "data"),
        env={e2e.ADMIN_TOKEN_ENV: admin_token},
    )
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


@pytest.fixture(scope="session")
def id_token(idp):
    """Fetches an ID token from the test provider: id_token(sub, claims=None, alg=..., ...)."""
    return idp.id_token


@pytest.fixture(scope="session")
def sts(server):
    """An unsigned boto3 STS client (for AssumeRoleWithWebIdentity)."""
    return e2e.sts_client(server.url)


@pytest.fixture(scope="session")
def deployer_credentials(server, sts, id_token):
    """Credentials of a ci-deployer session (AssumeRoleWithWebIdentity through boto3)."""
    resp = sts.assume_role_with_web_identity(
        RoleArn=e2e.ROLE_DEPLOYER,
        RoleSessionName="sigv4-session",
        WebIdentityToken=id_token(e2e.DEPLOYER_SUB),
    )
    return resp["Credentials"]
