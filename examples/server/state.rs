//! What every handler shares.

use std::sync::Arc;

use cineflow::core::{Orchestrator, Store};

use crate::app::config::ServerConfig;
use crate::app::feeds::Feeds;

/// The orchestrator (and through it the store, the sink and the live router) and the settings.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Creates, starts, retries and cancels runs; its router is the live catalog.
    pub(crate) orch: Orchestrator,
    /// The settings.
    pub(crate) config: Arc<ServerConfig>,
    /// The run watchers SSE streams follow.
    pub(crate) feeds: Arc<Feeds>,
}

impl AppState {
    /// State over an orchestrator.
    pub(crate) fn new(orch: Orchestrator, config: ServerConfig) -> Self {
        Self {
            orch,
            config: Arc::new(config),
            feeds: Arc::default(),
        }
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        self.orch.store()
    }
}
