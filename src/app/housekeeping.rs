//! Housekeeping: the periodic purges and the key-ring reload.

use std::time::Duration;

use super::AppState;

/// Periodic housekeeping: purge expired rows (sessions too) every minute and audit rows past
/// `[audit] retention` once a day.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut audit_purged_at: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = state.store.housekeeping().purge_expired().await {
                tracing::warn!(error = %e, "purging expired records failed");
            }
            if audit_purged_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(24 * 3600)) {
                audit_purged_at = Some(tokio::time::Instant::now());
                match state
                    .store
                    .audit()
                    .purge_older_than(state.config.audit.retention)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "purged audit rows past [audit] retention"),
                    Err(e) => tracing::warn!(error = %e, "purging old audit rows failed"),
                }
            }
        }
    })
}

/// Re-read the key ring every `[keys] reload_interval`: a key staged by `passerelle keys
/// rotate` beside this server, or (shared ring) by another node, is published here within
/// that time, and signs here from its `signs_from` like everywhere else.
pub fn spawn_key_reload(state: AppState) -> tokio::task::JoinHandle<()> {
    let every = state
        .config
        .keys
        .reload_interval
        .max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.keys.reload().await {
                tracing::warn!(error = %e, "reloading the key ring failed; keeping the loaded keys");
            }
        }
    })
}
