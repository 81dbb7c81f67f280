//! Shared fixture of the unit tests: an app built from a configuration text over an in-memory
//! store, with a fixed clock the test moves.

use crate::app::App;
use crate::clock::FixedClock;
use std::sync::Arc;

/// An app over `config` (a whole configuration text), its clock standing at `t0` (Unix seconds).
pub async fn app(config: &str, t0: i64) -> (Arc<App>, FixedClock) {
    app_with_env(config, &[], t0).await
}

/// [`app`] with environment variables the configuration reads (`*_env` settings).
pub async fn app_with_env(config: &str, env: &[(&str, &str)], t0: i64) -> (Arc<App>, FixedClock) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = crate::config::Config::from_str_with_env(
        std::path::Path::new("/etc/rolegate.toml"),
        config,
        &env,
    )
    .unwrap_or_else(|e| panic!("test configuration: {e}"));
    let clock = FixedClock::new(
        chrono::DateTime::from_timestamp(t0, 0).unwrap_or_else(|| panic!("bad time {t0}")),
    );
    let app = App::build(
        config,
        Arc::new(crate::store::MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("building the test app: {e}"));
    (app, clock)
}
