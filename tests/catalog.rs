//! The living catalog, the retirement of the Sora models and the opt-in alias (issue 14, item 4):
//! a run on a retired logical model is refused at `create_run` naming the living alternatives;
//! an alias in the router configuration runs it on a living model and every attempt records the
//! substitution. The router's clock is fixed (`Router::with_today`); vendors are
//! `MockProvider`s named like the real adapters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cineflow_core::mock::MockProvider;
use cineflow_core::router::SORA_SUNSET;
use cineflow_core::{
    Error, MemoryStore, ModelAlias, ModelId, Orchestrator, ProviderId, RouterConfig, Run, RunQuery,
    RunSpec, RunStatus, Store, Task, TaskQuery, TaskStatus,
};
use time::Date;
use time::macros::date;

mod common;

use common::{fast_config, shots};

/// A day after every Sora route stopped.
const AFTER_SORA: Date = date!(2026 - 11 - 23);

fn mid(s: &str) -> ModelId {
    ModelId::new(s).unwrap()
}

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}

/// The default catalog with `sora2 → seedance-2` opted in.
fn aliased_catalog() -> RouterConfig {
    let mut cfg = RouterConfig::default_catalog();
    cfg.aliases.insert(mid("sora2"), mid("seedance-2"));
    cfg
}

/// An orchestrator over `cfg` with `vendors` registered, the router's clock at `today`.
struct Env {
    orch: Orchestrator,
    store: Arc<MemoryStore>,
    _dir: tempfile::TempDir,
}

fn env(cfg: RouterConfig, today: Date, vendors: &[&MockProvider]) -> Env {
    let router = common::catalog_router(cfg, today, vendors);
    let (orch, store, dir) = common::orchestrator(router, fast_config());
    Env {
        orch,
        store,
        _dir: dir,
    }
}

impl Env {
    /// Creates a run of `segments` shots on `model`.
    async fn create(&self, model: &str, segments: u32) -> Result<Run, Error> {
        let sb = shots(segments);
        self.orch.add_storyboard(&sb).await.unwrap();
        self.orch.create_run(RunSpec::new(sb.id, mid(model))).await
    }

    /// Runs `model` to its end; returns the run and its tasks as stored.
    async fn run(&self, model: &str, segments: u32) -> (Run, Vec<Task>) {
        let run = self.create(model, segments).await.unwrap();
        let run = self.orch.start(run.id).await.unwrap().wait().await.unwrap();
        let tasks = self
            .store
            .list_tasks(&TaskQuery::for_run(run.id))
            .await
            .unwrap()
            .items;
        (run, tasks)
    }

    async fn runs(&self) -> u64 {
        self.store
            .list_runs(&RunQuery::default())
            .await
            .unwrap()
            .total
    }
}

/// The sidecar JSON written next to `task`'s video.
fn sidecar(task: &Task) -> serde_json::Value {
    let path = task.artifact.as_ref().unwrap().sidecar.as_ref().unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_retired_model_is_refused_at_create_run_naming_the_living_alternatives_and_nothing_is_paid()
 {
    let sora_hk = MockProvider::new("sora_hk").unwrap();
    let aihubmix = MockProvider::new("aihubmix").unwrap();
    let jimeng = MockProvider::new("jimeng").unwrap();
    let env = env(
        RouterConfig::default_catalog(),
        AFTER_SORA,
        &[&sora_hk, &aihubmix, &jimeng],
    );
    for model in ["sora2", "sora2pro"] {
        let err = env.create(model, 2).await.unwrap_err();
        assert!(matches!(err, Error::NoProvider { .. }), "{err:?}");
        let msg = err.to_string();
        for needle in [
            format!("model {model}:"),
            "retired on 2026-09-24 (every route is past its sunset)".to_owned(),
            "living alternatives: seedance-2 (via modelark, ark, jimeng, fal, openrouter)"
                .to_owned(),
            "kling-3 (via kling, kling_cn)".to_owned(),
            "wan-2.6 (via wan_intl, wan, wan_us)".to_owned(),
            "hailuo-2.3 (via minimax, minimax_cn)".to_owned(),
            "runway-gen4.5 (via runway)".to_owned(),
            format!("aliases.{model} = \"seedance-2\""),
        ] {
            assert!(msg.contains(&needle), "missing {needle:?} in {msg}");
        }
    }
    assert_eq!(env.runs().await, 0, "no run is stored");
    for vendor in [&sora_hk, &aihubmix, &jimeng] {
        assert_eq!(vendor.submits(), 0);
    }
}

#[tokio::test]
async fn the_opt_in_alias_runs_a_retired_model_on_its_target_and_every_attempt_records_the_substitution()
 {
    let sora_hk = MockProvider::new("sora_hk").unwrap();
    let jimeng = MockProvider::new("jimeng").unwrap();
    let env = env(aliased_catalog(), AFTER_SORA, &[&sora_hk, &jimeng]);
    let (run, tasks) = env.run("sora2", 2).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.spec.model,
        mid("sora2"),
        "the run keeps what it asked for"
    );
    assert_eq!((jimeng.submits(), sora_hk.submits()), (2, 0));
    let alias = ModelAlias {
        from: mid("sora2"),
        to: mid("seedance-2"),
    };
    assert_eq!(tasks.len(), 2);
    for task in &tasks {
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(task.model, mid("seedance-2"));
        assert_eq!(task.attempts.len(), 1);
        let attempt = &task.attempts[0];
        assert_eq!(attempt.provider, pid("jimeng"));
        assert_eq!(attempt.provider_model, "jimeng-video-seedance-2.0");
        assert_eq!(attempt.model_alias.as_ref(), Some(&alias));
        assert_eq!(
            sidecar(task)["attempts"][0]["model_alias"],
            serde_json::json!({"from": "sora2", "to": "seedance-2"})
        );
    }
    let sent = jimeng.submitted_requests();
    assert!(
        sent.iter()
            .all(|r| r.vendor_model == "jimeng-video-seedance-2.0"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn the_alias_is_opt_in_and_a_run_on_a_living_model_records_no_substitution() {
    for cfg in [
        RouterConfig::default(),
        RouterConfig::default_catalog(),
        RouterConfig::living_catalog(),
        RouterConfig::cineflow_seed(),
    ] {
        assert!(cfg.aliases.is_empty(), "{:?}", cfg.aliases);
    }
    let jimeng = MockProvider::new("jimeng").unwrap();
    let env = env(aliased_catalog(), AFTER_SORA, &[&jimeng]);
    let (run, tasks) = env.run("seedance-2", 1).await;
    assert_eq!(run.status, RunStatus::Completed);
    let attempt = &tasks[0].attempts[0];
    assert_eq!(attempt.provider_model, "jimeng-video-seedance-2.0");
    assert_eq!(attempt.model_alias, None);
    let sidecar = sidecar(&tasks[0]);
    assert!(
        sidecar["attempts"][0].get("model_alias").is_none(),
        "{sidecar}"
    );
}

#[test]
fn an_alias_in_a_toml_config_round_trips_and_reads_like_its_json() {
    const TOML: &str = r#"
[aliases]
sora2 = "seedance-2"

[models.seedance-2]
[[models.seedance-2.routes]]
provider = "jimeng"
vendor_models = ["jimeng-video-seedance-2.0"]

[models.sora2]
alternatives = ["seedance-2", "kling-3"]
[[models.sora2.routes]]
provider = "sora_hk"
vendor_models = ["sora2"]
sunset = "2026-09-24"
"#;
    const JSON: &str = r#"{
        "aliases": {"sora2": "seedance-2"},
        "models": {
            "seedance-2": {"routes": [
                {"provider": "jimeng", "vendor_models": ["jimeng-video-seedance-2.0"]}]},
            "sora2": {"alternatives": ["seedance-2", "kling-3"], "routes": [
                {"provider": "sora_hk", "vendor_models": ["sora2"], "sunset": "2026-09-24"}]}
        }
    }"#;
    let cfg = RouterConfig::from_toml(TOML).unwrap();
    assert_eq!(cfg.aliases.get(&mid("sora2")), Some(&mid("seedance-2")));
    assert_eq!(cfg, RouterConfig::from_json(JSON).unwrap());
    let written = cfg.to_toml().unwrap();
    assert!(written.contains("[aliases]"), "{written}");
    assert!(written.contains("sora2 = \"seedance-2\""), "{written}");
    assert_eq!(RouterConfig::from_toml(&written).unwrap(), cfg);
    assert_eq!(
        cfg.resolve(&mid("sora2"), AFTER_SORA).unwrap(),
        mid("seedance-2")
    );
    // Without aliases nothing is written for them.
    let plain = RouterConfig::default_catalog().to_toml().unwrap();
    assert!(!plain.contains("aliases"), "{plain}");
}

#[tokio::test]
async fn a_sora_route_still_serves_the_day_before_its_sunset_and_is_refused_on_it() {
    let sora_hk = MockProvider::new("sora_hk").unwrap();
    let before = env(
        RouterConfig::default_catalog(),
        date!(2026 - 09 - 23),
        &[&sora_hk],
    );
    let (run, tasks) = before.run("sora2", 1).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(tasks[0].model, mid("sora2"));
    assert_eq!(tasks[0].attempts[0].provider, pid("sora_hk"));
    assert_eq!(tasks[0].attempts[0].model_alias, None);
    assert_eq!(sora_hk.submits(), 1);

    let on = env(RouterConfig::default_catalog(), SORA_SUNSET, &[&sora_hk]);
    let err = on.create("sora2", 1).await.unwrap_err();
    assert!(err.to_string().contains("retired on 2026-09-24"), "{err}");
    assert_eq!(sora_hk.submits(), 1, "nothing more was sent");
}

/// The default catalog plus `pixverse-5`, a model it names without a route (every built-in
/// living model has one now).
fn with_unrouted_model() -> RouterConfig {
    let mut cfg = RouterConfig::default_catalog();
    cfg.models.insert(
        mid("pixverse-5"),
        cineflow_core::router::ModelConfig::default(),
    );
    cfg
}

#[tokio::test]
async fn a_living_model_with_no_route_yet_is_refused_at_create_run_saying_so() {
    let runway = MockProvider::new("runway").unwrap();
    let env = env(with_unrouted_model(), AFTER_SORA, &[&runway]);
    for model in ["pixverse-5"] {
        let err = env.create(model, 1).await.unwrap_err();
        assert!(matches!(err, Error::NoProvider { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("model {model}: no route yet")),
            "{msg}"
        );
    }
    let err = env.create("sora3", 1).await.unwrap_err();
    assert!(err.to_string().contains("not in the catalog"), "{err}");
    assert_eq!(env.runs().await, 0);
    assert_eq!(runway.submits(), 0);
}

#[tokio::test]
async fn an_alias_onto_a_model_that_cannot_serve_is_refused_naming_the_alias() {
    let jimeng = MockProvider::new("jimeng").unwrap();
    for (target, why) in [
        ("sora2pro", "the target was retired on 2026-09-24"),
        ("pixverse-5", "the target has no route yet"),
        ("sora3", "the target is not in the catalog"),
    ] {
        let mut cfg = with_unrouted_model();
        cfg.aliases.insert(mid("sora2"), mid(target));
        let env = env(cfg, AFTER_SORA, &[&jimeng]);
        let err = env.create("sora2", 1).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("aliases.sora2 = \"{target}\": {why}")),
            "{msg}"
        );
        assert_eq!(env.runs().await, 0);
    }
    let mut chained = aliased_catalog();
    chained.aliases.insert(mid("sora2pro"), mid("sora2"));
    let err = chained.resolve(&mid("sora2pro"), AFTER_SORA).unwrap_err();
    assert!(err.to_string().contains("aliases do not chain"), "{err}");
    assert_eq!(jimeng.submits(), 0);
}

#[test]
fn every_sora_route_of_the_shipped_catalog_ends_on_the_sora_sunset_and_no_living_model_is_retired()
{
    let catalog = RouterConfig::default_catalog();
    for model in ["sora2", "sora2pro"] {
        let m = &catalog.models[&mid(model)];
        assert_eq!(m.routes.len(), 3);
        for r in &m.routes {
            assert_eq!(r.sunset, Some(SORA_SUNSET), "{model} via {}", r.provider);
        }
        assert_eq!(catalog.retirement(&mid(model)), Some(SORA_SUNSET));
        assert!(catalog.is_retired(&mid(model), SORA_SUNSET));
        assert!(!catalog.is_retired(&mid(model), date!(2026 - 09 - 23)));
    }
    let living = RouterConfig::living_catalog();
    assert_eq!(living.models.len(), 15);
    for id in living.models.keys() {
        assert_eq!(catalog.retirement(id), None, "{id}");
        assert_eq!(catalog.models[id], living.models[id], "{id}");
    }
    let routed = |model: &str| {
        let m = &catalog.models[&mid(model)];
        m.routes
            .iter()
            .map(|r| format!("{}:{}", r.provider, r.vendor_models.join(",")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        routed("seedance-2"),
        [
            "modelark:dreamina-seedance-2-0-260128",
            "ark:doubao-seedance-2-0-260128",
            "jimeng:jimeng-video-seedance-2.0",
            "fal:bytedance/seedance-2.0/text-to-video,bytedance/seedance-2.0/image-to-video,\
             bytedance/seedance-2.0/reference-to-video",
            "openrouter:bytedance/seedance-2.0"
        ]
    );
    assert_eq!(
        routed("seedance-2-fast"),
        [
            "modelark:dreamina-seedance-2-0-fast-260128",
            "ark:doubao-seedance-2-0-fast-260128",
            "jimeng:jimeng-video-seedance-2.0-fast",
            "fal:bytedance/seedance-2.0/fast/text-to-video,\
             bytedance/seedance-2.0/fast/image-to-video,\
             bytedance/seedance-2.0/fast/reference-to-video"
        ]
    );
    assert_eq!(routed("kling-3"), ["kling:kling-v3", "kling_cn:kling-v3"]);
    assert_eq!(
        routed("kling-3-omni"),
        ["kling:kling-v3-omni", "kling_cn:kling-v3-omni"]
    );
    assert_eq!(
        routed("seedance-2-mini"),
        [
            "modelark:dreamina-seedance-2-0-mini-260615",
            "ark:doubao-seedance-2-0-mini-260615"
        ]
    );
    assert_eq!(
        routed("wan-2.6"),
        [
            "wan_intl:wan2.6-t2v,wan2.6-i2v",
            "wan:wan2.6-t2v,wan2.6-i2v",
            "wan_us:wan2.6-t2v-us"
        ]
    );
    assert_eq!(
        routed("hailuo-2.3"),
        [
            "minimax:MiniMax-Hailuo-2.3,MiniMax-Hailuo-2.3-Fast",
            "minimax_cn:MiniMax-Hailuo-2.3,MiniMax-Hailuo-2.3-Fast"
        ]
    );
    assert_eq!(
        routed("minimax-h3"),
        ["minimax:MiniMax-H3", "minimax_cn:MiniMax-H3"]
    );
    let priorities = |model: &str| {
        catalog.models[&mid(model)]
            .routes
            .iter()
            .map(|r| r.priority)
            .collect::<Vec<_>>()
    };
    assert_eq!(priorities("seedance-2"), [10, 20, 30, 40, 50]);
    assert_eq!(priorities("seedance-2-fast"), [10, 20, 30, 40]);
    assert_eq!(routed("runway-gen4.5"), ["runway:gen4.5"]);
    assert_eq!(routed("runway-gen4-turbo"), ["runway:gen4_turbo"]);
    assert_eq!(
        routed("veo-3.1"),
        [
            "runway:veo3.1",
            "fal:fal-ai/veo3.1,fal-ai/veo3.1/image-to-video",
            "openrouter:google/veo-3.1"
        ]
    );
    assert_eq!(
        routed("veo-3.1-fast"),
        [
            "runway:veo3.1_fast",
            "fal:fal-ai/veo3.1/fast,fal-ai/veo3.1/fast/image-to-video"
        ]
    );
    assert_eq!(
        routed("gemini-omni-flash"),
        ["fal:google/gemini-omni-flash/reference-to-video"]
    );
}

#[tokio::test]
async fn seedance_runs_on_the_official_api_before_the_jimeng_proxy_and_on_the_proxy_when_alone() {
    let modelark = MockProvider::new("modelark").unwrap();
    let ark = MockProvider::new("ark").unwrap();
    let jimeng = MockProvider::new("jimeng").unwrap();
    let cases: [(&[&MockProvider], &str, &str); 3] = [
        (
            &[&jimeng, &ark, &modelark],
            "modelark",
            "dreamina-seedance-2-0-260128",
        ),
        (&[&jimeng, &ark], "ark", "doubao-seedance-2-0-260128"),
        (&[&jimeng], "jimeng", "jimeng-video-seedance-2.0"),
    ];
    for (vendors, provider, vendor_model) in cases {
        let env = env(RouterConfig::default_catalog(), AFTER_SORA, vendors);
        let (run, tasks) = env.run("seedance-2", 1).await;
        assert_eq!(run.status, RunStatus::Completed, "{provider}");
        let attempt = &tasks[0].attempts[0];
        assert_eq!(attempt.provider, pid(provider));
        assert_eq!(attempt.provider_model, vendor_model);
    }
    assert_eq!(
        (modelark.submits(), ark.submits(), jimeng.submits()),
        (1, 1, 1)
    );
    // Mini has no proxy route: with only the proxy configured, nothing serves it.
    let env = env(RouterConfig::default_catalog(), AFTER_SORA, &[&jimeng]);
    let (run, tasks) = env.run("seedance-2-mini", 1).await;
    assert_ne!(run.status, RunStatus::Completed);
    assert_eq!(tasks[0].status, TaskStatus::Failed, "{:?}", tasks[0].error);
    assert_eq!(jimeng.submits(), 1, "the proxy was not asked for mini");
}

#[test]
fn every_wan_and_minimax_route_of_the_catalog_names_a_model_its_adapter_serves() {
    use cineflow_core::VideoProvider;
    use cineflow_providers::ApiKeyBuilder;
    use cineflow_providers::minimax::Minimax;
    use cineflow_providers::wan::Wan;

    let adapters: Vec<Box<dyn VideoProvider>> = vec![
        Box::new(Wan::singapore().with_api_key("k").build().unwrap()),
        Box::new(Wan::beijing().with_api_key("k").build().unwrap()),
        Box::new(Wan::virginia().with_api_key("k").build().unwrap()),
        Box::new(Minimax::intl().with_api_key("k").build().unwrap()),
        Box::new(Minimax::china().with_api_key("k").build().unwrap()),
    ];
    let mut checked = 0;
    for (model, m) in RouterConfig::living_catalog().models {
        for r in &m.routes {
            let Some(adapter) = adapters.iter().find(|a| a.id() == &r.provider) else {
                continue;
            };
            for vm in &r.vendor_models {
                assert!(
                    adapter.capabilities().model(vm).is_some(),
                    "{model}: {} does not serve {vm}",
                    r.provider
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 14, "{checked}");
}
