//! Audit events: one structured record per decision (who, what, the decision, and the precise reason even
//! when the client got a coarse message). Events are queued without blocking the request, written to the
//! store in batches, and mirrored to the tracing log. Durability: a batch is written at most
//! [`FLUSH_INTERVAL`] after its first event, at once when someone waits for it ([`Auditor::flush`]),
//! and on shutdown; a crash loses at most the events of that window. While the store refuses writes
//! (an outage, a restart of PostgreSQL), events are held in memory, in order, and retried with
//! backoff (up to [`MAX_HELD`] of them; past that the oldest are dropped and counted); the file sink
//! gets them at once regardless. The writer sleeps through the
//! window instead of waking for every event, so a busy server pays one wake-up per batch.
//! Store writes run one at a time in a task of their own (`STORE_CHUNK` events at most), while the
//! writer goes on taking events from the queue: a store slower than the request rate makes the
//! held backlog grow (within the same bound) instead of filling the queue and dropping events.
//! The window does not hold writes back: the next store write starts as soon as the last is done,
//! so the store keeps up with any request rate it can take (not one write per window).
//!
//! Sinks, chosen by configuration: the store (queryable) and/or a JSON-lines file ([`FileSink`]:
//! one event per line, appended and synced once per batch, reopened on demand — SIGHUP, after an
//! external rotation — and rotated to `<file>.1` when it passes a size). A batch reaches the file
//! before flush waiters are released, so [`Auditor::flush`] covers both sinks.
//! Knows nothing of HTTP types.

mod finish;

use crate::store::{AuditQuery, AuditRecord, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

enum Msg {
    Event(AuditRecord),
    Flush(oneshot::Sender<()>),
}

/// Everything that can go wrong with the audit file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Opening, writing, syncing or renaming the file failed.
    #[error("audit file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The JSON-lines file sink: appended to, reopened when asked, rotated by size.
pub struct FileSink {
    path: PathBuf,
    /// `None` after a failed reopen: the next batch tries again.
    file: Option<std::fs::File>,
    size: u64,
    max_bytes: u64,
    reopen: Arc<AtomicBool>,
}

impl FileSink {
    /// Opens (creating, mode 0600) `path` for appending; rotates at `max_bytes` (0: only by
    /// external rotation and reopening).
    pub fn open(path: &Path, max_bytes: u64) -> Result<FileSink, AuditError> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| AuditError::File {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_bytes,
            reopen: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that makes the sink reopen its file before the next batch (after an external
    /// rotation renamed it: SIGHUP).
    pub fn reopen_handle(&self) -> ReopenHandle {
        ReopenHandle(self.reopen.clone())
    }

    /// Appends one batch of lines and syncs it.
    fn write(&mut self, lines: &[u8]) -> Result<(), AuditError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::File { path, source }
        };
        if self.reopen.swap(false, Ordering::AcqRel) || self.file.is_none() {
            self.file = None;
            let f = open_append(&self.path)?;
            self.size = f.metadata().map_err(err(&self.path))?.len();
            self.file = Some(f);
        }
        if self.max_bytes > 0 && self.size > 0 && self.size + lines.len() as u64 > self.max_bytes {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, &rotated).map_err(err(&self.path))?;
            self.file = None;
            self.file = Some(open_append(&self.path)?);
            self.size = 0;
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(lines).map_err(err(&self.path))?;
        f.sync_data().map_err(err(&self.path))?;
        self.size += lines.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, AuditError> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|source| AuditError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a [`FileSink`] reopen its file.
#[derive(Clone)]
pub struct ReopenHandle(Arc<AtomicBool>);

impl ReopenHandle {
    /// Reopen before the next batch.
    pub fn reopen(&self) {
        self.0.store(true, Ordering::Release);
    }
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
        Self::start_with(Some(store), None)
    }

    /// Starts the background writer for the given sinks (at least one should be given: with
    /// none, events reach only the tracing log).
    pub fn start_with(store: Option<Arc<dyn Store>>, file: Option<FileSink>) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let written = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let flush_now = Arc::new(Notify::new());
        tokio::spawn(writer(
            store,
            file,
            rx,
            flush_now.clone(),
            (written.clone(), dropped.clone()),
        ));
        Auditor {
            tx,
            flush_now,
            dropped,
            written,
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
        if self.tx.try_send(Msg::Event(record)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
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

    /// Events dropped: the queue was full, or the store refused writes for longer than
    /// [`MAX_HELD`] events.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written to the store.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// A store write under way: the `n` oldest events not yet written, in a task of its own so that the
/// queue keeps being drained (and the file sink fed) while the store works.
struct InFlight {
    n: usize,
    task: tokio::task::JoinHandle<(Vec<AuditRecord>, crate::store::Result<()>)>,
}

fn start_write(store: &Arc<dyn Store>, held: &mut VecDeque<AuditRecord>) -> InFlight {
    let n = held.len().min(STORE_CHUNK);
    let chunk: Vec<AuditRecord> = held.drain(..n).collect();
    let store = store.clone();
    InFlight {
        n,
        task: tokio::spawn(async move {
            let r = store.append_audit(&chunk).await;
            (chunk, r)
        }),
    }
}

/// Flush waiters, each with the number of events that must be finished before it is released.
type Waiters = Vec<(u64, oneshot::Sender<()>)>;

/// What woke the writer.
enum Wake {
    /// The first message after a window, or the queue closed.
    Msg(Option<Msg>),
    /// The window is over (or a flush ended it): take what queued up.
    WindowOver,
    Written(Result<(Vec<AuditRecord>, crate::store::Result<()>), tokio::task::JoinError>),
    Retry,
}

/// The background writer. Events are counted in the order received; all but the held ones and
/// those of the write under way are written or dropped, which is what releases a flush waiting for
/// them.
async fn writer(
    store: Option<Arc<dyn Store>>,
    mut file: Option<FileSink>,
    mut rx: mpsc::Receiver<Msg>,
    flush_now: Arc<Notify>,
    counters: (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let (written, dropped) = counters;
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut waiters: Waiters = Vec::new();
    // Events the store has not taken yet, oldest first.
    let mut held: VecDeque<AuditRecord> = VecDeque::new();
    let mut received: u64 = 0;
    let mut in_flight: Option<InFlight> = None;
    let mut failing = false;
    let mut retry_at = tokio::time::Instant::now();
    let mut delay = FIRST_RETRY;
    let mut open = true;
    // While a window is open (`window` is its end), events queue up unreceived: one wake-up per
    // batch, not per event. Store writes go on meanwhile, one after another.
    let mut window: Option<tokio::time::Instant> = None;
    while open || in_flight.is_some() || window.is_some() {
        let retry_due = in_flight.is_none() && !held.is_empty() && failing;
        let wake = tokio::select! {
            m = rx.recv(), if open && window.is_none() => Wake::Msg(m),
            _ = tokio::time::sleep_until(window.unwrap_or_else(tokio::time::Instant::now)), if window.is_some() => Wake::WindowOver,
            _ = flush_now.notified(), if window.is_some() => Wake::WindowOver,
            r = async { (&mut in_flight.as_mut().expect("guarded").task).await }, if in_flight.is_some() => Wake::Written(r),
            _ = tokio::time::sleep_until(retry_at), if retry_due => Wake::Retry,
        };
        let push = |m: Msg, batch: &mut Vec<AuditRecord>, waiters: &mut Waiters| match m {
            Msg::Event(r) => batch.push(r),
            Msg::Flush(w) => waiters.push((received + batch.len() as u64, w)),
        };
        match wake {
            Wake::Msg(None) => open = false,
            Wake::Msg(Some(first)) => {
                push(first, &mut batch, &mut waiters);
                // A flush ends the window at once.
                window = Some(if waiters.is_empty() {
                    tokio::time::Instant::now() + FLUSH_INTERVAL
                } else {
                    tokio::time::Instant::now()
                });
            }
            Wake::WindowOver => {
                window = None;
                // Everything queued by now, so that a flush covers every event recorded before it.
                while let Ok(m) = rx.try_recv() {
                    push(m, &mut batch, &mut waiters);
                }
                if !batch.is_empty() {
                    if let Some(sink) = file.take() {
                        file = Some(write_file(sink, &batch).await);
                    }
                }
                received += batch.len() as u64;
                match &store {
                    Some(_) => held.extend(batch.drain(..)),
                    None => {
                        written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.clear();
                    }
                }
            }
            Wake::Written(done) => {
                let n = in_flight.take().expect("a write was under way").n;
                match done {
                    Ok((_, Ok(()))) => {
                        written.fetch_add(n as u64, Ordering::Relaxed);
                        if failing {
                            tracing::warn!(
                                held = held.len(),
                                "audit store writes recovered; held events are being written"
                            );
                        }
                        failing = false;
                        delay = FIRST_RETRY;
                    }
                    Ok((chunk, Err(e))) => {
                        if !failing {
                            tracing::error!(
                                error = %e,
                                held = held.len() + n,
                                "audit store write failed; holding events in memory and retrying"
                            );
                        }
                        for r in chunk.into_iter().rev() {
                            held.push_front(r);
                        }
                        failing = true;
                        retry_at = tokio::time::Instant::now() + delay;
                        delay = (delay * 2).min(MAX_RETRY);
                        // A flush must not hang while the store is down: the events stay held.
                        for (_, w) in waiters.drain(..) {
                            let _ = w.send(());
                        }
                    }
                    Err(e) => {
                        let total = dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                        tracing::error!(error = %e, lost = n, dropped = total, "audit store write task failed");
                    }
                }
            }
            Wake::Retry => {}
        }
        if held.len() > MAX_HELD {
            let n = held.len() - MAX_HELD;
            held.drain(..n);
            let total = dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            tracing::error!(
                lost = n,
                dropped = total,
                held = MAX_HELD,
                "audit store unavailable or behind for too long: oldest held events dropped"
            );
        }
        if let Some(store) = &store {
            if in_flight.is_none()
                && !held.is_empty()
                && (!failing || tokio::time::Instant::now() >= retry_at)
            {
                in_flight = Some(start_write(store, &mut held));
            }
        }
        let pending = held.len() + in_flight.as_ref().map_or(0, |w| w.n);
        let finished = received - pending as u64;
        let mut i = 0;
        while i < waiters.len() {
            if waiters[i].0 <= finished {
                let _ = waiters.swap_remove(i).1.send(());
            } else {
                i += 1;
            }
        }
    }
    if let Some(store) = &store {
        if !held.is_empty() {
            if let Err(e) = write_held(store.as_ref(), &mut held, &written).await {
                tracing::error!(error = %e, lost = held.len(), "audit store write failed at shutdown; held events lost");
            }
        }
    }
    for (_, w) in waiters.drain(..) {
        let _ = w.send(());
    }
}

/// Writes held events to the store in chunks, oldest first, removing each chunk once written.
async fn write_held(
    store: &dyn Store,
    held: &mut VecDeque<AuditRecord>,
    written: &AtomicU64,
) -> crate::store::Result<()> {
    while !held.is_empty() {
        let n = held.len().min(STORE_CHUNK);
        store.append_audit(&held.make_contiguous()[..n]).await?;
        held.drain(..n);
        written.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Appends a batch to the file sink off the async runtime (the write is synced); a failure is
/// logged with the number of events the file lost (the store still has them when it is a sink).
async fn write_file(mut sink: FileSink, batch: &[AuditRecord]) -> FileSink {
    let mut lines = Vec::with_capacity(batch.iter().map(|r| r.json.len() + 1).sum());
    for r in batch {
        lines.extend_from_slice(r.json.as_bytes());
        lines.push(b'\n');
    }
    let n = batch.len();
    let (path, max_bytes, reopen) = (sink.path.clone(), sink.max_bytes, sink.reopen.clone());
    match tokio::task::spawn_blocking(move || {
        let r = sink.write(&lines);
        (sink, r)
    })
    .await
    {
        Ok((sink, Ok(()))) => sink,
        Ok((sink, Err(e))) => {
            tracing::error!(error = %e, lost = n, "audit file write failed; events missing from the file");
            sink
        }
        Err(e) => {
            // The blocking task failed and took the sink with it: the next batch reopens.
            tracing::error!(error = %e, lost = n, "audit file writer failed");
            FileSink {
                path,
                file: None,
                size: 0,
                max_bytes,
                reopen,
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditLog, MemoryStore};

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
}
