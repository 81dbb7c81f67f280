//! The Query API's front door (`POST /` and `GET /?Action=…`): parses the parameters, applies the
//! per-address and per-MFA-device rate limits, hands the request to IAM or STS, and records exactly
//! one audit event and the request's metrics.

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::query::params::Params;
use crate::query::{set_xml_headers, QueryError, QueryRequest};
use crate::sts::StsAction;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Handles one Query API request end to end, recording exactly one audit event.
pub async fn handle(app: &Arc<App>, req: QueryRequest<'_>) -> Response {
    let started = std::time::Instant::now();
    let now = app.clock.now();
    let mut params = Params::default();
    params.add_form(req.query.as_bytes());
    if req.method == Method::POST {
        params.add_form(req.body);
    }
    let action_name = params.get("Action").ok().flatten().unwrap_or("");
    if crate::telemetry::enabled() {
        let span = tracing::Span::current();
        span.record("request_id", req.request_id);
        if let Some(a) = StsAction::parse(action_name) {
            crate::telemetry::rename(&span, format!("sts:{}", a.name()));
        }
    }
    let mut event = AuditEvent::new(
        now,
        req.request_id,
        if action_name.is_empty() {
            "-"
        } else {
            action_name
        },
    );
    event.source_ip = Some(ip_text(req.source_ip));
    event.user_agent = req
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            // At most 256 characters (a header value that is a str is ASCII: bytes are characters).
            s[..s.len().min(256)].to_string()
        });

    let iam = crate::iam::is_iam_request(&params);
    let mfa_serial = match (params.get("TokenCode"), params.get("SerialNumber")) {
        (Ok(Some(_)), Ok(serial)) => Some(serial.unwrap_or("-")),
        _ => None,
    };
    let result = match app.limits.sts(req.source_ip, mfa_serial) {
        Ok(()) if iam => crate::iam::dispatch(app, &req, &params, &mut event).await,
        Ok(()) => crate::sts::dispatch(app, &req, &params, &mut event).await,
        Err(limited) => {
            app.metrics.rate_limited(limited.limit);
            Err(QueryError::throttling(format!(
                "rate limit {} exceeded by {}",
                limited.limit,
                match limited.limit {
                    "mfa_per_user" => mfa_serial.unwrap_or("-").to_string(),
                    _ => req.source_ip.to_string(),
                }
            )))
        }
    };
    let response = match result {
        Ok(xml) => {
            event.outcome(Outcome::Allow);
            let mut r = xml.into_response();
            let h = r.headers_mut();
            // Room for these two and the security headers added on the way out, without regrowing.
            h.reserve(8);
            set_xml_headers(h, req.request_id);
            r
        }
        Err(mut e) => {
            e.request_id = req.request_id.to_string();
            event.outcome(if e.status().is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            event.refused(&e);
            e.response(if iam {
                crate::iam::NAMESPACE
            } else {
                crate::query::xml::NAMESPACE
            })
        }
    };
    app.metrics
        .sts_request(action_name, event.error_code.as_deref(), started.elapsed());
    app.audit.record(event);
    response
}

/// `ip` as its `Display` writes it; an IPv4 address (every request's, on most deployments) without
/// the formatting machinery.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ip_text;
    use std::net::IpAddr;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut seen = 0;
        for a in [0u8, 1, 9, 10, 99, 100, 109, 110, 199, 200, 255] {
            for b in [0u8, 7, 10, 100, 255] {
                let ip = IpAddr::from([a, b, 10 * (a % 26), 255 - a]);
                assert_eq!(ip_text(ip), ip.to_string());
                seen += 1;
            }
        }
        assert_eq!(seen, 55);
        for v6 in ["::1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1"] {
            let ip: IpAddr = v6.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
