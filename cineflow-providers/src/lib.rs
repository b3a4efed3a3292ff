//! # cineflow-providers
//!
//! Vendor adapters implementing cineflow's [`VideoProvider`] contract. Each adapter lives in its
//! own module behind its own cargo feature.
//!
//! The contract types are re-exported here so an adapter crate needs only this dependency.

pub use cineflow_core::provider::{
    ByteStream, Capabilities, GenerationRequest, JobState, JobStatus, ProviderError, ProviderJob,
    SubmitState, VideoAsset, VideoProvider, VideoProviderExt, redact_url,
};
pub use cineflow_core::{ErrorCode, ProviderId};
