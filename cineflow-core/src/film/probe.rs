//! What `ffprobe` says of a clip.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Ffmpeg;
use crate::error::{Error, Result};

/// The streams of a clip that decide whether clips can be joined without re-encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipInfo {
    /// Length in seconds (the container's).
    pub duration_s: f64,
    /// The video codec, e.g. `h264`.
    pub video_codec: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// The frame rate as ffprobe writes it, e.g. `24/1`.
    pub frame_rate: String,
    /// The pixel format, e.g. `yuv420p`.
    pub pix_fmt: String,
    /// The audio codec, when the clip has sound.
    pub audio_codec: Option<String>,
    /// Audio sample rate and channels, when the clip has sound.
    pub audio_format: Option<(u32, u32)>,
}

impl ClipInfo {
    /// Reads the clip at `path`.
    pub async fn probe(ffmpeg: &Ffmpeg, path: &Path) -> Result<Self> {
        let out = ffmpeg
            .run_ffprobe([
                "-show_entries".as_ref(),
                "stream=codec_type,codec_name,width,height,pix_fmt,r_frame_rate,sample_rate,channels:format=duration".as_ref(),
                "-of".as_ref(),
                "json".as_ref(),
                path.as_os_str(),
            ])
            .await?;
        Self::from_json(&out).map_err(|why| {
            Error::media(
                format!("ffprobe of {}: {why}", path.display()),
                std::io::Error::other(why.clone()),
            )
        })
    }

    /// Parses ffprobe's JSON; the first video and audio streams count.
    fn from_json(out: &[u8]) -> std::result::Result<Self, String> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            streams: Vec<Stream>,
            format: Option<Format>,
        }
        #[derive(Deserialize)]
        struct Stream {
            codec_type: Option<String>,
            codec_name: Option<String>,
            width: Option<u32>,
            height: Option<u32>,
            pix_fmt: Option<String>,
            r_frame_rate: Option<String>,
            sample_rate: Option<String>,
            channels: Option<u32>,
        }
        #[derive(Deserialize)]
        struct Format {
            duration: Option<String>,
        }
        let doc: Doc = serde_json::from_slice(out).map_err(|e| format!("unreadable JSON: {e}"))?;
        let video = doc
            .streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("video"))
            .ok_or("no video stream")?;
        let audio = doc
            .streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("audio"));
        let duration_s = doc
            .format
            .and_then(|f| f.duration)
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
            .ok_or("no duration")?;
        let need = |v: Option<&String>, what: &str| v.cloned().ok_or(format!("no video {what}"));
        Ok(Self {
            duration_s,
            video_codec: need(video.codec_name.as_ref(), "codec")?,
            width: video.width.filter(|w| *w > 0).ok_or("no video width")?,
            height: video.height.filter(|h| *h > 0).ok_or("no video height")?,
            frame_rate: need(video.r_frame_rate.as_ref(), "frame rate")?,
            pix_fmt: need(video.pix_fmt.as_ref(), "pixel format")?,
            audio_codec: audio.and_then(|a| a.codec_name.clone()),
            audio_format: audio
                .and_then(|a| Some((a.sample_rate.as_deref()?.parse().ok()?, a.channels?))),
        })
    }

    /// Whether a clip of `self` and one of `other` join with a stream copy (same codecs, size,
    /// frame rate, pixel format and audio layout).
    pub fn joins_by_copy_with(&self, other: &Self) -> bool {
        self.video_codec == other.video_codec
            && (self.width, self.height) == (other.width, other.height)
            && self.frame_rate == other.frame_rate
            && self.pix_fmt == other.pix_fmt
            && self.audio_codec == other.audio_codec
            && self.audio_format == other.audio_format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_json_is_read_and_a_clip_without_video_is_an_error() {
        let json = br#"{"streams":[
            {"codec_name":"h264","codec_type":"video","width":640,"height":360,"pix_fmt":"yuv420p","r_frame_rate":"24/1"},
            {"codec_name":"aac","codec_type":"audio","sample_rate":"48000","channels":2}],
            "format":{"duration":"2.000000"}}"#;
        let info = ClipInfo::from_json(json).unwrap();
        assert_eq!((info.width, info.height, info.duration_s), (640, 360, 2.0));
        assert_eq!(info.audio_format, Some((48_000, 2)));
        assert!(info.joins_by_copy_with(&info));
        let silent = ClipInfo {
            audio_codec: None,
            audio_format: None,
            ..info.clone()
        };
        assert!(!info.joins_by_copy_with(&silent));
        let audio_only =
            br#"{"streams":[{"codec_type":"audio","codec_name":"aac"}],"format":{"duration":"1"}}"#;
        assert_eq!(
            ClipInfo::from_json(audio_only).unwrap_err(),
            "no video stream"
        );
        assert!(ClipInfo::from_json(b"not json").is_err());
    }
}
