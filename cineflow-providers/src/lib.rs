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
pub use cineflow_core::{ErrorCode, ProviderId};

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
