//! Audit events: one structured record per decision (who, what, the decision, and the precise reason even
//! when the client got a coarse message). Events are queued without blocking the request, written to the
//! store in batches, and mirrored to the tracing log. Durability: a batch is written at most
//! [`FLUSH_INTERVAL`] after its first event (or when [`BATCH_SIZE`] events are queued) and on shutdown;
//! a crash loses at most the events of that window. Knows nothing of HTTP types.

use crate::store::{AuditQuery, AuditRecord, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Longest time an event waits in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Largest batch written at once.
pub const BATCH_SIZE: usize = 512;
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
}

impl AuditEvent {
    /// A new event for `action` at `time`.
    pub fn new(time: DateTime<Utc>, request_id: &str, action: &str) -> Self {
        Self {
            time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
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
        let time_ms = DateTime::parse_from_rfc3339(&self.time)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        AuditRecord {
            time_ms,
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
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Auditor {
    /// Starts the background writer for `store`.
    pub fn start(store: Arc<dyn Store>) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer(store, rx, written.clone()));
        Auditor {
            tx,
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

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Msg>, written: Arc<AtomicU64>) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(BATCH_SIZE);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let first = match rx.recv().await {
            Some(m) => m,
            None => break,
        };
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        let push = |m: Msg,
                    batch: &mut Vec<AuditRecord>,
                    waiters: &mut Vec<oneshot::Sender<()>>| match m {
            Msg::Event(e) => batch.push(e.to_record()),
            Msg::Flush(w) => waiters.push(w),
        };
        push(first, &mut batch, &mut waiters);
        while batch.len() < BATCH_SIZE && waiters.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => push(m, &mut batch, &mut waiters),
                Ok(None) | Err(_) => break,
            }
        }
        // Drain whatever is already queued so that a flush covers everything recorded before it.
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

/// Reads audit events back, newest first unless told otherwise.
pub async fn query(store: &dyn Store, q: &AuditQuery) -> crate::store::Result<Vec<AuditEvent>> {
    Ok(store
        .query_audit(q)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect())
}
