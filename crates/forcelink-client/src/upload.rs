//! Request bodies read from a file while they are sent: a prefix, the file's bytes, a suffix
//! (a multipart body around a file of up to 2 GB), in chunks, so memory stays flat whatever the
//! file's size. Each attempt opens the file again, so a retried request sends it from the start
//! without holding it in memory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use crate::error::ClientError;

/// Bytes read from the file at a time.
const CHUNK_BYTES: usize = 256 * 1024;

/// Hears how far a body is sent: `(bytes handed to the connection, total bytes)`, called after
/// each chunk and once at 0 when an attempt starts (a retry starts again).
pub type UploadProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A body of `prefix`, the file at `path` (of `file_len` bytes when planned) and `suffix`.
#[derive(Clone)]
pub(crate) struct FileBody {
    path: Arc<PathBuf>,
    file_len: u64,
    prefix: Bytes,
    suffix: Bytes,
    progress: Option<UploadProgress>,
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBody").field("path", &self.path).field("file_len", &self.file_len).finish()
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> ClientError {
    ClientError::InvalidInput(format!("cannot read {}: {e}", path.display()))
}

fn changed(path: &Path) -> std::io::Error {
    std::io::Error::other(format!("{} changed size while it was sent", path.display()))
}

impl FileBody {
    pub(crate) fn new(
        path: PathBuf,
        file_len: u64,
        prefix: Bytes,
        suffix: Bytes,
        progress: Option<UploadProgress>,
    ) -> Self {
        Self { path: Arc::new(path), file_len, prefix, suffix, progress }
    }

    /// The whole body's length (its `Content-Length`).
    pub(crate) fn len(&self) -> u64 {
        self.prefix.len() as u64 + self.file_len + self.suffix.len() as u64
    }

    /// Opens the file and gives the body for one attempt. A file that no longer has the planned
    /// length is refused here, or fails the request while it is sent.
    pub(crate) async fn open(&self) -> Result<reqwest::Body, ClientError> {
        let path = self.path.clone();
        let file = tokio::fs::File::open(&*path).await.map_err(|e| unreadable(&path, &e))?;
        let len = file.metadata().await.map_err(|e| unreadable(&path, &e))?.len();
        if len != self.file_len {
            return Err(ClientError::InvalidInput(changed(&path).to_string()));
        }
        let total = self.len();
        let progress = self.progress.clone();
        if let Some(p) = &progress {
            p(0, total);
        }
        let state =
            Read { file, left: self.file_len, sent: self.prefix.len() as u64, total, path, progress: progress.clone() };
        let file_chunks = futures_util::stream::try_unfold(state, |mut s| async move {
            if s.left == 0 {
                // The planned length is sent; more bytes now would make the body longer than
                // announced.
                let mut probe = [0u8; 1];
                return match s.file.read(&mut probe).await? {
                    0 => Ok(None),
                    _ => Err(changed(&s.path)),
                };
            }
            let want = s.left.min(CHUNK_BYTES as u64) as usize;
            let mut buf = BytesMut::with_capacity(want);
            while buf.len() < want {
                if s.file.read_buf(&mut buf).await? == 0 {
                    return Err(changed(&s.path));
                }
            }
            s.left -= buf.len() as u64;
            s.sent += buf.len() as u64;
            if let Some(p) = &s.progress {
                p(s.sent, s.total);
            }
            Ok(Some((buf.freeze(), s)))
        });
        let prefix = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(self.prefix.clone())));
        let suffix = self.suffix.clone();
        let end = futures_util::stream::once(async move {
            if let Some(p) = &progress {
                p(total, total);
            }
            Ok(suffix)
        });
        use futures_util::StreamExt;
        Ok(reqwest::Body::wrap_stream(prefix.chain(file_chunks).chain(end)))
    }
}

/// Where the reading of one attempt stands.
struct Read {
    file: tokio::fs::File,
    left: u64,
    sent: u64,
    total: u64,
    path: Arc<PathBuf>,
    progress: Option<UploadProgress>,
}
