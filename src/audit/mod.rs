//! Audit events: one structured record per decision (who, what, the decision, and the precise reason even
//! when the client got a coarse message). Events are queued without blocking the request, written to the
//! store in batches, and mirrored to the tracing log. Durability: a batch is written at most
//! [`FLUSH_INTERVAL`] after its first event, at once when someone waits for it ([`Auditor::flush`]),
//! and on shutdown; a crash loses at most the events of that window. While the store refuses writes
//! (an outage, a restart of PostgreSQL), events are held in memory, in order, and retried with
//! backoff (up to [`MAX_HELD`] of them; past that the oldest are dropped and counted); the file sink
//! gets them at once regardless. The writer sleeps through the
//! window instead of waking for every event, so a busy server pays one wake-up per batch.
//! Store writes run in tasks of their own (`STORE_CHUNK` events at most, `STORE_WRITES` at once;
//! one at a time while the store refuses them), while the writer goes on taking events from the
//! queue: a store slower than the request rate makes the held backlog grow instead of filling the
//! queue and dropping events. The window does not hold writes back: the next store write starts
//! as soon as one is done, so the store keeps up with any request rate it can take. Writes may
//! finish in any order; a flush waits for the oldest event not yet written.
//!
//! **Pacing.** Recording never waits, but a request may wait before it starts: while the store is
//! behind by more than [`BACKLOG_BOUND`] events and takes writes, [`Auditor::admit`] (called by the
//! web edge for every request but the probes) holds it for at most [`MAX_ADMIT_WAIT`], so that
//! requests go no faster than their events are written.
//!
//! Sinks, chosen by configuration: the store (queryable) and/or a JSON-lines file ([`FileSink`]:
//! one event per line, appended and synced once per batch, reopened on demand — SIGHUP, after an
//! external rotation — and rotated to `<file>.1` when it passes a size). A batch reaches the file
//! before flush waiters are released, so [`Auditor::flush`] covers both sinks.
//! Knows nothing of HTTP types.

mod file;
mod finish;
mod writer;

pub use file::{AuditError, FileSink, ReopenHandle};
use writer::{writer, Msg, Progress};

use crate::store::{AuditQuery, AuditRecord, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Longest time an event waits in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Events queued beyond this are dropped (and counted) rather than blocking requests.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Most events held in memory while the store refuses audit writes; past it the oldest are dropped
/// (and counted). About 60 MB at 600 bytes an event.
pub const MAX_HELD: usize = 100_000;
/// The first wait before a failed store write is tried again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest wait between two attempts while the store refuses audit writes.
const MAX_RETRY: Duration = Duration::from_secs(2);
/// Most events in one store write.
const STORE_CHUNK: usize = 1_000;
/// Events neither written nor dropped past which requests wait for the store ([`Auditor::admit`]):
/// about half a second of events at 20,000 requests a second.
pub const BACKLOG_BOUND: u64 = 10_000;
/// Longest a request waits for the audit store to catch up.
pub const MAX_ADMIT_WAIT: Duration = Duration::from_secs(2);
/// Most store writes under way at once, so that one write's round trips do not bound the rate:
/// PostgreSQL's audit connections (`AUDIT_CONNECTIONS`) are as many.
const STORE_WRITES: usize = 2;

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

/// A refusal as an edge answers it. Every edge has one error type (the Query API `QueryError`,
/// the SSO APIs `SsoError`, the authorization API `ApiError`, the admin API `AdminError`, the
/// portal `PortalError`); each keeps apart what the client is told and what only the audit log
/// records, and says it through this trait, so that [`AuditEvent::refused`] records any of them
/// the same way.
pub trait EdgeError {
    /// The code of the refusal, as the audit event's `error_code` records it (the wire code where
    /// the edge has one, e.g. `InvalidIdentityToken`).
    fn code(&self) -> &str;
    /// What the client is told: coarse, never the reason.
    fn message(&self) -> &str;
    /// The precise reason, for the audit and debug logs only.
    fn reason(&self) -> &str;
}

/// Implements [`EdgeError`] for an error type with the fields `message` and `reason` (strings) and
/// a `code` field that `|e| expr` reads as the audit event's code.
macro_rules! edge_error {
    ($t:ty, |$e:ident| $code:expr) => {
        impl $crate::audit::EdgeError for $t {
            fn code(&self) -> &str {
                let $e = self;
                $code
            }
            fn message(&self) -> &str {
                &self.message
            }
            fn reason(&self) -> &str {
                &self.reason
            }
        }
    };
}
pub(crate) use edge_error;

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

    /// Records a refusal on this event: its code and its precise reason.
    pub fn refused(&mut self, e: &impl EdgeError) {
        self.error_code = Some(e.code().to_owned());
        self.reason = Some(e.reason().to_owned());
    }

    /// The stored form: the JSON of the whole event, and the indexed fields moved out of it.
    fn into_record(self) -> AuditRecord {
        // Sized for a signed call's event, so that serializing it does not grow the buffer.
        let mut buf = Vec::with_capacity(1024);
        let json = match serde_json::to_writer(&mut buf, &self) {
            Ok(()) => String::from_utf8(buf).unwrap_or_default(),
            Err(_) => String::new(),
        };
        AuditRecord {
            time_ms: self.time_ms,
            id: self.request_id,
            action: self.action,
            principal: self.principal,
            decision: self.decision,
            json,
        }
    }
}

/// The handle requests use to record events.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Msg>,
    flush_now: Arc<Notify>,
    progress: Arc<Progress>,
}

impl Auditor {
    /// Starts the background writer for `store`.
    pub fn start(store: Arc<dyn Store>) -> Auditor {
        Self::start_with(Some(store), None)
    }

    /// Starts the background writer for the given sinks (at least one should be given: with
    /// none, events reach only the tracing log).
    pub fn start_with(store: Option<Arc<dyn Store>>, file: Option<FileSink>) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let progress = Arc::new(Progress::default());
        let flush_now = Arc::new(Notify::new());
        tokio::spawn(writer(store, file, rx, flush_now.clone(), progress.clone()));
        Auditor {
            tx,
            flush_now,
            progress,
        }
    }

    /// Records an event without waiting. The event is serialized here, once, for both the log and
    /// the writer: what crosses to the writer is the stored form alone, and the event's other
    /// strings are freed by the thread that made them.
    pub fn record(&self, ev: AuditEvent) {
        let record = ev.into_record();
        if record.decision == Outcome::Allow.as_str() {
            tracing::info!(target: "audit", event = %record.json)
        } else {
            tracing::warn!(target: "audit", event = %record.json)
        }
        self.progress.recorded.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Msg::Event(record)).is_err() {
            let n = self.progress.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(dropped = n, "audit queue full or closed: event dropped");
        }
    }

    /// Waits until every event recorded so far is written (while the store refuses writes: tried
    /// once and held for the retries).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            self.flush_now.notify_one();
            let _ = rx.await;
        }
    }

    /// Waits while the store is behind: while more than [`BACKLOG_BOUND`] events are neither
    /// written nor dropped and the store takes writes, for at most [`MAX_ADMIT_WAIT`]. Called before
    /// a request is handled, so that requests go no faster than their events are written instead
    /// of outrunning the store until events are dropped. While the store refuses writes, requests
    /// are not held back: their events are held in memory (see [`MAX_HELD`]).
    pub async fn admit(&self) {
        let p = &self.progress;
        if p.backlog() <= BACKLOG_BOUND {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_ADMIT_WAIT;
        let mut counted = false;
        loop {
            let moved = p.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if p.backlog() <= BACKLOG_BOUND || p.failing.load(Ordering::Relaxed) {
                return;
            }
            if !counted {
                p.paced.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                tracing::debug!(
                    backlog = p.backlog(),
                    "audit store behind for longer than a request waits: handled anyway"
                );
                return;
            }
        }
    }

    /// Events dropped: the queue was full, or the store refused writes for longer than
    /// [`MAX_HELD`] events.
    pub fn dropped(&self) -> u64 {
        self.progress.dropped.load(Ordering::Relaxed)
    }

    /// Requests that waited for the store to catch up ([`Auditor::admit`]).
    pub fn paced(&self) -> u64 {
        self.progress.paced.load(Ordering::Relaxed)
    }

    /// Events written to the store.
    pub fn written(&self) -> u64 {
        self.progress.written.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditLog, MemoryStore};
    use std::path::Path;

    fn event(id: &str) -> AuditEvent {
        let mut e = AuditEvent::new(Utc::now(), id, "GetCallerIdentity");
        e.outcome(Outcome::Allow);
        e
    }

    /// The request ids of the events `store` holds (at most `limit`), in its order.
    async fn stored_ids(store: &MemoryStore, limit: usize) -> Vec<String> {
        let q = AuditQuery {
            limit,
            ..AuditQuery::default()
        };
        store
            .query_audit(&q)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.json).unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn events_reach_the_file_and_the_store_before_flush_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let store = Arc::new(MemoryStore::new());
        let a = Auditor::start_with(Some(store.clone()), Some(FileSink::open(&path, 0).unwrap()));
        a.record(event("r1"));
        a.record(event("r2"));
        a.flush().await;
        let got = lines(&path);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["request_id"], "r1");
        assert_eq!(got[1]["decision"], "allow");
        assert_eq!(
            store
                .query_audit(&AuditQuery::default())
                .await
                .unwrap()
                .len(),
            2
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_renamed_file_is_reopened_when_asked_and_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = FileSink::open(&path, 0).unwrap();
        let reopen = sink.reopen_handle();
        let a = Auditor::start_with(None, Some(sink));
        a.record(event("before"));
        a.flush().await;
        // logrotate: rename, then SIGHUP.
        let old = dir.path().join("audit.jsonl.old");
        std::fs::rename(&path, &old).unwrap();
        a.record(event("late"));
        a.flush().await;
        assert_eq!(
            lines(&old).len(),
            2,
            "until told, the renamed file is still written"
        );
        reopen.reopen();
        a.record(event("after"));
        a.flush().await;
        let now = lines(&path);
        assert_eq!(now.len(), 1);
        assert_eq!(now[0]["request_id"], "after");
        assert_eq!(a.written(), 3);

        // Size-based: a file over the limit moves to .1 before the batch that would pass it.
        let path2 = dir.path().join("sized.jsonl");
        let line = |id: &str| {
            let mut l = serde_json::to_vec(&event(id)).unwrap();
            l.push(b'\n');
            l
        };
        let one = line("a").len() as u64;
        let mut sink = FileSink::open(&path2, one + one / 2).unwrap();
        sink.write(&line("a")).unwrap();
        let rotated = dir.path().join("sized.jsonl.1");
        assert!(!rotated.exists(), "one event fits");
        sink.write(&line("b")).unwrap();
        assert!(rotated.exists(), "a second one would pass the limit");
        assert_eq!(lines(&rotated)[0]["request_id"], "a");
        assert_eq!(lines(&path2)[0]["request_id"], "b");
    }

    #[tokio::test]
    async fn events_are_held_while_the_store_refuses_writes_and_written_once_it_is_back() {
        let store = Arc::new(MemoryStore::new());
        let a = Auditor::start(store.clone());
        a.record(event("before"));
        a.flush().await;
        store.set_audit_writes_failing(true);
        for i in 0..2_500 {
            a.record(event(&format!("outage-{i}")));
        }
        // The flush returns although the store refused the batch: a flush never hangs on it.
        a.flush().await;
        // Long past the five quick retries that used to be all.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        a.record(event("still-down"));
        a.flush().await;
        assert_eq!(a.written(), 1);
        store.set_audit_writes_failing(false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while a.written() < 2_502 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(a.written(), 2_502);
        assert_eq!(a.dropped(), 0);
        let mut ids = stored_ids(&store, 10_000).await;
        assert_eq!(ids.len(), 2_502);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 2_502, "each event once");
        assert!(ids.contains(&"still-down".to_string()));
        assert!(ids.contains(&"outage-2499".to_string()));
    }

    #[tokio::test]
    async fn past_the_bound_the_oldest_held_events_are_dropped_and_counted() {
        let store = Arc::new(MemoryStore::new());
        let a = Auditor::start(store.clone());
        store.set_audit_writes_failing(true);
        // In chunks below the queue's capacity, each flushed into the held events.
        let total = MAX_HELD + 2_500;
        for chunk in 0..total.div_ceil(10_000) {
            for i in chunk * 10_000..((chunk + 1) * 10_000).min(total) {
                a.record(event(&format!("e{i}")));
            }
            a.flush().await;
        }
        assert_eq!(a.dropped(), 2_500);
        store.set_audit_writes_failing(false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while a.written() < MAX_HELD as u64 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(a.written(), MAX_HELD as u64);
        let ids: std::collections::HashSet<String> =
            stored_ids(&store, 200_000).await.into_iter().collect();
        // The oldest went; the newest stayed.
        assert!(!ids.contains("e0") && !ids.contains("e2499"));
        assert!(ids.contains("e2500") && ids.contains(&format!("e{}", total - 1)));
    }

    #[tokio::test]
    async fn a_slow_store_does_not_fill_the_queue_while_it_writes() {
        let store = Arc::new(MemoryStore::new());
        store.set_audit_write_delay(Duration::from_millis(20));
        let a = Auditor::start(store.clone());
        // Faster than the store takes them (1,000 per 20 ms), and more than the queue holds: the
        // writer must keep draining the queue while a store write is under way.
        let total = QUEUE_CAPACITY + 20_000;
        for chunk in 0..total.div_ceil(5_000) {
            for i in chunk * 5_000..((chunk + 1) * 5_000).min(total) {
                a.record(event(&format!("e{i}")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(a.dropped(), 0, "nothing dropped for a slow store");
        a.flush().await;
        assert_eq!(
            a.written(),
            total as u64,
            "a flush waits for every event before it"
        );
        let q = AuditQuery {
            limit: 200_000,
            ..AuditQuery::default()
        };
        assert_eq!(store.query_audit(&q).await.unwrap().len(), total);
    }

    #[tokio::test(start_paused = true)]
    async fn store_writes_keep_up_while_events_keep_arriving() {
        let store = Arc::new(MemoryStore::new());
        // A store that takes 500,000 events a second (1,000 per 2 ms), like a local disk.
        store.set_audit_write_delay(Duration::from_millis(2));
        let a = Auditor::start(store.clone());
        // 100,000 events a second for half a second, more than one store write takes
        // (`STORE_CHUNK`) per window: writes must not wait for the windows.
        let mut recorded = 0usize;
        for _ in 0..50 {
            for _ in 0..1_000 {
                a.record(event(&format!("e{recorded}")));
                recorded += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // At most the last window's events are still to be written.
        let behind = recorded as u64 - a.written();
        assert!(
            behind <= 6 * 1_000,
            "{behind} of {recorded} events not yet written while they kept arriving"
        );
        assert_eq!(a.dropped(), 0);
        a.flush().await;
        assert_eq!(a.written(), recorded as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn store_writes_overlap_so_that_one_writes_round_trips_do_not_bound_the_rate() {
        let store = Arc::new(MemoryStore::new());
        store.set_audit_write_delay(Duration::from_millis(100));
        let a = Auditor::start(store.clone());
        let n = STORE_CHUNK * 4;
        for i in 0..n {
            a.record(event(&format!("e{i}")));
        }
        let began = tokio::time::Instant::now();
        a.flush().await;
        let took = began.elapsed();
        assert_eq!(a.written(), n as u64);
        // Four chunks: 400 ms one after another, 200 ms two at a time.
        assert!(
            took < Duration::from_millis(300),
            "{n} events took {took:?} with writes of 100 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_while_the_store_is_behind_and_not_while_it_refuses_writes() {
        let store = Arc::new(MemoryStore::new());
        store.set_audit_write_delay(Duration::from_millis(100));
        let a = Auditor::start(store.clone());
        let began = tokio::time::Instant::now();
        a.admit().await;
        assert_eq!(began.elapsed(), Duration::ZERO, "no backlog, no wait");
        assert_eq!(a.paced(), 0);
        // Three times the bound: the writer takes STORE_CHUNK per write, STORE_WRITES at once.
        let n = BACKLOG_BOUND as usize * 3;
        for i in 0..n {
            a.record(event(&format!("e{i}")));
        }
        let began = tokio::time::Instant::now();
        a.admit().await;
        let waited = began.elapsed();
        let backlog = n as u64 - a.written();
        assert!(
            backlog <= BACKLOG_BOUND,
            "admitted with {backlog} events behind"
        );
        assert!(
            waited >= Duration::from_millis(100) && waited < MAX_ADMIT_WAIT,
            "waited {waited:?} for the store to catch up"
        );
        assert_eq!(a.paced(), 1);
        // A store that refuses writes holds no request back.
        store.set_audit_writes_failing(true);
        for i in 0..n {
            a.record(event(&format!("f{i}")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let began = tokio::time::Instant::now();
        a.admit().await;
        assert_eq!(
            began.elapsed(),
            Duration::ZERO,
            "not held back by a failing store"
        );
        assert_eq!(a.dropped(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_at_most_the_bound_for_a_slow_store() {
        let store = Arc::new(MemoryStore::new());
        store.set_audit_write_delay(Duration::from_secs(60));
        let a = Auditor::start(store.clone());
        for i in 0..BACKLOG_BOUND as usize * 3 {
            a.record(event(&format!("e{i}")));
        }
        let began = tokio::time::Instant::now();
        a.admit().await;
        assert_eq!(began.elapsed(), MAX_ADMIT_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_waits_for_older_events_whose_write_finishes_after_a_newer_one() {
        let store = Arc::new(MemoryStore::new());
        // The older events' write is slow, the newer events' write fast.
        store.set_next_audit_write_delays(&[Duration::from_millis(300), Duration::from_millis(10)]);
        let a = Auditor::start(store.clone());
        for i in 0..500 {
            a.record(event(&format!("old{i}")));
        }
        let flusher = a.clone();
        let began = tokio::time::Instant::now();
        let flush = tokio::spawn(async move { flusher.flush().await });
        tokio::time::sleep(Duration::from_millis(1)).await;
        for i in 0..1_000 {
            a.record(event(&format!("new{i}")));
        }
        // The newer events' window ends and their write finishes long before the older one's.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.written(), 1_000, "the newer events are written");
        assert!(
            !flush.is_finished(),
            "released before the events recorded before it were written"
        );
        flush.await.unwrap();
        assert!(began.elapsed() >= Duration::from_millis(300));
        assert_eq!(a.written(), 1_500);
    }

    #[tokio::test(start_paused = true)]
    async fn two_writes_that_fail_out_of_order_are_written_once_the_store_is_back() {
        let store = Arc::new(MemoryStore::new());
        // The older write fails first, the newer one after it.
        store.set_next_audit_write_delays(&[Duration::from_millis(10), Duration::from_millis(100)]);
        store.set_audit_writes_failing(true);
        let a = Auditor::start(store.clone());
        let n = STORE_CHUNK * 2 + 500;
        for i in 0..n {
            a.record(event(&format!("e{i:05}")));
        }
        a.flush().await;
        assert_eq!(a.written(), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.set_audit_writes_failing(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        a.flush().await;
        assert_eq!(a.written(), n as u64);
        assert_eq!(a.dropped(), 0);
        let mut ids = stored_ids(&store, n * 2).await;
        assert_eq!(ids.len(), n, "each event stored once");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
