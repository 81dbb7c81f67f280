//! Single uses that arrive together: a backend may record them in one batch (PostgreSQL does), and
//! each caller must still get the answer it would get alone.

use super::{invalid, join_all, ok, BoxedFuture, RACERS};
use crate::store::{Result, Store, StoreError};

const RACERS_I64: i64 = RACERS as i64;

pub(super) async fn run(s: &dyn Store) {
    one_key_with_different_nows(s).await;
    live_expired_and_new_records_together(s).await;
    refused_uses_among_good_ones(s).await;
}

/// Callers of one key that arrive together, each with its own `now`: some find the record live,
/// some expired. Exactly one wins, one that found it expired, and its own expiry is kept.
async fn one_key_with_different_nows(s: &dyn Store) {
    assert!(ok("first use", s.first_use("batch", "mixed", 100, 1).await));
    let uses: Vec<(i64, i64)> = (0..RACERS)
        .map(|i| {
            let i = i64::try_from(i).unwrap_or(0);
            // The first three quarters of the callers come before the record's expiry, the rest at
            // or after it (each with its own now): in a batch, the first use of the key is not the one
            // that can win.
            let now = if i < RACERS_I64 * 3 / 4 { 50 } else { 100 + i };
            (1_000 + i, now)
        })
        .collect();
    let racers: Vec<BoxedFuture<'_, Result<bool>>> = uses
        .iter()
        .map(|&(expires_at, now)| s.first_use("batch", "mixed", expires_at, now))
        .collect();
    let won: Vec<usize> = join_all(racers)
        .await
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| ok("concurrent use with its own now", r).then_some(i))
        .collect();
    let [winner] = won.as_slice() else {
        panic!(
            "store conformance: of concurrent uses of one expired record with different nows exactly \
             one is accepted, got {won:?}"
        );
    };
    let (expires_at, now) = uses[*winner];
    assert!(
        now >= 100,
        "store conformance: a use whose now is before the record's expiry is a replay"
    );
    assert!(
        !ok(
            "use before the winner's expiry",
            s.first_use("batch", "mixed", 9_000, expires_at - 1).await
        ),
        "store conformance: the winner's record holds until its own expires_at"
    );
    assert!(ok(
        "use at the winner's expiry",
        s.first_use("batch", "mixed", 9_000, expires_at).await
    ));
}

/// Concurrent uses of distinct keys, two callers each: a new key and an expired record are won by
/// exactly one of their two callers, a live record by neither.
async fn live_expired_and_new_records_together(s: &dyn Store) {
    let keys: Vec<String> = (0..RACERS / 2).map(|i| format!("together-{i}")).collect();
    // i % 3: 0 new, 1 live, 2 expired (recorded until 100; the callers' now is 99 or 100).
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            assert!(ok("setup", s.first_use("batch", k, 100, 1).await));
        }
    }
    let now = |i: usize| if i % 3 == 1 { 99 } else { 100 };
    let racers: Vec<BoxedFuture<'_, Result<bool>>> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, k)| [(i, k), (i, k)])
        .map(|(i, k)| s.first_use("batch", k, 500, now(i)))
        .collect();
    let answers: Vec<bool> = join_all(racers)
        .await
        .into_iter()
        .map(|r| ok("concurrent use", r))
        .collect();
    for (i, pair) in answers.chunks(2).enumerate() {
        let winners = pair.iter().filter(|won| **won).count();
        let (what, expected) = match i % 3 {
            0 => ("a new key", 1),
            1 => ("a live record", 0),
            _ => ("an expired record", 1),
        };
        assert_eq!(
            winners, expected,
            "store conformance: of two concurrent uses of {what} (among uses of other keys), \
             {expected} accepted"
        );
    }
}

/// Concurrent uses of which some are refused (or, in a backend that can hold their text, accepted):
/// the others are recorded and accepted all the same.
async fn refused_uses_among_good_ones(s: &dyn Store) {
    // Text no index entry can hold in PostgreSQL: 12,000 characters that do not compress.
    let mut seed: u32 = 0x2545_f491;
    let long: String = (0..12_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            char::from(b'!' + u8::try_from(seed % 90).unwrap_or(0))
        })
        .collect();
    let uses: Vec<(String, i64)> = (0..RACERS)
        .map(|i| match i % 8 {
            1 => (format!("nul\0key-{i}"), 100),
            3 => (format!("{long}-{i}"), 100),
            5 => (String::new(), 100),
            7 => (format!("expired-{i}"), 10),
            _ => (format!("good-{i}"), 100),
        })
        .collect();
    let racers: Vec<BoxedFuture<'_, Result<bool>>> = uses
        .iter()
        .map(|(k, exp)| s.first_use("refused", k, *exp, 10))
        .collect();
    for (i, r) in join_all(racers).await.into_iter().enumerate() {
        match i % 8 {
            1 | 3 => assert!(
                matches!(r, Ok(true) | Err(StoreError::Invalid(_))),
                "store conformance: a key with NUL or of 12,000 characters is accepted or refused as \
                 invalid, got {r:?}"
            ),
            5 | 7 => invalid("a refused use among concurrent ones", r),
            _ => assert!(
                ok("a good use among refused ones", r),
                "store conformance: a refused use does not fail the uses made with it"
            ),
        }
    }
    for (k, _) in uses.iter().filter(|(k, _)| k.starts_with("good-")) {
        assert!(
            !ok("reuse", s.first_use("refused", k, 100, 11).await),
            "store conformance: a use accepted among refused ones was recorded"
        );
    }
}
