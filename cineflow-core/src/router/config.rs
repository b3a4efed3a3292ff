//! The model catalog and routing settings, as serde data (JSON or TOML).

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::error::{Error, Result};
use crate::ids::{ModelId, ProviderId};
use crate::provider::ServiceTier;

pub use super::price::Price;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// How a route is picked among the candidates left after filtering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest `priority` first; the others are the failover order (default).
    #[default]
    Priority,
    /// Random, proportional to `weight` (deterministic under [`Router::with_seed`](super::Router::with_seed)).
    Weighted,
    /// The provider with the fewest jobs in flight.
    LeastBusy,
    /// The lowest cost estimate (unpriced routes last).
    Cheapest,
}

impl Strategy {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least_busy",
            Strategy::Cheapest => "cheapest",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    /// Reads our names and CineFlow's `routing_strategy` values (`default`, `failover` →
    /// priority; `weighted`; `cost` → cheapest; `latency`, `quota` → least_busy).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "priority" | "default" | "failover" | "manual" => Ok(Strategy::Priority),
            "weighted" => Ok(Strategy::Weighted),
            "least_busy" | "latency" | "quota" => Ok(Strategy::LeastBusy),
            "cheapest" | "cost" => Ok(Strategy::Cheapest),
            other => Err(Error::invalid_input(
                "routing_strategy",
                format!("unknown strategy {other:?} (priority, weighted, least_busy, cheapest)"),
            )),
        }
    }
}

/// One way to serve a logical model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The provider.
    pub provider: ProviderId,
    /// The vendor's model ids, tried in order.
    pub vendor_models: Vec<String>,
    /// Lower is preferred. Default 100.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// Share under the weighted strategy. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Whether the route may be used. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// No traffic on or after this date (`YYYY-MM-DD`). Default none.
    #[serde(default, with = "iso_date::option")]
    pub sunset: Option<Date>,
    /// Price of this route (overrides the provider's). Default none.
    #[serde(default)]
    pub price: Option<Price>,
    /// The vendor service tier the route's requests ask for (`flex`: offline, cheaper, on the
    /// models that offer it; a model without it is skipped). Its price is the route's price
    /// on that tier ([`Price::for_tier`]), so `cheapest` and budgets see it. Default none: the
    /// vendor's default tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
}

fn default_priority() -> i32 {
    100
}
fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

impl RouteConfig {
    /// A route with default priority, weight and no sunset or price.
    pub fn new(provider: ProviderId, vendor_models: Vec<String>) -> Self {
        Self {
            provider,
            vendor_models,
            priority: default_priority(),
            weight: default_weight(),
            enabled: true,
            sunset: None,
            price: None,
            service_tier: None,
        }
    }

    /// Sets the priority.
    pub fn with_priority(mut self, p: i32) -> Self {
        self.priority = p;
        self
    }

    /// Sets the weight.
    pub fn with_weight(mut self, w: u32) -> Self {
        self.weight = w;
        self
    }

    /// Sets the price.
    pub fn with_price(mut self, price: Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Sets the service tier the route's requests ask for.
    pub fn with_service_tier(mut self, tier: ServiceTier) -> Self {
        self.service_tier = Some(tier);
        self
    }

    /// The route's price on its service tier, given the provider's price as a fallback.
    pub fn effective_price(&self, provider_price: Option<&Price>) -> Option<Price> {
        self.price
            .as_ref()
            .or(provider_price)
            .map(|p| p.for_tier(self.service_tier))
    }

    /// Sets the sunset date.
    pub fn with_sunset(mut self, date: Date) -> Self {
        self.sunset = Some(date);
        self
    }

    crate::setters::with_setters!(with_enabled => enabled: bool);
}

/// A logical model and its routes.
///
/// A model whose every route is past its sunset (the route's own or its provider's) is
/// *retired*: runs on it are refused when they are created, naming its
/// [`alternatives`](Self::alternatives), unless an [alias](RouterConfig::aliases) maps it onto
/// a living model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelConfig {
    /// Whether the model may be used. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Candidate routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The living models to suggest once this one is retired, best first (the first one with
    /// a route is the alias the refusal suggests). Default none: the refusal then lists every
    /// living model of the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<ModelId>,
}

impl ModelConfig {
    crate::setters::with_setters!(
        with_enabled => enabled: bool,
        with_routes => routes: Vec<RouteConfig>,
        with_alternatives => alternatives: Vec<ModelId>,
    );

    /// Adds a route.
    #[must_use]
    pub fn with_route(mut self, route: RouteConfig) -> Self {
        self.routes.push(route);
        self
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            routes: Vec::new(),
            alternatives: Vec::new(),
        }
    }
}

/// Per-provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// Whether the provider may be used. Default true.
    pub enabled: bool,
    /// No traffic on or after this date (`YYYY-MM-DD`). Default none.
    #[serde(with = "iso_date::option")]
    pub sunset: Option<Date>,
    /// Jobs in flight at once (submit → download). Default: the provider's capability, else none.
    pub max_in_flight: Option<u32>,
    /// Requests (submits and polls) per minute. Default: the provider's capability, else none.
    pub requests_per_minute: Option<u32>,
    /// Calls to the provider in progress at once — submits, polls, job lookups, cancels and
    /// downloads, a download until its body is read. Each call holds an HTTP connection and
    /// its buffers, so this bounds the sockets and memory of many jobs in flight: 10,000 jobs
    /// polled by 256 calls at most fit in the memory of a few hundred. Calls beyond it wait
    /// their turn. Default [`DEFAULT_MAX_CONCURRENT_CALLS`]; `0` is rejected when read.
    pub max_concurrent_calls: Option<NonZeroU32>,
    /// Default price of its routes. Default none.
    pub price: Option<Price>,
}

/// Calls to one provider in progress at once unless
/// [`ProviderSettings::max_concurrent_calls`] says otherwise.
pub const DEFAULT_MAX_CONCURRENT_CALLS: NonZeroU32 = match NonZeroU32::new(256) {
    Some(n) => n,
    None => panic!("256 is not zero"),
};

impl ProviderSettings {
    crate::setters::with_setters!(
        with_enabled => enabled: bool,
        with_sunset => sunset?: Date,
        with_max_in_flight => max_in_flight?: u32,
        with_requests_per_minute => requests_per_minute?: u32,
        with_max_concurrent_calls => max_concurrent_calls?: NonZeroU32,
        with_price => price?: Price,
    );
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            sunset: None,
            max_in_flight: None,
            requests_per_minute: None,
            max_concurrent_calls: None,
            price: None,
        }
    }
}

/// The provider breaker: how failures open it and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HealthPolicy {
    /// Consecutive provider-side failures that open the breaker (rate limits do not count:
    /// they lower the adaptive cap on submits instead). Default 3.
    pub failure_threshold: u32,
    /// First cooldown, in seconds; doubles each time the breaker reopens. Default 30.
    pub base_cooldown_secs: f64,
    /// Longest cooldown, in seconds. Default 600.
    pub max_cooldown_secs: f64,
}

impl HealthPolicy {
    crate::setters::with_setters!(
        with_failure_threshold => failure_threshold: u32,
        with_base_cooldown_secs => base_cooldown_secs: f64,
        with_max_cooldown_secs => max_cooldown_secs: f64,
    );
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            base_cooldown_secs: 30.0,
            max_cooldown_secs: 600.0,
        }
    }
}

/// Everything the router knows, as data: models and their routes, provider settings, the
/// default strategy and the breaker policy.
///
/// This and the structs it holds ([`ModelConfig`], [`RouteConfig`], [`ProviderSettings`],
/// [`HealthPolicy`], [`Price`]) are `#[non_exhaustive]`: read them from a file
/// ([`from_json`](Self::from_json), [`from_toml`](Self::from_toml)) or build them with their
/// constructors and `with_*` setters.
///
/// ```
/// use std::num::NonZeroU32;
/// use cineflow_core::router::{
///     HealthPolicy, ModelConfig, Price, ProviderSettings, RouteConfig, RouterConfig, Strategy,
/// };
/// use cineflow_core::{ModelId, ProviderId};
///
/// let seedance = ProviderId::new("seedance")?;
/// let config = RouterConfig::default()
///     .with_strategy(Strategy::Cheapest)
///     .with_health(HealthPolicy::default().with_failure_threshold(5))
///     .with_model(
///         ModelId::new("seedance-2")?,
///         ModelConfig::default().with_route(
///             RouteConfig::new(seedance.clone(), vec!["seedance-2-0".into()])
///                 .with_priority(1)
///                 .with_weight(2)
///                 .with_price(Price::default().with_per_second(0.1).with_currency("USD")),
///         ),
///     )
///     .with_provider(
///         seedance.clone(),
///         ProviderSettings::default()
///             .with_max_in_flight(10)
///             .with_max_concurrent_calls(NonZeroU32::MIN),
///     )
///     .with_alias(ModelId::new("sora2")?, ModelId::new("seedance-2")?);
/// assert_eq!(config.providers[&seedance].max_in_flight, Some(10));
/// assert_eq!(config.models[&ModelId::new("seedance-2")?].routes[0].priority, 1);
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Logical models.
    pub models: BTreeMap<ModelId, ModelConfig>,
    /// Provider settings (providers without an entry use the defaults).
    pub providers: BTreeMap<ProviderId, ProviderSettings>,
    /// The default strategy.
    pub strategy: Strategy,
    /// The breaker policy.
    pub health: HealthPolicy,
    /// Opt-in aliases, `requested → served` (e.g. `sora2 = "seedance-2"` under `[aliases]`): a
    /// run asking for `requested` runs on `served`, and each attempt records the substitution
    /// ([`Attempt::model_alias`](crate::Attempt::model_alias)). An alias wins over a model of
    /// the same name; its target must be a model of the catalog that is not retired and not an
    /// alias itself. Default none: a retired model is refused.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<ModelId, ModelId>,
}

/// What the configuration errors call it.
const WHAT: &str = "router configuration";

/// The day OpenAI's own Sora / Videos API stopped (SDKs deprecated every `videos.*` method).
pub const OPENAI_SORA_SUNSET: Date = time::macros::date!(2026 - 09 - 24);

impl RouterConfig {
    crate::config_file::file_methods!(WHAT);

    crate::setters::with_setters!(
        with_strategy => strategy: Strategy,
        with_health => health: HealthPolicy,
    );

    /// Adds (or replaces) logical model `id`.
    #[must_use]
    pub fn with_model(mut self, id: ModelId, model: ModelConfig) -> Self {
        self.models.insert(id, model);
        self
    }

    /// Adds (or replaces) the settings of `provider`.
    #[must_use]
    pub fn with_provider(mut self, provider: ProviderId, settings: ProviderSettings) -> Self {
        self.providers.insert(provider, settings);
        self
    }

    /// Adds (or replaces) the alias `requested → served`.
    #[must_use]
    pub fn with_alias(mut self, requested: ModelId, served: ModelId) -> Self {
        self.aliases.insert(requested, served);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The same configuration as `HAND_WRITTEN_JSON`.
    const HAND_WRITTEN_TOML: &str = r#"
strategy = "weighted"

[models.sora2]
[[models.sora2.routes]]
provider = "sora_hk"
vendor_models = ["sora2"]
priority = 10
weight = 3
price = { per_video = 0.25, per_second = 0.05, currency = "USD" }

[[models.sora2.routes]]
provider = "openai"
vendor_models = ["sora-2", "sora-2-2025-12-08"]
priority = 20
sunset = "2026-09-24"

[providers.openai]
sunset = "2026-09-24"
requests_per_minute = 60

[health]
base_cooldown_secs = 2.5
"#;

    const HAND_WRITTEN_JSON: &str = r#"{
        "strategy": "weighted",
        "models": {"sora2": {"routes": [
            {"provider": "sora_hk", "vendor_models": ["sora2"], "priority": 10, "weight": 3,
             "price": {"per_video": 0.25, "per_second": 0.05, "currency": "USD"}},
            {"provider": "openai", "vendor_models": ["sora-2", "sora-2-2025-12-08"],
             "priority": 20, "sunset": "2026-09-24"}
        ]}},
        "providers": {"openai": {"sunset": "2026-09-24", "requests_per_minute": 60}},
        "health": {"base_cooldown_secs": 2.5}
    }"#;

    fn examples_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/config")
    }

    #[test]
    fn the_shipped_catalogs_round_trip_through_toml_unchanged() {
        let mut aliased = RouterConfig::default_catalog();
        aliased.aliases.insert(
            ModelId::new("sora2").unwrap(),
            ModelId::new("seedance-2").unwrap(),
        );
        for catalog in [
            RouterConfig::cineflow_seed(),
            RouterConfig::living_catalog(),
            RouterConfig::default_catalog(),
            aliased,
        ] {
            let toml = catalog.to_toml().unwrap();
            assert_eq!(RouterConfig::from_toml(&toml).unwrap(), catalog, "{toml}");
        }
    }

    #[test]
    fn a_hand_written_toml_config_loads_to_the_same_config_as_the_equivalent_json() {
        let from_toml = RouterConfig::from_toml(HAND_WRITTEN_TOML).unwrap();
        let from_json = RouterConfig::from_json(HAND_WRITTEN_JSON).unwrap();
        assert_eq!(from_toml, from_json);
        let sora2 = &from_toml.models[&ModelId::new("sora2").unwrap()];
        assert_eq!(sora2.routes[0].weight, 3);
        assert_eq!(sora2.routes[1].weight, 1, "the default weight");
        assert_eq!(sora2.routes[1].sunset, Some(OPENAI_SORA_SUNSET));
        assert_eq!(from_toml.health.base_cooldown_secs, 2.5);
        assert_eq!(from_toml.health.max_cooldown_secs, 600.0, "a default");
    }

    #[test]
    fn a_bad_value_in_a_toml_config_gives_an_error_naming_the_key() {
        let bad = HAND_WRITTEN_TOML.replace("weight = 3", "weight = -3");
        let err = RouterConfig::from_toml(&bad).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("router configuration"), "{msg}");
        assert!(msg.contains("weight = -3"), "{msg}");
        assert!(msg.contains("line 9"), "{msg}");
        let bad =
            HAND_WRITTEN_TOML.replace("2026-09-24\"\n\n[providers", "2026-13-24\"\n\n[providers");
        let msg = RouterConfig::from_toml(&bad).unwrap_err().to_string();
        assert!(msg.contains("sunset = \"2026-13-24\""), "{msg}");
    }

    #[test]
    fn a_config_file_with_an_unknown_extension_is_refused_naming_the_path() {
        for path in ["conf/router.yaml", "conf/router"] {
            let err = RouterConfig::from_str_for_path(HAND_WRITTEN_JSON, path).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            assert!(err.to_string().contains(path), "{err}");
        }
    }

    #[test]
    fn a_config_file_is_read_as_json_or_toml_by_its_extension() {
        let json = RouterConfig::from_str_for_path(HAND_WRITTEN_JSON, "a/router.JSON").unwrap();
        let toml = RouterConfig::from_str_for_path(HAND_WRITTEN_TOML, "a/router.toml").unwrap();
        assert_eq!(json, toml);
        // JSON in a .toml file is a TOML error that names the file.
        let err = RouterConfig::from_str_for_path(HAND_WRITTEN_JSON, "a/router.toml").unwrap_err();
        assert!(err.to_string().contains("a/router.toml"), "{err}");
    }

    #[tokio::test]
    async fn the_sample_configs_in_examples_load_and_agree() {
        let toml = RouterConfig::load(examples_dir().join("router.toml"))
            .await
            .unwrap();
        let json = RouterConfig::load(examples_dir().join("router.json"))
            .await
            .unwrap();
        assert_eq!(toml, json);
        let sora2 = ModelId::new("sora2").unwrap();
        let seedance = ModelId::new("seedance-2").unwrap();
        assert_eq!(toml.aliases.get(&sora2), Some(&seedance));
        assert_eq!(toml.retirement(&sora2), Some(OPENAI_SORA_SUNSET));
        assert_eq!(toml.resolve(&sora2, OPENAI_SORA_SUNSET).unwrap(), seedance);
        let sora2 = &toml.models[&sora2];
        assert_eq!(sora2.routes.len(), 3);
        assert!(!sora2.routes[2].enabled);
        assert_eq!(sora2.alternatives[0], seedance);
        let sora_hk = &toml.providers[&ProviderId::new("sora_hk").unwrap()];
        assert_eq!(sora_hk.max_concurrent_calls, NonZeroU32::new(64));
        assert_eq!(
            RouterConfig::from_toml(&toml.to_toml().unwrap()).unwrap(),
            toml
        );
    }

    #[tokio::test]
    async fn a_missing_config_file_is_an_error_naming_the_path() {
        let path = examples_dir().join("no-such-router.toml");
        let err = RouterConfig::load(&path).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("no-such-router.toml"), "{err}");
    }
}
