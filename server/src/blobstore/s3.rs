//! Blobs in an S3-compatible bucket (Garage, MinIO, Ceph RGW, OSS, AWS S3) through the
//! `object_store` crate. The client runs on a small runtime of its own, so the blocking
//! threads that verify and export can wait on it, and async handlers hand it their calls:
//! its connections never belong to a runtime that may stop first.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore as _, ObjectStoreExt as _, WriteMultipart};
use tokio::runtime::{Handle, Runtime};

use super::BlobStoreError;

/// Blobs up to this size are put in one request; larger ones as a multipart upload of
/// parts this size (S3 takes parts of 5 MiB to 5 GiB).
pub const PART_BYTES: usize = 16 << 20;
/// Parts of one blob in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Where the bucket is and how to sign in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port` of the S3 API; AWS's own when empty.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region the store expects in signatures (Garage: its `s3_region`).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// `bucket.host` addressing instead of `host/bucket` (off for self-hosted stores).
    pub virtual_hosted_style: bool,
    /// Allow an `http://` endpoint (tests on 127.0.0.1; never across a network).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// The client's runtime, stopped without waiting when the last handle goes (a runtime
/// dropped inside async code would otherwise panic).
#[derive(Debug)]
struct Io(Option<Runtime>);

impl Drop for Io {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A bucket of blobs under their content addresses.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    store: Arc<AmazonS3>,
    bucket: String,
    handle: Handle,
    _io: Arc<Io>,
}

fn required(value: &str, what: &str) -> Result<(), BlobStoreError> {
    if value.trim().is_empty() {
        return Err(BlobStoreError::Config(format!("{what} is not set")));
    }
    Ok(())
}

impl S3Blobs {
    /// A client for the bucket (no request is sent yet).
    pub fn open(config: &S3Config) -> Result<Self, BlobStoreError> {
        required(&config.bucket, "the bucket (--s3-bucket, TANDEM_S3_BUCKET)")?;
        required(&config.region, "the region (--s3-region, TANDEM_S3_REGION)")?;
        required(
            &config.access_key_id,
            "the access key id (--s3-access-key-id, TANDEM_S3_ACCESS_KEY_ID)",
        )?;
        required(
            &config.secret_access_key,
            "the secret access key (TANDEM_S3_SECRET_ACCESS_KEY)",
        )?;
        // reqwest's rustls takes the process's provider: ring, as everywhere else here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_allow_http(config.allow_http);
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        let store = builder
            .build()
            .map_err(|e| BlobStoreError::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tandem-s3")
            .enable_all()
            .build()
            .map_err(|source| BlobStoreError::Io {
                path: "object store client runtime".into(),
                source,
            })?;
        Ok(Self {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            handle: runtime.handle().clone(),
            _io: Arc::new(Io(Some(runtime))),
        })
    }

    /// Asks the bucket for an object that is never there: reachable, signed in and allowed
    /// to read when the answer is "not found" (a server checks this before it serves).
    pub async fn probe(&self) -> Result<(), BlobStoreError> {
        self.run(self.head("tandem-probe/none".to_owned()))
            .await
            .map(drop)
    }

    /// `s3://bucket/key`, for messages.
    pub fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote(&self, key: &str) -> impl FnOnce(object_store::Error) -> BlobStoreError + use<> {
        let location = self.location(key);
        move |source| BlobStoreError::Remote { location, source }
    }

    /// Waits for `fut` on the client's runtime (from a blocking thread, never async code).
    pub(crate) fn block_on<T>(
        &self,
        fut: impl Future<Output = Result<T, BlobStoreError>>,
    ) -> Result<T, BlobStoreError> {
        self.handle.block_on(fut)
    }

    /// Runs `fut` on the client's runtime for async code.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, BlobStoreError>> + Send + 'static,
    ) -> Result<T, BlobStoreError> {
        self.handle
            .spawn(fut)
            .await
            .map_err(|e| BlobStoreError::Remote {
                location: self.location(""),
                source: object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                },
            })?
    }

    /// The size of the object at `key`, `None` when there is none.
    pub(crate) fn head(
        &self,
        key: String,
    ) -> impl Future<Output = Result<Option<u64>, BlobStoreError>> + Send + 'static {
        let (store, remote) = (self.store.clone(), self.remote(&key));
        async move {
            match store.head(&ObjectPath::from(key)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(remote(e)),
            }
        }
    }

    /// Puts `body` at `key` in one request.
    pub(crate) fn put(
        &self,
        key: String,
        body: Bytes,
    ) -> impl Future<Output = Result<(), BlobStoreError>> + Send + 'static {
        let (store, remote) = (self.store.clone(), self.remote(&key));
        async move {
            store
                .put(&ObjectPath::from(key), body.into())
                .await
                .map(drop)
                .map_err(remote)
        }
    }

    /// Deletes the object at `key`; none there is no error.
    pub(crate) fn delete(
        &self,
        key: String,
    ) -> impl Future<Output = Result<(), BlobStoreError>> + Send + 'static {
        let (store, remote) = (self.store.clone(), self.remote(&key));
        async move {
            match store.delete(&ObjectPath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(remote(e)),
            }
        }
    }

    /// The bytes of `range` of the object at `key`, streamed as the store sends them.
    pub(crate) async fn stream_range(
        &self,
        key: String,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, BlobStoreError> {
        if range.is_empty() {
            return Ok(futures_util::stream::empty().boxed());
        }
        let (store, remote) = (self.store.clone(), self.remote(&key));
        let got = self
            .run(async move {
                let options = GetOptions::default().with_range(Some(GetRange::Bounded(range)));
                store
                    .get_opts(&ObjectPath::from(key), options)
                    .await
                    .map_err(remote)
            })
            .await?;
        Ok(got
            .into_stream()
            .map(|r| r.map_err(io::Error::other))
            .boxed())
    }

    /// Opens the object at `key` for reading, from a blocking thread.
    pub(crate) fn open_read(&self, key: &str) -> Result<ObjectReader, BlobStoreError> {
        let (store, remote) = (self.store.clone(), self.remote(key));
        let path = ObjectPath::from(key);
        let got = self.block_on(async move { store.get(&path).await.map_err(remote) })?;
        Ok(ObjectReader {
            size: got.meta.size,
            handle: self.handle.clone(),
            stream: got.into_stream(),
            chunk: Bytes::new(),
        })
    }

    /// Puts the file `from` at `key`, in one request or as a multipart upload: the object
    /// appears only once all of it is there. Blocking.
    pub(crate) fn put_file(&self, from: &Path, key: &str) -> Result<(), BlobStoreError> {
        let io_err = |source| BlobStoreError::Io {
            path: from.to_owned(),
            source,
        };
        let mut file = File::open(from).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len <= PART_BYTES as u64 {
            let mut body = Vec::with_capacity(len as usize);
            file.read_to_end(&mut body).map_err(io_err)?;
            return self.block_on(self.put(key.to_owned(), body.into()));
        }
        let remote = self.remote(key);
        // The writer starts each part's request on the client's runtime.
        let _runtime = self.handle.enter();
        let (store, path) = (self.store.clone(), ObjectPath::from(key));
        let upload = self
            .handle
            .block_on(async move { store.put_multipart(&path).await })
            .map_err(self.remote(key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let written = (|| {
            loop {
                let mut part = Vec::with_capacity(PART_BYTES);
                let n = (&mut file)
                    .take(PART_BYTES as u64)
                    .read_to_end(&mut part)
                    .map_err(io_err)?;
                if n == 0 {
                    return Ok(());
                }
                self.handle
                    .block_on(writer.wait_for_capacity(PARTS_IN_FLIGHT))
                    .map_err(self.remote(key))?;
                writer.put(part.into());
            }
        })();
        match written {
            Ok(()) => self
                .handle
                .block_on(writer.finish())
                .map(drop)
                .map_err(remote),
            Err(e) => {
                // Parts of an upload never completed are never visible; abort frees them.
                let _ = self.handle.block_on(writer.abort());
                Err(e)
            }
        }
    }
}

/// An object's body as a blocking reader: each chunk is awaited on the client's runtime
/// as it is needed, so memory holds one chunk whatever the object's size.
pub struct ObjectReader {
    /// The object's length when it was opened.
    pub(crate) size: u64,
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}
