//! Guides: longer explanations than an item's own docs, with code.
//!
//! - [`provider`]: write your own provider — an adapter for a vendor cineflow does not ship.
//! - `testing` (feature `testing`): test code that uses cineflow quickly — `MockProvider` under
//!   paused time, run events that end, an in-memory store and sink.

#[doc = include_str!("provider.md")]
pub mod provider {}

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[doc = include_str!("testing.md")]
pub mod testing {}
