//! The JSON-lines file sink: one event per line, appended and synced once per batch, reopened on
//! demand and rotated by size.

use crate::store::AuditRecord;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Everything that can go wrong with the audit file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Opening, writing, syncing or renaming the file failed.
    #[error("audit file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The JSON-lines file sink: appended to, reopened when asked, rotated by size.
pub struct FileSink {
    path: PathBuf,
    /// `None` after a failed reopen: the next batch tries again.
    file: Option<std::fs::File>,
    size: u64,
    max_bytes: u64,
    reopen: Arc<AtomicBool>,
}

impl FileSink {
    /// Opens (creating, mode 0600) `path` for appending; rotates at `max_bytes` (0: only by
    /// external rotation and reopening).
    pub fn open(path: &Path, max_bytes: u64) -> Result<FileSink, AuditError> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|source| AuditError::File {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_bytes,
            reopen: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that makes the sink reopen its file before the next batch (after an external
    /// rotation renamed it: SIGHUP).
    pub fn reopen_handle(&self) -> ReopenHandle {
        ReopenHandle(self.reopen.clone())
    }

    /// Appends one batch of lines and syncs it.
    pub(super) fn write(&mut self, lines: &[u8]) -> Result<(), AuditError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::File { path, source }
        };
        if self.reopen.swap(false, Ordering::AcqRel) || self.file.is_none() {
            self.file = None;
            let f = open_append(&self.path)?;
            self.size = f.metadata().map_err(err(&self.path))?.len();
            self.file = Some(f);
        }
        if self.max_bytes > 0 && self.size > 0 && self.size + lines.len() as u64 > self.max_bytes {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, &rotated).map_err(err(&self.path))?;
            self.file = None;
            self.file = Some(open_append(&self.path)?);
            self.size = 0;
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.write_all(lines).map_err(err(&self.path))?;
        f.sync_data().map_err(err(&self.path))?;
        self.size += lines.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, AuditError> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|source| AuditError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a [`FileSink`] reopen its file.
#[derive(Clone)]
pub struct ReopenHandle(Arc<AtomicBool>);

impl ReopenHandle {
    /// Reopen before the next batch.
    pub fn reopen(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Appends a batch to the file sink off the async runtime (the write is synced); a failure is
/// logged with the number of events the file lost (the store still has them when it is a sink).
pub(super) async fn write_file(mut sink: FileSink, batch: &[AuditRecord]) -> FileSink {
    let mut lines = Vec::with_capacity(batch.iter().map(|r| r.json.len() + 1).sum());
    for r in batch {
        lines.extend_from_slice(r.json.as_bytes());
        lines.push(b'\n');
    }
    let n = batch.len();
    let (path, max_bytes, reopen) = (sink.path.clone(), sink.max_bytes, sink.reopen.clone());
    match tokio::task::spawn_blocking(move || {
        let r = sink.write(&lines);
        (sink, r)
    })
    .await
    {
        Ok((sink, Ok(()))) => sink,
        Ok((sink, Err(e))) => {
            tracing::error!(error = %e, lost = n, "audit file write failed; events missing from the file");
            sink
        }
        Err(e) => {
            // The blocking task failed and took the sink with it: the next batch reopens.
            tracing::error!(error = %e, lost = n, "audit file writer failed");
            FileSink {
                path,
                file: None,
                size: 0,
                max_bytes,
                reopen,
            }
        }
    }
}
