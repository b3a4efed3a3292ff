//! # cineflow-providers
//!
//! Vendor adapters implementing cineflow's [`VideoProvider`] contract. Each adapter lives in its
//! own module behind its own cargo feature.
//!
//! The contract types are re-exported here so an adapter crate needs only this dependency.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobQuery, JobState, JobStatus, ProviderError,
    ProviderJob, SubmitState, VideoAsset, VideoProvider, VideoProviderExt, redact_url,
};
pub use cineflow_core::{ErrorCode, ProviderId, async_trait};

/// The crates whose types appear in this crate's public API, at the versions it is built with
/// (cineflow-core's own are in `cineflow_core::reexports`).
///
/// | crate | where its types appear |
/// |---|---|
/// | `reqwest` (feature `http`) | `HttpBuilder::with_http_client`, `http::Endpoint::client`, `http::transport_error`, `http::Answer`'s headers |
/// | `url` (feature `http`) | `http::Endpoint::base`, `http::base_url`, `http::join` |
/// | `wiremock` (feature `conformance`) | the conformance suite's `Harness` |
pub mod reexports {
    #[cfg(feature = "http")]
    #[doc(no_inline)]
    pub use reqwest;
    #[cfg(feature = "http")]
    #[doc(no_inline)]
    pub use url;
    #[cfg(feature = "conformance")]
    #[doc(no_inline)]
    pub use wiremock;
}

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "fal")]
pub mod fal;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub use http::{ApiKeyBuilder, HttpBuilder};
#[cfg(feature = "jimeng")]
pub mod jimeng;
#[cfg(feature = "kling")]
pub mod kling;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "minimax")]
pub mod minimax;
#[cfg(feature = "openai_compat")]
pub mod openai_compat;
#[cfg(feature = "openrouter")]
pub mod openrouter;
#[cfg(feature = "runway")]
pub mod runway;
#[cfg(feature = "seedance")]
pub mod seedance;
#[cfg(feature = "sorahk")]
pub mod sorahk;
#[cfg(feature = "wan")]
pub mod wan;
#[cfg(feature = "webhooks")]
pub mod webhook;
