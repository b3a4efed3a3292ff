//! The MiniMax Hailuo models, the API each is served on, and what each accepts.
//!
//! V1 ids and limits: the official CLI `MiniMax-AI/cli` (`src/types/api.ts`) and
//! platform.minimax.io's video-generation pages; the V1 model table and the V2 (MiniMax-H3)
//! limits come from secondary sources (*unverified*), so a wrong guess is refused here,
//! before anything is paid, rather than sent.

use cineflow_core::{AspectRatio, Durations, ModelCapabilities, Resolution};

use crate::http;

/// Which host a provider talks to (keys are not interchangeable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// International (`api.minimax.io`).
    Intl,
    /// China (`api.minimaxi.com`).
    China,
}

/// Which video API serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    /// `POST /v1/video_generation`, `GET /v1/query/video_generation`, `GET /v1/files/retrieve`.
    V1,
    /// `POST /v2/video_generation` (`content[]`), `GET /v2/query/video_generation/{id}`.
    V2,
}

http::model_with_media! {
    /// What one model accepts. Its reference images are `subject_reference` character images
    /// on V1, `reference_image` items on V2.
    #[derive(Debug)]
    pub(super) struct Model {
        pub(super) id: &'static str,
        pub(super) api: Api,
        /// Durations (seconds) the model renders.
        pub(super) durations: &'static [u32],
        /// Resolutions a request may name (`1080P` on V1 Hailuo models: 6 s only).
        pub(super) resolutions: &'static [Resolution],
    }
}

impl Model {
    /// The capabilities of this model.
    pub(super) fn capabilities(&self) -> ModelCapabilities {
        let aspect_ratios = match self.api {
            // V1 renders the first frame's shape (adaptive), or 16:9 from text (*unverified*).
            Api::V1 => [
                (self.text, AspectRatio::R16x9),
                (
                    self.first_frame || self.max_images > 0,
                    AspectRatio::Adaptive,
                ),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, r)| *r)
            .collect(),
            Api::V2 => AspectRatio::ALL.to_vec(),
        };
        let caps = ModelCapabilities::new(self.id)
            .with_durations(Durations::set(self.durations.to_vec()))
            .with_pro(self.resolutions.contains(&Resolution::P1080))
            .with_aspect_ratios(aspect_ratios)
            .with_resolutions(self.resolutions.to_vec());
        self.with_media(caps).with_watermark(true)
    }
}

/// The longest prompt, in characters (V1 and V2 alike).
pub const MAX_PROMPT_CHARS: usize = 2000;

/// A V1 model: 6 s at 720P, nothing else.
const fn v1(id: &'static str, text: bool, first_frame: bool) -> Model {
    Model {
        id,
        api: Api::V1,
        durations: &[6],
        resolutions: &[Resolution::P720],
        text,
        first_frame,
        last_frame: false,
        max_images: 0,
        max_videos: 0,
        max_audio: 0,
    }
}

/// A Hailuo 02 / 2.3 model: 6 or 10 s at the default 768P, or 6 s at 1080P.
const fn hailuo(id: &'static str, text: bool, last_frame: bool) -> Model {
    Model {
        durations: &[6, 10],
        resolutions: &[Resolution::P1080],
        last_frame,
        ..v1(id, text, true)
    }
}

/// A V2 model: `content[]` with frames or references, 5–15 s (*unverified*).
const fn v2(id: &'static str, resolutions: &'static [Resolution]) -> Model {
    Model {
        id,
        api: Api::V2,
        durations: &[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        resolutions,
        text: true,
        first_frame: true,
        last_frame: true,
        max_images: 4,
        max_videos: 1,
        max_audio: 1,
    }
}

/// Every known model.
pub(super) const MODELS: &[Model] = &[
    hailuo("MiniMax-Hailuo-2.3", true, false),
    // Image-to-video only.
    hailuo("MiniMax-Hailuo-2.3-Fast", false, false),
    // The only V1 model with a last frame.
    hailuo("MiniMax-Hailuo-02", true, true),
    v1("T2V-01-Director", true, false),
    v1("T2V-01", true, false),
    v1("I2V-01-Director", false, true),
    v1("I2V-01-live", false, true),
    v1("I2V-01", false, true),
    // Subject reference: one character image.
    Model {
        max_images: 1,
        ..v1("S2V-01", false, false)
    },
    // 768P (default) or 2K: neither is a resolution a request can name.
    v2("MiniMax-H3", &[]),
    // 480P or 768P (default).
    v2("MiniMax-H3-Max", &[Resolution::P480]),
];

/// The model `id` names.
pub(super) fn model(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// Every model id, for messages.
pub(super) fn known() -> String {
    MODELS.iter().map(|m| m.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_serves_h3_and_v1_the_rest() {
        assert_eq!(model("MiniMax-H3").unwrap().api, Api::V2);
        assert_eq!(model("MiniMax-Hailuo-02").unwrap().api, Api::V1);
        assert!(
            model("minimax-hailuo-02").is_none(),
            "ids are case-sensitive"
        );
    }

    #[test]
    fn hailuo_02_alone_takes_a_last_frame_and_fast_needs_an_image() {
        let caps = |id| model(id).unwrap().capabilities();
        assert!(caps("MiniMax-Hailuo-02").last_frame);
        assert!(!caps("MiniMax-Hailuo-2.3").last_frame);
        assert!(!model("MiniMax-Hailuo-2.3-Fast").unwrap().text);
        let h = caps("MiniMax-Hailuo-2.3");
        assert!(h.durations.allows(6) && h.durations.allows(10) && !h.durations.allows(5));
        assert!(h.pro && !caps("T2V-01").pro);
        assert!(caps("MiniMax-H3").durations.allows(15));
        assert!(!caps("MiniMax-H3").model_chosen_duration);
    }
}
