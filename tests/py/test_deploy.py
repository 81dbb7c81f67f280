"""The deployment files: the Dockerfile and deploy/compose.yaml parse, reference files that exist,
and the configuration the replicas run with passes `rolegate check-config` with the compose
file's environment. (No container engine runs where these tests run: the images are not built.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml  # PyYAML, installed with awscli

import e2e

DEPLOY = e2e.ROOT / "deploy"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_two_replicas_postgres_and_a_load_balancer_over_files_that_exist():
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "rolegate-a", "rolegate-b", "lb"}
    for name in ("rolegate-a", "rolegate-b"):
        s = services[name]
        assert s["environment"]["ROLEGATE__STORE__KIND"] == "postgres"
        assert s["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert (DEPLOY / s["build"]["context"] / s["build"]["dockerfile"]).is_file()
        for volume in s["volumes"]:
            src = volume.split(":")[0]
            assert (DEPLOY / src).is_file(), volume
        assert set(s["secrets"]) <= set(c["secrets"])
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    for volume in services["lb"]["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).is_file(), volume
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server rolegate-a:8080" in nginx and "server rolegate-b:8080" in nginx
    # Secrets are made by the operator (see the file's header), never committed.
    for s in c["secrets"].values():
        assert s["file"].startswith("./secrets/")
    assert "deploy/secrets" in (e2e.ROOT / ".dockerignore").read_text().split()


def test_dockerfile_is_multi_stage_non_root_and_distroless():
    text = (e2e.ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    assert len(stages) == 2, stages
    assert stages[0][0].startswith("rust:") and stages[0][1] == "build"
    assert stages[1][0].startswith("gcr.io/distroless/")
    assert re.search(r"^USER 65532:65532$", text, re.M)
    for src in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        assert (e2e.ROOT / src).exists(), src
    toolchain = (e2e.ROOT / "rust-toolchain.toml").read_text()
    version = re.search(r'channel = "(\d+\.\d+)', toolchain).group(1)
    assert stages[0][0] == f"rust:{version}-bookworm", "the build image follows rust-toolchain.toml"


def test_the_replicas_configuration_passes_check_config_with_the_compose_environment(tmp_path):
    env = dict(compose()["services"]["rolegate-a"]["environment"])
    # The PostgreSQL store is configured by these two; the rest of the file must be valid as it is.
    env.pop("ROLEGATE__STORE__KIND")
    env.pop("ROLEGATE__STORE__URL_FILE")
    env.pop("ROLEGATE_CONFIG")
    token = tmp_path / "admin-token"
    token.write_text(e2e.new_admin_token())
    env["ROLEGATE__ADMIN__TOKEN_FILE"] = str(token)
    env["ROLEGATE__STORE__KIND"] = "memory"
    r = e2e.run_rolegate(["--config", str(DEPLOY / "rolegate.toml"), "check-config"],
                         env=e2e.base_env(**env))
    assert r.returncode == 0, r.stderr
    assert "ok (1 accounts, 1 oidc providers, 1 roles" in r.stdout
    # And a misspelt variable is caught, naming it.
    env["ROLEGATE__SHUTDOWN__DRAIN_SECOND"] = "5"
    r = e2e.run_rolegate(["--config", str(DEPLOY / "rolegate.toml"), "check-config"],
                         env=e2e.base_env(**env))
    assert r.returncode == 2
    assert "<environment>: ROLEGATE__SHUTDOWN__DRAIN_SECOND: unknown field" in r.stderr
