//! Videos on the local file system, in CineFlow's layout.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{ArtifactKey, ArtifactSink, FrameFormat, StoredVideo};
use crate::error::{Error, Result};
use crate::provider::ByteStream;

/// Writes `{root}/{storyboard_id}/Segment_{n}/{stem}.mp4`, the `{stem}.json` sidecar and, when
/// the vendor returned one, the `{stem}_last_frame.png` last frame.
///
/// Videos are streamed to `{stem}.mp4.part`, hashed on the way, fsynced and renamed; sidecars
/// (and last frames) are written to `{name}.tmp`, fsynced and renamed; the folder is fsynced after each
/// rename. A crash never leaves a partial file under a final name.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

impl LocalDirSink {
    /// A sink rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The final path of a key's video.
    pub fn video_path(&self, key: &ArtifactKey) -> PathBuf {
        self.dir(key).join(format!("{}.mp4", key.safe_stem()))
    }

    /// The final path of a key's sidecar.
    pub fn sidecar_path(&self, key: &ArtifactKey) -> PathBuf {
        self.dir(key).join(format!("{}.json", key.safe_stem()))
    }

    /// The final path of a key's last frame in `format`.
    pub fn last_frame_path(&self, key: &ArtifactKey, format: FrameFormat) -> PathBuf {
        self.dir(key).join(key.last_frame_name(format))
    }

    fn part_path(&self, key: &ArtifactKey) -> PathBuf {
        self.dir(key).join(format!("{}.mp4.part", key.safe_stem()))
    }

    fn dir(&self, key: &ArtifactKey) -> PathBuf {
        self.root
            .join(key.storyboard_id.to_string())
            .join(format!("Segment_{}", key.segment_index))
    }

    async fn ensure_dir(&self, key: &ArtifactKey) -> Result<PathBuf> {
        let dir = self.dir(key);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::sink(format!("create {}", dir.display()), e))?;
        Ok(dir)
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let f = tokio::fs::File::open(dir)
        .await
        .map_err(|e| Error::sink(format!("open {}", dir.display()), e))?;
    f.sync_all()
        .await
        .map_err(|e| Error::sink(format!("fsync {}", dir.display()), e))
}

/// Writes `body` to `tmp`, fsyncs it, renames it to `target` and fsyncs `dir`.
async fn write_atomic(dir: &Path, tmp: &Path, target: &Path, body: &[u8]) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::sink(format!("{what} {}", tmp.display()), e);
    let mut f = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| io("create", e))?;
    f.write_all(body).await.map_err(|e| io("write", e))?;
    f.sync_all().await.map_err(|e| io("fsync", e))?;
    drop(f);
    tokio::fs::rename(tmp, target)
        .await
        .map_err(|e| io("rename", e))?;
    sync_dir(dir).await
}

async fn remove_if_exists(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::sink(format!("remove {}", path.display()), e)),
    }
}

#[async_trait]
impl ArtifactSink for LocalDirSink {
    async fn put_video(&self, key: &ArtifactKey, mut body: ByteStream) -> Result<StoredVideo> {
        let dir = self.ensure_dir(key).await?;
        let part = self.part_path(key);
        let target = self.video_path(key);
        let io =
            |what: &str, e: std::io::Error| Error::sink(format!("{what} {}", part.display()), e);
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| io("create", e))?;
        let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let written: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(|e| io("write", e))?;
            }
            out.flush().await.map_err(|e| io("flush", e))?;
            out.get_ref().sync_all().await.map_err(|e| io("fsync", e))?;
            Ok(())
        }
        .await;
        drop(out);
        if let Err(e) = written {
            remove_if_exists(&part).await?;
            return Err(e);
        }
        tokio::fs::rename(&part, &target)
            .await
            .map_err(|e| io("rename", e))?;
        sync_dir(&dir).await?;
        Ok(StoredVideo {
            location: target.display().to_string(),
            sha256: hex(&hasher.finalize()),
            size_bytes: size,
        })
    }

    async fn put_sidecar(&self, key: &ArtifactKey, sidecar: &Value) -> Result<String> {
        let dir = self.ensure_dir(key).await?;
        let target = self.sidecar_path(key);
        let tmp = dir.join(format!("{}.json.tmp", key.safe_stem()));
        let body =
            serde_json::to_vec_pretty(sidecar).map_err(|e| Error::sink("serialize sidecar", e))?;
        write_atomic(&dir, &tmp, &target, &body).await?;
        Ok(target.display().to_string())
    }

    async fn put_last_frame(
        &self,
        key: &ArtifactKey,
        format: FrameFormat,
        image: Bytes,
    ) -> Result<StoredVideo> {
        let dir = self.ensure_dir(key).await?;
        let target = self.last_frame_path(key, format);
        let tmp = dir.join(format!("{}.tmp", key.last_frame_name(format)));
        write_atomic(&dir, &tmp, &target, &image).await?;
        Ok(StoredVideo {
            location: target.display().to_string(),
            sha256: hex(&Sha256::digest(&image)),
            size_bytes: image.len() as u64,
        })
    }

    async fn cleanup_partial(&self, key: &ArtifactKey) -> Result<()> {
        remove_if_exists(&self.part_path(key)).await?;
        let tmp = self.dir(key).join(format!("{}.json.tmp", key.safe_stem()));
        remove_if_exists(&tmp).await?;
        for format in [FrameFormat::Png, FrameFormat::Jpeg, FrameFormat::WebP] {
            let tmp = format!("{}.tmp", key.last_frame_name(format));
            remove_if_exists(&self.dir(key).join(tmp)).await?;
        }
        Ok(())
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;
    use crate::ids::{StoryboardId, TaskId};
    use crate::provider::ProviderError;

    fn key() -> ArtifactKey {
        let task_id = TaskId::new();
        ArtifactKey {
            storyboard_id: StoryboardId::new(),
            task_id,
            segment_index: 2,
            version_index: 1,
            file_stem: format!("2_v1_20260111070835_ab12_{task_id}"),
        }
    }

    #[tokio::test]
    async fn videos_land_in_cineflows_layout_with_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let k = key();
        let chunks = futures::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"hello ")),
            Ok(bytes::Bytes::from_static(b"world")),
        ]);
        let stored = sink.put_video(&k, ByteStream::new(chunks)).await.unwrap();
        let expected = dir
            .path()
            .join(k.storyboard_id.to_string())
            .join("Segment_2")
            .join(format!("{}.mp4", k.file_stem));
        assert_eq!(stored.location, expected.display().to_string());
        assert_eq!(std::fs::read(&expected).unwrap(), b"hello world");
        assert_eq!(
            stored.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(stored.size_bytes, 11);
        assert!(!sink.part_path(&k).exists());
    }

    #[tokio::test]
    async fn a_failing_stream_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let k = key();
        let chunks = futures::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"half")),
            Err(ProviderError::new(ErrorCode::Network, "reset")),
        ]);
        let err = sink
            .put_video(&k, ByteStream::new(chunks))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Provider(_)));
        assert!(!sink.video_path(&k).exists());
        assert!(!sink.part_path(&k).exists());
    }

    #[tokio::test]
    async fn sidecars_are_pretty_utf8_json() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let k = key();
        let loc = sink
            .put_sidecar(&k, &serde_json::json!({"full_prompt": "小美 @xiaomei"}))
            .await
            .unwrap();
        let text = std::fs::read_to_string(loc).unwrap();
        assert!(text.contains("小美 @xiaomei"), "{text}");
        assert!(text.contains('\n'));
    }

    #[tokio::test]
    async fn a_last_frame_lands_next_to_the_video_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let k = key();
        let png = Bytes::from_static(crate::mock::SAMPLE_PNG);
        let stored = sink
            .put_last_frame(&k, FrameFormat::Png, png.clone())
            .await
            .unwrap();
        let expected = sink
            .video_path(&k)
            .with_file_name(format!("{}_last_frame.png", k.file_stem));
        assert_eq!(stored.location, expected.display().to_string());
        assert_eq!(std::fs::read(&expected).unwrap(), png);
        assert_eq!(stored.size_bytes, png.len() as u64);
        assert_eq!(stored.sha256, hex(&Sha256::digest(&png)));
        let names: Vec<_> = std::fs::read_dir(expected.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }

    #[test]
    fn a_tampered_stem_cannot_escape_the_folder() {
        let mut k = key();
        k.file_stem = "../../etc/passwd".into();
        let sink = LocalDirSink::new("/tmp/root");
        let p = sink.video_path(&k);
        assert!(!p.display().to_string().contains(".."));
        assert!(p.starts_with("/tmp/root"));
    }
}
