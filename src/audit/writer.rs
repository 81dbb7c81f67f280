//! The background writer: takes events from the queue in windows, feeds the file sink, and writes
//! the store in chunks with retries (see the module documentation of `audit`).

use super::file::{write_file, FileSink};
use super::{FIRST_RETRY, FLUSH_INTERVAL, MAX_HELD, MAX_RETRY, STORE_CHUNK, STORE_WRITES};
use crate::store::{AuditRecord, Store};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinSet;

/// What the writer tells the requests: how many events are finished, and whether the store
/// refuses writes.
#[derive(Default)]
pub(super) struct Progress {
    /// Events recorded, queued or not.
    pub(super) recorded: AtomicU64,
    /// Events written to the store (or, without one, to the file).
    pub(super) written: AtomicU64,
    /// Events dropped: the queue was full, or past [`MAX_HELD`].
    pub(super) dropped: AtomicU64,
    /// Requests that waited in [`Auditor::admit`](super::Auditor::admit).
    pub(super) paced: AtomicU64,
    /// The last store write failed.
    pub(super) failing: AtomicBool,
    /// Notified whenever the writer has taken a step.
    pub(super) moved: Notify,
}

impl Progress {
    /// Events recorded and neither written nor dropped yet.
    pub(super) fn backlog(&self) -> u64 {
        let finished = self.written.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        self.recorded
            .load(Ordering::Relaxed)
            .saturating_sub(finished)
    }
}

/// What crosses from the requests to the writer.
pub(super) enum Msg {
    Event(AuditRecord),
    Flush(oneshot::Sender<()>),
}

/// Events not yet taken by the store, oldest first, each with its place in the order received.
type Held = VecDeque<(u64, AuditRecord)>;

/// Store writes under way, each in a task of its own so that the queue keeps being drained (and
/// the file sink fed) while the store works, with the places of the events each carries. Writes
/// may finish in any order: a flush waits for the oldest unfinished event, not for a count.
#[derive(Default)]
struct Writes {
    tasks: JoinSet<(Vec<AuditRecord>, crate::store::Result<()>)>,
    places: Vec<(tokio::task::Id, Vec<u64>)>,
    /// Events in all of them.
    events: usize,
}

impl Writes {
    /// Starts writing the `STORE_CHUNK` oldest held events.
    fn start(&mut self, store: &Arc<dyn Store>, held: &mut Held) {
        let n = held.len().min(STORE_CHUNK);
        let (places, chunk): (Vec<u64>, Vec<AuditRecord>) = held.drain(..n).unzip();
        let store = store.clone();
        let task = self.tasks.spawn(async move {
            let r = store.append_audit(&chunk).await;
            (chunk, r)
        });
        self.places.push((task.id(), places));
        self.events += n;
    }

    /// Forgets a finished write and returns the places of the events it carried.
    fn finished(&mut self, id: tokio::task::Id) -> Vec<u64> {
        let i = self
            .places
            .iter()
            .position(|(t, _)| *t == id)
            .expect("a write this set started");
        let places = self.places.swap_remove(i).1;
        self.events -= places.len();
        places
    }

    /// The place of the oldest event under way.
    fn oldest(&self) -> Option<u64> {
        self.places
            .iter()
            .filter_map(|(_, p)| p.first().copied())
            .min()
    }
}

/// Flush waiters, each with the number of events that must be finished before it is released.
type Waiters = Vec<(u64, oneshot::Sender<()>)>;

/// A finished store write: its task and what became of it.
type WriteDone = Result<
    (
        tokio::task::Id,
        (Vec<AuditRecord>, crate::store::Result<()>),
    ),
    tokio::task::JoinError,
>;

/// What woke the writer.
enum Wake {
    /// The first message after a window, or the queue closed.
    Msg(Option<Msg>),
    /// The window is over (or a flush ended it): take what queued up.
    WindowOver,
    Written(Option<WriteDone>),
    Retry,
}

/// The background writer. Events are counted in the order received; all but the held ones and
/// those of the writes under way are written or dropped, which is what releases a flush waiting
/// for them.
pub(super) async fn writer(
    store: Option<Arc<dyn Store>>,
    mut file: Option<FileSink>,
    mut rx: mpsc::Receiver<Msg>,
    flush_now: Arc<Notify>,
    progress: Arc<Progress>,
) {
    let (written, dropped) = (&progress.written, &progress.dropped);
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut waiters: Waiters = Vec::new();
    // Events the store has not taken yet, oldest first.
    let mut held = Held::new();
    let mut received: u64 = 0;
    let mut writes = Writes::default();
    let mut failing = false;
    let mut retry_at = tokio::time::Instant::now();
    let mut delay = FIRST_RETRY;
    let mut open = true;
    // While a window is open (`window` is its end), events queue up unreceived: one wake-up per
    // batch, not per event. Store writes go on meanwhile, up to `STORE_WRITES` at once.
    let mut window: Option<tokio::time::Instant> = None;
    while open || !writes.tasks.is_empty() || window.is_some() {
        let retry_due = writes.tasks.is_empty() && !held.is_empty() && failing;
        let wake = tokio::select! {
            m = rx.recv(), if open && window.is_none() => Wake::Msg(m),
            _ = tokio::time::sleep_until(window.unwrap_or_else(tokio::time::Instant::now)), if window.is_some() => Wake::WindowOver,
            _ = flush_now.notified(), if window.is_some() => Wake::WindowOver,
            r = writes.tasks.join_next_with_id(), if !writes.tasks.is_empty() => Wake::Written(r),
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
                let first = received;
                received += batch.len() as u64;
                match &store {
                    Some(_) => held.extend((first..).zip(batch.drain(..))),
                    None => {
                        written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        batch.clear();
                    }
                }
            }
            Wake::Written(None) => {}
            Wake::Written(Some(done)) => {
                let id = match &done {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                let places = writes.finished(id);
                let n = places.len();
                match done {
                    Ok((_, (_, Ok(())))) => {
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
                    Ok((_, (chunk, Err(e)))) => {
                        if !failing {
                            tracing::error!(
                                error = %e,
                                held = held.len() + writes.events + n,
                                "audit store write failed; holding events in memory and retrying"
                            );
                        }
                        let last = places.last().copied();
                        let next = held.front().map(|(p, _)| *p);
                        for e in places.into_iter().zip(chunk).rev() {
                            held.push_front(e);
                        }
                        // Held events stay oldest first: a newer write can fail after an older
                        // one whose events are already back.
                        if last.zip(next).is_some_and(|(last, next)| last > next) {
                            held.make_contiguous().sort_by_key(|(p, _)| *p);
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
            // While the store refuses writes, one attempt at a time, when the retry is due.
            let most = if failing { 1 } else { STORE_WRITES };
            while writes.tasks.len() < most
                && !held.is_empty()
                && (!failing || tokio::time::Instant::now() >= retry_at)
            {
                writes.start(store, &mut held);
            }
        }
        progress.failing.store(failing, Ordering::Relaxed);
        progress.moved.notify_waiters();
        // Every event before the oldest unfinished one is written or dropped.
        let finished = [held.front().map(|(p, _)| *p), writes.oldest()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(received);
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
            if let Err(e) = write_held(store.as_ref(), &mut held, written).await {
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
    held: &mut Held,
    written: &AtomicU64,
) -> crate::store::Result<()> {
    while !held.is_empty() {
        let n = held.len().min(STORE_CHUNK);
        let chunk: Vec<AuditRecord> = held.iter().take(n).map(|(_, r)| r.clone()).collect();
        store.append_audit(&chunk).await?;
        held.drain(..n);
        written.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(())
}
