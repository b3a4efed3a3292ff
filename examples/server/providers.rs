//! The providers of the server and worker examples, from the environment: Seedance 2.0 when a
//! key is set, else a local stand-in that pays no vendor.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{ModelId, Router, RouterConfig, VideoProvider};
use cineflow::providers::local::{self, LocalRenderer};
use cineflow::providers::seedance::{Preset, SeedanceBuilder};

/// The logical models CineFlow's clients name, and the living model each runs on by default.
pub(crate) const CINEFLOW_ALIASES: [(&str, &str); 2] =
    [("sora2", "seedance-2"), ("sora2pro", "seedance-2")];

/// The default catalog (living models and CineFlow's retired Sora models) with `sora2` and
/// `sora2pro` as explicit aliases onto Seedance 2.0, so CineFlow's console and storyboards keep
/// working. A deployment drops the aliases with its own router configuration.
pub(crate) fn default_catalog() -> RouterConfig {
    let mut cfg = RouterConfig::default_catalog();
    for (from, to) in CINEFLOW_ALIASES {
        if let (Ok(from), Ok(to)) = (ModelId::new(from), ModelId::new(to)) {
            cfg.aliases.insert(from, to);
        }
    }
    cfg
}

/// The router: the catalog (`default`, or the file `CINEFLOW_ROUTER_CONFIG` names), Seedance when a key is set,
/// and otherwise a local stand-in on `seedance-2` and `seedance-2-fast`: the ffmpeg renderer,
/// or `MockProvider` without ffmpeg. The stand-ins keep their jobs in their own process, so
/// only a real vendor's jobs can be taken over by another worker.
pub(crate) async fn router(default: RouterConfig) -> Result<Router, Box<dyn Error>> {
    let catalog = match std::env::var("CINEFLOW_ROUTER_CONFIG") {
        Ok(path) if !path.is_empty() => RouterConfig::load(&path).await?,
        _ => default,
    };
    let preset = match std::env::var("CINEFLOW_SEEDANCE_PRESET").as_deref() {
        Ok("ark") => Preset::Ark,
        _ => Preset::ModelArk,
    };
    let mut router = Router::from_config(catalog);
    match SeedanceBuilder::preset(preset).load_env().build() {
        Ok(seedance) => {
            println!("provider: {} (Seedance)", seedance.id());
            return Ok(router.provider(Arc::new(seedance)));
        }
        Err(why) => println!("Seedance not configured: {why}"),
    }
    let (fallback, vendor_model): (Arc<dyn VideoProvider>, &str) = if LocalRenderer::is_available()
    {
        (
            Arc::new(LocalRenderer::from_env()?),
            local::DEFAULT_VENDOR_MODEL,
        )
    } else {
        let mock = MockProvider::new("mock")?
            .with_latency(Duration::from_millis(50))
            .with_timeline(vec![Step::Queued, Step::Running(50), Step::Succeeded]);
        (Arc::new(mock), "mock-video-1")
    };
    println!(
        "provider: {} serves seedance-2 (and so sora2, sora2pro): no vendor is paid",
        fallback.id()
    );
    for model in ["seedance-2", "seedance-2-fast"] {
        router = router.route(ModelId::new(model)?, Arc::clone(&fallback), vendor_model);
    }
    Ok(router)
}
