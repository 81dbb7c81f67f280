"""Operations: Prometheus metrics, request ids in JSON logs, body limits, rate limits, the audit
file sink and SIGHUP, graceful shutdown with a slow request in flight, and TLS termination with a
test CA (boto3 verifying the server against it)."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

import boto3
import botocore
import botocore.config
import pytest
from botocore.exceptions import ClientError

import e2e

ROLE_TLS_ONLY = f"arn:aws:iam::{e2e.ACCOUNT}:role/tls-only"


def tls_only_role(idp: e2e.Idp) -> str:
    """A role whose trust policy also asks for aws:SecureTransport."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": idp.provider_arn()},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{idp.key_prefix}:aud": e2e.CLIENT_ID},
                    "Bool": {"aws:SecureTransport": "true"},
                },
            }
        ],
    }
    return f"""
[[roles]]
account = "{e2e.ACCOUNT}"
name = "tls-only"
trust_policy = '''{json.dumps(trust)}'''
"""


def config_with(idp, data: Path, extra: str):
    base = e2e.server_config(idp, data)
    return lambda port: base(port) + tls_only_role(idp) + extra


def metric(text: str, name: str, **labels) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def audit_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


@pytest.fixture(scope="module")
def ops(idp, rolegate_binary, admin_token, tmp_path_factory):
    work = tmp_path_factory.mktemp("ops")
    extra = f"""
[log]
format = "json"

[limits]
sts_body_bytes = 32768
admin_body_bytes = 4096

[rate_limits]
login_per_ip = {{ per_minute = 1, burst = 3 }}

[audit]
sinks = ["store", "file"]
file = "{work / 'audit.jsonl'}"
"""
    srv = e2e.Rolegate(work, config_for_port=config_with(idp, work / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    srv.audit_file = work / "audit.jsonl"
    yield srv
    code = srv.stop()
    assert code == 0, f"rolegate exited with {code}\n{srv.log_tail()}"


def scrape(srv) -> str:
    r = e2e.http("GET", f"{srv.url}/metrics")
    assert r.status == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def test_metrics_count_sts_requests_by_action_and_aws_error_code(ops, id_token):
    sts = e2e.sts_client(ops.url)
    before = scrape(ops)
    for n in range(2):
        sts.assume_role_with_web_identity(
            RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName=f"metrics-{n}",
            WebIdentityToken=id_token(e2e.DEPLOYER_SUB))
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(
            RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="metrics-bad",
            WebIdentityToken=id_token(e2e.DEPLOYER_SUB)[:-4] + "AAAA")
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
    after = scrape(ops)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    awi = "AssumeRoleWithWebIdentity"
    assert delta("rolegate_sts_requests_total", action=awi, code="OK") == 2
    assert delta("rolegate_sts_requests_total", action=awi, code="InvalidIdentityToken") == 1
    assert delta("rolegate_sts_request_duration_seconds_count", action=awi) == 3
    assert delta("rolegate_sessions_minted_total") == 2
    assert metric(after, "rolegate_active_sessions") >= 2
    assert metric(after, "rolegate_jwks_fetches_total") >= 1
    # Audit batches are written within 50 ms, through the metered store.
    wait_for(lambda: metric(scrape(ops), "rolegate_store_operation_duration_seconds_count",
                            op="append_audit") >= 1, what="a timed append_audit")
    assert metric(after, "rolegate_store_operation_duration_seconds_count", op="sealing_keys") >= 1
    assert "# TYPE rolegate_sts_request_duration_seconds histogram" in after
    # Routes other than the STS are counted by their template, not by the path sent.
    e2e.http("GET", f"{ops.url}/healthz")
    assert metric(scrape(ops), "rolegate_http_requests_total", route="/healthz", status="200") >= 1


def test_bodies_over_the_endpoint_limit_are_refused(ops, id_token):
    r = e2e.http("POST", f"{ops.url}/admin/revocations", json.dumps({"reason": "x" * 5000}),
                 {"Content-Type": "application/json", "Authorization": "Bearer x"})
    assert r.status == 413, (r.status, r.text)

    form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": e2e.ROLE_DEPLOYER, "RoleSessionName": "big",
            "WebIdentityToken": id_token(e2e.DEPLOYER_SUB), "Padding": "p" * 40_000}
    r = e2e.http("POST", ops.url + "/", urllib.parse.urlencode(form),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400
    code, message, rid = e2e.sts_error(r.body)
    assert (code, message) == ("ValidationError", "The request body is too large")
    ev = wait_for(lambda: [e for e in audit_lines(ops.audit_file) if e["request_id"] == rid],
                  what="the audit event of the oversized request")[0]
    assert ev["decision"] == "deny"
    assert "over the limit of 32768 bytes" in ev["reason"]
    assert not any(e.get("access_key_id") for e in audit_lines(ops.audit_file)
                   if e["request_id"] == rid)

    # AssumeRoleWithSAML may carry a 100,000-character assertion: not refused for its size.
    saml = {"Action": "AssumeRoleWithSAML", "Version": "2011-06-15",
            "RoleArn": e2e.ROLE_DEPLOYER, "PrincipalArn": e2e.ROLE_DEPLOYER,
            "SAMLAssertion": "A" * 100_000}
    r = e2e.http("POST", ops.url + "/", urllib.parse.urlencode(saml),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (400, 403)
    _, message, _ = e2e.sts_error(r.body)
    assert message != "The request body is too large"


def test_bootstrap_attempts_are_rate_limited_per_address_with_429_and_an_audit_reason(ops):
    statuses, last = [], None
    for _ in range(6):
        last = e2e.http("POST", f"{ops.url}/bootstrap",
                        json.dumps({"token": "t" * 40, "password": "p" * 20}),
                        {"Content-Type": "application/json"})
        statuses.append(last.status)
    assert 429 not in statuses[:3], statuses
    assert metric(scrape(ops), "rolegate_rate_limited_total", limit="login_per_ip") >= 3
    assert statuses[3:] == [429, 429, 429], statuses
    assert int(last.headers["retry-after"]) >= 1
    rid = last.headers["x-request-id"]
    ev = wait_for(lambda: [e for e in audit_lines(ops.audit_file) if e["request_id"] == rid],
                  what="the audit event of the refused bootstrap")[0]
    assert ev["decision"] == "deny"
    assert ev["error_code"] == "Throttling"
    assert ev["reason"].startswith("rate limit login_per_ip exceeded")

    # The request id of a non-STS route is one: response header, JSON log span, audit event.
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)

    def logged():
        for line in ops.log.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("span", {}).get("request_id") == rid:
                    return entry
        return None

    entry = wait_for(logged, what="a JSON log line carrying the request id")
    assert entry["span"]["route"] == "/bootstrap"
    assert entry["target"] == "audit" and json.loads(entry["event"])["request_id"] == rid
    assert metric(scrape(ops), "rolegate_rate_limited_total", limit="login_per_ip") >= 3


def test_audit_file_gets_every_event_and_is_reopened_on_sighup(ops, idp):
    sts = e2e.sts_client(ops.url)
    with pytest.raises(ClientError):
        sts.get_caller_identity()
    wait_for(lambda: any(e["action"] == "GetCallerIdentity" for e in audit_lines(ops.audit_file)),
             what="GetCallerIdentity in the audit file")
    rotated = ops.audit_file.with_name("audit.jsonl.rotated")
    ops.audit_file.rename(rotated)
    hup_line = "SIGHUP: reloading the TLS certificate and reopening the audit file"
    hups = ops.log.read_text().count(hup_line)
    ops.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: ops.log.read_text().count(hup_line) > hups, what="the server to take the SIGHUP")
    # The signal task logs, then tells the sinks; give that hand-over a moment.
    time.sleep(0.3)
    r = e2e.http("POST", ops.url + "/", "Action=GetCallerIdentity&Version=2011-06-15",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    _, _, rid = e2e.sts_error(r.body)
    ev = wait_for(lambda: [e for e in audit_lines(ops.audit_file) if e["request_id"] == rid],
                  what="the event in the reopened file")[0]
    assert ev["error_code"] == "MissingAuthenticationToken"
    assert not [e for e in audit_lines(rotated) if e["request_id"] == rid]
    # The store sink has it too.
    assert ops.audit_event(rid)["request_id"] == rid
    assert ops.proc.poll() is None, "SIGHUP must not stop the server"


def test_tls_only_role_is_refused_over_plain_http(ops, id_token):
    sts = e2e.sts_client(ops.url)
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=ROLE_TLS_ONLY, RoleSessionName="plain",
                                          WebIdentityToken=id_token("anyone"))
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_sts_per_ip_limit_answers_throttling_400_like_aws(idp, admin_token, tmp_path):
    metrics_port = e2e.free_port()
    extra = f"""
[rate_limits]
sts_per_ip = {{ per_minute = 1, burst = 2 }}

[metrics]
listen = "127.0.0.1:{metrics_port}"
"""
    srv = e2e.Rolegate(tmp_path, config_for_port=config_with(idp, tmp_path / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    try:
        bodies = []
        for _ in range(3):
            r = e2e.http("POST", srv.url + "/", "Action=GetCallerIdentity&Version=2011-06-15",
                         {"Content-Type": "application/x-www-form-urlencoded"})
            bodies.append((r.status, e2e.sts_error(r.body)))
        assert [b[1][0] for b in bodies] == ["MissingAuthenticationToken"] * 2 + ["Throttling"]
        status, (code, message, rid) = bodies[2]
        assert (status, message) == (400, "Rate exceeded")
        # boto3 sees AWS's throttling error (and would retry it).
        sts = e2e.sts_client(srv.url)
        with pytest.raises(ClientError) as e:
            sts.get_caller_identity()
        assert e.value.response["Error"]["Code"] == "Throttling"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        ev = srv.audit_event(rid)
        assert ev["error_code"] == "Throttling"
        assert ev["reason"] == "rate limit sts_per_ip exceeded by 127.0.0.1"
        # Metrics on their own listener, not on the main one.
        assert e2e.http("GET", f"{srv.url}/metrics").status == 404
        text = e2e.http("GET", f"http://127.0.0.1:{metrics_port}/metrics").text
        limited = metric(text, "rolegate_rate_limited_total", limit="sts_per_ip")
        assert limited >= 2  # the raw request and boto3's attempt(s)
        assert metric(text, "rolegate_sts_requests_total", action="GetCallerIdentity",
                      code="Throttling") == limited
    finally:
        assert srv.stop() == 0


def _partial_awi(port: int, token: str) -> tuple[socket.socket, bytes]:
    """Opens a connection and sends an AssumeRoleWithWebIdentity request without its last bytes."""
    body = urllib.parse.urlencode({
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
        "RoleArn": e2e.ROLE_DEPLOYER, "RoleSessionName": "in-flight",
        "WebIdentityToken": token}).encode()
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head + body[:-10])
    return s, body[-10:]


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_sigterm_finishes_a_request_in_flight_then_exits_and_flushes_the_audit_log(
        idp, id_token, admin_token, tmp_path):
    extra = f"""
[shutdown]
drain_seconds = 10

[audit]
sinks = ["store", "file"]
file = "{tmp_path / 'audit.jsonl'}"
"""
    srv = e2e.Rolegate(tmp_path, config_for_port=config_with(idp, tmp_path / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    token = id_token(e2e.DEPLOYER_SUB)
    s, rest = _partial_awi(srv.port, token)
    # Long enough for the server to accept the connection and start reading the request.
    time.sleep(1)
    srv.proc.send_signal(signal.SIGTERM)
    # No new connections once shutdown began.
    wait_for(lambda: e2e.port_in_use(srv.port) is False or _refused(srv.port),
             what="the listener to close")
    time.sleep(0.5)
    assert srv.proc.poll() is None, "exited with a request in flight"
    s.sendall(rest)
    resp = _read_all(s)
    s.close()
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    body = resp.split(b"\r\n\r\n", 1)[1]
    creds = e2e.sts_result(body, "AssumeRoleWithWebIdentity")
    key_id = e2e.field(creds, "Credentials/AccessKeyId")
    assert key_id and key_id.startswith("ASIA")
    assert srv.proc.wait(timeout=10) == 0
    events = [e for e in audit_lines(tmp_path / "audit.jsonl")
              if e.get("access_key_id") == key_id]
    assert len(events) == 1 and events[0]["decision"] == "allow"
    # The store has it too (the server is gone: the CLI opens the store itself).
    stored = json.loads(srv.cli("audit", "--json", "--action", "AssumeRoleWithWebIdentity")
                        .stdout.splitlines()[0])
    assert stored["access_key_id"] == key_id


def test_with_a_ready_delay_sigterm_first_turns_readyz_to_503_while_still_serving(
        idp, id_token, admin_token, tmp_path):
    extra = """
[shutdown]
ready_delay_seconds = 5
drain_seconds = 5
"""
    srv = e2e.Rolegate(tmp_path, config_for_port=config_with(idp, tmp_path / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    assert e2e.http("GET", f"{srv.url}/readyz").status == 200
    # Everything the call below needs is made before the delay starts to run.
    sts = e2e.sts_client(srv.url)
    token = id_token(e2e.DEPLOYER_SUB)
    srv.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: e2e.http("GET", f"{srv.url}/readyz").status == 503, what="/readyz to answer 503")
    r = e2e.http("GET", f"{srv.url}/readyz")
    assert r.text == "shutting down\n", r.text
    # Still serving, on new connections too: credentials are issued during the delay.
    out = sts.assume_role_with_web_identity(RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="late",
                                            WebIdentityToken=token)
    assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert srv.proc.poll() is None
    # Then the listener closes and the process exits cleanly.
    wait_for(lambda: _refused(srv.port), what="the listener to close", timeout=10)
    assert srv.proc.wait(timeout=10) == 0


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_the_drain_is_bounded_a_stalled_request_is_cut(idp, id_token, admin_token, tmp_path):
    extra = """
[shutdown]
drain_seconds = 1
"""
    srv = e2e.Rolegate(tmp_path, config_for_port=config_with(idp, tmp_path / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    s, _ = _partial_awi(srv.port, id_token(e2e.DEPLOYER_SUB))
    time.sleep(1)
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=8) == 0
    took = time.monotonic() - started
    assert 0.9 <= took < 5, took
    assert "drain time over" in srv.log.read_text()
    s.close()


# ---------------------------------------------------------------------------------------------------
# TLS


def _openssl(*args: str, cwd: Path):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> Path:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
             "-subj", f"/CN=rolegate test CA {name}", cwd=d)
    return d / f"{name}-ca.pem"


def make_server_cert(d: Path, ca: str, out: str, serial: int):
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{out}.key.new", "-out", f"{out}.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    _openssl("x509", "-req", "-in", f"{out}.csr", "-CA", f"{ca}-ca.pem", "-CAkey", f"{ca}-ca.key",
             "-set_serial", str(serial), "-days", "1", "-extfile", "ext.cnf",
             "-out", f"{out}.pem.new", cwd=d)
    # Replace the pair as a deployment would: each file renamed into place.
    (d / f"{out}.pem.new").rename(d / f"{out}.pem")
    (d / f"{out}.key.new").rename(d / f"{out}.key")


def peer_serial(port: int, ca: Path) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
                         input=der, capture_output=True, check=True).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def test_tls_termination_with_boto3_verifying_a_test_ca_and_reload_on_sighup(
        idp, id_token, rolegate_binary, admin_token, tmp_path):
    ca = make_ca(tmp_path, "one")
    make_server_cert(tmp_path, "one", "server", serial=1001)
    port = e2e.free_port()
    extra = f"""
[tls]
cert_file = "{tmp_path / 'server.pem'}"
key_file = "{tmp_path / 'server.key'}"
reload_seconds = 3600
"""
    text = config_with(idp, tmp_path / "data", extra)(port).replace(
        f'public_url = "http://127.0.0.1:{port}"', f'public_url = "https://127.0.0.1:{port}"')
    cfg = tmp_path / "rolegate.toml"
    cfg.write_text(text)
    log = tmp_path / "rolegate.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(rolegate_binary), "--config", str(cfg), "serve"],
                                cwd=tmp_path, stdout=out, stderr=out,
                                env=e2e.base_env(ROLEGATE_LOG="info",
                                                 **{e2e.ADMIN_TOKEN_ENV: admin_token}))
    url = f"https://127.0.0.1:{port}"
    try:
        ctx = ssl.create_default_context(cafile=str(ca))

        def ready():
            try:
                import urllib.request
                with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=30, what=f"rolegate over TLS\n{log.read_text()}")

        # A client that does not trust the test CA is refused at the handshake.
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                untrusting.wrap_socket(raw, server_hostname="127.0.0.1")

        sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", verify=str(ca),
                           config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                                         retries={"max_attempts": 1}))
        # aws:SecureTransport is true under TLS: the tls-only role's trust policy passes.
        got = sts.assume_role_with_web_identity(RoleArn=ROLE_TLS_ONLY, RoleSessionName="tls",
                                                WebIdentityToken=id_token("anyone"))
        creds = got["Credentials"]
        signed = boto3.client("sts", endpoint_url=url, region_name="us-east-1", verify=str(ca),
                              aws_access_key_id=creds["AccessKeyId"],
                              aws_secret_access_key=creds["SecretAccessKey"],
                              aws_session_token=creds["SessionToken"],
                              config=botocore.config.Config(retries={"max_attempts": 1}))
        assert signed.get_caller_identity()["Arn"].endswith("assumed-role/tls-only/tls")

        # Plain HTTP on the TLS port gets no answer in HTTP.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                reply = raw.recv(100)
            except OSError:
                reply = b""
            assert not reply.startswith(b"HTTP/1.1 200")

        # A new certificate from another CA, then SIGHUP: new connections present it.
        assert peer_serial(port, ca) == 1001
        ca2 = make_ca(tmp_path, "two")
        make_server_cert(tmp_path, "two", "server", serial=2002)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _serial_or_none(port, ca2) == 2002, what="the reloaded certificate")
        sts2 = boto3.client("sts", endpoint_url=url, region_name="us-east-1", verify=str(ca2),
                            config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                                          retries={"max_attempts": 1}))
        assert sts2.assume_role_with_web_identity(
            RoleArn=ROLE_TLS_ONLY, RoleSessionName="tls2",
            WebIdentityToken=id_token("anyone"))["Credentials"]["AccessKeyId"].startswith("ASIA")

        # A broken pair is not loaded: the previous certificate stays.
        (tmp_path / "server.key").write_text("not a key\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS certificate not reloaded" in log.read_text(), what="the refusal")
        assert peer_serial(port, ca2) == 2002
    finally:
        code = e2e.terminate(proc, "rolegate", log)
    assert code == 0, log.read_text()[-3000:]


def _serial_or_none(port, ca):
    try:
        return peer_serial(port, ca)
    except (ssl.SSLError, OSError):
        return None


def test_rolegate_audit_selects_a_time_range_action_and_decision(ops):
    from datetime import datetime, timezone

    def now():
        return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    def unsigned_call():
        r = e2e.http("POST", ops.url + "/", "Action=GetCallerIdentity&Version=2011-06-15",
                     {"Content-Type": "application/x-www-form-urlencoded"})
        return e2e.sts_error(r.body)[2]

    time.sleep(0.02)
    t0 = now()
    time.sleep(0.02)
    inside = unsigned_call()
    time.sleep(0.02)
    t1 = now()
    time.sleep(0.02)
    outside = unsigned_call()
    wait_for(lambda: any(e["request_id"] == outside for e in audit_lines(ops.audit_file)),
             what="the second event")
    got = ops.audit("--since", t0, "--until", t1, "--action", "GetCallerIdentity",
                    "--decision", "deny")
    assert [e["request_id"] for e in got] == [inside]
    assert ops.audit("--since", t0, "--until", t1, "--decision", "allow") == []
    assert {e["request_id"] for e in ops.audit("--since", t0, "--action", "GetCallerIdentity")} \
        == {inside, outside}


ROLE_OFFICE = f"arn:aws:iam::{e2e.ACCOUNT}:role/office-only"


def office_only_role(idp: e2e.Idp) -> str:
    """A role whose trust policy asks for a source address in 198.51.100.0/24 over TLS."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": idp.provider_arn()},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{idp.key_prefix}:aud": e2e.CLIENT_ID},
                "IpAddress": {"aws:SourceIp": "198.51.100.0/24"},
                "Bool": {"aws:SecureTransport": "true"},
            },
        }],
    }
    return f"""
[[roles]]
account = "{e2e.ACCOUNT}"
name = "office-only"
trust_policy = '''{json.dumps(trust)}'''
"""


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_source_address(
        idp, id_token, admin_token, tmp_path):
    def awi(srv, headers):
        body = urllib.parse.urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
            "RoleArn": ROLE_OFFICE, "RoleSessionName": "fwd",
            "WebIdentityToken": id_token(e2e.DEPLOYER_SUB)})
        r = e2e.http("POST", srv.url + "/", body,
                     {"Content-Type": "application/x-www-form-urlencoded", **headers})
        if r.status == 200:
            return 200, "OK", r.headers["x-amzn-requestid"]
        code, _, rid = e2e.sts_error(r.body)
        return r.status, code, rid

    base = e2e.server_config(idp, tmp_path / "data")
    config = lambda port: base(port) + office_only_role(idp)  # noqa: E731
    # The proxy list comes from the environment, as a deployment would set it.
    for trusted, believed in (('["127.0.0.1"]', True), ('["127.0.0.2/32"]', False)):
        srv = e2e.Rolegate(tmp_path / f"run-{believed}", config_for_port=config,
                           env={e2e.ADMIN_TOKEN_ENV: admin_token,
                                "ROLEGATE__SERVER__TRUSTED_PROXIES": trusted})
        try:
            office = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
            status, code, rid = awi(srv, office)
            if not believed:
                # From a peer that is no trusted proxy, both headers are the client's say-so.
                assert (status, code) == (403, "AccessDenied")
                assert srv.audit_event(rid)["source_ip"] == "127.0.0.1"
                continue
            assert (status, code) == (200, "OK")
            assert srv.audit_event(rid)["source_ip"] == "198.51.100.7"
            # A client that writes its own X-Forwarded-For only adds entries on the left: the
            # proxy's entry (the real peer) is the one that counts.
            status, code, rid = awi(srv, {"X-Forwarded-For": "198.51.100.7, 203.0.113.1",
                                          "X-Forwarded-Proto": "https"})
            assert (status, code) == (403, "AccessDenied")
            assert srv.audit_event(rid)["source_ip"] == "203.0.113.1"
            # Plain http at the proxy: aws:SecureTransport is false.
            status, code, _ = awi(srv, {"X-Forwarded-For": "198.51.100.7"})
            assert (status, code) == (403, "AccessDenied")
        finally:
            assert srv.stop() == 0, srv.log_tail()


def test_sts_per_principal_limit_counts_each_proven_caller_on_its_own(idp, id_token, admin_token,
                                                                      tmp_path):
    extra = """
[rate_limits]
sts_per_principal = { per_minute = 1, burst = 2 }
"""
    srv = e2e.Rolegate(tmp_path, config_for_port=config_with(idp, tmp_path / "data", extra),
                       env={e2e.ADMIN_TOKEN_ENV: admin_token})
    sts = e2e.sts_client(srv.url)

    def awi(sub, session="limited"):
        try:
            return sts.assume_role_with_web_identity(
                RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName=session,
                WebIdentityToken=id_token(sub))["Credentials"], None
        except ClientError as e:
            return None, e.response

    try:
        # Tokens that do not verify prove no caller: they spend nobody's allowance.
        for _ in range(4):
            with pytest.raises(ClientError) as e:
                sts.assume_role_with_web_identity(RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="bad",
                                                  WebIdentityToken="not.a.token")
            assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
        main = e2e.DEPLOYER_SUB
        first, _ = awi(main)
        second, _ = awi(main, "other-session")
        assert first and second
        _, err = awi(main)
        assert err["Error"]["Code"] == "Throttling", err
        rid = err["ResponseMetadata"]["RequestId"]
        assert srv.audit_event(rid)["reason"] == (
            f"rate limit sts_per_principal exceeded by {idp.issuer}#{main}")
        # Another subject from the same address has its own allowance.
        other, err = awi("repo:acme/other:ref:refs/heads/main")
        assert other, err
        # Signed calls count per signer (the session's ARN names its session).
        signed = e2e.sts_client(srv.url, first)
        signed.get_caller_identity()
        signed.get_caller_identity()
        with pytest.raises(ClientError) as e:
            signed.get_caller_identity()
        assert e.value.response["Error"]["Code"] == "Throttling"
        e2e.sts_client(srv.url, second).get_caller_identity()
    finally:
        assert srv.stop() == 0
