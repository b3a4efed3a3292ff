//! The Wan models DashScope serves, and what each accepts.
//!
//! Model ids and limits: alibabacloud.com/help/en/model-studio text-to-video and
//! image-to-video API references (wan2.6-t2v and wan2.7 appear there); the other ids, the
//! reference-media limits and the wan3.0 figures are from secondary sources (*unverified*),
//! so a wrong guess is refused here, before anything is paid, rather than sent.

use cineflow_core::{AspectRatio, Durations, ModelCapabilities, Resolution};

use crate::http;

/// Which DashScope region a provider talks to: model ids, keys and base URLs must all be of
/// the same region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Beijing (`dashscope.aliyuncs.com`).
    Beijing,
    /// Singapore (`dashscope-intl.aliyuncs.com`, or a workspace's
    /// `{id}.ap-southeast-1.maas.aliyuncs.com`).
    Singapore,
    /// Virginia (`dashscope-us.aliyuncs.com`): only the `-us` model ids.
    Virginia,
}

/// How a model takes the output's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `parameters.size` `"W*H"` (older text-to-video and reference models).
    Size,
    /// `parameters.resolution` only: the video takes its first frame's shape (older
    /// image-to-video models), so the request's ratio must be `adaptive`.
    Resolution,
    /// `parameters.resolution` + `parameters.ratio` (the wan2.7 protocol; `adaptive` sends no
    /// ratio and needs a first frame).
    ResolutionRatio,
}

/// Where a model takes frames and reference media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inputs {
    /// `input.img_url` (first frame) and `input.audio_url` (one reference audio clip).
    Urls,
    /// `input.first_frame_url` + `input.last_frame_url` (key-frame models).
    KeyFrames,
    /// `input.reference_video_urls[]` (wan2.6-r2v; the prompt names them `character1…`).
    ReferenceVideos,
    /// `input.media[]` of `{type, url}` (wan2.7, wan3.0); `audio` is the type of an audio
    /// clip (`driving_audio` or `reference_audio`).
    Media { audio: &'static str },
}

http::model_with_media! {
    /// What one model accepts.
    #[derive(Debug)]
    pub(super) struct Model {
        pub(super) id: &'static str,
        pub(super) shape: Shape,
        pub(super) inputs: Inputs,
        pub(super) resolutions: &'static [Resolution],
        /// The resolution sent when the request names none (and is not pro).
        pub(super) default_resolution: Resolution,
        /// Inclusive duration range, seconds.
        pub(super) durations: (u32, u32),
        /// Longest prompt, in characters.
        pub(super) max_prompt_chars: usize,
        /// `parameters.audio` (generated sound).
        pub(super) audio: bool,
    }
}

impl Model {
    /// The region this id belongs to: `-us` ids to Virginia only, the others everywhere else.
    pub(super) fn serves(&self, region: Region) -> bool {
        self.id.ends_with("-us") == (region == Region::Virginia)
    }

    /// The aspect ratios the model honours.
    fn aspect_ratios(&self) -> Vec<AspectRatio> {
        let fixed = [
            AspectRatio::R16x9,
            AspectRatio::R9x16,
            AspectRatio::R1x1,
            AspectRatio::R4x3,
            AspectRatio::R3x4,
        ];
        match self.shape {
            Shape::Size => fixed.to_vec(),
            Shape::Resolution => vec![AspectRatio::Adaptive],
            // `adaptive` follows the first frame.
            Shape::ResolutionRatio if self.first_frame => {
                let mut all = fixed.to_vec();
                all.push(AspectRatio::Adaptive);
                all
            }
            Shape::ResolutionRatio => fixed.to_vec(),
        }
    }

    /// The capabilities of this model.
    pub(super) fn capabilities(&self) -> ModelCapabilities {
        let caps = ModelCapabilities::new(self.id)
            .with_durations(Durations::range(self.durations.0, self.durations.1))
            .with_pro(self.resolutions.contains(&Resolution::P1080))
            .with_aspect_ratios(self.aspect_ratios())
            .with_resolutions(self.resolutions.to_vec());
        self.with_media(caps)
            .with_audio(self.audio)
            .with_seed(true)
            .with_negative_prompt(true)
            .with_watermark(true)
    }
}

const HD: &[Resolution] = &[Resolution::P720, Resolution::P1080];
const ALL_HD: &[Resolution] = &[Resolution::P480, Resolution::P720, Resolution::P1080];

/// A wan2.6 text-to-video model: `size`, 2–15 s, ≤5000 characters, one audio clip.
const fn t26(id: &'static str) -> Model {
    Model {
        id,
        shape: Shape::Size,
        inputs: Inputs::Urls,
        resolutions: HD,
        default_resolution: Resolution::P720,
        durations: (2, 15),
        max_prompt_chars: 5000,
        text: true,
        first_frame: false,
        last_frame: false,
        max_images: 0,
        max_videos: 0,
        max_audio: 1,
        audio: true,
    }
}

/// A wan2.6 image-to-video model: `img_url`, `resolution`, the first frame's shape.
const fn i26(id: &'static str) -> Model {
    Model {
        shape: Shape::Resolution,
        text: false,
        first_frame: true,
        ..t26(id)
    }
}

/// An older text-to-video model: `size`, 5 s, ≤800 characters, no audio.
const fn older(id: &'static str, resolutions: &'static [Resolution], default: Resolution) -> Model {
    Model {
        resolutions,
        default_resolution: default,
        durations: (5, 5),
        max_prompt_chars: 800,
        max_audio: 0,
        audio: false,
        ..t26(id)
    }
}

/// A wan2.7 model: `resolution` + `ratio`, `media[]`, 2–15 s, 480P–1080P.
const fn v27(id: &'static str) -> Model {
    Model {
        shape: Shape::ResolutionRatio,
        inputs: Inputs::Media {
            audio: "driving_audio",
        },
        resolutions: ALL_HD,
        max_audio: 0,
        audio: false,
        ..t26(id)
    }
}

/// Every known model.
pub(super) const MODELS: &[Model] = &[
    t26("wan2.6-t2v"),
    t26("wan2.6-t2v-us"),
    i26("wan2.6-i2v"),
    i26("wan2.6-i2v-flash"),
    // Reference-to-video: up to 3 reference clips (*unverified*), 2–10 s.
    Model {
        inputs: Inputs::ReferenceVideos,
        durations: (2, 10),
        text: false,
        max_videos: 3,
        max_audio: 0,
        ..t26("wan2.6-r2v")
    },
    older(
        "wan2.2-t2v-plus",
        &[Resolution::P480, Resolution::P1080],
        Resolution::P1080,
    ),
    older("wan2.2-t2v-flash", ALL_HD, Resolution::P720),
    older(
        "wanx2.1-t2v-turbo",
        &[Resolution::P480, Resolution::P720],
        Resolution::P720,
    ),
    // First + last frame (`first_frame_url` / `last_frame_url`), 5 s (*unverified* id).
    Model {
        shape: Shape::Resolution,
        inputs: Inputs::KeyFrames,
        text: false,
        first_frame: true,
        last_frame: true,
        ..older("wan2.2-kf2v-flash", ALL_HD, Resolution::P720)
    },
    v27("wan2.7-t2v"),
    // First frame, last frame, one driving audio clip.
    Model {
        text: false,
        first_frame: true,
        last_frame: true,
        max_audio: 1,
        ..v27("wan2.7-i2v")
    },
    // Reference images and clips (limits *unverified*).
    Model {
        text: false,
        max_images: 5,
        max_videos: 3,
        ..v27("wan2.7-r2v")
    },
    // wan3.0: frames, ≤10 images, ≤5 clips, ≤5 audio clips, ≤20000 characters (*unverified*).
    Model {
        inputs: Inputs::Media {
            audio: "reference_audio",
        },
        max_prompt_chars: 20_000,
        first_frame: true,
        last_frame: true,
        max_images: 10,
        max_videos: 5,
        max_audio: 5,
        ..v27("wan3.0-video")
    },
];

/// The model `id` names in `region`.
pub(super) fn model(region: Region, id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id && m.serves(region))
}

/// The model ids of `region`, for messages.
pub(super) fn known(region: Region) -> String {
    MODELS
        .iter()
        .filter(|m| m.serves(region))
        .map(|m| m.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `parameters.size` for a resolution and a fixed ratio (the DashScope size table), or `None`
/// where the table has no entry.
pub(super) fn size(resolution: Resolution, ratio: AspectRatio) -> Option<&'static str> {
    use AspectRatio::*;
    use Resolution::*;
    Some(match (resolution, ratio) {
        (P480, R16x9) => "832*480",
        (P480, R9x16) => "480*832",
        (P480, R1x1) => "624*624",
        (P720, R16x9) => "1280*720",
        (P720, R9x16) => "720*1280",
        (P720, R1x1) => "960*960",
        (P720, R4x3) => "1088*832",
        (P720, R3x4) => "832*1088",
        (P1080, R16x9) => "1920*1080",
        (P1080, R9x16) => "1080*1920",
        (P1080, R1x1) => "1440*1440",
        (P1080, R4x3) => "1632*1248",
        (P1080, R3x4) => "1248*1632",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_ids_belong_to_virginia_only() {
        assert!(model(Region::Virginia, "wan2.6-t2v-us").is_some());
        assert!(model(Region::Virginia, "wan2.6-t2v").is_none());
        assert!(model(Region::Beijing, "wan2.6-t2v-us").is_none());
        assert!(model(Region::Singapore, "wan3.0-video").is_some());
    }

    #[test]
    fn image_to_video_models_take_the_first_frames_shape_and_text_models_a_fixed_ratio() {
        let caps = |id| model(Region::Beijing, id).unwrap().capabilities();
        assert_eq!(caps("wan2.6-i2v").aspect_ratios, [AspectRatio::Adaptive]);
        assert!(
            !caps("wan2.6-t2v")
                .aspect_ratios
                .contains(&AspectRatio::Adaptive)
        );
        assert!(
            caps("wan3.0-video")
                .aspect_ratios
                .contains(&AspectRatio::Adaptive)
        );
        let old = caps("wan2.2-t2v-plus");
        assert!(old.durations.allows(5) && !old.durations.allows(10));
        assert!(!old.audio && caps("wan2.6-t2v").audio);
        assert!(!caps("wan2.6-t2v").model_chosen_duration);
    }

    #[test]
    fn sizes_follow_the_table_and_gaps_are_none() {
        assert_eq!(size(Resolution::P720, AspectRatio::R9x16), Some("720*1280"));
        assert_eq!(size(Resolution::P480, AspectRatio::R4x3), None);
        assert_eq!(size(Resolution::K4, AspectRatio::R16x9), None);
        assert_eq!(size(Resolution::P720, AspectRatio::Adaptive), None);
    }
}
