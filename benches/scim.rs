//! SCIM provisioning through rolegate's router on the sled store, with 10,000 provisioned users:
//!   - `GET /scim/v2/Users?filter=userName eq "…"`: the lookup Okta and Entra ID make before every
//!     creation (answered from the userName index);
//!   - `GET /scim/v2/Users?filter=userName co "…"`: a substring filter, a scan of every user;
//!   - group member changes: PATCH batches of 100 `{"value": id}` added to one group (up to
//!     10,000 members), then removed again, as member changes per second.
//!
//! The GETs run 50 warm-up iterations, then time 1,000 (eq) or 200 (co) and print p50, p99, mean
//! and max. Targets: filtered GET p99 under 50 ms; at least 1,000 member changes per second.
//!
//! `cargo bench --bench scim -- --bench`

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use rolegate::app::App;
use rolegate::config::Config;
use rolegate::store::sled::SledStore;
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
#[path = "support/latency.rs"]
mod latency;

use std::time::{Duration, Instant};
use tower::ServiceExt;

const USERS: usize = 10_000;
const BATCH: usize = 100;
const WARMUP: usize = 50;
const TOKEN: &str = "scim-token-of-the-benchmark-directory-0000000001";

fn config(token_file: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:8080\"\n\
         [store]\nkind = \"memory\"\n\
         [[oidc_providers]]\nissuer = \"http://127.0.0.1:9\"\naudiences = [\"client\"]\n\
         allow_http = true\nname = \"corp\"\n\
         [[scim_clients]]\nname = \"directory\"\nprovider = \"corp\"\nmatch = \"userName\"\n\
         token_file = \"{}\"\nrate = {{ per_minute = 0 }}\n",
        token_file.display()
    )
}

fn report(name: &str, times: Vec<Duration>) {
    let n = times.len();
    println!("{name:<34} {}  ({n} iterations)", latency::summarize(times));
}

struct Client {
    router: axum::Router,
}

impl Client {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/scim+json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26)
            .await
            .expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("json")
        };
        (status, v)
    }

    async fn get_times(&self, uri: &str, iterations: usize, want_total: u64) -> Vec<Duration> {
        let (status, v) = self.call(Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["totalResults"], want_total, "{uri}");
        for _ in 0..WARMUP {
            black_box(self.call(Method::GET, uri, None).await);
        }
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            black_box(self.call(Method::GET, uri, None).await);
            times.push(t.elapsed());
        }
        times
    }
}

fn enc(filter: &str) -> String {
    filter
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('"', "%22")
}

fn main() {
    // `cargo test --all-targets` runs bench targets without --bench: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("scim-token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let config =
        Config::from_str_with_env(Path::new("/etc/rolegate.toml"), &config(&token_file), &[])
            .expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(SledStore::open(&dir.path().join("data")).expect("sled"));
        let app = App::build(config, store, Arc::new(rolegate::clock::SystemClock))
            .await
            .expect("app");
        let c = Client {
            router: rolegate::web::router(app),
        };

        let t = Instant::now();
        let mut ids = Vec::with_capacity(USERS);
        for i in 0..USERS {
            let (status, v) = c
                .call(
                    Method::POST,
                    "/scim/v2/Users",
                    Some(json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("user{i:05}@corp.example"),
                        "displayName": format!("User {i:05}"),
                        "emails": [{"value": format!("user{i:05}@corp.example"), "type": "work", "primary": true}],
                        "active": true
                    })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            ids.push(v["id"].as_str().expect("id").to_string());
        }
        let took = t.elapsed();
        println!(
            "{USERS} users created through POST /scim/v2/Users in {:.1} s ({:.0} per second)",
            took.as_secs_f64(),
            USERS as f64 / took.as_secs_f64()
        );

        let eq = format!("/scim/v2/Users?filter={}", enc("userName eq \"user05000@corp.example\""));
        report("GET Users?filter=userName eq", c.get_times(&eq, 1_000, 1).await);
        let co = format!("/scim/v2/Users?filter={}", enc("userName co \"r0500\""));
        report("GET Users?filter=userName co", c.get_times(&co, 200, 10).await);

        let (status, g) = c
            .call(
                Method::POST,
                "/scim/v2/Groups",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{g}");
        let group = format!("/scim/v2/Groups/{}", g["id"].as_str().expect("id"));
        for (op, label) in [("Add", "added"), ("Remove", "removed")] {
            let mut times = Vec::with_capacity(USERS / BATCH);
            let t = Instant::now();
            for batch in ids.chunks(BATCH) {
                let members: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
                let s = Instant::now();
                let (status, v) = c
                    .call(
                        Method::PATCH,
                        &group,
                        Some(json!({
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": op, "path": "members", "value": members}]
                        })),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{v}");
                times.push(s.elapsed());
            }
            let took = t.elapsed();
            println!(
                "{USERS} members {label} in PATCH batches of {BATCH}: {:.2} s, {:.0} member changes per second",
                took.as_secs_f64(),
                USERS as f64 / took.as_secs_f64()
            );
            report(&format!("PATCH Groups ({op} {BATCH} members)"), times);
        }
        let (_, g) = c.call(Method::GET, &group, None).await;
        assert!(g.get("members").is_none_or(|m| m.as_array().is_some_and(Vec::is_empty)), "{g}");
    });
}
