//! Videos kept in memory, for tests and demos.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ArtifactKey, ArtifactSink, FrameFormat, StoredVideo, hex};
use crate::error::Result;
use crate::provider::ByteStream;

/// Keeps videos, sidecars and last frames in memory, under the locations
/// [`LocalDirSink`](super::LocalDirSink) would use, prefixed `memory://`:
/// `memory://{storyboard_id}/Segment_{n}/{stem}.mp4`, `….json` and `…_last_frame.png`.
///
/// For tests and demos that should not touch the disk: with [`MemoryStore`](crate::MemoryStore)
/// a whole run stays in the process. A video becomes visible only once its stream ended
/// without error (nothing is kept of a failed one); writing a key again replaces it. Clones
/// share the contents. Everything is held in memory: not for real videos at scale.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// use cineflow_core::{ArtifactKey, ArtifactSink, ByteStream, MemorySink, StoryboardId, TaskId};
///
/// let sink = MemorySink::new();
/// let key = ArtifactKey {
///     storyboard_id: StoryboardId::new(),
///     task_id: TaskId::new(),
///     segment_index: 1,
///     version_index: 1,
///     file_stem: String::new(),
/// };
/// let stored = sink.put_video(&key, ByteStream::from_bytes(&b"video"[..])).await?;
/// assert_eq!(sink.get(&stored.location).as_deref(), Some(&b"video"[..]));
/// assert_eq!(sink.video(&key).as_deref(), Some(&b"video"[..]));
/// # Ok::<(), cineflow_core::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    files: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The location of a key's video: `memory://{folder}/{stem}.mp4`.
    pub fn video_location(key: &ArtifactKey) -> String {
        format!("memory://{}/{}.mp4", key.folder(), key.safe_stem())
    }

    /// The location of a key's sidecar: `memory://{folder}/{stem}.json`.
    pub fn sidecar_location(key: &ArtifactKey) -> String {
        format!("memory://{}/{}.json", key.folder(), key.safe_stem())
    }

    /// The bytes stored at `location`, if any.
    pub fn get(&self, location: &str) -> Option<Bytes> {
        self.lock().get(location).cloned()
    }

    /// The key's video, if it was stored.
    pub fn video(&self, key: &ArtifactKey) -> Option<Bytes> {
        self.get(&Self::video_location(key))
    }

    /// The key's sidecar, if it was written.
    pub fn sidecar(&self, key: &ArtifactKey) -> Option<Value> {
        let bytes = self.get(&Self::sidecar_location(key))?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every location stored, in order.
    pub fn locations(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, location: String, body: Bytes) -> StoredVideo {
        let stored = StoredVideo {
            location: location.clone(),
            sha256: hex(&Sha256::digest(&body)),
            size_bytes: body.len() as u64,
        };
        self.lock().insert(location, body);
        stored
    }
}

#[async_trait]
impl ArtifactSink for MemorySink {
    async fn put_video(&self, key: &ArtifactKey, mut body: ByteStream) -> Result<StoredVideo> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(self.put(Self::video_location(key), buf.freeze()))
    }

    async fn put_sidecar(&self, key: &ArtifactKey, sidecar: &Value) -> Result<String> {
        let body = serde_json::to_vec_pretty(sidecar)
            .map_err(|e| crate::Error::sink("serialize sidecar", e))?;
        let location = Self::sidecar_location(key);
        self.put(location.clone(), Bytes::from(body));
        Ok(location)
    }

    async fn put_last_frame(
        &self,
        key: &ArtifactKey,
        format: FrameFormat,
        image: Bytes,
    ) -> Result<StoredVideo> {
        let location = format!("memory://{}/{}", key.folder(), key.last_frame_name(format));
        Ok(self.put(location, image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;
    use crate::ids::{StoryboardId, TaskId};
    use crate::provider::ProviderError;

    fn key() -> ArtifactKey {
        ArtifactKey {
            storyboard_id: StoryboardId::new(),
            task_id: TaskId::new(),
            segment_index: 2,
            version_index: 1,
            file_stem: String::new(),
        }
    }

    #[tokio::test]
    async fn a_video_is_kept_whole_with_its_hash_and_a_failed_one_leaves_nothing() {
        let sink = MemorySink::new();
        let k = key();
        let chunks =
            futures::stream::iter([Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))]);
        let stored = sink.put_video(&k, ByteStream::new(chunks)).await.unwrap();
        assert_eq!(stored.size_bytes, 3);
        assert_eq!(stored.sha256, hex(&Sha256::digest(b"abc")));
        assert_eq!(sink.video(&k).as_deref(), Some(&b"abc"[..]));
        assert!(
            stored
                .location
                .starts_with(&format!("memory://{}/", k.folder()))
        );

        let broken = key();
        let chunks = futures::stream::iter([
            Ok(Bytes::from_static(b"ab")),
            Err(ProviderError::new(ErrorCode::Network, "reset")),
        ]);
        assert!(
            sink.put_video(&broken, ByteStream::new(chunks))
                .await
                .is_err()
        );
        assert_eq!(sink.video(&broken), None);
        assert_eq!(sink.locations(), vec![stored.location]);
    }

    #[tokio::test]
    async fn sidecars_and_last_frames_sit_next_to_the_video() {
        let sink = MemorySink::new();
        let k = key();
        let at = sink
            .put_sidecar(&k, &serde_json::json!({"local_status": "failed"}))
            .await
            .unwrap();
        assert_eq!(at, MemorySink::sidecar_location(&k));
        assert_eq!(sink.sidecar(&k).unwrap()["local_status"], "failed");
        let frame = sink
            .put_last_frame(&k, FrameFormat::Png, Bytes::from_static(b"png"))
            .await
            .unwrap();
        assert!(
            frame.location.ends_with("_last_frame.png"),
            "{}",
            frame.location
        );
        assert_eq!(sink.get(&frame.location).as_deref(), Some(&b"png"[..]));
    }
}
