//! The catalogs cineflow ships, and the retirement of logical models.
//!
//! - [`RouterConfig::living_catalog`]: the logical models of the families users can pay for
//!   since Sora's end (Seedance 2.0 / 2.0 fast / 2.0 mini, Kling, Wan, Hailuo, Runway, Veo 3.1
//!   and Gemini Omni Flash), with routes through the adapters that exist (the gateways fal and
//!   OpenRouter included).
//! - [`RouterConfig::cineflow_seed`]: CineFlow's Sora-era catalog (`sora2`, `sora2pro`), kept so
//!   CineFlow's storyboards and clients keep their names; every route carries
//!   [`SORA_SUNSET`].
//! - [`RouterConfig::default_catalog`]: both, with no alias.
//!
//! A logical model whose every route is past its sunset is retired
//! ([`RouterConfig::retirement`]). [`RouterConfig::resolve`] — what
//! [`Orchestrator::create_run`](crate::Orchestrator::create_run) asks, through
//! [`Router::resolve_model`] — refuses a run on it with a message naming the living
//! alternatives, unless an opt-in [alias](RouterConfig::aliases) maps it onto a living model.

use std::collections::BTreeMap;

use time::Date;

use super::Router;
use super::config::{ModelConfig, OPENAI_SORA_SUNSET, ProviderSettings, RouteConfig, RouterConfig};
use crate::error::{Error, Result};
use crate::ids::{ModelId, ProviderId};

/// The day every Sora route stopped: OpenAI shut Sora 2 and its Videos API down, and every
/// reseller of it (Sora.hk, AIHubMix's and apiyi's Sora models) went with it.
pub const SORA_SUNSET: Date = OPENAI_SORA_SUNSET;

/// One seeded route: provider, priority, vendor models (tried in order).
type SeedRoute = (&'static str, i32, &'static [&'static str]);

/// One seeded logical model.
struct SeedModel {
    id: &'static str,
    routes: &'static [SeedRoute],
    alternatives: &'static [&'static str],
}

const fn living(id: &'static str, routes: &'static [SeedRoute]) -> SeedModel {
    SeedModel {
        id,
        routes,
        alternatives: &[],
    }
}

/// The living catalog. Seedance 2.0 goes first through ByteDance's own API — BytePlus ModelArk
/// (`modelark`, priority 10, `dreamina-seedance-…` ids), then Volcengine Ark (`ark`, 20,
/// `doubao-seedance-…`) — and last through a jimeng-api proxy (`jimeng`, 30): the official API
/// lists its tasks (an ambiguous submit is reconciled on the per-attempt `safety_identifier`),
/// cancels queued tasks and returns the last frame, while the proxy drives the consumer web app
/// with session tokens; then through the gateways, fal (40) and OpenRouter (50). 2.0 mini is
/// served by the official API only. Runway's own models and its Veo models go through the
/// Runway adapter first, then fal (20) and OpenRouter (30): Veo 3.1 left the Gemini API on
/// 2026-10-22 and stays reachable there. Gemini Omni Flash goes through fal. Kling 3 (and its
/// omni model, for reference images) goes through Kling's own API, international (`kling`, 10)
/// then China (`kling_cn`, 20): an ambiguous submit there is looked up exactly by its
/// `external_task_id`. Wan goes through DashScope, Singapore (`wan_intl`) first, then Beijing
/// (`wan`), then Virginia (`wan_us`, its `-us` ids); Hailuo and MiniMax-H3 through MiniMax,
/// international (`minimax`) then China (`minimax_cn`).
const LIVING: &[SeedModel] = &[
    living(
        "seedance-2",
        &[
            ("modelark", 10, &["dreamina-seedance-2-0-260128"]),
            ("ark", 20, &["doubao-seedance-2-0-260128"]),
            ("jimeng", 30, &["jimeng-video-seedance-2.0"]),
            ("fal", 40, FAL_SEEDANCE),
            ("openrouter", 50, &["bytedance/seedance-2.0"]),
        ],
    ),
    living(
        "seedance-2-fast",
        &[
            ("modelark", 10, &["dreamina-seedance-2-0-fast-260128"]),
            ("ark", 20, &["doubao-seedance-2-0-fast-260128"]),
            ("jimeng", 30, &["jimeng-video-seedance-2.0-fast"]),
            ("fal", 40, FAL_SEEDANCE_FAST),
        ],
    ),
    living(
        "seedance-2-mini",
        &[
            ("modelark", 10, &["dreamina-seedance-2-0-mini-260615"]),
            ("ark", 20, &["doubao-seedance-2-0-mini-260615"]),
        ],
    ),
    living(
        "kling-3",
        &[
            ("kling", 10, &["kling-v3"]),
            ("kling_cn", 20, &["kling-v3"]),
        ],
    ),
    living(
        "kling-3-omni",
        &[
            ("kling", 10, &["kling-v3-omni"]),
            ("kling_cn", 20, &["kling-v3-omni"]),
        ],
    ),
    living(
        "wan-2.6",
        &[
            ("wan_intl", 10, &["wan2.6-t2v", "wan2.6-i2v"]),
            ("wan", 20, &["wan2.6-t2v", "wan2.6-i2v"]),
            ("wan_us", 30, &["wan2.6-t2v-us"]),
        ],
    ),
    living(
        "hailuo-2.3",
        &[
            (
                "minimax",
                10,
                &["MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast"],
            ),
            (
                "minimax_cn",
                20,
                &["MiniMax-Hailuo-2.3", "MiniMax-Hailuo-2.3-Fast"],
            ),
        ],
    ),
    living("runway-gen4.5", &[("runway", 10, &["gen4.5"])]),
    living("runway-gen4-turbo", &[("runway", 10, &["gen4_turbo"])]),
    living(
        "veo-3.1",
        &[
            ("runway", 10, &["veo3.1"]),
            (
                "fal",
                20,
                &["fal-ai/veo3.1", "fal-ai/veo3.1/image-to-video"],
            ),
            ("openrouter", 30, &["google/veo-3.1"]),
        ],
    ),
    living(
        "veo-3.1-fast",
        &[
            ("runway", 10, &["veo3.1_fast"]),
            (
                "fal",
                20,
                &["fal-ai/veo3.1/fast", "fal-ai/veo3.1/fast/image-to-video"],
            ),
        ],
    ),
    living(
        "wan-3.0",
        &[
            ("wan_intl", 10, &["wan3.0-video"]),
            ("wan", 20, &["wan3.0-video"]),
        ],
    ),
    living(
        "hailuo-02",
        &[
            ("minimax", 10, &["MiniMax-Hailuo-02"]),
            ("minimax_cn", 20, &["MiniMax-Hailuo-02"]),
        ],
    ),
    living(
        "minimax-h3",
        &[
            ("minimax", 10, &["MiniMax-H3"]),
            ("minimax_cn", 20, &["MiniMax-H3"]),
        ],
    ),
    living(
        "gemini-omni-flash",
        &[("fal", 20, &["google/gemini-omni-flash/reference-to-video"])],
    ),
];

/// fal's Seedance 2.0 endpoints: the router takes the first whose input mode fits the request
/// (text only, a first frame, or references).
const FAL_SEEDANCE: &[&str] = &[
    "bytedance/seedance-2.0/text-to-video",
    "bytedance/seedance-2.0/image-to-video",
    "bytedance/seedance-2.0/reference-to-video",
];

/// fal's Seedance 2.0 fast endpoints, likewise.
const FAL_SEEDANCE_FAST: &[&str] = &[
    "bytedance/seedance-2.0/fast/text-to-video",
    "bytedance/seedance-2.0/fast/image-to-video",
    "bytedance/seedance-2.0/fast/reference-to-video",
];

/// CineFlow's seeded models, every vendor model id CineFlow lists (it only ever used the first).
const SORA: &[SeedModel] = &[
    SeedModel {
        id: "sora2",
        routes: &[
            ("sora_hk", 10, &["sora2"]),
            (
                "openai",
                20,
                &["sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06"],
            ),
            ("aihubmix", 30, &["sora-2", "web-sora-2"]),
        ],
        alternatives: &[
            "seedance-2",
            "seedance-2-fast",
            "kling-3",
            "wan-2.6",
            "hailuo-2.3",
            "runway-gen4.5",
            "veo-3.1",
        ],
    },
    SeedModel {
        id: "sora2pro",
        routes: &[
            ("sora_hk", 10, &["sora2-pro"]),
            ("openai", 20, &["sora-2-pro", "sora-2-pro-2025-10-06"]),
            ("aihubmix", 30, &["sora-2-pro", "web-sora-2-pro"]),
        ],
        alternatives: &[
            "seedance-2",
            "kling-3",
            "wan-2.6",
            "hailuo-2.3",
            "runway-gen4.5",
            "veo-3.1",
        ],
    },
];

/// The models of `seeds`, every route ending on `sunset` if given. (The seeds are constants a
/// test checks: every id in them is valid.)
fn seeded(seeds: &[SeedModel], sunset: Option<Date>) -> BTreeMap<ModelId, ModelConfig> {
    let mut models = BTreeMap::new();
    for s in seeds {
        let Ok(id) = ModelId::new(s.id) else {
            continue;
        };
        let routes = s
            .routes
            .iter()
            .filter_map(|(provider, priority, vendor_models)| {
                let provider = ProviderId::new(*provider).ok()?;
                let vendor_models = vendor_models.iter().map(|m| (*m).to_owned()).collect();
                let route = RouteConfig::new(provider, vendor_models).with_priority(*priority);
                Some(match sunset {
                    Some(day) => route.with_sunset(day),
                    None => route,
                })
            })
            .collect();
        let alternatives = s
            .alternatives
            .iter()
            .filter_map(|a| ModelId::new(*a).ok())
            .collect();
        models.insert(
            id,
            ModelConfig {
                enabled: true,
                routes,
                alternatives,
            },
        );
    }
    models
}

impl RouterConfig {
    /// The living catalog: `seedance-2`, `seedance-2-fast` (through `modelark`, then `ark`, then
    /// the `jimeng` proxy, then `fal` and, for 2.0, `openrouter`), `seedance-2-mini`
    /// (`modelark`, then `ark`), `runway-gen4.5`, `runway-gen4-turbo`, `veo-3.1` (`runway`,
    /// `fal`, `openrouter`), `veo-3.1-fast` (`runway`, `fal`), `gemini-omni-flash` (`fal`),
    /// `kling-3` and `kling-3-omni` (through `kling`, then `kling_cn`), `wan-2.6`, `wan-3.0`
    /// (through `wan_intl`, then `wan`; `wan-2.6` also `wan_us`), `hailuo-2.3`, `hailuo-02`,
    /// `minimax-h3` (through `minimax`, then `minimax_cn`).
    pub fn living_catalog() -> Self {
        Self {
            models: seeded(LIVING, None),
            ..Self::default()
        }
    }

    /// CineFlow's seeded catalog: `sora2` and `sora2pro` served by `sora_hk` (priority 10),
    /// `openai` (20) and `aihubmix` (30), with every vendor model id CineFlow lists (CineFlow
    /// only ever used the first). Every route ends on [`SORA_SUNSET`] (and the `openai`
    /// provider with it), so both models are retired from that day; their alternatives name
    /// the living catalog.
    pub fn cineflow_seed() -> Self {
        let mut cfg = Self {
            models: seeded(SORA, Some(SORA_SUNSET)),
            ..Self::default()
        };
        if let Ok(openai) = ProviderId::new("openai") {
            cfg.providers.insert(
                openai,
                ProviderSettings {
                    sunset: Some(OPENAI_SORA_SUNSET),
                    ..ProviderSettings::default()
                },
            );
        }
        cfg
    }

    /// The [living catalog](Self::living_catalog) and [CineFlow's](Self::cineflow_seed)
    /// together, with no alias: a run on `sora2` is refused from [`SORA_SUNSET`] on until the
    /// configuration opts in to one (`aliases.sora2 = "seedance-2"`).
    pub fn default_catalog() -> Self {
        let mut cfg = Self::cineflow_seed();
        cfg.models.extend(seeded(LIVING, None));
        cfg
    }

    /// The first day `route` serves nothing: its own sunset or its provider's, the earlier.
    fn route_sunset(&self, route: &RouteConfig) -> Option<Date> {
        let provider = self.providers.get(&route.provider).and_then(|p| p.sunset);
        match (route.sunset, provider) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The day `model` is retired: the last of its routes' sunsets (a route's own or its
    /// provider's, the earlier), when every route has one. `None` for a model with a route
    /// that has no sunset, with no route at all, or not in the catalog.
    pub fn retirement(&self, model: &ModelId) -> Option<Date> {
        let routes = &self.models.get(model)?.routes;
        if routes.is_empty() {
            return None;
        }
        routes
            .iter()
            .map(|r| self.route_sunset(r))
            .collect::<Option<Vec<Date>>>()?
            .into_iter()
            .max()
    }

    /// Whether `model` is retired on `today` (its [retirement](Self::retirement) day has come).
    pub fn is_retired(&self, model: &ModelId, today: Date) -> bool {
        self.retirement(model).is_some_and(|day| day <= today)
    }

    /// The logical model a run asking for `requested` runs on, on `today`: the target of its
    /// [alias](Self::aliases) if it has one, else `requested` itself.
    ///
    /// # Errors
    /// - [`Error::NoProvider`] for a model not in the catalog, a model with no route yet, and a
    ///   retired model (the message gives the retirement day, the living alternatives and the
    ///   alias that would let the run go ahead);
    /// - [`Error::Config`] naming `aliases.<requested>` for an alias whose target is not in the
    ///   catalog, is retired, has no route, or is an alias itself.
    pub fn resolve(&self, requested: &ModelId, today: Date) -> Result<ModelId> {
        if let Some(target) = self.aliases.get(requested) {
            let refuse = |why: String| {
                Err(Error::Config(format!(
                    "router configuration: aliases.{requested} = \"{target}\": {why}"
                )))
            };
            if self.aliases.contains_key(target) {
                return refuse("the target is an alias itself (aliases do not chain)".into());
            }
            let Some(t) = self.models.get(target) else {
                return refuse("the target is not in the catalog".into());
            };
            if let Some(day) = self.retirement(target).filter(|d| *d <= today) {
                return refuse(format!("the target was retired on {day}"));
            }
            if t.routes.is_empty() {
                return refuse("the target has no route yet".into());
            }
            return Ok(target.clone());
        }
        let no_provider = |reason: String| {
            Err(Error::NoProvider {
                model: requested.to_string(),
                reason,
            })
        };
        let Some(m) = self.models.get(requested) else {
            return no_provider("the model is not in the catalog".into());
        };
        if let Some(day) = self.retirement(requested).filter(|d| *d <= today) {
            return no_provider(self.retired_reason(requested, m, day, today));
        }
        if m.routes.is_empty() {
            return no_provider(
                "no route yet: the catalog names the model but no provider serves it".into(),
            );
        }
        Ok(requested.clone())
    }

    /// Why a run on the retired `model` is refused: the day, the living alternatives (each with
    /// the providers serving it, or "no route yet") and the alias to opt in to.
    fn retired_reason(&self, model: &ModelId, cfg: &ModelConfig, day: Date, today: Date) -> String {
        let living: Vec<&ModelId> = if cfg.alternatives.is_empty() {
            // Models with a route first, then those without; by name within each.
            let (mut served, unserved): (Vec<&ModelId>, Vec<&ModelId>) = self
                .models
                .iter()
                .filter(|(id, m)| *id != model && m.enabled && !self.is_retired(id, today))
                .map(|(id, _)| id)
                .partition(|id| self.has_routes(id));
            served.extend(unserved);
            served
        } else {
            cfg.alternatives
                .iter()
                .filter(|a| !self.is_retired(a, today))
                .collect()
        };
        let mut reason = format!("retired on {day} (every route is past its sunset)");
        if !living.is_empty() {
            let described: Vec<String> = living
                .iter()
                .map(|a| match self.models.get(*a) {
                    Some(m) if !m.routes.is_empty() => {
                        let mut providers: Vec<&str> = Vec::new();
                        for r in &m.routes {
                            if !providers.contains(&r.provider.as_str()) {
                                providers.push(r.provider.as_str());
                            }
                        }
                        format!("{a} (via {})", providers.join(", "))
                    }
                    Some(_) => format!("{a} (no route yet)"),
                    None => format!("{a} (not in this catalog)"),
                })
                .collect();
            reason.push_str("; living alternatives: ");
            reason.push_str(&described.join(", "));
        }
        match living
            .iter()
            .find(|a| self.has_routes(a))
            .or(living.first())
        {
            Some(target) => reason.push_str(&format!(
                "; or opt in to an alias in the router configuration: aliases.{model} = \"{target}\""
            )),
            None => reason.push_str(&format!(
                "; or opt in to an alias onto a living model in the router configuration: aliases.{model} = \"<model>\""
            )),
        }
        reason
    }

    fn has_routes(&self, model: &ModelId) -> bool {
        self.models.get(model).is_some_and(|m| !m.routes.is_empty())
    }
}

impl Router {
    /// The logical model a run asking for `requested` runs on today (the router's clock, see
    /// [`with_today`](Self::with_today)): see [`RouterConfig::resolve`].
    ///
    /// # Errors
    /// As [`RouterConfig::resolve`]: a model not in the catalog, without a route, or retired
    /// (naming the living alternatives), or a bad alias.
    pub fn resolve_model(&self, requested: &ModelId) -> Result<ModelId> {
        self.read().resolve(requested, self.today())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_in_the_shipped_catalogs_is_valid() {
        for seeds in [LIVING, SORA] {
            let models = seeded(seeds, None);
            assert_eq!(models.len(), seeds.len());
            for s in seeds {
                let m = &models[&ModelId::new(s.id).unwrap()];
                assert_eq!(m.routes.len(), s.routes.len(), "{}", s.id);
                assert_eq!(m.alternatives.len(), s.alternatives.len(), "{}", s.id);
                for a in &m.alternatives {
                    assert!(LIVING.iter().any(|l| l.id == a.as_str()), "{a}");
                }
            }
        }
    }

    #[test]
    fn a_model_is_retired_on_the_last_sunset_of_its_routes() {
        let mut cfg = RouterConfig::cineflow_seed();
        let sora2 = ModelId::new("sora2").unwrap();
        assert_eq!(cfg.retirement(&sora2), Some(SORA_SUNSET));
        let later = time::macros::date!(2026 - 12 - 31);
        cfg.models.get_mut(&sora2).unwrap().routes[2].sunset = Some(later);
        assert_eq!(cfg.retirement(&sora2), Some(later));
        // The provider's sunset applies when it is earlier than the route's.
        let aihubmix = ProviderId::new("aihubmix").unwrap();
        cfg.providers.entry(aihubmix).or_default().sunset = Some(SORA_SUNSET);
        assert_eq!(cfg.retirement(&sora2), Some(SORA_SUNSET));
        cfg.models.get_mut(&sora2).unwrap().routes[0].sunset = None;
        assert_eq!(
            cfg.retirement(&sora2),
            None,
            "sora_hk's route has no sunset"
        );
        let kling = ModelId::new("kling-3").unwrap();
        assert_eq!(RouterConfig::living_catalog().retirement(&kling), None);
    }
}
