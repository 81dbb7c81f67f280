//! Requests wait for an audit store that is behind; the probes do not.

use crate::app::App;
use crate::audit::{AuditEvent, BACKLOG_BOUND, MAX_ADMIT_WAIT};
use crate::store::MemoryStore;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn requests_but_the_probes_wait_for_an_audit_store_that_is_behind() {
    let store = Arc::new(MemoryStore::new());
    let clock =
        crate::clock::FixedClock::new(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
    let app = App::build(
        crate::testing::config().load(),
        store.clone(),
        Arc::new(clock),
    )
    .await
    .unwrap();
    store.set_audit_write_delay(Duration::from_secs(600));
    for i in 0..BACKLOG_BOUND * 3 {
        app.audit.record(AuditEvent::new(
            chrono::Utc::now(),
            &format!("r{i}"),
            "Test",
        ));
    }
    let time = |path: &'static str| {
        let app = app.clone();
        async move {
            let began = tokio::time::Instant::now();
            let r =
                crate::testing::send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
            (r.status(), began.elapsed())
        }
    };
    assert_eq!(time("/healthz").await, (StatusCode::OK, Duration::ZERO));
    let (status, waited) = time("/").await;
    assert_eq!(waited, MAX_ADMIT_WAIT, "status {status}");
    assert_eq!(app.audit.dropped(), 0);
    // The scrape does not wait either, and counts the request that did.
    let scrape =
        crate::testing::send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(scrape.status(), StatusCode::OK);
    let body = axum::body::to_bytes(scrape.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("rolegate_audit_paced_requests_total 1\n"),
        "{text}"
    );
}
