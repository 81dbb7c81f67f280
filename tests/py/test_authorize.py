"""The authorization API (`POST /v1/authorize`) and managed policies, end to end: credentials from a real
OpenID provider through boto3, downstream requests signed by botocore's own SigV4 signer for `s3`, and
decisions from role policies (inline and managed), permissions boundaries, session policies given as
`PolicyArns`, and resource policies. Denials carry an encoded message that boto3's
`decode_authorization_message` turns back into the explanation."""

from __future__ import annotations

import base64
import json
import secrets

import botocore.exceptions
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import e2e

ACCOUNT = e2e.ACCOUNT
SERVICE_TOKEN_ENV = "ROLEGATE_TEST_OBJSTORE_TOKEN"
READ_DATA = f"arn:aws:iam::{ACCOUNT}:policy/storage/ReadData"
NO_DELETE = f"arn:aws:iam::{ACCOUNT}:policy/NoDelete"
ONLY_REPORTS = f"arn:aws:iam::{ACCOUNT}:policy/OnlyReports"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SUB = "svc-authorize"


def _config(idp, data_dir):
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": idp.provider_arn()},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{idp.key_prefix}:aud": e2e.CLIENT_ID, f"{idp.key_prefix}:sub": SUB}}}]})
    read_data = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadData", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"],
         "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]},
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::data/secret/*"}]})
    inline = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteOwnPrefix", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::data/${" + idp.key_prefix + ":sub}/*"},
        {"Sid": "TaggedOnly", "Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": "*",
         "Condition": {"StringEquals": {"s3:RequestObjectTag/team": "blue"}}},
        {"Sid": "Decode", "Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}]})
    boundary = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"}]})
    only_reports = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data/reports/*"},
        {"Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}]})

    return e2e.rolegate_config(
        data_dir,
        f"""\
[sts]
regions = ["us-east-1"]
[[services]]
name = "objstore"
signing_names = ["s3"]
token_env = "{SERVICE_TOKEN_ENV}"
[[oidc_providers]]
issuer = "{idp.issuer}"
audiences = ["{e2e.CLIENT_ID}"]
allow_http = true
[[managed_policies]]
account = "{ACCOUNT}"
name = "ReadData"
path = "/storage/"
document = '''{read_data}'''
[[managed_policies]]
account = "{ACCOUNT}"
name = "NoDelete"
document = '''{boundary}'''
[[managed_policies]]
account = "{ACCOUNT}"
name = "OnlyReports"
document = '''{only_reports}'''
[[roles]]
account = "{ACCOUNT}"
name = "app"
trust_policy = '''{trust}'''
managed_policy_arns = ["{READ_DATA}"]
permissions_boundary = "{NO_DELETE}"
[[roles.policies]]
name = "own-prefix"
document = '''{inline}'''
""",
        account_name="authorize",
    )


@pytest.fixture(scope="module")
def service_token():
    return secrets.token_hex(24)


@pytest.fixture(scope="module")
def authz_server(idp, rolegate_binary, tmp_path_factory, service_token, admin_token):
    work = tmp_path_factory.mktemp("authorize")
    srv = e2e.Rolegate(work, config_for_port=_config(idp, work / "data"),
                       env={SERVICE_TOKEN_ENV: service_token, e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    assert srv.stop() == 0, srv.log_tail()


def _credentials(srv, id_token, **extra):
    sts = e2e.sts_client(srv.url)
    resp = sts.assume_role_with_web_identity(RoleArn=APP_ROLE, RoleSessionName="authz-" + secrets.token_hex(3),
                                             WebIdentityToken=id_token(SUB), **extra)
    return resp["Credentials"]


@pytest.fixture(scope="module")
def creds(authz_server, id_token):
    return _credentials(authz_server, id_token)


def signed_s3(creds, method="GET", path="/data/file.txt", query="", body=b"", headers=None, tamper=None):
    """A request to an S3-compatible service, signed by botocore's S3 signer, as the service got it."""
    c = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    url = f"https://objstore.example{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    S3SigV4Auth(c, "s3", "us-east-1").add_auth(req)
    hdrs = {k.lower(): v for k, v in req.headers.items()}
    hdrs["host"] = "objstore.example"
    if tamper:
        tamper(hdrs)
    out = {"method": method, "path": path, "query": query, "headers": hdrs}
    if body:
        out["body_base64"] = base64.b64encode(body).decode()
    return out


def authorize(srv, token, request, action, resource, **extra):
    body = json.dumps({"request": request, "action": action, "resource": resource, **extra}).encode()
    return e2e.http("POST", f"{srv.url}/v1/authorize", body=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def test_managed_policy_allows_and_the_principal_is_verified(authz_server, service_token, creds):
    r = authorize(authz_server, service_token, signed_s3(creds), "s3:GetObject", "arn:aws:s3:::data/file.txt",
                  source_ip="203.0.113.9")
    assert r.status == 200, r.text
    out = r.json()
    assert out["allowed"] is True and out["decision"] == "Allow"
    assert out["principal"]["role_arn"] == APP_ROLE
    assert out["principal"]["access_key_id"] == creds["AccessKeyId"]
    assert out["principal"]["subject"] == SUB
    matched = {(m["scope"], m["policy"], m["sid"]) for m in out["matched_statements"]}
    assert matched == {("Identity", READ_DATA, "ReadData"), ("Boundary", NO_DELETE, None)}
    event = authz_server.audit_event(r.headers["x-amzn-requestid"])
    assert event["service"] == "objstore" and event["decision"] == "allow"
    assert event["action"] == "s3:GetObject" and event["resource"] == "arn:aws:s3:::data/file.txt"


def test_explicit_deny_in_a_managed_policy_wins(authz_server, service_token, creds):
    r = authorize(authz_server, service_token, signed_s3(creds, path="/data/secret/k"), "s3:GetObject",
                  "arn:aws:s3:::data/secret/k")
    out = r.json()
    assert r.status == 200 and out["allowed"] is False and out["decision"] == "ExplicitDeny"
    sts = e2e.sts_client(authz_server.url, creds)
    decoded = json.loads(sts.decode_authorization_message(
        EncodedMessage=out["encoded_authorization_message"])["DecodedMessage"])
    assert decoded["explicitDeny"] is True
    assert {"policy": READ_DATA, "scope": "Identity", "sid": "NoSecrets", "index": 1, "effect": "Deny"} \
        in decoded["matchedStatements"]["items"]
    assert any(m["sid"] == "NoSecrets" and m["effect"] == "Deny" for m in out["matched_statements"])


def test_policy_variables_and_the_permissions_boundary(authz_server, service_token, creds):
    own = f"arn:aws:s3:::data/{SUB}/x"
    put = authorize(authz_server, service_token, signed_s3(creds, "PUT", f"/data/{SUB}/x", body=b"hello"),
                    "s3:PutObject", own).json()
    assert put["allowed"] is True, put
    other = authorize(authz_server, service_token, signed_s3(creds, "PUT", "/data/other/x", body=b"hello"),
                      "s3:PutObject", "arn:aws:s3:::data/other/x").json()
    assert other["decision"] == "ImplicitDeny"
    # The inline policy allows DeleteObject on the own prefix, the boundary does not.
    delete = authorize(authz_server, service_token, signed_s3(creds, "DELETE", f"/data/{SUB}/x"),
                       "s3:DeleteObject", own).json()
    assert delete["decision"] == "ImplicitDeny", delete
    boundary = [p for p in delete["explanation"]["policies"] if p["scope"] == "Boundary"]
    assert boundary and boundary[0]["policy"] == NO_DELETE


def test_service_context_keys_and_missing_ones(authz_server, service_token, creds):
    req = signed_s3(creds, "PUT", "/data/f", query="tagging")
    missing = authorize(authz_server, service_token, req, "s3:PutObjectTagging", "arn:aws:s3:::data/f").json()
    assert missing["allowed"] is False
    assert "s3:RequestObjectTag/team" in missing["missing_context_values"]
    given = authorize(authz_server, service_token, req, "s3:PutObjectTagging", "arn:aws:s3:::data/f",
                      context={"s3:RequestObjectTag/team": "blue"}).json()
    assert given["allowed"] is True
    wrong = authorize(authz_server, service_token, req, "s3:PutObjectTagging", "arn:aws:s3:::data/f",
                      context={"s3:RequestObjectTag/team": "red"}).json()
    assert wrong["allowed"] is False and wrong["missing_context_values"] == []


def test_a_resource_policy_can_grant(authz_server, service_token, creds):
    rp = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": APP_ROLE},
                                                   "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"}]}
    req = signed_s3(creds, path="/shared/a")
    without = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::shared/a").json()
    assert without["allowed"] is False
    with_rp = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::shared/a",
                        resource_policy=rp, resource_account=ACCOUNT).json()
    assert with_rp["allowed"] is True
    assert any(m["scope"] == "Resource" for m in with_rp["matched_statements"])
    # An S3 ARN names no account: unless the service says the bucket is the role's account's, a
    # resource policy cannot allow on its own, and in another account the role's policies must
    # allow too.
    for extra in ({}, {"resource_account": "999988887777"}):
        out = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::shared/a",
                        resource_policy=rp, **extra).json()
        assert out["allowed"] is False, (extra, out)


def test_a_denial_decodes_into_its_explanation(authz_server, service_token, creds):
    out = authorize(authz_server, service_token, signed_s3(creds, path="/other/x"), "s3:GetObject",
                    "arn:aws:s3:::other/x").json()
    assert out["allowed"] is False
    sts = e2e.sts_client(authz_server.url, creds)
    decoded = json.loads(sts.decode_authorization_message(
        EncodedMessage=out["encoded_authorization_message"])["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is False
    assert decoded["context"]["action"] == "s3:GetObject"
    assert decoded["context"]["resource"] == "arn:aws:s3:::other/x"
    assert decoded["explanation"]["effect"] == "ImplicitDeny"
    # Only the boundary's statement applied: nothing of the role allows other/x.
    assert decoded["matchedStatements"]["items"] == [
        {"policy": NO_DELETE, "scope": "Boundary", "sid": None, "index": 0, "effect": "Allow"}]


def test_policy_arns_narrow_the_session(authz_server, service_token, id_token):
    narrowed = _credentials(authz_server, id_token, PolicyArns=[{"arn": ONLY_REPORTS}])
    reports = authorize(authz_server, service_token, signed_s3(narrowed, path="/data/reports/q1"),
                        "s3:GetObject", "arn:aws:s3:::data/reports/q1").json()
    assert reports["allowed"] is True
    assert {m["scope"] for m in reports["matched_statements"]} == {"Identity", "Session", "Boundary"}
    # The role's policies allow data/file.txt; the session policy does not: it never widens.
    other = authorize(authz_server, service_token, signed_s3(narrowed), "s3:GetObject",
                      "arn:aws:s3:::data/file.txt").json()
    assert other["allowed"] is False


def test_unknown_policy_arns_are_refused_and_issue_nothing(authz_server, id_token):
    before = len(authz_server.audit("--decision", "allow"))
    for arn in (f"arn:aws:iam::{ACCOUNT}:policy/Nope", "arn:aws:iam::999988887777:policy/storage/ReadData"):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            _credentials(authz_server, id_token, PolicyArns=[{"arn": arn}])
        assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert f"Policy {arn} does not exist or is not attachable." == err.value.response["Error"]["Message"]
    assert len(authz_server.audit("--decision", "allow")) == before


@pytest.mark.parametrize("case", ["bad-signature", "wrong-service-scope", "foreign-token", "tampered-path"])
def test_requests_that_do_not_verify_get_the_aws_error(authz_server, service_token, creds, case):
    if case == "bad-signature":
        def tamper(h):
            h["authorization"] = h["authorization"][:-4] + ("0000" if not h["authorization"].endswith("0000") else "1111")
        req, code = signed_s3(creds, tamper=tamper), "SignatureDoesNotMatch"
    elif case == "wrong-service-scope":
        c = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        r = AWSRequest(method="GET", url="https://objstore.example/data/file.txt")
        SigV4Auth(c, "dynamodb", "us-east-1").add_auth(r)
        hdrs = {k.lower(): v for k, v in r.headers.items()}
        hdrs["host"] = "objstore.example"
        req, code = {"method": "GET", "path": "/data/file.txt", "headers": hdrs}, "SignatureDoesNotMatch"
    elif case == "foreign-token":
        req = signed_s3(creds, tamper=lambda h: h.update({"x-amz-security-token": "AAAA" + h["x-amz-security-token"][4:]}))
        code = "InvalidClientTokenId"
    else:
        req = signed_s3(creds)
        req["path"] = "/data/secret/k"
        code = "SignatureDoesNotMatch"
    r = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::data/file.txt")
    assert r.status == 403, r.text
    assert r.json()["error"]["code"] == code
    event = authz_server.audit_event(r.headers["x-amzn-requestid"])
    assert event["decision"] == "deny" and event["error_code"] == code


# S3 signs the path exactly as sent: an object key with an encoded space, an empty segment or dot
# segments is not normalised nor encoded a second time.
S3_AWKWARD_KEY = "/data/q1%20report//./v2/../final.txt"


def test_s3_keys_are_verified_as_signed_header_form(authz_server, service_token, creds):
    r = authorize(authz_server, service_token, signed_s3(creds, path=S3_AWKWARD_KEY), "s3:GetObject",
                  "arn:aws:s3:::data/q1 report//./v2/../final.txt")
    assert r.status == 200, r.text
    assert r.json()["allowed"] is True
    # Normalised, it is no longer the request botocore signed.
    req = signed_s3(creds, path=S3_AWKWARD_KEY)
    req["path"] = "/data/q1%20report/final.txt"
    r = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::data/x")
    assert r.status == 403 and r.json()["error"]["code"] == "SignatureDoesNotMatch", r.text


def test_s3_presigned_urls_sign_no_payload(authz_server, service_token, creds):
    c = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    aws_req = AWSRequest(method="GET", url=f"https://objstore.example{S3_AWKWARD_KEY}")
    S3SigV4QueryAuth(c, "s3", "us-east-1", expires=300).add_auth(aws_req)
    path, _, query = aws_req.url.split("objstore.example", 1)[1].partition("?")
    assert path == S3_AWKWARD_KEY
    req = {"method": "GET", "path": path, "query": query, "headers": {"host": "objstore.example"}}
    refused = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::data/x")
    assert refused.status == 403 and refused.json()["error"]["code"] == "SignatureDoesNotMatch", refused.text
    allowed = authorize(authz_server, service_token, {**req, "allow_unsigned_payload": True}, "s3:GetObject",
                        "arn:aws:s3:::data/x")
    assert allowed.status == 200, allowed.text
    assert allowed.json()["allowed"] is True


def test_the_api_refuses_unknown_services_and_bad_input(authz_server, service_token, creds):
    req = signed_s3(creds)
    assert authorize(authz_server, "x" * 48, req, "s3:GetObject", "*").status == 401
    assert e2e.http("POST", f"{authz_server.url}/v1/authorize", body=b"{}").status == 401
    bad = [
        ({"context": {"aws:PrincipalTag/team": "admins"}}, "set by rolegate"),
        ({"context": {"nocolon": "x"}}, "prefix:name"),
        ({"resource_policy": {"Statement": "nope"}}, "resource_policy"),
    ]
    for extra, needle in bad:
        r = authorize(authz_server, service_token, req, "s3:GetObject", "arn:aws:s3:::data/file.txt", **extra)
        assert r.status == 400, (extra, r.text)
        assert needle in r.json()["error"]["message"], r.text
    for action, resource in (("GetObject", "*"), ("s3:GetObject", "bucket/key")):
        assert authorize(authz_server, service_token, req, action, resource).status == 400
    r = e2e.http("POST", f"{authz_server.url}/v1/authorize", body=b"not json",
                 headers={"Authorization": f"Bearer {service_token}"})
    assert r.status == 400 and r.json()["error"]["code"] == "InvalidInput"


def test_a_federated_claim_key_cannot_be_supplied(authz_server, service_token, creds, idp):
    r = authorize(authz_server, service_token, signed_s3(creds), "s3:GetObject", "arn:aws:s3:::data/file.txt",
                  context={f"{idp.key_prefix}:sub": "someone-else"})
    assert r.status == 400 and "set by rolegate" in r.json()["error"]["message"]
