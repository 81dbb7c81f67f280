//! What every HTTP edge shares about the request it is handling: its id (the `x-request-id`
//! response header, the log's `request_id`, the audit event's), the client's address, and the
//! content security policies of pages and of everything else. A leaf: it knows no route.

use axum::extract::{ConnectInfo, Request};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

tokio::task_local! {
    /// The id of the request being handled (routes other than the STS, which makes its own).
    static REQUEST_ID: Arc<str>;
}

/// The id of the request being handled, as the `x-request-id` response header and the log's
/// `request_id` show it; a fresh one outside a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.to_string())
        .unwrap_or_else(|_| new_request_id())
}

/// A request id in the shape AWS uses (a random UUID).
pub fn new_request_id() -> String {
    let mut b = random_16();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

/// 16 random bytes ([`crate::credentials::fill_random`]); if the generator fails, which is never
/// seen in practice, an id must still be unique: the time and a count.
fn random_16() -> [u8; 16] {
    let mut out = [0u8; 16];
    if crate::credentials::fill_random(&mut out).is_err() {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        out[..8].copy_from_slice(&t.to_be_bytes());
        out[8..].copy_from_slice(&n.to_be_bytes());
    }
    out
}

/// The client's address: the peer, or the forwarded client when a trusted proxy is the peer (the
/// edge rewrites it); loopback when there is no connection (in-process tests).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The policy of HTML pages: their own scripts, styles and images, nothing else, never framed. It
/// ends with `form-action 'self'`, which the PKCE approval page extends by one origin.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// The policy of everything that is not a page (STS XML, JSON, CSS): nothing may load or run if a
/// browser renders it as a document, and it is never framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Runs `fut` as the handling of the request with id `id`: [`request_id`] answers it inside.
pub async fn scoped<F: std::future::Future>(id: Arc<str>, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}
