//! The index of the audit log's segments: queries that read only some blocks give what reading
//! everything gives, and memory for indexes stays bounded.

use super::*;

fn rec(time_ms: i64, id: &str, action: &str, pad: usize) -> AuditRecord {
    AuditRecord {
        time_ms,
        id: id.into(),
        action: action.into(),
        principal: Some(format!("p{}", time_ms.rem_euclid(3))),
        decision: "allow".into(),
        json: format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}", "x".repeat(pad)),
    }
}

fn all(newest_first: bool, limit: usize) -> AuditQuery {
    AuditQuery {
        newest_first,
        limit,
        ..AuditQuery::default()
    }
}

/// What a query gives when every record is read: the first-written copy of each, sorted, cut.
fn expected(written: &[AuditRecord], q: &AuditQuery) -> Vec<AuditRecord> {
    let mut first: BTreeMap<(i64, String), AuditRecord> = BTreeMap::new();
    for r in written.iter().filter(|r| q.matches(r)) {
        first
            .entry((r.time_ms, r.id.clone()))
            .or_insert_with(|| r.clone());
    }
    let mut want: Vec<AuditRecord> = first.into_values().collect();
    if q.newest_first {
        want.reverse();
    }
    want.truncate(q.limit);
    want
}

/// Records in brief, so that a failure prints readably: time, id and the length of the body (a
/// retried copy's body differs in length from the first).
fn brief(records: &[AuditRecord]) -> Vec<(i64, String, usize)> {
    records
        .iter()
        .map(|r| (r.time_ms, r.id.clone(), r.json.len()))
        .collect()
}

fn blocks_of(log: &AuditFiles) -> Vec<usize> {
    log.lock()
        .segments
        .iter()
        .map(|s| s.index.as_ref().map_or(0, |i| i.len()))
        .collect()
}

/// Segments of several blocks each, frames small (merged into one block) and large (a block of
/// their own), time ranges overlapping across frames and segments, ties on the millisecond, and
/// retried batches whose second copy lies in a newer block: every window, limit and order agrees
/// with reading everything.
#[test]
fn queries_over_blocks_and_segments_agree_with_reading_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditFiles::open_with(dir.path(), 3 * BLOCK_BYTES).unwrap();
    let mut written: Vec<AuditRecord> = Vec::new();
    for batch in 0..120i64 {
        // Every seventh batch is large, the others small.
        let (n, pad) = if batch % 7 == 0 {
            (40, 2_000)
        } else {
            (3, 300)
        };
        let records: Vec<AuditRecord> = (0..n)
            .map(|i| {
                let t = (batch * 53 + i * 17) % 900 + if batch % 5 == 0 { 400 } else { 0 };
                let action = if i % 3 == 0 { "x" } else { "y" };
                rec(t, &format!("b{batch:03}r{i:02}"), action, pad as usize)
            })
            .collect();
        log.append(&records).unwrap();
        written.extend(records);
        // A retry of an earlier batch's record, with another body: read as its first copy.
        if batch % 11 == 10 {
            let mut again = written[written.len() - 50].clone();
            again.json = format!("{{\"retry\":{batch}}}");
            log.append(&[again.clone()]).unwrap();
            written.push(again);
        }
    }
    let blocks = blocks_of(&log);
    assert!(blocks.len() >= 5, "segments {blocks:?}");
    assert!(
        blocks.iter().filter(|&&n| n >= 2).count() >= 3,
        "{blocks:?}"
    );

    let check = |log: &AuditFiles| {
        for newest_first in [true, false] {
            for limit in [1, 3, 10, 50, 10_000] {
                for (since, until) in [
                    (None, None),
                    (Some(100), Some(700)),
                    (Some(450), Some(451)),
                    (Some(1_200), None),
                    (None, Some(40)),
                ] {
                    for action in [None, Some("x")] {
                        let q = AuditQuery {
                            since_ms: since,
                            until_ms: until,
                            action: action.map(str::to_string),
                            ..all(newest_first, limit)
                        };
                        assert_eq!(
                            brief(&log.query(&q).unwrap()),
                            brief(&expected(&written, &q)),
                            "{q:?}"
                        );
                    }
                }
            }
        }
    };
    check(&log);
    // Reopened, sealed segments are indexed as queries reach them: the same.
    drop(log);
    let log = AuditFiles::open_with(dir.path(), 3 * BLOCK_BYTES).unwrap();
    assert!(blocks_of(&log).iter().rev().skip(1).all(|&n| n == 0));
    check(&log);
}

/// A record written twice, the copies in different frames at the same millisecond as the record
/// that would drop out next: the first copy is read although its frame holds nothing better.
#[test]
fn a_retried_record_at_the_edge_is_read_as_its_first_copy() {
    for newest_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditFiles::open_with(dir.path(), 10 * BLOCK_BYTES).unwrap();
        let first = rec(50, "m", "x", 0);
        let other = |t: i64| rec(t, &format!("n{t}"), "x", 2_000);
        // Large frames, one block each. The first copy's frame: all else older (or newer) than 50.
        let worse = if newest_first { 10 } else { 51 };
        let old: Vec<AuditRecord> = (0..40)
            .map(|i| other(worse + i))
            .chain([first.clone()])
            .collect();
        log.append(&old).unwrap();
        // The second copy's frame: all else better than 50, read first.
        let mut again = first.clone();
        again.json = "{\"retry\":true}".into();
        let better = if newest_first { 100 } else { -100 };
        let newer: Vec<AuditRecord> = (0..40).map(|i| other(better + i)).chain([again]).collect();
        log.append(&newer).unwrap();
        assert_eq!(blocks_of(&log), vec![2]);
        // The cut falls on the retried record.
        let got = log.query(&all(newest_first, 41)).unwrap();
        assert_eq!(got.len(), 41);
        assert_eq!(
            brief(&got[40..]),
            brief(std::slice::from_ref(&first)),
            "newest first: {newest_first}"
        );
    }
}

/// The newest records are read from the newest block alone: damage in an older one goes unseen by
/// such a query, and is reported by one that reaches it.
#[test]
fn a_query_stops_once_no_unread_block_can_make_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditFiles::open_with(dir.path(), 64 * BLOCK_BYTES).unwrap();
    let batch = |from: i64| -> Vec<AuditRecord> {
        (0..40)
            .map(|i| rec(from + i, &format!("r{}", from + i), "x", 2_000))
            .collect()
    };
    log.append(&batch(0)).unwrap();
    log.append(&batch(100)).unwrap();
    log.append(&batch(200)).unwrap();
    assert_eq!(blocks_of(&log), vec![3]);
    // A byte of the oldest frame's body flipped behind the log's back.
    let path = log.lock().segments[0].path.clone();
    let mut bytes = fs::read(&path).unwrap();
    bytes[FRAME_HEADER + 100] ^= 1;
    fs::write(&path, &bytes).unwrap();

    let newest = log.query(&all(true, 40)).unwrap();
    assert_eq!(newest.first().map(|r| r.time_ms), Some(239));
    assert_eq!(newest.last().map(|r| r.time_ms), Some(200));
    let window = AuditQuery {
        since_ms: Some(100),
        ..all(false, 80)
    };
    assert_eq!(log.query(&window).unwrap().len(), 80);
    for q in [all(true, 81), all(false, 1)] {
        match log.query(&q) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("damaged batch at byte 0"), "{m}"),
            other => panic!(
                "{q:?}: expected Corrupt, got {:?}",
                other.map(|r| brief(&r))
            ),
        }
    }
}

/// A last frame torn by a crash is cut off and left out of the index; the frames appended after it
/// are indexed where they land.
#[test]
fn a_torn_last_frame_is_left_out_of_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditFiles::open_with(dir.path(), 64 * BLOCK_BYTES).unwrap();
    let big = |t: i64| -> Vec<AuditRecord> {
        (0..40)
            .map(|i| rec(t, &format!("t{t}r{i:02}"), "x", 2_000))
            .collect()
    };
    log.append(&big(1)).unwrap();
    log.append(&big(2)).unwrap();
    log.append(&big(3)).unwrap();
    drop(log);
    let path = dir.path().join(active_name(1));
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() - 7]).unwrap();

    let log = AuditFiles::open_with(dir.path(), 64 * BLOCK_BYTES).unwrap();
    assert_eq!(blocks_of(&log), vec![2]);
    let newest = log.query(&all(true, 1)).unwrap();
    assert_eq!(newest[0].time_ms, 2);
    log.append(&big(4)).unwrap();
    log.append(&[rec(3, "late", "x", 0)]).unwrap();
    let mut written = big(1);
    written.extend(big(2));
    written.extend(big(4));
    written.push(rec(3, "late", "x", 0));
    for newest_first in [true, false] {
        for limit in [1, 39, 40, 41, 81, 200] {
            let q = all(newest_first, limit);
            assert_eq!(
                brief(&log.query(&q).unwrap()),
                brief(&expected(&written, &q)),
                "{q:?}"
            );
        }
    }
    // Reopened: the same index from the file.
    let before = blocks_of(&log);
    drop(log);
    let log = AuditFiles::open_with(dir.path(), 64 * BLOCK_BYTES).unwrap();
    assert_eq!(blocks_of(&log), before);
    let q = all(true, 200);
    assert_eq!(
        brief(&log.query(&q).unwrap()),
        brief(&expected(&written, &q))
    );
}

/// However many sealed segments queries reach, at most [`INDEXED_SEGMENTS`] indexes stay in
/// memory; one dropped is rebuilt when a query reaches its segment again.
#[test]
fn indexes_of_sealed_segments_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditFiles::open_with(dir.path(), 100).unwrap();
    let mut written = Vec::new();
    for t in 0..(INDEXED_SEGMENTS as i64 + 30) {
        let r = rec(t, &format!("r{t}"), "x", 100);
        log.append(std::slice::from_ref(&r)).unwrap();
        written.push(r);
    }
    let indexed = |log: &AuditFiles| {
        let inner = log.lock();
        let sealed = inner.segments.iter().filter(|s| s.sealed);
        sealed.filter(|s| s.index.is_some()).count()
    };
    assert_eq!(indexed(&log), INDEXED_SEGMENTS);
    let q = all(false, 10_000);
    assert_eq!(
        brief(&log.query(&q).unwrap()),
        brief(&expected(&written, &q))
    );
    assert_eq!(indexed(&log), INDEXED_SEGMENTS);
    assert_eq!(log.lock().indexed.len(), INDEXED_SEGMENTS);
    // The oldest, dropped after the query above read it first, is read again.
    let oldest = AuditQuery {
        until_ms: Some(3),
        ..all(true, 10)
    };
    assert_eq!(
        brief(&log.query(&oldest).unwrap()),
        brief(&expected(&written, &oldest))
    );
    assert!(log.lock().segments[0].index.is_some());
    assert_eq!(indexed(&log), INDEXED_SEGMENTS);
}
