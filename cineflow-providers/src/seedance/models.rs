//! The Seedance models each preset serves, and what each accepts.

use cineflow_core::{AspectRatio, Durations, ModelCapabilities, Resolution};

use crate::http;

/// Which platform: the model ids differ (`doubao-…` on Volcengine Ark, `dreamina-…` /
/// `seedance-…` on BytePlus ModelArk), and keys are not interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Volcengine Ark (China).
    Ark,
    /// BytePlus ModelArk (international).
    ModelArk,
}

http::model_with_media! {
    /// What one model family accepts.
    #[derive(Debug)]
    pub(super) struct Model {
        /// The Volcengine Ark id.
        pub(super) ark: &'static str,
        /// The BytePlus ModelArk id.
        pub(super) modelark: &'static str,
        pub(super) resolutions: &'static [Resolution],
        /// Inclusive duration range, seconds.
        pub(super) durations: (u32, u32),
        /// `duration: -1`: the model picks the length within `durations` (2.x).
        pub(super) model_chosen_duration: bool,
        /// `generate_audio`.
        pub(super) audio: bool,
        /// `seed` (sent to 1.x models only: 2.x lists it as unsupported).
        pub(super) seed: bool,
        /// `service_tier: flex` (2.x are online-only).
        pub(super) flex: bool,
        /// First / last frame requests need `ratio: adaptive` (2.5, *unverified*).
        pub(super) frames_need_adaptive: bool,
    }
}

impl Model {
    /// The id on `preset`.
    pub(super) fn id(&self, preset: Preset) -> &'static str {
        match preset {
            Preset::Ark => self.ark,
            Preset::ModelArk => self.modelark,
        }
    }

    /// The capabilities of this model on `preset`.
    pub(super) fn capabilities(&self, preset: Preset) -> ModelCapabilities {
        let caps = ModelCapabilities::new(self.id(preset))
            .with_durations(Durations::range(self.durations.0, self.durations.1))
            .with_model_chosen_duration(self.model_chosen_duration)
            // A pro request takes 1080p where the model has it.
            .with_pro(self.resolutions.contains(&Resolution::P1080))
            .with_aspect_ratios(AspectRatio::ALL.to_vec())
            .with_resolutions(self.resolutions.to_vec());
        self.with_media(caps)
            .with_audio(self.audio)
            .with_seed(self.seed)
            .with_negative_prompt(false)
            .with_max_prompt_utf16(None)
            .with_return_last_frame(true)
            .with_watermark(true)
            .with_flex(self.flex)
    }
}

const UP_TO_4K: &[Resolution] = &[
    Resolution::P480,
    Resolution::P720,
    Resolution::P1080,
    Resolution::K4,
];
const UP_TO_1080: &[Resolution] = &[Resolution::P480, Resolution::P720, Resolution::P1080];
const UP_TO_720: &[Resolution] = &[Resolution::P480, Resolution::P720];

/// A 2.0-generation model: multimodal references (≤9 images, ≤3 videos, ≤3 audio clips),
/// audio, 4–15 s or model-chosen (`duration: -1`), online only, no seed.
const fn v2(
    ark: &'static str,
    modelark: &'static str,
    resolutions: &'static [Resolution],
) -> Model {
    Model {
        ark,
        modelark,
        resolutions,
        durations: (4, 15),
        model_chosen_duration: true,
        text: true,
        first_frame: true,
        last_frame: true,
        max_images: 9,
        max_videos: 3,
        max_audio: 3,
        audio: true,
        seed: false,
        flex: false,
        frames_need_adaptive: false,
    }
}

/// A 1.x model: 2–12 s (*unverified*), seed, flex tier, no reference video or audio, no
/// model-chosen length (documented for 2.x only).
const fn v1(ark: &'static str, modelark: &'static str, last_frame: bool, audio: bool) -> Model {
    Model {
        ark,
        modelark,
        resolutions: UP_TO_1080,
        durations: (2, 12),
        model_chosen_duration: false,
        text: true,
        first_frame: true,
        last_frame,
        max_images: 0,
        max_videos: 0,
        max_audio: 0,
        audio,
        seed: true,
        flex: true,
        frames_need_adaptive: false,
    }
}

/// Every known model (the Ark and ModelArk model lists, late 2026).
pub(super) const MODELS: &[Model] = &[
    v2(
        "doubao-seedance-2-0-260128",
        "dreamina-seedance-2-0-260128",
        UP_TO_4K,
    ),
    v2(
        "doubao-seedance-2-0-fast-260128",
        "dreamina-seedance-2-0-fast-260128",
        UP_TO_720,
    ),
    v2(
        "doubao-seedance-2-0-mini-260615",
        "dreamina-seedance-2-0-mini-260615",
        UP_TO_720,
    ),
    // 2.5 (*unverified*): ≤30 s, ≤30 reference images, ≤10 videos / audio clips, no 4k, and
    // first/last-frame requests need `ratio: adaptive`.
    Model {
        durations: (4, 30),
        max_images: 30,
        max_videos: 10,
        max_audio: 10,
        frames_need_adaptive: true,
        ..v2(
            "doubao-seedance-2-5-260628",
            "dreamina-seedance-2-5-260628",
            UP_TO_1080,
        )
    },
    v1(
        "doubao-seedance-1-5-pro-251215",
        "seedance-1-5-pro-251215",
        true,
        true,
    ),
    v1(
        "doubao-seedance-1-0-pro-250528",
        "seedance-1-0-pro-250428",
        true,
        false,
    ),
    v1(
        "doubao-seedance-1-0-pro-fast-251015",
        "seedance-1-0-pro-fast-250528",
        false,
        false,
    ),
    Model {
        first_frame: false,
        ..v1(
            "doubao-seedance-1-0-lite-t2v-250428",
            "seedance-1-0-lite-t2v-250219",
            false,
            false,
        )
    },
    // Lite i2v: a first frame (and last frame), or 1–4 reference images (*unverified*).
    Model {
        text: false,
        max_images: 4,
        ..v1(
            "doubao-seedance-1-0-lite-i2v-250428",
            "seedance-1-0-lite-i2v-250219",
            true,
            false,
        )
    },
];

/// The model `id` names on `preset`.
pub(super) fn model(preset: Preset, id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id(preset) == id)
}

/// The model ids of `preset`, for messages.
pub(super) fn known(preset: Preset) -> String {
    MODELS
        .iter()
        .map(|m| m.id(preset))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The model `id` names on the *other* preset, if any (a CN id sent to BytePlus, say).
pub(super) fn on_other_preset(preset: Preset, id: &str) -> bool {
    let other = match preset {
        Preset::Ark => Preset::ModelArk,
        Preset::ModelArk => Preset::Ark,
    };
    model(other, id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_preset_has_its_own_ids_and_none_is_shared() {
        for m in MODELS {
            assert!(m.ark.starts_with("doubao-seedance-"), "{}", m.ark);
            assert!(
                m.modelark.starts_with("dreamina-seedance-") || m.modelark.starts_with("seedance-"),
                "{}",
                m.modelark
            );
            assert!(model(Preset::Ark, m.modelark).is_none());
            assert!(on_other_preset(Preset::Ark, m.modelark));
        }
    }

    #[test]
    fn seedance_2_0_serves_480p_to_4k_and_fast_and_mini_stop_at_720p() {
        let caps = |id| {
            model(Preset::ModelArk, id)
                .unwrap()
                .capabilities(Preset::ModelArk)
        };
        let full = caps("dreamina-seedance-2-0-260128");
        assert_eq!(full.resolutions, UP_TO_4K);
        assert!(full.durations.allows(4) && full.durations.allows(15));
        assert!(!full.durations.allows(3) && !full.durations.allows(16));
        assert!(!full.seed);
        for id in [
            "dreamina-seedance-2-0-fast-260128",
            "dreamina-seedance-2-0-mini-260615",
        ] {
            assert_eq!(caps(id).resolutions, UP_TO_720, "{id}");
            assert!(!caps(id).pro, "{id}");
        }
        let old = caps("seedance-1-0-pro-250428");
        assert!(old.seed && old.durations.allows(2) && old.max_reference_videos == 0);
    }
}
