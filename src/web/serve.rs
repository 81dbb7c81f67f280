//! Serving: the listener (plain TCP, or TLS terminated with rustls), the separate metrics
//! listener, signals (SIGTERM/SIGINT start a graceful shutdown; SIGHUP reloads the TLS
//! certificate, reopens the audit file and re-reads SAML metadata) and the bounded drain: after the signal no new
//! connection is accepted, requests in flight finish, idle connections close, and whatever is
//! still open after `[shutdown] drain_seconds` is cut. The audit writer is flushed last.
//!
//! The TLS certificate and key are also re-read when their files change (checked every
//! `[tls] reload_seconds`); a pair that does not load is logged and the previous one kept.

use crate::app::App;
use crate::config::TlsSettings;
use anyhow::Context;
use axum::serve::ListenerExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest time a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once.
const MAX_HANDSHAKES: usize = 1024;

/// Everything that can go wrong loading a certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {why}")]
    Pem {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Loads a rustls server configuration from PEM files (HTTP/1.1 offered by ALPN).
pub fn load_tls(t: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = |path: &Path, why: String| TlsError::Pem {
        path: path.display().to_string(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
        .map_err(|e| pem(&t.cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem(&t.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(&t.cert_file, "no CERTIFICATE block".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&t.key_file).map_err(|e| pem(&t.key_file, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// TLS connections whose handshake finished, handed to `axum::serve`.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The acceptor stopped (shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections and runs each handshake in its own task, so that a slow client
/// cannot hold up the others.
async fn accept_tls(
    listener: TcpListener,
    acceptor: Arc<parking_lot::RwLock<TlsAcceptor>>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (tcp, addr) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let acc = acceptor.read().clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send((stream, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(client = %addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
            }
        });
    }
}

fn modified(t: &TlsSettings) -> Option<(SystemTime, u64, SystemTime, u64)> {
    let c = std::fs::metadata(&t.cert_file).ok()?;
    let k = std::fs::metadata(&t.key_file).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// Re-reads the certificate and key when their files change or on SIGHUP.
async fn reload_tls(
    t: TlsSettings,
    acceptor: Arc<parking_lot::RwLock<TlsAcceptor>>,
    mut hup: watch::Receiver<u64>,
) {
    let mut seen = modified(&t);
    let mut tick = tokio::time::interval(t.reload_every);
    tick.tick().await;
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            r = hup.changed() => {
                if r.is_err() {
                    return;
                }
                true
            }
        };
        let now = modified(&t);
        if !forced && now == seen {
            continue;
        }
        match load_tls(&t) {
            Ok(cfg) => {
                *acceptor.write() = TlsAcceptor::from(cfg);
                seen = now;
                tracing::info!(cert = %t.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the previous one")
            }
        }
    }
}

/// Turns SIGTERM/SIGINT into `shutdown = true` and counts SIGHUPs. With a ready delay, the
/// App is marked draining first (`/readyz` answers 503) and keeps serving for that long.
async fn signals(app: Arc<App>, shutdown: watch::Sender<bool>, hup: watch::Sender<u64>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers; stop rolegate with SIGKILL");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the TLS certificate and reopening the audit file");
                    hup.send_modify(|n| *n += 1);
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = hup;
        let _ = tokio::signal::ctrl_c().await;
    }
    app.draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let delay = app.config.ops.ready_delay;
    if !delay.is_zero() {
        tracing::info!(
            seconds = delay.as_secs(),
            "shutting down: /readyz answers 503; still serving until the ready delay is over"
        );
        tokio::time::sleep(delay).await;
    }
    let _ = shutdown.send(true);
}

async fn until(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Serves `app` on `listener` until SIGTERM/SIGINT, then drains and flushes the audit log.
pub async fn serve(app: Arc<App>, listener: TcpListener) -> anyhow::Result<()> {
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (hup_tx, hup) = watch::channel(0u64);
    tokio::spawn(signals(app.clone(), shutdown_tx, hup_tx));

    if let Some(reopen) = app.audit_reopen.clone() {
        let mut hup = hup.clone();
        tokio::spawn(async move {
            while hup.changed().await.is_ok() {
                reopen.reopen();
            }
        });
    }

    if app.saml.names().next().is_some() {
        let mut hup = hup.clone();
        let app = app.clone();
        tokio::spawn(async move {
            while hup.changed().await.is_ok() {
                tracing::info!("SIGHUP: re-reading SAML metadata");
                app.saml.refresh_now().await;
            }
        });
    }

    let ops = &app.config.ops;
    if let (true, Some(addr)) = (ops.metrics.enabled, ops.metrics.listen) {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        tracing::info!(address = %addr, "metrics listening");
        let router = super::metrics_router(app.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, router)
                .with_graceful_shutdown(until(stop))
                .await
            {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }

    let make = super::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let drain = ops.drain;
    let served = async {
        match &ops.tls {
            None => axum::serve(listener, make)
                .with_graceful_shutdown(until(shutdown.clone()))
                .await
                .map_err(anyhow::Error::from),
            Some(t) => {
                let cfg = load_tls(t).context("loading the TLS certificate and key")?;
                let acceptor = Arc::new(parking_lot::RwLock::new(TlsAcceptor::from(cfg)));
                let local = listener.local_addr()?;
                let (tx, rx) = mpsc::channel(64);
                tokio::spawn(accept_tls(listener, acceptor.clone(), tx, shutdown.clone()));
                tokio::spawn(reload_tls(t.clone(), acceptor, hup.clone()));
                // tap_io gives the connection's address to ConnectInfo<SocketAddr>.
                axum::serve(TlsListener { rx, local }.tap_io(|_| {}), make)
                    .with_graceful_shutdown(until(shutdown.clone()))
                    .await
                    .map_err(anyhow::Error::from)
            }
        }
    };
    let deadline = async {
        until(shutdown.clone()).await;
        tracing::info!(
            drain_seconds = drain.as_secs(),
            "shutting down: no new connections; finishing requests in flight"
        );
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        r = served => r?,
        () = deadline => tracing::warn!(
            drain_seconds = drain.as_secs(),
            "drain time over: connections still open are cut"
        ),
    }
    tracing::info!("flushing the audit log and the last use of access keys");
    if let Some(d) = &app.directory {
        if let Err(e) = d.flush_key_use().await {
            tracing::warn!(error = %e, "writing the last use of access keys failed");
        }
    }
    app.audit.flush().await;
    if crate::telemetry::enabled() {
        // Blocks until the exporter has sent what it holds; its requests run on this runtime.
        let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    }
    Ok(())
}
