//! Background work of a running server: sealing-key and revocation refresh, SAML metadata refresh,
//! the batched write of access keys' last use (see [`flush_key_use`]), and the clean-up of expired replay entries, revocations, sealing keys and portal/SSO rows. Wiring,
//! above every edge: it may call any of them.

use crate::app::{App, REFRESH_INTERVAL};
use crate::credentials::KeyRing;
use std::sync::Arc;

/// Starts background work: key warm-up, periodic refresh of shared state, clean-up of expired rows.
pub fn start(app: &Arc<App>) {
    let this = app.clone();
    tokio::spawn(async move { this.verifier.warm().await });
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            if let Err(e) = app.keys.refresh(app.store.as_ref()).await {
                tracing::warn!(error = %e, "refreshing sealing keys failed");
            }
            if let Err(e) = app.revocations.refresh(app.store.as_ref()).await {
                tracing::warn!(error = %e, "refreshing revocations failed");
            }
            if let Err(e) = app.provisioned.refresh().await {
                tracing::warn!(error = %e, "refreshing the provisioned directory failed");
            }
            if let Some(d) = &app.directory {
                if let Err(e) = d.refresh().await {
                    tracing::warn!(error = %e, "refreshing the index of the directory's users failed");
                }
            }
            app.saml.refresh_due().await;
            flush_key_use(&app).await;
            // Clean-up once a minute.
            if n.is_multiple_of(12) {
                let now = app.clock.now().timestamp();
                if let Err(e) = app.store.purge_expired_replays(now).await {
                    tracing::warn!(error = %e, "purging replay entries failed");
                }
                if let Err(e) = app.store.purge_expired_revocations(now).await {
                    tracing::warn!(error = %e, "purging revocations failed");
                }
                if let Err(e) = KeyRing::delete_expired(app.store.as_ref(), now).await {
                    tracing::warn!(error = %e, "deleting expired sealing keys failed");
                }
                if let Err(e) = crate::portal::purge_expired(&app).await {
                    tracing::warn!(error = %e, "purging expired portal sessions failed");
                }
            }
        }
    });
}

/// Writes the uses of long-term access keys noted in memory since the last run (signed calls do
/// not write them): every [`REFRESH_INTERVAL`] here, and once more at shutdown.
pub async fn flush_key_use(app: &App) {
    if let Some(d) = &app.directory {
        if let Err(e) = d.flush_key_use().await {
            tracing::warn!(error = %e, "writing the last use of access keys failed; kept for the next run");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_directory_cache_bound_is_the_revocation_refresh_interval() {
        assert_eq!(crate::idp::local::CACHE_BOUND, crate::app::REFRESH_INTERVAL);
    }
}
