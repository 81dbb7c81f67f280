"""Shared by the load scripts: STS requests signed once with SigV4 by botocore, written as a wrk
body file and a headers file (replayable within SigV4's 15-minute window).

    from sign import signed, key_credentials
    signed(url, credentials, body, prefix)   writes prefix.body and prefix.headers
    key_credentials(path)                    the credentials of `rolegate access-key create` JSON
    check(url, prefix)                       POSTs prefix.body with prefix.headers: 200 or fails
"""
import json
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed(url, creds, body, prefix):
    req = AWSRequest(method="POST", url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds, "sts", "us-east-1").add_auth(req)
    with open(f"{prefix}.body", "w") as f:
        f.write(body)
    with open(f"{prefix}.headers", "w") as f:
        for k, v in req.headers.items():
            if k.lower() != "content-length":
                f.write(f"{k}: {v}\n")


def key_credentials(path):
    key = json.load(open(path))
    return Credentials(key["access_key_id"], key["secret_access_key"])


def check(url, prefix):
    headers = dict(l.split(": ", 1) for l in open(f"{prefix}.headers").read().splitlines())
    body = open(f"{prefix}.body").read().encode()
    status = urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers)).status
    assert status == 200, (prefix, status)
