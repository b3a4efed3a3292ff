//! Route prices: per video, per second of video and per million vendor tokens, and what the
//! `flex` service tier does to them.

use serde::{Deserialize, Serialize};

use crate::media::Resolution;
use crate::provider::{GenerationRequest, ServiceTier};

/// The share of the online token rate the `flex` tier costs when a price names no flex rate:
/// the vendors' "about half price" (Ark / ModelArk `service_tier: flex`).
pub const FLEX_PRICE_RATIO: f64 = 0.5;

/// Frames per second the token estimate assumes (Ark reports `framespersecond: 24`).
pub const TOKEN_FPS: u64 = 24;

/// A price: per video, per second of video and per million vendor tokens, added up. Estimates
/// are approximate (floating point).
///
/// Token-priced vendors (Seedance on Ark / ModelArk bills `usage.completion_tokens`) count
/// `width × height × fps × seconds / 1024` tokens for a video ([`tokens`](Self::tokens)). The
/// vendor keeps the pixel count of a resolution about the same whatever the aspect ratio
/// (720p is 1280×720 at 16:9 and 960×960 at 1:1), so the estimate needs the duration and the
/// resolution only. Seconds of reference video the vendor also bills are not counted (their
/// length is not known before the submit); the usage reported on the attempt
/// ([`AttemptCost`](crate::AttemptCost)) is the real count.
///
/// ```
/// use cineflow_core::{GenerationRequest, Price, Resolution, ServiceTier, TaskId};
/// // Seedance 2.0 on ModelArk: USD 7.0 per million tokens at 720p.
/// let price = Price::per_million_tokens(7.0, "USD");
/// let req = GenerationRequest::new(TaskId::new(), "m", "A paper boat.", 5)
///     .with_resolution(Resolution::P720);
/// assert_eq!(Price::tokens(5, Resolution::P720), 108_000);
/// assert!((price.estimate(&req) - 0.756).abs() < 1e-9);
/// // `flex` without a rate of its own: half the token rate.
/// let flex = price.for_tier(Some(ServiceTier::Flex));
/// assert!((flex.estimate(&req) - 0.378).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Price {
    /// Fixed price per video. Default 0.
    pub per_video: f64,
    /// Price per second of video. Default 0.
    pub per_second: f64,
    /// Price per million vendor tokens (the `default`, online, tier). Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_million_tokens: Option<f64>,
    /// Price per million vendor tokens under `service_tier: flex`. Default none: a route on
    /// the flex tier pays [`FLEX_PRICE_RATIO`] × `per_million_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flex_per_million_tokens: Option<f64>,
    /// Currency or unit, e.g. `USD`. Default empty.
    pub currency: String,
}

impl Price {
    /// A token price: `rate` per million vendor tokens, in `currency`.
    pub fn per_million_tokens(rate: f64, currency: impl Into<String>) -> Self {
        Self {
            per_million_tokens: Some(rate),
            currency: currency.into(),
            ..Self::default()
        }
    }

    crate::setters::with_setters!(
        with_per_video => per_video: f64,
        with_per_second => per_second: f64,
        with_per_million_tokens => per_million_tokens?: f64,
    );

    /// Sets [`currency`](Self::currency).
    #[must_use]
    pub fn with_currency(mut self, currency: impl Into<String>) -> Self {
        self.currency = currency.into();
        self
    }

    /// Sets the rate per million tokens under `service_tier: flex`.
    pub fn with_flex_per_million_tokens(mut self, rate: f64) -> Self {
        self.flex_per_million_tokens = Some(rate);
        self
    }

    /// The tokens a token-priced vendor bills for `duration_s` seconds at `resolution`:
    /// `width × height × fps × seconds / 1024` at [`TOKEN_FPS`] (a 5 s 720p video: 108,000).
    pub fn tokens(duration_s: u32, resolution: Resolution) -> u64 {
        let pixels: u64 = match resolution {
            Resolution::P480 => 864 * 480,
            Resolution::P720 => 1280 * 720,
            Resolution::P1080 => 1920 * 1080,
            Resolution::K4 => 3840 * 2160,
        };
        pixels * TOKEN_FPS * u64::from(duration_s) / 1024
    }

    /// The resolution an estimate assumes for `req`: the one it names, else the vendors'
    /// default (1080p for a pro request, else 720p).
    pub fn resolution_of(req: &GenerationRequest) -> Resolution {
        req.resolution.unwrap_or(if req.is_pro {
            Resolution::P1080
        } else {
            Resolution::P720
        })
    }

    /// The tokens the estimate of `req` counts, when the price is token-based.
    pub fn estimated_tokens(&self, req: &GenerationRequest) -> Option<u64> {
        self.per_million_tokens
            .map(|_| Self::tokens(req.duration_s, Self::resolution_of(req)))
    }

    /// What `tokens` vendor tokens cost at this price's token rate (`None`: not token-priced).
    pub fn cost_of_tokens(&self, tokens: u64) -> Option<f64> {
        self.per_million_tokens
            .map(|rate| rate * tokens as f64 / 1_000_000.0)
    }

    /// The estimate for `req`: per video, plus per second × its duration, plus the token rate
    /// × the tokens its duration and resolution make
    /// ([`estimated_tokens`](Self::estimated_tokens)).
    pub fn estimate(&self, req: &GenerationRequest) -> f64 {
        let tokens = self
            .estimated_tokens(req)
            .and_then(|t| self.cost_of_tokens(t))
            .unwrap_or(0.0);
        self.per_video + self.per_second * f64::from(req.duration_s) + tokens
    }

    /// This price on `tier`: on `flex`, the token rate is the flex rate
    /// (`flex_per_million_tokens`, else [`FLEX_PRICE_RATIO`] × `per_million_tokens`); the
    /// per-video and per-second parts stay. On `default` (or none) it is unchanged.
    pub fn for_tier(&self, tier: Option<ServiceTier>) -> Price {
        match tier {
            Some(ServiceTier::Flex) => Price {
                per_million_tokens: self
                    .flex_per_million_tokens
                    .or(self.per_million_tokens.map(|r| r * FLEX_PRICE_RATIO)),
                flex_per_million_tokens: None,
                ..self.clone()
            },
            Some(ServiceTier::Default) | None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;

    fn req(duration_s: u32) -> GenerationRequest {
        GenerationRequest::new(TaskId::new(), "m", "p", duration_s)
    }

    #[test]
    fn token_estimates_match_the_published_five_second_prices() {
        // ModelArk 2.0 online, 5 s 16:9 without video input: 480p ≈ $0.35, 720p ≈ $0.76,
        // 1080p ≈ $1.87, 4k ≈ $3.89.
        for (resolution, rate, published) in [
            (Resolution::P480, 7.0, 0.35),
            (Resolution::P720, 7.0, 0.76),
            (Resolution::P1080, 7.7, 1.87),
            (Resolution::K4, 4.0, 3.89),
        ] {
            let got = Price::per_million_tokens(rate, "USD")
                .estimate(&req(5).with_resolution(resolution));
            assert!((got - published).abs() < 0.01, "{resolution}: {got}");
        }
    }

    #[test]
    fn a_request_naming_no_resolution_is_estimated_at_720p_or_1080p_when_pro() {
        let price = Price::per_million_tokens(1.0, "USD");
        assert_eq!(
            price.estimated_tokens(&req(5)),
            Some(Price::tokens(5, Resolution::P720))
        );
        assert_eq!(
            price.estimated_tokens(&req(5).with_pro(true)),
            Some(Price::tokens(5, Resolution::P1080))
        );
        let per_second = Price {
            per_second: 0.1,
            ..Price::default()
        };
        assert_eq!(per_second.estimated_tokens(&req(5)), None);
    }

    #[test]
    fn a_price_without_tokens_estimates_as_before_on_either_tier() {
        let price = Price {
            per_video: 0.25,
            per_second: 0.05,
            currency: "USD".into(),
            ..Price::default()
        };
        assert!((price.estimate(&req(10)) - 0.75).abs() < 1e-12);
        assert_eq!(price.for_tier(Some(ServiceTier::Flex)), price);
    }

    #[test]
    fn the_flex_tier_uses_its_own_rate_or_half_the_online_rate() {
        let online = Price::per_million_tokens(4.0, "USD");
        let half = online.for_tier(Some(ServiceTier::Flex));
        assert_eq!(half.per_million_tokens, Some(2.0));
        let own = online
            .clone()
            .with_flex_per_million_tokens(1.5)
            .for_tier(Some(ServiceTier::Flex));
        assert_eq!(own.per_million_tokens, Some(1.5));
        assert_eq!(online.for_tier(Some(ServiceTier::Default)), online);
        assert_eq!(online.cost_of_tokens(500_000), Some(2.0));
    }
}
