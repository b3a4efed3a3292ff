//! Routing: which provider and vendor model serve each attempt.
//!
//! A [`Router`] holds a model catalog ([`RouterConfig`]: logical models → routes with priority,
//! weight, enabled flag, sunset, price and service tier), the registered providers, and each provider's live
//! health. For every attempt it filters the candidates — disabled, past their sunset, unable to
//! serve the request (capabilities), failed earlier in this task, breaker open, asked to wait
//! (`Retry-After`), at their in-flight cap — and picks one with a [`Strategy`]. When nothing is
//! left, the error names every candidate and why it was excluded.
//!
//! Every call to a provider first takes one of the provider's call slots: at most
//! [`max_concurrent_calls`](ProviderSettings::max_concurrent_calls) calls run at once per
//! provider, however many jobs are in flight.
//!
//! Submits also run under an adaptive cap per provider ([`submit_limit`](Router::submit_limit)):
//! each rate-limited submit (429) halves it (floor 1), each accepted one raises it by one (up
//! to `max_concurrent_calls`), so a vendor that rate-limits gets fewer submits at once instead
//! of a pause of every call per 429. The `Retry-After` of a 429 is waited out by the task that
//! got it, not by the whole provider.
//!
//! The catalog can be edited while runs are in flight (enable/disable, priority, weight, a
//! route's vendor models).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use time::{Date, OffsetDateTime};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::error_code::ErrorCode;
use crate::ids::{ModelId, ProviderId};
use crate::provider::{GenerationRequest, ProviderError, ProviderJob, VideoProvider};

mod adaptive;
mod calls;
mod catalog;
mod config;
mod health;
mod live;
mod price;
#[cfg(test)]
mod tests;

pub(crate) use calls::CallKind;
pub use catalog::SORA_SUNSET;
pub use config::{
    DEFAULT_MAX_CONCURRENT_CALLS, HealthPolicy, ModelConfig, OPENAI_SORA_SUNSET, Price,
    ProviderSettings, RouteConfig, RouterConfig, Strategy,
};
use health::Health;
pub(crate) use health::InFlight;
pub use price::{FLEX_PRICE_RATIO, TOKEN_FPS};

/// A previous attempt of the task, as the router sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tried {
    /// The provider used.
    pub provider: ProviderId,
    /// The vendor model used.
    pub vendor_model: String,
    /// How it failed.
    pub code: ErrorCode,
    /// Whether that failure was retryable.
    pub retryable: bool,
}

/// The provider and vendor model chosen for one attempt.
#[derive(Clone)]
pub(crate) struct Pick {
    /// The provider.
    pub provider: Arc<dyn VideoProvider>,
    /// The vendor model.
    pub vendor_model: String,
    /// Why it was chosen (recorded on the attempt).
    pub reason: String,
    /// The cost estimate, if the route is priced.
    pub estimate: Option<f64>,
    /// The length, in seconds, the estimate assumes: the request's, or for a model-chosen
    /// length the longest the vendor model may pick
    /// ([`ModelCapabilities::priced_duration`](crate::ModelCapabilities::priced_duration)).
    pub priced_duration_s: u32,
    /// The route's price on its service tier, if the route is priced.
    pub price: Option<Price>,
    /// The service tier the route asks for (set it on the request).
    pub service_tier: Option<crate::provider::ServiceTier>,
    /// Whether this candidate already failed for this task (a last-resort retry).
    pub repeat: bool,
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick")
            .field("provider", self.provider.id())
            .field("vendor_model", &self.vendor_model)
            .field("reason", &self.reason)
            .field("estimate", &self.estimate)
            .field("priced_duration_s", &self.priced_duration_s)
            .field("repeat", &self.repeat)
            .finish()
    }
}

/// The outcome of [`Router::select`].
#[derive(Debug)]
pub(crate) enum Selection {
    /// Use this.
    Picked(Pick),
    /// Every candidate is temporarily unavailable; try again at `until` (or soon, if `None`).
    Wait {
        /// When the first candidate may be available.
        until: Option<Instant>,
        /// Why each candidate is excluded.
        reasons: String,
    },
    /// No candidate can serve the request: an [`Error::NoProvider`] naming each exclusion.
    NoProvider(Error),
}

/// One of a provider's call slots, held while a call runs (see
/// [`ProviderSettings::max_concurrent_calls`]); dropping it lets the next call start. A permit
/// from [`submit_gate`](Router::submit_gate) also holds a place under the provider's adaptive
/// cap on submits; hand it back with [`record_submit`](Router::record_submit).
#[derive(Debug)]
#[must_use = "the call slot is released as soon as the permit is dropped"]
pub(crate) struct CallPermit {
    slot: Option<calls::CallSlot>,
    submit: Option<adaptive::AdaptivePermit>,
}

struct Slot {
    provider: Arc<dyn VideoProvider>,
    health: Health,
}

/// Routes attempts to providers. See the [module docs](self).
pub struct Router {
    slots: HashMap<ProviderId, Slot>,
    config: RwLock<RouterConfig>,
    rng: Mutex<fastrand::Rng>,
    today: Option<Date>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&ProviderId> = self.slots.keys().collect();
        ids.sort();
        f.debug_struct("Router")
            .field("providers", &ids)
            .field("config", &*self.read())
            .finish_non_exhaustive()
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

struct Candidate<'a> {
    route_index: usize,
    route: &'a RouteConfig,
    vendor_model: &'a str,
    slot: &'a Slot,
    repeat: bool,
    estimate: Option<f64>,
    priced_duration_s: u32,
    price: Option<Price>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::from_config(RouterConfig::default())
    }

    /// A router over a catalog; register providers with [`provider`](Self::provider).
    pub fn from_config(config: RouterConfig) -> Self {
        Self {
            slots: HashMap::new(),
            config: RwLock::new(config),
            rng: Mutex::new(fastrand::Rng::new()),
            today: None,
        }
    }

    /// Registers a provider under its id (replacing one with the same id).
    pub fn provider(mut self, provider: Arc<dyn VideoProvider>) -> Self {
        let id = provider.id().clone();
        let health = self.health_for(&id, provider.as_ref());
        self.slots.insert(id, Slot { provider, health });
        self
    }

    /// Registers `provider` (if new) and adds a route for `model` after the existing ones.
    pub fn route(
        self,
        model: ModelId,
        provider: Arc<dyn VideoProvider>,
        vendor_model: impl Into<String>,
    ) -> Self {
        let id = provider.id().clone();
        let this = if self.slots.contains_key(&id) {
            self
        } else {
            self.provider(provider)
        };
        {
            let mut cfg = this.write();
            let entry = cfg.models.entry(model).or_default();
            let priority = entry
                .routes
                .iter()
                .map(|r| r.priority)
                .max()
                .map_or(10, |p| p + 10);
            entry
                .routes
                .push(RouteConfig::new(id, vec![vendor_model.into()]).with_priority(priority));
        }
        this
    }

    /// Makes weighted picks repeatable.
    pub fn with_seed(self, seed: u64) -> Self {
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) = fastrand::Rng::with_seed(seed);
        self
    }

    /// Sets the default strategy.
    pub fn with_strategy(self, strategy: Strategy) -> Self {
        self.write().strategy = strategy;
        self
    }

    /// Fixes "today" for sunset checks (tests); default: the current UTC date.
    pub fn with_today(mut self, today: Date) -> Self {
        self.today = Some(today);
        self
    }

    fn health_for(&self, id: &ProviderId, provider: &dyn VideoProvider) -> Health {
        let cfg = self.read();
        let settings = cfg.providers.get(id);
        let caps = provider.capabilities();
        Health::new(
            settings
                .and_then(|s| s.max_in_flight)
                .or(caps.max_in_flight),
            settings
                .and_then(|s| s.requests_per_minute)
                .or(caps.requests_per_minute),
            settings
                .and_then(|s| s.max_concurrent_calls)
                .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RouterConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RouterConfig> {
        self.config.write().unwrap_or_else(|p| p.into_inner())
    }

    fn today(&self) -> Date {
        self.today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date())
    }

    /// A copy of the current catalog.
    pub fn config(&self) -> RouterConfig {
        self.read().clone()
    }

    /// Whether the catalog has `model`.
    pub fn serves(&self, model: &ModelId) -> bool {
        self.read()
            .models
            .get(model)
            .is_some_and(|m| !m.routes.is_empty())
    }

    /// Whether no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The registered provider with this id.
    pub fn provider_by_id(&self, id: &ProviderId) -> Option<Arc<dyn VideoProvider>> {
        self.slots.get(id).map(|s| Arc::clone(&s.provider))
    }

    /// Enables or disables a provider at runtime (no restart; in-flight jobs finish).
    pub fn set_provider_enabled(&self, id: &ProviderId, enabled: bool) {
        self.write()
            .providers
            .entry(id.clone())
            .or_default()
            .enabled = enabled;
    }

    /// Enables or disables a logical model at runtime.
    pub fn set_model_enabled(&self, model: &ModelId, enabled: bool) -> Result<()> {
        let mut cfg = self.write();
        let m = cfg
            .models
            .get_mut(model)
            .ok_or_else(|| Error::not_found("model", model))?;
        m.enabled = enabled;
        Ok(())
    }

    /// Changes a route's priority and weight at runtime.
    pub fn set_route(
        &self,
        model: &ModelId,
        provider: &ProviderId,
        priority: Option<i32>,
        weight: Option<u32>,
        enabled: Option<bool>,
    ) -> Result<()> {
        self.edit_route(model, provider, |route| {
            if let Some(p) = priority {
                route.priority = p;
            }
            if let Some(w) = weight {
                route.weight = w;
            }
            if let Some(e) = enabled {
                route.enabled = e;
            }
        })
    }

    /// The price of `vendor_model` at `provider` for `model` (route price, else provider
    /// price), on the route's service tier.
    pub fn price(
        &self,
        model: &ModelId,
        provider: &ProviderId,
        vendor_model: &str,
    ) -> Option<Price> {
        let cfg = self.read();
        cfg.models
            .get(model)
            .and_then(|m| {
                m.routes.iter().find(|r| {
                    &r.provider == provider && r.vendor_models.iter().any(|v| v == vendor_model)
                })
            })
            .and_then(|r| {
                r.effective_price(cfg.providers.get(provider).and_then(|p| p.price.as_ref()))
            })
    }

    /// Picks the route for one attempt.
    pub(crate) fn select(
        &self,
        model: &ModelId,
        req: &GenerationRequest,
        tried: &[Tried],
        strategy: Option<Strategy>,
    ) -> Selection {
        self.select_inner(model, req, tried, strategy, true)
    }

    /// The cost the given strategy's first choice would have, ignoring live health (for dry-run
    /// previews and budgets).
    pub fn estimate(
        &self,
        model: &ModelId,
        req: &GenerationRequest,
        strategy: Option<Strategy>,
    ) -> Option<f64> {
        match self.select_inner(model, req, &[], strategy, false) {
            Selection::Picked(p) => p.estimate,
            _ => None,
        }
    }

    fn select_inner(
        &self,
        model: &ModelId,
        req: &GenerationRequest,
        tried: &[Tried],
        strategy: Option<Strategy>,
        live: bool,
    ) -> Selection {
        let cfg = self.read();
        let strategy = strategy.unwrap_or(cfg.strategy);
        let no_provider = |reason: String| {
            Selection::NoProvider(Error::NoProvider {
                model: model.to_string(),
                reason,
            })
        };
        let Some(model_cfg) = cfg.models.get(model) else {
            return no_provider("the model is not in the catalog".into());
        };
        if !model_cfg.enabled {
            return no_provider("the model is disabled".into());
        }
        let today = self.today();
        let mut excluded: Vec<String> = Vec::new();
        let mut waits: Vec<Option<Instant>> = Vec::new();
        let mut fresh: Vec<Candidate<'_>> = Vec::new();
        let mut repeats: Vec<Candidate<'_>> = Vec::new();
        for (route_index, route) in model_cfg.routes.iter().enumerate() {
            let settings = cfg.providers.get(&route.provider);
            let price = route.effective_price(settings.and_then(|s| s.price.as_ref()));
            // The first untried vendor model of a route is its candidate; tried ones are
            // last resorts.
            let mut route_fresh = None;
            for vendor_model in &route.vendor_models {
                let label = format!("{}/{}", route.provider, vendor_model);
                let why = (|| {
                    if !route.enabled {
                        return Some("route disabled".to_owned());
                    }
                    let Some(slot) = self.slots.get(&route.provider) else {
                        return Some("provider not configured".to_owned());
                    };
                    if settings.is_some_and(|s| !s.enabled) {
                        return Some("provider disabled".to_owned());
                    }
                    for sunset in [route.sunset, settings.and_then(|s| s.sunset)]
                        .into_iter()
                        .flatten()
                    {
                        if today >= sunset {
                            return Some(format!("past its sunset ({sunset})"));
                        }
                    }
                    let mut probe = req.clone();
                    probe.vendor_model.clone_from(vendor_model);
                    probe.service_tier = route.service_tier;
                    if let Some(why) = slot.provider.capabilities().rejects(&probe) {
                        return Some(why);
                    }
                    if let Some(t) = tried.iter().find(|t| {
                        t.provider == route.provider && (!t.retryable || !is_transient(t.code))
                    }) {
                        return Some(format!("failed earlier in this task ({})", t.code));
                    }
                    None
                })();
                if let Some(why) = why {
                    excluded.push(format!("{label}: {why}"));
                    continue;
                }
                let Some(slot) = self.slots.get(&route.provider) else {
                    continue;
                };
                if live && let Err(u) = slot.health.availability() {
                    excluded.push(format!("{label}: {}", u.describe()));
                    waits.push(u.until());
                    continue;
                }
                let repeat = tried
                    .iter()
                    .any(|t| t.provider == route.provider && &t.vendor_model == vendor_model);
                let priced_duration_s = slot
                    .provider
                    .capabilities()
                    .model(vendor_model)
                    .map_or(req.duration_s, |m| m.priced_duration(req));
                let estimate = price.as_ref().map(|p| {
                    if priced_duration_s == req.duration_s {
                        p.estimate(req)
                    } else {
                        let mut priced = req.clone();
                        priced.duration_s = priced_duration_s;
                        p.estimate(&priced)
                    }
                });
                let c = Candidate {
                    route_index,
                    route,
                    vendor_model,
                    slot,
                    repeat,
                    estimate,
                    priced_duration_s,
                    price: price.clone(),
                };
                if repeat {
                    repeats.push(c);
                } else if route_fresh.is_none() {
                    route_fresh = Some(c);
                }
            }
            fresh.extend(route_fresh);
        }
        let pool = if fresh.is_empty() { repeats } else { fresh };
        if pool.is_empty() {
            let reasons = if excluded.is_empty() {
                "no route configured".to_owned()
            } else {
                excluded.join("; ")
            };
            if !waits.is_empty() {
                let until = waits.iter().flatten().min().copied();
                return Selection::Wait { until, reasons };
            }
            return no_provider(reasons);
        }
        let by_priority = |a: &Candidate<'_>, b: &Candidate<'_>| {
            a.route
                .priority
                .cmp(&b.route.priority)
                .then(a.route_index.cmp(&b.route_index))
        };
        let chosen = match strategy {
            Strategy::Priority => pool.iter().min_by(|a, b| by_priority(a, b)),
            Strategy::LeastBusy => pool.iter().min_by(|a, b| {
                let load = |c: &Candidate<'_>| {
                    c.slot
                        .health
                        .in_flight
                        .load(std::sync::atomic::Ordering::SeqCst)
                };
                load(a).cmp(&load(b)).then_with(|| by_priority(a, b))
            }),
            Strategy::Cheapest => pool.iter().min_by(|a, b| {
                let cost = |c: &Candidate<'_>| c.estimate.unwrap_or(f64::INFINITY);
                cost(a).total_cmp(&cost(b)).then_with(|| by_priority(a, b))
            }),
            Strategy::Weighted => {
                let total: u64 = pool.iter().map(|c| u64::from(c.route.weight)).sum();
                if total == 0 {
                    pool.iter().min_by(|a, b| by_priority(a, b))
                } else {
                    let mut ticket = self
                        .rng
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .u64(..total);
                    pool.iter().find(|c| {
                        let w = u64::from(c.route.weight);
                        if ticket < w {
                            true
                        } else {
                            ticket -= w;
                            false
                        }
                    })
                }
            }
        };
        let Some(c) = chosen else {
            return no_provider("no candidate".into());
        };
        let mut reason = format!(
            "{strategy}: {}/{} (priority {}, weight {}{}{})",
            c.route.provider,
            c.vendor_model,
            c.route.priority,
            c.route.weight,
            c.route
                .service_tier
                .map(|t| format!(", service_tier {t}"))
                .unwrap_or_default(),
            c.estimate
                .map(|e| format!(", estimate {e:.4}"))
                .unwrap_or_default()
        );
        if let Some(last) = tried.last() {
            reason.push_str(&format!(
                "; after {}/{} failed ({})",
                last.provider, last.vendor_model, last.code
            ));
        }
        if !excluded.is_empty() {
            reason.push_str(&format!("; excluded: {}", excluded.join("; ")));
        }
        Selection::Picked(Pick {
            provider: Arc::clone(&c.slot.provider),
            vendor_model: c.vendor_model.to_owned(),
            reason,
            estimate: c.estimate,
            priced_duration_s: c.priced_duration_s,
            price: c.price.clone(),
            service_tier: c.route.service_tier,
            repeat: c.repeat,
        })
    }

    /// Waits until a request to `provider` (a submit, poll, lookup or cancel: `kind`) is
    /// allowed: past its `Retry-After` and within its rate limit, then a free call slot (taken
    /// last, so that requests waiting out a `Retry-After` do not keep downloads from their
    /// slots; when none is free, a freed one goes to a download first, then a submit, then a
    /// status read: [`CallKind`]). The request may run while the returned permit lives.
    pub(crate) async fn gate(&self, provider: &ProviderId, kind: CallKind) -> CallPermit {
        if let Some(slot) = self.slots.get(provider) {
            slot.health.gate().await;
        }
        self.call_permit(provider, kind).await
    }

    /// Like [`gate`](Self::gate), for a submit: first waits for a place under the provider's
    /// adaptive cap on submits in progress (see the [module docs](self)). Hand the permit to
    /// [`record_submit`](Self::record_submit) with the submit's outcome.
    pub(crate) async fn submit_gate(&self, provider: &ProviderId) -> CallPermit {
        let submit = match self.slots.get(provider) {
            Some(slot) => Some(slot.health.submits.acquire().await),
            None => None,
        };
        CallPermit {
            submit,
            ..self.gate(provider, CallKind::Submit).await
        }
    }

    /// Sends a paid submit of `req` to `provider` once, through its gates: waits for a place
    /// ([`submit_gate`](Self::submit_gate)), marks the start ([`begin_submit`](Self::begin_submit)),
    /// submits, and records the outcome ([`record_submit`](Self::record_submit)).
    pub(crate) async fn submit(
        &self,
        provider: &dyn VideoProvider,
        req: &GenerationRequest,
    ) -> std::result::Result<ProviderJob, ProviderError> {
        let permit = self.submit_gate(provider.id()).await;
        self.submit_with(permit, provider, req).await
    }

    /// [`submit`](Self::submit) with the place already taken (`permit`, from
    /// [`submit_gate`](Self::submit_gate)): for a caller that records the attempt only once the
    /// submit can go, so that tasks waiting for a place hold no attempt yet.
    pub(crate) async fn submit_with(
        &self,
        permit: CallPermit,
        provider: &dyn VideoProvider,
        req: &GenerationRequest,
    ) -> std::result::Result<ProviderJob, ProviderError> {
        let pid = provider.id();
        self.begin_submit(pid);
        let result = provider.submit(req).await;
        self.record_submit(pid, permit, result.as_ref().map(|_| ()));
        result
    }

    /// Records a submit's outcome ([`record`](Self::record)) and adjusts the provider's
    /// adaptive cap on submits: a rate limit lowers it, an accepted submit raises it. A rate
    /// limit on the account's jobs running at once
    /// ([`ProviderError::is_concurrency_limited`]) also caps the provider's jobs in flight at
    /// the number it has ([`in_flight_cap`](Self::in_flight_cap)); each accepted submit raises
    /// that cap by one again. Frees the permit's places.
    pub(crate) fn record_submit(
        &self,
        provider: &ProviderId,
        permit: CallPermit,
        outcome: Result<(), &ProviderError>,
    ) {
        let CallPermit { slot, submit } = permit;
        drop(slot);
        if let Some(submit) = submit {
            match outcome {
                Ok(()) => submit.accepted(),
                Err(e) if e.code() == ErrorCode::RateLimited => submit.rate_limited(),
                Err(_) => drop(submit),
            }
        }
        if let Some(slot) = self.slots.get(provider) {
            match outcome {
                Ok(()) => slot.health.submit_accepted(),
                Err(e) if e.code() == ErrorCode::RateLimited && e.is_concurrency_limited() => {
                    slot.health.concurrency_refused();
                }
                Err(_) => {}
            }
        }
        self.record(provider, outcome);
    }

    /// The cap on `provider`'s jobs in flight now: its configured `max_in_flight`, lowered by
    /// what the vendor's concurrency refusals taught
    /// ([`ProviderError::is_concurrency_limited`]); `None` when it has none.
    #[cfg(test)]
    pub(crate) fn in_flight_cap(&self, provider: &ProviderId) -> Option<u32> {
        self.slots
            .get(provider)
            .and_then(|s| s.health.in_flight_cap())
    }

    /// Submits `provider` lets run at once now (its adaptive cap; see the
    /// [module docs](self)), or `None` for a provider the router does not know.
    pub fn submit_limit(&self, provider: &ProviderId) -> Option<u32> {
        self.slots.get(provider).map(|s| s.health.submits.current())
    }

    /// Waits for a free call slot of `provider` without the rate limit — for downloads, which
    /// are not requests to the vendor's API (`kind` [`CallKind::Download`]), and for the
    /// requests [`gate`](Self::gate) lets through. Keep the permit until the body is read.
    pub(crate) async fn call_permit(&self, provider: &ProviderId, kind: CallKind) -> CallPermit {
        let slot = match self.slots.get(provider) {
            Some(slot) => Some(slot.health.call_slot(kind).await),
            None => None,
        };
        CallPermit { slot, submit: None }
    }

    /// Marks the start of a submit (a half-open probe if the breaker's cooldown is over).
    pub(crate) fn begin_submit(&self, provider: &ProviderId) {
        if let Some(slot) = self.slots.get(provider) {
            slot.health.begin_call();
        }
    }

    /// Records the outcome of a call for the provider's health.
    pub(crate) fn record(&self, provider: &ProviderId, outcome: Result<(), &ProviderError>) {
        if let Some(slot) = self.slots.get(provider) {
            let policy = self.read().health.clone();
            slot.health.record(&policy, outcome);
        }
    }

    /// Takes an in-flight slot of `provider` until the returned guard is dropped (a provider
    /// the router does not know gets a guard that counts nowhere).
    pub(crate) fn take_slot(&self, provider: &ProviderId) -> InFlight {
        match self.slots.get(provider) {
            Some(s) => InFlight::take(&s.health.in_flight),
            None => InFlight::take(&Arc::default()),
        }
    }

    /// Jobs in flight at `provider`.
    pub fn in_flight(&self, provider: &ProviderId) -> u32 {
        self.slots.get(provider).map_or(0, |s| {
            s.health.in_flight.load(std::sync::atomic::Ordering::SeqCst)
        })
    }

    /// Whether `provider`'s breaker is open.
    pub fn is_open(&self, provider: &ProviderId) -> bool {
        self.slots.get(provider).is_some_and(|s| s.health.is_open())
    }
}

/// Failures after which the same provider may be tried again later (not verdicts about the
/// account).
fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::ProviderUnavailable
            | ErrorCode::Timeout
            | ErrorCode::Network
            | ErrorCode::Internal
    )
}

/// Whether a failed submit or job may be tried again on another route (or the same one later):
/// provider-side failures only, never content-policy or bad-request verdicts.
pub(crate) fn may_fail_over(e: &ProviderError) -> bool {
    e.is_retryable() || health::is_provider_side(e.code())
}
