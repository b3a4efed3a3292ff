//! The last frame of a clip, as an image the next shot can start on.

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Ffmpeg, temp_beside};
use crate::error::{Error, Result};

/// Most bytes of one extracted frame (a 4k PNG is well below it).
pub const MAX_FRAME_BYTES: u64 = 64 * 1024 * 1024;

/// Takes the final frame of a video file as a PNG image.
///
/// [`FfmpegFrames`] is the one shipped; implement this to use another decoder.
#[async_trait]
pub trait FrameExtractor: Send + Sync + fmt::Debug {
    /// The PNG bytes of the last decoded frame of the video at `video`.
    async fn last_frame(&self, video: &Path) -> Result<Bytes>;
}

/// [`FrameExtractor`] with `ffmpeg`: decodes the last second of the clip (an accurate seek
/// from the keyframe before it) and keeps the final frame, losslessly as PNG.
#[derive(Debug, Clone, Default)]
pub struct FfmpegFrames {
    tool: Ffmpeg,
}

impl FfmpegFrames {
    /// With these programs.
    pub fn new(tool: Ffmpeg) -> Self {
        Self { tool }
    }
}

#[async_trait]
impl FrameExtractor for FfmpegFrames {
    async fn last_frame(&self, video: &Path) -> Result<Bytes> {
        // Beside the video: its folder is writable (the sink wrote there) and private to it.
        let tmp = temp_beside(video, ".last_frame.png");
        let result = async {
            self.tool
                .run_ffmpeg([
                    "-sseof".as_ref(),
                    "-1".as_ref(),
                    "-i".as_ref(),
                    video.as_os_str(),
                    "-map".as_ref(),
                    "0:v:0".as_ref(),
                    // Every decoded frame overwrites the image: the final one stays.
                    "-update".as_ref(),
                    "1".as_ref(),
                    "-c:v".as_ref(),
                    "png".as_ref(),
                    tmp.as_os_str(),
                ])
                .await?;
            let meta = tokio::fs::metadata(&tmp).await.map_err(|e| {
                Error::media(format!("ffmpeg made no frame of {}", video.display()), e)
            })?;
            if meta.len() == 0 || meta.len() > MAX_FRAME_BYTES {
                return Err(Error::media(
                    format!(
                        "the last frame of {} is {} bytes (expected 1 to {MAX_FRAME_BYTES})",
                        video.display(),
                        meta.len()
                    ),
                    std::io::Error::other("bad frame size"),
                ));
            }
            let bytes = tokio::fs::read(&tmp)
                .await
                .map_err(|e| Error::media(format!("reading {}", tmp.display()), e))?;
            if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                return Err(Error::media(
                    format!("the last frame of {} is not a PNG", video.display()),
                    std::io::Error::other("not a PNG"),
                ));
            }
            Ok(Bytes::from(bytes))
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }
}
