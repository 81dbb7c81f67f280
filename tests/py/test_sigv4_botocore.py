"""Requests signed by botocore's own SigV4 signers (`SigV4Auth`, header form; `SigV4QueryAuth`,
presigned) with credentials rolegate issued, sent over raw urllib so that nothing but botocore's
signature decides: they verify on GetCallerIdentity, and a one-byte change to the signature, the body,
a signed header or a signed query parameter fails with SignatureDoesNotMatch (HTTP 403)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable

import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import e2e

FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
UNICODE_VALUE = "été ☃ x+y/z~*"
PROBE_HEADER = "X-Rolegate-Probe"


@dataclass(frozen=True)
class Wire:
    """A signed request exactly as it will be sent."""

    method: str
    url: str
    headers: dict
    body: bytes | None


def sign(creds: Credentials, method: str, url: str, *, params=None, data: str | dict | None = None,
         headers: dict | None = None, presign: bool = False, region: str = "us-east-1") -> Wire:
    req = AWSRequest(method=method, url=url, data=data, params=params, headers=headers or {})
    signer = (SigV4QueryAuth(creds, "sts", region, expires=300) if presign
              else SigV4Auth(creds, "sts", region))
    signer.add_auth(req)
    prepared = req.prepare()
    body = prepared.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Wire(prepared.method, prepared.url, dict(prepared.headers.items()), body or None)


def send(server, w: Wire) -> e2e.HttpResponse:
    return e2e.http(w.method, w.url, w.body, w.headers)


def botocore_credentials(c: dict) -> Credentials:
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


@pytest.fixture(scope="module")
def creds(deployer_credentials) -> Credentials:
    return botocore_credentials(deployer_credentials)


def expect_caller(resp: e2e.HttpResponse) -> None:
    assert resp.status == 200, resp.text
    result = e2e.sts_result(resp.body, "GetCallerIdentity")
    assert e2e.field(result, "Arn") == (
        f"arn:aws:sts::{e2e.ACCOUNT}:assumed-role/ci-deployer/sigv4-session")
    assert e2e.field(result, "Account") == e2e.ACCOUNT


def expect_mismatch(resp: e2e.HttpResponse) -> str:
    assert resp.status == 403, resp.text
    code, _, request_id = e2e.sts_error(resp.body)
    assert code == "SignatureDoesNotMatch"
    return request_id


# ---------------------------------------------------------------------------------------------------
# Requests that verify


def post_form(server, creds) -> Wire:
    return sign(creds, "POST", server.url + "/",
                data="Action=GetCallerIdentity&Version=2011-06-15&Probe=abc",
                headers={"Content-Type": FORM_TYPE, PROBE_HEADER: "probe-value"})


def get_repeated_unordered_unicode(server, creds) -> Wire:
    # Repeated keys out of order, keys out of order, UTF-8 values with a space, '+', '/', '~', '*'
    # (urlencode puts '+' for the space on the wire; the canonical form has %20).
    params = [("Zeta", "2"), ("Version", "2011-06-15"), ("Zeta", "10"), ("Action", "GetCallerIdentity"),
              ("Zeta", "1"), ("Name", UNICODE_VALUE), ("Alpha", "日本語"), ("empty", "")]
    return sign(creds, "GET", server.url + "/", params=params, headers={PROBE_HEADER: "probe-value"})


def presigned_get(server, creds) -> Wire:
    params = {"Version": "2011-06-15", "Action": "GetCallerIdentity", "Name": UNICODE_VALUE}
    return sign(creds, "GET", server.url + "/", params=params, presign=True)


def presigned_post(server, creds) -> Wire:
    # botocore moves the form parameters of a presigned request into the query string.
    return sign(creds, "POST", server.url + "/",
                data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}, presign=True,
                headers={"Content-Type": FORM_TYPE})


REQUESTS = {
    "post-form-header-auth": post_form,
    "get-repeated-unordered-unicode-header-auth": get_repeated_unordered_unicode,
    "presigned-get-unicode": presigned_get,
    "presigned-post": presigned_post,
}


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_botocore_signed_request_verifies(server, creds, kind):
    w = REQUESTS[kind](server, creds)
    if kind.endswith("header-auth"):
        assert w.headers["Authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/")
        assert "x-rolegate-probe" in w.headers["Authorization"]
        assert "x-amz-security-token" in w.headers["Authorization"]
    else:
        assert "Authorization" not in w.headers
        assert w.body is None
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(w.url).query))
        assert query["X-Amz-Security-Token"] == creds.token
        assert query["X-Amz-Credential"].startswith(f"{creds.access_key}/")
    expect_caller(send(server, w))


def test_unicode_query_goes_on_the_wire_form_encoded(server, creds):
    w = get_repeated_unordered_unicode(server, creds)
    query = urllib.parse.urlsplit(w.url).query
    assert "Name=%C3%A9t%C3%A9+%E2%98%83+x%2By%2Fz~%2A" in query, query
    assert query.index("Zeta=2") < query.index("Zeta=10") < query.index("Zeta=1&")


# ---------------------------------------------------------------------------------------------------
# One-byte changes


def bump_char(s: str, index: int) -> str:
    """`s` with the character at `index` replaced by a different one of the same class."""
    c = s[index]
    if c.isdigit():
        new = "0" if c != "0" else "1"
    elif c in "abcdef":
        new = "a" if c != "a" else "b"
    else:
        new = "x" if c != "x" else "y"
    return s[:index] + new + s[index + 1:]


def tamper_header_signature(w: Wire) -> Wire:
    auth = w.headers["Authorization"]
    return replace(w, headers={**w.headers, "Authorization": bump_char(auth, len(auth) - 1)})


def tamper_body(w: Wire) -> Wire:
    assert w.body is not None and w.body.endswith(b"Probe=abc")
    return replace(w, body=w.body[:-1] + b"d")


def tamper_probe_header(w: Wire) -> Wire:
    assert w.headers[PROBE_HEADER] == "probe-value"
    return replace(w, headers={**w.headers, PROBE_HEADER: "probe-valuf"})


def tamper_amz_date(w: Wire) -> Wire:
    # One second earlier or later, same day: still within the allowed clock skew.
    date = w.headers["X-Amz-Date"]
    last = int(date[-2])
    changed = date[:-2] + str(last - 1 if last > 0 else 1) + "Z"
    return replace(w, headers={**w.headers, "X-Amz-Date": changed})


def tamper_security_token(w: Wire) -> Wire:
    token = w.headers["X-Amz-Security-Token"]
    return replace(w, headers={**w.headers, "X-Amz-Security-Token": token[:-1] + (
        "A" if token[-1] != "A" else "B")})


def tamper_query(old: str, new: str) -> Callable[[Wire], Wire]:
    def apply(w: Wire) -> Wire:
        assert w.url.count(old) == 1, (old, w.url)
        return replace(w, url=w.url.replace(old, new))
    return apply


def tamper_presigned_signature(w: Wire) -> Wire:
    return replace(w, url=bump_char(w.url, len(w.url) - 1))


CHANGES = [
    ("header-signature", post_form, tamper_header_signature),
    ("body", post_form, tamper_body),
    ("signed-custom-header", post_form, tamper_probe_header),
    ("signed-x-amz-date", post_form, tamper_amz_date),
    ("get-signature", get_repeated_unordered_unicode, tamper_header_signature),
    ("get-repeated-value", get_repeated_unordered_unicode, tamper_query("Zeta=10", "Zeta=11")),
    ("get-unicode-value", get_repeated_unordered_unicode, tamper_query("%C3%A9t", "%C3%A8t")),
    ("get-signed-custom-header", get_repeated_unordered_unicode, tamper_probe_header),
    ("presigned-signature", presigned_get, tamper_presigned_signature),
    ("presigned-unicode-value", presigned_get, tamper_query("%E2%98%83", "%E2%98%84")),
    ("presigned-expires", presigned_get, tamper_query("X-Amz-Expires=300", "X-Amz-Expires=301")),
]


@pytest.mark.parametrize("base, change", [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_one_byte_change_is_signature_does_not_match(server, creds, base, change):
    w = base(server, creds)
    changed = change(w)
    assert changed != w
    expect_mismatch(send(server, changed))
    # The untouched request still verifies: the failure is the change, not the request.
    expect_caller(send(server, base(server, creds)))


def test_signature_mismatch_is_audited_with_the_session_the_token_names(server, creds):
    request_id = expect_mismatch(send(server, tamper_body(post_form(server, creds))))
    event = server.audit_event(request_id)
    assert event["action"] == "GetCallerIdentity"
    assert event["decision"] == "deny"
    assert event["error_code"] == "SignatureDoesNotMatch"
    assert event["reason"] == "signature does not match"
    # The token opened, so the event names the session it belongs to: a leaked token used without
    # its secret is visible under that principal, with decision deny.
    assert event["principal"].startswith("arn:aws:sts::"), event
    assert event["access_key_id"] == creds.access_key, event


def test_changed_session_token_is_not_accepted(server, creds):
    resp = send(server, tamper_security_token(post_form(server, creds)))
    assert resp.status == 403, resp.text
    code, _, _ = e2e.sts_error(resp.body)
    assert code == "InvalidClientTokenId"


def test_wrong_secret_is_signature_does_not_match(server, creds):
    wrong = Credentials(creds.access_key, creds.secret_key[:-1] + (
        "A" if creds.secret_key[-1] != "A" else "B"), creds.token)
    expect_mismatch(send(server, post_form(server, wrong)))


def test_region_outside_the_accepted_list_is_refused(server, creds):
    resp = send(server, sign(creds, "POST", server.url + "/",
                             data="Action=GetCallerIdentity&Version=2011-06-15",
                             headers={"Content-Type": FORM_TYPE}, region="eu-central-1"))
    assert resp.status == 403, resp.text
    code, message, _ = e2e.sts_error(resp.body)
    assert code == "SignatureDoesNotMatch"
    assert message == "Credential should be scoped to a valid region."


# ---------------------------------------------------------------------------------------------------
# Time


def signed_at(monkeypatch, offset: timedelta, build: Callable[[], Wire]) -> Wire:
    """A request botocore signs as if its clock were `offset` away from now."""
    shifted = datetime.now(timezone.utc).replace(tzinfo=None) + offset
    with monkeypatch.context() as m:
        m.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: shifted)
        return build()


@pytest.mark.parametrize(
    "minutes, presign, expected",
    [
        (-14, False, None),
        (14, False, None),
        (-16, False, ("RequestTimeTooSkewed", 403)),
        (16, False, ("RequestTimeTooSkewed", 403)),
        # A presigned URL (X-Amz-Expires=300) may be used later, until it expires.
        (-4, True, None),
        (-6, True, ("AccessDenied", 403)),
        (16, True, ("RequestTimeTooSkewed", 403)),
    ],
)
def test_request_time_limits(monkeypatch, server, creds, minutes, presign, expected):
    build = (lambda: presigned_get(server, creds)) if presign else (lambda: post_form(server, creds))
    resp = send(server, signed_at(monkeypatch, timedelta(minutes=minutes), build))
    if expected is None:
        expect_caller(resp)
        return
    assert resp.status == expected[1], resp.text
    code, message, _ = e2e.sts_error(resp.body)
    assert code == expected[0], resp.text
    if code == "AccessDenied":
        assert message == "Request has expired"
