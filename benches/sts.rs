//! GetCallerIdentity through `sts::handle`, in process (no sockets, no hyper): the server-side cost
//! of one SigV4-signed call — form parsing, the `Authorization` parse, the session token's
//! unsealing (or the cache of opened tokens), the canonical request and signature, the audit event
//! and the XML answer. The request is signed once by the `aws-sigv4` crate (the SDKs' signer) with
//! credentials that rolegate issued, and replayed (within SigV4's 15-minute window).
//!
//! `cargo bench --bench sts` (criterion). For instruction counts that do not depend on what else
//! the machine is doing, run the bench binary with `STS_BENCH_LOOP=N` under callgrind: it then
//! makes N calls and exits, e.g.
//! `valgrind --tool=callgrind $(cargo bench --bench sts --no-run --message-format=json | …) `
//! (see BENCHMARKS.md for the exact command).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use criterion::Criterion;
use rolegate::app::App;
use rolegate::config::Config;
use rolegate::query::QueryRequest;
use rolegate::store::MemoryStore;
use rolegate::web::query;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

const ACCOUNT: &str = "111122223333";
const PUBLIC: &str = "http://127.0.0.1:8080";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[store]
kind = "memory"
[[accounts]]
id = "111122223333"
name = "bench"
[[permission_sets]]
name = "Dev"
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[assignment_rules]]
provider = "local"
permission_set = "Dev"
accounts = ["111122223333"]
local_group = "dev"
"#;

struct Signed {
    headers: http::HeaderMap,
}

fn signed_request(access_key_id: &str, secret: &str, token: &str) -> Signed {
    let identity: Identity =
        Credentials::new(access_key_id, secret, Some(token.to_owned()), None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let base = [
        ("host", "127.0.0.1:8080"),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let request = SignableRequest::new(
        "POST",
        format!("{PUBLIC}/"),
        base.into_iter(),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    let mut headers = http::HeaderMap::new();
    for (k, v) in base
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(instructions.headers())
    {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v).expect("value"),
        );
    }
    Signed { headers }
}

async fn call(app: &Arc<App>, signed: &Signed) -> u16 {
    let method = http::Method::POST;
    let r = query::handle(
        app,
        QueryRequest {
            method: &method,
            path: "/",
            query: "",
            headers: &signed.headers,
            body: BODY.as_bytes(),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            secure_transport: false,
            request_id: "bench",
        },
    )
    .await;
    let status = r.status().as_u16();
    // The body is what a client reads: produce it, as hyper would.
    let _ = black_box(axum::body::to_bytes(r.into_body(), 1 << 20).await);
    status
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config =
        Config::from_str_with_env(Path::new("/etc/rolegate.toml"), CONFIG, &[]).expect("config");
    let app = rt
        .block_on(App::build(
            config,
            Arc::new(MemoryStore::new()),
            Arc::new(rolegate::clock::SystemClock),
        ))
        .expect("app");
    // A directory user of group dev, signed in through the portal's path (the gate reads it).
    let who = rt.block_on(async {
        let d = app.directory.clone().expect("directory");
        d.create_user("bench", None).await.expect("user");
        d.create_group("dev", None).await.expect("group");
        d.add_user_to_group("bench", "dev").await.expect("member");
        let user = d.user("bench").await.expect("user");
        let identity = rolegate::authz::gate::SignedInIdentity {
            provider: "local".into(),
            subject: "bench".into(),
            claims: serde_json::Map::new(),
            mfa_time: None,
            origin_user: Some(user.user_id),
            local_groups: vec!["dev".into()],
            signed_in_at: app.clock.now().timestamp(),
        };
        rolegate::authz::gate::admit_sign_in(&app, &identity)
            .await
            .expect("admitted")
    });
    let mut ev = rolegate::audit::AuditEvent::new(app.clock.now(), "bench", "bench");
    let (claims, token) =
        rolegate::sts::credentials_for_assignment(&app, &who, ACCOUNT, "Dev", &mut ev)
            .expect("credentials");
    let signed = signed_request(&claims.access_key_id, &claims.secret_access_key, &token);
    assert_eq!(
        rt.block_on(call(&app, &signed)),
        200,
        "the signed request verifies"
    );

    if let Some(n) = std::env::var("STS_BENCH_LOOP")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        rt.block_on(async {
            for _ in 0..n {
                assert_eq!(call(&app, &signed).await, 200);
            }
        });
        return;
    }

    let mut c = Criterion::default().configure_from_args();
    c.bench_function("sts/get_caller_identity", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = std::time::Instant::now();
                for _ in 0..iters {
                    black_box(call(&app, &signed).await);
                }
                started.elapsed()
            })
        })
    });
    c.final_summary();
}
