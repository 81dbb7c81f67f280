//! The audit log of the embedded store: append-only segment files in `<data>/audit/`, beside the sled
//! database. sled keeps memory in proportion to the data it holds, and an audit log only grows, so the
//! log lives outside it: appends are one `write` and one `fdatasync` per batch, and memory stays flat
//! however long the log gets.
//!
//! **Layout.** A segment is a sequence of frames, one per appended batch: a 4-byte big-endian length,
//! the CRC-32 of the payload (4 bytes, big-endian), then the payload, a batch as
//! [`codec::encode_audit_batch`] writes it. The segment being written is `<seq>.log` (twelve digits);
//! once it passes [`SEGMENT_BYTES`] it is sealed, renamed `<seq>_<min>_<max>.log` with the earliest and
//! latest record time (Unix milliseconds) it holds, and a new segment starts.
//!
//! **Queries.** Each segment has an index in memory: its frames in runs of at least [`BLOCK_BYTES`]
//! (one entry per run, one run per frame when frames are larger), each with its byte span and time
//! range. The segment being written is indexed when the log opens and as it is appended to; a sealed
//! one when a query first reaches it, and the indexes of at most [`INDEXED_SEGMENTS`] sealed segments
//! are kept, so memory stays bounded. A query reads only the runs whose time range meets its window,
//! the newest (or oldest) first across segments, checks each frame's CRC, copies only the records
//! that make the cut, and stops once no unread run can hold a record that would.
//!
//! **Crashes.** A batch is durable when [`AuditFiles::append`] returns. A frame cut short by a crash
//! (short, or failing its CRC) is the end of the log: the open that follows truncates it. A failed
//! write is cut off at once so that later frames stay readable; if even that fails, the log refuses
//! appends until the process restarts. A record appended twice (a retried batch) is read once, as
//! its first-written copy.

use super::codec;
use super::{AuditQuery, AuditRecord, Result, StoreError};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Size past which the segment being written is sealed and a new one started.
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// Bytes of frames one index entry spans at least (a single larger frame is an entry of its own).
pub const BLOCK_BYTES: u64 = 64 * 1024;

/// Sealed segments whose index is kept in memory at once (the least recently read are dropped and
/// rebuilt when a query reaches them again).
pub const INDEXED_SEGMENTS: usize = 64;

const FRAME_HEADER: usize = 8;

/// Earliest and latest record time (Unix milliseconds).
type TimeRange = (i64, i64);

/// Consecutive whole frames of a segment: their byte span and the time range of their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    start: u64,
    end: u64,
    range: TimeRange,
}

/// A segment's frames in blocks, in file order.
type Index = Arc<Vec<Block>>;

/// Adds the frame at `start..end` holding records over `range` to `blocks`.
fn push_frame(blocks: &mut Vec<Block>, start: u64, end: u64, (lo, hi): TimeRange) {
    match blocks.last_mut() {
        Some(b) if b.end == start && b.end - b.start < BLOCK_BYTES => {
            b.end = end;
            b.range = (b.range.0.min(lo), b.range.1.max(hi));
        }
        _ => blocks.push(Block {
            start,
            end,
            range: (lo, hi),
        }),
    }
}

/// One segment file.
#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Earliest and latest record time, when it holds any.
    range: Option<(i64, i64)>,
    /// Bytes of whole frames.
    len: u64,
    /// Renamed with its range; no longer written.
    sealed: bool,
    /// Always there for the segment being written; for a sealed one, when a query built it and it
    /// is among the [`INDEXED_SEGMENTS`] most recently read.
    index: Option<Index>,
}

impl Segment {
    /// The empty segment `seq` of `dir`, to be written.
    fn empty(dir: &Path, seq: u64) -> Self {
        Segment {
            seq,
            path: dir.join(active_name(seq)),
            range: None,
            len: 0,
            sealed: false,
            index: Some(Index::default()),
        }
    }
}

struct Inner {
    /// Oldest first; the last one is being written.
    segments: Vec<Segment>,
    active: File,
    /// Set when a failed write could not be cut off: the file may end in a partial frame.
    broken: Option<String>,
    /// Sealed segments with an index in memory, least recently read first.
    indexed: VecDeque<u64>,
}

impl Inner {
    /// Keeps `index` (when given) as the index of sealed segment `seq`, marks it the most recently
    /// read, and drops the indexes of the least recently read beyond [`INDEXED_SEGMENTS`].
    fn note_index(&mut self, seq: u64, index: Option<Index>) {
        let Some(seg) = self.segments.iter_mut().find(|s| s.seq == seq && s.sealed) else {
            return;
        };
        if seg.index.is_none() {
            match index {
                Some(index) => seg.index = Some(index),
                None => return,
            }
        }
        self.indexed.retain(|&s| s != seq);
        self.indexed.push_back(seq);
        while self.indexed.len() > INDEXED_SEGMENTS {
            if let Some(old) = self.indexed.pop_front() {
                if let Some(seg) = self.segments.iter_mut().find(|s| s.seq == old) {
                    seg.index = None;
                }
            }
        }
    }
}

/// The segment files of one data directory.
pub struct AuditFiles {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("audit log: cannot {what} {}: {e}", path.display()))
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("audit log {}: {why}", path.display()))
}

/// `(seq, range)` from a segment file name; `None` for names that are not segments.
fn parse_name(name: &str) -> Option<(u64, Option<(i64, i64)>)> {
    let stem = name.strip_suffix(".log")?;
    let mut parts = stem.splitn(3, '_');
    let seq = parts.next()?;
    if seq.len() != 12 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = seq.parse().ok()?;
    match (parts.next(), parts.next()) {
        (None, None) => Some((seq, None)),
        (Some(min), Some(max)) => {
            let (min, max) = (min.parse().ok()?, max.parse().ok()?);
            (min <= max).then_some((seq, Some((min, max))))
        }
        _ => None,
    }
}

fn active_name(seq: u64) -> String {
    format!("{seq:012}.log")
}

fn sealed_name(seq: u64, (min, max): (i64, i64)) -> String {
    format!("{seq:012}_{min}_{max}.log")
}

/// Appends the frame of `records` to `out`.
fn frame(records: &[AuditRecord], out: &mut Vec<u8>) -> Result<()> {
    let payload = codec::encode_audit_batch(records.iter());
    let len = u32::try_from(payload.len()).map_err(|_| {
        StoreError::Invalid(format!(
            "an audit batch of {} bytes is over the 4 GiB a frame can hold",
            payload.len()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The whole frames at the start of `bytes`: each one's offset and payload, and the length they span.
/// Stops at the first frame that is cut short or fails its CRC.
fn frames(bytes: &[u8]) -> (Vec<(u64, &[u8])>, u64) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos + FRAME_HEADER) {
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.push((pos as u64, payload));
        pos += FRAME_HEADER + len;
    }
    (out, pos as u64)
}

fn read_prefix(path: &Path, len: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(len as usize);
    File::open(path)
        .and_then(|f| f.take(len).read_to_end(&mut bytes))
        .map_err(|e| io_error("read", path, e))?;
    if (bytes.len() as u64) < len {
        return Err(corrupt(
            path,
            format!("shorter than the {len} bytes written"),
        ));
    }
    Ok(bytes)
}

fn widen(range: Option<(i64, i64)>, t: i64) -> Option<(i64, i64)> {
    Some(range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
}

/// What reading a segment in full finds: the length of its whole frames, their time range and index.
type Scanned = (u64, Option<TimeRange>, Vec<Block>);

/// The whole-frame length, time range and index of a segment read in full.
fn scan(path: &Path, bytes: &[u8]) -> Result<Scanned> {
    let (found, len) = frames(bytes);
    let mut range = None;
    let mut blocks = Vec::new();
    for (offset, payload) in found {
        let mut frame_range = None;
        codec::visit_audit_batch(payload, |r| frame_range = widen(frame_range, r.time_ms))
            .map_err(|e| corrupt(path, e))?;
        if let Some((lo, hi)) = frame_range {
            let end = offset + (FRAME_HEADER + payload.len()) as u64;
            push_frame(&mut blocks, offset, end, (lo, hi));
            range = widen(widen(range, lo), hi);
        }
    }
    Ok((len, range, blocks))
}

/// The index of a sealed segment, read in full; damage anywhere in it is an error.
fn load_index(seg: &Segment) -> Result<Vec<Block>> {
    let bytes = read_prefix(&seg.path, seg.len)?;
    let (len, _, blocks) = scan(&seg.path, &bytes)?;
    if len != seg.len {
        return Err(corrupt(
            &seg.path,
            format!("damaged batch at byte {len} of {}", seg.len),
        ));
    }
    Ok(blocks)
}

/// The bytes of `block` of the segment open as `file`, checked to be whole frames.
fn read_block<'a>(
    path: &Path,
    file: &mut File,
    block: &Block,
    buf: &'a mut Vec<u8>,
) -> Result<Vec<(u64, &'a [u8])>> {
    let n = (block.end - block.start) as usize;
    buf.resize(n, 0);
    file.seek(SeekFrom::Start(block.start))
        .and_then(|_| file.read_exact(buf))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt(
                path,
                format!("shorter than the {} bytes written", block.end),
            ),
            _ => io_error("read", path, e),
        })?;
    let (found, len) = frames(buf);
    if len != n as u64 {
        return Err(corrupt(
            path,
            format!("damaged batch at byte {}", block.start + len),
        ));
    }
    Ok(found
        .into_iter()
        .map(|(offset, payload)| (block.start + offset, payload))
        .collect())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync", dir, e))
}

fn open_active(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_error("open", path, e))
}

impl AuditFiles {
    /// Opens (creating if needed) the log in `dir`: checks the segments, seals any left unsealed by an
    /// interrupted rotation and cuts a torn last frame off the segment being written.
    pub fn open(dir: &Path) -> Result<AuditFiles> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    fn open_with(dir: &Path, segment_bytes: u64) -> Result<AuditFiles> {
        fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
        let mut found: Vec<(u64, Option<TimeRange>, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
            let entry = entry.map_err(|e| io_error("list", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            match parse_name(name) {
                Some((seq, range)) => found.push((seq, range, entry.path())),
                None if name.ends_with(".log") => {
                    return Err(corrupt(dir, format!("unexpected file {name}")))
                }
                None => {}
            }
        }
        found.sort_by_key(|(seq, _, _)| *seq);
        if let Some(pair) = found.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(corrupt(dir, format!("two segments numbered {}", pair[0].0)));
        }
        let mut segments = Vec::with_capacity(found.len() + 1);
        let last = found.len().saturating_sub(1);
        for (i, (seq, range, path)) in found.into_iter().enumerate() {
            if let Some(range) = range {
                let len = fs::metadata(&path)
                    .map_err(|e| io_error("inspect", &path, e))?
                    .len();
                segments.push(Segment {
                    seq,
                    path,
                    range: Some(range),
                    len,
                    sealed: true,
                    index: None,
                });
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
            let (len, range, blocks) = scan(&path, &bytes)?;
            let index = Some(Arc::new(blocks));
            if len < bytes.len() as u64 {
                tracing::warn!(segment = %path.display(), kept = len, dropped = bytes.len() as u64 - len,
                    "audit log: cutting off a batch left incomplete by a crash");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| {
                        f.set_len(len)?;
                        f.sync_all()
                    })
                    .map_err(|e| io_error("truncate", &path, e))?;
            }
            match range {
                // An interrupted rotation left this one unsealed: seal it now.
                Some(range) if i != last => {
                    let sealed = dir.join(sealed_name(seq, range));
                    fs::rename(&path, &sealed).map_err(|e| io_error("seal", &path, e))?;
                    segments.push(Segment {
                        seq,
                        path: sealed,
                        range: Some(range),
                        len,
                        sealed: true,
                        index,
                    });
                }
                None if i != last => {
                    fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
                }
                range => segments.push(Segment {
                    seq,
                    path,
                    range,
                    len,
                    sealed: false,
                    index,
                }),
            }
        }
        // A sealed last segment: the rotation stopped before its successor existed.
        if segments.last().is_none_or(|s| s.sealed) {
            let seq = segments.last().map_or(1, |s| s.seq + 1);
            segments.push(Segment::empty(dir, seq));
        }
        let active = open_active(&segments.last().expect("one segment").path)?;
        sync_dir(dir)?;
        let mut inner = Inner {
            segments,
            active,
            broken: None,
            indexed: VecDeque::new(),
        };
        // Segments sealed just now, from the scan above.
        let sealed_now: Vec<u64> = inner
            .segments
            .iter()
            .filter(|s| s.sealed && s.index.is_some())
            .map(|s| s.seq)
            .collect();
        for seq in sealed_now {
            inner.note_index(seq, None);
        }
        Ok(AuditFiles {
            dir: dir.to_path_buf(),
            segment_bytes,
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.lock().segments.iter().all(|s| s.range.is_none())
    }

    /// Whether the log accepts appends.
    pub fn health(&self) -> Result<()> {
        match &self.lock().broken {
            Some(why) => Err(StoreError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }

    /// Appends a checked, non-empty batch, durably on return.
    pub fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut bytes = Vec::new();
        frame(records, &mut bytes)?;
        let mut inner = self.lock();
        if let Some(why) = &inner.broken {
            return Err(StoreError::Unavailable(why.clone()));
        }
        let Inner {
            segments, active, ..
        } = &mut *inner;
        let seg = segments.last_mut().expect("an active segment");
        let written = active.write_all(&bytes).and_then(|()| active.sync_data());
        if let Err(e) = written {
            let err = io_error("append to", &seg.path, e);
            if let Err(cut) = active.set_len(seg.len).and_then(|()| active.sync_data()) {
                let why = format!(
                    "audit log {} may end in a partial batch ({cut}); restart to repair it",
                    seg.path.display()
                );
                tracing::error!("{why}");
                inner.broken = Some(why);
            }
            return Err(err);
        }
        let start = seg.len;
        seg.len += bytes.len() as u64;
        let mut frame_range = None;
        for r in records {
            frame_range = widen(frame_range, r.time_ms);
        }
        if let Some((lo, hi)) = frame_range {
            seg.range = widen(widen(seg.range, lo), hi);
            let index = seg.index.get_or_insert_with(Index::default);
            push_frame(Arc::make_mut(index), start, seg.len, (lo, hi));
        }
        if seg.len >= self.segment_bytes {
            self.rotate(&mut inner)?;
        }
        Ok(())
    }

    /// Seals the segment being written and starts the next. The next file is created first: if that
    /// fails nothing has changed, and if the rename then fails the empty file is harmless (the next open
    /// seals the older segment and writes on in the newer).
    fn rotate(&self, inner: &mut Inner) -> Result<()> {
        let seg = inner.segments.last_mut().expect("an active segment");
        let Some(range) = seg.range else {
            return Ok(());
        };
        let fresh = Segment::empty(&self.dir, seg.seq + 1);
        let next = open_active(&fresh.path)?;
        let sealed = self.dir.join(sealed_name(seg.seq, range));
        fs::rename(&seg.path, &sealed).map_err(|e| io_error("seal", &seg.path, e))?;
        seg.path = sealed;
        seg.sealed = true;
        let sealed_seq = seg.seq;
        inner.active = next;
        inner.segments.push(fresh);
        inner.note_index(sealed_seq, None);
        sync_dir(&self.dir)
    }

    /// Removes every segment and starts an empty log (used before a migration fills it).
    pub fn clear(&self) -> Result<()> {
        let mut inner = self.lock();
        for seg in &inner.segments {
            fs::remove_file(&seg.path).map_err(|e| io_error("remove", &seg.path, e))?;
        }
        let seq = inner.segments.last().map_or(1, |s| s.seq + 1);
        let fresh = Segment::empty(&self.dir, seq);
        inner.active = open_active(&fresh.path)?;
        inner.segments = vec![fresh];
        inner.broken = None;
        inner.indexed.clear();
        sync_dir(&self.dir)
    }

    /// Records matching `q`, ordered as it says.
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let since = q.since_ms.unwrap_or(i64::MIN);
        let until = q.until_ms.unwrap_or(i64::MAX);
        if since >= until {
            return Ok(Vec::new());
        }
        let newest_first = q.newest_first;
        // Where reading starts in the query's order: the greater, the sooner read.
        let reach = |(lo, hi): TimeRange| -> i128 {
            if newest_first {
                i128::from(hi)
            } else {
                -i128::from(lo)
            }
        };
        let meets = |(lo, hi): TimeRange| hi >= since && lo < until;
        // Whole frames only: what is appended after this snapshot is not read.
        let mut segments: Vec<(Segment, TimeRange)> = self
            .lock()
            .segments
            .iter()
            .filter_map(|s| {
                let range = s.range?;
                meets(range).then(|| (s.clone(), range))
            })
            .collect();
        segments.sort_by_key(|(s, range)| std::cmp::Reverse((reach(*range), s.seq)));
        let mut search = Search {
            q,
            kept: BTreeMap::new(),
        };
        // Blocks of the segments opened so far, by where they start in the query's order.
        let mut pending: BinaryHeap<(i128, usize, Block)> = BinaryHeap::new();
        let mut files: Vec<Option<File>> = segments.iter().map(|_| None).collect();
        let mut built: Vec<(u64, Option<Index>)> = Vec::new();
        let mut next = 0;
        let mut buf = Vec::new();
        let result = (|| -> Result<()> {
            loop {
                let seg_reach = segments.get(next).map(|(_, range)| reach(*range));
                let block_reach = pending.peek().map(|(r, _, _)| *r);
                let (open_segment, at) = match (seg_reach, block_reach) {
                    (None, None) => return Ok(()),
                    (Some(s), Some(b)) => (s >= b, s.max(b)),
                    (Some(s), None) => (true, s),
                    (None, Some(b)) => (false, b),
                };
                // Nothing unread starts at or before the record that would drop out next.
                if let Some(edge) = search.edge() {
                    if at < reach((edge, edge)) {
                        return Ok(());
                    }
                }
                if open_segment {
                    let (seg, _) = &segments[next];
                    let index = match &seg.index {
                        Some(index) => {
                            built.push((seg.seq, None));
                            index.clone()
                        }
                        None => {
                            let index = Arc::new(load_index(seg)?);
                            built.push((seg.seq, Some(index.clone())));
                            index
                        }
                    };
                    for b in index.iter().filter(|b| meets(b.range)) {
                        pending.push((reach(b.range), next, *b));
                    }
                    next += 1;
                    continue;
                }
                let Some((_, i, block)) = pending.pop() else {
                    return Ok(());
                };
                let seg = &segments[i].0;
                let file = match &mut files[i] {
                    Some(f) => f,
                    slot => slot
                        .insert(File::open(&seg.path).map_err(|e| io_error("read", &seg.path, e))?),
                };
                for (offset, payload) in read_block(&seg.path, file, &block, &mut buf)? {
                    let mut n = 0;
                    codec::visit_audit_batch(payload, |r| {
                        search.offer(r, (seg.seq, offset, n));
                        n += 1;
                    })
                    .map_err(|e| corrupt(&seg.path, e))?;
                }
            }
        })();
        if !built.is_empty() {
            let mut inner = self.lock();
            for (seq, index) in built {
                inner.note_index(seq, index);
            }
        }
        result?;
        let ordered = search.kept.into_values().map(|(_, r)| r);
        Ok(if newest_first {
            ordered.rev().collect()
        } else {
            ordered.collect()
        })
    }
}

/// Where a record was written: segment, frame offset, position in the batch.
type Written = (u64, u64, usize);

/// The best `limit` records of a query so far by `(time_ms, id)`, each as its first-written copy.
struct Search<'q> {
    q: &'q AuditQuery,
    kept: BTreeMap<(i64, String), (Written, AuditRecord)>,
}

impl Search<'_> {
    /// The time of the record that would drop out next, once `limit` records are kept.
    fn edge(&self) -> Option<i64> {
        if self.kept.len() < self.q.limit {
            return None;
        }
        let edge = if self.q.newest_first {
            self.kept.keys().next()
        } else {
            self.kept.keys().next_back()
        };
        edge.map(|(t, _)| *t)
    }

    /// Considers `r`, written at `written`: copied only when it makes the cut.
    fn offer(&mut self, r: codec::AuditView<'_>, written: Written) {
        let q = self.q;
        if q.since_ms.is_some_and(|s| r.time_ms < s)
            || q.until_ms.is_some_and(|u| r.time_ms >= u)
            || q.action.as_deref().is_some_and(|a| a != r.action)
            || q.decision.as_deref().is_some_and(|d| d != r.decision)
            || q.principal
                .as_deref()
                .is_some_and(|p| Some(p) != r.principal)
        {
            return;
        }
        if self.kept.len() >= q.limit {
            let edge = if q.newest_first {
                self.kept.keys().next()
            } else {
                self.kept.keys().next_back()
            };
            if let Some((t, id)) = edge {
                let key = (r.time_ms, r.id);
                let worse = if q.newest_first {
                    key < (*t, id.as_str())
                } else {
                    key > (*t, id.as_str())
                };
                if worse {
                    return;
                }
            }
        }
        match self.kept.entry((r.time_ms, r.id.to_string())) {
            Entry::Occupied(mut e) => {
                if written < e.get().0 {
                    e.insert((written, r.to_record()));
                }
            }
            Entry::Vacant(e) => {
                e.insert((written, r.to_record()));
            }
        }
        if self.kept.len() > q.limit {
            if q.newest_first {
                self.kept.pop_first();
            } else {
                self.kept.pop_last();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(time_ms: i64, id: &str, action: &str) -> AuditRecord {
        AuditRecord {
            time_ms,
            id: id.into(),
            action: action.into(),
            principal: None,
            decision: "allow".into(),
            json: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    fn all(newest_first: bool, limit: usize) -> AuditQuery {
        AuditQuery {
            newest_first,
            limit,
            ..AuditQuery::default()
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_parse_strictly() {
        assert_eq!(parse_name("000000000007.log"), Some((7, None)));
        assert_eq!(
            parse_name("000000000007_-5_3000.log"),
            Some((7, Some((-5, 3000))))
        );
        for bad in [
            "7.log",
            "000000000007",
            "000000000007_5.log",
            "000000000007_9_5.log",
            "000000000007_a_5.log",
            "00000000000x.log",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
        assert_eq!(
            parse_name(&sealed_name(3, (i64::MIN, i64::MAX))),
            Some((3, Some((i64::MIN, i64::MAX))))
        );
    }

    /// Many small segments; queries with every limit and window agree with sorting everything.
    #[test]
    fn queries_across_segments_agree_with_a_full_sort() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFiles::open_with(dir.path(), 300).unwrap();
        let mut written: Vec<AuditRecord> = Vec::new();
        // Times go back and forth so that segment ranges overlap.
        for batch in 0..40i64 {
            let records: Vec<AuditRecord> = (0..3)
                .map(|i| {
                    let t = (batch * 37 + i * 101) % 500 - 100;
                    rec(t, &format!("b{batch}r{i}"), if i == 1 { "x" } else { "y" })
                })
                .collect();
            log.append(&records).unwrap();
            written.extend(records);
        }
        // A retried batch: read once, as the first copy.
        let mut again = written[3].clone();
        again.json = "{\"second\":true}".into();
        log.append(&[again]).unwrap();
        assert!(files(dir.path()).len() > 10, "{:?}", files(dir.path()));

        let mut sorted = written.clone();
        sorted.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        for newest_first in [false, true] {
            for limit in [1, 2, 5, 17, 200] {
                for (since, until) in [(None, None), (Some(0), Some(250)), (Some(-100), Some(-99))]
                {
                    let q = AuditQuery {
                        since_ms: since,
                        until_ms: until,
                        action: Some("y".into()),
                        ..all(newest_first, limit)
                    };
                    let mut want: Vec<AuditRecord> =
                        sorted.iter().filter(|r| q.matches(r)).cloned().collect();
                    if newest_first {
                        want.reverse();
                    }
                    want.truncate(limit);
                    assert_eq!(log.query(&q).unwrap(), want, "{q:?}");
                }
            }
        }
        // Reopened, the same.
        drop(log);
        let log = AuditFiles::open_with(dir.path(), 300).unwrap();
        let mut want = sorted.clone();
        want.reverse();
        assert_eq!(log.query(&all(true, 1000)).unwrap(), want);
    }

    #[test]
    fn a_torn_last_batch_is_cut_off_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFiles::open(dir.path()).unwrap();
        log.append(&[rec(1, "a", "x")]).unwrap();
        log.append(&[rec(2, "b", "x")]).unwrap();
        drop(log);
        let path = dir.path().join(active_name(1));
        let full = fs::read(&path).unwrap();
        for cut in [full.len() - 1, full.len() - 5, full.len() / 2 + 1] {
            fs::write(&path, &full[..cut]).unwrap();
            let log = AuditFiles::open(dir.path()).unwrap();
            let got = log.query(&all(false, 10)).unwrap();
            assert_eq!(got, vec![rec(1, "a", "x")], "cut at {cut}");
            log.append(&[rec(3, "c", "x")]).unwrap();
            let got = log.query(&all(false, 10)).unwrap();
            assert_eq!(
                got,
                vec![rec(1, "a", "x"), rec(3, "c", "x")],
                "cut at {cut}"
            );
            drop(log);
            fs::write(&path, &full).unwrap();
        }
        // A flipped byte in the last batch fails its CRC: the same.
        let mut flipped = full.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x20;
        fs::write(&path, &flipped).unwrap();
        let log = AuditFiles::open(dir.path()).unwrap();
        assert_eq!(log.query(&all(false, 10)).unwrap(), vec![rec(1, "a", "x")]);
    }

    #[test]
    fn damage_inside_a_sealed_segment_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFiles::open_with(dir.path(), 10).unwrap();
        log.append(&[rec(1, "a", "x")]).unwrap();
        log.append(&[rec(2, "b", "x")]).unwrap();
        drop(log);
        let sealed = dir.path().join(sealed_name(1, (1, 1)));
        let mut bytes = fs::read(&sealed).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 1;
        fs::write(&sealed, &bytes).unwrap();
        let log = AuditFiles::open_with(dir.path(), 10).unwrap();
        match log.query(&all(false, 10)) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("damaged batch"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // A window that does not reach the damaged segment still answers.
        let q = AuditQuery {
            since_ms: Some(2),
            ..all(false, 10)
        };
        assert_eq!(log.query(&q).unwrap(), vec![rec(2, "b", "x")]);
    }

    #[test]
    fn an_interrupted_rotation_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFiles::open(dir.path()).unwrap();
        log.append(&[rec(5, "a", "x"), rec(-3, "b", "x")]).unwrap();
        drop(log);
        // Stopped before sealing: a second, empty active segment exists beside the unsealed first.
        File::create(dir.path().join(active_name(2))).unwrap();
        let log = AuditFiles::open(dir.path()).unwrap();
        assert_eq!(
            files(dir.path()),
            vec![sealed_name(1, (-3, 5)), active_name(2)]
        );
        assert_eq!(log.query(&all(false, 10)).unwrap().len(), 2);
        drop(log);
        // Stopped after sealing, before the next segment existed.
        fs::remove_file(dir.path().join(active_name(2))).unwrap();
        let log = AuditFiles::open(dir.path()).unwrap();
        log.append(&[rec(9, "c", "x")]).unwrap();
        assert_eq!(
            files(dir.path()),
            vec![sealed_name(1, (-3, 5)), active_name(2)]
        );
        assert_eq!(log.query(&all(true, 1)).unwrap(), vec![rec(9, "c", "x")]);
    }

    #[test]
    fn unexpected_log_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "kept").unwrap();
        AuditFiles::open(dir.path()).unwrap();
        fs::write(dir.path().join("other.log"), "x").unwrap();
        assert!(matches!(
            AuditFiles::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}

#[cfg(test)]
#[path = "audit_files_tests.rs"]
mod index_tests;
