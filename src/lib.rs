//! # cineflow
//!
//! Storyboard-driven AI video generation across many vendors, durable and never paying twice.
//! This facade re-exports the workspace crates.

#[doc(inline)]
pub use cineflow_core as core;
#[doc(inline)]
pub use cineflow_providers as providers;
#[doc(inline)]
pub use cineflow_store as store;
