//! A submit and its answer, read the one way every adapter whose create call answers the new
//! job's id in a JSON body reads them.

// Only the adapters with such a create call use this: a build without them leaves it unused.
#![allow(dead_code)]

use cineflow_core::ProviderError;
use serde::de::DeserializeOwned;

use super::{Answer, Call, Scrub, malformed, send};

/// Sends a submit — once: a submit is paid and never retried — and reads the created job from
/// its answer:
///
/// - a transport failure is classified by [`send`] (as a [`Call::Submit`]);
/// - an error answer is classified by `error`, given the answer and [`Call::Submit`];
/// - a 2xx body is read as a `T` ([`Answer::json`], secrets scrubbed first); one that is not a
///   `T`, or whose job id (`id`) is blank, is [`malformed`]: retryable and
///   [`Ambiguous`](cineflow_core::SubmitState::Ambiguous), since the vendor answered and a job
///   may exist. `blank` is the reason given for a blank id.
pub(crate) async fn submitted<T: DeserializeOwned>(
    rb: reqwest::RequestBuilder,
    secrets: &(impl Scrub + ?Sized),
    error: impl FnOnce(&Answer, Call) -> ProviderError,
    id: impl FnOnce(&T) -> &str,
    blank: &str,
) -> Result<T, ProviderError> {
    let answer = send(rb, Call::Submit).await?;
    if !answer.is_success() {
        return Err(error(&answer, Call::Submit));
    }
    let created: T = answer.json(Call::Submit, secrets)?;
    if id(&created).trim().is_empty() {
        return Err(malformed(&answer, Call::Submit, secrets, blank));
    }
    Ok(created)
}
