"""OpenTelemetry trace export: rolegate sends request spans over OTLP/HTTP (JSON) to the collector
named by `[tracing] otlp_endpoint`, joins the caller's W3C trace context, honours its sampling
decision, and sends what it still holds when it stops."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import e2e


class Collector:
    """An OTLP/HTTP receiver: keeps every `POST /v1/traces` body (JSON encoding)."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.content_types: list[str] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(n)
                with lock:
                    outer.content_types.append(self.headers.get("content-type", ""))
                    if self.path == "/v1/traces":
                        outer.bodies.append(json.loads(raw))
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def spans(self) -> list[dict]:
        """Every span received, each with its resource's attributes under `_resource`."""
        out = []
        for body in list(self.bodies):
            for rs in body.get("resourceSpans", []):
                resource = attrs(rs.get("resource", {}).get("attributes", []))
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        out.append({**s, "_resource": resource})
        return out

    def close(self):
        self.httpd.shutdown()


def attrs(items: list[dict]) -> dict:
    """OTLP attributes as a plain dict."""
    out = {}
    for a in items:
        v = a.get("value", {})
        out[a["key"]] = next(iter(v.values())) if v else None
    return out


def wait_for(what, pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers)


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


def start(idp, tmp_path, collector, delay_ms: int, extra: str = "",
          admin_token: str = "t" * 48) -> e2e.Rolegate:
    base = e2e.server_config(idp, tmp_path / "data")
    section = f'\n[tracing]\notlp_endpoint = "{collector.url}"\nservice_name = "rolegate-test"\n{extra}'
    return e2e.Rolegate(tmp_path / "run", config_for_port=lambda p: base(p) + section,
                        env={"OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
                             e2e.ADMIN_TOKEN_ENV: admin_token})


def test_request_spans_reach_the_collector_in_the_caller_s_trace(idp, id_token, tmp_path, collector):
    srv = start(idp, tmp_path, collector, delay_ms=200)
    try:
        trace_id = secrets.token_hex(16)
        parent = secrets.token_hex(8)
        status, headers = get(f"{srv.url}/healthz",
                              {"traceparent": f"00-{trace_id}-{parent}-01"})
        assert status == 200
        request_id = headers["x-request-id"]

        resp = e2e.sts_client(srv.url).assume_role_with_web_identity(
            RoleArn=e2e.ROLE_DEPLOYER, RoleSessionName="traced",
            WebIdentityToken=id_token(e2e.DEPLOYER_SUB))
        sts_request_id = resp["ResponseMetadata"]["RequestId"]

        # The caller says "not sampled": rolegate exports nothing of that trace.
        unsampled = secrets.token_hex(16)
        get(f"{srv.url}/healthz", {"traceparent": f"00-{unsampled}-{secrets.token_hex(8)}-00"})

        health = wait_for("the /healthz span", lambda: [
            s for s in collector.spans() if s["traceId"] == trace_id])
        assert len(health) == 1, health
        span = health[0]
        assert span["parentSpanId"] == parent
        assert span["name"] == "GET /healthz"
        assert span["kind"] in (2, "SPAN_KIND_SERVER")
        a = attrs(span["attributes"])
        assert a["request_id"] == request_id
        assert str(a["http.response.status_code"]) == "200"
        assert span["_resource"]["service.name"] == "rolegate-test"

        sts_spans = wait_for("the STS span", lambda: [
            s for s in collector.spans() if attrs(s["attributes"]).get("request_id") == sts_request_id])
        assert sts_spans[0]["name"] == "sts:AssumeRoleWithWebIdentity"
        assert str(attrs(sts_spans[0]["attributes"])["http.response.status_code"]) == "200"
        # A trace started here has no parent.
        assert not sts_spans[0].get("parentSpanId")

        time.sleep(1.0)
        assert not [s for s in collector.spans() if s["traceId"] == unsampled]
        assert all(ct.startswith("application/json") for ct in collector.content_types)
    finally:
        assert srv.stop() == 0, srv.log_tail()


def test_spans_still_held_at_shutdown_are_sent_before_rolegate_exits(idp, tmp_path, collector):
    # Batches would wait a minute: only the shutdown flush can deliver this span in time.
    srv = start(idp, tmp_path, collector, delay_ms=60_000)
    trace_id = secrets.token_hex(16)
    get(f"{srv.url}/healthz", {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    time.sleep(0.5)
    assert not collector.spans(), "exported before the batch delay: the test proves nothing"
    assert srv.stop() == 0, srv.log_tail()
    assert [s for s in collector.spans() if s["traceId"] == trace_id]


def test_a_zero_sample_ratio_exports_only_what_callers_sampled(idp, tmp_path, collector):
    srv = start(idp, tmp_path, collector, delay_ms=200, extra="sample_ratio = 0.0\n")
    try:
        for _ in range(5):
            get(f"{srv.url}/healthz")
        sampled = secrets.token_hex(16)
        get(f"{srv.url}/healthz", {"traceparent": f"00-{sampled}-{secrets.token_hex(8)}-01"})
        wait_for("the sampled span", lambda: [s for s in collector.spans() if s["traceId"] == sampled])
        time.sleep(0.5)
        assert len(collector.spans()) == 1, [s["traceId"] for s in collector.spans()]
    finally:
        assert srv.stop() == 0, srv.log_tail()


def test_a_bad_tracing_section_is_refused_at_start(tmp_path):
    for extra, needle in [
        ('[tracing]\notlp_endpoint = "collector:4318"\n', "tracing.otlp_endpoint"),
        ('[tracing]\notlp_endpoint = "http://c:4318"\nsample_ratio = 2.0\n', "tracing.sample_ratio"),
        ('[tracing]\nservice_name = "x"\n', "without tracing.otlp_endpoint"),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text('[server]\nlisten = "127.0.0.1:0"\npublic_url = "http://127.0.0.1:1"\n'
                        '[store]\nkind = "memory"\n' + extra)
        r = e2e.run_rolegate(["--config", str(path), "check-config"])
        assert r.returncode == 2, r.stdout
        assert needle in r.stderr, r.stderr
