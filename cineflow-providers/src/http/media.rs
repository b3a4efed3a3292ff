//! What the model tables of Seedance, Wan and MiniMax say about the media a request may carry
//! (frames and references), declared and turned into capabilities once.

// Only the adapters with a model table use this: a build without them leaves it unused.
#![allow(unused_macros)]

/// Declares an adapter's model-table row: the struct given, with the adapter's own fields,
/// followed by the fields every such table has for the media a request may carry (`text`,
/// `first_frame`, `last_frame`, `max_images`, `max_videos`, `max_audio`), and its
/// `with_media(caps)`, which sets those on a
/// [`ModelCapabilities`](cineflow_core::ModelCapabilities). Each row states them (a `const fn`
/// per family, `..family(…)` for what differs), e.g.
/// `http::model_with_media! { pub(super) struct Model { pub(super) id: &'static str, } }`.
macro_rules! model_with_media {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_attr:meta])* $field_vis:vis $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $($(#[$field_attr])* $field_vis $field: $ty,)*
            /// Whether a request may carry neither a frame nor a reference (text-to-video).
            pub(super) text: bool,
            /// Whether a first frame is accepted.
            pub(super) first_frame: bool,
            /// Whether a last frame is accepted.
            pub(super) last_frame: bool,
            /// How many reference images are accepted.
            pub(super) max_images: u32,
            /// How many reference videos are accepted.
            pub(super) max_videos: u32,
            /// How many reference audio clips are accepted.
            pub(super) max_audio: u32,
        }

        impl $name {
            /// `caps` with the media this model accepts: which frames, how many references.
            fn with_media(
                &self,
                caps: cineflow_core::ModelCapabilities,
            ) -> cineflow_core::ModelCapabilities {
                caps.with_first_frame(self.first_frame)
                    .with_last_frame(self.last_frame)
                    .with_max_reference_images(self.max_images)
                    .with_max_reference_videos(self.max_videos)
                    .with_max_reference_audio(self.max_audio)
            }
        }
    };
}
pub(crate) use model_with_media;
