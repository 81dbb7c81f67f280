#!/usr/bin/env python3
"""Writes requests signed by botocore's SigV4Auth / SigV4QueryAuth as JSON fixtures.

Each fixture records the request as it would go on the wire (method, url, headers, body) and the
fixed signing time, so the Rust tests verify them without Python. Regenerate with:

    python3 src/sigv4/testdata/make_botocore_fixtures.py
"""

import datetime
import json
import os

import botocore
import botocore.auth
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEBYaDExample+Session/Token=="
REGION = "us-east-1"
SERVICE = "sts"
HOST = "sts.example.test"
SIGNED_AT = datetime.datetime(2024, 5, 17, 12, 34, 56)

# Every signer reads the clock through this name.
botocore.auth.get_current_datetime = lambda: SIGNED_AT


# GetCallerIdentity's parameters, as a query and as a form body.
GET_CALLER_IDENTITY = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
GET_CALLER_IDENTITY_FORM = "Action=GetCallerIdentity&Version=2011-06-15"


def credentials(with_token):
    return Credentials(ACCESS_KEY, SECRET_KEY, TOKEN if with_token else None)


def request_to(method, path, **fields):
    """A request to `path` of HOST; `fields` as AWSRequest takes them (headers, params, data)."""
    return AWSRequest(method=method, url=f"https://{HOST}{path}", **fields)


def fixture(name, signer, request, note):
    request.headers["Host"] = HOST
    signer.add_auth(request)
    prepared = request.prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    doc = {
        "name": name,
        "note": note,
        "botocore_version": botocore.__version__,
        "signed_at": SIGNED_AT.strftime("%Y%m%dT%H%M%SZ"),
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "security_token": signer.credentials.token,
        "region": signer._region_name,
        "service": signer._service_name,
        "method": prepared.method,
        "url": prepared.url,
        # The request's own header list keeps repeated names (the prepared one folds them).
        "headers": [[k, v] for k, v in request.headers.items()],
        "body": body.decode("utf-8"),
    }
    path = os.path.join(HERE, "botocore", f"{name}.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=2, ensure_ascii=False)
        out.write("\n")


def main():
    os.makedirs(os.path.join(HERE, "botocore"), exist_ok=True)

    fixture(
        "header_post_form_with_token",
        SigV4Auth(credentials(True), SERVICE, REGION),
        request_to(
            "POST",
            "/",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            data=(
                "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo"
                "&RoleSessionName=s%40example.com&Version=2011-06-15"
            ),
        ),
        "STS AssumeRole as the SDK sends it, with a session token header",
    )

    fixture(
        "header_get_tricky_path_and_params",
        SigV4Auth(credentials(False), SERVICE, REGION),
        request_to(
            "GET",
            "/a%20b/c%2Fd/caf%C3%A9/x+y=z~/./e/../f",
            params=[
                ("Action", "GetCallerIdentity"),
                ("Version", "2011-06-15"),
                ("space", "a b"),
                ("plus", "a+b"),
                ("unicode", "caf\u00e9 \u20ac"),
                ("slash", "x/y=z~"),
                ("empty", ""),
                ("dup", "2"),
                ("dup", "1"),
            ],
        ),
        "params urlencoded with '+' for spaces; path with escapes, unicode, dot segments",
    )

    request = request_to(
        "POST",
        "/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data=GET_CALLER_IDENTITY_FORM,
    )
    request.headers["Date"] = "placeholder, replaced by the signer"
    fixture(
        "header_date_instead_of_x_amz_date",
        SigV4Auth(credentials(False), SERVICE, REGION),
        request,
        "the request time comes from the Date header",
    )

    request = request_to("POST", "/", data=GET_CALLER_IDENTITY_FORM)
    request.headers["X-Custom"] = "  a   b  "
    request.headers["X-Custom"] = "c"
    request.headers["X-Other"] = "\"quoted   value\""
    fixture(
        "header_repeated_headers_odd_whitespace",
        SigV4Auth(credentials(True), SERVICE, REGION),
        request,
        "a header repeated, values with runs of spaces",
    )

    fixture(
        "presigned_get_caller_identity_with_token",
        SigV4QueryAuth(credentials(True), SERVICE, REGION, expires=900),
        request_to("GET", "/", params=GET_CALLER_IDENTITY),
        "presigned GetCallerIdentity, as other services use to prove a caller's identity",
    )

    fixture(
        "presigned_post_body_moved_to_query",
        SigV4QueryAuth(credentials(False), SERVICE, REGION, expires=3600),
        request_to(
            "POST",
            "/",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            data={**GET_CALLER_IDENTITY, "Note": "caf\u00e9 a+b / ~"},
        ),
        "form parameters moved into the query by the presigner, empty body",
    )

    fixture(
        "presigned_get_with_existing_query",
        SigV4QueryAuth(credentials(True), SERVICE, REGION, expires=604800),
        request_to("GET", "/path%20with/space?z=last&a=%E2%82%AC&flag="),
        "a query already on the URL is re-encoded before the X-Amz-* parameters",
    )

    fixture(
        "header_get_path_ending_in_dot_segment",
        SigV4Auth(credentials(True), SERVICE, REGION),
        request_to("GET", f"/example/foo/..?{GET_CALLER_IDENTITY_FORM}"),
        "a path ending in a dot segment is signed without a trailing slash (/example)",
    )

    fixture(
        "presigned_get_path_ending_in_dot",
        SigV4QueryAuth(credentials(False), SERVICE, REGION, expires=900),
        request_to("GET", "/example/.", params=GET_CALLER_IDENTITY),
        "a path ending in '.' is signed without a trailing slash (/example)",
    )

    # S3 signs the path exactly as sent: no normalisation, no second encoding.
    fixture(
        "header_s3_key_with_space_and_dot_segments",
        S3SigV4Auth(credentials(True), "s3", REGION),
        request_to("GET", "/bucket/a%20b//./c/../d.txt"),
        "an S3 object key with an encoded space, an empty segment and dot segments, signed as sent",
    )

    fixture(
        "presigned_s3_key_with_dot_segments",
        S3SigV4QueryAuth(credentials(False), "s3", REGION, expires=900),
        request_to("GET", "/bucket/x/../%E2%82%AC/."),
        "a presigned S3 URL whose key ends in a dot segment, signed as sent",
    )


if __name__ == "__main__":
    main()
