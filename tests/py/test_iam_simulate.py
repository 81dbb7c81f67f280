"""boto3's IAM client against rolegate's policy simulator (SimulatePrincipalPolicy and
SimulateCustomPolicy), with credentials rolegate issued through AssumeRoleWithWebIdentity: decisions
and the statements behind them, missing and supplied context keys, permissions boundaries, resource
policies, pagination, and the refusals (unknown role, malformed policy, a caller not allowed to
simulate, unsigned or badly signed requests), each as botocore sees it.

The roles simulated here live in this module's own server configuration."""

from __future__ import annotations

import json
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
import botocore
import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ParamValidationError

import e2e

ACCOUNT = e2e.ACCOUNT
IAM_NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

SIMULATOR = f"arn:aws:iam::{ACCOUNT}:role/simulator"
BYSTANDER = f"arn:aws:iam::{ACCOUNT}:role/bystander"
APP = f"arn:aws:iam::{ACCOUNT}:role/app"
BOUNDED = f"arn:aws:iam::{ACCOUNT}:role/bounded"
DYNAMO_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/AppDynamo"
BOUNDARY_POLICY = f"arn:aws:iam::{ACCOUNT}:policy/S3ReadBoundary"

PUBLIC_OBJECT = "arn:aws:s3:::app-bucket/public/a.txt"
SECRET_OBJECT = "arn:aws:s3:::app-bucket/secret/key"
SHARED_BUCKET = "arn:aws:s3:::shared-bucket"

# The example of IAM's documentation, whose only statement spans columns 38 to 167 of line 1.
DATED_POLICY = (
    '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
    '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}'
)


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def federated_trust(idp, sub_pattern: str) -> str:
    return doc({
        "Effect": "Allow",
        "Principal": {"Federated": idp.provider_arn()},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {f"{idp.key_prefix}:aud": e2e.CLIENT_ID},
            "StringLike": {f"{idp.key_prefix}:sub": sub_pattern},
        },
    })


def config(idp):
    account_trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                         "Action": "sts:AssumeRole"})
    simulate = doc(
        allow("iam:SimulatePrincipalPolicy", f"arn:aws:iam::{ACCOUNT}:role/*"),
        allow("iam:SimulateCustomPolicy"),
    )
    s3_access = doc(
        {"Sid": "ReadBucket", **allow("s3:GetObject", "arn:aws:s3:::app-bucket/*")},
        {"Sid": "DenySecrets", "Effect": "Deny", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::app-bucket/secret/*"},
        {"Sid": "PrivatePuts", **allow("s3:PutObject", "arn:aws:s3:::app-bucket/*",
                                       Condition={"StringEquals": {"s3:x-amz-acl": "private"}})},
    )

    return e2e.rolegate_config(
        None,
        f"""\
[sts]
regions = ["us-east-1"]

[[oidc_providers]]
issuer = "{idp.issuer}"
audiences = ["{e2e.CLIENT_ID}"]
algorithms = ["RS256"]
leeway_seconds = 5
allow_http = true

[[managed_policies]]
account = "{ACCOUNT}"
name = "AppDynamo"
document = '''{doc(allow("dynamodb:GetItem"))}'''

[[managed_policies]]
account = "{ACCOUNT}"
name = "S3ReadBoundary"
document = '''{doc(allow(["s3:GetObject", "s3:ListBucket"]))}'''

[[roles]]
account = "{ACCOUNT}"
name = "simulator"
trust_policy = '''{federated_trust(idp, "sim-*")}'''

[[roles.policies]]
name = "simulate"
document = '''{simulate}'''

[[roles]]
account = "{ACCOUNT}"
name = "bystander"
trust_policy = '''{federated_trust(idp, "bystander-*")}'''

[[roles.policies]]
name = "caller-identity"
document = '''{doc(allow("sts:GetCallerIdentity"))}'''

[[roles]]
account = "{ACCOUNT}"
name = "app"
trust_policy = '''{account_trust}'''
managed_policy_arns = ["{DYNAMO_POLICY}"]

[[roles.policies]]
name = "s3-access"
document = '''{s3_access}'''

[[roles]]
account = "{ACCOUNT}"
name = "bounded"
trust_policy = '''{account_trust}'''
permissions_boundary = "{BOUNDARY_POLICY}"

[[roles.policies]]
name = "s3-everything"
document = '''{doc(allow("s3:*"))}'''
""",
        account_name="simulation",
    )


@pytest.fixture(scope="module")
def iam_server(idp, rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("rolegate-iam")
    srv = e2e.Rolegate(work, config_for_port=config(idp), env={e2e.ADMIN_TOKEN_ENV: admin_token})
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def credentials_for(server, idp, role: str, sub: str) -> dict:
    resp = e2e.sts_client(server.url).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="simulation", WebIdentityToken=idp.id_token(sub))
    return resp["Credentials"]


def iam_client(server, creds: dict | None = None, **overrides):
    if creds is None:
        return boto3.client(
            "iam", endpoint_url=server.url, region_name="us-east-1",
            config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                          retries={"max_attempts": 1}))
    keys = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
        **overrides,
    }
    return boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}), **keys)


@pytest.fixture(scope="module")
def simulator_credentials(iam_server, idp) -> dict:
    return credentials_for(iam_server, idp, SIMULATOR, "sim-tests")


@pytest.fixture(scope="module")
def iam(iam_server, simulator_credentials):
    return iam_client(iam_server, simulator_credentials)


def client_error(call, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value


def results_by(resp) -> dict[tuple[str, str], dict]:
    return {(r["EvalActionName"], r["EvalResourceName"]): r for r in resp["EvaluationResults"]}


def sources(result: dict) -> list[tuple[str, str]]:
    return [(s["SourcePolicyId"], s["SourcePolicyType"]) for s in result["MatchedStatements"]]


# ---------------------------------------------------------------------------------------------------
# Decisions


def test_role_policies_allow_deny_explicitly_and_implicitly(iam_server, iam):
    resp = iam.simulate_principal_policy(
        PolicySourceArn=APP,
        ActionNames=["s3:GetObject", "s3:DeleteObject", "dynamodb:GetItem"],
        ResourceArns=[PUBLIC_OBJECT, SECRET_OBJECT],
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["IsTruncated"] is False and "Marker" not in resp
    assert [(r["EvalActionName"], r["EvalResourceName"]) for r in resp["EvaluationResults"]] == [
        ("s3:GetObject", PUBLIC_OBJECT), ("s3:GetObject", SECRET_OBJECT),
        ("s3:DeleteObject", PUBLIC_OBJECT), ("s3:DeleteObject", SECRET_OBJECT),
        ("dynamodb:GetItem", PUBLIC_OBJECT), ("dynamodb:GetItem", SECRET_OBJECT),
    ]
    results = results_by(resp)

    read = results[("s3:GetObject", PUBLIC_OBJECT)]
    assert read["EvalDecision"] == "allowed"
    assert sources(read) == [("s3-access", "role")]
    assert read["MissingContextValues"] == []
    assert read["EvalDecisionDetails"] == {"IAM Policy": "allowed"}
    assert "PermissionsBoundaryDecisionDetail" not in read
    [specific] = read["ResourceSpecificResults"]
    assert specific["EvalResourceName"] == PUBLIC_OBJECT
    assert specific["EvalResourceDecision"] == "allowed"
    assert specific["MatchedStatements"] == read["MatchedStatements"]

    # The deny statement alone is listed, though the allow statement applies too.
    secret = results[("s3:GetObject", SECRET_OBJECT)]
    assert secret["EvalDecision"] == "explicitDeny"
    assert sources(secret) == [("s3-access", "role")]
    assert secret["ResourceSpecificResults"][0]["EvalResourceDecision"] == "explicitDeny"

    for resource in (PUBLIC_OBJECT, SECRET_OBJECT):
        delete = results[("s3:DeleteObject", resource)]
        assert delete["EvalDecision"] == "implicitDeny"
        assert delete["MatchedStatements"] == []
        # The attached managed policy is reported by its ARN.
        dynamo = results[("dynamodb:GetItem", resource)]
        assert dynamo["EvalDecision"] == "allowed"
        assert sources(dynamo) == [(DYNAMO_POLICY, "user-managed")]

    # One audit event, naming the caller and the simulated role.
    event = iam_server.audit_event(resp["ResponseMetadata"]["RequestId"])
    assert event["action"] == "SimulatePrincipalPolicy"
    assert event["decision"] == "allow"
    assert event["role_arn"] == APP
    assert event["principal"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/simulator/simulation"


def test_session_arn_stands_for_its_role(iam):
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/someone"
    resp = iam.simulate_principal_policy(PolicySourceArn=session, ActionNames=["s3:GetObject"],
                                         ResourceArns=[SECRET_OBJECT])
    assert resp["EvaluationResults"][0]["EvalDecision"] == "explicitDeny"


def test_missing_context_values_and_context_entries(iam):
    def put(**extra):
        resp = iam.simulate_principal_policy(PolicySourceArn=APP, ActionNames=["s3:PutObject"],
                                             ResourceArns=[PUBLIC_OBJECT], **extra)
        [result] = resp["EvaluationResults"]
        return result

    without = put()
    assert without["EvalDecision"] == "implicitDeny"
    assert without["MissingContextValues"] == ["s3:x-amz-acl"]
    assert without["MatchedStatements"] == []

    entry = {"ContextKeyName": "s3:x-amz-acl", "ContextKeyValues": ["private"],
             "ContextKeyType": "string"}
    given = put(ContextEntries=[entry])
    assert given["EvalDecision"] == "allowed"
    assert given["MissingContextValues"] == []
    assert sources(given) == [("s3-access", "role")]

    wrong = put(ContextEntries=[{**entry, "ContextKeyValues": ["public-read"]}])
    assert wrong["EvalDecision"] == "implicitDeny"
    assert wrong["MissingContextValues"] == []

    # A value that is not of the declared type is refused.
    err = client_error(iam.simulate_principal_policy, PolicySourceArn=APP,
                       ActionNames=["s3:PutObject"],
                       ContextEntries=[{"ContextKeyName": "aws:SourceIp",
                                        "ContextKeyValues": ["not-an-ip"], "ContextKeyType": "ip"}])
    assert err.response["Error"]["Code"] == "InvalidInput"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_custom_policy_statement_positions_and_dates(iam):
    def backup(when: str):
        resp = iam.simulate_custom_policy(
            PolicyInputList=[DATED_POLICY], ActionNames=["dynamodb:CreateBackup"],
            ContextEntries=[{"ContextKeyName": "aws:CurrentTime", "ContextKeyValues": [when],
                             "ContextKeyType": "date"}])
        [result] = resp["EvaluationResults"]
        return result

    after = backup("2019-04-25T11:00:00Z")
    assert after["EvalDecision"] == "allowed"
    assert after["EvalResourceName"] == "*"
    assert "ResourceSpecificResults" not in after
    assert after["MatchedStatements"] == [{
        "SourcePolicyId": "PolicyInputList.1",
        "SourcePolicyType": "IAM Policy",
        "StartPosition": {"Line": 1, "Column": 38},
        "EndPosition": {"Line": 1, "Column": 167},
    }]
    before = backup("2014-04-25T11:00:00Z")
    assert before["EvalDecision"] == "implicitDeny"
    assert before["MatchedStatements"] == []
    assert before["MissingContextValues"] == []

    # Without the key the condition cannot be evaluated: it is reported missing.
    resp = iam.simulate_custom_policy(PolicyInputList=[DATED_POLICY],
                                      ActionNames=["dynamodb:CreateBackup"])
    assert resp["EvaluationResults"][0]["MissingContextValues"] == ["aws:CurrentTime"]

    # Several inputs, pretty-printed: each statement is located in its own document.
    second = doc({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
                 {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})
    resp = iam.simulate_custom_policy(PolicyInputList=[DATED_POLICY, second],
                                      ActionNames=["s3:ListBucket", "s3:GetObject"])
    results = results_by(resp)
    listed = results[("s3:ListBucket", "*")]["MatchedStatements"]
    assert listed == [{"SourcePolicyId": "PolicyInputList.2", "SourcePolicyType": "IAM Policy",
                       "StartPosition": {"Line": 4, "Column": 6},
                       "EndPosition": {"Line": 8, "Column": 6}}]
    denied = results[("s3:GetObject", "*")]
    assert denied["EvalDecision"] == "explicitDeny"
    assert denied["MatchedStatements"][0]["StartPosition"] == {"Line": 9, "Column": 6}


def test_permissions_boundary_turns_allow_into_implicit_deny(iam):
    resp = iam.simulate_principal_policy(PolicySourceArn=BOUNDED,
                                         ActionNames=["s3:GetObject", "s3:DeleteObject"])
    results = results_by(resp)
    read = results[("s3:GetObject", "*")]
    assert read["EvalDecision"] == "allowed"
    assert read["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert sources(read) == [("s3-everything", "role"), (BOUNDARY_POLICY, "user-managed")]

    delete = results[("s3:DeleteObject", "*")]
    assert delete["EvalDecision"] == "implicitDeny"
    assert delete["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    assert delete["EvalDecisionDetails"] == {
        "IAM Policy": "allowed", "Permissions Boundary Policy": "implicitDeny"}

    # A boundary given in the request replaces the role's.
    wide = doc(allow("s3:*"))
    resp = iam.simulate_principal_policy(PolicySourceArn=BOUNDED, ActionNames=["s3:DeleteObject"],
                                         PermissionsBoundaryPolicyInputList=[wide])
    [result] = resp["EvaluationResults"]
    assert result["EvalDecision"] == "allowed"
    assert sources(result) == [("s3-everything", "role"),
                               ("PermissionsBoundaryPolicyInputList.1", "IAM Policy")]

    # The same with policies given only in the request.
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(allow("s3:*"))],
        PermissionsBoundaryPolicyInputList=[doc(allow("s3:GetObject"))],
        ActionNames=["s3:GetObject", "s3:PutObject"])
    decisions = {r["EvalActionName"]: (r["EvalDecision"],
                                       r["PermissionsBoundaryDecisionDetail"]
                                       ["AllowedByPermissionsBoundary"])
                 for r in resp["EvaluationResults"]}
    assert decisions == {"s3:GetObject": ("allowed", True), "s3:PutObject": ("implicitDeny", False)}


def test_resource_policy_grants_to_the_named_principal(iam):
    grant = doc({"Effect": "Allow", "Principal": {"AWS": APP}, "Action": "s3:ListBucket",
                 "Resource": SHARED_BUCKET})

    def list_bucket(**extra):
        [result] = iam.simulate_principal_policy(
            PolicySourceArn=APP, ActionNames=["s3:ListBucket"], ResourceArns=[SHARED_BUCKET],
            **extra)["EvaluationResults"]
        return result

    assert list_bucket()["EvalDecision"] == "implicitDeny"
    granted = list_bucket(ResourcePolicy=grant)
    assert granted["EvalDecision"] == "allowed"
    assert granted["MatchedStatements"] == [{
        "SourcePolicyId": "ResourcePolicy", "SourcePolicyType": "resource",
        "StartPosition": {"Line": 4, "Column": 6}, "EndPosition": {"Line": 11, "Column": 6}}]
    assert granted["EvalDecisionDetails"] == {"IAM Policy": "implicitDeny",
                                              "Resource Policy": "allowed"}
    # Another caller is not the principal the resource policy names.
    other = list_bucket(ResourcePolicy=grant, CallerArn=BYSTANDER)
    assert other["EvalDecision"] == "implicitDeny"

    # SimulateCustomPolicy matches the resource policy against CallerArn.
    resp = iam.simulate_custom_policy(PolicyInputList=[doc(allow("sqs:*"))],
                                      ActionNames=["s3:ListBucket"], ResourceArns=[SHARED_BUCKET],
                                      ResourcePolicy=grant, CallerArn=APP)
    assert resp["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_results_are_paginated(iam):
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:aws:s3:::a/1", "arn:aws:s3:::a/2"]
    policy = doc(allow("s3:GetObject"), {"Effect": "Deny", "Action": "s3:DeleteObject",
                                         "Resource": "*"})
    full = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=actions,
                                      ResourceArns=resources)
    assert full["IsTruncated"] is False
    expected = [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"])
                for r in full["EvaluationResults"]]
    assert len(expected) == 6

    first = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=actions,
                                       ResourceArns=resources, MaxItems=4)
    assert first["IsTruncated"] is True and first["Marker"]
    assert len(first["EvaluationResults"]) == 4
    rest = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=actions,
                                      ResourceArns=resources, MaxItems=4, Marker=first["Marker"])
    assert rest["IsTruncated"] is False and "Marker" not in rest
    got = [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"])
           for r in first["EvaluationResults"] + rest["EvaluationResults"]]
    assert got == expected

    # boto3's paginator follows the markers.
    pages = list(iam.get_paginator("simulate_custom_policy").paginate(
        PolicyInputList=[policy], ActionNames=actions, ResourceArns=resources,
        PaginationConfig={"PageSize": 5}))
    assert [len(p["EvaluationResults"]) for p in pages] == [5, 1]

    err = client_error(iam.simulate_custom_policy, PolicyInputList=[policy], ActionNames=actions,
                       Marker="not-a-marker")
    assert err.response["Error"]["Code"] == "InvalidInput"


# ---------------------------------------------------------------------------------------------------
# Refusals


def test_unknown_role_is_no_such_entity(iam):
    err = client_error(iam.simulate_principal_policy,
                       PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/does-not-exist",
                       ActionNames=["s3:GetObject"])
    assert isinstance(err, iam.exceptions.NoSuchEntityException)
    assert err.response["Error"]["Code"] == "NoSuchEntity"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err.response["Error"]["Message"] == "The role with name does-not-exist cannot be found."


@pytest.mark.parametrize(
    "policy, where",
    [
        ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"', "line 1"),
        (doc({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}), "Statement[0]"),
    ],
)
def test_malformed_input_policy(iam, policy, where):
    err = client_error(iam.simulate_custom_policy, PolicyInputList=[doc(allow("s3:*")), policy],
                       ActionNames=["s3:GetObject"])
    assert isinstance(err, iam.exceptions.MalformedPolicyDocumentException)
    assert err.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = err.response["Error"]["Message"]
    assert message.startswith("PolicyInputList.2: ") and where in message, message


def test_caller_not_allowed_to_simulate_is_access_denied(iam_server, idp):
    bystander = iam_client(iam_server, credentials_for(iam_server, idp, BYSTANDER, "bystander-1"))
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/bystander/simulation"

    err = client_error(bystander.simulate_custom_policy, PolicyInputList=[doc(allow("s3:*"))],
                       ActionNames=["s3:GetObject"])
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.response["Error"]["Message"] == (
        f"User: {session} is not authorized to perform: iam:SimulateCustomPolicy on resource: * "
        "because no identity-based policy allows the iam:SimulateCustomPolicy action")
    event = iam_server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["action"] == "SimulateCustomPolicy"
    assert event["decision"] == "deny"
    assert event["error_code"] == "AccessDenied"
    assert event["principal"] == session
    assert "explanation" in event

    # Whether the role exists is not revealed to a caller that may not simulate it.
    for role in (APP, f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"):
        err = client_error(bystander.simulate_principal_policy, PolicySourceArn=role,
                           ActionNames=["s3:GetObject"])
        assert err.response["Error"]["Code"] == "AccessDenied"
        assert f"iam:SimulatePrincipalPolicy on resource: {role} " in err.response["Error"]["Message"]


def test_unsigned_and_badly_signed_requests_are_refused(iam_server, simulator_credentials):
    unsigned = iam_client(iam_server)
    err = client_error(unsigned.simulate_custom_policy, PolicyInputList=[doc(allow("s3:*"))],
                       ActionNames=["s3:GetObject"])
    assert err.response["Error"]["Code"] == "MissingAuthenticationToken"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    forged = iam_client(iam_server, simulator_credentials, aws_secret_access_key="x" * 40)
    err = client_error(forged.simulate_custom_policy, PolicyInputList=[doc(allow("s3:*"))],
                       ActionNames=["s3:GetObject"])
    assert err.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    event = iam_server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["decision"] == "deny" and event["error_code"] == "SignatureDoesNotMatch"

    # Credentials signed for another service are refused as well.
    creds = Credentials(simulator_credentials["AccessKeyId"],
                        simulator_credentials["SecretAccessKey"],
                        simulator_credentials["SessionToken"])
    resp = send_signed(iam_server, creds, {"Action": "SimulateCustomPolicy",
                                           "PolicyInputList.member.1": doc(allow("s3:*")),
                                           "ActionNames.member.1": "s3:GetObject"},
                       service="sts")
    assert resp.status == 403, resp.text
    assert iam_error(resp.body)[0] == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------------------------------------
# The wire, below botocore's own checks


def iam_error(body: bytes) -> tuple[str, str]:
    """(Code, Message) of an ErrorResponse document in the IAM namespace."""
    root = ET.fromstring(body)
    assert root.tag == f"{IAM_NS}ErrorResponse", body
    code = root.findtext(f"{IAM_NS}Error/{IAM_NS}Code")
    message = root.findtext(f"{IAM_NS}Error/{IAM_NS}Message")
    assert code and message is not None and root.findtext(f"{IAM_NS}RequestId"), body
    return code, message


def send_signed(server, creds: Credentials, form: dict, service: str = "iam") -> e2e.HttpResponse:
    body = urllib.parse.urlencode({"Version": "2010-05-08", **form})
    req = AWSRequest(method="POST", url=server.url + "/", data=body,
                     headers={"Content-Type": FORM_TYPE})
    SigV4Auth(creds, service, "us-east-1").add_auth(req)
    prepared = req.prepare()
    return e2e.http("POST", prepared.url, prepared.body, dict(prepared.headers.items()))


def test_required_members_are_enforced_on_the_wire(iam, iam_server, simulator_credentials):
    # botocore refuses a call without ActionNames before sending it ...
    with pytest.raises(ParamValidationError):
        iam.simulate_custom_policy(PolicyInputList=[doc(allow("s3:*"))])
    # ... and rolegate refuses the request itself.
    creds = Credentials(simulator_credentials["AccessKeyId"],
                        simulator_credentials["SecretAccessKey"],
                        simulator_credentials["SessionToken"])
    resp = send_signed(iam_server, creds, {"Action": "SimulateCustomPolicy",
                                           "PolicyInputList.member.1": doc(allow("s3:*"))})
    assert resp.status == 400, resp.text
    assert resp.headers["content-type"] == "text/xml"
    code, message = iam_error(resp.body)
    assert code == "ValidationError"
    assert message == ("1 validation error detected: Value null at 'actionNames' failed to "
                       "satisfy constraint: Member must not be null")

    resp = send_signed(iam_server, creds, {"Action": "SimulatePrincipalPolicy",
                                           "ActionNames.member.1": "s3:GetObject"})
    assert resp.status == 400, resp.text
    assert iam_error(resp.body)[0] == "ValidationError"


def test_other_iam_actions_are_invalid_action(iam_server):
    body = urllib.parse.urlencode({"Action": "ListRoles", "Version": "2010-05-08"})
    resp = e2e.http("POST", iam_server.url + "/", body, {"Content-Type": FORM_TYPE})
    assert resp.status == 400, resp.text
    assert iam_error(resp.body) == ("InvalidAction",
                                    "Could not find operation ListRoles for version 2010-05-08")

    # An STS request is still answered by STS, in its own namespace.
    body = urllib.parse.urlencode({"Action": "ListRoles", "Version": "2011-06-15"})
    resp = e2e.http("POST", iam_server.url + "/", body, {"Content-Type": FORM_TYPE})
    assert resp.status == 400, resp.text
    assert e2e.sts_error(resp.body)[0] == "InvalidAction"

