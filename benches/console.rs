//! Server-side time of the operator console's pages at scale, on the embedded (sled) store:
//! 10,000 users, 2,000 groups (each user in one), 1,000,000 audit events over ten days. Each page
//! is a whole request through rolegate's router (the root user's session looked up, the decision
//! core asked for every control offered, the page rendered), as a server answers it:
//!   - the user search (`/admin/console/users?q=…`, all users read and filtered, one page shown);
//!   - a user's page with its effective access (`/admin/console/users/NAME`);
//!   - a group's page with its members (`/admin/console/groups/NAME`);
//!   - the audit log over one day (`/admin/console/audit?from=…&to=…`), and one filtered by action;
//!   - who has access to what (`/admin/console/access`, the rules evaluated for every user);
//!   - the console's home.
//!
//! Each page runs 20 warm-up requests, then times 200 and prints p50, p99, mean and max. Target:
//! p99 under 50 ms for every page. Seeding takes a few minutes (every directory write is flushed).
//!
//! `cargo bench --bench console -- --bench` (`CONSOLE_USERS=1000 CONSOLE_AUDIT=100000` for a
//! smaller run)

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use rolegate::app::App;
use rolegate::config::Config;
use rolegate::portal::SignedInIdentity;
use rolegate::store::{AuditRecord, SledStore, Store};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
#[path = "support/latency.rs"]
mod latency;

use std::time::{Duration, Instant};
use tower::ServiceExt;

const WARMUP: usize = 20;
const ITERATIONS: usize = 200;
const DAY_MS: i64 = 86_400_000;

/// The path of a page's `i`-th request.
type PagePath<'a> = Box<dyn Fn(usize) -> String + 'a>;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(data: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:8080\"\n\
         [store]\nkind = \"sled\"\npath = \"{}\"\n[portal]\n\
         [[accounts]]\nid = \"111122223333\"\nname = \"main\"\n\
         [[permission_sets]]\nname = \"Dev\"\n[[permission_sets.policies]]\nname = \"all\"\n\
         document = '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}]}}'\n\
         [[assignment_rules]]\nprovider = \"local\"\npermission_set = \"Dev\"\n\
         accounts = [\"111122223333\"]\nlocal_group = \"group-0007\"\n",
        data.display()
    )
}

fn report(name: &str, times: Vec<Duration>, bytes: usize) -> f64 {
    let s = latency::summarize(times);
    println!("{name:<34} {s}  ({} KiB page)", bytes / 1024);
    s.p99
}

fn main() {
    // `cargo test --all-targets` runs bench targets without --bench: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let users = count("CONSOLE_USERS", 10_000);
    let groups = count("CONSOLE_GROUPS", 2_000).max(8);
    let events = count("CONSOLE_AUDIT", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::from_str_with_env(
        Path::new("/etc/rolegate.toml"),
        &config(&dir.path().join("data")),
        &[],
    )
    .expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(&dir.path().join("data")).expect("sled store"));
        let app = App::build(
            config,
            store.clone(),
            Arc::new(rolegate::clock::SystemClock),
        )
        .await
        .expect("app");
        let d = app.directory.clone().expect("directory");
        d.ensure_root().await.expect("root");

        let seeding = Instant::now();
        for g in 0..groups {
            d.create_group(&format!("group-{g:04}"), None)
                .await
                .expect("group");
        }
        for u in 0..users {
            let name = format!("user-{u:05}");
            d.create_user(&name, None).await.expect("user");
            d.add_user_to_group(&name, &format!("group-{:04}", u % groups))
                .await
                .expect("member");
        }
        println!(
            "seeded {users} users in {groups} groups in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let seeding = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let actions = [
            "sts:AssumeRoleWithWebIdentity",
            "sts:GetCallerIdentity",
            "portal:SignIn",
            "rolegate:CreateUser",
        ];
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..events {
            // Spread over the last ten days, newest last.
            let time_ms = now_ms - 10 * DAY_MS + (i as i64 * 10 * DAY_MS) / events as i64;
            let action = actions[i % actions.len()];
            let principal = format!("arn:aws:iam::111122223333:user/user-{:05}", i % users);
            let decision = if i % 10 == 0 { "deny" } else { "allow" };
            let id = format!("req-{i:08}");
            let json = serde_json::json!({
                "time": chrono::DateTime::<chrono::Utc>::from_timestamp_millis(time_ms)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "request_id": id, "action": action, "decision": decision,
                "principal": principal, "reason": "seeded for the console benchmark",
            })
            .to_string();
            batch.push(AuditRecord {
                time_ms,
                id,
                action: action.into(),
                principal: Some(principal),
                decision: decision.into(),
                json,
            });
            if batch.len() == batch.capacity() {
                store.append_audit(&batch).await.expect("audit");
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.append_audit(&batch).await.expect("audit");
        }
        println!(
            "seeded {events} audit events in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );

        let root = d.user("root").await.expect("root");
        let now = chrono::Utc::now().timestamp();
        let identity = SignedInIdentity {
            provider: "local".into(),
            subject: "root".into(),
            claims: serde_json::Map::new(),
            mfa_time: Some(now),
            local_groups: Vec::new(),
            origin_user: Some(root.user_id.clone()),
            signed_in_at: now,
        };
        let token =
            rolegate::portal::session::create(store.as_ref(), identity, "127.0.0.1".into(), now)
                .await
                .expect("session");
        let cookie = format!("{}={token}", rolegate::portal::session::SESSION_COOKIE);
        let router = rolegate::web::router(app.clone());
        let get = |path: String| {
            let router = router.clone();
            let cookie = cookie.clone();
            async move {
                let resp = router
                    .oneshot(
                        Request::get(&path)
                            .header(header::COOKIE, &cookie)
                            .body(Body::empty())
                            .expect("request"),
                    )
                    .await
                    .expect("response");
                assert_eq!(resp.status(), StatusCode::OK, "{path}");
                axum::body::to_bytes(resp.into_body(), 1 << 26)
                    .await
                    .expect("body")
            }
        };
        let day = move |d: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms - d * DAY_MS)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        };
        let pages: Vec<(&str, PagePath<'_>)> = vec![
            ("console home", Box::new(|_| "/admin".to_string())),
            (
                "user search (q=user-0042)",
                Box::new(|i| format!("/admin/console/users?q=user-{:04}", 42 + i % 50)),
            ),
            (
                "a user's page with its access",
                Box::new(move |i| format!("/admin/console/users/user-{:05}", (i * 37) % users)),
            ),
            (
                "a group's page with its members",
                Box::new(move |i| format!("/admin/console/groups/group-{:04}", (i * 13) % groups)),
            ),
            (
                "audit log over one day",
                Box::new(move |_| format!("/admin/console/audit?from={}&to={}", day(4), day(3))),
            ),
            (
                "audit log, one action over a day",
                Box::new(move |_| {
                    format!(
                        "/admin/console/audit?from={}&to={}&action=portal%3ASignIn&decision=deny",
                        day(4),
                        day(3)
                    )
                }),
            ),
            (
                "who has access to what",
                Box::new(|_| "/admin/console/access".to_string()),
            ),
        ];
        let mut worst: f64 = 0.0;
        for (name, path) in &pages {
            let bytes = get(path(0)).await.len();
            for i in 0..WARMUP {
                black_box(get(path(i)).await);
            }
            let mut times = Vec::with_capacity(ITERATIONS);
            for i in 0..ITERATIONS {
                let p = path(i);
                let t = Instant::now();
                black_box(get(p).await);
                times.push(t.elapsed());
            }
            worst = worst.max(report(name, times, bytes));
        }
        println!("worst p99 {worst:.2} ms (target under 50 ms)");
    });
}
