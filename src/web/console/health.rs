//! The health page: the store (reachable, and how long a health check takes), the sealing keys
//! (which one seals, when each was made and retired) and each identity provider's keys or
//! metadata (when last loaded, and why the last refresh failed). Reading it is
//! `rolegate:GetHealth` on `arn:aws:rolegate:::health`, itself audited.

use super::{failed, when, Admin, GET_HEALTH};
use crate::app::App;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// A current sealing key older than this many days is worth rotating (`rolegate keys rotate`).
pub const KEY_AGE_ADVICE_DAYS: i64 = 90;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new().route("/admin/console/health", get(show))
}

struct KeyView {
    id: String,
    created: String,
    state: String,
}

struct ProviderView {
    name: String,
    kind: &'static str,
    loaded: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/health.html")]
struct HealthPage<'a> {
    admin: &'a Admin,
    store: String,
    store_ok: bool,
    store_ms: String,
    keys: Vec<KeyView>,
    key_advice: Option<String>,
    providers: Vec<ProviderView>,
    draining: bool,
}

async fn show(State(app): State<Arc<App>>, admin: Admin) -> Response {
    if let Err(e) = admin.read(&app, GET_HEALTH).await {
        return failed(&e);
    }
    let started = std::time::Instant::now();
    let health = app.store.health().await;
    let store_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
    let now = app.clock.now().timestamp();
    let current = app.keys.current_key_id();
    let (keys, key_advice) = match app.store.sealing_keys().await {
        Ok(stored) => {
            let advice = stored
                .iter()
                .find(|k| Some(&k.id) == current.as_ref())
                .filter(|k| now - k.created_at > KEY_AGE_ADVICE_DAYS * 86_400)
                .map(|k| {
                    format!(
                        "The sealing key in use was made {} days ago; rotate it with `rolegate keys rotate`.",
                        (now - k.created_at) / 86_400
                    )
                });
            let keys = stored
                .iter()
                .map(|k| KeyView {
                    id: k.id.clone(),
                    created: when(Some(k.created_at)),
                    state: if Some(&k.id) == current.as_ref() {
                        "seals new sessions".into()
                    } else if let Some(r) = k.retired_at {
                        format!(
                            "retired {}; still opens sessions sealed before",
                            when(Some(r))
                        )
                    } else {
                        "not yet in use here".into()
                    },
                })
                .collect();
            (keys, advice)
        }
        Err(e) => (
            Vec::new(),
            Some(format!("The sealing keys cannot be read: {e}")),
        ),
    };
    let providers = app
        .verifier
        .health()
        .into_iter()
        .chain(app.saml.health())
        .map(|p| ProviderView {
            name: p.name,
            kind: p.kind,
            loaded: p
                .loaded_secs_ago
                .map_or_else(|| "never".to_string(), |s| format!("{s} s ago")),
            error: p.last_error,
        })
        .collect();
    crate::portal::page(HealthPage {
        admin: &admin,
        store: match &health {
            Ok(()) => "reachable".into(),
            Err(e) => e.to_string(),
        },
        store_ok: health.is_ok(),
        store_ms,
        keys,
        key_advice,
        providers,
        draining: app.draining.load(std::sync::atomic::Ordering::Relaxed),
    })
}
