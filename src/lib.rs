#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use cineflow_core as core;
#[doc(inline)]
pub use cineflow_providers as providers;
#[doc(inline)]
pub use cineflow_store as store;

/// The attribute the [`VideoProvider`](core::VideoProvider), [`Store`](core::Store) and
/// [`ArtifactSink`](core::ArtifactSink) traits are written with; implement them with
/// `#[cineflow::async_trait]` and plain `async fn`s.
#[doc(no_inline)]
pub use cineflow_core::async_trait;

/// The crates whose types appear in cineflow's public API, at the versions it is built with:
/// name them from here (`cineflow::reexports::time::OffsetDateTime`) instead of adding them to
/// your `Cargo.toml` at a guessed version.
pub mod reexports {
    #[doc(no_inline)]
    pub use cineflow_core::reexports::*;
    // Empty without the features that bring the crates in (`--no-default-features`).
    #[allow(unused_imports, unreachable_pub)]
    #[doc(no_inline)]
    pub use cineflow_providers::reexports::*;
    #[allow(unused_imports, unreachable_pub)]
    #[doc(no_inline)]
    pub use cineflow_store::reexports::*;
}

/// What most programs using cineflow name: `use cineflow::prelude::*;`.
///
/// The orchestrator and its configuration, storyboards and runs, the router, the in-process
/// store and sinks, the provider contract (for writing a provider), ids and the error types,
/// [`async_trait`](macro@crate::async_trait), and with feature `testing` `MockProvider`.
///
/// ```
/// use cineflow::prelude::*;
///
/// let storyboard = Storyboard::from_json(
///     r#"{"segments":[{"segment_index":1,"prompt_text":"A city at night."}]}"#,
/// )?;
/// let spec = RunSpec::new(storyboard.id, ModelId::new("sora2")?).with_gen_count(2);
/// assert_eq!(spec.gen_count, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod prelude {
    #[cfg(feature = "testing")]
    #[doc(no_inline)]
    pub use cineflow_core::mock::{MockProvider, Step};
    #[doc(no_inline)]
    pub use cineflow_core::reexports::time::OffsetDateTime;
    #[doc(no_inline)]
    pub use cineflow_core::{
        ArtifactKey, ArtifactSink, AspectRatio, ByteStream, Capabilities, Durations, Error,
        ErrorCode, ErrorKind, Event, EventKind, GenerationRequest, JobQuery, JobState, JobStatus,
        LocalDirSink, MemorySink, MemoryStore, ModelCapabilities, ModelId, Orchestrator,
        OrchestratorConfig, PollPolicy, ProviderError, ProviderId, ProviderJob, Router, Run,
        RunHandle, RunId, RunSpec, RunStatus, Segment, Store, StoredVideo, Storyboard,
        StoryboardId, SubmitState, Task, TaskId, TaskStatus, VideoAsset, VideoProvider,
        async_trait,
    };
}
