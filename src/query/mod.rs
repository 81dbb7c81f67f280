//! The AWS Query API that STS and IAM share: the request as received, its parameters, the XML
//! writer, the wire error (code, HTTP status, message for the client, reason for the audit log) and
//! the headers of every answer. Knows nothing of any action.

pub mod code;
pub mod error;
pub mod params;
pub mod xml;

pub use code::AwsCode;
pub use error::QueryError;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use std::net::IpAddr;

/// The response header that carries the request id, as AWS names it.
pub static X_AMZN_REQUESTID: header::HeaderName =
    header::HeaderName::from_static("x-amzn-requestid");

/// The headers of every STS and IAM answer, result or error: XML, and the request id.
pub fn set_xml_headers(h: &mut HeaderMap, request_id: &str) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_AMZN_REQUESTID.clone(), v);
    }
}

/// One Query API request (STS or IAM) as received.
pub struct QueryRequest<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Raw path.
    pub path: &'a str,
    /// Raw query string.
    pub query: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body bytes.
    pub body: &'a [u8],
    /// Client address.
    pub source_ip: IpAddr,
    /// Whether the request came over TLS.
    pub secure_transport: bool,
    /// Request id for the response and the audit log.
    pub request_id: &'a str,
}
