//! The calls to the store, each timed, bounded by a deadline and counted in metrics; answers
//! ("not found", "already exists") are told apart from failures here, once.

use crate::error::StorageError;
use crate::format::Encoded;
use crate::metrics::{ErrorKind, Op, StorageMetrics};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Multipart upload settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Multipart {
    /// Objects of at least this many bytes go multipart.
    pub(crate) threshold: usize,
    /// Bytes per part.
    pub(crate) part: usize,
    /// Parts in flight per upload.
    pub(crate) concurrency: usize,
}

/// The store with deadlines and metrics around every call.
#[derive(Debug, Clone)]
pub(crate) struct Io {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) metrics: StorageMetrics,
    /// The longest one call may take, retries included.
    pub(crate) deadline: Duration,
    pub(crate) multipart: Multipart,
    /// Whether listings come in key order (S3, GCS and Azure list lexicographically; a
    /// directory walk does not).
    pub(crate) ordered_listing: bool,
}

impl Io {
    /// Runs one call under the deadline, timing and classifying its outcome.
    async fn call<T>(
        &self,
        op: Op,
        name: &Path,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.deadline, fut).await;
        self.observe(op, started);
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failure(op, name, e)),
            Err(_) => {
                self.metrics.error(op, ErrorKind::Timeout);
                Err(StorageError::Timeout {
                    op,
                    name: name.to_string(),
                    after: self.deadline,
                })
            }
        }
    }

    fn observe(&self, op: Op, started: Instant) {
        self.metrics
            .operation_seconds
            .with_label_values(&[op.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Maps a store error: answers are not counted as errors.
    fn failure(&self, op: Op, name: &Path, e: object_store::Error) -> StorageError {
        let name = name.to_string();
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound { name },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => StorageError::Conflict { name },
            source => {
                self.metrics.error(op, classify(&source));
                StorageError::Backend { op, name, source }
            }
        }
    }

    /// Writes `object` at `path` unless something is there: `Conflict` when it is.
    /// Small objects in one conditional request (atomic: `If-None-Match: *`, or a hard link
    /// on a directory); large ones by multipart upload after checking that nothing is there.
    pub(crate) async fn put_new(&self, path: &Path, object: &Encoded) -> Result<(), StorageError> {
        if object.len() >= self.multipart.threshold {
            match self.head(path).await {
                Ok(_) => {
                    return Err(StorageError::Conflict {
                        name: path.to_string(),
                    })
                }
                Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            return self.put_multipart(path, object).await;
        }
        let payload = PutPayload::from_iter([object.header.clone(), object.payload.clone()]);
        self.call(
            Op::Put,
            path,
            self.store.put_opts(path, payload, PutMode::Create.into()),
        )
        .await?;
        self.metrics.written_bytes.inc_by(object.len() as u64);
        Ok(())
    }

    /// A multipart upload of `object`, at most `concurrency` parts in flight; aborted (its
    /// parts removed) when any step fails or times out.
    async fn put_multipart(&self, path: &Path, object: &Encoded) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.upload(path, object).await;
        self.observe(Op::Put, started);
        match result {
            Ok(()) => {
                self.metrics.written_bytes.inc_by(object.len() as u64);
                Ok(())
            }
            Err(Err(e)) => Err(self.failure(Op::Put, path, e)),
            Err(Ok(after)) => {
                self.metrics.error(Op::Put, ErrorKind::Timeout);
                Err(StorageError::Timeout {
                    op: Op::Put,
                    name: path.to_string(),
                    after,
                })
            }
        }
    }

    /// The upload's steps; `Err(Ok(deadline))` when a step timed out.
    async fn upload(
        &self,
        path: &Path,
        object: &Encoded,
    ) -> Result<(), Result<Duration, object_store::Error>> {
        let deadline = self.deadline;
        let upload = bounded(deadline, self.store.put_multipart(path)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.multipart.part);
        let part = self.multipart.part;
        let chunks = [&object.header, &object.payload]
            .into_iter()
            .flat_map(|b| chunks(b, part));
        for chunk in chunks {
            let ready = tokio::time::timeout(
                deadline,
                writer.wait_for_capacity(self.multipart.concurrency),
            )
            .await;
            match ready {
                Ok(Ok(())) => writer.put(chunk),
                Ok(Err(e)) => return Err(abort(writer, deadline, Err(e)).await),
                Err(_) => return Err(abort(writer, deadline, Ok(deadline)).await),
            }
        }
        // `finish` aborts the upload itself when a part or the completion fails.
        bounded(deadline, writer.finish()).await.map(|_| ())
    }

    /// Reads a whole object.
    pub(crate) async fn get(&self, path: &Path) -> Result<Bytes, StorageError> {
        let bytes = self
            .call(Op::Get, path, async {
                self.store.get(path).await?.bytes().await
            })
            .await?;
        self.metrics.read_bytes.inc_by(bytes.len() as u64);
        Ok(bytes)
    }

    /// Reads an object's metadata.
    pub(crate) async fn head(&self, path: &Path) -> Result<ObjectMeta, StorageError> {
        self.call(Op::Head, path, self.store.head(path)).await
    }

    /// Lists every object under `prefix` (after `offset` when given), all pages.
    pub(crate) async fn list(
        &self,
        prefix: &Path,
        offset: Option<&Path>,
    ) -> Result<Vec<ObjectMeta>, StorageError> {
        self.call(Op::List, prefix, async {
            let mut stream = match offset {
                Some(offset) => self.store.list_with_offset(Some(prefix), offset),
                None => self.store.list(Some(prefix)),
            };
            let mut all = Vec::new();
            while let Some(meta) = stream.next().await {
                all.push(meta?);
            }
            Ok(all)
        })
        .await
    }

    /// Lists under `prefix` after `offset`, in key order, until `keep` returns `false` for
    /// an object; returns the objects before it. On stores that list in key order, stops
    /// reading pages at that point.
    pub(crate) async fn list_while(
        &self,
        prefix: &Path,
        offset: &Path,
        mut keep: impl FnMut(&ObjectMeta) -> bool,
    ) -> Result<Vec<ObjectMeta>, StorageError> {
        if !self.ordered_listing {
            let mut all = self.list(prefix, Some(offset)).await?;
            all.sort_by(|a, b| a.location.cmp(&b.location));
            return Ok(all.into_iter().take_while(|meta| keep(meta)).collect());
        }
        self.call(Op::List, prefix, async {
            let mut stream = self.store.list_with_offset(Some(prefix), offset);
            let mut kept = Vec::new();
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                if !keep(&meta) {
                    break;
                }
                kept.push(meta);
            }
            Ok(kept)
        })
        .await
    }

    /// Deletes the objects at `paths` (bulk where the store supports it); missing ones count
    /// as deleted. Returns how many were deleted.
    pub(crate) async fn delete(&self, name: &Path, paths: Vec<Path>) -> Result<u64, StorageError> {
        if paths.is_empty() {
            return Ok(0);
        }
        self.call(Op::Delete, name, async {
            let locations = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
            let mut results = self.store.delete_stream(locations);
            let mut deleted = 0;
            while let Some(result) = results.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(e),
                }
            }
            Ok(deleted)
        })
        .await
    }
}

/// `fut` under `deadline`: `Err(Ok(deadline))` when it passed, `Err(Err(e))` when it failed.
async fn bounded<T>(
    deadline: Duration,
    fut: impl Future<Output = object_store::Result<T>>,
) -> Result<T, Result<Duration, object_store::Error>> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(result) => result.map_err(Err),
        Err(_) => Err(Ok(deadline)),
    }
}

/// Aborts an upload (bounded by the deadline too) and passes `why` on.
async fn abort(
    writer: WriteMultipart,
    deadline: Duration,
    why: Result<Duration, object_store::Error>,
) -> Result<Duration, object_store::Error> {
    if let Ok(Err(e)) = tokio::time::timeout(deadline, writer.abort()).await {
        tracing::warn!(error = %e, "aborting a failed multipart upload failed; its parts stay until the bucket's lifecycle rule removes them");
    }
    why
}

/// `bytes` in slices of at most `size` (sharing its buffer).
fn chunks(bytes: &Bytes, size: usize) -> impl Iterator<Item = Bytes> + '_ {
    (0..bytes.len())
        .step_by(size.max(1))
        .map(move |start| bytes.slice(start..(start + size).min(bytes.len())))
}

/// The metric label of a failure.
fn classify(e: &object_store::Error) -> ErrorKind {
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return ErrorKind::Denied;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(http) = s.downcast_ref::<HttpError>() {
            match http.kind() {
                HttpErrorKind::Connect => return ErrorKind::Unreachable,
                HttpErrorKind::Timeout => return ErrorKind::Timeout,
                _ => {}
            }
        }
        source = s.source();
    }
    ErrorKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_buffer_without_copying() {
        let data = Bytes::from((0..=255u8).cycle().take(1000).collect::<Vec<_>>());
        let parts: Vec<Bytes> = chunks(&data, 300).collect();
        assert_eq!(
            parts.iter().map(Bytes::len).collect::<Vec<_>>(),
            [300, 300, 300, 100]
        );
        assert_eq!(parts.concat(), data.to_vec());
        assert_eq!(chunks(&Bytes::new(), 300).count(), 0);
    }
}
