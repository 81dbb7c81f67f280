"""Two rolegate replicas on one PostgreSQL database share the provisioned directory: a person
created through replica A's /scim/v2 is found by a filter on replica B within the refresh bound, and
a deactivation on A refuses the person's sign-in (AssumeRoleWithWebIdentity) on B within the same
bound, with B's audit event naming the deprovisioning."""

from __future__ import annotations

import time

import botocore.exceptions
import pytest
import requests

import e2e
from pgtest import DATABASE_URL_ENV, pg_cluster, postgres_store, wait_until  # noqa: F401 (fixture)
from test_replicas import BOUND
from test_scim_conformance import SCIM_TOKEN, SCIM_TOKEN_ENV

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SUBJECT = "svc-scim-dana"


@pytest.fixture(scope="module")
def replicas(pg_cluster, idp, rolegate_binary, admin_token, tmp_path_factory):
    url = pg_cluster.create_database("scim_replicas")
    env = {e2e.ADMIN_TOKEN_ENV: admin_token, DATABASE_URL_ENV: url, SCIM_TOKEN_ENV: SCIM_TOKEN}
    scim = f"""
[[scim_clients]]
name = "replicated-directory"
provider = "{idp.key_prefix}"
match = "userName"
token_env = "{SCIM_TOKEN_ENV}"
"""
    servers = []
    for name in ("a", "b"):
        work = tmp_path_factory.mktemp(f"scim-replica-{name}")
        render = e2e.server_config(idp, work / "unused")
        servers.append(e2e.Rolegate(
            work, config_for_port=lambda p, r=render: postgres_store(r(p)) + scim, env=env))
    yield servers
    for srv in servers:
        code = srv.stop()
        assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def scim(srv, method: str, path: str, body=None, **params) -> requests.Response:
    return requests.request(method, f"{srv.url}/scim/v2{path}", json=body, params=params or None,
                            headers={"Authorization": f"Bearer {SCIM_TOKEN}"}, timeout=10)


def sign_in(srv, id_token) -> str:
    """AssumeRoleWithWebIdentity for SUBJECT: "ok" or the error code (with the request id)."""
    try:
        e2e.sts_client(srv.url).assume_role_with_web_identity(
            RoleArn=e2e.ROLE_REVOCABLE, RoleSessionName="scim-replica",
            WebIdentityToken=id_token(SUBJECT))
        return "ok"
    except botocore.exceptions.ClientError as e:
        return f"{e.response['Error']['Code']} {e.response['ResponseMetadata']['RequestId']}"


def test_a_person_provisioned_and_deactivated_on_one_replica_is_seen_so_on_the_other(replicas, id_token):
    a, b = replicas
    r = scim(a, "POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                   "userName": SUBJECT, "active": True})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    created = time.monotonic()

    def found_on_b():
        r = scim(b, "GET", "/Users", filter=f'userName eq "{SUBJECT}"')
        assert r.status_code == 200, r.text
        return r.json()["totalResults"] == 1 and r.json()["Resources"][0]["id"] == uid

    wait_until("replica B finds the person replica A created", found_on_b, BOUND)
    print(f"the creation reached the other replica after {time.monotonic() - created:.2f} s")
    assert scim(b, "GET", f"/Users/{uid}").json()["active"] is True
    assert sign_in(b, id_token) == "ok"

    r = scim(a, "PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    deactivated = time.monotonic()
    assert sign_in(a, id_token).startswith("AccessDenied"), "the replica that deactivated refuses at once"
    refusal = wait_until("replica B refuses the deactivated person's sign-in",
                         lambda: (lambda got: got if got != "ok" else None)(sign_in(b, id_token)),
                         BOUND)
    print(f"the deactivation reached the other replica after {time.monotonic() - deactivated:.2f} s")
    code, request_id = refusal.split(" ")
    assert code == "AccessDenied", refusal
    # The audit writer batches: the event is in B's log within its window.
    ev = wait_until("B's audit event of the refusal",
                    lambda: next((e for e in b.audit() if e.get("request_id") == request_id), None),
                    5.0, interval=0.25)
    assert ev["decision"] == "deny" and ev["action"] == "AssumeRoleWithWebIdentity", ev
    assert "deprovisioned" in ev["reason"] and "replicated-directory" in ev["reason"], ev
    assert scim(b, "GET", f"/Users/{uid}").json()["active"] is False
