//! Providers: configure every vendor adapter from the environment, route CineFlow's logical
//! model `sora2` through the configured ones, and run one segment of the demo storyboard.
//!
//! ```text
//! cargo run --example providers
//! ```
//!
//! Each adapter is built with its `from_env()`; the example prints which ones are configured
//! and, for the others, what is missing (never a key). Routes for `sora2` start from CineFlow's
//! seed catalog (`RouterConfig::cineflow_seed()`: Sora.hk, then OpenAI, then AIHubMix) followed by
//! the other configured adapters, and always end with the local ffmpeg renderer — or
//! `MockProvider` when ffmpeg is missing — so the example runs with no key at all.
//!
//! Segment 1 of `examples/storyboards/cineflow_demo.json` (10 s, horizontal) then goes to the
//! first configured provider that can serve it (the router's priority order; every seeded Sora
//! route is past its 2026-09-24 sunset, so those are skipped — the added routes keep `sora2` alive
//! here; see the README's living catalog for its successors).
//! **With a vendor key set, that is one real, paid job.** The video and its CineFlow sidecar land
//! in `$CINEFLOW_OUTPUT_DIR` (default `cineflow-output`).
//!
//! Environment (all optional):
//!
//! | adapter | key | base URL |
//! |---|---|---|
//! | Sora.hk | `CINEFLOW_SORAHK_API_KEY` (or `SORA_API_KEY`) | `CINEFLOW_SORAHK_BASE_URL` (or `SORA_BASE_URL`) |
//! | OpenAI | `CINEFLOW_OPENAI_API_KEY` (or `OPENAI_API_KEY`) | `CINEFLOW_OPENAI_BASE_URL` (or `OPENAI_BASE_URL`) |
//! | AIHubMix | `CINEFLOW_AIHUBMIX_API_KEY` (or `AIHUBMIX_API_KEY`) | `CINEFLOW_AIHUBMIX_BASE_URL` (or `AIHUBMIX_BASE_URL`) |
//! | apiyi | `CINEFLOW_APIYI_API_KEY` (or `APIYI_API_KEY`) | `CINEFLOW_APIYI_BASE_URL` (or `APIYI_BASE_URL`) |
//! | any OpenAI Videos reseller | `CINEFLOW_OPENAI_COMPAT_API_KEY` | `CINEFLOW_OPENAI_COMPAT_BASE_URL` (required) |
//! | Jimeng through a jimeng-api proxy | `CINEFLOW_JIMENG_API_KEY` (session tokens, comma-separated) | `CINEFLOW_JIMENG_BASE_URL` |
//! | Jimeng on Volcengine | `CINEFLOW_VOLCENGINE_ACCESS_KEY` + `CINEFLOW_VOLCENGINE_SECRET_KEY` (or `VOLC_ACCESSKEY` + `VOLC_SECRETKEY`) | `CINEFLOW_VOLCENGINE_BASE_URL` |
//! | Runway | `CINEFLOW_RUNWAY_API_KEY` (or `RUNWAYML_API_SECRET`) | `CINEFLOW_RUNWAY_BASE_URL` |
//! | Seedance on BytePlus ModelArk, or on Volcengine Ark with `CINEFLOW_SEEDANCE_PRESET=ark` | `CINEFLOW_SEEDANCE_API_KEY` (or `ARK_API_KEY`) | `CINEFLOW_SEEDANCE_BASE_URL` |
//! | Kling, international, or China with `CINEFLOW_KLING_PRESET=china` | `CINEFLOW_KLING_ACCESS_KEY` + `CINEFLOW_KLING_SECRET_KEY` (or `KLING_ACCESS_KEY` + `KLING_SECRET_KEY`) | `CINEFLOW_KLING_BASE_URL` |
//! | Wan on DashScope Singapore, or Beijing / Virginia with `CINEFLOW_WAN_REGION=beijing\|virginia` | `CINEFLOW_WAN_API_KEY` (or `DASHSCOPE_API_KEY`) | `CINEFLOW_WAN_BASE_URL` |
//! | MiniMax Hailuo, international or China with `CINEFLOW_MINIMAX_HOST=china` | `CINEFLOW_MINIMAX_API_KEY` (or `MINIMAX_API_KEY`) | `CINEFLOW_MINIMAX_BASE_URL` |
//! | fal (Seedance 2.0 text-to-video here; Kling v3, Veo 3.1, Gemini Omni and templated endpoints too) | `CINEFLOW_FAL_API_KEY` (or `FAL_KEY`) | `CINEFLOW_FAL_BASE_URL`, `CINEFLOW_FAL_PLATFORM_URL` |
//! | OpenRouter (Seedance 2.0 here; capabilities read from its models list at start-up) | `CINEFLOW_OPENROUTER_API_KEY` (or `OPENROUTER_API_KEY`) | `CINEFLOW_OPENROUTER_BASE_URL` |
//! | local ffmpeg renderer | — (`CINEFLOW_FFMPEG`: the ffmpeg binary, default `ffmpeg` on `PATH`; `CINEFLOW_LOCAL_WORK_DIR`) | — |
//!
//! and `CINEFLOW_OUTPUT_DIR` (default `cineflow-output`), and `CINEFLOW_NETWORK_ALLOW`: the
//! non-public addresses videos and reference images may come from besides each vendor's own
//! origin, e.g. `loopback` for a fake CDN on this machine or `10.20.0.0/16,minio.internal`
//! (default: none; loopback, private, link-local and metadata addresses are refused).

use std::error::Error;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cineflow::core::mock::{MockProvider, Step};
use cineflow::core::{
    EventKind, LocalDirSink, MemoryStore, ModelId, Orchestrator, OrchestratorConfig, Router,
    RouterConfig, RunSpec, SegmentRange, Store, Storyboard, TaskQuery, VideoProvider,
};
use cineflow::providers::fal::FalBuilder;
use cineflow::providers::jimeng::{self, JimengOfficialBuilder, JimengProxyBuilder};
use cineflow::providers::kling::{self, Kling, KlingBuilder};
use cineflow::providers::local::{self, LocalRenderer};
use cineflow::providers::minimax::{Host, Minimax, MinimaxBuilder};
use cineflow::providers::openai_compat::{OpenAiCompat, OpenAiCompatBuilder};
use cineflow::providers::openrouter::OpenRouterBuilder;
use cineflow::providers::runway::RunwayBuilder;
use cineflow::providers::seedance::{Preset, Seedance, SeedanceBuilder};
use cineflow::providers::sorahk::SoraHkBuilder;
use cineflow::providers::wan::{Region, Wan, WanBuilder};
use futures::StreamExt;

const DEMO: &str = include_str!("storyboards/cineflow_demo.json");

/// A provider built from the environment and the vendor model that serves `sora2` there.
struct Configured {
    provider: Arc<dyn VideoProvider>,
    vendor_model: &'static str,
    /// Whether CineFlow's seed catalog already routes `sora2` to it.
    seeded: bool,
}

/// Seedance from the environment: the preset from `CINEFLOW_SEEDANCE_PRESET` (`modelark`, the
/// default, or `ark`: the keys and model ids of the two platforms differ), then the adapter's
/// own variables. Returns the adapter, its name, and the Seedance 2.0 id on that platform.
fn seedance_from_env() -> (Result<Seedance, String>, &'static str, &'static str) {
    let preset = match std::env::var("CINEFLOW_SEEDANCE_PRESET").as_deref() {
        Ok("ark") => Preset::Ark,
        Ok("modelark") | Ok("") | Err(_) => Preset::ModelArk,
        Ok(other) => {
            let why = format!("CINEFLOW_SEEDANCE_PRESET must be ark or modelark, not {other:?}");
            return (Err(why), "Seedance", "");
        }
    };
    let (name, model) = match preset {
        Preset::Ark => ("Seedance on Volcengine Ark", "doubao-seedance-2-0-260128"),
        Preset::ModelArk => (
            "Seedance on BytePlus ModelArk",
            "dreamina-seedance-2-0-260128",
        ),
    };
    let built = SeedanceBuilder::preset(preset).load_env().build();
    (built.map_err(|e| e.to_string()), name, model)
}

/// Kling from the environment: the host from `CINEFLOW_KLING_PRESET` (`intl`, the default, or
/// `china`: keys of one host do not work on the other), then the adapter's own variables.
/// Returns the adapter and its name.
fn kling_from_env() -> (Result<Kling, String>, &'static str) {
    let (preset, name) = match std::env::var("CINEFLOW_KLING_PRESET").as_deref() {
        Ok("china") => (kling::Preset::China, "Kling (China)"),
        Ok("intl") | Ok("") | Err(_) => (kling::Preset::Intl, "Kling"),
        Ok(other) => {
            let why = format!("CINEFLOW_KLING_PRESET must be intl or china, not {other:?}");
            return (Err(why), "Kling");
        }
    };
    let built = KlingBuilder::preset(preset).load_env().build();
    (built.map_err(|e| e.to_string()), name)
}

/// Wan from the environment: the region from `CINEFLOW_WAN_REGION` (`singapore`, the default,
/// `beijing` or `virginia`: keys and model ids are per region), then the adapter's own
/// variables. Returns the adapter, its name, and the wan2.6 text-to-video id there.
fn wan_from_env() -> (Result<Wan, String>, &'static str, &'static str) {
    let region = match std::env::var("CINEFLOW_WAN_REGION").as_deref() {
        Ok("singapore") | Ok("") | Err(_) => Region::Singapore,
        Ok("beijing") => Region::Beijing,
        Ok("virginia") => Region::Virginia,
        Ok(other) => {
            let why = format!(
                "CINEFLOW_WAN_REGION must be singapore, beijing or virginia, not {other:?}"
            );
            return (Err(why), "Wan", "");
        }
    };
    let (name, model) = match region {
        Region::Singapore => ("Wan on DashScope Singapore", "wan2.6-t2v"),
        Region::Beijing => ("Wan on DashScope Beijing", "wan2.6-t2v"),
        Region::Virginia => ("Wan on DashScope Virginia", "wan2.6-t2v-us"),
    };
    let built = WanBuilder::region(region).load_env().build();
    (built.map_err(|e| e.to_string()), name, model)
}

/// MiniMax from the environment: the host from `CINEFLOW_MINIMAX_HOST` (`intl`, the default,
/// or `china`), then the adapter's own variables.
fn minimax_from_env() -> (Result<Minimax, String>, &'static str) {
    let host = match std::env::var("CINEFLOW_MINIMAX_HOST").as_deref() {
        Ok("intl") | Ok("") | Err(_) => Host::Intl,
        Ok("china") => Host::China,
        Ok(other) => {
            let why = format!("CINEFLOW_MINIMAX_HOST must be intl or china, not {other:?}");
            return (Err(why), "MiniMax Hailuo");
        }
    };
    let name = match host {
        Host::Intl => "MiniMax Hailuo (international)",
        Host::China => "MiniMax Hailuo (China)",
    };
    let built = MinimaxBuilder::host(host).load_env().build();
    (built.map_err(|e| e.to_string()), name)
}

/// Keeps `built` when the adapter could be configured, and says so either way. Build errors
/// name the variables to set; they never contain a key.
fn consider<P: VideoProvider + 'static>(
    name: &str,
    built: Result<P, impl Display>,
    vendor_model: &'static str,
    seeded: bool,
    configured: &mut Vec<Configured>,
) {
    match built {
        Ok(provider) => {
            println!("  configured      {name} (id {})", provider.id());
            configured.push(Configured {
                provider: Arc::new(provider),
                vendor_model,
                seeded,
            });
        }
        Err(why) => println!("  not configured  {name}: {why}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::var("CINEFLOW_OUTPUT_DIR").unwrap_or_else(|_| "cineflow-output".into()),
    );

    println!("adapters:");
    let mut configured = Vec::new();
    let c = &mut configured;
    consider(
        "Sora.hk",
        SoraHkBuilder::from_env().build(),
        "sora2",
        true,
        c,
    );
    let openai = OpenAiCompat::openai().load_env().build();
    consider("OpenAI", openai, "sora-2", true, c);
    let aihubmix = OpenAiCompat::aihubmix().load_env().build();
    consider("AIHubMix", aihubmix, "sora-2", true, c);
    consider(
        "apiyi",
        OpenAiCompat::apiyi().load_env().build(),
        "sora-2",
        false,
        c,
    );
    let reseller = OpenAiCompatBuilder::from_env().build();
    consider("OpenAI Videos reseller", reseller, "sora-2", false, c);
    let proxy = JimengProxyBuilder::from_env().build();
    consider("Jimeng proxy", proxy, jimeng::DEFAULT_PROXY_MODEL, false, c);
    // Text to video at 720p (Volcengine's `req_key`).
    let official = JimengOfficialBuilder::from_env().build();
    consider("Jimeng on Volcengine", official, "jimeng_t2v_v30", false, c);
    consider(
        "Runway",
        RunwayBuilder::from_env().build(),
        "gen4.5",
        false,
        c,
    );
    let (seedance, name, seedance_model) = seedance_from_env();
    consider(name, seedance, seedance_model, false, c);
    let (kling, name) = kling_from_env();
    consider(name, kling, "kling-v3", false, c);
    let (wan, name, wan_model) = wan_from_env();
    consider(name, wan, wan_model, false, c);
    // Hailuo 02 renders 10 s at its default 768P, from text in landscape.
    let (minimax, name) = minimax_from_env();
    consider(name, minimax, "MiniMax-Hailuo-02", false, c);
    // The gateways: one key, many models. Seedance 2.0 serves the 10 s horizontal segment.
    let fal = FalBuilder::from_env().build();
    consider("fal", fal, "bytedance/seedance-2.0/text-to-video", false, c);
    // Reads OpenRouter's models list (a failed read keeps the configured capabilities, and
    // says so in `capabilities_source()`).
    let openrouter = OpenRouterBuilder::from_env().connect().await;
    consider("OpenRouter", openrouter, "bytedance/seedance-2.0", false, c);
    if LocalRenderer::is_available() {
        let renderer = LocalRenderer::from_env();
        consider(
            "local ffmpeg renderer",
            renderer,
            local::DEFAULT_VENDOR_MODEL,
            false,
            c,
        );
    } else {
        println!(
            "  not configured  local ffmpeg renderer: ffmpeg not found (install it with `apt-get install ffmpeg` or `brew install ffmpeg`, or set CINEFLOW_FFMPEG); using MockProvider, which serves a tiny sample MP4"
        );
        let mock = MockProvider::new("mock")?
            .with_latency(Duration::from_millis(50))
            .with_timeline(vec![Step::Queued, Step::Running(50), Step::Succeeded]);
        println!("  configured      MockProvider (id {})", mock.id());
        c.push(Configured {
            provider: Arc::new(mock),
            vendor_model: "sora-2",
            seeded: false,
        });
    }

    // `sora2` as CineFlow seeds it, then every other configured adapter, the local one last.
    let model = ModelId::new("sora2")?;
    let mut router = Router::from_config(RouterConfig::cineflow_seed());
    for c in &configured {
        router = if c.seeded {
            router.provider(Arc::clone(&c.provider))
        } else {
            router.route(model.clone(), Arc::clone(&c.provider), c.vendor_model)
        };
    }
    println!(
        "\nroutes of `{model}` (priority order; seed routes without a configured provider are skipped):"
    );
    let catalog = router.config();
    let mut routes = catalog
        .models
        .get(&model)
        .map(|m| m.routes.clone())
        .unwrap_or_default();
    routes.sort_by_key(|r| r.priority);
    for r in routes
        .iter()
        .filter(|r| router.provider_by_id(&r.provider).is_some())
    {
        let provider_sunset = catalog.providers.get(&r.provider).and_then(|p| p.sunset);
        let sunset = r
            .sunset
            .into_iter()
            .chain(provider_sunset)
            .min()
            .map(|d| format!(" (sunset {d})"))
            .unwrap_or_default();
        println!(
            "  {:>3}  {} → {}{sunset}",
            r.priority,
            r.provider,
            r.vendor_models.join(", ")
        );
    }

    let mut config = OrchestratorConfig::default();
    config.poll.initial = Duration::from_millis(200);
    config.poll.min = Duration::from_millis(200);
    config.poll.max = Duration::from_secs(15);
    let store = Arc::new(MemoryStore::new());
    let orchestrator = Orchestrator::builder()
        .store(store.clone())
        .sink(Arc::new(LocalDirSink::new(&out_dir)))
        .router(router)
        .config(config)
        .build()?;

    let storyboard = Storyboard::from_json(DEMO)?
        .with_name("cineflow_demo")
        .with_source_file("examples/storyboards/cineflow_demo.json");
    orchestrator.add_storyboard(&storyboard).await?;
    let range: SegmentRange = "1".parse()?;
    let run = orchestrator
        .create_run(RunSpec::new(storyboard.id, model).with_range(range))
        .await?;
    println!(
        "\nrun {}: segment 1 of {:?}, output in {}",
        run.id,
        storyboard.name,
        out_dir.display()
    );

    let mut handle = orchestrator.start(run.id).await?;
    let mut events = Box::pin(handle.events());
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event.kind {
                EventKind::TaskRouted {
                    provider,
                    vendor_model,
                    reason,
                    ..
                } => println!("  routed to {provider} ({vendor_model}): {reason}"),
                EventKind::TaskSubmitted { vendor_job_id, .. } => {
                    println!("  submitted as vendor job {vendor_job_id}")
                }
                EventKind::TaskStatusChanged { to, .. } => println!("  {to}"),
                EventKind::TaskProgress { progress } => println!("  {progress:>3}%"),
                EventKind::TaskFailed { error, .. } => println!("  failed — {error}"),
                EventKind::RunFinished { status, .. } => {
                    println!("run finished: {status}");
                    break;
                }
                _ => {}
            }
        }
    });
    let run = handle.wait().await?;
    printer.await?;

    for t in store.list_tasks(&TaskQuery::for_run(run.id)).await?.items {
        let served_by = t.attempts.last().map(|a| a.provider.to_string());
        match &t.artifact {
            Some(a) => println!(
                "\nsegment {} by {}: {} ({} bytes, sha256 {}…)",
                t.segment_index,
                served_by.unwrap_or_default(),
                a.location,
                a.size_bytes,
                a.sha256.get(..16).unwrap_or(&a.sha256)
            ),
            None => println!("\nsegment {}: {}", t.segment_index, t.status.as_str()),
        }
    }
    if run.counts.completed != run.counts.total {
        return Err(format!("run ended {}", run.status).into());
    }
    Ok(())
}
