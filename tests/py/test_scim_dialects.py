"""The provisioning sequences of Okta and Microsoft Entra ID replayed over plain HTTP against a real
rolegate, request by request as their documentation describes them (the lookup by userName before a
creation, the create, the deactivation PATCH in each dialect, groups with batched member changes, the
removal of one member by a value filter, deletion), with each answer's status, content type and body
shape as those clients read them."""

from __future__ import annotations

import uuid

import pytest
import requests

import e2e
from test_scim_conformance import SCIM_TOKEN, SCIM_TOKEN_ENV, scim_config

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@pytest.fixture(scope="module")
def server(rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("scim-dialects")
    srv = e2e.Rolegate(work, config_for_port=scim_config(work / "data", name="directory"),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token, SCIM_TOKEN_ENV: SCIM_TOKEN})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


class Scim:
    """Plain HTTP to /scim/v2 as a directory sends it: bearer token, application/scim+json."""

    def __init__(self, server, user_agent: str):
        self.base = f"{server.url}/scim/v2"
        self.s = requests.Session()
        self.s.headers.update({"Authorization": f"Bearer {SCIM_TOKEN}",
                               "Accept": "application/scim+json",
                               "User-Agent": user_agent})

    def __call__(self, method: str, path: str, body=None, status: int = 200, **params):
        kw = {"params": params or None}
        if body is not None:
            kw["json"] = body
            kw["headers"] = {"Content-Type": "application/scim+json; charset=utf-8"}
        r = self.s.request(method, self.base + path, timeout=10, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        if status == 204:
            assert r.content == b""
            return None
        assert r.headers["Content-Type"].startswith("application/scim+json"), r.headers
        return r.json()


def empty_list(doc: dict) -> None:
    assert doc["schemas"] == [LIST] and doc["totalResults"] == 0, doc
    assert doc.get("Resources", []) == [], doc


def one(doc: dict, rid: str) -> dict:
    assert doc["schemas"] == [LIST] and doc["totalResults"] == 1, doc
    assert doc["startIndex"] == 1 and doc["itemsPerPage"] == 1, doc
    assert doc["Resources"][0]["id"] == rid, doc
    return doc["Resources"][0]


def test_okta_provisions_deactivates_and_manages_group_push(server):
    scim = Scim(server, "Okta SCIM Client 1.0.0")
    login = "dana.okta@corp.example"
    # Import/create: Okta looks the person up first, paged.
    empty_list(scim("GET", "/Users", filter=f'userName eq "{login}"', startIndex=1, count=100))
    user = scim("POST", "/Users", {
        "schemas": [CORE_USER], "userName": login,
        "name": {"givenName": "Dana", "familyName": "Okta"},
        "emails": [{"primary": True, "value": login, "type": "work"}],
        "displayName": "Dana Okta", "locale": "en-US", "externalId": "00u1a2b3c4",
        "groups": [], "password": "t1meMa$heen", "active": True,
    }, status=201)
    uid = user["id"]
    assert user["userName"] == login and user["active"] is True and "password" not in user
    assert user["meta"]["resourceType"] == "User" and user["meta"]["location"].endswith(f"/Users/{uid}")
    assert one(scim("GET", "/Users", filter=f'userName eq "{login.upper()}"', startIndex=1,
                    count=100), uid)["userName"] == login
    got = scim("GET", f"/Users/{uid}")
    assert got["id"] == uid and got["name"]["givenName"] == "Dana" and not got.get("groups")
    # Profile push: Okta replaces the whole user with PUT.
    put = scim("PUT", f"/Users/{uid}", {**{k: v for k, v in got.items() if k != "meta"},
                                        "name": {"givenName": "Dana", "familyName": "Oktavia"}})
    assert put["name"]["familyName"] == "Oktavia" and put["meta"]["version"] != got["meta"]["version"]
    # Deactivation: a path-less replace of {"active": false}.
    off = scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert off["active"] is False and off["id"] == uid
    # Reactivation the same way.
    assert scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"active": True}}]})["active"] is True

    # Group push: create (empty), look up by displayName, rename, members add/remove, delete.
    others = [scim("POST", "/Users", {"schemas": [CORE_USER], "userName": f"okta{i}@corp.example",
                                      "active": True}, status=201)["id"] for i in range(3)]
    empty_list(scim("GET", "/Groups", filter='displayName eq "Okta Platform"', startIndex=1, count=100))
    group = scim("POST", "/Groups", {"schemas": [CORE_GROUP], "displayName": "Okta Platform",
                                     "members": []}, status=201)
    gid = group["id"]
    assert group["displayName"] == "Okta Platform" and group.get("members", []) == []
    assert one(scim("GET", "/Groups", filter='displayName eq "Okta Platform"', startIndex=1,
                    count=100), gid)["displayName"] == "Okta Platform"
    renamed = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Okta Platform Team"}}]})
    assert renamed["displayName"] == "Okta Platform Team" and renamed["id"] == gid
    added = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members",
         "value": [{"value": i, "display": f"okta{n}@corp.example"} for n, i in enumerate([uid, *others])]}]})
    assert {m["value"] for m in added["members"]} == {uid, *others}
    removed = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": f'members[value eq "{others[0]}"]'}]})
    assert {m["value"] for m in removed["members"]} == {uid, *others[1:]}
    assert [g["value"] for g in scim("GET", f"/Users/{uid}")["groups"]] == [gid]
    scim("DELETE", f"/Groups/{gid}", status=204)
    gone = scim("GET", f"/Groups/{gid}", status=404)
    assert gone["status"] == "404" and "urn:ietf:params:scim:api:messages:2.0:Error" in gone["schemas"]
    assert scim("GET", f"/Users/{uid}").get("groups", []) == []


def test_entra_id_provisions_with_its_dialect(server):
    scim = Scim(server, "Microsoft.AAD.SCIM-Client/1.0")
    login = f"Test_User_{uuid.uuid4()}@testuser.com"
    # Entra asks for a user that does not exist, then for the one it is about to create.
    empty_list(scim("GET", "/Users", filter=f'userName eq "non-existent-{uuid.uuid4()}@testuser.com"'))
    empty_list(scim("GET", "/Users", filter=f'userName eq "{login}"'))
    user = scim("POST", "/Users", {
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()), "userName": login, "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": login}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations",
                     "manager": {"value": "123"}},
    }, status=201)
    uid = user["id"]
    assert set(user["schemas"]) == {CORE_USER, ENTERPRISE}, user
    assert user[ENTERPRISE]["department"] == "Tour Operations"
    assert one(scim("GET", "/Users", filter=f'userName eq "{login}"'), uid)["active"] is True
    assert one(scim("GET", "/Users", filter=f'emails[type eq "work"].value eq "{login}"'), uid)
    assert scim("GET", f"/Users/{uid}")["userName"] == login
    # Attribute changes in Entra's capitalised ops, a work email it did not have, and the
    # deactivation with the boolean as the string "False".
    patched = scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "displayName", "value": "Test User Renamed"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new." + login},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Flights"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    ]})
    assert patched["displayName"] == "Test User Renamed"
    assert [e["value"] for e in patched["emails"] if e["type"] == "work"] == ["new." + login]
    assert patched[ENTERPRISE]["department"] == "Flights"
    assert patched["name"]["familyName"] == "updatedFamilyName"
    off = scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert off["active"] is False
    on = scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "value": {"active": "True"}}]})
    assert on["active"] is True

    # Groups: created without members, found by id and displayName without members, members
    # added in batches of many {"value": id}, one removed by a value filter, others by value list.
    people = [scim("POST", "/Users", {"schemas": [CORE_USER, ENTERPRISE], "userName": f"entra{i}@testuser.com",
                                      "externalId": str(uuid.uuid4()), "active": True},
                   status=201)["id"] for i in range(60)]
    group = scim("POST", "/Groups", {"schemas": [CORE_GROUP], "externalId": str(uuid.uuid4()),
                                     "displayName": "Entra Flights", "meta": {"resourceType": "Group"}},
                 status=201)
    gid = group["id"]
    assert group.get("members", []) == []
    found = one(scim("GET", "/Groups", filter=f'id eq "{gid}"', excludedAttributes="members"), gid)
    assert "members" not in found
    one(scim("GET", "/Groups", filter='displayName eq "Entra Flights"', excludedAttributes="members"), gid)
    for batch in (people[:25], people[25:50], people[50:] + [uid]):
        scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "Add", "path": "members", "value": [{"value": i} for i in batch]}]})
    members = {m["value"] for m in scim("GET", f"/Groups/{gid}")["members"]}
    assert members == {*people, uid}
    # Entra checks a membership with a filter on members.
    one(scim("GET", "/Groups", filter=f'id eq "{gid}" and members eq "{uid}"',
             excludedAttributes="members"), gid)
    scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Remove", "path": f'members[value eq "{people[0]}"]'}]})
    scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": i} for i in people[1:10]]}]})
    members = {m["value"] for m in scim("GET", f"/Groups/{gid}")["members"]}
    assert members == {*people[10:], uid}
    # Deletion: the user, then the group; both gone, the user from the group too.
    scim("DELETE", f"/Users/{uid}", status=204)
    scim("GET", f"/Users/{uid}", status=404)
    empty_list(scim("GET", "/Users", filter=f'userName eq "{login}"'))
    assert uid not in {m["value"] for m in scim("GET", f"/Groups/{gid}")["members"]}
    scim("DELETE", f"/Groups/{gid}", status=204)
    scim("GET", f"/Groups/{gid}", status=404)
