"""boto3 against rolegate's STS: the SDK's own web identity credential chain, role chaining,
AssumeRoleWithWebIdentity's documented result, and its refusals as botocore error codes, each with
its precise reason in the audit log."""

from __future__ import annotations

import os
import re
import urllib.parse
from datetime import datetime, timezone

import botocore.session
import pytest
from botocore.exceptions import ClientError

import e2e

ROLE_ID = re.compile(r"^AROA[A-Z2-7]{17}$")
ACCESS_KEY = re.compile(r"^ASIA[A-Z2-7]{16}$")


def assert_expires_in(expiration: datetime, seconds: int, slack: int = 30) -> None:
    left = (expiration - datetime.now(timezone.utc)).total_seconds()
    assert seconds - slack <= left <= seconds + slack, f"expires in {left}s, expected about {seconds}s"


def web_identity_env(monkeypatch, tmp_path, endpoint: str, token: str, role_arn: str, session: str):
    """Exactly the variables a workload identity platform sets, and nothing else from AWS_*."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    token_file = e2e.write_token_file(tmp_path / "web-identity-token", token)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_ARN", role_arn)
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", session)


def test_default_credential_chain_uses_web_identity_and_chains(monkeypatch, tmp_path, server, idp):
    web_identity_env(monkeypatch, tmp_path, server.url, idp.id_token(e2e.DEPLOYER_SUB),
                     e2e.ROLE_DEPLOYER, "chain-session")
    session = botocore.session.Session()
    sts = session.create_client("sts", region_name="us-east-1")

    who = sts.get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/chain-session"
    assert who["Account"] == e2e.ACCOUNT
    role_id, _, name = who["UserId"].partition(":")
    assert ROLE_ID.match(role_id) and name == "chain-session", who["UserId"]

    creds = session.get_credentials()
    assert creds.method == "assume-role-with-web-identity"
    frozen = creds.get_frozen_credentials()
    assert ACCESS_KEY.match(frozen.access_key) and len(frozen.secret_key) == 40 and frozen.token

    # The SDK called rolegate for those credentials: the audit log has the federation, with the
    # subject of the token and the session it created.
    events = [e for e in server.audit("--action", "AssumeRoleWithWebIdentity")
              if e.get("access_key_id") == frozen.access_key]
    assert len(events) == 1, events
    assert events[0]["decision"] == "allow"
    assert events[0]["subject"] == e2e.DEPLOYER_SUB
    assert events[0]["provider"] == idp.issuer
    assert events[0]["session_name"] == "chain-session"

    # Role chaining with the web identity session's credentials.
    chained = sts.assume_role(RoleArn=e2e.ROLE_TARGET, RoleSessionName="chained")
    assert chained["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-target/chained")
    assert chained["AssumedRoleUser"]["AssumedRoleId"].endswith(":chained")
    assert ROLE_ID.match(chained["AssumedRoleUser"]["AssumedRoleId"].split(":")[0])
    assert chained["AssumedRoleUser"]["AssumedRoleId"].split(":")[0] != role_id
    assert_expires_in(chained["Credentials"]["Expiration"], 3600)
    target = e2e.sts_client(server.url, chained["Credentials"])
    assert target.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-target/chained")

    # Chained sessions are capped at one hour.
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=e2e.ROLE_TARGET, RoleSessionName="too-long", DurationSeconds=3601)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "1 hour session limit" in err.value.response["Error"]["Message"]


def test_assume_role_with_web_identity_returns_documented_fields(server, sts, idp):
    token = idp.id_token(e2e.DEPLOYER_SUB, alg="ES256")
    policy = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
              '"Action":"sts:GetCallerIdentity","Resource":"*"}]}')
    resp = sts.assume_role_with_web_identity(
        RoleArn=e2e.ROLE_DEPLOYER,
        RoleSessionName="fields@example.com",
        WebIdentityToken=token,
        DurationSeconds=1800,
        Policy=policy,
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["SubjectFromWebIdentityToken"] == e2e.DEPLOYER_SUB
    assert resp["Audience"] == e2e.CLIENT_ID
    assert resp["Provider"] == idp.issuer
    user = resp["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/fields@example.com"
    role_id, _, name = user["AssumedRoleId"].partition(":")
    assert ROLE_ID.match(role_id) and name == "fields@example.com"
    assert 1 <= resp["PackedPolicySize"] <= 100
    creds = resp["Credentials"]
    assert ACCESS_KEY.match(creds["AccessKeyId"]), creds["AccessKeyId"]
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) > 40
    assert isinstance(creds["Expiration"], datetime)
    assert_expires_in(creds["Expiration"], 1800)
    assert resp["ResponseMetadata"]["RequestId"] == (
        resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    assert_api_security_headers(resp["ResponseMetadata"]["HTTPHeaders"])

    who = e2e.sts_client(server.url, creds).get_caller_identity()
    assert who["Arn"] == user["Arn"]
    assert who["UserId"] == user["AssumedRoleId"]

    # Each call mints new credentials.
    again = sts.assume_role_with_web_identity(
        RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="fields@example.com", WebIdentityToken=token)
    assert again["Credentials"]["AccessKeyId"] != creds["AccessKeyId"]
    assert again["AssumedRoleUser"]["AssumedRoleId"] == user["AssumedRoleId"]
    assert "PackedPolicySize" not in again
    assert_expires_in(again["Credentials"]["Expiration"], 3600)


def forged_token(idp) -> tuple[str, str]:
    """A real token whose payload was changed after signing (another subject, same signature)."""
    header, payload, signature = e2e.jwt_parts(idp.id_token("repo:acme/readonly"))
    payload["sub"] = e2e.DEPLOYER_SUB
    return f"{e2e.b64url_json(header)}.{e2e.b64url_json(payload)}.{signature}", payload["sub"]


def assert_api_security_headers(headers: dict) -> None:
    """Credentials are never cached; the XML, if a browser rendered it, could load and run nothing."""
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "referrer-policy" not in headers


def call_error(sts, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as err:
        sts.assume_role_with_web_identity(**kwargs)
    return err.value


def test_forged_token_is_invalid_identity_token(server, sts, idp):
    token, _ = forged_token(idp)
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="forged", WebIdentityToken=token)
    assert isinstance(err, sts.exceptions.InvalidIdentityTokenException)
    assert err.response["Error"]["Code"] == "InvalidIdentityToken"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The client gets a coarse message; the precise reason is only in the audit log.
    assert "signature" not in err.response["Error"]["Message"]

    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["action"] == "AssumeRoleWithWebIdentity"
    assert event["decision"] == "deny"
    assert event["error_code"] == "InvalidIdentityToken"
    assert event["reason"] == "signature does not verify with the provider's key"
    assert event["role_arn"] == e2e.ROLE_DEPLOYER
    assert "access_key_id" not in event


def test_token_signed_with_hs256_over_public_key_is_refused(server, sts, idp):
    """Algorithm confusion: HS256 keyed with the provider's public key PEM."""
    now = int(datetime.now(timezone.utc).timestamp())
    payload = {"iss": idp.issuer, "sub": e2e.DEPLOYER_SUB, "aud": e2e.CLIENT_ID,
               "iat": now, "exp": now + 600}
    token = idp.sign({"alg": "HS256", "kid": "rsa-1"}, payload, raw_alg="HS256")
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="hs256", WebIdentityToken=token)
    assert err.response["Error"]["Code"] == "InvalidIdentityToken"
    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["error_code"] == "InvalidIdentityToken"
    assert "HS256" in event["reason"], event["reason"]


def test_trust_policy_mismatch_is_access_denied(server, sts, idp):
    sub = "repo:evil/app:ref:refs/heads/main"
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="evil",
                     WebIdentityToken=idp.id_token(sub))
    assert isinstance(err, ClientError)
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.response["Error"]["Message"] == (
        "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    assert_api_security_headers(err.response["ResponseMetadata"]["HTTPHeaders"])

    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["decision"] == "deny"
    assert event["error_code"] == "AccessDenied"
    assert event["subject"] == sub
    assert event["provider"] == idp.issuer
    assert event["reason"].startswith(
        f"trust policy of {e2e.ROLE_DEPLOYER} does not allow sts:AssumeRoleWithWebIdentity "
        f"for {idp.provider_arn()} (sub {sub}): "), event["reason"]
    assert "explanation" in event


def test_wrong_audience_is_invalid_identity_token(server, sts, idp):
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="other-aud",
                     WebIdentityToken=idp.id_token(e2e.DEPLOYER_SUB, client="rolegate-other"))
    assert err.response["Error"]["Code"] == "InvalidIdentityToken"
    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["reason"] == "aud is not one of the accepted audiences [\"rolegate-test\"]"


def test_expired_token_is_expired_token_exception(server, sts, idp):
    token = idp.id_token(e2e.DEPLOYER_SUB, expires_in=-120)
    exp = e2e.jwt_parts(token)[1]["exp"]
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="expired",
                     WebIdentityToken=token)
    assert isinstance(err, sts.exceptions.ExpiredTokenException)
    assert err.response["Error"]["Code"] == "ExpiredTokenException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["decision"] == "deny"
    assert event["error_code"] == "ExpiredTokenException"
    assert re.fullmatch(rf"token expired at {exp} \(now \d+\)", event["reason"]), event["reason"]


@pytest.mark.parametrize(
    "duration, reason",
    [
        (43201, "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy "
                "constraint: Member must have value less than or equal to 43200"),
        (e2e.DEPLOYER_MAX_SESSION + 1,
         "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
    ],
)
def test_bad_duration_is_validation_error(server, sts, idp, duration, reason):
    err = call_error(sts, RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="duration",
                     WebIdentityToken=idp.id_token(e2e.DEPLOYER_SUB), DurationSeconds=duration)
    assert err.response["Error"]["Code"] == "ValidationError"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.response["Error"]["Message"] == reason

    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["decision"] == "deny"
    assert event["error_code"] == "ValidationError"
    assert event["reason"] == reason


def test_duration_at_role_maximum_is_accepted(sts, idp):
    resp = sts.assume_role_with_web_identity(
        RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="max-duration",
        WebIdentityToken=idp.id_token(e2e.DEPLOYER_SUB), DurationSeconds=e2e.DEPLOYER_MAX_SESSION)
    assert_expires_in(resp["Credentials"]["Expiration"], e2e.DEPLOYER_MAX_SESSION)


@pytest.mark.parametrize(
    "form, message",
    [
        # botocore refuses these client-side, so they go over raw HTTP.
        ({"RoleSessionName": "x"},
         "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: "
         "Member must have length greater than or equal to 2"),
        ({"DurationSeconds": "899"},
         "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
         "Member must have value greater than or equal to 900"),
        ({"WebIdentityToken": "abc"}, None),
    ],
)
def test_limits_botocore_checks_client_side_are_enforced(server, idp, form, message):
    params = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": e2e.ROLE_DEPLOYER,
        "RoleSessionName": "raw-limits",
        "WebIdentityToken": idp.id_token(e2e.DEPLOYER_SUB),
        **form,
    }
    resp = e2e.http("POST", server.url + "/", urllib.parse.urlencode(params),
                    {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert resp.status == 400, resp.text
    code, text, _ = e2e.sts_error(resp.body)
    assert code == "ValidationError"
    if message is not None:
        assert text == message
    else:
        assert "webIdentityToken" in text and "greater than or equal to 4" in text, text


def test_unknown_role_is_access_denied_with_reason(server, sts, idp):
    missing = f"arn:aws:iam::{e2e.ACCOUNT}:role/does-not-exist"
    err = call_error(sts, RoleArn=missing, RoleSessionName="missing",
                     WebIdentityToken=idp.id_token(e2e.DEPLOYER_SUB))
    assert err.response["Error"]["Code"] == "AccessDenied"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Same message as a trust policy refusal: the client cannot tell which roles exist.
    assert err.response["Error"]["Message"] == (
        "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    event = server.audit_event(err.response["ResponseMetadata"]["RequestId"])
    assert event["reason"] == f"role {missing} does not exist"


def test_query_string_form_of_assume_role_with_web_identity(server, idp):
    query = urllib.parse.urlencode({
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
        "RoleArn": e2e.ROLE_DEPLOYER, "RoleSessionName": "query-form",
        "WebIdentityToken": idp.id_token(e2e.DEPLOYER_SUB) + "\n"})
    resp = e2e.http("GET", f"{server.url}/?{query}")
    assert resp.status == 200, resp.text
    assert resp.headers["content-type"] == "text/xml"
    result = e2e.sts_result(resp.body, "AssumeRoleWithWebIdentity")
    assert e2e.field(result, "AssumedRoleUser/Arn") == (
        f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/query-form")
    assert ACCESS_KEY.match(e2e.field(result, "Credentials/AccessKeyId"))
