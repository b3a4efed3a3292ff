//! Which provider serves a logical model.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::{ModelId, ProviderId};
use crate::provider::{GenerationRequest, VideoProvider};

/// One way to serve a logical model: a provider and the vendor model id to ask it for.
#[derive(Clone)]
pub struct Route {
    /// The provider.
    pub provider: Arc<dyn VideoProvider>,
    /// The vendor's model id, e.g. `sora-2`.
    pub vendor_model: String,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("provider", self.provider.id())
            .field("vendor_model", &self.vendor_model)
            .finish()
    }
}

/// Maps logical models to routes, tried in the order they were added; a route whose provider's
/// capabilities reject the request is skipped.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: HashMap<ModelId, Vec<Route>>,
}

/// The provider and vendor model picked for one attempt.
#[derive(Debug, Clone)]
pub struct Pick {
    /// The route.
    pub route: Route,
    /// Why it was picked.
    pub reason: String,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `model`.
    pub fn route(
        mut self,
        model: ModelId,
        provider: Arc<dyn VideoProvider>,
        vendor_model: impl Into<String>,
    ) -> Self {
        self.routes.entry(model).or_default().push(Route {
            provider,
            vendor_model: vendor_model.into(),
        });
        self
    }

    /// Whether any route serves `model`.
    pub fn serves(&self, model: &ModelId) -> bool {
        self.routes.get(model).is_some_and(|r| !r.is_empty())
    }

    /// Whether the router has no routes at all.
    pub fn is_empty(&self) -> bool {
        self.routes.values().all(Vec::is_empty)
    }

    /// The provider with this id, if any route uses it.
    pub fn provider(&self, id: &ProviderId) -> Option<Arc<dyn VideoProvider>> {
        self.routes
            .values()
            .flatten()
            .find(|r| r.provider.id() == id)
            .map(|r| Arc::clone(&r.provider))
    }

    /// Picks the first route of `model` able to serve `req` (whose `vendor_model` is ignored and
    /// replaced by the route's). The error lists every candidate and why it was excluded.
    pub fn pick(&self, model: &ModelId, req: &GenerationRequest) -> Result<Pick> {
        let routes = self
            .routes
            .get(model)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut excluded = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let mut probe = req.clone();
            probe.vendor_model.clone_from(&route.vendor_model);
            match route.provider.capabilities().rejects(&probe) {
                None => {
                    return Ok(Pick {
                        route: route.clone(),
                        reason: format!("route {} of {} for {model}", i + 1, routes.len()),
                    });
                }
                Some(why) => excluded.push(format!(
                    "{}/{}: {why}",
                    route.provider.id(),
                    route.vendor_model
                )),
            }
        }
        Err(Error::NoProvider {
            model: model.to_string(),
            reason: if excluded.is_empty() {
                "no route configured".into()
            } else {
                excluded.join("; ")
            },
        })
    }
}
