#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use cineflow_core as core;
#[doc(inline)]
pub use cineflow_providers as providers;
#[doc(inline)]
pub use cineflow_store as store;
