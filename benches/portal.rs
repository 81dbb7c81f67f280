//! Server-side render time of the portal home for a person with 50 accounts × 10 permission sets
//! (500 assignments, each with its "Command line access" and "Open console" forms):
//!   - `home_page + render`: the assignment rules evaluated for the person, the page model built
//!     and the askama template rendered to HTML;
//!   - `GET /portal`: the whole request through rolegate's router (session cookie looked up in the
//!     in-memory store, the same page, security headers), as a server answers it.
//!
//! Each case runs 200 warm-up iterations, then times each of 2,000 iterations and prints p50, p99,
//! mean and max. Target: p99 under 20 ms.
//!
//! `cargo bench --bench portal -- --bench`

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use rolegate::app::App;
use rolegate::config::Config;
use rolegate::portal::{home_page, SignedInIdentity};
use rolegate::store::MemoryStore;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
#[path = "support/latency.rs"]
mod latency;

use std::time::{Duration, Instant};
use tower::ServiceExt;

const ACCOUNTS: usize = 50;
const SETS: usize = 10;
const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;

fn config() -> String {
    let mut c = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:8080\"\n\
         [store]\nkind = \"memory\"\n[portal]\n",
    );
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(
            c,
            "[[accounts]]\nid = \"{id}\"\nname = \"account-{i:02}\"\n"
        );
    }
    for s in 0..SETS {
        let _ = write!(
            c,
            "[[permission_sets]]\nname = \"Set{s:02}\"\ndescription = \"Permission set number {s}\"\n\
             {}[[permission_sets.policies]]\nname = \"all\"\n\
             document = '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}]}}'\n",
            if s % 3 == 0 { "mfa = \"required\"\n" } else { "" }
        );
    }
    let accounts = ids
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for s in 0..SETS {
        let _ = write!(
            c,
            "[[assignment_rules]]\nprovider = \"local\"\npermission_set = \"Set{s:02}\"\n\
             accounts = [{accounts}]\nlocal_group = \"staff\"\n"
        );
    }
    c
}

fn person() -> SignedInIdentity {
    SignedInIdentity {
        provider: "local".into(),
        subject: "ana".into(),
        claims: serde_json::Map::from_iter([("sub".to_string(), "ana".into())]),
        mfa_time: None,
        local_groups: vec!["staff".into()],
        origin_user: None,
        signed_in_at: chrono::Utc::now().timestamp(),
    }
}

fn report(name: &str, times: Vec<Duration>, bytes: usize) {
    let n = times.len();
    println!(
        "{name:<20} {}  ({n} iterations, {} KiB page)",
        latency::summarize(times),
        bytes / 1024
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets without --bench: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let config =
        Config::from_str_with_env(Path::new("/etc/rolegate.toml"), &config(), &[]).expect("config");
    let who = person();

    // home_page + render
    let render = || {
        let page = home_page(&config, &who, "c".repeat(43), "").expect("home page");
        askama::Template::render(&page).expect("render")
    };
    let html = render();
    assert_eq!(html.matches("Open console:").count(), ACCOUNTS * SETS);
    for _ in 0..WARMUP {
        black_box(render());
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        black_box(render());
        times.push(t.elapsed());
    }
    report("home_page + render", times, html.len());

    // GET /portal through the router
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let app = App::build(
            config,
            store.clone(),
            Arc::new(rolegate::clock::SystemClock),
        )
        .await
        .expect("app");
        let now = chrono::Utc::now().timestamp();
        // The session is re-checked against the directory on every request: ana must exist.
        let d = app.directory.clone().expect("directory");
        d.create_user("ana", None).await.expect("user");
        d.create_group("staff", None).await.expect("group");
        d.add_user_to_group("ana", "staff").await.expect("member");
        let mut ana = person();
        ana.origin_user = Some(d.user("ana").await.expect("user").user_id);
        let token = rolegate::portal::session::create(store.as_ref(), ana, "127.0.0.1".into(), now)
            .await
            .expect("session");
        let router = rolegate::web::router(app);
        let cookie = format!("{}={token}", rolegate::portal::session::SESSION_COOKIE);
        let get = || async {
            let resp = router
                .clone()
                .oneshot(
                    Request::get("/portal")
                        .header(header::COOKIE, &cookie)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response");
            assert_eq!(resp.status(), StatusCode::OK);
            axum::body::to_bytes(resp.into_body(), 1 << 24)
                .await
                .expect("body")
        };
        let bytes = get().await.len();
        for _ in 0..WARMUP {
            black_box(get().await);
        }
        let mut times = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let t = Instant::now();
            black_box(get().await);
            times.push(t.elapsed());
        }
        report("GET /portal", times, bytes);
    });
}
