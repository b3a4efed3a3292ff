//! Videos in object storage: S3 and S3-compatible services (Aliyun OSS, Tencent COS, MinIO…),
//! Google Cloud Storage, Azure Blob Storage, or anything else the [`object_store`] crate serves.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cineflow_core::sink::{ArtifactKey, ArtifactSink, FrameFormat, StoredVideo};
use cineflow_core::{ByteStream, Error, ErrorCode, Result};
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

/// The smallest part S3 accepts (except the last one).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Writes `{prefix}/{storyboard_id}/Segment_{n}/{stem}.mp4` and `.json` to an object store.
///
/// Videos are streamed in multipart uploads (`part_size` bytes at a time, a few parts in flight:
/// memory stays bounded whatever the video's size) while their sha256 is computed. After the
/// upload the stored object is checked: its size always, and — unless turned off with
/// [`with_read_back_verification(false)`](Self::with_read_back_verification) — its content, read
/// back and hashed. A video that fails the check is deleted and the write fails with an error;
/// the orchestrator then records `upload_failed` (retryable) and never a vendor URL as the video.
#[derive(Clone)]
pub struct ObjectStoreSink {
    store: Arc<dyn ObjectStore>,
    base: String,
    prefix: Path,
    part_size: usize,
    read_back: bool,
}

impl fmt::Debug for ObjectStoreSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreSink")
            .field("store", &self.store.to_string())
            .field("base", &self.base)
            .field("prefix", &self.prefix.as_ref())
            .field("part_size", &self.part_size)
            .field("read_back", &self.read_back)
            .finish()
    }
}

/// Settings for an S3-compatible endpoint (MinIO, Aliyun OSS, Tencent COS, Ceph…).
#[derive(Clone, Default)]
pub struct S3Config {
    /// Endpoint URL, e.g. `https://oss-cn-hangzhou.aliyuncs.com` or `http://127.0.0.1:9000`.
    /// Empty: AWS itself.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Region. Default `us-east-1`.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never shown by `Debug`).
    pub secret_access_key: String,
    /// Virtual-hosted-style requests (`bucket.endpoint`), as OSS and COS require. Default false
    /// (path style, as MinIO expects).
    pub virtual_hosted: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field("virtual_hosted", &self.virtual_hosted)
            .finish()
    }
}

fn config_err(what: &str, e: impl fmt::Display) -> Error {
    Error::Config(format!("{what}: {e}"))
}

impl ObjectStoreSink {
    /// A sink over any [`ObjectStore`]; `base` (e.g. `s3://bucket`) prefixes reported locations.
    pub fn new(store: Arc<dyn ObjectStore>, base: impl Into<String>) -> Self {
        Self {
            store,
            base: base.into().trim_end_matches('/').to_owned(),
            prefix: Path::default(),
            part_size: MIN_PART_SIZE,
            read_back: true,
        }
    }

    /// A sink from a URL (`s3://bucket/prefix`, `gs://bucket`, `az://container`, `file:///dir`,
    /// `memory:///`) and backend options (e.g. `("aws_endpoint", "…")`, `("aws_region", "…")`;
    /// see [`object_store::parse_url_opts`]).
    pub fn from_url<I, K, V>(url: &str, options: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let parsed = url::Url::parse(url).map_err(|e| config_err("invalid object store URL", e))?;
        let (store, prefix) = object_store::parse_url_opts(&parsed, options)
            .map_err(|e| config_err("cannot open the object store", e))?;
        let base = format!(
            "{}://{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default()
        );
        Ok(Self::new(Arc::from(store), base).with_prefix(prefix.as_ref()))
    }

    /// A sink on an S3-compatible endpoint.
    pub fn s3_compatible(config: &S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::Config("S3 bucket must be set".into()));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(if config.region.is_empty() {
                "us-east-1"
            } else {
                &config.region
            })
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(config.virtual_hosted);
        if !config.endpoint.is_empty() {
            b = b
                .with_endpoint(&config.endpoint)
                .with_allow_http(config.endpoint.starts_with("http://"));
        }
        let store = b
            .build()
            .map_err(|e| config_err("invalid S3 settings", e))?;
        Ok(Self::new(
            Arc::new(store),
            format!("s3://{}", config.bucket),
        ))
    }

    /// Puts every object under this key prefix.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Path::from(prefix.trim_matches('/'));
        self
    }

    /// Multipart part size (at least [`MIN_PART_SIZE`]). Default 5 MiB.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// Whether to read each uploaded video back and compare its sha256. Default true.
    pub fn with_read_back_verification(mut self, on: bool) -> Self {
        self.read_back = on;
        self
    }

    fn path(&self, key: &ArtifactKey, ext: &str) -> Path {
        self.named(key, &format!("{}.{ext}", key.safe_stem()))
    }

    /// The object `name` in the key's folder.
    fn named(&self, key: &ArtifactKey, name: &str) -> Path {
        let rel = format!("{}/{name}", key.folder());
        if self.prefix.as_ref().is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix.as_ref()))
        }
    }

    fn location(&self, path: &Path) -> String {
        format!("{}/{}", self.base, path.as_ref())
    }

    async fn verify(&self, path: &Path, size: u64, sha256: &str) -> Result<()> {
        let meta = self
            .store
            .head(path)
            .await
            .map_err(|e| Error::sink(format!("head {path}"), e))?;
        if meta.size != size {
            return Err(Error::Sink {
                message: format!(
                    "stored object {path} has {} bytes, uploaded {size}",
                    meta.size
                ),
                source: None,
            });
        }
        if self.read_back {
            let mut stream = self
                .store
                .get(path)
                .await
                .map_err(|e| Error::sink(format!("read back {path}"), e))?
                .into_stream();
            let mut h = Sha256::new();
            while let Some(chunk) = stream.next().await {
                h.update(chunk.map_err(|e| Error::sink(format!("read back {path}"), e))?);
            }
            let got = format!("{:x}", h.finalize());
            if got != sha256 {
                return Err(Error::Sink {
                    message: format!("stored object {path} has sha256 {got}, uploaded {sha256}"),
                    source: None,
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ArtifactSink for ObjectStoreSink {
    async fn put_video(&self, key: &ArtifactKey, mut body: ByteStream) -> Result<StoredVideo> {
        let path = self.path(key, "mp4");
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| Error::sink(format!("start upload of {path}"), e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(Error::Provider(e));
                }
            };
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(Error::sink(format!("upload of {path}"), e));
            }
            hasher.update(&chunk);
            size += chunk.len() as u64;
            writer.write(&chunk);
        }
        writer
            .finish()
            .await
            .map_err(|e| Error::sink(format!("finish upload of {path}"), e))?;
        let sha256 = format!("{:x}", hasher.finalize());
        if let Err(e) = self.verify(&path, size, &sha256).await {
            let _ = self.store.delete(&path).await;
            return Err(e);
        }
        Ok(StoredVideo {
            location: self.location(&path),
            sha256,
            size_bytes: size,
        })
    }

    async fn put_sidecar(&self, key: &ArtifactKey, sidecar: &serde_json::Value) -> Result<String> {
        let path = self.path(key, "json");
        let body =
            serde_json::to_vec_pretty(sidecar).map_err(|e| Error::sink("serialize sidecar", e))?;
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(|e| Error::sink(format!("upload {path}"), e))?;
        Ok(self.location(&path))
    }

    /// Uploads the last frame in one `PUT` (it is small) as `{stem}_last_frame.{ext}`.
    async fn put_last_frame(
        &self,
        key: &ArtifactKey,
        format: FrameFormat,
        image: Bytes,
    ) -> Result<StoredVideo> {
        let path = self.named(key, &key.last_frame_name(format));
        let sha256 = format!("{:x}", Sha256::digest(&image));
        let size = image.len() as u64;
        self.store
            .put(&path, PutPayload::from(image))
            .await
            .map_err(|e| Error::sink(format!("upload {path}"), e))?;
        Ok(StoredVideo {
            location: self.location(&path),
            sha256,
            size_bytes: size,
        })
    }

    fn failure_code(&self) -> ErrorCode {
        ErrorCode::UploadFailed
    }
}
