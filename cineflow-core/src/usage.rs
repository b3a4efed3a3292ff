//! What a vendor job used and cost: the usage a vendor reports, and each attempt's ledger
//! entry (the estimate made at submit next to the reported usage).

use serde::{Deserialize, Serialize};

pub use crate::provider::Usage;
use crate::provider::{GenerationRequest, ServiceTier};
use crate::router::Price;

/// An attempt's cost, as recorded on the [`Attempt`](crate::Attempt): the estimate made when
/// it was submitted and, once the vendor reports it, the usage the job really had — so the
/// two can be compared.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptCost {
    /// The route's price at submit, on its service tier. `None`: the route is not priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// The service tier the request asked for (`None`: the vendor's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    /// The estimate at submit, in the price's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// The tokens the estimate counted (token-priced routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_tokens: Option<u64>,
    /// The usage the vendor reported for the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<Usage>,
    /// The reported tokens at the price's token rate: what the job cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_cost: Option<f64>,
    /// The charge the vendor itself reported for the job, in its billing currency
    /// ([`JobStatus::charge`](crate::JobStatus::charge): OpenRouter's `usage.cost`, US dollars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charged: Option<f64>,
}

impl AttemptCost {
    /// The entry of an attempt about to submit `req` at `price` (already on the request's
    /// service tier): the estimate and the tokens it counts.
    pub fn estimated(price: Option<Price>, req: &GenerationRequest) -> Self {
        Self {
            estimate: price.as_ref().map(|p| p.estimate(req)),
            estimated_tokens: price.as_ref().and_then(|p| p.estimated_tokens(req)),
            price,
            service_tier: req.service_tier,
            reported: None,
            reported_cost: None,
            charged: None,
        }
    }

    /// Records the vendor's reported usage and what it cost at the price's token rate.
    pub fn record_usage(&mut self, usage: Usage) {
        self.reported_cost = self
            .price
            .as_ref()
            .and_then(|p| p.cost_of_tokens(usage.completion_tokens));
        self.reported = Some(usage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;
    use crate::media::Resolution;

    #[test]
    fn the_reported_usage_is_priced_at_the_rate_of_the_estimate() {
        let req = GenerationRequest::new(TaskId::new(), "m", "p", 5)
            .with_resolution(Resolution::P720)
            .with_service_tier(ServiceTier::Flex);
        let price = Price::per_million_tokens(7.0, "USD").for_tier(req.service_tier);
        let mut cost = AttemptCost::estimated(Some(price), &req);
        assert_eq!(cost.estimated_tokens, Some(108_000));
        assert_eq!(cost.service_tier, Some(ServiceTier::Flex));
        assert!((cost.estimate.unwrap() - 0.378).abs() < 1e-9);
        // The Ark sample task: 5 s of 720p billed 108,900 tokens.
        cost.record_usage(Usage {
            completion_tokens: 108_900,
            total_tokens: Some(108_900),
        });
        assert!((cost.reported_cost.unwrap() - 0.38115).abs() < 1e-9);
        let mut unpriced = AttemptCost::estimated(None, &req);
        unpriced.record_usage(Usage {
            completion_tokens: 10,
            total_tokens: None,
        });
        assert_eq!(
            (unpriced.estimate, unpriced.reported_cost),
            (None, None),
            "usage is kept even when nothing prices it"
        );
        assert_eq!(unpriced.reported.map(|u| u.completion_tokens), Some(10));
    }
}
