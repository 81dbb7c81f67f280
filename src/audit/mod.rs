//! Audit events: one structured record per decision (who, what, the decision, and the precise reason even
//! when the client got a coarse message). Events are queued without blocking the request, written to the
//! store in batches, and mirrored to the tracing log. Durability: a batch is written at most
//! [`FLUSH_INTERVAL`] after its first event, at once when someone waits for it ([`Auditor::flush`]),
//! and on shutdown; a crash loses at most the events of that window. The writer sleeps through the
//! window instead of waking for every event, so a busy server pays one wake-up per batch.
//! Knows nothing of HTTP types.

use crate::store::{AuditQuery, AuditRecord, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Longest time an event waits in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Events queued beyond this are dropped (and counted) rather than blocking requests.
pub const QUEUE_CAPACITY: usize = 65_536;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Granted.
    Allow,
    /// Refused by policy, validation or authentication.
    Deny,
    /// Failed on our side.
    Error,
}

impl Outcome {
    /// The lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AuditEvent {
    /// When, RFC 3339 with milliseconds.
    pub time: String,
    /// The same time in Unix milliseconds, for the store's time index.
    #[serde(skip)]
    time_ms: i64,
    /// The request id returned to the client.
    pub request_id: String,
    /// The action, e.g. `AssumeRoleWithWebIdentity`.
    pub action: String,
    /// `allow`, `deny` or `error`.
    pub decision: String,
    /// The AWS error code sent, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Why, precisely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who is (or would be) acting: the caller's ARN, or the session ARN a federation creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The downstream service that asked (authorization API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The resource a decision was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The role concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The identity provider (issuer) of a federated caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The subject at that provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The session name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// The access key id issued or used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Client user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Expiry of issued credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Statement-by-statement explanation of a policy decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
    /// The root user acted (signed in, bootstrapped): flagged, since root is for root tasks only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub root: bool,
    /// Whether MFA was part of a sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<bool>,
}

impl AuditEvent {
    /// A new event for `action` at `time`.
    pub fn new(time: DateTime<Utc>, request_id: &str, action: &str) -> Self {
        Self {
            time: crate::clock::rfc3339(&time, true),
            time_ms: time.timestamp_millis(),
            request_id: request_id.to_string(),
            action: action.to_string(),
            decision: Outcome::Error.as_str().into(),
            ..Default::default()
        }
    }

    /// Sets the outcome.
    pub fn outcome(&mut self, o: Outcome) {
        self.decision = o.as_str().into();
    }

    fn to_record(&self) -> AuditRecord {
        AuditRecord {
            time_ms: self.time_ms,
            id: self.request_id.clone(),
            action: self.action.clone(),
            principal: self.principal.clone(),
            decision: self.decision.clone(),
            json: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// The handle requests use to record events.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Msg>,
    flush_now: Arc<Notify>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Auditor {
    /// Starts the background writer for `store`.
    pub fn start(store: Arc<dyn Store>) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let written = Arc::new(AtomicU64::new(0));
        let flush_now = Arc::new(Notify::new());
        tokio::spawn(writer(store, rx, flush_now.clone(), written.clone()));
        Auditor {
            tx,
            flush_now,
            dropped: Arc::new(AtomicU64::new(0)),
            written,
        }
    }

    /// Records an event without waiting.
    pub fn record(&self, ev: AuditEvent) {
        match ev.decision.as_str() {
            "allow" => {
                tracing::info!(target: "audit", event = %serde_json::to_string(&ev).unwrap_or_default())
            }
            _ => {
                tracing::warn!(target: "audit", event = %serde_json::to_string(&ev).unwrap_or_default())
            }
        }
        if self.tx.try_send(Msg::Event(Box::new(ev))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(dropped = n, "audit queue full or closed: event dropped");
        }
    }

    /// Waits until every event recorded so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            self.flush_now.notify_one();
            let _ = rx.await;
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written to the store.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Msg>,
    flush_now: Arc<Notify>,
    written: Arc<AtomicU64>,
) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let push =
        |m: Msg, batch: &mut Vec<AuditRecord>, waiters: &mut Vec<oneshot::Sender<()>>| match m {
            Msg::Event(e) => batch.push(e.to_record()),
            Msg::Flush(w) => waiters.push(w),
        };
    loop {
        let first = match rx.recv().await {
            Some(m) => m,
            None => break,
        };
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        push(first, &mut batch, &mut waiters);
        if waiters.is_empty() {
            // Events queue up meanwhile; a flush ends the wait early.
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = flush_now.notified() => {}
            }
        }
        // Everything queued by now, so that a flush covers every event recorded before it.
        while let Ok(m) = rx.try_recv() {
            push(m, &mut batch, &mut waiters);
        }
        if !batch.is_empty() {
            let mut delay = Duration::from_millis(50);
            for attempt in 0..5 {
                match store.append_audit(&batch).await {
                    Ok(()) => {
                        written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    Err(e) if attempt < 4 => {
                        tracing::warn!(error = %e, "audit write failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, lost = batch.len(), "audit write failed; events lost")
                    }
                }
            }
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Reads audit events back, newest first unless told otherwise. A stored event that no longer
/// decodes is never dropped silently: it comes back with only what the store indexes (time, id,
/// action, principal, decision) and the decoding error as its reason.
pub async fn query(store: &dyn Store, q: &AuditQuery) -> crate::store::Result<Vec<AuditEvent>> {
    Ok(store
        .query_audit(q)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::from_str(&r.json).unwrap_or_else(|e| {
                tracing::warn!(id = %r.id, error = %e, "stored audit event does not decode");
                AuditEvent {
                    time: chrono::DateTime::<Utc>::from_timestamp_millis(r.time_ms)
                        .unwrap_or_default()
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                    time_ms: r.time_ms,
                    request_id: r.id,
                    action: r.action,
                    decision: r.decision,
                    principal: r.principal,
                    reason: Some(format!("stored event does not decode: {e}")),
                    ..Default::default()
                }
            })
        })
        .collect())
}
